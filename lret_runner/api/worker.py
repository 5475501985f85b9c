"""The work a REST API worker process does: one config, run into the run the API opened.

Runs in a process of the server's pool (started with ``spawn``), so an engine error, a
memory refusal or a crash in one run never reaches the server's routes. The run is
watched like a CLI run (:class:`lret_runner.task.terminal.Signals`: ``run.timeout_seconds``,
signals held back while the record is written), and ``DELETE /batches/ID`` reaches it
through ``cancelled``: a shared set of run ids checked between moments, which ends the run
KILLED.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def warm() -> None:
    """The pool's initializer: import what a run uses before any run starts, so that a
    timeout or a cancellation never interrupts an import half-way (a module left half
    initialised would break every later run of the process)."""
    import matplotlib

    matplotlib.use("Agg")
    import cirq  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import mlflow  # noqa: F401

    from lret_runner import circuits, experiment, noise, plots  # noqa: F401
    from lret_runner.simulators import cirq_sim, fdm, lret  # noqa: F401
    from lret_runner.tracking import trackers  # noqa: F401


def execute(
    config: dict[str, Any], run_id: str, tracking_uri: str, output_dir: str, cancelled: Any
) -> str:
    """Prepare and run ``config`` into the open run ``run_id``; its final status."""
    from omegaconf import OmegaConf

    from lret_runner import experiment
    from lret_runner.task.terminal import Signals
    from lret_runner.tracking import MlflowTracker

    cfg = OmegaConf.create(config)
    tracker = MlflowTracker(tracking_uri, None, 10.0)
    out = Path(output_dir)

    def progress(done: int, total: int) -> None:
        if run_id in cancelled:
            raise KeyboardInterrupt("cancelled through the API")

    if run_id in cancelled:  # cancelled while it waited for this worker
        from lret_runner.tracking import vocabulary as V

        tracker.set_tags(run_id, {V.STATUS: "KILLED", V.ERROR: "cancelled through the API"})
        tracker.end_run(run_id, "KILLED")
        return "KILLED"
    with Signals(cfg.run.timeout_seconds) as signals:
        signals.arm()
        try:
            prepared = experiment.prepare(cfg)
        except Exception as exc:  # it validated in the server; memory may differ now
            return experiment.record_failure(
                cfg, tracker, exc, output_dir=out, run_id=run_id, recording=signals.recording
            ).status
        return experiment.run(
            prepared,
            tracker,
            output_dir=out,
            run_id=run_id,
            progress=progress,
            recording=signals.recording,
        ).status
