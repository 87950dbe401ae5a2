# The two commands: `make dev` runs the local stack, `make test` runs the whole suite.
# Both create or reuse .venv in the checkout and install what is missing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EMULATOR_VENV := .venv-tasks-emulator

.PHONY: install test dev bench lint clean

install: $(VENV)/.installed node_modules/.installed $(EMULATOR_VENV)/.installed
	@bash scripts/install-system-deps.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(EMULATOR_VENV)/.installed: requirements-emulator.txt
	@test -x $(EMULATOR_VENV)/bin/python || $(PYTHON) -m venv $(EMULATOR_VENV)
	$(EMULATOR_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-emulator.txt
	@touch $@

# `npm install` with the lock file, not `npm ci`: npm 11's ci refuses locks that leave out
# other platforms' optional packages (msgpackr-extract's), which `npm install` accepts.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

test: install
	$(PY) -m pytest

dev: install
	$(PY) scripts/devstack.py

# Results go to test-output/bench/; `make bench SAVE=1` updates the committed bench/results/.
bench: install
	$(PY) -m bench $(if $(SAVE),--save)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) $(EMULATOR_VENV) node_modules .pytest_cache .ruff_cache test-output
