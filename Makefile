# galexplore: the two set-up commands (`make demo`, `make test`) and the slower suites.
# Everything installs into .venv; a stamp file makes a second run skip the install
# unless pyproject.toml (or this Makefile) changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# Local pins for this machine's on-disk wheels; pyproject.toml keeps the loose requirement
# so users on GPU clusters bring their own CUDA build.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
DEMO_CONFIG := pipelines/demo.toml
DEMO_ATLAS := data/atlas/demo
CHROMIUM := /usr/bin/chromium

.PHONY: install demo test test-slow faults bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH_PINS)
	$(PIP) install --quiet -e '.[app,dev]'
	touch $(STAMP)

# Every stage that is already up to date is skipped, so a second `make demo` only serves.
demo: $(STAMP)
	$(VENV)/bin/galexplore build $(DEMO_CONFIG) --out $(DEMO_ATLAS)
	$(VENV)/bin/galexplore serve $(DEMO_ATLAS)

# The browser tests drive Debian's chromium (Playwright's own browser download does not work here).
$(CHROMIUM):
	apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }

# The default run and the browser tests; `pytest` alone skips the browser tests.
test: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest -m "not slow"

# Exit status 5 means no test carried the marker: not a failure.
test-slow: $(STAMP)
	$(PY) -m pytest -m slow || [ $$? -eq 5 ]

# The fault-injection suite alone (also part of test-slow): 30 SIGKILLs spread over the build's
# stages, each round rerun to completion and compared with an uninterrupted build; about 3 minutes
# on 2 cores. For other draws: .venv/bin/python bench/fault_injection.py --kills 45 --seed 1
faults: $(STAMP)
	$(PY) -m pytest -m slow tests/test_faults.py

# Every figure against what a user would use instead (bench/suite.py), into bench/results/
# (<date>-<host>.json and .md, and latest.md). About 30 minutes on 2 cores from nothing; inputs and
# the 10^6-galaxy atlas are kept in data/scale for the next run. Options, e.g.:
# make bench BENCH_ARGS="--only query graph" (or --quick, --set umap_n=100000).
bench: $(STAMP)
	$(PY) -m bench.suite $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
