"""Where a sweep's jobs run (``cloud=NAME``), each preset's settings checked before anything
is submitted or recorded.

- ``local``: this machine (Hydra's basic launcher, or joblib).
- ``slurm``: submitit's Slurm launcher; the nodes share this machine's filesystem.
- ``ray``: Hydra's Ray launcher against a running Ray cluster.
- ``k8s``, ``aws_batch``, ``gcp_batch``: remote engines driven through their own clients
  (:mod:`.kubernetes`, :mod:`.aws_batch`, :mod:`.gcp_batch`). Their jobs run the image on
  machines that share nothing with this one: each gets its resolved config staged by
  :mod:`.jobs` (never a path of this machine) and reports to a tracking server.

:func:`check` is called by the batch callback at the start of a multirun, so a missing or
wrong setting (a bucket, a region, a namespace, a partition, absent credentials) fails
naming the setting before the batch run exists.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

from lret_runner.errors import ConfigError, check_range

REMOTE = ("k8s", "aws_batch", "gcp_batch")  # engines whose jobs share no files with us
# (low, high) of every numeric setting; None: unbounded; a setting left null is not checked
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "timeout_min": (1, None),
    "cpus_per_task": (1, None),
    "mem_gb": (1, None),
    "array_parallelism": (1, None),
    "num_cpus": (1, None),
    "parallelism": (1, None),
    "backoff_limit_per_index": (0, None),
    "ttl_seconds_after_finished": (0, None),
    "vcpus": (1, None),
    "memory_mib": (128, None),
    "retry_attempts": (1, 10),  # AWS Batch allows 1-10 attempts
    "timeout_seconds": (60, None),  # AWS Batch's minimum job timeout
    "cpu_milli": (1, None),
    "max_retry_count": (0, 10),  # Cloud Batch allows 0-10 retries
    "max_run_duration_seconds": (1, None),
}
_POSITIVE = ("poll_seconds", "max_poll_seconds", "timeout_minutes")
_CONNECT_SECONDS = 3.0


def check(config: Any, root: Path) -> None:
    """Every setting of ``config.cloud`` and what the engine needs (tool, cluster,
    credentials, a tracking server for remote jobs); a :class:`ConfigError` naming the
    setting otherwise. Nothing is created."""
    cloud = config.cloud
    if cloud.name == "local":
        return
    for key, (low, high) in _RANGES.items():
        if cloud.get(key) is not None:
            check_range(f"cloud.{key}", cloud[key], low, high, integer=True)
    for key in _POSITIVE:
        if cloud.get(key) is not None:
            check_range(f"cloud.{key}", cloud[key], 0, None, open_low=True)
    if cloud.name == "slurm":
        _check_slurm(cloud)
    elif cloud.name == "ray":
        _check_ray(cloud)
    else:
        from lret_runner.cloud.jobs import engine

        check_remote_tracking(config)
        engine(cloud.name).check(cloud)


def check_remote_tracking(config: Any) -> None:
    """Remote jobs report to a server (or a database), not to a store on this machine's
    disk. The address must be the one the jobs reach (a loopback one only serves jobs
    that run on this machine, as with local emulators)."""
    tracking = config.tracking
    where = f"cloud={config.cloud.name} runs its jobs on other machines"
    if tracking.name == "none":
        raise ConfigError(
            f"tracking=none is invalid with {where}: their results would be lost; use "
            "tracking=server tracking.uri=http://HOST:5000 (make tracking-server runs one)"
        )
    if tracking.name == "server":
        uri = str(tracking.uri)
        if not re.match(r"https?://[^/]+", uri):
            raise ConfigError(
                f"tracking.uri={uri!r} is invalid: must be the http:// or https:// address "
                "of an MLflow tracking server"
            )
        return
    uri = str(tracking.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "")
    if not re.match(r"(https?|postgresql[+\w]*|mysql[+\w]*|mssql[+\w]*)://", uri):
        shown = uri or "the SQLite store under mlruns/"
        raise ConfigError(
            f"tracking.tracking_uri={shown} is invalid with {where}: they cannot reach a "
            "store on this machine's disk; use tracking=server tracking.uri=http://HOST:5000 "
            "(an MLflow server) or a database URL"
        )


def _check_slurm(cloud: Any) -> None:
    if shutil.which("sbatch") is None:
        raise ConfigError(
            "cloud=slurm submits with Slurm's sbatch, which is not on PATH: run it on a "
            "login node of the cluster, or start a one-node cluster here with make slurm-up"
        )
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=15, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        raise ConfigError(
            f"cloud=slurm: the Slurm controller does not answer (sinfo: "
            f"{str(detail).strip()[:200]}): start it (make slurm-up) or check slurm.conf"
        ) from None
    partitions = [p.rstrip("*") for p in out.split()]
    if cloud.partition is not None and cloud.partition not in partitions:
        raise ConfigError(
            f"cloud.partition={cloud.partition!r} is invalid: this cluster's partitions are "
            f"{', '.join(partitions) or 'none'}"
        )


def ray_address(address: str) -> tuple[str, int] | None:
    """(host, port) of a Ray cluster's address: ``host:port`` or ``ray://host:port``, or
    ``auto``: ``$RAY_ADDRESS``, else the cluster started on this machine (None: none)."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            current = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray/ray_current_cluster"
            address = current.read_text().strip() if current.is_file() else ""
        if not address:
            return None
    match = re.fullmatch(r"(?:ray://)?([^:/]+):(\d+)", address)
    if match is None:
        raise ConfigError(
            f"cloud.address={address!r} is invalid: must be HOST:PORT, ray://HOST:PORT or auto"
        )
    return match.group(1), int(match.group(2))


def _check_ray(cloud: Any) -> None:
    try:
        import hydra_plugins.hydra_ray_launcher  # noqa: F401
    except ImportError:
        raise ConfigError(
            "cloud=ray needs Hydra's Ray launcher: pip install 'lret_runner[ray]'"
        ) from None
    where = ray_address(str(cloud.address))
    if where is None:
        raise ConfigError(
            "cloud.address=auto found no Ray cluster ($RAY_ADDRESS is not set and none was "
            "started on this machine): start one (make ray-up) or set cloud.address=HOST:PORT"
        )
    try:
        socket.create_connection(where, timeout=_CONNECT_SECONDS).close()
    except OSError as exc:
        raise ConfigError(
            f"cloud.address={cloud.address}: no Ray cluster answers at {where[0]}:{where[1]} "
            f"({exc.strerror or exc}): start it (make ray-up) or fix the address"
        ) from None
