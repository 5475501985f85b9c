"""Store faults through the real ``python -m lret_runner``: a damaged, unreachable,
read-only or misnamed store, invalid session names, and a first run killed or
interrupted while it creates a new store. Each run must end with one paragraph naming
the setting (exit 1), never a traceback, and leave the store usable: a later run succeeds
and ``PRAGMA integrity_check`` says ok.

Read-only stores: as root ``chmod`` stops nothing, so the file or directory is also made
immutable (``chattr +i``); a read-only filesystem is a read-only bind mount in a private
mount namespace (``unshare -m``) of the run alone. Tests skip where neither is possible.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import read_only, sqlite_uri
from mlflow import MlflowClient
from mlflow.entities import ViewType

TINY = ["circuit.n_qubits=2", "circuit.depth=2", "run.quiet=true"]
SETTING = "tracking.tracking_uri"
ENV = "MLFLOW_TRACKING_URI"


def store_of(cwd: Path) -> Path:
    return Path(sqlite_uri(cwd).removeprefix("sqlite:///"))


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as con:
        return con.execute("PRAGMA integrity_check").fetchone()[0]


def statuses(db: Path) -> list[str]:
    client = MlflowClient(f"sqlite:///{db}")
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = client.search_runs(ids, run_view_type=ViewType.ALL) if ids else []
    return sorted(r.info.status for r in runs)


def creating(directory: Path) -> list[Path]:
    return sorted(directory.glob("mlflow.db.creating-*")) if directory.exists() else []


def refused(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 1, no traceback, the last stderr line names ``fragments``."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("lret_runner: "), out[-3000:]
    for fragment in fragments:
        assert fragment in line, line
    return line


def recovers(run_cli: Any, cwd: Path, runs_before: int = 0) -> None:
    """A later run in the same place succeeds and the store is whole."""
    proc = run_cli(TINY, cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    db = store_of(cwd)
    assert integrity(db) == "ok"
    assert statuses(db).count("FINISHED") == runs_before + 1
    assert creating(db.parent) == []


READ_ONLY_MOUNT = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'


def run_on_read_only_fs(directory: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The run with ``directory`` a read-only filesystem (for this process only)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", ENV: sqlite_uri(cwd)}
    command = [sys.executable, "-m", "lret_runner", *args]
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", READ_ONLY_MOUNT, "sh", str(directory), *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def read_only_mounts(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("rofs")
    try:
        probe = subprocess.run(
            ["unshare", "-m", "sh", "-c", READ_ONLY_MOUNT, "sh", str(directory), "true"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("unshare is unavailable: no private read-only mount")
    if probe.returncode != 0:
        pytest.skip(f"no private read-only mount here: {probe.stderr.decode()[-300:]}")


# ---------------------------------------------------------------- a damaged or misnamed store


def test_a_corrupt_database(run_cli, tmp_path: Path) -> None:
    db = store_of(tmp_path)
    db.parent.mkdir()
    garbage = os.urandom(20000)
    db.write_bytes(garbage)
    line = refused(run_cli(TINY, tmp_path), SETTING, ENV, str(db), "not a usable SQLite")
    assert "move it away" in line
    assert db.read_bytes() == garbage  # the user's file is not touched
    db.unlink()
    recovers(run_cli, tmp_path)


def test_a_database_path_through_a_regular_file(run_cli, tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("a file")
    uri = f"sqlite:///{tmp_path}/file.txt/mlflow.db"
    refused(
        run_cli([*TINY, f"tracking.tracking_uri={uri}"], tmp_path),
        SETTING,
        f"{tmp_path / 'file.txt'} is a file, not a directory",
    )
    assert (tmp_path / "file.txt").read_text() == "a file"


@pytest.mark.parametrize("kind", ["file-uri", "plain-path"])
def test_a_file_store(run_cli, tmp_path: Path, kind: str) -> None:
    if kind == "file-uri":
        args, env = [*TINY, f"tracking.tracking_uri={(tmp_path / 'mlruns').as_uri()}"], None
    else:
        args, env = TINY, {ENV: "./mlruns", "MLFLOW_ALLOW_FILE_STORE": None}
    refused(
        run_cli(args, tmp_path, env=env),
        SETTING,
        ENV,
        f"sqlite:///{tmp_path}/mlruns/mlflow.db",
        "MLFLOW_ALLOW_FILE_STORE=true",
    )
    assert not (tmp_path / "mlruns").exists()


def test_an_unreachable_server_fails_within_the_timeout(run_cli, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends
    uri = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    proc = run_cli([*TINY, f"tracking.tracking_uri={uri}", "tracking.timeout_seconds=3"], tmp_path)
    elapsed = time.monotonic() - started
    refused(proc, uri, SETTING, ENV, "tracking.timeout_seconds=3", "unreachable")
    assert elapsed < 30, elapsed  # process start included; MLflow alone takes over 4 minutes


# ---------------------------------------------------------------- read-only stores


def test_a_read_only_database(run_cli, tmp_path: Path) -> None:
    recovers(run_cli, tmp_path)
    db = store_of(tmp_path)
    with read_only(db):
        refused(run_cli(TINY, tmp_path), SETTING, ENV, str(db), "read-only")
    assert integrity(db) == "ok"
    assert statuses(db) == ["FINISHED"]  # the refused run left nothing behind
    recovers(run_cli, tmp_path, runs_before=1)


def test_a_new_store_in_a_read_only_directory(run_cli, tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    uri = f"sqlite:///{directory}/mlflow.db"
    with read_only(directory):
        refused(
            run_cli([*TINY, f"tracking.tracking_uri={uri}"], tmp_path),
            SETTING,
            f"cannot write in {directory}",
        )
    assert list(directory.iterdir()) == []
    proc = run_cli([*TINY, f"tracking.tracking_uri={uri}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert integrity(directory / "mlflow.db") == "ok"


@pytest.mark.usefixtures("read_only_mounts")
def test_a_store_on_a_read_only_filesystem(run_cli, tmp_path: Path) -> None:
    recovers(run_cli, tmp_path)
    db = store_of(tmp_path)
    refused(run_on_read_only_fs(db.parent, TINY, tmp_path), SETTING, str(db), "read-only")
    assert integrity(db) == "ok" and statuses(db) == ["FINISHED"]
    new = tmp_path / "empty"
    new.mkdir()
    proc = run_on_read_only_fs(
        new, [*TINY, f"tracking.tracking_uri=sqlite:///{new}/mlflow.db"], tmp_path
    )
    refused(proc, SETTING, f"cannot write in {new}", "Read-only file system")
    assert list(new.iterdir()) == []


# ---------------------------------------------------------------- session names


@pytest.mark.parametrize("name", ["", "x" * 600], ids=["empty", "600-chars"])
def test_an_invalid_session_name(run_cli, tmp_path: Path, name: str) -> None:
    line = refused(run_cli([*TINY, f"session.name={name}"], tmp_path), "session.name")
    assert "non-empty text of at most 500 characters" in line
    db = store_of(tmp_path)
    if db.exists():  # nothing was written into it
        assert integrity(db) == "ok" and statuses(db) == []
        assert [e.name for e in MlflowClient(f"sqlite:///{db}").search_experiments()] == ["Default"]
    recovers(run_cli, tmp_path)


# ---------------------------------------------------------------- a first run stopped mid-creation


def _start_creating(start_cli: Any, cwd: Path) -> subprocess.Popen[str]:
    """A first run, returned as soon as it writes the new store's schema."""
    proc = start_cli(TINY, cwd)
    directory = store_of(cwd).parent
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before creating the store\n{err}")
        try:
            if any(p.stat().st_size > 0 for p in creating(directory)):
                return proc
        except OSError:  # it was renamed meanwhile
            pass
        time.sleep(0.005)
    proc.kill()
    pytest.fail("the store was not being created")


def test_a_first_run_killed_while_it_creates_the_store(run_cli, start_cli, tmp_path) -> None:
    proc = _start_creating(start_cli, tmp_path)
    proc.kill()
    proc.communicate()
    db = store_of(tmp_path)
    assert not db.exists()  # no half-made store: only the temporary file is left
    assert creating(db.parent)
    recovers(run_cli, tmp_path)  # and the next run removes it


@pytest.mark.parametrize("times", [1, 2], ids=["once", "twice"])
def test_a_first_run_interrupted_while_it_creates_the_store(
    run_cli, start_cli, tmp_path, times: int
) -> None:
    """One Ctrl-C is held back until the run exists (it ends KILLED); a second one
    stops the creation at once (nothing recorded, no store)."""
    proc = _start_creating(start_cli, tmp_path)
    for _ in range(times):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in out + err
    assert "interrupted (Ctrl-C)" in err.strip().splitlines()[-1]
    db = store_of(tmp_path)
    assert creating(db.parent) == []
    if times == 1:
        assert integrity(db) == "ok" and statuses(db) == ["KILLED"]
        recovers(run_cli, tmp_path)
    else:
        assert "nothing recorded" in err and not db.exists()
        recovers(run_cli, tmp_path)


def test_first_runs_racing_to_create_the_store(start_cli, tmp_path: Path) -> None:
    procs = [start_cli(TINY, tmp_path) for _ in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        assert "Traceback" not in out + err
    db = store_of(tmp_path)
    assert integrity(db) == "ok" and statuses(db) == ["FINISHED"] * 3
    assert creating(db.parent) == []
