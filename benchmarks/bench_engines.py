"""Engine benchmark: LRET vs the exact density matrix (fdm) vs Cirq, measured in one run.

For each n and noise level: a seeded random circuit of ``--depth`` moments with
single-qubit depolarizing noise after every moment on every qubit. Prints one
markdown table: wall times, LRET's final/max rank and truncation error, its fidelity
vs fdm, and the speed ratios cirq/lret and cirq/fdm. ``--large N`` adds one LRET-only
run at n = N (depth ``--depth``, lowest level) with its peak memory.

    python benchmarks/bench_engines.py                       # the README table
    python benchmarks/bench_engines.py --sizes 6 --depth 10  # a few seconds (make demo)
"""

from __future__ import annotations

import argparse
import resource
import time

from lret_runner import metrics
from lret_runner.circuits import random_circuit
from lret_runner.errors import MemoryRefusal
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators import FdmSimulator, make_engine


def timed(engine, circuit):
    start = time.perf_counter()
    out = engine.run(circuit)
    return out, time.perf_counter() - start


def noisy_circuit(n: int, depth: int, level: float, seed: int):
    model = build_noise_model("depolarizing", level=level, placement="moment")
    return add_noise(random_circuit(n_qubits=n, depth=depth, seed=seed), model)


def fmt(x: float | None, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 10, 12, 14])
    ap.add_argument("--levels", type=float, nargs="+", default=[1e-3, 1e-4])
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--rank-threshold", type=float, default=1e-4)
    ap.add_argument("--cirq-max-qubits", type=int, default=12, help="Cirq beyond this takes hours")
    ap.add_argument("--large", type=int, default=0, help="also run LRET alone at this n (e.g. 20)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    lret = make_engine("lret", rank_threshold=args.rank_threshold)
    if args.large:  # first, so the process's peak RSS is this run's
        circuit = noisy_circuit(args.large, args.depth, min(args.levels), args.seed)
        out, t = timed(lret, circuit)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(
            f"LRET n={args.large} depth={args.depth} p={min(args.levels):g} "
            f"rank_threshold={args.rank_threshold:g}: {t:.1f} s, final rank {out.final_rank}, "
            f"max rank {out.max_rank}, truncation_error {out.truncation_error:.3g}, "
            f"state peak {out.memory_used_mb:.0f} MiB, process peak RSS {rss:.2f} GiB\n"
        )

    print(
        f"depth {args.depth}, depolarizing after every moment, "
        f"lret rank_threshold={args.rank_threshold:g}\n"
    )
    cols = [
        "n",
        "p",
        "lret s",
        "fdm s",
        "cirq s",
        "final rank",
        "max rank",
        "trunc err",
        "fidelity",
        "cirq/lret",
        "cirq/fdm",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for n in args.sizes:
        for level in args.levels:
            circuit = noisy_circuit(n, args.depth, level, args.seed)
            lo, t_lret = timed(lret, circuit)
            try:
                fo, t_fdm = timed(FdmSimulator(), circuit)
                fid = metrics.fidelity(lo.state, fo.state)
            except MemoryRefusal:
                t_fdm = fid = None
            t_cirq = None
            if n <= args.cirq_max_qubits:
                _, t_cirq = timed(make_engine("cirq"), circuit)
            row = [
                str(n),
                f"{level:g}",
                fmt(t_lret),
                fmt(t_fdm),
                fmt(t_cirq),
                str(lo.final_rank),
                str(lo.max_rank),
                fmt(lo.truncation_error),
                fmt(fid, ".5f"),
                fmt(t_cirq / t_lret if t_cirq else None, ".1f"),
                fmt(t_cirq / t_fdm if t_cirq and t_fdm else None, ".1f"),
            ]
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
