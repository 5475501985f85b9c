"""A multirun is a batch: one parent MLflow run, every job a child run.

:class:`BatchCallback` is a Hydra callback (``hydra.callbacks.batch`` in
``conf/config.yaml``). At multirun start, in the launching process, it creates the
SQLite store and the session once (the parallel jobs would race on both), opens the
parent run with the sweep definition, and exports its id in ``LRET_BATCH_RUN_ID``,
which every launcher hands to its jobs (joblib and submitit workers inherit the
environment; Slurm exports it). Each job's run is a child of it
(``mlflow.parentRunId``) and refreshes the parent's ``completed``/``failed``
counts. At multirun end the callback closes the batch: children left RUNNING by a
killed worker become KILLED, the counts are final, a cancelled sweep is tagged
``cancelled``, and the summary artifacts (CSV, text table, plots) are logged.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import signal
import tempfile
import uuid
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lret_runner.task.terminal import raise_interrupt
from lret_runner.tracking import vocabulary as V


def count_jobs(cfg: DictConfig) -> int:
    """How many jobs the multirun will launch (Optuna: n_trials; basic: the sweep's product)."""
    sweeper = cfg.hydra.sweeper
    if "n_trials" in sweeper:
        return int(sweeper.n_trials)
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
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


def sweep_definition(cfg: DictConfig) -> dict[str, Any]:
    hydra = cfg.hydra
    return {
        "sweeper": OmegaConf.to_container(hydra.sweeper, resolve=False),
        "launcher": OmegaConf.to_container(hydra.launcher, resolve=False),
        "overrides": list(hydra.overrides.task),
        "sweep_dir": str(hydra.sweep.dir),
    }


def varying_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Config keys whose value differs between jobs (the sweep's axes)."""
    keys = sorted({k for r in rows for k in r if "." in k})
    return [k for k in keys if len({str(r.get(k)) for r in rows}) > 1]


def write_summary(tracker: Any, parent_run_id: str, rows: list[dict[str, Any]]) -> None:
    """CSV, text table and the plots that fit the sweep, as artifacts of the batch run."""
    from lret_runner import plots, tables

    columns = ["run_id", "status", *varying_columns(rows), *V.SUMMARY_METRICS, "error"]
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


class BatchCallback(Callback):
    """Keeps the parent run of a multirun (see the module docstring)."""

    def __init__(self) -> None:
        self.parent_run_id: str | None = None
        self.tracker: Any = None
        self.total = 0
        self._previous_sigterm: Any = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from lret_runner.experiment import run_tags, write_json
        from lret_runner.tracking import make_tracker

        self.tracker = make_tracker(config.tracking)
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
        os.environ[V.BATCH_ENV] = self.parent_run_id
        # SIGTERM anywhere in the sweep (not only inside a job) unwinds like Ctrl-C, so
        # that on_multirun_end still closes the batch as cancelled
        with contextlib.suppress(ValueError):  # ValueError: not the main thread
            self._previous_sigterm = signal.signal(signal.SIGTERM, raise_interrupt)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.parent_run_id is None:
            return
        parent_run_id, self.parent_run_id = self.parent_run_id, None
        os.environ.pop(V.BATCH_ENV, None)
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        for run in self.tracker.batch_children(parent_run_id):
            if run.status == "RUNNING":  # a worker killed hard never ended its run
                self.tracker.set_tags(run.run_id, {V.ERROR: "the sweep was cancelled"})
                self.tracker.end_run(run.run_id, "KILLED")
        counts = self.tracker.refresh_counts(parent_run_id)
        done = counts["completed"] + counts["failed"] + counts["skipped"]
        cancelled = counts["killed"] > 0 or done < self.total
        rows = [r.row() for r in self.tracker.batch_children(parent_run_id)]
        if rows:
            write_summary(self.tracker, parent_run_id, rows)
        self.tracker.set_tags(parent_run_id, {V.CANCELLED: str(cancelled).lower(), **counts})
        status = "KILLED" if cancelled else "FAILED" if counts["failed"] else "FINISHED"
        self.tracker.end_run(parent_run_id, status)
