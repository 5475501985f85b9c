"""``python -m lret_runner +experiment=NAME [overrides]``: the Hydra entry point.

The config tree ships inside the package (``lret_runner/conf``); ``--config-dir DIR``
adds a directory of your own presets to Hydra's search path. The work is in
:mod:`lret_runner.task.terminal`.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from lret_runner.config import register_configs

register_configs()

# the only config-selected Python targets Hydra may instantiate
TRUSTED_TARGETS = [
    "lret_runner.task.batch.BatchCallback",
    "lret_runner.task.terminal.OutputDirCheck",
]


@hydra.main(config_path="conf", config_name="config", execution_whitelist=TRUSTED_TARGETS)
def main(cfg: DictConfig) -> float | None:
    from lret_runner.task.terminal import run_from_hydra

    return run_from_hydra(cfg)


if __name__ == "__main__":
    sys.exit(main())
