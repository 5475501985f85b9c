"""The work a REST API worker process does: one config, run into the run the API opened.

Runs in a process of the server's pool (started with ``spawn``), so an engine error, a
memory refusal or a crash in one run never reaches the server's routes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def execute(config: dict[str, Any], run_id: str, tracking_uri: str, output_dir: str) -> str:
    """Prepare and run ``config`` into the open run ``run_id``; its final status."""
    from omegaconf import OmegaConf

    from lret_runner import experiment
    from lret_runner.tracking import MlflowTracker

    cfg = OmegaConf.create(config)
    tracker = MlflowTracker(tracking_uri, None, 10.0)
    out = Path(output_dir)
    try:
        prepared = experiment.prepare(cfg)
    except Exception as exc:  # it composed and validated in the server; memory may differ now
        return experiment.record_failure(cfg, tracker, exc, output_dir=out, run_id=run_id).status
    return experiment.run(prepared, tracker, output_dir=out, run_id=run_id).status
