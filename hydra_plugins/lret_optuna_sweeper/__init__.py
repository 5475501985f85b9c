"""lret_runner's Optuna sweeper plugin (Hydra finds plugins only under ``hydra_plugins``)."""
