"""The cost of dynamic circuits: fdm and lret against the number of mid-circuit measurements.

Circuit: ``--layers`` (12) seeded layers on n qubits, each ``ry`` and ``rz`` on every qubit
and a CNOT brick (pairs (i, i+1) from offset ``layer % 2``). After layer j (for the first
k layers) qubit j mod n is measured into its own bit, the next layer's gates act on it
again, and an X on the next qubit is controlled by that bit (``if``): a circuit of k
mid-circuit measurements holds up to 2^k branches. All qubits are measured at the end.
Noise: depolarizing ``--level`` (1e-3) after every gate (``noise.placement=gate``).

Per row (the best of ``--repeats``):

- **branches**: the most branches the run held at once (2^k where no outcome has
  probability zero);
- **fdm s**, **lret s**: the engines' wall seconds (compilation included), and each over the
  same engine on the same circuit with k = 0 (**fdm x**, **lret x**): the cost of branching
  measured in the same run;
- **fdm MB**, **lret MB**: the peak of the branches' state arrays (fdm: 4^n real Pauli
  coefficients per branch; lret: its factors, or dense matrices where it went dense);
- **max|d p|**: the largest difference between the two engines' outcome distributions
  (lret at ``rank_threshold=0``, exact: both are exact, so this is rounding);
- **load**: the 1-minute load average after the row.

    python benchmarks/bench_branches.py                  # n = 8, 12; k = 0..6: ~2 min
    python benchmarks/bench_branches.py --sizes 8 --measurements 0 2 4 8
"""

from __future__ import annotations

import argparse
import os
import time

import cirq
import numpy as np

from lret_runner import metrics
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators import make_engine
from lret_runner.simulators.base import EngineOutput, compile_circuit


def circuit(n: int, layers: int, k: int, seed: int) -> cirq.Circuit:
    """The benchmark circuit (see the module docstring)."""
    rng = np.random.default_rng(seed)
    q = cirq.LineQubit.range(n)
    out = cirq.Circuit()
    for layer in range(layers):
        out.append(cirq.ry(rng.uniform(0, 2 * np.pi)).on(x) for x in q)
        out.append(cirq.rz(rng.uniform(0, 2 * np.pi)).on(x) for x in q)
        out.append(cirq.CNOT(q[i], q[i + 1]) for i in range(layer % 2, n - 1, 2))
        if layer < k:
            key = f"mid[{layer}]"
            out.append(cirq.measure(q[layer % n], key=key))
            out.append(cirq.X(q[(layer + 1) % n]).with_classical_controls(key))
    out.append(cirq.measure(*q, key="m"))
    return out


def best(run, repeats: int):
    """The fastest of ``repeats`` calls: (seconds, its output)."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return min(times), out


def probs(out: EngineOutput) -> np.ndarray:
    """The outcome distribution (a static circuit's: of every qubit)."""
    return out.outcomes if out.outcomes is not None else metrics.probabilities(out.state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 12])
    parser.add_argument("--measurements", type=int, nargs="+", default=[0, 1, 2, 4, 6])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--level", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    model = build_noise_model("depolarizing", level=args.level, placement="gate")
    header = (
        f"{'n':>3} {'k':>3} {'branches':>8} {'fdm s':>8} {'fdm x':>6} {'fdm MB':>8} "
        f"{'lret s':>8} {'lret x':>6} {'lret MB':>8} {'max|d p|':>9} {'load':>5}"
    )
    print(header)
    for n in args.sizes:
        base: dict[str, float] = {}
        for k in args.measurements:
            noisy = add_noise(circuit(n, args.layers, k, args.seed), model)
            row = {}
            for name, params in (("fdm", {}), ("lret", {"rank_threshold": 0.0})):
                engine = make_engine(name, **params)
                seconds, out = best(
                    lambda e=engine, c=noisy: e.run(compile_circuit(c)), args.repeats
                )
                row[name] = (seconds, out)
                base.setdefault(name, seconds)
            (fdm_s, fdm), (lret_s, lret) = row["fdm"], row["lret"]

            diff = float(np.abs(probs(fdm) - probs(lret)).max())
            print(
                f"{n:>3} {k:>3} {fdm.branches or 1:>8} {fdm_s:>8.3f} {fdm_s / base['fdm']:>6.2f} "
                f"{fdm.memory_used_mb:>8.1f} {lret_s:>8.3f} {lret_s / base['lret']:>6.2f} "
                f"{lret.memory_used_mb:>8.1f} {diff:>9.1e} {os.getloadavg()[0]:>5.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
