# Two commands for a newcomer: `make demo` and `make test`. Each creates .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# One database name per checkout (pytest-django adds "test_"), so two checkouts or
# worktrees testing against one server never drop each other's test database.
CHECKOUT_ID := $(shell printf '%s' "$(CURDIR)" | cksum | cut -d' ' -f1)
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/xo_recommender_$(CHECKOUT_ID)
REDIS_URL ?= redis://127.0.0.1:6379/15
DEMO_USERS ?= 500
DEMO_BUSINESSES ?= 200
DEMO_INTERACTIONS ?= 10000
DEMO_PORT ?= 8000
DEMO_ENV := env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL

.PHONY: venv demo seed test test-sqlite test-browser lint wheel-check benchmarks-smoke clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The demo runs on the embedded default: a SQLite file and the local-memory cache.
demo: venv
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(MAKE) --no-print-directory seed
	$(DEMO_ENV) $(PY) manage.py rebuild_recommendations
	@echo
	@echo "  XO Black demo on http://127.0.0.1:$(DEMO_PORT)/ (stop with Ctrl-C). Sign-ins:"
	@$(DEMO_ENV) $(PY) manage.py demo_accounts --base-url http://127.0.0.1:$(DEMO_PORT)
	@echo
	$(DEMO_ENV) $(PY) manage.py runserver 127.0.0.1:$(DEMO_PORT)

seed: venv
	$(PY) manage.py seed_demo --users $(DEMO_USERS) --businesses $(DEMO_BUSINESSES) \
		--interactions $(DEMO_INTERACTIONS)

# The whole suite on PostgreSQL and Redis (DATABASE_URL / REDIS_URL, default 127.0.0.1).
test: venv
	DATABASE_URL=$(DATABASE_URL) REDIS_URL=$(REDIS_URL) $(PY) -m tests.preflight
	DATABASE_URL=$(DATABASE_URL) REDIS_URL=$(REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)

# The same suite on the embedded default (SQLite, local-memory cache).
test-sqlite: venv
	env -u DATABASE_URL -u REDIS_URL SQLITE_TEST_PATH=$(CURDIR)/.venv/xo_test.sqlite3 \
		$(PY) -m pytest $(PYTEST_ARGS)

# The demo page, Swagger UI and the admin chart in headless Chromium (Debian's chromium
# and chromium-driver); screenshots go to $(SCREENSHOTS). Under CI=true a missing
# browser fails the run instead of skipping.
SCREENSHOTS ?= $(CURDIR)/.venv/screenshots
test-browser: venv
	env -u DATABASE_URL -u REDIS_URL SQLITE_TEST_PATH=$(CURDIR)/.venv/xo_browser.sqlite3 \
		SCREENSHOTS=$(SCREENSHOTS) $(PY) -m pytest tests/browser -m browser $(PYTEST_ARGS)
	@echo "screenshots: $(SCREENSHOTS)"

lint: venv
	$(VENV)/bin/ruff check .

# Build the wheel, install it in a fresh virtualenv and migrate a host project with it.
wheel-check: venv
	bash .ci/wheel_check.sh $(PY)

benchmarks-smoke: venv
	@for script in benchmarks/*.py; do echo "== $$script --smoke"; $(PY) $$script --smoke || exit 1; done

clean:
	rm -rf $(VENV) dist build *.egg-info example_project/demo.sqlite3
