# lret_runner: the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 5000
HOST ?= 127.0.0.1
RAY_PORT ?= 6379
IMAGE ?= lret-runner:latest
# what `make venv` and `make test` install: the tests, the cloud clients, Ray and qsim
EXTRAS ?= test,cloud,ray,trajectories

# `make test` and `make test-core` build their venv from scratch with $(PYTHON), one per
# interpreter version under .venv-test/ (.venv-test/3.11, .venv-test/3.13, ...), so
# `make test-core PYTHON=python3.13` leaves the 3.11 one alone. TEST_VENV=DIR overrides it.
PYVER = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
TEST_VENV ?= .venv-test/$(PYVER)

# the fast numerical core: what `make test-core` runs on every supported interpreter
CORE_TESTS := tests/test_simulators.py tests/test_metrics.py tests/test_circuits.py \
	tests/test_noise.py tests/test_config.py tests/test_experiment.py tests/test_qasm.py \
	tests/test_dynamic.py

.PHONY: demo test test-fast test-core test-venv test-slow venv ui bench clean \
	tracking-server slurm-up slurm-down ray-up ray-down image

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
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
	$(TEST_VENV)/bin/python -m pip install -q -e ".[$(EXTRAS)]"

# What CI runs on a clean clone: the default suite (unit + e2e, not slow) in a fresh venv.
# matplotlib's font cache lives in the venv: a shared one names the fonts of venvs since
# deleted (every rebuilt test venv) and warns about missing fonts on every plot
test: test-venv
	MPLCONFIGDIR=$(abspath $(TEST_VENV))/.matplotlib $(TEST_VENV)/bin/python -m pytest -q -rs --durations=20

# The edit loop: unit tests only, in the warm dev venv (no reinstall).
test-fast: venv
	$(PY) -m pytest -q -m "not e2e and not slow"

# Another interpreter (make test-core PYTHON=python3.13): a fresh venv, the fast core tests,
# and the quickstart run once from a temporary directory (no mlruns/ or outputs/ here).
test-core: EXTRAS = test
test-core: test-venv
	$(TEST_VENV)/bin/python -m pytest -q -m "not e2e and not slow" $(CORE_TESTS)
	py="$(abspath $(TEST_VENV))/bin/python" && tmp="$$(mktemp -d)" && \
		trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && OPENBLAS_NUM_THREADS=1 \
		"$$py" -m lret_runner +experiment=quickstart run.quiet=true tracking=none && \
		echo "quickstart ran on $$("$$py" -V)"

# An MLflow tracking server on the embedded store for a small team (tracking=server):
# http://$(HOST):$(PORT), artifacts proxied from mlruns/artifacts. HOST=0.0.0.0 serves the
# network (the jobs' machines); put it behind your authentication first.
tracking-server: venv
	$(VENV)/bin/mlflow server --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db \
		--artifacts-destination $(CURDIR)/mlruns/artifacts --host $(HOST) --port $(PORT)

# A one-node Slurm cluster on this machine (root: apt-get, the daemons), and its end.
slurm-up:
	bash scripts/slurm-up.sh
slurm-down:
	bash scripts/slurm-down.sh

# A Ray cluster on loopback with this venv's ray (cloud=ray finds it), and its end.
ray-up: venv
	RAY=$(VENV)/bin/ray RAY_PORT=$(RAY_PORT) bash scripts/ray-up.sh
ray-down: venv
	$(VENV)/bin/ray stop

# The image every remote job runs (cloud=k8s, aws_batch, gcp_batch); needs a Docker engine.
image:
	docker build -t $(IMAGE) .

test-slow: venv
	$(PY) -m pytest -q -m slow

bench: venv
	$(PY) benchmarks/bench_engines.py --large 20
	$(PY) benchmarks/bench_dense.py
	$(PY) benchmarks/bench_accuracy.py
	$(PY) benchmarks/bench_lret.py --baseline 12049ae
	$(PY) benchmarks/bench_overhead.py
	$(PY) benchmarks/bench_sweep.py
	$(PY) benchmarks/bench_threads.py
	$(PY) benchmarks/bench_ideal.py
	$(PY) benchmarks/bench_branches.py
	$(PY) benchmarks/bench_trajectories.py
	$(PY) benchmarks/bench_optimize.py
	$(PY) benchmarks/bench_api.py
	$(PY) benchmarks/bench_launchers.py

clean:
	rm -rf $(VENV) .venv-test outputs multirun .pytest_cache
