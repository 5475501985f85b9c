"""The config tree (Hydra searches it as ``pkg://lret_runner.conf``)."""
