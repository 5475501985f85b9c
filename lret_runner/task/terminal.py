"""The terminal around one run: progress bar, timeout, Ctrl-C/SIGTERM, summary, exit code.

:func:`run_from_hydra` is the ``@hydra.main`` task. It prepares the config, runs it
through :func:`lret_runner.experiment.run` with signal handlers that turn SIGINT and
SIGTERM into ``KeyboardInterrupt`` (the run then ends KILLED), prints the summary, and
turns a failure into a one-paragraph message: a single run exits non-zero (130 when
interrupted); inside a multirun the error is re-raised so that the launcher records the
job as failed and the sweep goes on. A failure that is not a user error (a bug) keeps
its traceback; ``hydra.verbose=true`` shows every traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lret_runner.errors import RunTimeout, UserError
from lret_runner.experiment import RunResult


class RunFailed(RuntimeError):
    """A run ended FAILED (inside a multirun: the launcher records the job as failed)."""


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


def raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt("Ctrl-C" if signum == signal.SIGINT else "SIGTERM")


@contextmanager
def interrupts_raise(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """While inside, the signals raise ``KeyboardInterrupt`` (SIGINT also when the process
    was started in the background, where it is otherwise ignored)."""
    try:
        previous = {s: signal.signal(s, raise_interrupt) for s in signals}
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
    output_dir: Path,
    *,
    job_num: int | None = None,
    batch: str | None = None,
) -> RunResult:
    """Prepare and run one config with progress and signal handling, and print its summary.

    An invalid config raises its :class:`UserError` before anything is recorded, except
    inside a batch, where it is recorded as a FAILED child so that the sweep shows it.
    """
    from lret_runner import experiment
    from lret_runner.tracking import make_tracker

    tracker = make_tracker(cfg.tracking)
    quiet = cfg.run.quiet or not sys.stdout.isatty()
    progress = _Progress(enabled=not quiet, timeout=cfg.run.timeout_seconds)
    try:
        with interrupts_raise():
            try:
                prepared = experiment.prepare(cfg)
                result = experiment.run(
                    prepared,
                    tracker,
                    output_dir=output_dir,
                    progress=progress,
                    batch=batch,
                    job_num=job_num,
                )
            except UserError as exc:
                if batch is None:
                    raise
                result = experiment.record_failure(
                    cfg, tracker, exc, output_dir=output_dir, batch=batch, job_num=job_num
                )
    finally:
        progress.close()
    if not cfg.run.quiet:
        _print_summary(result, tracker.where(result.run_id or "", cfg.session.name), output_dir)
    return result


def run_from_hydra(cfg: DictConfig) -> float | None:
    """The ``@hydra.main`` task (see the module docstring). Returns the fidelity (the value
    an Optuna sweep optimises) when there is one."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from lret_runner.tracking.vocabulary import BATCH_ENV

    hc = HydraConfig.get()
    verbose = bool(hc.verbose)
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        result = execute(
            cfg,
            Path(hc.runtime.output_dir),
            job_num=hc.job.num if multirun else None,
            batch=os.environ.get(BATCH_ENV) if multirun else None,
        )
    except UserError as exc:
        _report(str(exc), exc, verbose)
        if multirun:
            raise
        sys.exit(1)
    if result.status == "FINISHED":
        return result.fidelity
    message = f"run {result.run_id} {result.status}: {result.error}"
    _report(message, result.exception, verbose)
    if result.status == "KILLED":
        if multirun:
            raise KeyboardInterrupt(message)  # stops the sweep; the batch is cancelled
        sys.exit(130)
    if multirun:
        raise RunFailed(message) from result.exception
    sys.exit(1)


def _report(message: str, exc: BaseException | None, verbose: bool) -> None:
    """The one-paragraph message; the traceback too with ``verbose`` or for a bug."""
    bug = exc is not None and not isinstance(exc, UserError | KeyboardInterrupt)
    if exc is not None and (verbose or bug):
        traceback.print_exception(exc)
    print(f"lret_runner: {message}", file=sys.stderr)


def _print_summary(result: RunResult, where: str, output_dir: Path) -> None:
    from rich.console import Console

    from lret_runner import tables

    console = Console()
    if result.reused:
        console.print(
            f"sweep.resume: this config already FINISHED as run {result.run_id}; skipped",
            highlight=False,
            markup=False,
        )
        return
    record = result.to_dict()
    if result.status == "FINISHED":
        console.print(tables.metrics_table(record))
        console.print(tables.histogram(record["counts"]), highlight=False, markup=False)
    console.print(f"{where}\nresult: {output_dir / 'result.json'}", highlight=False, markup=False)
