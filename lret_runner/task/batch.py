"""A multirun is a batch: one parent MLflow run, every job a child run.

:class:`BatchCallback` is a Hydra callback (``hydra.callbacks.batch`` in
``conf/config.yaml``). At multirun start, in the launching process, it creates the
SQLite store and the session once (the parallel jobs would race on both), opens the
parent run with the sweep definition, and hands each job what the launching process
resolved (:func:`hand_off`): the batch id and the default store's URI (as
``LRET_BATCH_RUN_ID`` and ``MLFLOW_TRACKING_URI`` in the job's ``hydra.job.env_set``) and
the absolute sweep directory, so that a job
reports to the same store wherever it runs (a Ray worker started elsewhere, a Slurm
node, a pod). Each job's run is a child of the batch (``mlflow.parentRunId``); a job
does not count the batch (that reads every child, so a sweep would be quadratic in its
size). At multirun end the callback closes the batch:
children left RUNNING by a killed worker become KILLED, the jobs are counted once
(``completed``, ``failed``, ``killed``, ``skipped``), a cancelled sweep is tagged
``cancelled``, and the summary artifacts (CSV, text table, plots) are logged. The jobs
render no per-run PNGs unless ``tracking.log_plots=true``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
import os
import signal
import tempfile
import uuid
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lret_runner.optimize.study import is_optuna
from lret_runner.task.terminal import cancel_sweep, sweep_cancelled
from lret_runner.tracking import vocabulary as V

_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # what cancels a sweep


def count_jobs(cfg: DictConfig) -> int:
    """How many jobs the multirun will launch (Optuna: n_trials; basic: the sweep's product)."""
    sweeper = cfg.hydra.sweeper
    if "n_trials" in sweeper:
        return int(sweeper.n_trials)
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # with the config loader, glob() over a config group expands to the group's options
    hydra = GlobalHydra.instance()
    parser = OverridesParser.create(hydra.config_loader() if hydra.is_initialized() else None)
    params = sweeper.get("params") or {}
    sizes: dict[str, int] = {}
    # the command line replaces a key of the preset's sweeper.params, as Hydra's sweeper does
    for args in ([f"{k}={v}" for k, v in params.items()], list(cfg.hydra.overrides.task)):
        for override in parser.parse_overrides(args):
            sweep = override.is_sweep_override()
            sizes[override.get_key_element()] = (
                len(list(override.sweep_string_iterator())) if sweep else 1
            )
    return math.prod(sizes.values())


def parallel_jobs(cfg: DictConfig) -> int:
    """Jobs the launcher runs at once on this machine: joblib's ``n_jobs`` (-1: one per
    available core), else one (the basic launcher runs them in turn; cluster launchers
    give each job its own cores)."""
    from lret_runner.simulators.threads import available_cores

    n_jobs = cfg.hydra.launcher.get("n_jobs")
    if not isinstance(n_jobs, int) or n_jobs == 0:
        return 1
    cores = available_cores()
    return min(n_jobs, cores) if n_jobs > 0 else max(1, cores + 1 + n_jobs)


def sweep_definition(cfg: DictConfig) -> dict[str, Any]:
    hydra = cfg.hydra
    return {
        "sweeper": OmegaConf.to_container(hydra.sweeper, resolve=False),
        "launcher": OmegaConf.to_container(hydra.launcher, resolve=False),
        "overrides": list(hydra.overrides.task),
        "sweep_dir": str(hydra.sweep.dir),
    }


def write_summary(tracker: Any, parent_run_id: str, rows: list[dict[str, Any]]) -> None:
    """CSV, text table and the plots that fit the sweep, as artifacts of the batch run."""
    from lret_runner import plots, tables

    columns = ["run_id", "status", *tables.varying_columns(rows), *V.SUMMARY_METRICS, "error"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        with open(out / "jobs.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        (out / "jobs.txt").write_text(tables.rows_text(rows, columns))
        files = [out / "jobs.csv", out / "jobs.txt"]
        for stem, fig in plots.sweep_figures(rows).items():
            files.append(plots.save(fig, out / f"{stem}.png"))
        tracker.log_artifacts(parent_run_id, files, "summary")


def hand_off(config: DictConfig, values: dict[str, Any]) -> None:
    """Set ``values`` (key -> value) in the config of every job of this multirun.

    Every launcher composes each job's config from ``hydra.overrides.hydra`` of the
    multirun's config plus the job's own overrides, in the launching process
    (``load_sweep_config``), then sends it to where the job runs. Appending to that list
    is how a value this process resolved reaches every job, whatever the launcher. Only
    ``hydra.*`` keys are handed (a task key would show among the job's own overrides).
    """
    from omegaconf import open_dict, read_write

    with read_write(config.hydra.overrides), open_dict(config.hydra.overrides):
        for key, value in values.items():
            text = str(value).replace("\\", "\\\\").replace("'", "\\'")
            config.hydra.overrides.hydra.append(f"++{key}='{text}'")


class BatchCallback(Callback):
    """Keeps the parent run of a multirun (see the module docstring)."""

    def __init__(self) -> None:
        self.parent_run_id: str | None = None
        self.tracker: Any = None
        self.total = 0
        self.study: Any = None  # an Optuna sweep's config: its study is reported at the end
        self._previous: dict[int, Any] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Open the batch; a sweep that cannot be recorded does not start (Hydra would only
        warn about a failing callback and run the jobs unrecorded)."""
        try:
            self._start(config)
        except KeyboardInterrupt:
            if self.parent_run_id is not None:
                self.tracker.set_tags(self.parent_run_id, {V.CANCELLED: "true"})
                self.tracker.end_run(self.parent_run_id, "KILLED")
            _abort("the sweep was interrupted before its first job", None, code=130)
        except Exception as exc:
            _abort(f"the sweep cannot start: {exc}", exc, code=1)

    def _start(self, config: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        from lret_runner import cloud
        from lret_runner.simulators.threads import PARALLEL_ENV
        from lret_runner.tracking import store_uri

        # Ctrl-C or SIGTERM anywhere in the sweep (not only inside a job) cancels it, so
        # that the batch is closed as cancelled
        with contextlib.suppress(ValueError):  # ValueError: not the main thread
            self._previous = {s: signal.signal(s, cancel_sweep) for s in _SIGNALS}
        os.environ[PARALLEL_ENV] = str(parallel_jobs(config))  # each job's BLAS threads
        root = Path(HydraConfig.get().runtime.cwd)
        cloud.check(config, root)  # every setting of cloud=NAME, before anything is made
        if is_optuna(config.hydra):  # an objective it cannot produce: refused before trial 1
            from lret_runner.optimize.study import check, is_lret_study

            check(config, root)
            self.study = config if is_lret_study(config.hydra) else None
        handed = {"hydra.sweep.dir": str(Path(config.hydra.sweep.dir).absolute())}
        if config.tracking.name == "mlflow" and not config.tracking.tracking_uri:
            # the default store is this process's ($MLFLOW_TRACKING_URI or root/mlruns)
            handed["hydra.job.env_set.MLFLOW_TRACKING_URI"] = store_uri(config.tracking, root)
        if not config.cloud.get("dry_run"):  # a dry run's launcher only prints
            self._open_batch(config, root)
        if self.parent_run_id is not None:
            os.environ[V.BATCH_ENV] = self.parent_run_id  # the sweeper's own process reads it
            handed[f"hydra.job.env_set.{V.BATCH_ENV}"] = self.parent_run_id
        hand_off(config, handed)

    def _open_batch(self, config: DictConfig, root: Path) -> None:
        """The parent run with the sweep definition (none for ``tracking=none``)."""
        from lret_runner.experiment import run_tags, write_json
        from lret_runner.tracking import make_tracker

        self.tracker = make_tracker(config.tracking, root)
        if not self.tracker.records:
            return
        if config.sweep.resume:  # runs a killed earlier attempt left RUNNING
            self.tracker.end_orphans(config.session.name)
        batch_id = uuid.uuid4().hex[:12]
        self.total = count_jobs(config)
        tags = {**run_tags(config), V.BATCH_TAG: "true", V.BATCH_ID: batch_id}
        self.parent_run_id = self.tracker.start_run(
            config.session.name,
            config.session.description,
            run_name=f"batch-{batch_id}",
            tags=tags,
        )
        self.tracker.log_metrics(
            self.parent_run_id, {"total": self.total, "completed": 0, "failed": 0}
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = write_json(Path(tmp) / "sweep.json", sweep_definition(config))
            self.tracker.log_artifacts(self.parent_run_id, [path])

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Close the batch and print its summary; a batch that did not finish every job
        ends the process with one line saying why (1: failed jobs or a launcher that
        failed, 130: interrupted)."""
        import sys

        from lret_runner.simulators.threads import PARALLEL_ENV

        # Hydra calls this from a ``finally``: the sweep's own error, if it raised one (a
        # launcher whose submission was refused, a job failure the sweeper re-raises)
        failure = sys.exc_info()[1]
        failure = failure if isinstance(failure, Exception) and not sweep_cancelled() else None

        os.environ.pop(PARALLEL_ENV, None)
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}
        if self.parent_run_id is None:  # no batch run (a dry run, tracking=none)
            from lret_runner.errors import UserError

            if isinstance(failure, UserError):  # one line, not Hydra's traceback
                _abort(f"the sweep cannot run: {failure}", failure, 1)
            return
        parent_run_id, self.parent_run_id = self.parent_run_id, None
        os.environ.pop(V.BATCH_ENV, None)
        try:
            status, counts, jobs, study = self._close(parent_run_id, failure)
        except Exception as exc:
            _abort(f"the sweep's batch run {parent_run_id} could not be closed: {exc}", exc, 1)
        text = _summary_text(parent_run_id, config.session.name, status, counts, jobs)
        print(text + _missing_text(self.total, len(jobs)))
        if study:
            print("\n".join(study))
        if status == "KILLED":
            _abort(f"batch {parent_run_id} KILLED: the sweep was interrupted", None, 130)
        if status == "FINISHED" and sweep_cancelled():  # the interrupt came after the last job
            _abort(f"batch {parent_run_id} FINISHED: interrupted after its last job", None, 130)
        if status == "FAILED" and counts["failed"] == 0 and failure is not None:
            _abort(f"batch {parent_run_id} FAILED: the sweep failed: {failure}", failure, 1)
        if status == "FAILED":
            failed = counts["failed"]
            _abort(f"batch {parent_run_id} FAILED: {failed} of {self.total} jobs failed", None, 1)

    def _close(
        self, parent_run_id: str, failure: Exception | None = None
    ) -> tuple[str, dict[str, int], list[Any], list[str]]:
        from hydra.core.hydra_config import HydraConfig

        from lret_runner.tracking.owners import gone

        children = self.tracker.batch_children(parent_run_id)
        for i, run in enumerate(children):
            if run.status == "RUNNING":  # its worker ended without ending the run
                why = gone(run.tags) or "the sweep ended while this job was still running"
                self.tracker.set_tags(run.run_id, {V.STATUS: "KILLED", V.ERROR: why})
                self.tracker.end_run(run.run_id, "KILLED")
                children[i] = dataclasses.replace(run, status="KILLED")
        counts = self.tracker.refresh_counts(parent_run_id, children)
        jobs = self.tracker.batch_jobs(parent_run_id)
        study: list[str] = []
        if self.study is not None:  # the study's outcome; its trials are the jobs
            from lret_runner.optimize.report import report

            root = Path(HydraConfig.get().runtime.cwd)
            # a grid or optimize.stop_at may end it before n_trials
            study, asked = report(self.tracker, parent_run_id, self.study, root, jobs)
            self.total = self.total if asked is None else asked
        done = counts["completed"] + counts["failed"] + counts["skipped"]
        cancelled = counts["killed"] > 0 or done < self.total
        if jobs:
            write_summary(self.tracker, parent_run_id, [r.row() for r in jobs])
        tags: dict[str, Any] = {V.CANCELLED: str(cancelled).lower(), **counts}
        if failure is not None and done < self.total and not counts["killed"]:
            # not every job ran, and nothing was interrupted: the sweep itself failed
            cancelled = False
            tags = {V.CANCELLED: "false", V.ERROR: str(failure), **counts}
        self.tracker.set_tags(parent_run_id, tags)
        status = "KILLED" if cancelled else "FAILED" if counts["failed"] or failure else "FINISHED"
        self.tracker.end_run(parent_run_id, status)
        return status, counts, jobs, study


def _summary_text(
    parent_run_id: str, session: str, status: str, counts: dict[str, int], jobs: list[Any]
) -> str:
    """The batch in a few lines: its status, counts, and every job that did not finish."""
    tally = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    lines = [f"batch {parent_run_id} (session '{session}') {status}: {tally or 'no jobs'}"]
    lines += [
        f"  job {r.job_num}: {r.status}: {r.error or '-'}" for r in jobs if r.status != "FINISHED"
    ]
    return "\n".join(lines)


def _missing_text(total: int, recorded: int) -> str:
    """A line for the jobs that have no run at all (cancelled or lost before they started,
    or never launched because the sweep was interrupted)."""
    missing = total - recorded
    if missing <= 0:
        return ""
    return (
        f"\n  {missing} of {total} jobs have no run: they never started (interrupted, "
        "cancelled or lost before their run was opened)"
    )


def _abort(message: str, exc: BaseException | None, code: int) -> None:
    """End the sweep with one line (and the traceback of a bug)."""
    import sys
    import traceback

    from lret_runner.errors import UserError

    if exc is not None and not isinstance(exc, UserError):
        traceback.print_exception(exc)
    print(f"lret_runner: {message}", file=sys.stderr)
    raise SystemExit(code)
