"""lret_runner's Kubernetes launcher plugin (Hydra finds plugins only under hydra_plugins)."""
