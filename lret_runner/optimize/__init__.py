"""Optimisation with Optuna through Hydra's Optuna sweeper (``-m +optimize=NAME``).

- :mod:`.objectives`: what a trial returns (``optimize.objective``), checked before the
  study starts;
- :mod:`.study`: the study (storage, name, sampler by name, generated search spaces) and
  the sweep loop the ``hydra_plugins.lret_optuna_sweeper`` plugin runs;
- :mod:`.report`: the best trial, plots and tables on the batch's parent MLflow run.
"""
