# Sdelka: `make run` starts it, `make test` runs the whole suite. Both need only Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install install-test run test lint format migrate clean

# The stamp files make `install` a no-op when pyproject.toml has not changed.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml deps/apt-run.txt | $(BIN)/python
	deps/ensure-apt.sh deps/apt-run.txt
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml deps/apt-test.txt $(VENV)/.installed
	deps/ensure-apt.sh deps/apt-test.txt
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	SDELKA_DEV=1 $(BIN)/sdelka migrate --noinput
	SDELKA_DEV=1 $(BIN)/sdelka bootstrap
	SDELKA_DEV=1 $(BIN)/sdelka serve --port $(PORT)

test: install-test
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install-test
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) var/test .pytest_cache .mypy_cache .ruff_cache
