"""Trackers: where a run records itself. :class:`MlflowTracker` writes to an MLflow store,
:class:`NullTracker` (``tracking=none``) records nothing and creates nothing; both
implement :class:`Tracker`, so callers never ask which one they hold.

Every write to a SQLite store is a transaction that waits for the disk (3-25 ms here), so
a run writes few of them: the run is created with all its start tags (the typed config
included), params, metrics and tags go in batches (``log_batch``), and the stepped rank
history goes with the metrics. A run costs five writes: create, params, metrics, final
tags, end (and the session's last access, see :meth:`.Sessions.open`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from lret_runner.errors import ConfigError, TrackingError
from lret_runner.tracking import vocabulary as V
from lret_runner.tracking.owners import owner_tags
from lret_runner.tracking.queries import Queries, RunSummary
from lret_runner.tracking.sessions import Sessions, check_name
from lret_runner.tracking.store import connect, default_artifact_location, default_uri, redact

PARAM_MAX_CHARS = 6000  # MLflow's limit on a param value
# MLflow's limits on one log_batch: params and tags each, metrics, and all entities together
BATCH_PARAMS_TAGS, BATCH_METRICS, BATCH_ENTITIES = 100, 1000, 1000


class Tracker(Protocol):
    """What a run and a batch need from where they are recorded.

    The bodies here are the null behaviour (record nothing); :class:`NullTracker` is
    exactly that, :class:`MlflowTracker` implements every method.
    """

    def start_run(
        self,
        session: str,
        description: str = "",
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        """Open a run in the session (created on first use); returns its id."""
        return uuid.uuid4().hex

    def log_config(self, run_id: str, config: dict[str, Any]) -> None:
        """The result-affecting config: flat params, and typed in tags (one batch)."""

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Params (strings in MLflow), in one batch."""

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float | None],
        step: int = 0,
        series: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        """Metrics (None values are left out) and stepped series (``{key: values}``, value i
        at step i + 1, such as the rank after every moment), in one batch."""

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Tags (None values are left out)."""

    def log_artifacts(
        self, run_id: str, paths: Iterable[Path], artifact_path: str | None = None
    ) -> None:
        """Files, under ``artifact_path``."""

    def end_run(self, run_id: str, status: str) -> None:
        """Close the run as FINISHED, FAILED or KILLED."""

    def require_run(self, run_id: str, key: str) -> None:
        """Raise a user error naming ``key`` unless the run exists."""
        raise ConfigError(
            f"{key}={run_id} is invalid with tracking=none: runs are not recorded, "
            "so there is nothing to refer to; use tracking=mlflow"
        )

    def finished_run(self, session: str, config_hash: str) -> RunSummary | None:
        """A FINISHED run of this config in the session (``sweep.resume``)."""
        return None

    records = False  # whether runs are recorded at all (a batch needs them)

    def batch_children(self, parent_run_id: str) -> list[RunSummary]:
        """The child runs of a batch."""
        return []

    def batch_jobs(self, parent_run_id: str) -> list[RunSummary]:
        """Every job of a batch: its children and the runs its skipped jobs reused."""
        return []

    def end_orphans(self, session: str) -> list[tuple[RunSummary, str]]:
        """End KILLED the session's RUNNING runs whose process is gone; returns them, with why."""
        return []

    def refresh_counts(
        self, parent_run_id: str, children: Sequence[RunSummary] | None = None
    ) -> dict[str, int]:
        """Count a batch's jobs by status (``children``: its child runs, if already read)
        and log the counts on its parent run."""
        return dict.fromkeys(V.BATCH_COUNTS, 0)

    def where(self, run_id: str, session: str) -> str:
        """One line saying where the run is recorded."""
        return "tracking=none: not recorded"


class NullTracker(Tracker):
    """``tracking=none``: a generated run id, nothing written."""


class MlflowTracker(Tracker):
    """Writes runs through ``MlflowClient`` (no global fluent state, safe in any process)."""

    def __init__(
        self,
        uri: str | None = None,
        artifact_location: str | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.uri = uri or default_uri()
        self.artifact_location = artifact_location or default_artifact_location(self.uri)
        self.timeout_seconds = timeout_seconds  # an unreachable server fails after this long
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (into launcher workers) without the client; each process opens its own."""
        return {**self.__dict__, "_client": None}

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.uri, timeout_seconds=self.timeout_seconds)
        return self._client

    @property
    def sessions(self) -> Sessions:
        return Sessions(self.client, self.uri, self.artifact_location)

    @property
    def queries(self) -> Queries:
        return Queries(self.client, self.uri)

    def start_run(
        self,
        session: str,
        description: str = "",
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        check_name(session)  # before the store is touched
        experiment_id = self.sessions.open(session, description)
        run = self.client.create_run(  # the tags in the same write
            experiment_id,
            run_name=run_name,
            tags={t.key: t.value for t in _tags({**owner_tags(), **(tags or {})})},
        )
        return str(run.info.run_id)

    def log_config(self, run_id: str, config: dict[str, Any]) -> None:
        """The config as flat params (strings, for MLflow's UI and filters) and as typed tags."""
        self._log_batch(
            run_id, params=_params(V.flatten(config)), tags=_tags(V.config_tags(config))
        )

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self._log_batch(run_id, params=_params(params))

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float | None],
        step: int = 0,
        series: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        from mlflow.entities import Metric

        now = _now_ms()
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        for key, values in (series or {}).items():
            items += [Metric(key, float(v), now, i) for i, v in enumerate(values, start=1)]
        self._log_batch(run_id, metrics=items)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self._log_batch(run_id, tags=_tags(tags))

    def _log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Any] = (),
        params: Sequence[Any] = (),
        tags: Sequence[Any] = (),
    ) -> None:
        """One ``log_batch`` call, or as few as MLflow's limits on a batch allow."""
        metrics, params, tags = list(metrics), list(params), list(tags)
        while metrics or params or tags:
            p, params = params[:BATCH_PARAMS_TAGS], params[BATCH_PARAMS_TAGS:]
            t, tags = tags[:BATCH_PARAMS_TAGS], tags[BATCH_PARAMS_TAGS:]
            room = min(BATCH_METRICS, BATCH_ENTITIES - len(p) - len(t))
            m, metrics = metrics[:room], metrics[room:]
            self.client.log_batch(run_id, metrics=m, params=p, tags=t)

    def log_artifacts(
        self, run_id: str, paths: Iterable[Path], artifact_path: str | None = None
    ) -> None:
        for path in paths:
            self.client.log_artifact(run_id, str(path), artifact_path)

    def end_run(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status=status)

    def require_run(self, run_id: str, key: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
        except MlflowException:
            raise TrackingError(
                f"{key}={run_id} is invalid: no such run in the tracking store {redact(self.uri)}"
            ) from None

    def finished_run(self, session: str, config_hash: str) -> RunSummary | None:
        return self.queries.finished_run(session, config_hash)

    records = True

    def batch_children(self, parent_run_id: str) -> list[RunSummary]:
        return self.queries.batch_children(parent_run_id)

    def batch_jobs(self, parent_run_id: str) -> list[RunSummary]:
        return self.queries.batch_jobs(parent_run_id)

    def end_orphans(self, session: str) -> list[tuple[RunSummary, str]]:
        if self.client.get_experiment_by_name(session) is None:
            return []
        return self.queries.end_orphans(session)

    def refresh_counts(
        self, parent_run_id: str, children: Sequence[RunSummary] | None = None
    ) -> dict[str, int]:
        """Count the batch's children by status and log the counts on the parent (step =
        jobs counted). The sweep counts once, at its end: counting reads every child, so
        counting after every job would make a sweep quadratic in its size."""
        if children is None:
            children = self.batch_children(parent_run_id)
        statuses = [r.status for r in children]
        parent = self.client.get_run(parent_run_id)
        counts = {
            "completed": statuses.count("FINISHED"),
            "failed": statuses.count("FAILED"),
            "killed": statuses.count("KILLED"),
            "skipped": sum(1 for k in parent.data.tags if k.startswith(V.SKIPPED_TAG)),
        }
        self.log_metrics(parent_run_id, counts, step=sum(counts.values()))
        return counts

    def where(self, run_id: str, session: str) -> str:
        return f"MLflow run {run_id} in session '{session}' at {redact(self.uri)}"


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def _params(params: Mapping[str, Any]) -> list[Any]:
    from mlflow.entities import Param

    return [Param(k, str(v)[:PARAM_MAX_CHARS]) for k, v in params.items()]


def _tags(tags: Mapping[str, Any]) -> list[Any]:
    """MLflow tags (strings, cut to MLflow's length); None values are left out."""
    from mlflow.entities import RunTag

    return [RunTag(k, str(v)[: V.TAG_MAX_CHARS]) for k, v in tags.items() if v is not None]


def store_uri(tracking_cfg: Any, root: Path | None = None) -> str | None:
    """The store a ``tracking`` config section names (None: ``tracking=none``): the server of
    ``tracking=server``, else ``tracking.tracking_uri``, else the default under ``root``. A
    relative SQLite path is taken from ``root`` (the launch directory)."""
    from lret_runner.tracking.store import sqlite_path

    if tracking_cfg.name == "none":
        return None
    if tracking_cfg.name == "server":
        return str(tracking_cfg.uri)
    uri = str(tracking_cfg.tracking_uri or default_uri(root))
    db = sqlite_path(uri)
    if db is not None and not db.is_absolute():
        uri = f"sqlite:///{(root or Path.cwd()).absolute() / db}"
    return uri


def make_tracker(tracking_cfg: Any, root: Path | None = None) -> Tracker:
    """The tracker a ``tracking`` config section asks for; the default store is under
    ``root/mlruns`` (the launch directory, whatever the current one is)."""
    uri = store_uri(tracking_cfg, root)
    if uri is None:
        return NullTracker()
    return MlflowTracker(
        uri,
        tracking_cfg.artifact_location,
        tracking_cfg.timeout_seconds,
    )
