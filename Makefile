# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Test workers: one more than the cores — a test waits on its database, a subprocess or the
# browser about a third of the time (2 cores: 7 m 30 s with two workers, ~1.4 cores busy; 6 m 45 s
# with three). Work stealing: a worker left without tests takes some of another's (the longest
# tests, real processes started and killed, take 20-30 s).
JOBS ?= $(shell echo $$(( $$(nproc) + 1 )))

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
	$(BIN)/python -m pytest -n $(JOBS) --dist worksteal

check-lessons: $(VENV)/.installed  ## validate the lesson files
	$(BIN)/hocvuso lessons check

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
