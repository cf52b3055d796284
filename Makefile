# The README's two commands. Each sets itself up from a fresh clone: a virtual environment in
# .venv with mtssl_nb installed (editable) and its test tools, rebuilt when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lab install export docs clean-venv

demo: $(STAMP)  ## train, probe and report on the embedded data (writes runs/demo/report.html)
	$(BIN)/mtssl demo

test: $(STAMP)  ## export/clean drift checks, every notebook, and the tests in tests/
	$(BIN)/python -m pytest -n 2 --durations=25

lab: $(STAMP)  ## JupyterLab on the first walkthrough (nbs/tutorials/); as root (containers) it needs --allow-root
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,) --ServerApp.root_dir=. \
		--LabApp.default_url=/lab/tree/nbs/tutorials/00_overview.ipynb $(LAB_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "Setting up $(VENV): installing mtssl_nb and its dependencies (PyTorch included: a few minutes the first time)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile -e '.[dev]'
	@# pip byte-compiles one file at a time (80 s of the install here); compileall uses every core. Some packages ship
	@# templates that are not Python, which neither compiles: their errors are not ours, so they are not shown.
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true
	touch $(STAMP)

docs: $(VENV)/.docs-installed  ## the documentation site in _site/ (notebooks run at their quick settings; a rebuild runs only those that changed)
	$(BIN)/python docs/build_site.py $(DOCS_ARGS)

$(VENV)/.docs-installed: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile -e '.[dev,docs]'
	touch $@

export: $(STAMP)  ## after editing notebooks: regenerate mtssl_nb/ and clean the notebooks
	$(BIN)/nbdev-export
	$(BIN)/nbdev-clean

clean-venv:
	rm -rf $(VENV)
