"""The read side: typed records of runs, built in one place from MLflow runs.

Everything that reads runs back (the ``lret-runner`` CLI, batch summaries, ``sweep.resume``,
the REST API) goes through :class:`Queries`. Searches are paged and bounded; params keep
the types they had in the config (read from the run's typed config tags).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from lret_runner.tracking import vocabulary as V
from lret_runner.tracking.sessions import iso_from_ms

PAGE = 1000  # runs per search page


@dataclass
class RunSummary:
    """One run as the readers see it."""

    run_id: str
    run_name: str | None
    session: str
    status: str  # FINISHED FAILED KILLED RUNNING
    started: str | None  # ISO times
    ended: str | None
    params: dict[str, Any]  # flat config keys (circuit.n_qubits, ...) with their types
    metrics: dict[str, float]
    tags: dict[str, str]
    error: str | None
    batch: bool  # the parent run of a sweep
    parent_run_id: str | None  # the batch this run is a job of
    lineage_parent: str | None  # lineage.parent: the run this one derives from
    job_num: int | None  # its number in the sweep

    @property
    def circuit(self) -> str | None:
        return self.tags.get("circuit") or self.params.get("circuit.name")

    @property
    def n_qubits(self) -> int | None:
        return self.params.get("circuit.n_qubits")

    @property
    def backend_used(self) -> str | None:
        return self.tags.get(V.BACKEND_USED)

    def row(self) -> dict[str, Any]:
        """A flat row for tables, CSVs and sweep plots: ids, status, params, metrics, error."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            **self.params,
            **self.metrics,
            "error": self.error,
            "job_num": self.job_num,
        }

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _clean(value: str | None) -> str | None:
    """A tag value, with the strings an unset value was logged as read back as None."""
    if value is None or value.strip() in ("", "None", "null"):
        return None
    return value.strip()


def run_summary(run: Any, session: str) -> RunSummary:
    """The one place an MLflow run becomes a record."""
    info, data = run.info, run.data
    tags = dict(data.tags)
    config = V.config_from_tags(tags)
    params = V.flatten(config) if config is not None else dict(data.params)
    job = _clean(tags.get(V.JOB_NUM))
    return RunSummary(
        run_id=info.run_id,
        run_name=info.run_name,
        session=session,
        status=info.status,
        started=iso_from_ms(info.start_time),
        ended=iso_from_ms(info.end_time),
        params=params,
        metrics=dict(data.metrics),
        tags=tags,
        error=_clean(tags.get(V.ERROR)),
        batch=tags.get(V.BATCH_TAG) == "true",
        parent_run_id=_clean(tags.get(V.PARENT_RUN)),
        lineage_parent=_clean(tags.get(V.LINEAGE_PARENT)),
        job_num=int(job) if job is not None else None,
    )


@dataclass
class Queries:
    """Read queries over one store (``client`` is a :class:`~.store.RetryingClient`)."""

    client: Any
    uri: str
    _names: dict[str, str] = field(default_factory=dict, repr=False)

    def session_name(self, experiment_id: str) -> str:
        experiment_id = str(experiment_id)
        if experiment_id not in self._names:
            self._names[experiment_id] = self.client.get_experiment(experiment_id).name
        return self._names[experiment_id]

    def experiment_ids(self) -> list[str]:
        ids, token = [], None
        while True:
            page = self.client.search_experiments(max_results=1000, page_token=token)
            for e in page:
                self._names[str(e.experiment_id)] = e.name
                ids.append(str(e.experiment_id))
            token = page.token
            if not token:
                return ids

    def iter_runs(
        self, experiment_ids: Sequence[str], filter_string: str = "", limit: int | None = None
    ) -> Iterator[Any]:
        """MLflow runs of the experiments, newest first, fetched a page at a time."""
        if not experiment_ids:
            return
        token, seen = None, 0
        while limit is None or seen < limit:
            size = PAGE if limit is None else min(PAGE, limit - seen)
            page = self.client.search_runs(
                list(experiment_ids),
                filter_string,
                max_results=size,
                order_by=["attributes.start_time DESC"],
                page_token=token,
            )
            for run in page:
                seen += 1
                yield run
            token = page.token
            if not token:
                return

    def summaries(
        self, experiment_ids: Sequence[str], filter_string: str = "", limit: int | None = None
    ) -> list[RunSummary]:
        return [
            run_summary(r, self.session_name(r.info.experiment_id))
            for r in self.iter_runs(experiment_ids, filter_string, limit)
        ]

    def batch_children(self, parent_run_id: str) -> list[RunSummary]:
        """The jobs of a batch, by job number."""
        parent = self.client.get_run(parent_run_id)
        runs = self.summaries(
            [parent.info.experiment_id], f"tags.`{V.PARENT_RUN}` = '{parent_run_id}'"
        )
        return sorted(runs, key=lambda r: (r.job_num is None, r.job_num or 0))

    def finished_run(self, session: str, config_hash: str) -> RunSummary | None:
        """A FINISHED run of this config hash in the session (``sweep.resume``), if any."""
        exp = self.client.get_experiment_by_name(session)
        if exp is None:
            return None
        runs = self.summaries(
            [exp.experiment_id],
            f"tags.{V.CONFIG_HASH} = '{config_hash}' and attributes.status = 'FINISHED'",
            limit=1,
        )
        return runs[0] if runs else None
