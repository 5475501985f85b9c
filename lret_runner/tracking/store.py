"""The MLflow store: where it is, creating it once and atomically, checking it before use,
and a client that waits out SQLite locks and reports store faults as :class:`TrackingError`.

The embedded default is a SQLite store at ``<cwd>/mlruns/mlflow.db`` with artifacts
under ``<cwd>/mlruns/artifacts``; ``tracking.tracking_uri`` or ``MLFLOW_TRACKING_URI``
point elsewhere (a server, another file).

- **Creation is atomic.** A new SQLite store is made under a file lock beside it (parallel
  jobs race to create it) in a temporary file ``mlflow.db.creating-<pid>`` in the same
  directory, renamed into place only once its schema is complete. A creator that is
  interrupted removes its temporary file; one that is killed leaves it, and the next
  creator (holding the lock, so the owner is gone) removes it. Readers never see a
  half-made store.
- **An existing store is checked before MLflow opens it**: a file that is not a SQLite
  database, a schema left unfinished (older versions created stores in place, and an
  interrupted first run left them half-migrated) or made by a newer MLflow, and, for a
  writer, a store it cannot write, are each a :class:`TrackingError` saying what to do.
  An unfinished store that holds no runs and no experiment besides ``Default`` is
  recreated.
- **A tracking server is probed** with one short request, so an unreachable one fails
  within about ``tracking.timeout_seconds`` instead of after MLflow's minutes of retries
  (MLflow reads its retry settings from process-wide environment variables, so they
  cannot be set for one client).
- **File stores** (``file:`` URIs and plain paths) are refused with the fix, unless
  ``MLFLOW_ALLOW_FILE_STORE=true``.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lret_runner.errors import TrackingError, check_range

STORE_DIR = "mlruns"
RETRIES = 10  # attempts of a store call that found the SQLite database locked
CREATING = ".creating-"  # ``mlflow.db.creating-<pid>``: a store being created
SQLITE_WAIT_SECONDS = 30.0  # how long a check waits for another process's write lock
# the setting a user changes to point at another store (the runner's, the env var, the CLI's)
SETTING = "tracking.tracking_uri (or MLFLOW_TRACKING_URI; --tracking-uri for lret-runner)"
DATA_TABLES = ("runs", "registered_models", "logged_models", "trace_info")  # rows are data

_log = logging.getLogger(__name__)


def default_uri(root: Path | None = None) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else the embedded SQLite store under ``root/mlruns``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(root or Path.cwd()).resolve() / STORE_DIR / 'mlflow.db'}"


def redact(uri: str) -> str:
    """``uri`` with its password (``http://alice:secret@host``) shown as ``***``: what
    health answers, messages and logs may show."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:
        return uri
    if not password:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores)."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def default_artifact_location(uri: str) -> str | None:
    """``<store dir>/artifacts`` for an embedded SQLite store (None: the server decides)."""
    db = sqlite_path(uri)
    return (db.parent.absolute() / "artifacts").as_uri() if db is not None else None


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """A file lock beside a SQLite store (a no-op for other stores). A directory where the
    lock file cannot be made is a :class:`TrackingError`."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    from filelock import FileLock

    lock = FileLock(str(db.with_suffix(".lock")))
    try:
        lock.acquire()
    except OSError as exc:
        raise TrackingError(
            f"cannot write in {db.parent}, the directory of the tracking store {db} "
            f"({_reason(exc)}): make it writable, or set {SETTING} to "
            "sqlite:///<a writable directory>/mlflow.db"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def connect(uri: str, *, create: bool = True, timeout_seconds: float = 10.0) -> RetryingClient:
    """A client of the store at ``uri``, checked: every fault the user can fix is a
    :class:`TrackingError` naming the setting and what to do.

    With ``create`` (a writer) a missing SQLite store is created (atomically, under the
    lock) and the store must be writable; without it (a reader) a missing or unfinished
    store is an error and nothing is written (readers must not leave a stray ``mlruns/``
    behind). ``timeout_seconds`` bounds the wait for a tracking server's first answer.
    """
    timeout = check_range("tracking.timeout_seconds", timeout_seconds, 0, None, open_low=True)
    _quiet_mlflow_error_logs()
    scheme = _scheme(uri)
    db = sqlite_path(uri)
    if db is not None:
        _open_sqlite(uri, db, create)
    elif scheme in ("", "file"):
        _refuse_file_store(uri)
    elif scheme in ("http", "https"):
        _probe_server(uri, timeout)
    client = RetryingClient(_mlflow_client(uri), uri)
    try:
        client.search_experiments(max_results=1)  # opens (and checks) the store now
    except TrackingError:
        raise
    except Exception as exc:
        if not _is_store_error(exc):
            raise
        raise TrackingError(
            f"the tracking store {redact(uri)} cannot be used ({_reason(exc)}): check {SETTING}"
        ) from exc
    if create and db is not None:
        _check_writable(uri, db)
    return client


# ---------------------------------------------------------------- SQLite stores


@dataclass
class _State:
    """What the check of an existing SQLite store found."""

    problem: str | None = None  # None: a complete store
    hint: str = ""  # what to do about the problem
    empty: bool = False  # holds no runs and no experiment besides Default: may be recreated


def _open_sqlite(uri: str, db: Path, create: bool) -> None:
    """Check the store at ``db``, creating it or recreating an empty unfinished one."""
    _check_path(db)
    if not db.exists():
        if not create:
            raise TrackingError(
                f"no MLflow store at {db}: run an experiment first, or point "
                f"{SETTING} at an existing store"
            )
        _create(uri, db)
        return
    state = _inspect(uri, db)
    if state.problem is None:
        return
    if state.empty and create:
        with store_lock(uri):
            state = _inspect(uri, db)  # another process may have repaired it meanwhile
            if state.problem is None:
                return
            if state.empty:
                problem = state.problem
                _build(uri, db)
                _log.warning(
                    "recreated the tracking store %s: %s, and it held no runs", db, problem
                )
                return
    if state.empty:  # a reader: leave it to the next run
        state.hint = (
            "it holds no runs, so the next run (python -m lret_runner) recreates it; "
            f"or point {SETTING} at another store"
        )
    raise TrackingError(f"the tracking store {db} cannot be used: {state.problem}; {state.hint}")


def _check_path(db: Path) -> None:
    """The database path must be a file in a directory (or a directory to make)."""
    try:
        if db.is_dir():
            raise TrackingError(
                f"the tracking store {db} is a directory, not a database file: set {SETTING} "
                f"to sqlite:///{db.absolute()}/mlflow.db"
            )
        for parent in db.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise TrackingError(
                        f"the tracking store {db} cannot be made: {parent} is a file, not a "
                        f"directory; set {SETTING} to sqlite:///<a directory>/mlflow.db"
                    )
                break
    except OSError as exc:
        raise TrackingError(
            f"the tracking store {db} cannot be reached ({_reason(exc)}): fix the "
            f"permissions on its path, or set {SETTING} to another store"
        ) from exc


def _create(uri: str, db: Path) -> None:
    """A new store at ``db``, made under the lock (another process may be making it)."""
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(
            f"cannot create the directory {db.parent} of the tracking store {db} "
            f"({_reason(exc)}): set {SETTING} to sqlite:///<a writable directory>/mlflow.db"
        ) from exc
    with store_lock(uri):
        if not db.exists():  # else another process created it while this one waited
            _build(uri, db)


def _build(uri: str, db: Path) -> None:
    """Under the lock: a complete new store made beside ``db`` and renamed over it."""
    for leftover in db.parent.glob(f"{_glob_escape(db.name)}{CREATING}*"):
        leftover.unlink(missing_ok=True)  # a killed creator's (we hold the lock: it is gone)
    tmp = db.with_name(f"{db.name}{CREATING}{os.getpid()}")
    try:
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            _make_schema(tmp, default_artifact_location(uri))
            _fsync(tmp)
            for stale in (Path(f"{db}-journal"), Path(f"{db}-wal"), Path(f"{db}-shm")):
                stale.unlink(missing_ok=True)  # would be replayed into the new database
            os.replace(tmp, db)
            _forget_engine(uri)  # MLflow's engine for ``uri`` would still read the old file
        except Exception as exc:
            if not _is_store_error(exc):
                raise
            raise TrackingError(
                f"cannot create the tracking store {db} ({_reason(exc)}): make "
                f"{db.parent} writable (and free space), or set {SETTING} to "
                "sqlite:///<a writable directory>/mlflow.db"
            ) from exc
    except BaseException:  # interrupted or failed: leave nothing half-made behind
        for path in (tmp, Path(f"{tmp}-journal")):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
        raise
    _fsync(db.parent)


def _make_schema(path: Path, artifact_root: str | None) -> None:
    """MLflow's schema (all migrations) and its Default experiment in the file ``path``."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{path}"
    try:
        SqlAlchemyStore(uri, artifact_root or (path.parent / "artifacts").as_uri())
    finally:  # the file is about to be renamed
        _forget_engine(uri)


def _forget_engine(uri: str) -> None:
    """Close and drop the engine MLflow caches for ``uri`` (its connections stay open)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    engine = getattr(SqlAlchemyStore, "_engine_map", {}).pop(uri, None)
    if engine is not None:
        engine.dispose()


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _inspect(uri: str, db: Path) -> _State:
    """Whether the existing file ``db`` is a complete MLflow store (read-only checks)."""
    try:
        con = sqlite3.connect(str(db), timeout=SQLITE_WAIT_SECONDS, isolation_level=None)
        try:
            return _inspect_tables(uri, con)
        finally:
            con.close()
    except sqlite3.Error as exc:
        if _locked_db(exc):
            return _State()  # busy with another writer: it is in use, so it is a store
        if "unable to open" in str(exc).lower():
            raise TrackingError(
                f"cannot open the tracking store {db} ({_reason(exc)}): it and its "
                f"directory must be readable; fix the permissions, or set {SETTING} to "
                "another store"
            ) from exc
        raise TrackingError(
            f"the tracking store {db} is not a usable SQLite database ({_reason(exc)}): "
            "move it away or delete it (the next run then creates a new store there), "
            f"restore it from a backup, or set {SETTING} to another store"
        ) from exc


def _inspect_tables(uri: str, con: sqlite3.Connection) -> _State:
    tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return _State("it is an empty database (an interrupted creation?)", empty=True)
    if not tables & {"experiments", "runs", "alembic_version"}:
        return _State(
            "it is a SQLite database but not an MLflow store",
            f"set {SETTING} to sqlite:///<another path>/mlflow.db (the default is "
            "mlruns/mlflow.db in the launch directory)",
        )
    version: list[str] = []
    if "alembic_version" in tables:
        version = [v for (v,) in con.execute("SELECT version_num FROM alembic_version")]
    leftovers = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
    head = _head_revision()
    if version == [head] and not leftovers:
        return _State()
    import mlflow

    unknown = [v for v in version if not _known_revision(v)]
    if unknown:
        return _State(
            f"it was made by a newer MLflow (schema {unknown[0]}, unknown to MLflow "
            f"{mlflow.__version__})",
            f"upgrade MLflow (pip install -U mlflow), or set {SETTING} to another store",
        )
    if leftovers:
        problem = f"a schema migration was interrupted (leftover tables: {', '.join(leftovers)})"
    elif not version:
        problem = "its creation was interrupted (no schema version)"
    else:
        problem = (
            f"its schema is older than this MLflow's ({version[0]}, MLflow "
            f"{mlflow.__version__} expects {head}) or its creation was interrupted"
        )
    empty = not _holds_data(con, tables)
    return _State(
        problem,
        "it holds runs or sessions, so it is left as it is: back it up, then run "
        f"`mlflow db upgrade {redact(uri)}`, or move it away (the next run creates a new store "
        f"there), or set {SETTING} to another store",
        empty=empty,
    )


def _holds_data(con: sqlite3.Connection, tables: set[str]) -> bool:
    """Whether any run, model, trace or experiment besides Default is in the store."""
    try:
        for table in DATA_TABLES:
            if table in tables and con.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone():
                return True
        if "experiments" in tables:
            query = "SELECT 1 FROM experiments WHERE experiment_id != 0 LIMIT 1"
            return con.execute(query).fetchone() is not None
    except sqlite3.Error:
        return True  # unreadable: assume it matters
    return False


@functools.cache
def _head_revision() -> str:
    """The newest schema revision this MLflow knows (read from its migration scripts once
    per process: it is fixed for an installed MLflow, and reading it takes ~0.1 s)."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    return str(_get_latest_schema_revision())


@functools.cache
def _known_revision(revision: str) -> bool:
    """Whether this MLflow's migrations know ``revision`` (else a newer MLflow made it)."""
    try:
        from alembic.script import ScriptDirectory
        from mlflow.store.db.utils import _get_alembic_config

        ScriptDirectory.from_config(_get_alembic_config("")).get_revision(revision)
    except Exception:
        return False
    return True


def _check_writable(uri: str, db: Path) -> None:
    """A writer's store must take a write (rolled back; the journal is created too)."""
    try:
        con = sqlite3.connect(str(db), timeout=SQLITE_WAIT_SECONDS, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("CREATE TABLE lret_write_check (x)")
            con.execute("ROLLBACK")
        finally:
            con.close()
    except sqlite3.Error as exc:
        if _locked_db(exc):
            return  # another process is writing to it: it is writable
        raise TrackingError(
            _fault(exc, uri)
            or f"cannot write to the tracking store {db} ({_reason(exc)}): check {SETTING}"
        ) from exc


def _glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


# ---------------------------------------------------------------- other stores


def _scheme(uri: str) -> str:
    from urllib.parse import urlparse

    return urlparse(uri).scheme.lower()


def _refuse_file_store(uri: str) -> None:
    """MLflow 3 refuses file stores unless told otherwise: say what lret_runner uses."""
    try:
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
    except ImportError:  # an MLflow that still accepts file stores
        return
    if MLFLOW_ALLOW_FILE_STORE.get():
        return
    from urllib.parse import unquote, urlparse

    path = Path(unquote(urlparse(uri).path) if uri.lower().startswith("file:") else uri)
    raise TrackingError(
        f"the tracking URI {redact(uri)!r} is a file store (a directory of files), which MLflow 3 "
        f"refuses by default: lret_runner keeps runs in a SQLite database, so set {SETTING} "
        f"to sqlite:///{path.absolute()}/mlflow.db (unset, it is mlruns/mlflow.db in the "
        "launch directory) or to an http(s):// tracking server; to use the file store "
        "anyway, set MLFLOW_ALLOW_FILE_STORE=true (`mlflow migrate-filestore` moves its "
        "runs into a database)"
    )


def _probe_server(uri: str, timeout: float) -> None:
    """One request without retries: an unreachable server fails after ``timeout``."""
    import time

    from mlflow.tracking._tracking_service.utils import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    started = time.monotonic()
    try:
        response = http_request(
            get_default_host_creds(uri),
            "/api/2.0/mlflow/experiments/search",
            "GET",
            max_retries=0,
            backoff_factor=0,
            timeout=timeout,
            raise_on_status=False,
            params={"max_results": 1},
        )
    except Exception as exc:
        raise TrackingError(
            f"the tracking server {redact(uri)} is unreachable ({_network_reason(exc, timeout)}; "
            f"gave up after {time.monotonic() - started:.1f} s): start it, or correct "
            f"{SETTING} (a run waits tracking.timeout_seconds={timeout:g} for the answer)"
        ) from exc
    status = getattr(response, "status_code", 200)
    if status >= 500 or status == 429:
        raise TrackingError(
            f"the tracking server {redact(uri)} is not ready (it answered HTTP {status}): try "
            f"again later, or correct {SETTING}"
        )


def _network_reason(exc: BaseException, timeout: float) -> str:
    text = str(exc)
    lowered = text.lower()
    if "connection refused" in lowered:
        return "connection refused"
    if "timed out" in lowered or "timeout" in lowered:
        return f"no answer within {timeout:g} s"
    if "resolve" in lowered or "name or service not known" in lowered:
        return "unknown host"
    return _first_line(text, 200)


def _mlflow_client(uri: str) -> Any:
    from mlflow import MlflowClient

    try:
        return MlflowClient(tracking_uri=uri)
    except TrackingError:
        raise
    except Exception as exc:
        if not _is_store_error(exc) and not isinstance(exc, ImportError):
            raise
        raise TrackingError(
            f"the tracking URI {redact(uri)!r} cannot be used ({_reason(exc)}): set {SETTING} to "
            "sqlite:///<directory>/mlflow.db or an http(s):// tracking server"
        ) from exc


# ---------------------------------------------------------------- faults


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error SQLAlchemy wraps, and its causes."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        orig = getattr(e, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, e.__cause__, e.__context__]


def _is_store_error(exc: BaseException) -> bool:
    """An error of the store (MLflow, SQLAlchemy, SQLite, the filesystem, the network)."""
    for e in _chain(exc):
        module = type(e).__module__.split(".")[0]
        if isinstance(e, sqlite3.Error | OSError) or module in (
            "mlflow",
            "sqlalchemy",
            "alembic",
            "requests",
            "urllib3",
        ):
            return True
    return False


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _reason(exc: BaseException) -> str:
    """The short reason: SQLite's or the OS's message if there is one."""
    for e in _chain(exc):
        if isinstance(e, sqlite3.Error):
            return _first_line(str(e)) or type(e).__name__
        if isinstance(e, OSError) and e.strerror:
            return e.strerror
    text = str(getattr(exc, "message", "") or exc)
    if text.startswith("(") and ") " in text:  # "(sqlite3.OperationalError) ..."
        text = text.split(") ", 1)[1]
    return _first_line(text) or type(exc).__name__


def _fault(exc: BaseException, uri: str) -> str | None:
    """The message for a store fault the user can fix; None for anything else."""
    if not _is_store_error(exc):
        return None
    text = " ".join(str(e) for e in _chain(exc)).lower()
    db = sqlite_path(uri)
    where = str(db) if db is not None else uri
    reason = _reason(exc)
    if db is not None and not db.exists() and ("readonly database" in text or "no such" in text):
        return (  # SQLite calls a database whose file was removed under it read-only
            f"the tracking store {where} was deleted while this run was using it ({reason}): "
            "the run's record is lost; restore the file from a backup, or run again (a new "
            "store is created there)"
        )
    if "readonly database" in text or "read-only file system" in text:
        return (
            f"cannot write to the tracking store {where}: it is read-only ({reason}): make "
            "the file, its directory and the filesystem writable, or set "
            f"{SETTING} to a store you can write"
        )
    if db is not None and "unable to open database file" in text:
        return (
            f"cannot write to the tracking store {where} ({reason}): SQLite needs to "
            f"create its journal in {db.parent}; make that directory writable, or set "
            f"{SETTING} to a store you can write"
        )
    if "file is not a database" in text or "malformed" in text:
        return (
            f"the tracking store {where} is damaged ({reason}): restore it from a backup "
            f"or move it away (the next run creates a new store there), or set {SETTING} "
            "to another store"
        )
    if "disk is full" in text or "disk i/o error" in text:
        return (
            f"cannot write to the tracking store {where} ({reason}): free space, or set "
            f"{SETTING} to another store"
        )
    if _locked_db(exc):
        return (
            f"the tracking store {where} stayed locked by another process through "
            f"{RETRIES} attempts ({reason}): try again when the other runs are done"
        )
    if "api request to" in text and any(
        s in text for s in ("max retries exceeded", "failed to establish", "timed out")
    ):
        return (
            f"the tracking server {redact(uri)} stopped answering ({_network_reason(exc, 0)}): "
            f"start it, or correct {SETTING}"
        )
    return None


def _locked_db(exc: BaseException) -> bool:
    text = " ".join(str(e) for e in _chain(exc)).lower()
    return "database is locked" in text or "database table is locked" in text


class _DropRaisedErrorLogs(logging.Filter):
    """MLflow logs every SQL error with its traceback and then raises it: the caller
    reports it (as one paragraph), so the log line is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("SQLAlchemy database error")


def _quiet_mlflow_error_logs() -> None:
    logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _DropRaisedErrorLogs) for f in logger.filters):
        logger.addFilter(_DropRaisedErrorLogs())


class RetryingClient:
    """``MlflowClient`` whose calls are retried with backoff while SQLite reports a lock,
    and whose store faults (read-only, damaged, full, unreachable) are
    :class:`TrackingError`.

    Parallel jobs write to one SQLite file; a writer that finds it locked waits and
    tries again instead of losing its record. Other errors pass through at once.
    """

    def __init__(self, client: Any, uri: str | None = None) -> None:
        self._client = client
        self._uri = uri if uri is not None else str(getattr(client, "tracking_uri", "") or "")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not delegated (and no recursion while unpickling)
            raise AttributeError(name)
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            import random
            import time

            for attempt in range(RETRIES):
                try:
                    return attr(*args, **kwargs)
                except Exception as exc:
                    if _locked_db(exc) and attempt < RETRIES - 1:
                        backoff = min(0.05 * 2**attempt, 2.0) * (0.5 + random.random())
                        time.sleep(backoff)  # wait for the other writer's transaction
                        continue
                    # a plain OSError is a file the call reads or writes (an artifact), not
                    # the store: the caller reports it with what it was doing
                    message = None if isinstance(exc, OSError) else _fault(exc, self._uri)
                    if message is None:
                        raise
                    raise TrackingError(message) from exc

        return call
