# Two commands on a fresh machine with only Python 3.11+:
#   make demo   - set up .venv from the constraints file, generate demo sources, run, show the result
#   make test   - set up .venv and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HAINA  := $(VENV)/bin/haina
STAMP  := $(VENV)/.haina-installed
PYTEST_ARGS ?=

.PHONY: demo test lint setup bench clean lock docs

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Haina needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt --config-settings editable_mode=compat -e ".[test]"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/qingdao_demo.py demo-data
	$(HAINA) check recipes/demo.yaml
	$(HAINA) run recipes/demo.yaml
	$(HAINA) versions qingdao-coastal-demo
	$(HAINA) show qingdao-coastal-demo@latest

test: $(STAMP)
	$(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

# Gates: ruff (pyiceberg's rule set + blind-except) and mypy on the four packages; .ci/run runs
# this before the tests. `$(VENV)/bin/ruff check --fix .` sorts imports and the like.
lint: $(STAMP)
	$(VENV)/bin/ruff check pipelines connectors expectations catalog tests bench examples
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/grid_bench.py

# Regenerate docs/connectors.md (every recipe key of every source kind) from the config models;
# tests/connectors/test_reference.py fails while the committed file differs.
docs: $(STAMP)
	$(PY) -m connectors.reference > docs/connectors.md

# Refresh the constraints file from the current environment (after changing dependencies).
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^haina' > constraints.txt

clean:
	rm -rf $(VENV) warehouse demo-data .pytest_cache
