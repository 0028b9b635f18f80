PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JS_CLIENTS := tests/js/node_modules/.installed

.PHONY: run test lint bench schema clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(JS_CLIENTS): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $(JS_CLIENTS)

run: $(STAMP)
	$(BIN)/fieldsync serve

test: $(STAMP) $(JS_CLIENTS)
	$(BIN)/ruff check service crdt fieldsync_client tests bench
	$(BIN)/mypy service crdt fieldsync_client
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check service crdt fieldsync_client tests bench
	$(BIN)/ruff format --check service crdt fieldsync_client tests bench

bench: $(STAMP)
	$(BIN)/python -m bench.push
	$(BIN)/python -m bench.pull
	$(BIN)/python -m bench.subscriptions
	$(BIN)/python -m bench.history
	$(BIN)/python -m bench.uploads

schema: $(STAMP)
	$(BIN)/fieldsync export-schema --output schema.graphql

clean:
	rm -rf $(VENV) data
