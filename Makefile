PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JS_CLIENTS := tests/js/node_modules/.installed

.PHONY: run demo test lint bench schema vendor screenshots clean

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

DEMO_TOKEN := demo-admin-token
DEMO_PASSWORD := demo-manager-password
DEMO_PORT ?= 8000
DEMO_URL := http://127.0.0.1:$(DEMO_PORT)

# The service on a fresh embedded store (./data-demo) with a simulated field day in it, refusals left open.
demo: $(STAMP)
	rm -rf data-demo
	FIELDSYNC_ADMIN_TOKEN=$(DEMO_TOKEN) $(BIN)/fieldsync serve --port $(DEMO_PORT) --data-dir data-demo & server=$$!; \
	trap 'kill $$server 2>/dev/null' EXIT INT TERM; \
	until $(BIN)/python -c "import httpx; httpx.get('$(DEMO_URL)/readyz').raise_for_status()" 2>/dev/null; do sleep 0.5; done; \
	$(BIN)/fieldsync simulate --url $(DEMO_URL) --token $(DEMO_TOKEN) --reps 6 --outlets 10 --steps 12 --leave-open && \
	echo "$(DEMO_PASSWORD)" | $(BIN)/fieldsync users create --name demo --role MANAGER --password --data-dir data-demo \
	  > /dev/null && \
	echo "Console: $(DEMO_URL)/ (sign in as demo, password $(DEMO_PASSWORD)). Ctrl-C stops the service." && wait $$server

test: $(STAMP) $(JS_CLIENTS)
	$(BIN)/ruff check service crdt fieldsync_client tests bench scripts
	$(BIN)/mypy service crdt fieldsync_client
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check service crdt fieldsync_client tests bench scripts
	$(BIN)/ruff format --check service crdt fieldsync_client tests bench scripts

bench: $(STAMP)
	$(BIN)/python -m bench.push
	$(BIN)/python -m bench.pull
	$(BIN)/python -m bench.subscriptions
	$(BIN)/python -m bench.history
	$(BIN)/python -m bench.uploads
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.load
	$(BIN)/python -m bench.anomalies

schema: $(STAMP)
	$(BIN)/fieldsync export-schema --output schema.graphql

screenshots: $(STAMP)  # the console's pictures in docs/screenshots (the README shows them); needs chromium
	FIELDSYNC_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/e2e/test_console.py

vendor: $(STAMP)  # the console's browser libraries from npm (needs npm; see service/web/vendor.json)
	$(BIN)/python scripts/vendor_web.py

clean:
	rm -rf $(VENV) data data-demo
