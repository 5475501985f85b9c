"""``LretSlurmLauncher``: Hydra's submitit Slurm launcher (the same settings and jobs) that
collects every job's result on its own and cancels the array on Ctrl-C
(:mod:`lret_runner.cloud.slurm`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher


class LretSlurmLauncher(SlurmLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        from lret_runner.cloud.slurm import launch

        return launch(self, job_overrides, initial_job_idx)
