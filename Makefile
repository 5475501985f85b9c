# lret_runner: the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 5000

# `make test` and `make test-core` build their venv from scratch with $(PYTHON), one per
# interpreter version under .venv-test/ (.venv-test/3.11, .venv-test/3.13, ...), so
# `make test-core PYTHON=python3.13` leaves the 3.11 one alone. TEST_VENV=DIR overrides it.
PYVER = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
TEST_VENV ?= .venv-test/$(PYVER)

# the fast numerical core: what `make test-core` runs on every supported interpreter
CORE_TESTS := tests/test_simulators.py tests/test_metrics.py tests/test_circuits.py \
	tests/test_noise.py tests/test_config.py tests/test_experiment.py

.PHONY: demo test test-fast test-core test-venv test-slow venv ui bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

venv: $(VENV)/.installed

# One tracked run of the quickstart preset into the embedded MLflow store (mlruns/).
demo: venv
	$(PY) -m lret_runner +experiment=quickstart
	@echo "Browse it: make ui   (MLflow UI on http://127.0.0.1:$(PORT))"

# The MLflow UI on the embedded store, loopback only.
ui: venv
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db \
		--default-artifact-root $(CURDIR)/mlruns/artifacts --host 127.0.0.1 --port $(PORT)

# A fresh virtual environment with $(PYTHON), the project installed with its test extras.
test-venv:
	@test -n "$(PYVER)" || { echo "error: PYTHON=$(PYTHON) does not run" >&2; exit 1; }
	rm -rf $(TEST_VENV)
	$(PYTHON) -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(TEST_VENV)/bin/python -m pip install -q -e ".[test]"

# What CI runs on a clean clone: the default suite (unit + e2e, not slow) in a fresh venv.
test: test-venv
	$(TEST_VENV)/bin/python -m pytest -q

# The edit loop: unit tests only, in the warm dev venv (no reinstall).
test-fast: venv
	$(PY) -m pytest -q -m "not e2e and not slow"

# Another interpreter (make test-core PYTHON=python3.13): a fresh venv, the fast core tests,
# and the quickstart run once from a temporary directory (no mlruns/ or outputs/ here).
test-core: test-venv
	$(TEST_VENV)/bin/python -m pytest -q -m "not e2e and not slow" $(CORE_TESTS)
	py="$(abspath $(TEST_VENV))/bin/python" && tmp="$$(mktemp -d)" && \
		trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && OPENBLAS_NUM_THREADS=1 \
		"$$py" -m lret_runner +experiment=quickstart run.quiet=true tracking=none && \
		echo "quickstart ran on $$("$$py" -V)"

test-slow: venv
	$(PY) -m pytest -q -m slow

bench: venv
	$(PY) benchmarks/bench_engines.py --large 20
	$(PY) benchmarks/bench_overhead.py
	$(PY) benchmarks/bench_sweep.py
	$(PY) benchmarks/bench_threads.py
	$(PY) benchmarks/bench_optimize.py
	$(PY) benchmarks/bench_api.py

clean:
	rm -rf $(VENV) .venv-test outputs multirun .pytest_cache
