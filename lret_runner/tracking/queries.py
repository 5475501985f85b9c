"""The read side: typed records of runs, built in one place from MLflow runs.

Everything that reads runs back (the ``lret-runner`` CLI, batch summaries, ``sweep.resume``,
the REST API) goes through :class:`Queries`. Searches are paged and bounded; params keep
the types they had in the config (read from the run's typed config tags).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Any

from lret_runner.errors import TrackingError, UserError
from lret_runner.tracking import owners
from lret_runner.tracking import vocabulary as V
from lret_runner.tracking.sessions import SessionInfo, Sessions, iso_from_ms
from lret_runner.tracking.store import redact

PAGE = 1000  # runs per search page
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED", "RUNNING")
MAX_LINEAGE = 1000  # ancestors followed before giving up
LINEAGE_IGNORED = frozenset({"lineage.parent"})  # differs at every step by definition
RUN_ID = re.compile(r"[0-9a-f]{1,32}")  # MLflow run ids are 32 lowercase hex digits


@contextmanager
def store_errors() -> Iterator[None]:
    """MLflow's own errors (a rejected value, an unreachable server) as :class:`TrackingError`."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        lines = str(exc.message).strip().splitlines()
        raise TrackingError(lines[0] if lines else type(exc).__name__) from exc


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

    @property
    def accuracy(self) -> dict[str, Any] | None:
        """The accuracy contract's outcome (None for a run recorded without one)."""
        try:
            record = json.loads(self.tags[V.ACCURACY])
        except (KeyError, ValueError):
            return None
        return record if isinstance(record, dict) and "met" in record else None

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

    def brief(self) -> dict[str, Any]:
        """A listing row (``runs list``, a session's latest runs): what ran, key metrics."""
        return {
            "run_id": self.run_id,
            "run_name": self.run_name,
            "session": self.session,
            "status": self.status,
            "circuit": self.circuit,
            "n_qubits": self.n_qubits,
            "backend_used": self.backend_used,
            "accuracy": self.accuracy,
            **{key: self.metrics.get(key) for key in V.LISTED_METRICS},
            "started": self.started,
            "batch": self.batch,
        }

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def result(self) -> dict[str, Any]:
        """The run's figures shaped as its result record (``RunResult.to_dict()``'s keys), for
        the summary views: metrics, observables noisy and noiseless, the references."""
        ideal, noisy, se = V.IDEAL_EXPVAL_PREFIX, V.EXPVAL_PREFIX, V.SE_SUFFIX
        return {
            "run_id": self.run_id,
            "status": self.status,
            "backend_used": self.backend_used,
            "n_qubits": self.n_qubits,
            **self.metrics,
            "expectation_values": {
                k.removeprefix(noisy): v
                for k, v in self.metrics.items()
                if k.startswith(noisy) and not k.endswith(se)
            },
            "standard_errors": {
                k.removesuffix(se): v for k, v in self.metrics.items() if k.endswith(se)
            },
            "ideal_expectation_values": {
                k.removeprefix(ideal): v for k, v in self.metrics.items() if k.startswith(ideal)
            },
            "accuracy": self.accuracy,
            "ideal_reference": self.tags.get(V.IDEAL_REFERENCE, "not recorded"),
            "exact_reference": self.tags.get(V.EXACT_REFERENCE, "not recorded"),
        }


@dataclass
class RunDetail(RunSummary):
    """A run with what only ``runs show`` needs: its rank per moment and outcome counts."""

    rank_history: list[float]
    dense_spans: list[list[int]]  # [first, last] moments LRET held the state dense
    counts: dict[str, int] | None  # the counts.json artifact (None: no shots, or not finished)


@dataclass
class LineageStep:
    """One run of a lineage chain and the params that changed from the step before it."""

    run_id: str
    run_name: str | None
    session: str
    status: str
    started: str | None
    parent: str | None
    changes: dict[str, dict[str, Any]]  # key -> {"old": ..., "new": ...}


@dataclass
class Lineage:
    """The ancestors of a run, root first; ``note`` says why an incomplete chain stops."""

    run_id: str
    complete: bool
    note: str | None
    chain: list[LineageStep]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class MetricComparison:
    values: list[float | None]  # per run, in the order given (None: missing or not FINISHED)
    min: float | None
    max: float | None
    higher_is_better: bool | None
    best_run: str | None  # the first run with the best value
    improvement_percent: float | None  # the best run over the first, in % of the first


@dataclass
class Comparison:
    """Two or more runs side by side: the params that differ and the compared metrics."""

    runs: list[RunSummary]
    params: dict[str, list[Any]]  # key -> value per run, for keys whose values differ
    metrics: dict[str, MetricComparison]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [r.brief() for r in self.runs],
            "params": self.params,
            "metrics": {k: dataclasses.asdict(m) for k, m in self.metrics.items()},
        }


@dataclass
class SessionSummary:
    """A session's state, what it holds, and its latest runs."""

    session: SessionInfo
    runs: int
    batches: int
    run_statuses: dict[str, int]
    latest_runs: list[RunSummary]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.session.to_dict(),
            "runs": self.runs,
            "batches": self.batches,
            "run_statuses": self.run_statuses,
            "latest_runs": [r.brief() for r in self.latest_runs],
        }


def _clean(value: Any) -> str | None:
    """A tag value, with the strings an unset value was logged as read back as None."""
    if value is None or str(value).strip() in ("", "None", "null"):
        return None
    return str(value).strip()


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
        metrics=V.current_metrics(dict(data.metrics), tags),
        tags=tags,
        error=_clean(tags.get(V.ERROR)),
        batch=tags.get(V.BATCH_TAG) == "true",
        parent_run_id=_clean(tags.get(V.PARENT_RUN)),
        lineage_parent=_clean(tags.get(V.LINEAGE_PARENT) or params.get("lineage.parent")),
        job_num=int(job) if job is not None else None,
    )


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    keys = sorted((set(old) | set(new)) - LINEAGE_IGNORED)
    return {k: {"old": old.get(k), "new": new.get(k)} for k in keys if old.get(k) != new.get(k)}


def _improvement(first: float | None, best: float | None, higher_is_better: bool) -> float | None:
    """How much better ``best`` is than ``first``, in percent of the first (>= 0)."""
    if first is None or best is None:
        return None
    if best == first:
        return 0.0
    if first == 0:
        return None
    return 100.0 * (best - first if higher_is_better else first - best) / abs(first)


def _compare_metric(key: str, runs: Sequence[RunSummary]) -> MetricComparison:
    higher = V.METRIC[key].higher_is_better
    values = [r.metrics.get(key) if r.status == "FINISHED" else None for r in runs]
    present = [(v, i) for i, v in enumerate(values) if v is not None]
    best = None  # the index of the first run with the best value
    if present and higher is not None:
        best = max(present, key=lambda p: (p[0], -p[1]))[1] if higher else min(present)[1]
    return MetricComparison(
        values=values,
        min=min(present)[0] if present else None,
        max=max(present)[0] if present else None,
        higher_is_better=higher,
        best_run=runs[best].run_id if best is not None else None,
        improvement_percent=_improvement(
            values[0], values[best] if best is not None else None, bool(higher)
        ),
    )


def _quote(value: str) -> str:
    """A tag value as a search-filter string literal."""
    for quote in "'\"":
        if quote not in value:
            return f"{quote}{value}{quote}"
    raise UserError(f"tag value {value!r} is invalid: it cannot hold both quote characters")


@dataclass
class Queries:
    """Read queries over one store (``client`` is a :class:`~.store.RetryingClient`)."""

    client: Any
    uri: str
    _names: dict[str, str] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ building blocks
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
        return [self._summary(r) for r in self.iter_runs(experiment_ids, filter_string, limit)]

    def _summary(self, run: Any) -> RunSummary:
        return run_summary(run, self.session_name(run.info.experiment_id))

    def _get(self, run_id: str) -> RunSummary | None:
        """The run with exactly this id, None if there is none."""
        from mlflow.exceptions import MlflowException

        try:
            return self._summary(self.client.get_run(run_id))
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def _session(self, name: str) -> SessionInfo:
        return Sessions(self.client, self.uri, None).get(name)  # raises if it does not exist

    # ------------------------------------------------------------------ runs
    def resolve(self, ref: str) -> RunSummary:
        """The run with this id or unique id prefix; unknown or ambiguous is a TrackingError."""
        ref = ref.strip()
        if not ref:
            raise TrackingError("run id is empty")
        run = self._by_prefix(ref) if RUN_ID.fullmatch(ref) else None
        if run is None:
            raise TrackingError(
                f"run {ref!r} does not exist in the tracking store {redact(self.uri)}"
            )
        return run

    def _by_prefix(self, ref: str) -> RunSummary | None:
        """The run whose id starts with ``ref``; the store filters (no run list is loaded)."""
        if len(ref) == 32:
            return self._get(ref)
        matches = self.iter_runs(self.experiment_ids(), f"attributes.run_id LIKE '{ref}%'")
        first = list(itertools.islice(matches, 4))
        count = len(first) + sum(1 for _ in matches)
        if count > 1:
            shown = ", ".join(r.info.run_id for r in first)
            raise TrackingError(
                f"run id prefix {ref!r} is ambiguous: it matches {count} runs ({shown}, ...)"
            )
        return self._summary(first[0]) if first else None

    def runs(
        self,
        session: str | None = None,
        tags: Mapping[str, str] | None = None,
        status: str | None = None,
        limit: int | None = 50,
    ) -> list[RunSummary]:
        """Runs of one session (else of all), with these tag values and status, newest first."""
        ids = [self._session(session).id] if session is not None else self.experiment_ids()
        filters = []
        for key, value in (tags or {}).items():
            if "`" in key:
                raise UserError(f"tag key {key!r} is invalid: it cannot contain a backtick")
            filters.append(f"tags.`{key}` = {_quote(value)}")
        if status is not None:
            if status not in RUN_STATUSES:
                raise UserError(f"status {status!r} is invalid: must be one of {RUN_STATUSES}")
            filters.append(f"attributes.status = '{status}'")
        return self.summaries(ids, " and ".join(filters), limit)

    def count_runs(
        self,
        session: str | None = None,
        tags: Mapping[str, str] | None = None,
        status: str | None = None,
    ) -> int:
        """How many runs :meth:`runs` would list without a limit. On a SQLite store one
        ``COUNT`` over MLflow's ``runs`` and ``tags`` tables (loading 1,000 runs through the
        client to count them takes most of a second); elsewhere the runs are counted."""
        from lret_runner.tracking.store import sqlite_path

        db = sqlite_path(self.uri)
        if db is None:
            return sum(1 for _ in self.runs(session, tags, status, None))
        ids = [self._session(session).id] if session is not None else self.experiment_ids()
        if status is not None and status not in RUN_STATUSES:
            raise UserError(f"status {status!r} is invalid: must be one of {RUN_STATUSES}")
        sql = [
            "SELECT COUNT(*) FROM runs r WHERE r.lifecycle_stage = 'active'",
            f"AND r.experiment_id IN ({','.join('?' * len(ids))})",
        ]
        args: list[Any] = [int(i) for i in ids]
        if status is not None:
            sql.append("AND r.status = ?")
            args.append(status)
        for key, value in (tags or {}).items():
            sql.append(
                "AND EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid "
                "AND t.key = ? AND t.value = ?)"
            )
            args += [key, value]
        if not ids:
            return 0
        import sqlite3

        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            conn.execute("PRAGMA busy_timeout = 30000")
            return int(conn.execute(" ".join(sql), args).fetchone()[0])

    def run_detail(self, ref: str) -> RunDetail:
        run = self.resolve(ref)
        history = self.client.get_metric_history(run.run_id, V.RANK_METRIC)
        dense = self.client.get_metric_history(run.run_id, V.DENSE_METRIC)
        return RunDetail(
            **vars(run),
            rank_history=[m.value for m in sorted(history, key=lambda m: m.step)],
            dense_spans=V.dense_spans([m.value > 0 for m in sorted(dense, key=lambda m: m.step)]),
            counts=self._counts(run.run_id),
        )

    def _counts(self, run_id: str) -> dict[str, int] | None:
        import json
        import os
        import tempfile
        from pathlib import Path

        try:
            names = {Path(f.path).name for f in self.client.list_artifacts(run_id) if not f.is_dir}
        except Exception:  # an unreachable artifact store: the rest of the run still shows
            return None
        if "counts.json" not in names:
            return None
        bar = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"  # no progress bar on stderr for one file
        previous = os.environ.get(bar)
        os.environ.setdefault(bar, "false")
        try:
            with tempfile.TemporaryDirectory(prefix="lret-counts-") as tmp:
                path = self.client.download_artifacts(run_id, "counts.json", dst_path=tmp)
                try:
                    counts = json.loads(Path(path).read_text())
                    return {str(k): int(v) for k, v in counts.items()}
                except (ValueError, TypeError, AttributeError):
                    return None  # a corrupt counts.json: the rest of the run still shows
        finally:
            if previous is None:
                os.environ.pop(bar, None)

    def tag_run(self, ref: str, tags: Mapping[str, str]) -> RunSummary:
        """Set tags on a run; the run as it is after."""
        for key in tags:
            if key.startswith("mlflow."):
                raise UserError(f"tag {key!r} is reserved for MLflow")
        run_id = self.resolve(ref).run_id
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)
        return self._summary(self.client.get_run(run_id))

    def lineage(self, ref: str) -> Lineage:
        """The chain of ``lineage.parent`` ancestors of a run, root first."""
        chain = [self.resolve(ref)]
        seen, note = {chain[0].run_id}, None
        while (parent := chain[-1].lineage_parent) is not None:
            child = chain[-1].run_id
            if parent in seen:
                note = f"cycle: run {child} names {parent} as its parent, already in the chain"
                break
            if len(chain) > MAX_LINEAGE:
                note = f"stopped after {MAX_LINEAGE} ancestors"
                break
            run = self._get(parent)
            if run is None:
                note = (
                    f"missing parent: run {child} names {parent} as its parent, "
                    f"which is not in the tracking store {redact(self.uri)}"
                )
                break
            chain.append(run)
            seen.add(parent)
        chain.reverse()
        steps = [
            LineageStep(
                run_id=r.run_id,
                run_name=r.run_name,
                session=r.session,
                status=r.status,
                started=r.started,
                parent=r.lineage_parent,
                changes=_changes(chain[i - 1].params, r.params) if i else {},
            )
            for i, r in enumerate(chain)
        ]
        return Lineage(run_id=chain[-1].run_id, complete=note is None, note=note, chain=steps)

    def compare(self, refs: Sequence[str]) -> Comparison:
        """Runs side by side: differing params (compared as typed) and the compared metrics."""
        if len(refs) < 2:
            raise UserError(f"compare needs at least two run ids, got {len(refs)}")
        runs = [self.resolve(ref) for ref in refs]
        params = {}
        for key in sorted(set().union(*(r.params for r in runs))):
            values = [r.params.get(key) for r in runs]
            if any(v != values[0] for v in values):
                params[key] = values
        metrics = {key: _compare_metric(key, runs) for key in V.COMPARED_METRICS}
        return Comparison(runs=runs, params=params, metrics=metrics)

    # ------------------------------------------------------------------ sessions
    def session_summary(self, name: str, limit: int = 10) -> SessionSummary:
        return self._summarize(self._session(name), limit)

    def session_summaries(self, include_all: bool = False) -> list[SessionSummary]:
        """Every session (open ones unless ``include_all``), most recently used first."""
        out = [
            self._summarize(info, 0)
            for info in Sessions(self.client, self.uri, None).all(include_all)
        ]
        if not include_all:  # MLflow's own empty "Default" experiment is no one's session
            out = [s for s in out if (s.session.id, s.session.name, s.runs) != ("0", "Default", 0)]
        return sorted(out, key=lambda s: s.session.last_access or "", reverse=True)

    def _summarize(self, info: SessionInfo, limit: int) -> SessionSummary:
        """Counts a page of runs at a time; keeps only the newest ``limit``."""
        runs = batches = 0
        statuses: dict[str, int] = {}
        latest = []
        for run in self.iter_runs([info.id]):
            runs += 1
            batches += run.data.tags.get(V.BATCH_TAG) == "true"
            statuses[run.info.status] = statuses.get(run.info.status, 0) + 1
            if len(latest) < limit:
                latest.append(run_summary(run, info.name))
        return SessionSummary(info, runs, batches, dict(sorted(statuses.items())), latest)

    # ------------------------------------------------------------------ the runner's reads
    def orphans(self, session: str | None = None) -> list[tuple[RunSummary, str]]:
        """RUNNING runs whose process is gone (on this host), each with why."""
        found = []
        for run in self.runs(session, status="RUNNING", limit=None):
            reason = owners.gone(run.tags)
            if reason is not None:
                found.append((run, reason))
        return found

    def end_orphans(self, session: str | None = None) -> list[tuple[RunSummary, str]]:
        """End the :meth:`orphans` KILLED, their reason as the error; returns them."""
        found = self.orphans(session)
        for run, reason in found:
            self.client.set_tag(run.run_id, V.STATUS, "KILLED")
            self.client.set_tag(run.run_id, V.ERROR, reason)
            self.client.set_terminated(run.run_id, status="KILLED")
        return found

    def batch_children(self, parent_run_id: str) -> list[RunSummary]:
        """The jobs of a batch, by job number."""
        parent = self.client.get_run(parent_run_id)
        runs = self.summaries(
            [parent.info.experiment_id], f"tags.`{V.PARENT_RUN}` = '{parent_run_id}'"
        )
        return sorted(runs, key=lambda r: (r.job_num is None, r.job_num or 0))

    def batch_jobs(self, parent_run_id: str) -> list[RunSummary]:
        """Every job of a batch by job number: its children, and for the jobs a resumed
        sweep skipped, the earlier runs they reused (with this batch's job numbers)."""
        jobs = self.batch_children(parent_run_id)
        tags = self.client.get_run(parent_run_id).data.tags
        for key, run_id in tags.items():
            if key.startswith(V.SKIPPED_TAG):
                reused = self._get(run_id)
                if reused is not None:
                    job = key.removeprefix(V.SKIPPED_TAG)
                    jobs.append(
                        dataclasses.replace(reused, job_num=int(job) if job.isdigit() else None)
                    )
        return sorted(jobs, key=lambda r: (r.job_num is None, r.job_num or 0))

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
