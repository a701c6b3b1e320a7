# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
FIXTURES ?= .cache/fixtures
OUT    := out
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: install fixtures demo test test-slow test-hostile bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

fixtures: install
	CKPTKIT_FIXTURES=$(FIXTURES) $(PY) -m fixtures build --data --jobs $(JOBS)

# The main job end to end: audit every checkpoint of the fixture zoo.
demo: fixtures
	CKPTKIT_FIXTURES=$(FIXTURES) $(PY) -m fixtures demo --out $(OUT)

# The HTML report tests render pages in headless Chromium.
.PHONY: browser
browser:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium chromium-driver)

# The fixtures first, on every core (one entry trains for a minute), then the tests in one worker per core.
test: install browser
	$(PY) -m fixtures build --data --jobs $(JOBS)
	$(PY) -m pytest -q -m "not slow" -n $(JOBS) --dist loadfile --durations=25

test-slow: install
	$(PY) -m pytest -q -m slow

# Hostile and broken inputs, kills, concurrency, full disks, fuzz smoke runs; ends with a table of cases
# tried and passed and the slowest and largest case (tests/hostile/conftest.py).  `make test` runs all but
# the slow corpus cases.
test-hostile: install
	$(PY) -m pytest -q -m "not slow or corpus" tests/hostile

bench: install
	$(PY) bench/inspect.py

clean:
	rm -rf $(OUT) .pytest_cache
