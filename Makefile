# The two commands: `make dev` runs the local stack, `make test` runs the whole suite.
# Both create or reuse .venv in the checkout and install what is missing. System packages
# are installed only by the command that needs them: Chromium by `make test`, wrk by `make bench`.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EMULATOR_VENV := .venv-tasks-emulator

.PHONY: install test dev appserver bench lint clean purge-queue

install: $(VENV)/.installed node_modules/.installed $(EMULATOR_VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(EMULATOR_VENV)/.installed: requirements-emulator.txt
	@test -x $(EMULATOR_VENV)/bin/python || $(PYTHON) -m venv $(EMULATOR_VENV)
	$(EMULATOR_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-emulator.txt
	@touch $@

# The lock lists every platform's optional packages (msgpackr-extract's), as npm 11 writes it,
# so `npm install` leaves it unchanged (a lock without them was rewritten at every fresh
# install). Not `npm ci`: it empties node_modules first, even a shared one behind a symlink.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

test: install
	@bash scripts/install-system-deps.sh chromium
	$(PY) -m pytest

dev: install
	$(PY) scripts/devstack.py

# The app under Google's dev_appserver.py (bundled task queue, login: admin, urlfetch) with
# soketi and the Datastore emulator; needs the gcloud CLI (see scripts/appserver.py).
appserver: install
	$(PY) scripts/appserver.py

# Results go to test-output/bench/; `make bench SAVE=1` updates the committed bench/results/.
bench: install
	@bash scripts/install-system-deps.sh wrk
	$(PY) -m bench $(if $(SAVE),--save)

# The capacity plan for RATE events/s (F1, F2, F4) and its simulation on Cloud Tasks and App
# Engine; the plot of latency and instances over time goes to test-output/capacity/.
.PHONY: capacity
RATE ?= 1000
capacity: $(VENV)/.installed
	$(PY) -m capacity --rate $(RATE)

# Delete every task of a queue of the running `make dev` stack (QUEUE=pusher by default):
# a task for a URL that answers 404 or 405 is otherwise retried again and again.
QUEUE ?= pusher
purge-queue: $(VENV)/.installed
	$(PY) scripts/devstack.py --purge-queue $(QUEUE)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) $(EMULATOR_VENV) node_modules .pytest_cache .ruff_cache test-output
