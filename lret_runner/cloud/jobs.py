"""The jobs of a sweep on a remote engine (Kubernetes, AWS Batch, GCP Batch): the launcher
every engine shares, the files it stages, the entry each job runs, and Hydra's results.

**Launching side** (:class:`RemoteLauncher`, Hydra's launcher API). Each job's config is
composed in this process (``load_sweep_config``: with what the batch callback handed off,
so the batch id rides in ``hydra.job.env_set``), then made portable by :func:`stage`: the
task part resolved (``circuit.path`` copied in as ``inputs/<sha>-<name>``, named relative
to the job's folder), Hydra's part kept as Hydra needs it with the sweep directory moved
to the worker (``lret-output/<batch>``); written as ``job-<i>.yaml`` for array index
``i``. Nothing in a staged file is a path of this machine. The engine module
(``lret_runner.cloud.<engine>``) puts the files where its jobs read them, submits one
array job for the sweep and waits; it returns an :class:`Outcome` per index. The results
Hydra gets (:func:`returns`) come from the engine's states and, for Optuna, the trial's
objectives as the job logged them on its run in the tracking server.

**Job side** (:func:`run_index`, ``python -m lret_runner.cloud.entry SOURCE``): the config
of index ``i`` (``JOB_COMPLETION_INDEX``, ``AWS_BATCH_JOB_ARRAY_INDEX`` or
``BATCH_TASK_INDEX``) run by Hydra's ``run_job`` with the runner's own task, as every
other launcher runs a job: the run is a child of the batch in the tracking server.

An engine module provides ``check(cloud)`` (settings and credentials; nothing created),
``run(staged, cloud) -> list[Outcome]`` (submit, wait, clean up what it made if the
submission fails part way) and, for object stores, ``read(source, name) -> bytes``.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from lret_runner.errors import ConfigError

OUTPUT_DIR = "lret-output"  # the jobs' sweep directory, under the job's working directory
INDEX_ENV = ("JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX", "BATCH_TASK_INDEX")
LOG_TAIL = 2000  # characters of a failed job's log kept in its error


@dataclass
class Staged:
    """A sweep's jobs ready for an engine: ``files`` (name -> bytes) hold ``job-<i>.yaml``
    for i in 0..count-1 and the input files they name."""

    name: str  # the engine's job name: lret-<batch>-<first job number>, a DNS label
    batch_run_id: str | None  # the parent run in the tracking server
    first_num: int  # Hydra's job number of index 0
    overrides: list[list[str]]  # each job's overrides (as Hydra reports them)
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.overrides)

    @property
    def labels(self) -> dict[str, str]:
        """What the engine's objects carry: ``app=lret`` and the batch."""
        return {"app": "lret", "lret-batch": self.name}


@dataclass
class Outcome:
    """What the engine says of one array index."""

    index: int
    succeeded: bool
    reason: str = ""  # the engine's reason for a failure
    log: str = ""  # the end of the job's log, when the engine has it


def config_name(index: int) -> str:
    return f"job-{index}.yaml"


def stage(
    config_loader: Any, config: DictConfig, job_overrides: Sequence[Sequence[str]], first: int
) -> Staged:
    """Compose every job's config here and make it portable (see the module docstring)."""
    from lret_runner.config import INPUT_PATHS, input_file
    from lret_runner.tracking.vocabulary import BATCH_ENV

    batch_run_id = os.environ.get(BATCH_ENV)
    short = (batch_run_id or uuid.uuid4().hex)[:8]
    staged = Staged(
        name=f"lret-{short}-{first}",
        batch_run_id=batch_run_id,
        first_num=first,
        overrides=[list(o) for o in job_overrides],
    )
    root = Path(config.hydra.runtime.cwd)
    local = (*INPUT_PATHS, "tracking.tracking_uri")  # keys whose values are paths here
    for index, overrides in enumerate(job_overrides):
        cfg = config_loader.load_sweep_config(config, list(overrides))
        with open_dict(cfg):
            cfg.hydra.job.num = first + index
            cfg.hydra.job.id = f"{staged.name}-{index}"
            cfg.hydra.sweep.dir = f"{OUTPUT_DIR}/{staged.name}"
        hydra = OmegaConf.to_container(cfg.hydra, resolve=False)
        assert isinstance(hydra, dict)
        hydra["mode"] = "MULTIRUN"  # a job of a sweep (the batch is its parent run)
        hydra["runtime"] = {k: v for k, v in hydra["runtime"].items() if k in ("choices",)}
        hydra["job"]["env_set"] = OmegaConf.to_container(cfg.hydra.job.env_set, resolve=True)
        # what the user typed, without this machine's paths (the staged config has them)
        hydra["overrides"] = {
            "hydra": [],
            "task": [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in local],
        }
        task = copy.deepcopy(cfg)
        with open_dict(task):
            del task["hydra"]
        for key in INPUT_PATHS:
            path = input_file(task, key)
            if path is not None:
                name = _stage_input(staged, root / path, key)
                OmegaConf.update(task, key, name)
        data = OmegaConf.to_container(task, resolve=True)
        assert isinstance(data, dict)
        data["hydra"] = hydra
        staged.files[config_name(index)] = OmegaConf.to_yaml(OmegaConf.create(data)).encode()
    return staged


def _stage_input(staged: Staged, path: Path, key: str) -> str:
    """Copy an input file into the staged files; its name relative to the job's folder."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{key}={path} cannot be read ({exc.strerror or exc})") from None
    digest = hashlib.sha256(content).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", path.name)
    # a flat name: a Kubernetes ConfigMap's keys cannot hold '/'
    name = f"input-{digest}-{safe}"
    staged.files[name] = content
    return name


def returns(staged: Staged, outcomes: Sequence[Outcome], config: DictConfig) -> list[Any]:
    """Hydra's ``JobReturn`` of every job: the engine's state, and for a finished job of an
    Optuna sweep the objectives its run logged (read from the tracking server)."""
    from hydra.core.utils import JobReturn, JobStatus

    from lret_runner.task.terminal import RunFailed

    runs = _job_runs(staged, config)
    out = []
    for outcome in sorted(outcomes, key=lambda o: o.index):
        num = staged.first_num + outcome.index
        ret = JobReturn(overrides=staged.overrides[outcome.index], hydra_cfg=None, cfg=None)
        run = runs.get(num)
        if outcome.succeeded and (run is None or run.status == "FINISHED"):
            ret.status = JobStatus.COMPLETED
            ret.return_value = _objectives(run, config)
        else:
            why = (run.error if run is not None else None) or outcome.reason or "failed"
            if outcome.log:
                why += f"\n--- the end of its log ---\n{outcome.log[-LOG_TAIL:]}"
            ret.status = JobStatus.FAILED
            ret.return_value = RunFailed(f"job {num} ({staged.name} index {outcome.index}): {why}")
        out.append(ret)
    return out


def _job_runs(staged: Staged, config: DictConfig) -> dict[int, Any]:
    if staged.batch_run_id is None:
        return {}
    from lret_runner.tracking import make_tracker

    tracker = make_tracker(config.tracking)
    return {r.job_num: r for r in tracker.batch_jobs(staged.batch_run_id) if r.job_num is not None}


def _objectives(run: Any, config: DictConfig) -> Any:
    """The trial's values in the order of ``optimize.objective`` (as the sweeper's
    directions are), from the ``objective.*`` metrics of the job's run; None for a job
    that is not a trial."""
    from lret_runner.optimize.objectives import names, returned
    from lret_runner.tracking.vocabulary import OBJECTIVE_PREFIX

    logged = {} if run is None else run.metrics
    if not any(k.startswith(OBJECTIVE_PREFIX) for k in logged):
        return None
    order = names(config.optimize)
    return returned({k: logged[f"{OBJECTIVE_PREFIX}{k}"] for k in order})


def polls(
    cloud: Any,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[bool]:
    """The engines' status checks: yields at once, then after ``cloud.poll_seconds``,
    doubled after each check up to ``cloud.max_poll_seconds``. What it yields says whether
    ``cloud.timeout_minutes`` has run out: the caller checks once more, then gives up."""
    timeout = getattr(cloud, "timeout_minutes", None)
    deadline = None if timeout is None else clock() + 60 * float(timeout)
    delay = float(cloud.poll_seconds)
    while True:
        left = None if deadline is None else deadline - clock()
        yield left is not None and left <= 0
        sleep(delay if left is None else max(0.0, min(delay, deadline - clock())))
        delay = min(delay * 2, float(cloud.max_poll_seconds))


def engine(name: str) -> Any:
    """The module that drives a remote engine (``cloud.name``), imported when chosen."""
    return importlib.import_module(f"lret_runner.cloud.{ {'k8s': 'kubernetes'}.get(name, name) }")


class RemoteLauncher:
    """Hydra's launcher API over an engine module; the plugin classes in ``hydra_plugins``
    subclass it with their ``engine_name``."""

    engine_name = ""

    def __init__(self, **kwargs: Any) -> None:
        self.config: DictConfig | None = None
        self.hydra_context: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        from hydra.core.utils import configure_log

        assert self.config is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        if self.config.cloud.name != self.engine_name:
            raise ConfigError(
                f"hydra/launcher=lret_{self.engine_name} takes its settings from "
                f"cloud={self.engine_name}; choose cloud={self.engine_name} instead"
            )
        module = engine(self.engine_name)
        staged = stage(
            self.hydra_context.config_loader, self.config, job_overrides, initial_job_idx
        )
        print(
            f"{self.engine_name}: {staged.name}: {staged.count} jobs "
            f"(job numbers {staged.first_num}-{staged.first_num + staged.count - 1})",
            file=sys.stderr,
        )
        outcomes = module.run(staged, self.config.cloud)
        if outcomes is None:  # cloud.dry_run: the manifests were printed
            return []
        return returns(staged, outcomes, self.config)


# ---------------------------------------------------------------- the job side


def job_index(environ: Any = os.environ) -> int:
    """This job's array index from the engine's variable (0 when there is none: an engine
    runs a sweep of one job as a plain job)."""
    for name in INDEX_ENV:
        if environ.get(name, "") != "":
            return int(environ[name])
    return 0


def run_index(folder: Path, index: int) -> int:
    """Run job ``index`` of the configs in ``folder`` with Hydra's ``run_job`` and the
    runner's task; the exit code: 0 FINISHED, 1 FAILED, 130 interrupted."""
    from hydra.conf import HydraConf
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import JobStatus, run_job, setup_globals
    from hydra.types import HydraContext

    from lret_runner.__main__ import TRUSTED_TARGETS
    from lret_runner.config import register_configs
    from lret_runner.task.terminal import run_from_hydra

    register_configs()
    setup_globals()
    data = OmegaConf.to_container(OmegaConf.load(folder / config_name(index)))
    assert isinstance(data, dict)
    hydra = OmegaConf.structured(HydraConf)
    with open_dict(hydra):  # Hydra's own config has keys its schema lacks (hydra.env)
        hydra.merge_with(data.pop("hydra"))
        hydra.runtime.cwd = str(folder.absolute())
    cfg = OmegaConf.create(data)
    with open_dict(cfg):
        cfg.hydra = hydra
    HydraConfig.instance().set_config(cfg)
    from hydra._internal.callbacks import Callbacks

    context = HydraContext(config_loader=None, callbacks=Callbacks(), execution_whitelist=None)
    context.execution_whitelist = TRUSTED_TARGETS
    try:
        ret = run_job(
            hydra_context=context,
            task_function=run_from_hydra,
            config=cfg,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
    except KeyboardInterrupt:
        return 130
    if ret.status == JobStatus.COMPLETED:
        return 0
    exc = ret._return_value
    if isinstance(exc, KeyboardInterrupt):
        return 130
    print(f"lret_runner: job {index} failed: {exc}", file=sys.stderr)
    return 1
