"""MLflow tracking: sessions (experiments), runs, params, metrics, tags and artifacts.

The embedded default is a SQLite store at ``<cwd>/mlruns/mlflow.db`` with artifacts
under ``<cwd>/mlruns/artifacts``; ``tracking.tracking_uri`` or ``MLFLOW_TRACKING_URI``
point elsewhere (a server, another file). Creating a new SQLite store and creating
an experiment both race between processes, so both happen under a file lock.
``tracking=none`` gives a :class:`NullTracker` that records nothing and creates nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lret_runner import __version__

STORE_DIR = "mlruns"
METRICS = (
    "simulation_time_seconds",
    "final_rank",
    "max_rank",
    "memory_used_mb",
    "truncation_error",
    "fidelity",
    "trace_distance",
    "purity",
)
PARAM_MAX_CHARS = 6000  # MLflow's limit on a param value

# Session state lives in the MLflow experiment's tags, nothing else.
SESSION_STATUS = "lret.session.status"  # open or closed
SESSION_TIMEOUT = (
    "lret.session.timeout_hours"  # idle hours before the session expires (absent: never)
)
SESSION_ACCESS = "lret.session.last_access"  # ISO time of the last run or resume
SESSION_DESCRIPTION = "description"
LINEAGE_PARENT = "lret.lineage.parent"  # the run this run was derived from (lineage.parent)
PARENT_RUN = "mlflow.parentRunId"  # the batch (sweep) a job belongs to
BATCH_TAG = "lret.batch"  # "true" on the parent run of a sweep


class SessionError(ValueError):
    """A session that does not exist, already exists, or is closed/expired."""


def default_uri(root: Path | None = None) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else the embedded SQLite store under ``root/mlruns``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(root or Path.cwd()).resolve() / STORE_DIR / 'mlflow.db'}"


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def param_value(value: str | None) -> int | float | str | None:
    """An MLflow param (always a string) back as the number it was, where it was one."""
    if value is None or value == "None":
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            continue
    return value


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


RETRIES = 10  # attempts of a store call that found the SQLite database locked


def _locked_db(exc: Exception) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database table is locked" in text


class _RetryingClient:
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


class NullTracker:
    """``tracking=none``: a generated run id, nothing written."""

    uri = None

    def start_run(self, session: str, description: str = "", **_: Any) -> str:
        return uuid.uuid4().hex

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None: ...

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float | None], step: int = 0
    ) -> None: ...

    def log_rank_history(self, run_id: str, history: Iterable[int]) -> None: ...

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None: ...

    def log_artifacts(
        self, run_id: str, paths: Iterable[Path], artifact_path: str | None = None
    ) -> None: ...

    def end_run(self, run_id: str, status: str) -> None: ...


class MlflowTracker:
    """Writes runs through ``MlflowClient`` (no global fluent state, safe in any process)."""

    def __init__(self, uri: str | None = None, artifact_location: str | None = None) -> None:
        self.uri = uri or default_uri()
        self.artifact_location = artifact_location
        self._lock_path: Path | None = None
        if self.uri.startswith("sqlite:///"):
            db = Path(self.uri.removeprefix("sqlite:///"))
            db.parent.mkdir(parents=True, exist_ok=True)
            self._lock_path = db.with_suffix(".lock")
            if artifact_location is None:
                self.artifact_location = (db.parent / "artifacts").as_uri()
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (into launcher workers) without the client; each process opens its own."""
        return {**self.__dict__, "_client": None}

    @property
    def client(self) -> Any:
        """The client; the first one on a new SQLite store creates its schema under the lock."""
        if self._client is None:
            from mlflow import MlflowClient

            with self._locked():
                self._client = _RetryingClient(MlflowClient(tracking_uri=self.uri))
                self._client.search_experiments(max_results=1)  # forces schema creation now
        return self._client

    def _locked(self) -> Any:
        from contextlib import nullcontext

        from filelock import FileLock

        return FileLock(str(self._lock_path)) if self._lock_path else nullcontext()

    def experiment_id(
        self, session: str, description: str = "", timeout_hours: float | None = None
    ) -> str:
        """The session's experiment id, creating it (open, with its description) on first use."""
        exp = self.client.get_experiment_by_name(session)
        if exp is not None:
            return str(exp.experiment_id)
        with self._locked():
            exp = self.client.get_experiment_by_name(session)
            if exp is not None:
                return str(exp.experiment_id)
            tags = {
                SESSION_DESCRIPTION: description,
                SESSION_STATUS: "open",
                SESSION_ACCESS: now_iso(),
            }
            if timeout_hours is not None:
                tags[SESSION_TIMEOUT] = str(timeout_hours)
            return str(
                self.client.create_experiment(
                    session, artifact_location=self.artifact_location, tags=tags
                )
            )

    def create_session(
        self, name: str, description: str = "", timeout_hours: float | None = None
    ) -> str:
        if self.client.get_experiment_by_name(name) is not None:
            raise SessionError(f"session {name!r} already exists")
        return self.experiment_id(name, description, timeout_hours)

    def session(self, name: str) -> dict[str, Any]:
        """A session's state: name, id, status (open, closed or expired), description, times."""
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            raise SessionError(f"session {name!r} does not exist")
        return session_info(exp)

    def sessions(self, include_all: bool = False) -> list[dict[str, Any]]:
        """Every session (MLflow experiment), open ones only unless ``include_all``."""
        from mlflow.entities import ViewType

        infos = [
            session_info(e) for e in self.client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
        ]
        return [s for s in infos if include_all or s["status"] == "open"]

    def set_session_status(self, name: str, status: str) -> None:
        """Close a session, or reopen it (``open`` also restarts its idle clock)."""
        info = self.session(name)
        self.client.set_experiment_tag(info["id"], SESSION_STATUS, status)
        self.client.set_experiment_tag(info["id"], SESSION_ACCESS, now_iso())

    def open_session(self, name: str, description: str = "") -> str:
        """The experiment id a run may write to: created if new, refused if closed or expired."""
        experiment_id = self.experiment_id(name, description)
        info = session_info(self.client.get_experiment(experiment_id))
        if info["status"] != "open":
            raise SessionError(
                f"session {name!r} is {info['status']}: runs into it are refused. "
                f"Reopen it with `lret-runner sessions resume {name}` "
                "or choose another session.name"
            )
        self.client.set_experiment_tag(experiment_id, SESSION_ACCESS, now_iso())
        return experiment_id

    def check_run_exists(self, run_id: str, key: str = "lineage.parent") -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
        except MlflowException:
            raise ValueError(
                f"{key}={run_id} is invalid: no such run in the tracking store {self.uri}"
            ) from None

    def start_run(
        self,
        session: str,
        description: str = "",
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        experiment_id = self.open_session(session, description)
        run = self.client.create_run(
            experiment_id,
            run_name=run_name,
            tags={k: str(v) for k, v in (tags or {}).items() if v is not None},
        )
        return str(run.info.run_id)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:PARAM_MAX_CHARS]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow's batch limit
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float | None], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = _now_ms()
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        self._log_metric_batches(run_id, items)

    def log_rank_history(self, run_id: str, history: Iterable[int]) -> None:
        """The rank after every moment as the stepped metric ``rank`` (step = moment)."""
        from mlflow.entities import Metric

        now = _now_ms()
        self._log_metric_batches(
            run_id, [Metric("rank", float(r), now, step) for step, r in enumerate(history, start=1)]
        )

    def _log_metric_batches(self, run_id: str, items: list[Any]) -> None:
        for i in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[i : i + 1000])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)[:PARAM_MAX_CHARS]) for k, v in tags.items() if v is not None]
        if items:
            self.client.log_batch(run_id, tags=items)

    def log_artifacts(
        self, run_id: str, paths: Iterable[Path], artifact_path: str | None = None
    ) -> None:
        for path in paths:
            self.client.log_artifact(run_id, str(path), artifact_path)

    def end_run(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status=status)


def now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def session_info(exp: Any) -> dict[str, Any]:
    """Session state from an MLflow experiment's tags (closed wins over expired)."""
    from datetime import UTC, datetime, timedelta

    tags = exp.tags or {}
    status = tags.get(SESSION_STATUS, "open")
    timeout = tags.get(SESSION_TIMEOUT)
    last = tags.get(SESSION_ACCESS)
    if status == "open" and timeout and last:
        if datetime.fromisoformat(last) + timedelta(hours=float(timeout)) < datetime.now(UTC):
            status = "expired"
    return {
        "name": exp.name,
        "id": str(exp.experiment_id),
        "status": status,
        "description": tags.get(SESSION_DESCRIPTION, ""),
        "timeout_hours": float(timeout) if timeout else None,
        "last_access": last,
        "created": datetime.fromtimestamp(exp.creation_time / 1000, UTC).isoformat(
            timespec="seconds"
        )
        if exp.creation_time
        else None,
    }


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def make_tracker(tracking_cfg: Any) -> MlflowTracker | NullTracker:
    """The tracker a ``tracking`` config section asks for."""
    if tracking_cfg.name == "none":
        return NullTracker()
    if tracking_cfg.name != "mlflow":
        raise ValueError(f"tracking.name={tracking_cfg.name!r} is invalid: choose mlflow or none")
    return MlflowTracker(tracking_cfg.tracking_uri, tracking_cfg.artifact_location)


def run_tags(cfg: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Tags every run carries: session, circuit family, noise model, engine, version, git commit."""
    return {
        "session": cfg.session.name,
        "circuit": cfg.circuit.name,
        "noise": cfg.noise.name,
        "simulator": cfg.simulator.name,
        "lret_runner_version": __version__,
        "git_commit": git_commit(),
        **{str(k): v for k, v in (cfg.tags or {}).items()},
        **(extra or {}),
    }


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2, default=str))
    return path
