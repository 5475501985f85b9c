"""Everything collected under tests/e2e/ is marked ``e2e``: ``make test-fast`` deselects
it with ``-m "not e2e and not slow"``; ``make test`` (CI) runs it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import sqlite_uri

E2E_DIR = Path(__file__).resolve().parent


# tryfirst: the mark must be on the items before ``-m`` deselects by it
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:  # the hook sees the whole session's items, not only this directory's
        if item.path.resolve().is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


@dataclass
class TrackingServer:
    """A real ``mlflow server`` on loopback (its own SQLite store and artifact folder)."""

    uri: str  # http://127.0.0.1:PORT, what tracking.uri is set to
    root: Path  # holds mlflow.db, artifacts/ and server.log
    env: dict[str, str]  # extra environment the server was started with

    @property
    def log(self) -> str:
        return (self.root / "server.log").read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_tracking_server(
    root: Path, artifacts: str | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], TrackingServer]:
    """``mlflow server`` in its own process group (it leaves huey consumers behind
    otherwise), waited for until ``/health`` answers (about 20 s)."""
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    log = open(root / "server.log", "wb")  # noqa: SIM115 - the server writes it while it runs
    proc = subprocess.Popen(
        [
            str(mlflow), "server",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", artifacts or str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    server = TrackingServer(f"http://127.0.0.1:{port}", root, dict(env or {}))
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{server.uri}/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc, server
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process_group(proc)
            pytest.fail(f"mlflow server did not start:\n{server.log[-3000:]}")
        time.sleep(0.5)


def stop_process_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    """One real MLflow tracking server for the session's tests (local artifact folder)."""
    proc, server = start_tracking_server(tmp_path_factory.mktemp("tracking-server"))
    try:
        yield server
    finally:
        stop_process_group(proc)


# ---------------------------------------------------------------- sweeps in a launch directory
class Sweep:
    """A launch directory with its own SQLite store (``mlruns/mlflow.db``, the default of the
    conftest runners); runs ``python -m lret_runner -m ...`` there and reads the store back."""

    ENV = {"LRET_BATCH_RUN_ID": None}  # in case the tests themselves run inside a sweep

    def __init__(self, root: Path, template: Path | None, run_cli: Any, start_cli: Any) -> None:
        self.root = root
        self.db = root / "mlruns" / "mlflow.db"
        if template is not None:
            self.db.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template, self.db)
        self.uri = sqlite_uri(root)
        self._run_cli, self._start_cli = run_cli, start_cli
        self._client: Any = None

    def run(self, *overrides: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self._run_cli(["-m", *overrides], self.root, env=self.ENV, timeout=timeout)

    def ok(self, *overrides: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        out = self.run(*overrides, timeout=timeout)
        assert out.returncode == 0, f"exit {out.returncode}\n{out.stderr[-4000:]}"
        return out

    def popen(self, *overrides: str) -> subprocess.Popen[str]:
        return self._start_cli(["-m", *overrides], self.root, env=self.ENV)

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def runs(self) -> list[Any]:
        ids = [e.experiment_id for e in self.client.search_experiments()]
        return list(self.client.search_runs(ids, max_results=10000)) if ids else []

    def batches(self) -> list[Any]:
        """The batch parent runs, oldest first."""
        runs = [r for r in self.runs() if r.data.tags.get("lret.batch") == "true"]
        return sorted(runs, key=lambda r: r.info.start_time)

    def children(self, parent: Any) -> list[Any]:
        pid = parent.info.run_id
        kids = [r for r in self.runs() if r.data.tags.get("mlflow.parentRunId") == pid]
        return sorted(kids, key=lambda r: int(r.data.tags["job_num"]))

    def artifact_names(self, run_id: str, path: str | None = None) -> set[str]:
        return {Path(a.path).name for a in self.client.list_artifacts(run_id, path)}

    def artifact_text(self, run_id: str, path: str) -> str:
        dst = self.root / "downloads" / run_id
        dst.mkdir(parents=True, exist_ok=True)
        return Path(self.client.download_artifacts(run_id, path, str(dst))).read_text()


@pytest.fixture
def sweep(tmp_path: Path, empty_store: Path, run_cli: Any, start_cli: Any) -> Sweep:
    return Sweep(tmp_path, empty_store, run_cli, start_cli)
