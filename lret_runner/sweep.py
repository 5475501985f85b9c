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

from lret_runner.tracking import param_value

BATCH_ENV = "LRET_BATCH_RUN_ID"
SKIPPED_TAG = "lret.skipped."  # + job number: the FINISHED run a resumed job was skipped for
SUMMARY_METRICS = (
    "simulation_time_seconds",
    "fidelity",
    "final_rank",
    "max_rank",
    "memory_used_mb",
    "truncation_error",
    "trace_distance",
)


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


def refresh_counts(tracker: Any, parent_run_id: str) -> dict[str, int]:
    """Recount the batch's children by status and log the counts on the parent.

    Counting (instead of incrementing) makes concurrent jobs safe: each logs what it
    saw with step = jobs done, and MLflow's latest value is the one of the largest step.
    """
    children = child_runs(tracker, parent_run_id)
    statuses = [r.info.status for r in children]
    parent = tracker.client.get_run(parent_run_id)
    counts = {
        "completed": statuses.count("FINISHED"),
        "failed": statuses.count("FAILED"),
        "killed": statuses.count("KILLED"),
        "skipped": sum(1 for k in parent.data.tags if k.startswith(SKIPPED_TAG)),
    }
    tracker.log_metrics(parent_run_id, counts, step=sum(counts.values()))
    return counts


def child_runs(tracker: Any, parent_run_id: str) -> list[Any]:
    parent = tracker.client.get_run(parent_run_id)
    return list(
        tracker.client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
            max_results=50000,
        )
    )


def rows_from_runs(runs: list[Any]) -> list[dict[str, Any]]:
    """Flat rows (params as numbers where they are numbers, metrics, status) for tables, plots."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {"run_id": run.info.run_id, "status": run.info.status}
        row.update({k: param_value(v) for k, v in run.data.params.items()})
        row.update(run.data.metrics)
        row["error"] = run.data.tags.get("error")
        row["job_num"] = int(run.data.tags.get("job_num", 0))
        rows.append(row)
    rows.sort(key=lambda r: r["job_num"])
    return rows


def varying_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Config keys whose value differs between jobs (the sweep's axes)."""
    keys = sorted({k for r in rows for k in r if "." in k})
    return [k for k in keys if len({str(r.get(k)) for r in rows}) > 1]


def write_summary(tracker: Any, parent_run_id: str, rows: list[dict[str, Any]]) -> None:
    """CSV, text table and the plots that fit the sweep, as artifacts of the batch run."""
    from lret_runner import ascii, plots

    columns = ["run_id", "status", *varying_columns(rows), *SUMMARY_METRICS, "error"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        with open(out / "jobs.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        (out / "jobs.txt").write_text(ascii.rows_text(rows, columns))
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
        from lret_runner.tracking import BATCH_TAG, make_tracker, run_tags, write_json

        if config.tracking.name == "none":
            return
        self.tracker = make_tracker(config.tracking)
        batch_id = uuid.uuid4().hex[:12]
        self.total = count_jobs(config)
        tags = {**run_tags(config), BATCH_TAG: "true", "batch_id": batch_id}
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
        os.environ[BATCH_ENV] = self.parent_run_id
        # SIGTERM anywhere in the sweep (not only inside a job) unwinds like Ctrl-C, so
        # that on_multirun_end still closes the batch as cancelled
        with contextlib.suppress(ValueError):  # ValueError: not the main thread
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.parent_run_id is None:
            return
        parent_run_id, self.parent_run_id = self.parent_run_id, None
        os.environ.pop(BATCH_ENV, None)
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        children = child_runs(self.tracker, parent_run_id)
        for run in children:  # a worker killed hard never ended its run
            if run.info.status == "RUNNING":
                self.tracker.set_tags(run.info.run_id, {"error": "the sweep was cancelled"})
                self.tracker.end_run(run.info.run_id, "KILLED")
        counts = refresh_counts(self.tracker, parent_run_id)
        done = counts["completed"] + counts["failed"] + counts["skipped"]
        cancelled = counts["killed"] > 0 or done < self.total
        rows = rows_from_runs(child_runs(self.tracker, parent_run_id))
        if rows:
            write_summary(self.tracker, parent_run_id, rows)
        self.tracker.set_tags(parent_run_id, {"cancelled": str(cancelled).lower(), **counts})
        status = "KILLED" if cancelled else "FAILED" if counts["failed"] else "FINISHED"
        self.tracker.end_run(parent_run_id, status)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt("SIGTERM")


def depth_rule(rule: str, n_qubits: int, constant: int = 10) -> int:
    """``${lret_depth:RULE,N,CONSTANT}``: circuit depth from the qubit count (scaling sweeps)."""
    rules = {"linear": 2 * n_qubits, "quadratic": n_qubits**2, "constant": constant}
    if rule not in rules:
        raise ValueError(f"sweep.depth_rule={rule!r} is invalid: choose one of {sorted(rules)}")
    return int(rules[rule])
