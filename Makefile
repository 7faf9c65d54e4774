# Two commands do all set-up on a fresh machine:  `make run`  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
# pytest processes: the suite is half waiting (browsers, worker subprocesses), so 2 fit 2 cores
TEST_WORKERS ?= 2

.PHONY: run test lint bench browser postgres frontend clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## install (once) and start the studio on http://127.0.0.1:8501 with a local worker
run: $(STAMP)
	$(VENV)/bin/studio ui

## Debian's Chromium for the browser tests (Playwright drives it; nothing is downloaded by Playwright)
browser:
	@test -x $(CHROMIUM) || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

## Debian's PostgreSQL server for the database tests (tests/pg.py starts a throwaway cluster with it)
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q postgresql; }

## install (once) and run every test, browser end-to-end included; pytest exit 5 (no test) is a failure
test: $(STAMP) browser postgres
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -p no:cacheprovider --timeout=600 --durations=25 -n $(TEST_WORKERS) tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no test: failing on purpose"; exit 1; fi; exit $$rc

## rebuild the Build page's canvas (app/components/canvas/build/, committed) from its source; needs Node and npm
frontend:
	cd app/components/canvas/frontend && npm ci && npm run build

lint: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
