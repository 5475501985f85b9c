"""Runner overhead: wall time of `python -m lret_runner +experiment=quickstart` beyond the
engine's own simulation time, with tracking=mlflow (a warm SQLite store) and tracking=none.

Prints one markdown table of medians over ``--repeats`` runs (default 5).

    python benchmarks/bench_overhead.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(cwd: Path, tracking: str, overrides: list[str]) -> tuple[float, float]:
    """(wall seconds, simulation seconds) of one CLI run."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlruns' / 'mlflow.db'}"}
    cmd = [
        sys.executable,
        "-m",
        "lret_runner",
        "+experiment=quickstart",
        f"tracking={tracking}",
        "run.quiet=true",
        f"hydra.run.dir={cwd / 'out' / str(time.time_ns())}",
        *overrides,
    ]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    newest = max((cwd / "out").iterdir(), key=lambda p: p.name)
    return wall, json.loads((newest / "result.json").read_text())["simulation_time_seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = ap.parse_args()
    print("| tracking | median wall s | median simulation s | runner overhead s |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        one_run(cwd, "mlflow", args.overrides)  # creates the store: a one-off cost, not per run
        for tracking in ("mlflow", "none"):
            runs = [one_run(cwd, tracking, args.overrides) for _ in range(args.repeats)]
            wall = statistics.median(w for w, _ in runs)
            sim = statistics.median(s for _, s in runs)
            print(f"| {tracking} | {wall:.2f} | {sim:.3f} | {wall - sim:.2f} |", flush=True)


if __name__ == "__main__":
    main()
