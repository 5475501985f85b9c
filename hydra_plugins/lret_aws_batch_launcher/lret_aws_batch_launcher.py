"""``AwsBatchLauncher``: a sweep as one AWS Batch array job (``cloud=aws_batch``).

A thin class: the work (staging the resolved job configs, submitting, waiting, Hydra's
results) is in :mod:`lret_runner.cloud.jobs` and :mod:`lret_runner.cloud.aws_batch`, whose
client is imported only when a sweep launches.
"""

from __future__ import annotations

from hydra.plugins.launcher import Launcher

from lret_runner.cloud.jobs import RemoteLauncher


class AwsBatchLauncher(RemoteLauncher, Launcher):
    engine_name = "aws_batch"
