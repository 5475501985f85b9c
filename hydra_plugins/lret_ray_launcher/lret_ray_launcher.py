"""``LretRayLauncher``: Hydra's Ray launcher settings and tasks, every job's result collected
on its own and the tasks cancelled on Ctrl-C (:mod:`lret_runner.cloud.ray`).

It does not subclass Hydra's ``RayLauncher``: importing that imports ``ray``, and Hydra
imports every plugin at start-up, so a machine without the ``ray`` extra would warn on
every command. ``cloud=ray`` says how to install it instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class LretRayLauncher(Launcher):
    def __init__(self, ray: DictConfig) -> None:
        self.ray_cfg = ray  # init: ray.init's arguments; remote: each task's resources
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        from lret_runner.cloud.ray import launch

        return launch(self, job_overrides, initial_job_idx)
