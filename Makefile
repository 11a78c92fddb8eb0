# The two set-up commands of the README work on a fresh machine: `make run` and `make test`.
# Each bootstraps what it needs (a virtual environment from requirements-dev.txt, Azurite from npm).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AZURITE := node_modules/.bin/azurite
PYTEST_ARGS ?=
# The Python worker's own library: the dev host loads and converts through it (devhost/indexing.py, worker.py).
# Development only, never deployed. It declares Python >= 3.13 (the worker line for 3.13+), but the load-time
# checks and converters it runs here work unchanged on 3.11 (tests/devhost/conformance/test_worker_loading.py);
# its own dependencies are not needed for that, so it is installed without them.
WORKER_LIBRARY := azure-functions-runtime==1.3.0

.PHONY: run test lint fmt bench openapi queue-send deps clean

$(STAMP): requirements.txt requirements-dev.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --ignore-requires-python $(WORKER_LIBRARY)
	touch $@

$(AZURITE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(STAMP) $(AZURITE)

## Run the app offline: Graph simulator + Azurite + the app in the dev host.
run: deps
	$(BIN)/python -m devhost.offline

## Run the whole test suite (starts and stops Azurite and the simulators itself).
test: deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: deps
	$(BIN)/python -m bench $(BENCH_ARGS)

## Send one request to the provisioning queue of the app `make run` started and wait for its result message:
## make queue-send [QUEUE_SEND_ARGS='--file request.json'] (docs/cli.md, queue-send).
QUEUE_SEND_ARGS ?= --name 'Queue demo community' --owner adele.vance@contoso.onmicrosoft.com
queue-send: $(STAMP)
	$(BIN)/python -m cli queue-send --wait $(QUEUE_SEND_ARGS)

## Regenerate openapi/openapi.json and connector/apiDefinition.swagger.json from the models.
openapi: $(STAMP)
	$(BIN)/python -m provisioning.openapi --write

clean:
	rm -rf $(VENV) .venv-checkov node_modules .devhost .pytest_cache .mypy_cache .ruff_cache
