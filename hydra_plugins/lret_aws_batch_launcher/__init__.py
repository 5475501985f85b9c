"""lret_runner's AWS Batch launcher plugin (Hydra finds plugins only under hydra_plugins)."""
