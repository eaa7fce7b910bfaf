# Two commands do all the set-up on a fresh Debian/Ubuntu machine:
#   make run    start QP Desktop on its embedded local tenant
#   make test   run the whole test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench screenshots tenant clean system-deps-run system-deps-test

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
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
	$(VENV)/bin/ruff check qp_tenant qp_desktop qp_agent tests benchmarks
	$(VENV)/bin/mypy
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/qp-desktop --screenshot screenshots

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
