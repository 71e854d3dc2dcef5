# keras-bnreg: every target sets up .venv itself on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: venv train test test-slow lint format reproduce bench theory lab notebook clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "error: Python 3.10+ needed, found " + sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@# The package itself, editable: `import keras_bnreg` works from any directory.
	rm -f $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/keras_bnreg_checkout.pth
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

train: venv
	$(PY) train.py --amplitude 4

test: venv
	$(PY) -m pytest -m "not slow" -n 2

test-slow: venv
	$(PY) -m pytest -m slow

lab: venv
	@# Jupyter refuses to start as root unless told; these machines (and containers) run as root.
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

notebook: lab

lint: venv
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

theory: venv
	$(PY) -m keras_bnreg.theory

reproduce: venv
	$(PY) reproduce.py all

bench: venv
	$(PY) benchmarks/bench_training.py

clean:
	rm -rf runs results .pytest_cache
