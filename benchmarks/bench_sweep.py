"""Sweep overhead: one multirun of tiny circuits on Hydra's basic launcher and on joblib.

Runs ``python -m lret_runner -m circuit.n_qubits=3 circuit.depth=4 'circuit.seed=range(N)'
run.quiet=true`` (N = ``--jobs``, default 20) from a temporary directory into a temporary
SQLite store, once with the basic launcher (sequential, in-process) and once with
``hydra/launcher=joblib hydra.launcher.n_jobs=W`` (W = ``--workers``, default 2). For each
it measures the wall time of the whole command, sums the children's
``simulation_time_seconds`` from MLflow, and prints one markdown table with the per-job
overhead (wall - sum of simulation) / N and the speedup (basic wall / joblib wall).

The store's schema is created before the clock starts (a one-off cost of several
seconds that is not per job); each launcher writes its own session.

    python benchmarks/bench_sweep.py
    python benchmarks/bench_sweep.py --jobs 40 --workers 4 run.shots=0
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCHERS = {
    "basic": [],
    "joblib": ["hydra/launcher=joblib"],  # + hydra.launcher.n_jobs=W
}


def one_sweep(
    cwd: Path, uri: str, session: str, launcher: list[str], args: argparse.Namespace
) -> float:
    """Wall seconds of one multirun (it must exit 0)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": uri}
    env.pop("LRET_BATCH_RUN_ID", None)
    cmd = [
        sys.executable,
        "-m",
        "lret_runner",
        "-m",
        f"circuit.n_qubits={args.qubits}",
        f"circuit.depth={args.depth}",
        f"circuit.seed=range({args.jobs})",
        "run.quiet=true",
        f"session.name={session}",
        *launcher,
        *args.overrides,
    ]
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)}\nexited {out.returncode}:\n{out.stderr[-4000:]}")
    return wall


def batch_children(client, session: str) -> list:
    """The job runs of the session's (one) batch."""
    exp = client.get_experiment_by_name(session)
    runs = client.search_runs([exp.experiment_id], max_results=10000)
    [parent] = [r for r in runs if r.data.tags.get("lret.batch") == "true"]
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--jobs", type=int, default=20, help="sweep size: circuit.seed=range(N)")
    ap.add_argument("--workers", type=int, default=2, help="joblib's hydra.launcher.n_jobs")
    ap.add_argument("--qubits", type=int, default=3)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=1, help="sweeps per launcher (median wall)")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every job")
    args = ap.parse_args()

    from mlflow import MlflowClient

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        cwd = Path(tmp)
        db = cwd / "mlruns" / "mlflow.db"
        db.parent.mkdir()
        uri = f"sqlite:///{db}"
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)  # creates the schema before any timing
        for name, launcher in LAUNCHERS.items():
            if name == "joblib":
                launcher = [*launcher, f"hydra.launcher.n_jobs={args.workers}"]
            walls, sims = [], []
            for i in range(args.repeats):
                session = f"bench_{name}_{i}"
                walls.append(one_sweep(cwd, uri, session, launcher, args))
                kids = batch_children(client, session)
                finished = [k for k in kids if k.info.status == "FINISHED"]
                if len(finished) != args.jobs:
                    sys.exit(f"{name}: {len(finished)} of {args.jobs} jobs FINISHED")
                sims.append(sum(k.data.metrics["simulation_time_seconds"] for k in finished))
            wall, sim = statistics.median(walls), statistics.median(sims)
            label = name if name == "basic" else f"joblib (n_jobs={args.workers})"
            rows.append((label, wall, sim))

    basic_wall = rows[0][1]
    axes = " ".join(
        [f"circuit.n_qubits={args.qubits}", f"circuit.depth={args.depth}", *args.overrides]
    )
    print(f"{args.jobs} jobs: {axes} ({os.cpu_count()} CPUs, median of {args.repeats})\n")
    print("| launcher | wall s | sum simulation s | per-job overhead s | speedup vs basic |")
    print("|---|---|---|---|---|")
    for label, wall, sim in rows:
        overhead = (wall - sim) / args.jobs
        print(f"| {label} | {wall:.2f} | {sim:.3f} | {overhead:.3f} | {basic_wall / wall:.2f}x |")


if __name__ == "__main__":
    main()
