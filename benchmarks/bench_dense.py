"""fdm (the exact dense engine) against Qiskit Aer's density-matrix method, in one run.

Circuit: ``--layers`` (20) seeded layers, each ``ry`` on every qubit, ``rz`` on every qubit
and a CNOT brick (pairs (i, i+1) from offset ``layer % 2``), with depolarizing noise after
every gate (``noise.placement=gate``: Cirq's ``depolarize(p)`` after one-qubit gates,
``depolarize(p, n_qubits=2)`` after CNOTs). Aer runs the same circuit two ways:

- **aer NM**: a ``NoiseModel`` with ``depolarizing_error(4p/3, 1)`` on ``ry``/``rz`` and
  ``depolarizing_error(16p/15, 2)`` on ``cx`` (Cirq's channels: Aer's parameter is the
  weight of the fully mixed state);
- **aer instr**: the same errors as explicit Kraus instructions after each gate
  (up to n = ``--instr-max``: 4-8x slower than aer NM).

Qubit order: Cirq's qubit i (the most significant bit of a basis index here) is Qiskit's
qubit n - 1 - i (Qiskit is little-endian), so both density matrices have the same basis
index and are compared entry by entry (``max|d rho|``, fdm against aer NM).

Per row (the best of ``--repeats`` runs of each):

- **aer NM s**, **aer instr s**: Aer's wall seconds (``run`` and ``result``);
- **fdm s**: fdm's wall seconds, compilation of the Cirq circuit included, and its final
  rank (an eigendecomposition of rho up to n = ``RANK_MAX_QUBITS``), as a run gets them;
  **aer/fdm** compares these two;
- **passes**: the passes over rho fdm makes (a dry run of its fuser);
- **fdm bound s**: the bytes those passes move (each reads and writes the 4^n real Pauli
  coefficients once; the final change to the complex matrix its own bytes) divided by the
  copy bandwidth ``numpy.copyto`` reaches on an array of the same size, the best measured
  in the same run before and after the engines (cache effects included);
- **evol s**, **evol/bound**: fdm's own seconds without the final rank (the passes, the
  fusion and the final change of basis), and that over the bound;
- **1/moment s**: one read and write of the complex 4^n matrix per gate moment (3 a
  layer), the bound of an engine that makes one pass per moment, for scale; **aer/1m**;
- **pred/fdm**: the cost model's prediction of fdm (``costs.predict``, as ``auto`` weighs
  it: one-core constants) over fdm's own seconds;
- **auto**, **auto s**, **aer/auto**, **auto TVD**: ``simulator=auto`` as a run gets it
  (its choice at the default ``run.accuracy``, then the chosen engine), the engine it
  chose, its wall seconds, and the total variation distance of its distribution from Aer's
  exact one;
- **max|d rho|** (fdm against aer NM) and **load**, the 1-minute load average after the
  row (other processes on the cores slow every engine down).

Threads: no limit is set; Aer uses OpenMP on every core, fdm its default threads.

    python benchmarks/bench_dense.py            # n = 10, 12, 13; p = 1e-2, 1e-3: ~10 min
    python benchmarks/bench_dense.py --quick    # n = 8, 10: well under a minute
    python benchmarks/bench_dense.py --sizes 12 --levels 1e-2 --repeats 3
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import cirq
import numpy as np
from threadpoolctl import threadpool_limits

from lret_runner import metrics
from lret_runner.experiment import prepare_circuit, simulate
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators import compile_circuit, costs, make_engine
from lret_runner.simulators.dense import RANK_MAX_QUBITS, Fuser

TARGET_SPEEDUP = 2.0  # fdm at least this much faster than aer NM
TARGET_BOUND = 3.0  # fdm within this factor of its memory-traffic bound
AUTO_TVD = 1e-3  # auto within this total variation distance of the exact distribution
# seconds between two runs: OpenMP threads spin for a while after Aer returns, and took a
# core from the next run (fdm's evolution at n = 10: 0.35 s right after Aer, 0.2 s alone)
SETTLE = 1.0


def angles(n: int, layers: int, seed: int) -> np.ndarray:
    """(layers, 2, n) rotation angles: ry then rz of every qubit."""
    return np.random.default_rng(seed).uniform(0.0, 2 * np.pi, size=(layers, 2, n))


def cirq_circuit(theta: np.ndarray) -> cirq.Circuit:
    layers, _, n = theta.shape
    q = cirq.LineQubit.range(n)
    moments = []
    for layer in range(layers):
        moments.append(cirq.Moment(cirq.ry(theta[layer, 0, i]).on(q[i]) for i in range(n)))
        moments.append(cirq.Moment(cirq.rz(theta[layer, 1, i]).on(q[i]) for i in range(n)))
        pairs = range(layer % 2, n - 1, 2)
        moments.append(cirq.Moment(cirq.CNOT(q[i], q[i + 1]) for i in pairs))
    return cirq.Circuit(moments)


def qiskit_circuit(theta: np.ndarray, p: float | None):
    """The same circuit in Qiskit (Cirq's qubit i is Qiskit's n - 1 - i); with ``p``, each
    gate is followed by its depolarizing error as an instruction."""
    from qiskit import QuantumCircuit

    layers, _, n = theta.shape
    one, two = aer_instructions(p) if p is not None else (None, None)
    qc = QuantumCircuit(n)

    def qubit(i: int) -> int:
        return n - 1 - i

    for layer in range(layers):
        for gate, row in ((qc.ry, 0), (qc.rz, 1)):
            for i in range(n):
                gate(theta[layer, row, i], qubit(i))
                if one is not None:
                    qc.append(one, [qubit(i)])
        for i in range(layer % 2, n - 1, 2):
            qc.cx(qubit(i), qubit(i + 1))
            if two is not None:
                qc.append(two, [qubit(i), qubit(i + 1)])
    qc.save_density_matrix()
    return qc


def aer_errors(p: float):
    """Cirq's depolarize(p) and depolarize(p, n_qubits=2) as Aer errors."""
    from qiskit_aer.noise import depolarizing_error

    return depolarizing_error(4 * p / 3, 1), depolarizing_error(16 * p / 15, 2)


def aer_instructions(p: float):
    """The same errors as Kraus instructions (a ``QuantumError`` appended as an instruction
    was 4x slower: 9.7 s against 2.5 s at n = 8; superoperator instructions sometimes failed
    in Aer with "heevx ... Check that input matrix is really hermitian")."""
    from qiskit.quantum_info import Kraus

    return tuple(Kraus(error).to_instruction() for error in aer_errors(p))


def aer_run(theta: np.ndarray, p: float, explicit: bool) -> tuple[float, np.ndarray | None]:
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel

    if explicit:
        qc, sim = qiskit_circuit(theta, p), AerSimulator(method="density_matrix")
    else:
        one, two = aer_errors(p)
        model = NoiseModel(basis_gates=["ry", "rz", "cx"])
        model.add_all_qubit_quantum_error(one, ["ry", "rz"])
        model.add_all_qubit_quantum_error(two, ["cx"])
        qc = qiskit_circuit(theta, None)
        sim = AerSimulator(method="density_matrix", noise_model=model)
    start = time.perf_counter()
    result = sim.run(qc).result()
    seconds = time.perf_counter() - start
    if not result.success:  # seen with superoperator instructions ("heevx ... hermitian")
        print(f"Aer failed (n = {theta.shape[2]}, p = {p:g}): {result.status}", flush=True)
        return float("nan"), None
    return seconds, np.asarray(result.data()["density_matrix"])


def fdm_run(circuit: cirq.Circuit, dtype: str) -> tuple[float, float, float, np.ndarray]:
    """Wall seconds (compilation and run), the engine's own seconds, the part of them its
    final rank took (an eigendecomposition up to ``RANK_MAX_QUBITS``; timed again here, on
    one BLAS thread as the engine does), and rho."""
    start = time.perf_counter()
    out = make_engine("fdm", dtype=dtype).run(circuit)
    wall = time.perf_counter() - start
    rank = 0.0
    if out.final_rank is not None:
        with threadpool_limits(limits=1, user_api="blas"):
            start = time.perf_counter()
            metrics.rank(out.state)
            rank = time.perf_counter() - start
    return wall, out.simulation_time_seconds, rank, metrics.dense(out.state)


def auto_run(circuit: cirq.Circuit) -> tuple[float, str, np.ndarray]:
    """Wall seconds of ``simulator=auto`` as a run gets it (its choice, then that engine's
    run), the engine it chose, and the probabilities of the basis states."""
    start = time.perf_counter()
    prepared = prepare_circuit(circuit, simulator="auto")
    result, out = simulate(prepared)
    seconds = time.perf_counter() - start
    return seconds, result.backend_used, metrics.probabilities(out.state)


def pass_bytes(n: int, passes: list, real: int) -> float:
    """Bytes the fuser's passes read and write: the 4^n real coefficients once per pass (a
    transfer matrix or a move); the final change of basis: the phases (real in, complex out,
    then complex in place), a real pass over the real and imaginary parts per group of two
    qubits, and the transposition into (rows, columns)."""
    entries = 4.0**n
    total = 0.0
    for p in passes:
        if p.kind in ("ptm", "move"):
            total += 2 * entries * real
        elif p.kind == "basis":
            total += entries * real * (3 + 4 + 4 * -(-n // 2) + 4)
        else:
            raise ValueError(f"no byte count for a {p.kind!r} pass")
    return total


def copy_seconds(nbytes: int, repeats: int = 5) -> float:
    """The best time of ``numpy.copyto`` between two arrays of ``nbytes``."""
    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - start)
    return best


def row(n: int, p: float, layers: int, seed: int, repeats: int, dtype: str, instr_max: int) -> dict:
    theta = angles(n, layers, seed)
    noisy = add_noise(
        cirq_circuit(theta), build_noise_model("depolarizing", level=p, placement="gate")
    )
    prog = compile_circuit(noisy)
    plan = Fuser(None, n)
    for moment in prog.moments:
        for ins in moment:
            plan.apply(ins)
    plan.flush()
    predicted = costs.predict(
        prog, rank_threshold=0.0, final_rank_qubits=RANK_MAX_QUBITS
    ).fdm_seconds  # what auto weighs: fdm's passes and its final rank
    real = 8 if dtype == "complex128" else 4
    # bandwidth of a copy of the size fdm works on, measured now (cache effects included)
    bandwidth = 2 * 4**n * real / copy_seconds(4**n * real)
    complex_bandwidth = 2 * 4**n * 2 * real / copy_seconds(4**n * 2 * real)
    aer_nm, aer_instr, fdm, engine, evolution, auto = [], [], [], [], [], []
    diff, tvd, chosen = 0.0, 0.0, ""
    for _ in range(repeats):
        seconds, rho_aer = aer_run(theta, p, explicit=False)
        aer_nm.append(seconds)
        time.sleep(SETTLE)
        seconds, inside, rank, rho_fdm = fdm_run(noisy, dtype)
        fdm.append(seconds)
        engine.append(inside)
        evolution.append(inside - rank)
        time.sleep(SETTLE)
        seconds, chosen, probs = auto_run(noisy)
        auto.append(seconds)
        if rho_aer is not None:
            diff = max(diff, float(np.abs(rho_fdm - rho_aer).max()))
            exact = np.clip(np.diagonal(rho_aer).real, 0, None)
            tvd = max(tvd, 0.5 * float(np.abs(probs - exact / exact.sum()).sum()))
        del rho_aer, rho_fdm
        gc.collect()
        if n <= instr_max:
            time.sleep(SETTLE)
            seconds, _ = aer_run(theta, p, explicit=True)
            if seconds == seconds:
                aer_instr.append(seconds)
            gc.collect()
    # and again after the runs: a copy slowed down by another process would make the bound
    # look easy
    bandwidth = max(bandwidth, 2 * 4**n * real / copy_seconds(4**n * real))
    complex_bandwidth = max(complex_bandwidth, 2 * 4**n * 2 * real / copy_seconds(4**n * 2 * real))
    gate_moments = 3 * layers
    bound = pass_bytes(n, plan.applied, real) / bandwidth
    moment_bound = gate_moments * 2 * 4**n * 2 * real / complex_bandwidth
    t_aer, t_fdm = min(aer_nm), min(fdm)
    t_instr = min(aer_instr, default=float("nan"))
    return {
        "n": n,
        "p": p,
        "aer NM s": t_aer,
        "aer instr s": t_instr,
        "fdm s": t_fdm,
        "aer/fdm": t_aer / t_fdm,
        "auto": chosen,
        "auto s": min(auto),
        "aer/auto": t_aer / min(auto),
        "auto TVD": tvd,
        "passes": len(plan.applied),
        "fdm bound s": bound,
        "evol s": min(evolution),
        "evol/bound": min(evolution) / bound,
        "1/moment s": moment_bound,
        "aer/1m": t_aer / moment_bound,
        "pred/fdm": predicted / min(engine),
        "max|d rho|": diff,
        "load": os.getloadavg()[0],
    }


def fmt(key: str, value: float) -> str:
    if key in ("n", "passes", "auto"):
        return str(value)
    if key == "p":
        return f"{value:g}"
    if value != value:  # not measured
        return "-"
    if key in ("max|d rho|", "auto TVD"):
        return f"{value:.1e}"
    if key == "load":
        return f"{value:.1f}"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 12, 13])
    parser.add_argument("--levels", type=float, nargs="+", default=[1e-2, 1e-3])
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per engine (best)")
    parser.add_argument("--dtype", default="complex128", choices=["complex128", "complex64"])
    parser.add_argument("--quick", action="store_true", help="n = 8, 10 only")
    parser.add_argument(
        "--instr-max", type=int, default=12, help="aer instr up to this n (slow: ~4 min at 13)"
    )
    args = parser.parse_args()
    sizes = [8, 10] if args.quick else args.sizes
    rows = []
    header = None
    for n in sizes:
        for p in args.levels:
            r = row(n, p, args.layers, args.seed, args.repeats, args.dtype, args.instr_max)
            rows.append(r)
            if header is None:
                header = list(r)
                print("| " + " | ".join(header) + " |")
                print("|" + "---|" * len(header))
            print("| " + " | ".join(fmt(k, r[k]) for k in header) + " |", flush=True)
    slow = [r for r in rows if not r["aer/fdm"] >= TARGET_SPEEDUP]  # nan: not measured
    far = [r for r in rows if not r["evol/bound"] <= TARGET_BOUND]
    good = [r for r in rows if r["aer/auto"] >= TARGET_SPEEDUP and r["auto TVD"] <= AUTO_TVD]
    print(
        f"\nfdm at least {TARGET_SPEEDUP:g}x faster than aer NM: "
        f"{len(rows) - len(slow)} of {len(rows)} rows; within {TARGET_BOUND:g}x of its "
        f"memory-traffic bound: {len(rows) - len(far)} of {len(rows)}; auto at least "
        f"{TARGET_SPEEDUP:g}x faster than aer NM and within {AUTO_TVD:g} (TVD) of its exact "
        f"distribution: {len(good)} of {len(rows)}"
    )


if __name__ == "__main__":
    main()
