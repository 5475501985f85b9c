# lret_runner: the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
TEST_VENV ?= .venv-test
PY := $(VENV)/bin/python
PORT ?= 5000

.PHONY: demo test test-slow venv ui bench clean

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

# A fresh virtual environment every time: what CI runs on a clean clone.
test:
	rm -rf $(TEST_VENV)
	$(PYTHON) -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(TEST_VENV)/bin/python -m pip install -q -e ".[test]"
	$(TEST_VENV)/bin/python -m pytest -q

test-slow: venv
	$(PY) -m pytest -q -m slow

bench: venv
	$(PY) benchmarks/bench_engines.py --large 20
	$(PY) benchmarks/bench_overhead.py
	$(PY) benchmarks/bench_sweep.py

clean:
	rm -rf $(VENV) $(TEST_VENV) outputs multirun .pytest_cache
