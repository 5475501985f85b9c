"""A sweep on Slurm through submitit (``cloud=slurm``), every job's result collected on its
own.

Hydra's submitit launcher submits the sweep as one array job and then asks each job for
its result in turn, so the first job that was cancelled (``scancel``) or lost raises in
the launcher: the jobs after it are never collected, and a Ctrl-C while it waits leaves
the array running on the cluster. :func:`launch` submits the same way (the same
executor settings and job function) but waits for every job: a cancelled job is an
interruption and a lost one that job's failure, the others are still collected, and an
interrupt cancels the jobs that have not finished (``scancel``) before it propagates.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

log = logging.getLogger(__name__)


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
    """``launcher`` is a ``hydra_submitit_launcher`` ``SlurmLauncher`` (its params, config
    and job function); returns one ``JobReturn`` per job."""
    import submitit
    from hydra.core.singleton import Singleton
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    config = launcher.config
    params = dict(launcher.params)
    executor_keys = {"max_num_timeout", "python"}
    executor = submitit.AutoExecutor(
        folder=params.pop("submitit_folder"),
        cluster="slurm",
        **{f"slurm_{k}": params.pop(k) for k in executor_keys if k in params},
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(config.hydra.sweep.mode), 8))
    log.info(f"Slurm sweep output dir: {sweep_dir}")
    job_params = []
    for num, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info(f"\t#{num} : {' '.join(overrides)}")
        job_params.append(
            (list(overrides), "hydra.sweep.dir", num, f"job_id_for_{num}", Singleton.get_state())
        )
    jobs = executor.map_array(launcher, *zip(*job_params, strict=True))
    try:
        return [_result(job, overrides) for job, overrides in zip(jobs, job_overrides, strict=True)]
    except KeyboardInterrupt:
        unfinished = [job for job in jobs if not job.done()]
        for job in unfinished:
            job.cancel(check=False)
        if unfinished:
            ids = ", ".join(job.job_id for job in unfinished)
            log.warning(f"interrupted: cancelled the Slurm jobs that had not finished ({ids})")
        raise


def _result(job: Any, overrides: Sequence[str]) -> Any:
    """The job's ``JobReturn``. A job that ended without one is a failed ``JobReturn``:
    cancelled (``scancel``) it holds a ``KeyboardInterrupt`` (the sweep ends KILLED, as
    when a run is interrupted), lost in any other way an error saying how it ended."""
    from hydra.core.utils import JobReturn, JobStatus
    from submitit.core.utils import UncompletedJobError

    try:
        return job.results()[0]
    except UncompletedJobError as exc:
        ret = JobReturn(overrides=list(overrides))
        ret.status = JobStatus.FAILED
        why = f"Slurm job {job.job_id} ended {job.state} without a result"
        cancelled = job.state.startswith("CANCELLED")
        ret.return_value = (
            KeyboardInterrupt(why)
            if cancelled
            else RuntimeError(f"{why}: {str(exc).splitlines()[0]}")
        )
        return ret
