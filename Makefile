# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test check-lessons clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

run: $(VENV)/.installed  ## start the bot (terminal chat when no channel token is set)
	$(BIN)/hocvuso run

test: $(VENV)/.installed-dev  ## install the dev dependencies and run the whole suite
	$(BIN)/python -m pytest -n auto

check-lessons: $(VENV)/.installed  ## validate the lesson files
	$(BIN)/hocvuso lessons check

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
