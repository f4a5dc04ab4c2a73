# Two commands do all the set-up on a fresh machine (README): `make compare` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# The study in results/ (README, "Results"): real Fashion-MNIST, resumable; `make report` re-renders it.
STUDY := --models small_cnn --datasets fashion-mnist --deltas 0.8 0.5 0.2 --control-deltas 0.5 0.2 \
	--seeds 0 1 2 3 4 --epochs 15 --batch-size 128 --lr 0.005 --image-size 14 --train-eval-subset 10000 \
	--recipes paper tuned --tuned-arms "Algorithm 1 (fixed)" "hardest δ=0.2" --threads 1

.PHONY: compare test notebooks-full results report

$(BIN)/hardbatch: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,cluster]"
	touch $@

compare: $(BIN)/hardbatch
	$(BIN)/hardbatch compare

test: $(BIN)/hardbatch
	$(BIN)/python -m pytest

# `make test` runs the notebooks in fast mode (notebooks/conftest.py); this runs them at their default
# sizes, one after the other, as a reader would (times: notebooks/README.md).
notebooks-full: $(BIN)/hardbatch
	HARDBATCH_SMOKE=0 $(BIN)/python -m pytest notebooks/

results: $(BIN)/hardbatch
	$(BIN)/hardbatch sweep $(STUDY) --out results

report: $(BIN)/hardbatch
	$(BIN)/hardbatch report results --out results/report
