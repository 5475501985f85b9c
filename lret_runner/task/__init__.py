"""The Hydra task: the terminal around one run (progress, summary, signals, exit codes)
and the batch callback that makes a multirun one parent run with a child per job."""
