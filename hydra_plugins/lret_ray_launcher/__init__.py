"""lret_runner's Ray launcher plugin (Hydra finds plugins only under hydra_plugins)."""
