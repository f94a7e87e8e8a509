# Two commands on a fresh machine (Python 3.11, git, make):
#   make demo   builds .venv, generates a synthetic world, loads it, runs the report
#   make test   builds .venv and runs the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lab clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name cohortlab --display-name "cohortlab (Python 3)" >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cohortlab demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

bench: $(STAMP)
	$(BIN)/cohortlab bench

lab: $(STAMP)
	$(BIN)/cohortlab lab

clean:
	rm -rf $(VENV) build *.egg-info
