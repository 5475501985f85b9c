# lret_runner: the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
TEST_VENV ?= .venv-test
PY := $(VENV)/bin/python
PORT ?= 5000

.PHONY: demo test test-slow venv ui bench lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) benchmarks/bench_engines.py --sizes 6 --depth 10

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
	$(PY) benchmarks/bench_engines.py

clean:
	rm -rf $(VENV) $(TEST_VENV) outputs multirun .pytest_cache
