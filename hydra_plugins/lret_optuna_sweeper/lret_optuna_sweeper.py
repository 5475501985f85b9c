"""``LretOptunaSweeper``: Hydra's Optuna sweeper config, lret_runner's study loop.

The ``+optimize=NAME`` presets select Hydra's ``optuna`` sweeper config and set its
``_target_`` to this class. It takes the same settings; the work (sampler by name, the
study next to the MLflow store, generated search spaces, failed and stale trials) is in
:mod:`lret_runner.optimize.study`, imported when the sweep starts.
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class LretOptunaSweeper(Sweeper):
    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: Any | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        custom_search_space: str | None,
        params: DictConfig | None,
    ) -> None:
        self.settings = {
            "sampler": sampler,
            "direction": direction,
            "storage": storage,
            "study_name": study_name,
            "n_trials": n_trials,
            "n_jobs": n_jobs,
            "max_failure_rate": max_failure_rate,
            "custom_search_space": custom_search_space,
            "params": params,
        }
        self.sweeper: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from lret_runner.optimize.study import make_sweeper

        self.sweeper = make_sweeper(config, **self.settings)
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweeper.sweep(arguments)
