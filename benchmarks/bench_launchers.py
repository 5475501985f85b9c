"""Launcher cost: the same sweep of tiny jobs on every engine that can run here, as wall
time per job, against Hydra's basic launcher measured in the same run.

Each launcher runs ``--small`` and ``--large`` jobs (default 4 and 12: random circuit,
3 qubits, depth 4, ``circuit.seed=range(N)``); a job's cost is the marginal wall time
between the two sizes, so the fixed costs (interpreter start, imports, the batch and its
summary, a cluster's first worker) cancel out:

    per job = (wall(large) - wall(small)) / (large - small)

Launchers: ``basic`` (the reference, in process), ``joblib`` (2 workers), ``cloud=slurm``
(when ``sinfo`` shows an idle node: ``make slurm-up``), ``cloud=ray`` (a cluster this
script starts on a free loopback port with ``scripts/ray-up.sh``), ``cloud=k8s`` against
the tests' local API-server stub (its pods are local processes: this measures the
launcher, the ConfigMap staging and the stub's process per index, not a real cluster).
Every sweep writes into its own temporary SQLite store (the remote engine: a real
``mlflow server``). Other processes on the machine inflate the numbers: run it idle.

    python benchmarks/bench_launchers.py [--small 4] [--large 12]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["circuit.n_qubits=3", "circuit.depth=4", "run.quiet=true", "run.compare_to_exact=false"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sweep(launcher: list[str], jobs: int, env: dict[str, str]) -> float:
    """Wall seconds of one sweep of ``jobs`` tiny jobs in a fresh directory and store."""
    with tempfile.TemporaryDirectory(prefix="bench-launchers-") as tmp:
        run_env = {**env, "OPENBLAS_NUM_THREADS": "1"}
        run_env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tmp}/mlruns/mlflow.db")
        # the store's schema is made before the clock starts (seconds, once per store)
        subprocess.run(
            [sys.executable, "-c", "import sys; from lret_runner.tracking.store import connect;"
             " connect(sys.argv[1])", run_env["MLFLOW_TRACKING_URI"]],
            check=True, env=run_env, capture_output=True,
        )  # fmt: skip
        seeds = ",".join(str(s) for s in range(jobs))
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "lret_runner", "-m", *launcher, *TINY, f"circuit.seed={seeds}"],
            cwd=tmp, env=run_env, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{launcher}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
        return wall


def slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True)
    return any(s.startswith(("idle", "mixed")) for s in out.stdout.split())


def with_ray(measure: Callable[[list[str]], tuple[float, float]]) -> tuple[float, float] | None:
    ray = Path(sys.executable).parent / "ray"
    if not ray.exists():
        return None
    port = _free_port()
    where = tempfile.mkdtemp(prefix="bench-ray-")
    env = {**os.environ, "RAY": str(ray), "RAY_PORT": str(port), "RAY_CPUS": "2"}
    subprocess.run(["bash", str(ROOT / "scripts/ray-up.sh")], cwd=where, env=env, check=True)
    try:
        return measure(["cloud=ray", f"cloud.address=127.0.0.1:{port}"])
    finally:
        subprocess.run([str(ray), "stop", "--force"], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)


def with_k8s_stub(measure: Callable[..., tuple[float, float]]) -> tuple[float, float] | None:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from e2e.conftest import start_tracking_server, stop_process_group
        from stubs.k8s_api import StubCluster
    except ImportError:
        return None
    root = Path(tempfile.mkdtemp(prefix="bench-k8s-"))
    server, tracking = start_tracking_server(root)
    try:
        with StubCluster(root / "cluster") as cluster:
            kubeconfig = cluster.kubeconfig(root / "kubeconfig")
            env = {"KUBECONFIG": str(kubeconfig), "MLFLOW_TRACKING_URI": tracking.uri}
            return measure(
                ["cloud=k8s", "tracking=server", f"tracking.uri={tracking.uri}",
                 "cloud.parallelism=2", "cloud.poll_seconds=0.2",
                 "cloud.max_poll_seconds=0.5"],
                env,
            )  # fmt: skip
    finally:
        stop_process_group(server)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=4)
    parser.add_argument("--large", type=int, default=12)
    args = parser.parse_args()

    def measure(launcher: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
        full = {**os.environ, **(env or {})}
        small, large = sweep(launcher, args.small, full), sweep(launcher, args.large, full)
        return large, (large - small) / (args.large - args.small)

    rows: list[tuple[str, tuple[float, float] | None, str]] = []
    rows.append(("basic", measure([]), ""))
    rows.append(("joblib (2 workers)", measure(["hydra/launcher=joblib"]), ""))
    rows.append(
        ("cloud=slurm", measure(["cloud=slurm"]), "")
        if slurm_up()
        else ("cloud=slurm", None, "no Slurm node is up (make slurm-up)")
    )
    ray = with_ray(measure)
    rows.append(("cloud=ray", ray, "" if ray else "ray is not installed"))
    k8s = with_k8s_stub(measure)
    rows.append(("cloud=k8s (API stub)", k8s, "" if k8s else "the test stubs are missing"))

    base = rows[0][1][1]  # type: ignore[index]
    print(f"\nSweeps of {args.small} and {args.large} tiny jobs (3 qubits, depth 4)\n")
    print(f"| launcher | wall, {args.large} jobs | per job | per job / basic |")
    print("|---|---|---|---|")
    for name, result, why in rows:
        if result is None:
            print(f"| {name} | skipped: {why} | | |")
        else:
            print(f"| {name} | {result[0]:.1f} s | {result[1]:.2f} s | {result[1] / base:.2f} |")


if __name__ == "__main__":
    main()
