# Two commands do all the set-up on a fresh machine (README): `make compare` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: compare test

$(BIN)/hardbatch: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $@

compare: $(BIN)/hardbatch
	$(BIN)/hardbatch compare

test: $(BIN)/hardbatch
	$(BIN)/python -m pytest
