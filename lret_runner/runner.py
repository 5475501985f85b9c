"""One tracked run: validate, simulate, summarise, write result.json, record in MLflow.

The entry points call :func:`execute`; it is the only place where a config, the
engines, the terminal and the tracker meet.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lret_runner.config import ConfigError, config_hash, validate
from lret_runner.experiment import RunResult, run_experiment
from lret_runner.sweep import BATCH_ENV, SKIPPED_TAG, refresh_counts
from lret_runner.tracking import (
    LINEAGE_PARENT,
    METRICS,
    PARENT_RUN,
    flatten,
    make_tracker,
    now_iso,
    run_tags,
    write_json,
)


class RunFailed(RuntimeError):
    """A run ended FAILED or KILLED; it is recorded, and its message is user-facing."""


class RunInterrupted(RunFailed):
    """A run stopped by Ctrl-C or SIGTERM (recorded KILLED)."""


class RunTimeout(RuntimeError):
    pass


class _Progress:
    """Progress over moments, shown only once a run has taken a second, on a TTY;
    also where ``run.timeout_seconds`` is enforced (between moments)."""

    def __init__(self, enabled: bool, timeout: float | None) -> None:
        self.enabled, self.timeout = enabled, timeout
        self.start = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.start
        if self.timeout is not None and elapsed > self.timeout and done < total:
            raise RunTimeout(
                f"run.timeout_seconds={self.timeout:g} exceeded after {elapsed:.1f} s "
                f"({done}/{total} moments done)"
            )
        if self.enabled and self.bar is None and elapsed > 1.0:
            from rich.progress import Progress

            self.bar = Progress(transient=True)
            self.bar.start()
            self.task = self.bar.add_task("simulating moments", total=total)
        if self.bar is not None:
            self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@contextmanager
def _signals_interrupt():
    """SIGINT and SIGTERM stop a run (recorded as KILLED), also when the process was started
    in the background, where SIGINT is otherwise ignored."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("Ctrl-C" if signum == signal.SIGINT else "SIGTERM")

    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def execute(
    cfg: DictConfig,
    output_dir: Path | None = None,
    verbose: bool = False,
    job_num: int | None = None,
) -> RunResult:
    """Run one experiment config and record it; raise :class:`RunFailed` if it did not finish.

    An invalid config raises before anything is recorded, except inside a batch (a
    multirun), where it is recorded as a FAILED child so that the sweep shows it.
    With ``sweep.resume`` a config that already FINISHED in the session is skipped.
    """
    output_dir = Path(output_dir or Path.cwd())
    output_dir.mkdir(parents=True, exist_ok=True)
    tracker = make_tracker(cfg.tracking)
    batch = os.environ.get(BATCH_ENV) if cfg.tracking.name != "none" else None
    invalid: Exception | None = None
    try:
        _check(cfg, tracker)
    except (ValueError, FileNotFoundError) as exc:
        if batch is None:
            raise
        invalid = exc
    if cfg.sweep.resume and invalid is None:
        previous = _finished_run(tracker, cfg)
        if previous is not None:
            return _skip(cfg, tracker, previous, batch, job_num)
    quiet = cfg.run.quiet or not sys.stdout.isatty()
    started = now_iso()
    container = OmegaConf.to_container(
        cfg, resolve=invalid is None
    )  # an invalid one may not resolve
    assert isinstance(container, dict)
    config_file = output_dir / "config.yaml"
    config_file.write_text(OmegaConf.to_yaml(container))
    run_id = tracker.start_run(
        cfg.session.name,
        cfg.session.description,
        run_name=f"{cfg.circuit.name}-n{cfg.circuit.n_qubits}-{cfg.simulator.name}",
        tags=run_tags(
            cfg,
            {
                "config_hash": config_hash(cfg) if invalid is None else None,
                PARENT_RUN: batch,
                LINEAGE_PARENT: cfg.lineage.parent,
                "job_num": job_num,
            },
        ),
    )

    progress = _Progress(enabled=not quiet, timeout=cfg.run.timeout_seconds)
    result: RunResult | None = None
    status, error = "FINISHED", None
    try:
        with _signals_interrupt():
            tracker.log_params(run_id, flatten(container))
            if invalid is not None:
                raise invalid
            result, _ = run_experiment(cfg, progress=progress)
    except KeyboardInterrupt as exc:
        status, error = "KILLED", f"interrupted ({str(exc) or 'Ctrl-C'})"
    except Exception as exc:  # recorded, then re-raised as RunFailed
        status, error = "FAILED", f"{type(exc).__name__}: {exc}"
        if verbose:
            traceback.print_exc()
    finally:
        progress.close()
    if result is None:
        result = RunResult(
            status=status,
            backend_used=cfg.simulator.name,
            n_qubits=cfg.circuit.n_qubits,
            depth=None,  # the circuit may not have been built
            error=error,
        )
    result.run_id, result.started_at, result.completed_at = run_id, started, now_iso()
    record = result.to_dict()
    files = [config_file, write_json(output_dir / "result.json", record)]
    if result.counts is not None:
        files.append(write_json(output_dir / "counts.json", result.counts))
    if status == "FINISHED":
        tracker.log_metrics(run_id, {m: record[m] for m in METRICS})
        tracker.log_metrics(
            run_id, {f"expval_{k}": v for k, v in result.expectation_values.items()}
        )
        tracker.log_rank_history(run_id, result.rank_history or [])
        if cfg.tracking.name != "none" and cfg.tracking.get("log_plots", True):
            files += _plots(record, container, output_dir)
    tracker.set_tags(
        run_id, {"status": status, "error": error, "backend_used": result.backend_used}
    )
    tracker.log_artifacts(run_id, files)
    tracker.end_run(run_id, status)
    if batch is not None:
        refresh_counts(tracker, batch)
    if not cfg.run.quiet:
        _print_summary(record, tracker, cfg, output_dir)
    if status == "KILLED":
        raise RunInterrupted(f"run {run_id} KILLED: {error}")
    if status != "FINISHED":
        raise RunFailed(f"run {run_id} {status}: {error}")
    return result


def _check(cfg: DictConfig, tracker: Any) -> None:
    """Everything that must hold before a run starts: the config, and the lineage parent."""
    validate(cfg)
    if cfg.lineage.parent is not None:
        if cfg.tracking.name == "none":
            raise ConfigError(
                f"lineage.parent={cfg.lineage.parent} is invalid with tracking=none: "
                "lineage lives in MLflow, use tracking=mlflow"
            )
        tracker.check_run_exists(cfg.lineage.parent)


def _finished_run(tracker: Any, cfg: DictConfig) -> Any:
    """A FINISHED run of the same resolved config in the session, if there is one."""
    if cfg.tracking.name == "none":
        return None
    exp = tracker.client.get_experiment_by_name(cfg.session.name)
    if exp is None:
        return None
    runs = tracker.client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.config_hash = '{config_hash(cfg)}' and attributes.status = 'FINISHED'",
        max_results=1,
    )
    return runs[0] if runs else None


def _skip(
    cfg: DictConfig, tracker: Any, previous: Any, batch: str | None, job_num: int | None
) -> RunResult:
    """``sweep.resume``: report the earlier run instead of running again."""
    run_id = previous.info.run_id
    if batch is not None:
        tracker.set_tags(batch, {f"{SKIPPED_TAG}{job_num}": run_id})
        refresh_counts(tracker, batch)
    if not cfg.run.quiet:
        print(f"sweep.resume: this config already FINISHED as run {run_id}; skipped")
    metrics = previous.data.metrics
    return RunResult(
        status="FINISHED",
        backend_used=previous.data.tags.get("backend_used", cfg.simulator.name),
        n_qubits=cfg.circuit.n_qubits,
        depth=cfg.circuit.depth,
        run_id=run_id,
        fidelity=metrics.get("fidelity"),
        truncation_error=metrics.get("truncation_error"),
        simulation_time_seconds=metrics.get("simulation_time_seconds"),
    )


def run_from_hydra(cfg: DictConfig) -> float | None:
    """The ``@hydra.main`` task: run, and turn a failure into a one-paragraph message.

    A single run exits non-zero; inside a multirun the error is re-raised so that the
    launcher records the job as failed and the sweep goes on. Returns the fidelity
    (the value an Optuna sweep optimises) when there is one.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    verbose = bool(hc.verbose)
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        result = execute(
            cfg,
            Path(hc.runtime.output_dir),
            verbose=verbose,
            job_num=hc.job.num if multirun else None,
        )
    except (RunFailed, ValueError, FileNotFoundError) as exc:
        if verbose:
            traceback.print_exc()
        print(f"lret_runner: {exc}", file=sys.stderr)
        if multirun and isinstance(exc, RunInterrupted):
            raise KeyboardInterrupt(str(exc)) from None  # stops the sweep; the batch is cancelled
        if multirun:
            raise
        sys.exit(130 if isinstance(exc, RunInterrupted) else 1)
    return result.fidelity


def _plots(record: dict[str, Any], container: dict[str, Any], output_dir: Path) -> list[Path]:
    from lret_runner import plots

    paths = []
    if record["counts"]:
        paths.append(output_dir / "histogram.png")
        plots.save(plots.histogram_figure(record["counts"], title="top outcomes"), paths[-1])
    paths.append(output_dir / "summary.png")
    plots.save(plots.summary_figure(record, container), paths[-1])
    return paths


def _print_summary(record: dict[str, Any], tracker: Any, cfg: DictConfig, output_dir: Path) -> None:
    from rich.console import Console

    from lret_runner import ascii

    console = Console()
    if record["status"] == "FINISHED":
        console.print(ascii.metrics_table(record))
        console.print(ascii.histogram(record["counts"]), highlight=False, markup=False)
    where = (
        f"MLflow run {record['run_id']} in session '{cfg.session.name}' at {tracker.uri}"
        if tracker.uri
        else "tracking=none: not recorded"
    )
    console.print(f"{where}\nresult: {output_dir / 'result.json'}", highlight=False, markup=False)
