"""lret_runner's GCP Batch launcher plugin (Hydra finds plugins only under hydra_plugins)."""
