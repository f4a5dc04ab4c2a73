# Two commands do all the set-up on a fresh machine (README): `make compare` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# The studies in results/ (README, "Results"), one folder each, resumable; `make report` re-renders them.
# underfitting/: small_cnn at 14² (it does not fit Fashion-MNIST: ≈ 87 % train top-1).
UNDERFITTING := --models small_cnn --datasets fashion-mnist --deltas 0.8 0.5 0.2 --control-deltas 0.5 0.2 \
	--seeds 0 1 2 3 4 --epochs 15 --batch-size 128 --lr 0.005 --image-size 14 --train-eval-subset 10000 \
	--recipes paper tuned --tuned-arms "Algorithm 1 (fixed)" "hardest δ=0.2" --threads 1
# fitting/: the pre-registered study of docs/method.md ("The fitting-regime study"): two_conv_cnn at 28²,
# which fits Fashion-MNIST. Stage 0 calibrates Algorithm 1's lr (seeds 100, 101); stage 1 is the main study.
FITTING := --models two_conv_cnn --datasets fashion-mnist --epochs 30 --batch-size 128 --image-size 0 \
	--train-eval-subset 10000 --momentum 0.9 --weight-decay 0 --threads 1 --no-report
STAGE0_LRS := 0.05 0.1 0.02

.PHONY: compare test notebooks-full results report fitting-stage0

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

results: $(BIN)/hardbatch fitting-stage0
	$(BIN)/hardbatch sweep $(UNDERFITTING) --out results/underfitting

fitting-stage0: $(BIN)/hardbatch
	for recipe in cosine paper; do for lr in $(STAGE0_LRS); do \
		$(BIN)/hardbatch sweep $(FITTING) --arms --seeds 100 101 --recipes $$recipe --lr $$lr \
			--out results/fitting/stage0 || exit 1; done; done

report: $(BIN)/hardbatch
	$(BIN)/hardbatch report results/underfitting --out results/underfitting/report
