# Two commands do all set-up on a bare machine with Python 3.11:
#   make quickstart   creates .venv, installs t5explore, runs the quickstart sweep, prints the comparison table
#   make test         creates .venv if needed, runs the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
RESULTS ?= results

.PHONY: install quickstart test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

quickstart: install
	$(BIN)/t5explore sweep experiments/quickstart.gin --results_dir=$(RESULTS)

test: install
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -q

bench: install
	JAX_PLATFORMS=cpu $(BIN)/python benchmarks/objectives.py

clean:
	rm -rf $(VENV) $(RESULTS) .pytest_cache
