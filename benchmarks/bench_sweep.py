"""Sweep cost: what a job costs beyond its simulation, on Hydra's basic launcher and on
joblib, and how much faster joblib runs a sweep of real jobs. One run, one markdown
report; every ratio is between numbers measured in the same run.

1. **Per-job cost beyond simulation.** Sweeps of tiny jobs (``--qubits 3 --depth 4``,
   ``circuit.seed=range(N)``) of ``--small`` and ``--large`` jobs (default 10 and 40)
   on each launcher; a job's cost is the marginal wall time between the two sizes, so the
   fixed costs (interpreter start, imports, the store, the batch's summary, each joblib
   worker's imports) cancel out:

       basic:          (wall(large) - wall(small)) / (large - small) - mean simulation
       joblib, W = 2:  (wall(large) - wall(small)) * W / (large - small) - mean simulation

   (for joblib: the job's share of the W cores). It includes Hydra's own per-job work:
   the sweeper composes every job's config in the launching process before launching
   (``validate_batch_is_legal``) and the launcher composes it again for the job.
2. **joblib speed-up.** ``--real-jobs`` (40) jobs of about 1 s of simulation each:
   lret, random circuit n = 10, depth 20, depolarizing p = 1e-3 after every moment,
   ``rank_threshold`` 1e-4, ``backend.threads=1`` on both launchers (the mean simulation
   time is measured and printed); basic wall / joblib wall.

Every job runs with ``run.quiet=true run.compare_to_exact=false`` (the exact comparison
is a measurement of its own, not runner cost) and the default ``tracking=mlflow`` into a
temporary SQLite store whose schema is created before the clock starts; each sweep has
its own session. Other processes on the machine inflate the numbers: run it on an idle
machine, or with ``--repeats 3`` (medians).

    python benchmarks/bench_sweep.py
    python benchmarks/bench_sweep.py --repeats 3 --real-jobs 0    # per-job cost only
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
from typing import Any

LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib"]}  # + hydra.launcher.n_jobs=W
QUIET = ["run.quiet=true", "run.compare_to_exact=false"]
# a job of about 1 s of simulation on one thread (measured: see the report)
REAL_JOB = [
    "simulator=lret",
    "simulator.rank_threshold=1e-4",
    "circuit=random",
    "circuit.n_qubits=10",
    "circuit.depth=20",
    "noise=depolarizing",
    "noise.level=0.001",
    "noise.placement=moment",
    "backend.threads=1",
]


class Bench:
    def __init__(self, cwd: Path, args: argparse.Namespace) -> None:
        from mlflow import MlflowClient

        self.cwd, self.args, self.count = cwd, args, 0
        db = cwd / "mlruns" / "mlflow.db"
        db.parent.mkdir()
        self.uri = f"sqlite:///{db}"
        self.client = MlflowClient(tracking_uri=self.uri)
        self.client.search_experiments(max_results=1)  # the schema, before any timing

    def sweep(self, launcher: str, jobs: int, overrides: list[str]) -> tuple[float, float]:
        """(wall seconds, summed simulation seconds) of one multirun; it must finish."""
        self.count += 1
        session = f"bench_{launcher}_{self.count}"
        extra = list(LAUNCHERS[launcher])
        if launcher == "joblib":
            extra.append(f"hydra.launcher.n_jobs={self.args.workers}")
        env = {**os.environ, "MLFLOW_TRACKING_URI": self.uri}
        env.pop("LRET_BATCH_RUN_ID", None)
        cmd = [
            sys.executable,
            "-m",
            "lret_runner",
            "-m",
            f"circuit.seed=range({jobs})",
            f"session.name={session}",
            f"hydra.sweep.dir={self.cwd / 'multirun' / session}",
            *QUIET,
            *overrides,
            *extra,
            *self.args.overrides,
        ]
        start = time.perf_counter()
        out = subprocess.run(cmd, cwd=self.cwd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if out.returncode != 0:
            sys.exit(f"{' '.join(cmd)}\nexited {out.returncode}:\n{out.stderr[-4000:]}")
        kids = self.children(session)
        finished = [k for k in kids if k.info.status == "FINISHED"]
        if len(finished) != jobs:
            sys.exit(f"{launcher}: {len(finished)} of {jobs} jobs FINISHED")
        return wall, sum(k.data.metrics["simulation_time_seconds"] for k in finished)

    def children(self, session: str) -> list[Any]:
        """The job runs of the session's (one) batch."""
        exp = self.client.get_experiment_by_name(session)
        runs = self.client.search_runs([exp.experiment_id], max_results=10000)
        [parent] = [r for r in runs if r.data.tags.get("lret.batch") == "true"]
        return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]

    def median_sweep(self, launcher: str, jobs: int, overrides: list[str]) -> tuple[float, float]:
        runs = [self.sweep(launcher, jobs, overrides) for _ in range(self.args.repeats)]
        return statistics.median(w for w, _ in runs), statistics.median(s for _, s in runs)


def per_job_cost(bench: Bench, args: argparse.Namespace) -> None:
    tiny = [f"circuit.n_qubits={args.qubits}", f"circuit.depth={args.depth}"]
    small, large = args.small, args.large
    print(
        f"### Per-job cost beyond simulation ({' '.join(tiny)}; {small} and {large} jobs; "
        f"median of {args.repeats})\n"
    )
    print(
        f"| launcher | wall s, {small} jobs | wall s, {large} jobs | mean simulation s | "
        "marginal wall s per job | per-job cost beyond simulation s |"
    )
    print("|---|---|---|---|---|---|")
    for launcher in LAUNCHERS:
        w1, s1 = bench.median_sweep(launcher, small, tiny)
        w2, s2 = bench.median_sweep(launcher, large, tiny)
        workers = args.workers if launcher == "joblib" else 1
        marginal = (w2 - w1) / (large - small)
        sim = (s2 - s1) / (large - small)
        cost = marginal * workers - sim
        label = "basic" if launcher == "basic" else f"joblib (n_jobs={workers})"
        print(
            f"| {label} | {w1:.2f} | {w2:.2f} | {s2 / large:.4f} | {marginal:.3f} | {cost:.3f} |",
            flush=True,
        )
    print()


def speedup(bench: Bench, args: argparse.Namespace) -> None:
    jobs = args.real_jobs
    print(
        f"### joblib speed-up: {jobs} jobs of ~1 s of simulation "
        f"({' '.join(REAL_JOB)}; median of {args.repeats})\n"
    )
    print("| launcher | wall s | sum simulation s | mean simulation s per job | speed-up |")
    print("|---|---|---|---|---|")
    rows = []
    for launcher in LAUNCHERS:
        wall, sim = bench.median_sweep(launcher, jobs, REAL_JOB)
        rows.append((launcher, wall, sim))
    basic_wall = rows[0][1]
    for launcher, wall, sim in rows:
        label = "basic" if launcher == "basic" else f"joblib (n_jobs={args.workers})"
        print(
            f"| {label} | {wall:.2f} | {sim:.2f} | {sim / jobs:.3f} | {basic_wall / wall:.2f}x |",
            flush=True,
        )
    print()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--small", type=int, default=10, help="jobs of the smaller tiny sweep")
    ap.add_argument("--large", type=int, default=40, help="jobs of the larger tiny sweep")
    ap.add_argument("--workers", type=int, default=2, help="joblib's hydra.launcher.n_jobs")
    ap.add_argument("--qubits", type=int, default=3, help="tiny jobs: circuit.n_qubits")
    ap.add_argument("--depth", type=int, default=4, help="tiny jobs: circuit.depth")
    ap.add_argument("--real-jobs", type=int, default=40, help="~1 s jobs (0: skip the speed-up)")
    ap.add_argument("--repeats", type=int, default=1, help="sweeps per point (median)")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every job")
    args = ap.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs, load average {load:.2f} at the start\n")
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        bench = Bench(Path(tmp), args)
        if args.large > args.small > 0:
            per_job_cost(bench, args)
        if args.real_jobs > 0:
            speedup(bench, args)


if __name__ == "__main__":
    main()
