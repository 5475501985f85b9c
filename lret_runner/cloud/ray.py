"""A sweep on a Ray cluster through Hydra's Ray launcher (``cloud=ray``), every job's result
collected on its own.

Hydra's Ray launcher starts one Ray task per job and then gets their results in turn, so
a task that died (its worker killed, the run interrupted) raises in the launcher and the
results after it are never collected; a Ctrl-C while it waits leaves the tasks running on
the cluster. :func:`launch` starts the same tasks (Hydra's own ``launch_job_on_ray``, each
job's config composed here with what the batch handed off) but waits for every one: a
task that failed is that job's failure, and an interrupt cancels the tasks that have not
finished (``ray.cancel``: the run inside ends KILLED) before it propagates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf, open_dict

log = logging.getLogger(__name__)


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
    """``launcher`` holds the Ray settings (``ray_cfg``), config and task; one ``JobReturn``
    per job."""
    import ray
    from hydra.core.singleton import Singleton
    from hydra.core.utils import configure_log, setup_globals
    from hydra_plugins.hydra_ray_launcher._launcher_util import launch_job_on_ray, start_ray

    setup_globals()
    config, context = launcher.config, launcher.hydra_context
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    log.info(f"Ray: {len(job_overrides)} jobs, sweep output dir: {sweep_dir}")
    start_ray(OmegaConf.create(OmegaConf.to_container(launcher.ray_cfg.init, resolve=True)))
    refs = []
    for num, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info(f"\t#{num} : {' '.join(overrides)}")
        sweep_config = context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"job_id_for_{num}"
            sweep_config.hydra.job.num = num
        refs.append(
            launch_job_on_ray(
                context,
                launcher.ray_cfg.remote,
                sweep_config,
                launcher.task_function,
                Singleton.get_state(),
            )
        )
    try:
        return [_result(ref, overrides) for ref, overrides in zip(refs, job_overrides, strict=True)]
    except KeyboardInterrupt:
        _, pending = ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in pending:
            ray.cancel(ref)
        if pending:
            log.warning(f"interrupted: cancelled the {len(pending)} Ray tasks still running")
        raise


def _result(ref: Any, overrides: Sequence[str]) -> Any:
    """The task's ``JobReturn``; a task that ended without one is a failed ``JobReturn``
    holding a ``KeyboardInterrupt`` if it was cancelled, else the error."""
    import ray
    from hydra.core.utils import JobReturn, JobStatus

    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        ret = JobReturn(overrides=list(overrides))
        ret.status = JobStatus.FAILED
        why = f"the Ray task ended without a result: {str(exc).splitlines()[0]}"
        cancelled = isinstance(exc, ray.exceptions.TaskCancelledError)
        ret.return_value = KeyboardInterrupt(why) if cancelled else RuntimeError(why)
        return ret
