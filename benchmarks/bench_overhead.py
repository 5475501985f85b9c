"""Runner overhead in a fresh process: what importing each heavy module costs, and the wall
time of one ``python -m lret_runner +experiment=quickstart`` beyond the engine's
simulation time. One run, one markdown report.

1. **Import cost by module**: ``import M`` timed inside a fresh interpreter (median of
   ``--repeats``), with the heavy modules it brings in. A module's time includes its
   dependencies that were not loaded yet (``import cirq`` loads numpy, scipy, sympy, pandas,
   networkx and matplotlib.pyplot: Cirq imports pyplot itself), so the rows overlap.
2. **A single run**: wall time of the quickstart preset (``run.quiet=true``) with
   ``tracking=mlflow`` (a warm SQLite store; plots on, the default for a single run, and
   off) and ``tracking=none``, medians over ``--repeats`` runs, and the heavy modules
   the command loaded (``-X importtime``).

The cost of a sweep job beyond its simulation (imports are paid once per process there)
is measured by ``benchmarks/bench_sweep.py``.

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

MODULES = [
    "numpy",
    "scipy.linalg",
    "omegaconf",
    "hydra",
    "cirq",
    "matplotlib.pyplot",
    "rich",
    "mlflow",
    "mlflow.store.tracking.sqlalchemy_store",
    "lret_runner.config",
    "lret_runner.tracking.trackers",
    "lret_runner.experiment",
    "lret_runner.task.terminal",
    "lret_runner.circuits",
    "lret_runner.plots",
]
HEAVY = ["numpy", "scipy", "cirq", "sympy", "pandas", "matplotlib", "rich", "mlflow", "sqlalchemy"]

_PROBE = """
import sys, time
start = time.perf_counter()
import {module}
took = time.perf_counter() - start
heavy = [m for m in {heavy!r} if m in sys.modules]
print(took, ",".join(heavy))
"""


def import_cost(module: str) -> tuple[float, str]:
    """(seconds, heavy modules loaded) of ``import module`` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module, heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    took, *heavy = out.stdout.split()
    return float(took), heavy[0] if heavy else ""


def one_run(cwd: Path, overrides: list[str], importtime: bool = False) -> tuple[float, float, str]:
    """(wall seconds, simulation seconds, heavy modules loaded) of one CLI run."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlruns' / 'mlflow.db'}"}
    out_dir = cwd / "out" / str(time.time_ns())
    cmd = [
        sys.executable,
        *(["-X", "importtime"] if importtime else []),
        "-m",
        "lret_runner",
        "+experiment=quickstart",
        "run.quiet=true",
        f"hydra.run.dir={out_dir}",
        *overrides,
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    loaded = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    heavy = ",".join(m for m in HEAVY if m in loaded) if importtime else ""
    return wall, json.loads((out_dir / "result.json").read_text())["simulation_time_seconds"], heavy


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = ap.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs, load average {load:.2f} at the start\n")

    print(f"### Import cost by module (fresh interpreter, median of {args.repeats})\n")
    print("| module | import s | heavy modules it loads |")
    print("|---|---|---|")
    for module in MODULES:
        runs = [import_cost(module) for _ in range(args.repeats)]
        took = statistics.median(t for t, _ in runs)
        print(f"| `{module}` | {took:.2f} | {runs[-1][1] or '-'} |", flush=True)

    print(f"\n### One quickstart run (median of {args.repeats})\n")
    print("| tracking | wall s | simulation s | beyond simulation s | heavy modules loaded |")
    print("|---|---|---|---|---|")
    cases = {
        "mlflow (plots: the single-run default)": ["tracking=mlflow"],
        "mlflow, `tracking.log_plots=false`": ["tracking=mlflow", "tracking.log_plots=false"],
        "none": ["tracking=none"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        one_run(cwd, ["tracking=mlflow", *args.overrides])  # creates the store: a one-off
        for label, overrides in cases.items():
            heavy = one_run(cwd, [*overrides, *args.overrides], importtime=True)[2]
            runs = [one_run(cwd, [*overrides, *args.overrides]) for _ in range(args.repeats)]
            wall = statistics.median(w for w, _, _ in runs)
            sim = statistics.median(s for _, s, _ in runs)
            print(f"| {label} | {wall:.2f} | {sim:.3f} | {wall - sim:.2f} | {heavy} |", flush=True)


if __name__ == "__main__":
    main()
