# queue-lab: `make lab` to learn, `make test` to check everything.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
JUPYTER_ARGS ?=

.PHONY: help install install-test lab test test-fast browser-deps sandbox-deps exercises bench doctor clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "queue-lab needs Python 3.11 or newer as '$(PYTHON)': install it, or run e.g. 'make lab PYTHON=python3.12'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install -e ".[test]"
	@touch $@

install: $(VENV)/.installed  ## create .venv and install the lab

install-test: $(VENV)/.installed-test  ## install what the tests need too

lab: install  ## open JupyterLab on the start notebook (LAB_NO_BROWSER=1: print the URL only)
	@# Serve the whole repository (notebooks link to ../exercises) and open the start notebook.
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
	  --LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb $(if $(LAB_NO_BROWSER),--no-browser) \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(JUPYTER_ARGS)

browser-deps:  ## Debian's chromium for the browser tests (apt-get when root)
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }) \
	    || { echo "could not install Debian's chromium: the browser tests will fail; install it with 'apt-get install chromium'"; exit 1; }; \
	  else echo "no /usr/bin/chromium: the browser tests need it; install it with 'sudo apt-get install chromium'"; exit 1; fi; }

sandbox-deps:  ## Debian's bubblewrap, the grader's sandbox (apt-get when root)
	@test -x /usr/bin/bwrap || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -q bubblewrap >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null; }) \
	    || echo "could not install Debian's bubblewrap: the sandbox tests will be skipped"; \
	  else echo "no /usr/bin/bwrap: the grading sandbox tests are skipped; install it with 'sudo apt-get install bubblewrap'"; fi; }

test: install-test browser-deps sandbox-deps  ## run every test (fast and slow suites, notebooks, browser)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install-test  ## skip the slow and browser suites
	$(PY) -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

exercises: install  ## regenerate exercises/ from solutions/
	$(VENV)/bin/labapp build-exercises

bench: install-test  ## print the benchmark tables (benchmarks/)
	$(PY) benchmarks/runtime.py
	$(PY) benchmarks/experiments.py
	$(PY) benchmarks/grading.py

doctor: install  ## check this machine can run the lab
	$(VENV)/bin/labapp doctor

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache build *.egg-info test-artifacts
