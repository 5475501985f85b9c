"""The MLflow store: where it is, creating it once, and a client that waits out SQLite locks.

The embedded default is a SQLite store at ``<cwd>/mlruns/mlflow.db`` with artifacts
under ``<cwd>/mlruns/artifacts``; ``tracking.tracking_uri`` or ``MLFLOW_TRACKING_URI``
point elsewhere (a server, another file). Creating a new SQLite store and creating an
experiment both race between processes, so both happen under a file lock next to it.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from lret_runner.errors import TrackingError

STORE_DIR = "mlruns"
RETRIES = 10  # attempts of a store call that found the SQLite database locked


def default_uri(root: Path | None = None) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else the embedded SQLite store under ``root/mlruns``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(root or Path.cwd()).resolve() / STORE_DIR / 'mlflow.db'}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores)."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def default_artifact_location(uri: str) -> str | None:
    """``<store dir>/artifacts`` for an embedded SQLite store (None: the server decides)."""
    db = sqlite_path(uri)
    return (db.parent / "artifacts").as_uri() if db is not None else None


def store_lock(uri: str) -> AbstractContextManager[Any]:
    """A file lock beside a SQLite store (a no-op for other stores)."""
    db = sqlite_path(uri)
    if db is None:
        return nullcontext()
    from filelock import FileLock

    return FileLock(str(db.with_suffix(".lock")))


def connect(uri: str, *, create: bool = True, timeout_seconds: float = 10.0) -> RetryingClient:
    """A client of the store at ``uri``; the first one on a new SQLite store creates its
    schema, under the lock. Without ``create`` a missing SQLite store is an error (readers
    must not leave a stray ``mlruns/`` behind)."""
    from mlflow import MlflowClient

    db = sqlite_path(uri)
    if db is not None:
        if not create and not db.exists():
            raise TrackingError(
                f"no MLflow store at {db}: run an experiment first, or point "
                "--tracking-uri / MLFLOW_TRACKING_URI at an existing store"
            )
        db.parent.mkdir(parents=True, exist_ok=True)
    with store_lock(uri):
        client = RetryingClient(MlflowClient(tracking_uri=uri))
        client.search_experiments(max_results=1)  # forces schema creation now
    return client


def _locked_db(exc: Exception) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database table is locked" in text


class RetryingClient:
    """``MlflowClient`` whose calls are retried with backoff while SQLite reports a lock.

    Parallel jobs write to one SQLite file; a writer that finds it locked waits and
    tries again instead of losing its record. Other errors pass through at once.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

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
                    if not _locked_db(exc) or attempt == RETRIES - 1:
                        raise
                    backoff = min(0.05 * 2**attempt, 2.0) * (0.5 + random.random())
                    time.sleep(backoff)  # backoff: wait for the other writer's transaction

        return call
