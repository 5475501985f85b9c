"""Contention: one LRET run alone and next to a busy process, with 1 BLAS thread and with
all cores (the library default), measured in one run; ratios against the run alone.

The circuit is the engine benchmark's random circuit (depolarizing after every moment
on every qubit). The busy process is a Python loop on one core, like another sweep job.

    python benchmarks/bench_threads.py                 # n = 12, p = 1e-3, median of 3
    python benchmarks/bench_threads.py --n 10 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from threadpoolctl import threadpool_limits

from lret_runner.circuits import random_circuit
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators import compile_circuit, make_engine
from lret_runner.simulators.threads import available_cores, default_threads

BUSY = "while True: pass"


def timed(engine, program, threads: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        with threadpool_limits(limits=threads, user_api="blas"):
            start = time.perf_counter()
            engine.run(program)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--level", type=float, default=1e-3)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    model = build_noise_model("depolarizing", level=args.level, placement="moment")
    circuit = add_noise(random_circuit(n_qubits=args.n, depth=args.depth, seed=7), model)
    program = compile_circuit(circuit)
    engine = make_engine("lret", rank_threshold=1e-4)
    cores = available_cores()
    rows = []
    for label, busy in (("alone", False), ("next to 1 busy process", True)):
        proc = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
        try:
            if proc is not None:
                time.sleep(0.5)  # let it get going
            picked = default_threads()  # what a run would choose under this load
            for threads in sorted({1, cores}):
                t = timed(engine, program, threads, args.repeat)
                rows.append((label, threads, t, "yes" if threads == picked else ""))
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()
    alone = {threads: t for label, threads, t, _ in rows if label == "alone"}
    best = min(alone.values())
    print(
        f"LRET n={args.n} depth={args.depth} p={args.level:g}, {cores} cores available, "
        f"median of {args.repeat}"
    )
    print("| load | BLAS threads | default picks it | s | vs the fastest run alone |")
    print("|---|---|---|---|---|")
    for label, threads, t, picked in rows:
        print(f"| {label} | {threads} | {picked} | {t:.3g} | {t / best:.2f} |")


if __name__ == "__main__":
    main()
