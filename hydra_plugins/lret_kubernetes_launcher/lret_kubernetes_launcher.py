"""``KubernetesLauncher``: a sweep as one Kubernetes Indexed Job (``cloud=k8s``).

A thin class: the work (staging the resolved job configs, submitting, waiting, Hydra's
results) is in :mod:`lret_runner.cloud.jobs` and :mod:`lret_runner.cloud.kubernetes`, whose
client is imported only when a sweep launches.
"""

from __future__ import annotations

from hydra.plugins.launcher import Launcher

from lret_runner.cloud.jobs import RemoteLauncher


class KubernetesLauncher(RemoteLauncher, Launcher):
    engine_name = "k8s"
