"""lret_runner's Slurm launcher plugin (Hydra finds plugins only under hydra_plugins)."""
