# Two commands do all the set-up on a fresh Debian/Ubuntu machine:
#   make run    start QP Desktop on its embedded local tenant
#   make test   run the whole test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-bundle bundle lint bench bench-cluster screenshots tenant clean \
	system-deps-run system-deps-test

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,packaging]'
	touch $(STAMP)

system-deps-run:
	bash scripts/system-deps.sh run

system-deps-test:
	bash scripts/system-deps.sh test

run: system-deps-run $(STAMP)
	$(VENV)/bin/qp-desktop

tenant: $(STAMP)
	$(VENV)/bin/qp-tenant serve

test: system-deps-test $(STAMP)
	$(VENV)/bin/ruff check qp_common qp_tenant qp_desktop qp_agent tests benchmarks
	$(VENV)/bin/mypy
	# Two xdist workers: most tests wait on their own tenant, slapd or Qt process.
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -n 2
	# The whole tenant suite again on PostgreSQL (tests/cluster always runs on it, above).
	$(PY) -m pytest --db postgresql -q -n 2 tests/tenant
	# The PyInstaller bundle, built and run offscreen with --screenshot.
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m bundle -q tests/packaging

# PyInstaller one-folder bundles in dist/qp-desktop and dist/qp-agent (see packaging/README.md).
bundle: system-deps-run $(STAMP)
	PYTHON=$(PY) bash packaging/build.sh all

# Builds the bundles in a temporary folder and runs the desktop one with --screenshot.
test-bundle: system-deps-test $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m bundle tests/packaging

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/qp-desktop --screenshot screenshots

bench-cluster: $(STAMP)
	$(PY) benchmarks/bench_cluster.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
