# reusescan: `make demo` and `make test` work on a fresh machine (Python 3.11, pip).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-out
PYTEST_ARGS ?=

.PHONY: install check test test-fast demo bench clean

install: $(STAMP)

# torch/torchvision are pinned to the builds that lie on this machine's disk;
# asking for them first keeps pip from downloading a different multi-GB build.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.14.1 torchvision==0.29.1
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

# lint, import order and types of the five packages (config in pyproject.toml)
check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: check
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: check
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/reusescan make-corpus $(DEMO_DIR)/corpus --docs 12 --reuse 6 --seed 7
	$(VENV)/bin/reusescan scan $(DEMO_DIR)/corpus/pdf --out $(DEMO_DIR)/scan
	$(VENV)/bin/reusescan score $(DEMO_DIR)/scan/report.csv $(DEMO_DIR)/corpus/truth.csv
	@echo "demo: open $(DEMO_DIR)/scan/report.html in a browser (pairs in report.csv, unreadable inputs in errors.csv)"

# extraction speed, whole-scan quality (two corpus variants), pixel-check speed, FAISS at 1M vectors
bench: $(STAMP)
	$(PY) benchmarks/bench_extract.py
	$(PY) benchmarks/bench_scan.py
	$(PY) benchmarks/bench_pixel_check.py --kernels
	$(PY) benchmarks/bench_index.py --n 1000000 --dim 256

clean:
	rm -rf $(VENV) $(DEMO_DIR) bench-out .pytest_cache
