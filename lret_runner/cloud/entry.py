"""``python -m lret_runner.cloud.entry SOURCE [--index I]``: what every remote job runs.

``SOURCE`` is where the launcher staged the sweep's job configs: a folder (a Kubernetes
ConfigMap mounted into the pod), ``s3://BUCKET/PREFIX`` (AWS Batch) or
``gs://BUCKET/PREFIX`` (GCP Batch). The index is ``--index``, else the engine's variable
(``JOB_COMPLETION_INDEX``, ``AWS_BATCH_JOB_ARRAY_INDEX``, ``BATCH_TASK_INDEX``), else 0.
The job's config and the input files it names are fetched into a temporary folder and
run (:func:`lret_runner.cloud.jobs.run_index`); the exit code is the run's: 0 FINISHED,
1 FAILED, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from lret_runner.cloud.jobs import config_name, engine, job_index, run_index

SCHEMES = {"s3": "aws_batch", "gs": "gcp_batch"}  # object stores: the engine that reads them


def fetch(source: str, index: int, folder: Path) -> None:
    """Copy job ``index``'s config and its input files from an object store to ``folder``."""
    from lret_runner.config import INPUT_PATHS, input_file

    scheme = source.split("://", 1)[0]
    if scheme not in SCHEMES:
        raise SystemExit(f"lret_runner: {source} is not a folder, s3:// or gs:// location")
    module = engine(SCHEMES[scheme])
    name = config_name(index)
    (folder / name).write_bytes(module.read(source, name))
    cfg = OmegaConf.load(folder / name)
    for key in INPUT_PATHS:
        value = input_file(cfg, key)
        if value is not None and "/" not in value:
            (folder / value).write_bytes(module.read(source, value))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lret_runner.cloud.entry")
    parser.add_argument("source", help="a folder, s3://BUCKET/PREFIX or gs://BUCKET/PREFIX")
    parser.add_argument("--index", type=int, default=None, help="the job's array index")
    args = parser.parse_args(argv)
    index = job_index() if args.index is None else args.index
    if "://" not in args.source:
        return run_index(Path(args.source), index)
    with tempfile.TemporaryDirectory(prefix="lret-job-") as tmp:
        fetch(args.source, index, Path(tmp))
        return run_index(Path(tmp), index)


if __name__ == "__main__":
    sys.exit(main())
