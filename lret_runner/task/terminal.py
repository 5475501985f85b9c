"""The terminal around one run: progress bar, timeout, Ctrl-C/SIGTERM, summary, exit code.

:func:`run_from_hydra` is the ``@hydra.main`` task. It prepares the config and runs it
through :func:`lret_runner.experiment.run` under :class:`Signals`: SIGINT and SIGTERM
raise ``KeyboardInterrupt`` (the run ends KILLED) and ``run.timeout_seconds`` raises
:class:`RunTimeout` (FAILED), wherever the run is (preparing, simulating, comparing with
the exact state), except while the record is written, where they wait until it is
consistent. It prints the summary and turns a failure into a one-paragraph message: a
single run exits non-zero (130 when interrupted); inside a multirun the error is raised
again so that the launcher records the job as failed and the sweep goes on (an interrupt
stops the sweep). A failure that is not a user error (a bug) keeps its traceback;
``hydra.verbose=true`` shows every traceback.
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

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lret_runner.errors import RunTimeout, UserError
from lret_runner.experiment import RunResult


class RunFailed(RuntimeError):
    """A run ended FAILED (inside a multirun: the launcher records the job as failed)."""


class _Progress:
    """Progress over moments, shown only once a run has taken a second, on a TTY."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.enabled and self.bar is None and time.perf_counter() - self.start > 1.0:
            from rich.progress import Progress

            self.bar = Progress(transient=True)
            self.bar.start()
            self.task = self.bar.add_task("simulating moments", total=total)
        if self.bar is not None:  # a sampling engine's total grows as it learns its variances
            self.bar.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


_sweep_cancelled = False  # an interrupt reached this sweep: no further job may start


def sweep_cancelled() -> bool:
    """Whether an interrupt reached this sweep (whatever exception it then became: one that
    lands inside Hydra's config composition can come out as another error)."""
    return _sweep_cancelled


def cancel_sweep(signum: int, frame: Any) -> None:
    """The sweep's SIGINT/SIGTERM handler between jobs. Hydra swallows exceptions raised
    in some of its own steps between jobs (job-end callbacks), so the cancellation is also
    remembered, and the next job refuses to start (:func:`run_from_hydra`)."""
    global _sweep_cancelled
    _sweep_cancelled = True
    raise KeyboardInterrupt("Ctrl-C" if signum == signal.SIGINT else "SIGTERM")


class Signals:
    """SIGINT, SIGTERM and the ``run.timeout_seconds`` alarm as exceptions, held back while
    the run's record is written (:meth:`recording`).

    While the run is created (phase ``start``) a signal waits until the run exists, then
    ends it (KILLED, or FAILED for the timeout). Once the final record is being written
    (phase ``finish``) the work is done: the timeout no longer applies and an interrupt is
    kept in :attr:`pending` for the caller to report after the record is complete. A
    second interrupt while one is held back takes effect at once. Outside the main thread
    nothing is installed.
    """

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.start = time.perf_counter()
        self.phase: str | None = None
        self.finishing = False
        self.pending: BaseException | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Signals:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread
            pass
        return self

    def arm(self) -> None:
        """Start the ``run.timeout_seconds`` clock (where its RunTimeout can be handled)."""
        self.start = time.perf_counter()
        if self.timeout is not None and self._previous:
            signal.setitimer(signal.ITIMER_REAL, self.timeout)

    def __exit__(self, *exc: object) -> None:
        if self._previous:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGALRM:
            if self.finishing:
                return  # the work is done: nothing left to time out
            exc: BaseException = RunTimeout(
                f"run.timeout_seconds={self.timeout:g} exceeded after "
                f"{time.perf_counter() - self.start:.1f} s"
            )
        else:
            exc = KeyboardInterrupt("Ctrl-C" if signum == signal.SIGINT else "SIGTERM")
        held = self.phase is not None or self.finishing
        if not held or self.pending is not None:
            raise exc
        self.pending = exc

    @contextmanager
    def recording(self, phase: str) -> Iterator[None]:
        """Hold signals back while the record is written (``start`` or ``finish``)."""
        self.phase = phase
        self.finishing = self.finishing or phase == "finish"
        try:
            yield
        finally:
            self.phase = None
        if phase == "start" and self.pending is not None:
            exc, self.pending = self.pending, None
            raise exc


def _absolute_inputs(cfg: DictConfig, root: Path) -> None:
    """Input files named relative to the launch directory (Hydra may have changed into
    the run's output directory, ``hydra.job.chdir=true``)."""
    from omegaconf import OmegaConf

    from lret_runner.config import INPUT_PATHS, input_file

    for key in INPUT_PATHS:
        value = input_file(cfg, key)
        if value is not None and not Path(value).is_absolute():
            OmegaConf.update(cfg, key, str(root / value))


class OutputDirCheck(Callback):
    """Hydra creates the output directory before the task starts: a place it cannot create
    (``hydra.run.dir`` or ``hydra.sweep.dir`` through a file, or not writable) ends the
    command with one line naming the setting, instead of Hydra's traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _creatable("hydra.run.dir", config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _creatable("hydra.sweep.dir", config.hydra.sweep.dir)


def _creatable(key: str, path: str) -> None:
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            raise PermissionError(13, "not writable")
    except OSError as exc:
        print(
            f"lret_runner: {key}={path} cannot be used as the output directory "
            f"({exc.strerror or exc}): choose a writable place",
            file=sys.stderr,
        )
        raise SystemExit(1) from None


def execute(
    cfg: DictConfig,
    output_dir: Path,
    *,
    root: Path | None = None,
    job_num: int | None = None,
    batch: str | None = None,
    score: Any = None,
) -> tuple[RunResult, BaseException | None]:
    """Prepare and run one config with progress and signals, and print its summary.

    Returns the result and an interrupt that arrived while the finished run was being
    recorded (the caller reports it). ``root`` is the launch directory: relative input
    paths and the default store are resolved against it. An invalid config raises its
    :class:`UserError` before anything is recorded, except inside a batch, where any
    failure to prepare is recorded as a FAILED child so that the sweep shows it; a
    timeout while preparing is recorded FAILED in any case (it is not the config's fault).
    ``score`` computes an Optuna trial's objectives (:func:`lret_runner.experiment.run`).
    """
    from lret_runner import experiment
    from lret_runner.config import check_values
    from lret_runner.tracking import make_tracker

    root = root or Path.cwd()
    invalid: UserError | None = None
    try:  # before anything reads the config (the tracker, the timer): one line, not a traceback
        check_values(cfg)
    except UserError as exc:
        if batch is None:
            raise
        invalid = exc  # a sweep records it as a FAILED job
    tracker = make_tracker(cfg.tracking, root)
    quiet = _quiet(cfg) or not sys.stdout.isatty()
    progress = _Progress(enabled=not quiet)
    options = {"output_dir": output_dir, "batch": batch, "job_num": job_num}
    try:
        with Signals(None if invalid else cfg.run.timeout_seconds) as signals:
            try:
                if invalid is not None:
                    raise invalid
                signals.arm()
                _absolute_inputs(cfg, root)
                prepared = experiment.prepare(cfg)
            except Exception as exc:
                if batch is None and not isinstance(exc, RunTimeout):
                    raise
                result = experiment.record_failure(
                    cfg, tracker, exc, recording=signals.recording, **options
                )
            else:
                result = experiment.run(
                    prepared,
                    tracker,
                    progress=progress,
                    recording=signals.recording,
                    score=score,
                    **options,
                )
    finally:
        progress.close()
    if not _quiet(cfg):
        where = tracker.where(result.run_id or "", cfg.session.name)
        _print_summary(result, _params(cfg), where, output_dir)
    return result, signals.pending


def _quiet(cfg: DictConfig) -> bool:
    """``run.quiet`` (False where it does not resolve: that config is reported invalid)."""
    from omegaconf import OmegaConf

    return bool(
        OmegaConf.select(cfg, "run.quiet", default=False, throw_on_resolution_failure=False)
    )


def run_from_hydra(cfg: DictConfig) -> float | list[float] | None:
    """The ``@hydra.main`` task (see the module docstring). In an Optuna sweep it returns
    the trial's objective value(s) (``optimize.objective``); otherwise nothing."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from lret_runner.tracking.vocabulary import BATCH_ENV

    hc = HydraConfig.get()
    verbose = bool(hc.verbose)
    multirun = hc.mode == RunMode.MULTIRUN
    if multirun and _sweep_cancelled:
        raise KeyboardInterrupt("the sweep was interrupted: no further job starts")
    if not multirun:
        from lret_runner.config import check_values
        from lret_runner.optimize.objectives import check_names

        try:  # an unresolvable or non-finite value, a misspelt objective: one line, first
            check_values(cfg)
            check_names(cfg.optimize)
        except UserError as exc:
            _report(str(exc), exc, verbose)
            sys.exit(1)
    if not multirun and cfg.cloud.name != "local":
        _report(
            f"cloud={cfg.cloud.name} sends the jobs of a sweep: add -m (python -m lret_runner "
            f"-m cloud={cfg.cloud.name} ...); without -m the run would run on this machine",
            None,
            verbose,
        )
        sys.exit(1)
    score = None
    if multirun:
        from lret_runner.optimize.study import is_optuna

        if is_optuna(hc):
            from lret_runner.optimize.objectives import scorer

            score = scorer(cfg)
    try:
        result, interrupt = execute(
            cfg,
            Path(hc.runtime.output_dir),
            root=Path(hc.runtime.cwd),
            job_num=hc.job.num if multirun else None,
            batch=os.environ.get(BATCH_ENV) if multirun else None,
            score=score,
        )
    except UserError as exc:
        _report(str(exc), exc, verbose)
        if multirun:
            raise
        sys.exit(1)
    except KeyboardInterrupt as exc:  # before the run existed: nothing was recorded
        message = f"interrupted ({str(exc) or 'Ctrl-C'}) before the run started: nothing recorded"
        _report(message, exc, verbose)
        if multirun:
            _cancel_sweep(message)
        sys.exit(130)
    if interrupt is not None:
        message = (
            f"interrupted ({interrupt}) while run {result.run_id} was being recorded; "
            f"it was recorded {result.status} first"
        )
        _report(message, None, verbose)
        if multirun:
            _cancel_sweep(message)
        sys.exit(130)
    if result.status == "FINISHED":
        if score is None:
            return None
        from lret_runner.optimize.objectives import returned

        return returned(result.objectives)
    message = f"run {result.run_id} {result.status}: {result.error}"
    _report(message, result.exception, verbose)
    if result.status == "KILLED":
        if multirun:
            _cancel_sweep(message)  # stops the sweep; the batch is cancelled
        sys.exit(130)
    if multirun:
        raise RunFailed(message) from result.exception
    sys.exit(1)


def _cancel_sweep(message: str) -> None:
    global _sweep_cancelled
    _sweep_cancelled = True
    raise KeyboardInterrupt(message) from None


def _report(message: str, exc: BaseException | None, verbose: bool) -> None:
    """The one-paragraph message; the traceback too with ``verbose`` or for a bug."""
    bug = exc is not None and not isinstance(exc, UserError | KeyboardInterrupt)
    if exc is not None and (verbose or bug):
        traceback.print_exception(exc)
    print(f"lret_runner: {message}", file=sys.stderr)


def _params(cfg: DictConfig) -> dict[str, Any]:
    """The run's config as flat keys (``noise.level``) for the summary's first lines."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from lret_runner.tracking.vocabulary import flatten

    try:
        return flatten(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    except OmegaConfBaseException:
        return {}


def _print_summary(result: RunResult, params: dict[str, Any], where: str, output_dir: Path) -> None:
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
        console.print(tables.metrics_table(record, params))
        console.print(tables.histogram(record["counts"]), highlight=False, markup=False)
    console.print(f"{where}\nresult: {output_dir / 'result.json'}", highlight=False, markup=False)
