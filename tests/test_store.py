"""The store layer in-process: atomic creation of a SQLite store, the check of an existing
one (damaged, unfinished, read-only, not a store), tracking servers that do not answer,
file stores, session names, and the client's translation of store faults.

Every fault must be a :class:`TrackingError` (a ``UserError``: one paragraph, no
traceback) naming the setting to change, and must leave the store usable.

Read-only cases: the tests may run as root, whom ``chmod`` does not stop. As root the
file or directory is also made immutable (``chattr +i``), which stops root too; where that
is not possible those tests are skipped. A read-only *filesystem* needs a mount, so it is
tested in ``tests/e2e/test_store_faults.py`` (a private mount namespace).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import read_only

from lret_runner import cli
from lret_runner.errors import ConfigError, SessionError, TrackingError
from lret_runner.tracking import MlflowTracker
from lret_runner.tracking import store as S
from lret_runner.tracking.sessions import NAME_MAX_CHARS, check_name
from lret_runner.tracking.store import RetryingClient, connect

SETTING = "tracking.tracking_uri"
ENV = "MLFLOW_TRACKING_URI"


def uri_of(db: Path) -> str:
    return f"sqlite:///{db}"


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as con:
        return con.execute("PRAGMA integrity_check").fetchone()[0]


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as con:
        return {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def schema_version(db: Path) -> list[str]:
    with sqlite3.connect(db) as con:
        return [v for (v,) in con.execute("SELECT version_num FROM alembic_version")]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if S.CREATING in p.name)


def assert_complete(db: Path) -> None:
    """A whole store: at the head schema, no migration leftovers, intact, Default in it."""
    assert integrity(db) == "ok"
    assert schema_version(db) == [S._head_revision()]
    assert not [t for t in tables(db) if t.startswith("_alembic_tmp_")]
    assert leftovers(db.parent) == []
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT name FROM experiments").fetchall() == [("Default",)]


def fault(exc: pytest.ExceptionInfo[TrackingError], *fragments: str) -> str:
    """The message: one paragraph naming the setting (and ``fragments``)."""
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message, message
    for fragment in (SETTING, ENV, *fragments):
        assert fragment in message, message
    return message


@pytest.fixture
def db(fresh_store: Path) -> Path:
    """A complete store of this test's own, with no runs."""
    return fresh_store


def add_run(db: Path, session: str = "kept") -> str:
    """A session with one run in the store (the data a repair must never drop)."""
    client = connect(uri_of(db))
    experiment_id = client.create_experiment(session)
    return str(client.create_run(experiment_id).info.run_id)


# ---------------------------------------------------------------- atomic creation


def test_a_new_store_is_created_complete(tmp_path: Path) -> None:
    db = tmp_path / "new" / "mlflow.db"
    client = connect(uri_of(db))
    assert_complete(db)
    assert client.search_experiments()[0].name == "Default"


def _halfway(then: BaseException):
    """Instead of MLflow's migrations: half of them, then ``then`` (a creator dying)."""

    def upgrade(engine) -> None:
        from alembic import command
        from alembic.script import ScriptDirectory
        from mlflow.store.db.utils import _get_alembic_config

        config = _get_alembic_config(str(engine.url))
        script = ScriptDirectory.from_config(config)
        revisions = [r.revision for r in script.walk_revisions("base", "heads")][::-1]
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revisions[len(revisions) // 2])
        raise then

    return upgrade


@pytest.mark.parametrize(
    "death",
    [KeyboardInterrupt(), sqlite3.OperationalError("database or disk is full")],
    ids=["interrupted", "failed"],
)
def test_a_creation_that_dies_mid_migration_leaves_nothing(tmp_path: Path, monkeypatch, death):
    import mlflow.store.db.utils as db_utils

    db = tmp_path / "mlruns" / "mlflow.db"
    monkeypatch.setattr(db_utils, "_upgrade_db", _halfway(death))
    if isinstance(death, KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):
            connect(uri_of(db))
    else:
        with pytest.raises(TrackingError) as exc:
            connect(uri_of(db))
        fault(exc, "cannot create the tracking store", "disk is full")
    assert not db.exists()  # nothing half-made where the store belongs
    assert leftovers(db.parent) == []
    monkeypatch.undo()
    connect(uri_of(db))
    assert_complete(db)


def test_a_killed_creators_temporary_file_is_removed(tmp_path: Path) -> None:
    db = tmp_path / "mlruns" / "mlflow.db"
    db.parent.mkdir()
    for name in ("mlflow.db.creating-999999", "mlflow.db.creating-999999-journal"):
        (db.parent / name).write_bytes(os.urandom(4096))
    connect(uri_of(db))
    assert_complete(db)


def _migrating(db: Path) -> bool:
    """Whether a creator has started writing the schema into its temporary file."""
    try:
        return any(p.stat().st_size > 0 for p in db.parent.glob(f"{db.name}{S.CREATING}*"))
    except OSError:
        return False


def test_a_killed_creator_leaves_no_store_and_the_next_one_succeeds(tmp_path: Path) -> None:
    """A real creator killed with SIGKILL while it migrates (the lock dies with it)."""
    import sys

    db = tmp_path / "mlruns" / "mlflow.db"
    code = "import sys; from lret_runner.tracking.store import connect; connect(sys.argv[1])"
    proc = subprocess.Popen([sys.executable, "-c", code, uri_of(db)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not _migrating(db) and time.monotonic() < deadline:
        assert proc.poll() is None, "the creator ended before creating anything"
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    assert not db.exists()
    connect(uri_of(db))
    assert_complete(db)


# ---------------------------------------------------------------- unfinished stores


def _legacy_half_made(db: Path, monkeypatch) -> None:
    """What older versions left: MLflow creating the schema in place, interrupted."""
    import mlflow.store.db.utils as db_utils
    from mlflow import MlflowClient

    with monkeypatch.context() as m:
        m.setattr(db_utils, "_upgrade_db", _halfway(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            MlflowClient(uri_of(db)).search_experiments()
    assert db.exists() and "alembic_version" in tables(db)


def _older_schema(db: Path) -> None:
    with sqlite3.connect(db) as con:
        con.execute("UPDATE alembic_version SET version_num = '0584bdc529eb'")


def _migration_leftover(db: Path) -> None:
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE _alembic_tmp_runs (run_uuid VARCHAR(32))")


def _no_version(db: Path) -> None:
    with sqlite3.connect(db) as con:
        con.execute("DROP TABLE alembic_version")


def _empty_file(db: Path) -> None:
    db.write_bytes(b"")


UNFINISHED = {
    "older-schema": _older_schema,
    "migration-leftover": _migration_leftover,
    "no-schema-version": _no_version,
    "empty-file": _empty_file,
}


def test_a_store_left_half_migrated_in_place_is_recreated(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "mlruns" / "mlflow.db"
    _legacy_half_made(db, monkeypatch)
    with pytest.raises(TrackingError) as exc:  # a reader leaves it to the next run
        connect(uri_of(db), create=False)
    fault(exc, "next run", "recreates it")
    connect(uri_of(db))
    assert_complete(db)
    MlflowTracker(uri_of(db)).start_run("after-repair")


@pytest.mark.parametrize("damage", UNFINISHED.values(), ids=UNFINISHED.keys())
def test_an_unfinished_store_without_runs_is_recreated(db: Path, damage) -> None:
    damage(db)
    connect(uri_of(db))
    assert_complete(db)


@pytest.mark.parametrize(
    "damage", [_older_schema, _migration_leftover, _no_version], ids=list(UNFINISHED)[:3]
)
def test_an_unfinished_store_with_runs_is_left_alone(db: Path, damage) -> None:
    run_id = add_run(db)
    damage(db)
    before = db.read_bytes()
    with pytest.raises(TrackingError) as exc:
        connect(uri_of(db))
    fault(exc, str(db), "holds runs or sessions", "mlflow db upgrade", "move it away")
    assert db.read_bytes() == before
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT run_uuid FROM runs").fetchall() == [(run_id,)]


def test_a_store_of_a_newer_mlflow_is_left_alone(db: Path) -> None:
    with sqlite3.connect(db) as con:
        con.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    before = db.read_bytes()
    with pytest.raises(TrackingError) as exc:
        connect(uri_of(db))
    fault(exc, "newer MLflow", "ffffffffffff")
    assert db.read_bytes() == before


def test_a_sqlite_database_that_is_not_a_store_is_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(TrackingError) as exc:
        connect(uri_of(db))
    fault(exc, "not an MLflow store")
    assert tables(db) == {"users"}


# ---------------------------------------------------------------- store faults


@pytest.mark.parametrize("create", [True, False], ids=["writer", "reader"])
def test_a_corrupt_database_file(tmp_path: Path, create: bool) -> None:
    db = tmp_path / "mlruns" / "mlflow.db"
    db.parent.mkdir()
    garbage = os.urandom(20000)
    db.write_bytes(garbage)
    with pytest.raises(TrackingError) as exc:
        connect(uri_of(db), create=create)
    fault(exc, str(db), "not a usable SQLite database", "move it away")
    assert db.read_bytes() == garbage  # never overwritten: it may be someone's data


def test_a_database_path_through_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("a file")
    with pytest.raises(TrackingError) as exc:
        connect(uri_of(tmp_path / "file.txt" / "mlflow.db"))
    fault(exc, f"{tmp_path / 'file.txt'} is a file, not a directory")


def test_a_database_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(TrackingError) as exc:
        connect(uri_of(tmp_path))
    fault(exc, "is a directory", f"sqlite:///{tmp_path}/mlflow.db")


def test_a_new_store_in_a_read_only_directory(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    with read_only(directory):
        with pytest.raises(TrackingError) as exc:
            connect(uri_of(directory / "mlflow.db"))
        fault(exc, f"cannot write in {directory}", "writable")
        with pytest.raises(TrackingError) as exc:  # its missing subdirectory cannot be made
            connect(uri_of(directory / "sub" / "mlflow.db"))
        fault(exc, "cannot create the directory", "writable")
    assert list(directory.iterdir()) == []


def test_a_read_only_database(db: Path) -> None:
    with read_only(db):
        with pytest.raises(TrackingError) as exc:  # a writer is told at once
            connect(uri_of(db))
        fault(exc, str(db), "read-only", "attempt to write a readonly database")
        reader = connect(uri_of(db), create=False)  # reading it still works
        assert reader.search_experiments()[0].name == "Default"
        with pytest.raises(TrackingError) as exc:  # and a write through it is translated
            reader.create_experiment("x")
        fault(exc, "read-only")
        tracker = MlflowTracker(uri_of(db))
        with pytest.raises(TrackingError) as exc:
            tracker.start_run("s")
        fault(exc, "read-only")
    assert integrity(db) == "ok"
    S._forget_engine(uri_of(db))  # this process's pooled connection opened it read-only
    connect(uri_of(db)).create_experiment("writable again")


def test_a_read_only_store_directory_with_a_database(db: Path) -> None:
    with read_only(db.parent):
        with pytest.raises(TrackingError) as exc:
            connect(uri_of(db))
        fault(exc, str(db), "journal", "writable")
        assert connect(uri_of(db), create=False).search_experiments()
    assert integrity(db) == "ok"


def test_store_faults_reach_the_tracker_before_any_run(tmp_path: Path) -> None:
    db = tmp_path / "mlruns" / "mlflow.db"
    db.parent.mkdir()
    db.write_bytes(os.urandom(5000))
    with pytest.raises(TrackingError) as exc:
        MlflowTracker(uri_of(db)).start_run("s")
    fault(exc, "not a usable SQLite database")


def test_the_cli_names_its_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(os.urandom(5000))
    code = cli.main(["--tracking-uri", uri_of(db), "runs", "list"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert "--tracking-uri" in err and "not a usable SQLite database" in err


# ---------------------------------------------------------------- the client


class _Always:
    """A stand-in MLflow client whose every call raises ``exc``."""

    def __init__(self, exc: Exception) -> None:
        self.exc, self.calls = exc, 0

    def get_run(self, run_id: str) -> None:
        self.calls += 1
        raise self.exc


def test_a_store_that_stays_locked_is_a_tracking_error(monkeypatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)
    inner = _Always(sqlite3.OperationalError("database is locked"))
    with pytest.raises(TrackingError) as exc:
        RetryingClient(inner, "sqlite:////x/mlflow.db").get_run("r")
    assert inner.calls == S.RETRIES
    assert "stayed locked" in str(exc.value)


def test_other_errors_pass_through_the_client() -> None:
    from mlflow.exceptions import MlflowException

    for error in (MlflowException("Run 'r' not found"), OSError("artifact dir"), KeyError("k")):
        inner = _Always(error)
        with pytest.raises(type(error)) as exc:
            RetryingClient(inner, "sqlite:////x/mlflow.db").get_run("r")
        assert exc.value is error and inner.calls == 1


# ---------------------------------------------------------------- tracking servers


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_fails_at_once() -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(TrackingError) as exc:
        connect(uri, timeout_seconds=10)
    assert time.monotonic() - started < 5  # MLflow alone retries for over four minutes
    fault(exc, uri, "unreachable", "connection refused", "tracking.timeout_seconds=10")


def test_a_server_that_never_answers_fails_after_the_timeout() -> None:
    import socket

    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(TrackingError) as exc:
            MlflowTracker(uri, timeout_seconds=1).start_run("s")
        elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 5, elapsed
    fault(exc, uri, "no answer within 1 s", "tracking.timeout_seconds=1")


def test_a_server_that_is_not_ready_fails_at_once() -> None:
    class Unavailable(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        started = time.monotonic()
        with pytest.raises(TrackingError) as exc:
            connect(uri)
        assert time.monotonic() - started < 5
        fault(exc, uri, "HTTP 503")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("value", [0, -1, float("inf")])
def test_the_timeout_must_be_positive(value: float) -> None:
    with pytest.raises(ConfigError, match="tracking.timeout_seconds"):
        connect("http://127.0.0.1:1", timeout_seconds=value)


# ---------------------------------------------------------------- file stores


@pytest.mark.parametrize("kind", ["file-uri", "plain-path"])
def test_a_file_store_is_refused_with_the_fix(tmp_path: Path, monkeypatch, kind: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = (tmp_path / "mlruns").as_uri() if kind == "file-uri" else "./mlruns"
    with pytest.raises(TrackingError) as exc:
        connect(uri)
    fault(exc, "file store", f"sqlite:///{tmp_path}/mlruns/mlflow.db", "MLFLOW_ALLOW_FILE_STORE")
    assert not (tmp_path / "mlruns").exists()


def test_a_file_store_is_allowed_when_mlflow_is_told_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    connect("./mlruns").search_experiments()


# ---------------------------------------------------------------- session names


@pytest.mark.parametrize("name", ["", "   ", "x" * 600], ids=["empty", "blank", "600-chars"])
def test_an_invalid_session_name_is_refused_before_it_is_written(db: Path, name: str) -> None:
    tracker = MlflowTracker(uri_of(db))
    with pytest.raises(SessionError) as exc:
        tracker.start_run(name)
    message = str(exc.value)
    assert "session.name" in message and f"at most {NAME_MAX_CHARS} characters" in message
    assert "non-empty" in message
    with sqlite3.connect(db) as con:  # no session (experiment) and no run
        assert con.execute("SELECT name FROM experiments").fetchall() == [("Default",)]
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)


def test_the_longest_session_name_is_accepted() -> None:
    assert check_name("x" * NAME_MAX_CHARS) == "x" * NAME_MAX_CHARS


def test_a_store_deleted_during_a_run_is_not_called_read_only(tmp_path: Path) -> None:
    """SQLite reports writes to a database whose file was removed as "attempt to write a
    readonly database": the message says the store was deleted, not that it is read-only."""
    import sqlite3

    from lret_runner.tracking.store import _fault

    gone = tmp_path / "mlruns" / "mlflow.db"  # never created: as if deleted
    exc = sqlite3.OperationalError("attempt to write a readonly database")
    message = _fault(exc, f"sqlite:///{gone}")
    assert message is not None and "was deleted while this run was using it" in message
    assert "read-only" not in message
    gone.parent.mkdir()
    gone.write_bytes(b"")  # present: the read-only advice stands
    assert "it is read-only" in (_fault(exc, f"sqlite:///{gone}") or "")
