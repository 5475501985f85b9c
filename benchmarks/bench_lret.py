"""Where lret pays: the sparse-noise family of the upstream LRET benchmark, lret against a
baseline commit of this repository, measured in the same run.

The family (rebuilt from the upstream generator): per layer, a random gate from H, X, Y,
Z, S, T, SX on n/2 + 1 random qubits, then (n - 1)/2 random CNOT or CZ on random disjoint
pairs; noise ``noise=sparse`` (each qubit after each moment gets, with probability p, one
depolarizing, amplitude- or phase-damping channel of strength p x U(0,1)). A 20-qubit,
50-layer circuit carries about 20 channels: few, weak errors, the regime a low-rank factor
is built for.

Every point runs in a fresh process on the same noisy circuit (serialised with Cirq's
JSON), lret at its defaults: the current code spends ``run.accuracy`` (default 1e-3) over
its truncations; ``--baseline REF`` also runs the engine of a git commit (checked out into
a temporary worktree) at its own defaults, and the table prints the ratio. Where n fits the
exact engine (``--exact-max``), the trace distance to fdm's state is measured too.

Each run's time is also set against the memory-traffic bound of its passes: the bytes its
gate blocks and channels read and write on the factor (``EngineOutput.factor_bytes``),
over this machine's copy bandwidth measured in the same run (``numpy.copyto`` of 256 MiB).

    python benchmarks/bench_lret.py --sizes 12 16 20 --baseline 12049ae
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
ONE_QUBIT = ("H", "X", "Y", "Z", "S", "T", "SX")  # cirq names (SX: X**0.5)


def sparse_family(n: int, layers: int, seed: int):
    """The upstream generator's circuit (noiseless), measured at the end."""
    import cirq

    rng = np.random.default_rng(seed)
    qubits = cirq.LineQubit.range(n)
    gates = {"SX": cirq.X**0.5, **{g: getattr(cirq, g) for g in ONE_QUBIT if g != "SX"}}
    circuit = cirq.Circuit()
    for _ in range(layers):
        chosen = rng.choice(n, size=min(n // 2 + 1, n), replace=False)
        ops = [gates[ONE_QUBIT[rng.integers(len(ONE_QUBIT))]].on(qubits[q]) for q in chosen]
        circuit.append(cirq.Moment(ops))
        order = rng.permutation(n)
        pairs = [order[2 * i : 2 * i + 2] for i in range((n - 1) // 2)]
        two = [cirq.CNOT, cirq.CZ]
        circuit.append(cirq.Moment(two[rng.integers(2)].on(qubits[a], qubits[b]) for a, b in pairs))
    circuit.append(cirq.measure(*qubits, key="m"))
    return circuit


def copy_bandwidth() -> float:
    """Bytes per second one ``numpy.copyto`` of 256 MiB reads plus writes (best of 5)."""
    src = np.ones(2**25, dtype=np.complex64)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def point(spec: dict) -> dict:
    """One lret run on the circuit in ``spec["circuit"]`` (this process's lret_runner)."""
    import cirq
    from threadpoolctl import threadpool_limits

    from lret_runner.simulators.lret import LretSimulator

    circuit = cirq.read_json(spec["circuit"])
    with threadpool_limits(limits=spec["threads"], user_api="blas"):
        start = time.perf_counter()
        out = LretSimulator().run(circuit)
        seconds = time.perf_counter() - start
    rank = max(out.rank_history or [1])
    result = {"seconds": seconds, "rank": rank, "bound": out.truncation_error}
    if spec.get("traffic"):
        result["factor_bytes"] = factor_bytes(circuit, out.rank_history, out.dense_history)
    if spec.get("state"):
        state = out.state
        np.save(spec["state"], state.factor if hasattr(state, "factor") else state.matrix)
    return result


def factor_bytes(circuit, ranks: list[int], dense: list[bool]) -> float | None:
    """The least memory traffic of lret's passes over its factor: each gate block reads and
    writes L once (the blocks the run's fuser makes), each channel reads L twice (its Gram
    matrix, the kept columns) and writes the kept columns; None when the run went dense."""
    from lret_runner.simulators.base import compile_circuit
    from lret_runner.simulators.fusion import GateFuser
    from lret_runner.simulators.lret import LretSimulator

    if any(dense):
        return None
    prog = compile_circuit(circuit, None, LretSimulator().dtype)
    column = 2**prog.n_qubits * np.dtype(prog.dtype).itemsize
    fuser, total, rank = GateFuser(), 0.0, 1
    for moment, after in zip(prog.moments, ranks, strict=True):
        for ins in moment:
            if ins.is_channel:
                total += 2 * column * rank * len(fuser.release(ins.targets))
                total += column * (2 * rank + after)
            else:
                total += 2 * column * rank * len(fuser.add(ins.targets, ins.kraus[0]))
        rank = after
    return total + 2 * column * rank * len(fuser.release())


def run_point(spec: dict, pythonpath: Path, timeout: float) -> dict | None:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    cmd = [sys.executable, __file__, "--point", json.dumps(spec)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"note": f">{timeout:g} s"}
    if done.returncode:
        return {"note": (done.stderr.strip().splitlines() or ["failed"])[-1][:80]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def exact_distance(circuit, state_file: str) -> float:
    from lret_runner import metrics
    from lret_runner.simulators.fdm import FdmSimulator

    exact = FdmSimulator().run(circuit).state
    saved = np.load(state_file)
    square = saved.shape[0] == saved.shape[1]
    state = metrics.Dense(saved) if square else metrics.LowRank(saved)
    return metrics.trace_distance(state, exact)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[12, 16, 20])
    parser.add_argument("--layers", type=int, default=50)
    parser.add_argument("--level", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline", default=None, help="a git ref to compare against")
    parser.add_argument("--exact-max", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--point", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        print(json.dumps(point(json.loads(args.point))))
        return

    import cirq

    from lret_runner.noise import add_noise, build_noise_model
    from lret_runner.simulators import kernel

    for dtype in (np.complex128, np.complex64):  # compiled once per machine, not in a timing
        kernel.apply_dense(np.zeros((2, 2, 2), dtype), np.eye(2), (0,))
    bandwidth = copy_bandwidth()
    print(
        f"# sparse family, {args.layers} layers, p={args.level:g}, seed {args.seed}, "
        f"{args.threads} BLAS thread(s); copy bandwidth {bandwidth / 1e9:.1f} GB/s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        if args.baseline:
            base = Path(tmp) / "baseline"
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "add", "--detach", str(base), args.baseline],
                check=True,
                capture_output=True,
            )
        try:
            rows = []
            for n in args.sizes:
                model = build_noise_model("sparse", level=args.level, seed=args.seed)
                circuit = add_noise(sparse_family(n, args.layers, args.seed), model)
                path = Path(tmp) / f"n{n}.json"
                path.write_text(cirq.to_json(circuit))
                channels = sum(
                    1
                    for op in circuit.all_operations()
                    if not cirq.has_unitary(op) and not cirq.is_measurement(op)
                )
                spec = {"circuit": str(path), "threads": args.threads, "traffic": True}
                if n <= args.exact_max:
                    spec["state"] = str(Path(tmp) / f"n{n}.npy")
                now = run_point(spec, REPO, args.timeout)
                if now and "state" in spec and "note" not in now:
                    now["distance"] = exact_distance(circuit, spec["state"])
                old = None
                if base:
                    old = run_point({**spec, "state": None, "traffic": False}, base, args.timeout)
                rows.append((n, channels, now, old))
                print_row(n, channels, now, old, bandwidth)
        finally:
            if base is not None:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)],
                    capture_output=True,
                )


def print_row(n: int, channels: int, now: dict, old: dict | None, bandwidth: float) -> None:
    def cell(r: dict | None, key: str, spec: str) -> str:
        if r is None:
            return "-"
        if "note" in r:
            return r["note"]
        value = r.get(key)
        return "-" if value is None else format(value, spec)

    ratio = "-"
    if old and now and "note" not in old and "note" not in now:
        ratio = f"{old['seconds'] / now['seconds']:.1f}x"
    traffic = "-"
    if now and now.get("factor_bytes"):
        traffic = f"{now['seconds'] / (now['factor_bytes'] / bandwidth):.1f}"
    print(
        f"| n={n:2d} | channels {channels:3d} | baseline {cell(old, 'seconds', '.3g')} s, "
        f"rank {cell(old, 'rank', 'd')}, bound {cell(old, 'bound', '.1e')} "
        f"| now {cell(now, 'seconds', '.3g')} s, rank {cell(now, 'rank', 'd')}, "
        f"bound {cell(now, 'bound', '.1e')}, to exact {cell(now, 'distance', '.1e')} "
        f"| speed-up {ratio} | time / traffic bound {traffic} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
