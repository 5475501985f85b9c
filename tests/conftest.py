"""Shared fixtures: composing the config in-process, temporary stores, and runners for the
real ``python -m lret_runner`` CLI (subprocesses, for the e2e tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "lret_runner" / "conf"
CLI = [sys.executable, "-m", "lret_runner"]


def sqlite_uri(directory: Path) -> str:
    """The embedded-store URI the runner would use with ``directory`` as its launch dir."""
    return f"sqlite:///{Path(directory).resolve()}/mlruns/mlflow.db"


def _cli_env(cwd: Path, env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment of a CLI subprocess: one BLAS thread, a temporary SQLite store
    under ``cwd`` unless ``env`` says otherwise (a ``None`` value unsets a variable)."""
    full = dict(os.environ)
    for var in (
        "HYDRA_FULL_ERROR",
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_RUN_ID",
    ):
        full.pop(var, None)  # the user's shell must not change what the tests see
    full["OPENBLAS_NUM_THREADS"] = "1"
    full["MLFLOW_TRACKING_URI"] = sqlite_uri(cwd)
    for key, value in (env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return full


def _default_sigint() -> None:
    # A child started from a non-interactive shell may inherit SIGINT as ignored;
    # Python then never raises KeyboardInterrupt. Give the child the default disposition.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# a run record as result.json holds it, for the table and plot tests
SAMPLE_RESULT = {
    "run_id": "0123456789abcdef0123456789abcdef",
    "status": "FINISHED",
    "backend_used": "lret",
    "n_qubits": 4,
    "depth": 12,
    "simulation_time_seconds": 0.12345,
    "final_rank": 6,
    "largest_rank": 9,
    "widest_factor": 18,
    "rank_history": [1, 2, 4, 9, 6],
    "memory_used_mb": 1.5,
    "truncation_error": 3.2e-7,
    "exact_fidelity": 0.987654321,
    "exact_trace_distance": None,
    "purity": 0.75,
    "counts": {format(i, "04b"): 64 - 3 * i for i in range(16)} | {"1111": 1},
    "expectation_values": {},
    "error": None,
    "started_at": "2024-05-01T12:00:00+00:00",
    "completed_at": "2024-05-01T12:00:01+00:00",
}


RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def conf_dir() -> Path:
    """Absolute path of the package's conf/ directory."""
    return CONF_DIR


def compose_config(overrides: Sequence[str] = (), hydra: bool = False) -> DictConfig:
    """The config ``python -m lret_runner OVERRIDES`` would run (composed in-process;
    ``hydra``: with Hydra's own ``hydra`` node, as a sweep's launching process sees it)."""
    from hydra import compose, initialize_config_module

    from lret_runner.config import CONF_PACKAGE, register_configs

    register_configs()
    with initialize_config_module(config_module=CONF_PACKAGE):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)


@pytest.fixture
def compose() -> Callable[..., DictConfig]:
    """``compose(overrides)``: the composed config, as a run would get it."""
    return compose_config


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new store's database file, made once per session (that takes seconds); tests copy
    it (``fresh_store``) instead of creating their own."""
    from lret_runner.tracking.store import connect

    db = tmp_path_factory.mktemp("empty_store") / "mlflow.db"
    connect(f"sqlite:///{db}")
    return db


@pytest.fixture
def fresh_store(empty_store: Path, tmp_path: Path) -> Path:
    """A copy of the empty store at ``tmp_path/mlruns/mlflow.db`` (the runners' default)."""
    import shutil

    db = tmp_path / "mlruns" / "mlflow.db"
    db.parent.mkdir(exist_ok=True)
    shutil.copy(empty_store, db)
    return db


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    """A new SQLite MLflow store under ``tmp_path``."""
    return sqlite_uri(tmp_path)


@pytest.fixture(scope="session")
def run_cli() -> RunCli:
    """``run_cli(args, cwd, env=None, timeout=300)``: run the CLI in ``cwd`` and return the
    CompletedProcess (text stdout/stderr). MLFLOW_TRACKING_URI defaults to
    ``sqlite:///{cwd}/mlruns/mlflow.db``; pass ``env={"MLFLOW_TRACKING_URI": ...}`` to share
    a store, or ``None`` as a value to unset a variable."""

    def run(
        args: Sequence[str],
        cwd: Path,
        env: Mapping[str, str | None] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args],
            cwd=cwd,
            env=_cli_env(Path(cwd), env),
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_default_sigint,
        )

    return run


@pytest.fixture(scope="session")
def start_cli() -> Callable[..., subprocess.Popen[str]]:
    """``start_cli(args, cwd, env=None)``: like ``run_cli`` but returns the running Popen
    (stdout/stderr piped), for tests that signal the process."""

    def start(
        args: Sequence[str], cwd: Path, env: Mapping[str, str | None] | None = None
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CLI, *args],
            cwd=cwd,
            env=_cli_env(Path(cwd), env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_default_sigint,
        )

    return start


def _chattr(flag: str, path: Path) -> bool:
    try:
        done = subprocess.run(["chattr", flag, str(path)], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` (a file or a directory) read-only even for root (immutable), then restored."""
    mode = path.stat().st_mode
    path.chmod(0o555 if path.is_dir() else 0o444)
    immutable = False
    try:
        if os.geteuid() == 0:
            immutable = _chattr("+i", path)
            if not immutable:
                pytest.skip(
                    "running as root and chattr +i is unavailable: cannot make it read-only"
                )
        yield
    finally:
        if immutable:
            _chattr("-i", path)
        path.chmod(mode)


class ClientSpy:
    """A tracker's MLflow client, recording the names of the calls made through it."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.client, name)


def spy_on(tracker: Any) -> ClientSpy:
    """Route ``tracker``'s client calls through a :class:`ClientSpy`."""
    spy = ClientSpy(tracker.client)
    tracker._client = spy
    return spy
