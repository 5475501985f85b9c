"""``python -m lret_runner +experiment=NAME [overrides]``: config -> run -> tracking.

Composes and validates the config, runs the engine (progress bar for long runs),
prints a summary, writes ``result.json`` into Hydra's output directory and records the
run in MLflow. A failure is recorded (FAILED, or KILLED on Ctrl-C) and ends the
process with a one-paragraph message and a non-zero exit (traceback with
``hydra.verbose=true``).
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from lret_runner.config import register_configs

register_configs()


# the only config-selected Python targets Hydra may instantiate
TRUSTED_TARGETS = ["lret_runner.sweep.BatchCallback"]


@hydra.main(config_path="../conf", config_name="config", execution_whitelist=TRUSTED_TARGETS)
def main(cfg: DictConfig) -> float | None:
    from lret_runner.runner import run_from_hydra

    return run_from_hydra(cfg)


if __name__ == "__main__":
    sys.exit(main())
