# Two commands matter: `make demo` and `make test`. Each installs what it needs first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: demo test lint format up install browser clean

demo: install
	$(BIN)/mlops demo

# Two workers. Each module runs on one worker, so its module-scoped fixtures are set up once; the chaos seeds go one
# at a time. The slowest come first (tests/conftest.py).
TEST_WORKERS ?= 2

test: install lint browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

up: install
	$(BIN)/mlops up

install: $(STAMP) $(NPM_STAMP)

# The review page's browser test (tests/e2e/test_review_page.py) drives Debian's headless Chromium. Installed
# with apt-get where it is missing and apt-get can be used (as root); elsewhere the test says it skipped, and why.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else echo "chromium and chromedriver are missing and apt-get cannot install them: the browser test will skip"; fi

$(STAMP): requirements.txt requirements-local.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) node_modules .mlops .pytest_cache .ruff_cache
