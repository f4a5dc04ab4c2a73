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
# Stage 0's choice by its pre-registered rule (hardbatch study results/fitting prints it; tests/test_results.py
# checks these equal the rule's output once stage 0 is complete).
LR_COSINE := 0.02
LR_CONSTANT := 0.02
COSINE_ARMS := "hardbatch delta=0.2" "hardbatch delta=0.5" "hardbatch select=random delta=0.2" \
	"hardbatch select=random delta=0.5" "hardbatch select=easiest delta=0.2"

.PHONY: compare test book book-fast notebooks-full readme-chapter6 results report fitting-stage0 fitting-main fitting-stage2

$(BIN)/hardbatch: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,cluster,book]"
	touch $@

compare: $(BIN)/hardbatch
	$(BIN)/hardbatch compare

test: $(BIN)/hardbatch
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The course as a book (book/, Jupyter Book): every chapter run at its default sizes and cached in book/_build
# (a chapter whose code did not change is not run again; delete book/_build to run all), the site in
# book/_build/html (never committed). book-fast: the same in fast mode, as tests/test_book.py builds it.
book: $(BIN)/hardbatch
	$(BIN)/python book/build.py

book-fast: $(BIN)/hardbatch
	$(BIN)/python book/build.py --fast --out book/_build/fast

# `make test` runs the notebooks in fast mode (notebooks/conftest.py); this runs them at their default
# sizes, one after the other, as a reader would (times: notebooks/README.md).
notebooks-full: $(BIN)/hardbatch
	HARDBATCH_SMOKE=0 $(BIN)/python -m pytest notebooks/

# The README's chapter-6 answer: chapter 6 run at its default size, its closing cell's sentence copied in.
readme-chapter6: $(BIN)/hardbatch
	HARDBATCH_SMOKE=0 $(BIN)/jupyter nbconvert --to notebook --execute notebooks/06_beyond_the_paper.ipynb \
		--output-dir runs/chapter6
	$(BIN)/python -c "from hardbatch.chapters import update_readme_answer; \
		update_readme_answer('README.md', 'runs/chapter6/06_beyond_the_paper.ipynb')"

results: $(BIN)/hardbatch fitting-stage0 fitting-main fitting-stage2
	$(BIN)/hardbatch sweep $(UNDERFITTING) --out results/underfitting

# Stage 1, decayed schedule first, seed by seed (10 paired seeds); then the constant lr; Algorithm 1 shuffled.
fitting-main: $(BIN)/hardbatch
	$(BIN)/hardbatch sweep $(FITTING) --recipes cosine --lr $(LR_COSINE) --seeds 0 1 2 3 4 5 6 7 8 9 \
		--arms $(COSINE_ARMS) --out results/fitting/main
	$(BIN)/hardbatch sweep $(FITTING) --recipes paper --lr $(LR_CONSTANT) --seeds 0 1 2 3 4 5 6 7 8 9 \
		--arms "hardbatch delta=0.2" "hardbatch select=random delta=0.2" --out results/fitting/main
	$(BIN)/hardbatch sweep $(FITTING) --recipes cosine --lr $(LR_COSINE) --seeds 0 1 2 3 4 \
		--arms "minibatch order=shuffled" --out results/fitting/main

# Stage 2 (not part of stage 1's verdict): Selective-Backprop beside the same seeds; the MLP.
fitting-stage2: $(BIN)/hardbatch
	$(BIN)/hardbatch sweep $(FITTING) --recipes cosine --lr $(LR_COSINE) --seeds 0 1 2 3 4 5 6 7 8 9 \
		--arms "selective beta=1" --out results/fitting/main
	$(BIN)/hardbatch sweep $(FITTING) --models mlp --recipes cosine --lr $(LR_COSINE) --seeds 0 1 2 3 4 5 6 7 8 9 \
		--arms "hardbatch delta=0.2" "hardbatch select=random delta=0.2" --out results/fitting/stage2-mlp

fitting-stage0: $(BIN)/hardbatch
	for recipe in cosine paper; do for lr in $(STAGE0_LRS); do \
		$(BIN)/hardbatch sweep $(FITTING) --arms --seeds 100 101 --recipes $$recipe --lr $$lr \
			--out results/fitting/stage0 || exit 1; done; done

report: $(BIN)/hardbatch
	$(BIN)/hardbatch report results/underfitting --out results/underfitting/report
	$(BIN)/hardbatch study results/fitting --out results/fitting/report/report.md > /dev/null
	$(BIN)/python -c "from hardbatch.readme import update_readme; update_readme('README.md', 'results')"
