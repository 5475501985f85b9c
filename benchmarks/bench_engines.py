"""Engine benchmark: fdm, lret and ``auto`` on five circuit families, measured in one run.

A row is a family x noise placement x depolarizing level p x n; each row runs ``--seeds``
seeded circuits (0, 1, ...; ``--seeds-large`` from n = 12 on), compiled once each, and
reports median times:

- fdm, the exact density matrix (the reference);
- lret at ``rank_threshold`` 1e-4 (its default before ``run.accuracy``; auto gets it too):
  max rank, truncation_error, fidelity vs fdm;
- lret at the first threshold of 1e-4, 1e-5, 1e-6, 1e-7, 0 that reaches F >= 0.99 vs fdm
  on every seed (the search stops there, or at the first run stopped by the time cap);
- auto: ``choose_engine`` on the compiled circuit, then the chosen engine. A run this row
  already made with the same engine and parameters (fdm, lret at 1e-4) is reused, not
  repeated, so auto's time is its choice plus that run.

Ranks, truncation errors and representation switches are the largest over the seeds,
fidelities the smallest. Fidelity is ``metrics.fidelity`` up to n = 10. Beyond, an
eigendecomposition of a 4^n matrix costs minutes, so a low-rank lret state L is compared
as (tr sqrt(L^dagger rho L))^2 (the same fidelity, an r x r problem), and a dense one
by its lower bound (1 - truncation_error)^2 (Fuchs-van de Graaf; truncation_error bounds
the trace distance), printed with ">=". Flags mark missed targets (issue 9): lret at
F >= 0.99 more than 1.5x slower than fdm, auto more than 1.2x slower than the faster
engine. Engine runs stop after ``--max-seconds`` (shown as ">T"). "load" is the 1-minute
load average after the row: other processes on the cores slow every engine down.

Also: ``--frontier A B``, lret alone at n = A, A+2, ..., B (random circuit, depth 20,
p = 1e-4, thresholds 1e-4 and 1e-5), each point in its own process so that its peak RSS
is its own; a contention row (lret alone and next to a process spinning one-thread numpy
matmuls); Qiskit Aer's density matrix method, Aer's statevector trajectories and qsim's
trajectories (1000 shots each) as extra columns when ``qiskit_aer`` / ``qsimcirq`` are
installed.

Threads: no BLAS thread limit is set here; the engines run with their defaults (OpenBLAS:
every core), as a library caller gets them (the runner's ``backend.threads`` policy is not
applied). Times are wall seconds on whatever else the machine is doing.

Run time on the 2-core development machine (more with other jobs on it):

    python benchmarks/bench_engines.py --quick        # n=8, 2 families, 1 seed: ~10 s
    python benchmarks/bench_engines.py                # n=8, 10, 3 seeds, contention: ~10 min
    python benchmarks/bench_engines.py --sizes 8 10 12 --frontier 16 20   # README: ~1 h
    python benchmarks/bench_engines.py --families layered --levels 1e-3 --sizes 10
    python benchmarks/bench_engines.py --sizes --contention-n 0 --frontier 16 20

n=12 adds ~20 min at one seed per row (an fdm run takes 10-30 s there); a frontier point
at threshold 1e-5 takes ~2 min at n=16 and more than 15 min from n=18 on (capped by
``--frontier-max-seconds``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cirq
import numpy as np
from threadpoolctl import threadpool_limits

from lret_runner import metrics
from lret_runner.circuits import ghz, layered, qaoa, qft, random_circuit
from lret_runner.errors import MemoryRefusal
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators import (
    CompiledCircuit,
    EngineOutput,
    choose_engine,
    compile_circuit,
    make_engine,
)
from lret_runner.simulators.threads import default_threads

DEFAULT_THRESHOLD = 1e-4
THRESHOLDS = (1e-4, 1e-5, 1e-6, 1e-7, 0.0)  # searched in order for F >= TARGET_FIDELITY
TARGET_FIDELITY = 0.99
LRET_VS_FDM_TARGET = 1.5  # lret at F >= 0.99 at most this much slower than fdm
AUTO_TARGET = 1.2  # auto at most this much slower than the faster engine
CONTENTION_TARGET = 1.3  # next to one busy process, at most this much slower than alone
# the flags of a row that misses a target
NO_F99 = f"no F>={TARGET_FIDELITY}"
LRET_SLOW = f"lret>{LRET_VS_FDM_TARGET}x"
AUTO_SLOW = f"auto>{AUTO_TARGET}x"
EXACT_FIDELITY_MAX_QUBITS = 10  # metrics.fidelity up to here (two 4^n eigendecompositions)
QAOA_P = 2
LARGE = 12  # rows from this n on run --seeds-large circuits (an fdm run takes 10-20 s here)
QSIM_REPETITIONS = 1000

# family -> (n, layers, seed) -> circuit; ``layers`` layers are 2 * layers moments where
# the family has layers (qft, ghz and qaoa have a fixed structure)
FAMILIES: dict[str, Callable[[int, int, int], cirq.Circuit]] = {
    "random": lambda n, layers, seed: random_circuit(n_qubits=n, depth=2 * layers, seed=seed),
    "layered": lambda n, layers, seed: layered(n_qubits=n, layers=layers, seed=seed),
    "qft": lambda n, layers, seed: qft(n_qubits=n, input_state=seed % 2**n),
    "ghz": lambda n, layers, seed: ghz(n_qubits=n),
    "qaoa": lambda n, layers, seed: qaoa(n_qubits=n, p=QAOA_P, seed=seed),
}

# another job on one core: numpy matmuls, one BLAS thread
BUSY = "import numpy as np\na = np.ones((400, 400))\nwhile True:\n    a @ a\n"
ONE_THREAD = {v: "1" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


# --------------------------------------------------------------------------- measuring


class TimeCap(Exception):
    """Raised between moments when a run exceeds its time cap."""


@dataclass
class Run:
    """One engine run: its wall time and output (None: stopped at the cap or refused)."""

    seconds: float
    out: EngineOutput | None
    note: str = ""  # why there is no output
    fidelity: float | None = None  # vs fdm
    bound: bool = False  # the fidelity is the lower bound (1 - truncation_error)^2
    reference: metrics.LowRank | None = field(default=None, repr=False)  # fdm: rho factored


def timed(engine: str, params: dict[str, Any], prog: CompiledCircuit, cap: float) -> Run:
    """Run ``engine`` on ``prog``, stopped between moments once ``cap`` seconds have passed."""
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - start > cap:
            raise TimeCap

    try:
        out = make_engine(engine, **params).run(prog, progress=progress)
    except TimeCap:
        return Run(time.perf_counter() - start, None, f">{cap:g}")
    except MemoryRefusal:
        return Run(time.perf_counter() - start, None, "refused")
    return Run(time.perf_counter() - start, out)


def compare(run: Run, fdm: Run) -> None:
    """Set ``run.fidelity`` vs the fdm state (see the module docstring for n > 10)."""
    if run.out is None or fdm.out is None:
        return
    state, rho = run.out.state, fdm.out.state
    if state.n_qubits <= EXACT_FIDELITY_MAX_QUBITS:
        if fdm.reference is None:
            fdm.reference = metrics.to_low_rank(rho)  # once per circuit, not per threshold
        run.fidelity = metrics.fidelity(state, fdm.reference)
    elif isinstance(state, metrics.LowRank):
        m = state.factor.conj().T @ (metrics.dense(rho) @ state.factor)
        w = np.linalg.eigvalsh((m + m.conj().T) / 2)
        run.fidelity = min(float(np.sqrt(np.clip(w, 0, None)).sum()) ** 2, 1.0)
    else:
        run.fidelity, run.bound = max(0.0, 1.0 - run.out.truncation_error) ** 2, True


@dataclass
class AutoRun:
    engine: str
    reason: str
    predicted: dict[str, float]  # seconds per engine, where choose_engine predicts them
    run: Run


def run_auto(prog: CompiledCircuit, known: dict[str, Run], cap: float) -> AutoRun:
    """``auto``: choose an engine for ``prog`` and run it (or reuse ``known[engine]``, the
    same engine with the same parameters already run on ``prog``)."""
    start = time.perf_counter()
    try:
        choice: Any = choose_engine(prog, rank_threshold=DEFAULT_THRESHOLD)
    except TypeError:  # choose_engine(prog) -> (engine, reason)
        choice = choose_engine(prog)
    chose = time.perf_counter() - start
    if isinstance(choice, tuple):
        engine, reason, *rest = choice
        predicted = rest[0] if rest else {}
    else:
        engine, reason = choice.engine, choice.reason
        predicted = dict(getattr(choice, "predicted_seconds", {}) or {})
    params = {"rank_threshold": DEFAULT_THRESHOLD} if engine == "lret" else {}
    run = known.get(engine) or timed(engine, params, prog, cap)
    return AutoRun(engine, reason, predicted, Run(chose + run.seconds, run.out, run.note))


# --------------------------------------------------------------------------- one row


@dataclass
class Row:
    family: str
    placement: str
    level: float
    n: int
    fdm: list[Run]
    lret: dict[float, list[Run]]  # threshold -> runs, in search order
    auto: list[AutoRun]
    extra: dict[str, list[float | None]]  # optional engine -> seconds per seed

    @property
    def reached(self) -> float | None:
        """The first threshold whose runs all reach F >= 0.99."""
        for threshold, runs in self.lret.items():
            if all(r.fidelity is not None and r.fidelity >= TARGET_FIDELITY for r in runs):
                return threshold
        return None


def noisy_program(family: str, n: int, layers: int, level: float, placement: str, seed: int):
    model = build_noise_model("depolarizing", level=level, placement=placement)
    return compile_circuit(add_noise(FAMILIES[family](n, layers, seed), model))


def measure_row(family: str, placement: str, level: float, n: int, args) -> Row:
    seeds = args.seeds if n < LARGE else args.seeds_large
    progs = [noisy_program(family, n, args.layers, level, placement, s) for s in range(seeds)]
    fdm = [timed("fdm", {}, prog, args.max_seconds) for prog in progs]
    lret: dict[float, list[Run]] = {}
    for threshold in THRESHOLDS:
        runs = [timed("lret", {"rank_threshold": threshold}, p, args.max_seconds) for p in progs]
        for run, ref in zip(runs, fdm, strict=True):
            compare(run, ref)
        lret[threshold] = runs
        fidelities = [r.fidelity for r in runs]
        if None in fidelities or min(fidelities) >= TARGET_FIDELITY:
            break  # reached, capped, or nothing to compare with
    auto = [
        run_auto(prog, {"fdm": f, "lret": lr}, args.max_seconds)
        for prog, f, lr in zip(progs, fdm, lret[DEFAULT_THRESHOLD], strict=True)
    ]
    extra = {name: [fn(prog) for prog in progs] for name, fn in args.extras.items()}
    return Row(family, placement, level, n, fdm, lret, auto, extra)


# --------------------------------------------------------------------------- optional engines


def aer_circuit(prog: CompiledCircuit):
    """The same instructions (unitaries, Kraus sets) as a Qiskit circuit."""
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Kraus

    n = prog.n_qubits
    qc = QuantumCircuit(n)
    for moment in prog.moments:
        for ins in moment:
            # Qiskit's first listed qubit is the least significant: reverse Cirq's order
            qubits = [n - 1 - t for t in reversed(ins.targets)]
            if ins.is_channel:
                qc.append(Kraus(list(ins.kraus)).to_instruction(), qubits)
            else:
                qc.unitary(ins.kraus[0], qubits)
    return qc


def aer_seconds(prog: CompiledCircuit) -> float | None:
    """Qiskit Aer's density-matrix method on the same instructions."""
    from qiskit_aer import AerSimulator

    qc = aer_circuit(prog)
    qc.save_density_matrix()
    start = time.perf_counter()
    result = AerSimulator(method="density_matrix").run(qc).result()
    return time.perf_counter() - start if result.success else None


def aer_trajectories_seconds(prog: CompiledCircuit) -> float | None:
    """Qiskit Aer's statevector method on the same instructions: ``QSIM_REPETITIONS`` shots,
    each a trajectory (Aer samples one Kraus operator per channel and shot)."""
    from qiskit_aer import AerSimulator

    qc = aer_circuit(prog)
    qc.measure_all()
    start = time.perf_counter()
    result = AerSimulator(method="statevector").run(qc, shots=QSIM_REPETITIONS).result()
    return time.perf_counter() - start if result.success else None


def qsim_seconds(prog: CompiledCircuit) -> float | None:
    """qsim's noisy trajectories: ``QSIM_REPETITIONS`` samples of the measured circuit."""
    import qsimcirq

    circuit = prog.circuit
    if not circuit.has_measurements():
        circuit = circuit + cirq.Moment(cirq.measure(*prog.qubits, key="m"))
    start = time.perf_counter()
    qsimcirq.QSimSimulator().run(circuit, repetitions=QSIM_REPETITIONS)
    return time.perf_counter() - start


OPTIONAL = {
    "aer s": ("qiskit_aer", aer_seconds),
    "aer sv s": ("qiskit_aer", aer_trajectories_seconds),
    "qsim s": ("qsimcirq", qsim_seconds),
}


def optional_engines() -> dict[str, Callable[[CompiledCircuit], float | None]]:
    """The optional engines that are installed; one line about those that are not."""
    found = {name: fn for name, (mod, fn) in OPTIONAL.items() if importlib.util.find_spec(mod)}
    missing = sorted({mod for name, (mod, _) in OPTIONAL.items() if name not in found})
    if missing:
        print(f"skipped (not installed): {', '.join(missing)}\n")
    return {name: guarded(fn) for name, fn in found.items()}


def guarded(fn: Callable[[CompiledCircuit], float | None]):
    """``fn``, with a failure printed once per kind and shown as "-" in the table."""
    seen: set[str] = set()

    def call(prog: CompiledCircuit) -> float | None:
        try:
            return fn(prog)
        except Exception as exc:  # an optional engine must not stop the benchmark
            text = f"{fn.__name__}: {type(exc).__name__}: {exc}"
            if text not in seen:
                seen.add(text)
                print(f"  ({text})", flush=True)
            return None

    return call


# --------------------------------------------------------------------------- formatting


def fmt(x: float | None, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def median_seconds(runs: list[Run]) -> float | None:
    """The median time, or None when a run has no output (capped or refused)."""
    return None if any(r.out is None for r in runs) else statistics.median(r.seconds for r in runs)


def show_seconds(runs: list[Run]) -> str:
    notes = sorted({r.note for r in runs if r.out is None})
    return "/".join(notes) if notes else fmt(median_seconds(runs))


def worst(runs: list[Run], attr: str) -> Any:
    values = [getattr(r.out, attr) for r in runs if r.out is not None]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def show_fidelity(runs: list[Run]) -> str:
    values = [r for r in runs if r.fidelity is not None]
    if not values:
        return "-"
    low = min(values, key=lambda r: r.fidelity)
    return (">=" if low.bound else "") + fmt(low.fidelity, ".4f")


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def switches(runs: list[Run]) -> str:
    counts = [
        len(getattr(r.out, "representation_switches", None) or [])
        for r in runs
        if r.out is not None and hasattr(r.out, "representation_switches")
    ]
    return str(max(counts)) if counts else "-"


def row_summary(row: Row) -> dict[str, Any]:
    """The row's numbers, its cells and its missed targets."""
    fdm_s = median_seconds(row.fdm)
    default = row.lret[DEFAULT_THRESHOLD]
    reached = row.reached
    lret99 = row.lret[reached] if reached is not None else None
    lret99_s = median_seconds(lret99) if lret99 else None
    auto_runs = [a.run for a in row.auto]
    auto_s = median_seconds(auto_runs)
    best = min((t for t in (fdm_s, lret99_s) if t is not None), default=None)
    flags = []
    if fdm_s is not None and reached is None:
        flags.append(NO_F99)
    if (ratio(lret99_s, fdm_s) or 0) > LRET_VS_FDM_TARGET:
        flags.append(LRET_SLOW)
    if auto_s is None or (ratio(auto_s, best) or 0) > AUTO_TARGET:
        flags.append(AUTO_SLOW)
    cells = [
        row.family,
        row.placement,
        f"{row.level:g}",
        str(row.n),
        show_seconds(row.fdm),
        show_seconds(default),
        fmt(worst(default, "max_rank"), "d"),
        fmt(worst(default, "truncation_error")),
        show_fidelity(default),
        fmt(ratio(median_seconds(default), fdm_s), ".2f"),
        "-" if reached is None else f"{reached:g}",
        show_seconds(lret99) if lret99 else "-",
        show_fidelity(lret99) if lret99 else "-",
        fmt(ratio(lret99_s, fdm_s), ".2f"),
        "/".join(sorted({a.engine for a in row.auto})),
        show_seconds(auto_runs),
        fmt(ratio(auto_s, best), ".2f"),
        switches(default),
        *(fmt(statistics.median(v) if None not in v else None) for v in row.extra.values()),
        ", ".join(flags),
        f"{os.getloadavg()[0]:.1f}",
    ]
    return {"cells": cells, "flags": flags, "fdm": fdm_s, "lret": median_seconds(default)}


def table_header(columns: list[str]) -> None:
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns), flush=True)


def table_row(cells: list[str]) -> None:
    print("| " + " | ".join(cells) + " |", flush=True)


MAIN_COLUMNS = [
    "family", "noise", "p", "n", "fdm s", "lret s", "max rank", "trunc err", "F", "lret/fdm",
    "thr@.99", "lret@.99 s", "F@.99", "@.99/fdm", "auto", "auto s", "auto/best", "switches",
]  # fmt: skip
LEGEND = (
    "lret: rank_threshold 1e-4; thr@.99: the first threshold of "
    f"{', '.join(f'{t:g}' for t in THRESHOLDS)} reaching F >= {TARGET_FIDELITY} vs fdm on "
    "every seed, lret@.99 its time; auto/best: auto / min(fdm, lret@.99); switches: lret's "
    "changes between factor and dense (at 1e-4)"
)


def print_predictions(rows: list[Row]) -> None:
    """auto's predicted seconds against the measured ones, and its reason (seed 0)."""
    print("\nauto: predicted vs measured seconds (medians; lret at threshold 1e-4)\n")
    table_header(
        ["family", "noise", "p", "n", "auto", "fdm pred", "fdm s", "lret pred", "lret s", "reason"]
    )
    for row in rows:
        pred = {
            e: statistics.median(a.predicted[e] for a in row.auto)
            if all(e in a.predicted for a in row.auto)
            else None
            for e in ("fdm", "lret")
        }
        table_row(
            [
                row.family,
                row.placement,
                f"{row.level:g}",
                str(row.n),
                "/".join(sorted({a.engine for a in row.auto})),
                fmt(pred["fdm"]),
                show_seconds(row.fdm),
                fmt(pred["lret"]),
                show_seconds(row.lret[DEFAULT_THRESHOLD]),
                row.auto[0].reason.replace("|", "/"),
            ]
        )


def print_targets(rows: list[Row], summaries: list[dict[str, Any]]) -> None:
    print("\nTargets (issue 9)\n")
    targets = (
        (f"lret at F >= {TARGET_FIDELITY} within {LRET_VS_FDM_TARGET}x of fdm", NO_F99, LRET_SLOW),
        (f"auto within {AUTO_TARGET}x of the faster engine", AUTO_SLOW),
    )
    for label, *flags in targets:
        missed = [
            f"{r.family}/{r.placement}/p={r.level:g}/n={r.n}"
            for r, s in zip(rows, summaries, strict=True)
            if set(flags) & set(s["flags"])
        ]
        print(f"- {label}: {len(rows) - len(missed)} of {len(rows)} rows", end="")
        print(f"; missed: {', '.join(missed)}" if missed else "")
    for r, s in zip(rows, summaries, strict=True):
        if (r.family, r.placement, r.level, r.n) == ("random", "moment", 1e-4, 12):
            speedup = fmt(ratio(s["fdm"], s["lret"]), ".1f")
            print(
                f"- low rank (random, moment noise, p=1e-4, n=12, threshold 1e-4): lret {speedup}x "
                "faster than fdm (target >= 10x)"
            )


# --------------------------------------------------------------------------- contention


def contention(args) -> None:
    """lret alone, then next to a busy one-thread process, with the runner's thread policy."""
    prog = noisy_program("random", args.contention_n, args.layers, 1e-3, "moment", 0)
    repeats = max(3, args.seeds)
    timed("lret", {}, prog, args.max_seconds)  # warm: first-call costs

    def policy_run() -> Run:
        """One run with the runner's default threads (``backend.threads`` null), chosen as
        the runner chooses them: from the cores free when the run starts."""
        threads.append(default_threads())
        with threadpool_limits(limits=threads[-1], user_api="blas"):
            return timed("lret", {}, prog, args.max_seconds)

    def median_run() -> tuple[float | None, str]:
        runs = [policy_run() for _ in range(repeats)]
        return median_seconds(runs), show_seconds(runs) + f" ({threads[-1]} thread(s))"

    threads: list[int] = []

    alone, alone_cell = median_run()
    busy = subprocess.Popen([sys.executable, "-c", BUSY], env={**os.environ, **ONE_THREAD})
    try:
        time.sleep(1.0)  # let it get going
        loaded, loaded_cell = median_run()
    finally:
        busy.kill()
        busy.wait()
    r = ratio(loaded, alone)
    print(
        f"\nContention: lret n={args.contention_n}, random depth {2 * args.layers}, p=1e-3, "
        f"moment noise, the runner's default threads, median of {repeats}\n"
    )
    table_header(["load", "lret s", "vs alone", "target"])
    table_row(["alone", alone_cell, "1.00", ""])
    flag = "" if r is not None and r <= CONTENTION_TARGET else "missed"
    table_row(
        ["next to 1 busy process", loaded_cell, fmt(r, ".2f"), f"<= {CONTENTION_TARGET} {flag}"]
    )


# --------------------------------------------------------------------------- frontier


def frontier_point(spec: dict[str, Any]) -> dict[str, Any]:
    """One lret run at the frontier (in a fresh process: its peak RSS is this run's)."""
    circuit = random_circuit(n_qubits=spec["n"], depth=spec["depth"], seed=spec["seed"])
    model = build_noise_model("depolarizing", level=spec["level"], placement="moment")
    prog = compile_circuit(add_noise(circuit, model))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    run = timed("lret", {"rank_threshold": spec["threshold"]}, prog, spec["cap"])
    out = run.out
    return {
        "seconds": run.seconds,
        "note": run.note,
        "max_rank": out and out.max_rank,
        "final_rank": out and out.final_rank,
        "truncation_error": out and out.truncation_error,
        "memory_mb": out and out.memory_used_mb,
        "switches": out and len(getattr(out, "representation_switches", None) or []),
        "rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "rss_before_gib": before,
    }


def frontier(sizes: list[int], args) -> None:
    print(
        f"\nFrontier: lret alone, random circuit depth {args.frontier_depth}, p=1e-4, moment "
        "noise, seed 0, one process per point\n"
    )
    table_header(
        [
            "n",
            "threshold",
            "s",
            "max rank",
            "final rank",
            "trunc err",
            "state MiB",
            "peak RSS GiB",
            "RSS before run GiB",
            "switches",
        ]
    )
    for n in sizes:
        for threshold in (1e-4, 1e-5):
            spec = dict(
                n=n,
                depth=args.frontier_depth,
                seed=0,
                level=1e-4,
                threshold=threshold,
                cap=args.frontier_max_seconds,
            )
            cmd = [sys.executable, __file__, "--point", json.dumps(spec)]
            try:
                done = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=args.frontier_max_seconds + 120
                )
                lines = done.stdout.strip().splitlines()
                p = json.loads(lines[-1]) if done.returncode == 0 and lines else None
                failed = (done.stderr.strip().splitlines() or ["failed"])[-1]
            except subprocess.TimeoutExpired:
                p, failed = None, f">{args.frontier_max_seconds:g} s"
            if p is None:
                table_row([str(n), f"{threshold:g}", failed[:120], *["-"] * 7])
                continue
            table_row(
                [
                    str(n),
                    f"{threshold:g}",
                    p["note"] or fmt(p["seconds"]),
                    fmt(p["max_rank"], "d"),
                    fmt(p["final_rank"], "d"),
                    fmt(p["truncation_error"]),
                    fmt(p["memory_mb"], ".0f"),
                    fmt(p["rss_gib"], ".2f"),
                    fmt(p["rss_before_gib"], ".2f"),
                    fmt(p["switches"], "d"),
                ]
            )


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="n=8, one seed, random and layered, p=1e-3: a smoke test (< 1 min)",
    )
    ap.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    ap.add_argument("--levels", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2])
    ap.add_argument(
        "--placements", nargs="+", choices=["moment", "gate"], default=["moment", "gate"]
    )
    ap.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[8, 10],
        help="n of the main table (none: no table); 12 adds ~20 min, 14 hours",
    )
    ap.add_argument(
        "--layers",
        type=int,
        default=10,
        help="layers of random (2 moments each) and layered circuits",
    )
    ap.add_argument("--seeds", type=int, default=3, help="circuits per row (seeds 0, 1, ...)")
    ap.add_argument("--seeds-large", type=int, default=1, help=f"circuits per row at n >= {LARGE}")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="time cap of one run")
    ap.add_argument(
        "--frontier",
        type=int,
        nargs=2,
        metavar=("FROM", "TO"),
        help="lret-only rows at n = FROM, FROM+2, ..., TO (e.g. 16 20)",
    )
    ap.add_argument("--large", type=int, help="the frontier at this n only (old flag)")
    ap.add_argument("--frontier-depth", type=int, default=20)
    ap.add_argument("--frontier-max-seconds", type=float, default=600.0)
    ap.add_argument("--contention-n", type=int, default=12, help="0: no contention row")
    ap.add_argument("--point", help=argparse.SUPPRESS)  # internal: one frontier point
    args = ap.parse_args()
    if args.quick:
        args.families, args.levels, args.sizes = ["random", "layered"], [1e-3], [8]
        args.seeds, args.contention_n = 1, min(args.contention_n, 10)
    return args


def warm_up() -> None:
    """Pay first-call costs (imports inside the engines, BLAS start-up) before timing."""
    prog = noisy_program("random", 3, 2, 1e-3, "moment", 0)
    for engine in ("fdm", "lret"):
        timed(engine, {}, prog, 60)
    run_auto(prog, {}, 60)


def main() -> None:
    args = parse_args()
    if args.point:
        print(json.dumps(frontier_point(json.loads(args.point))))
        return
    start = time.perf_counter()
    print(
        f"bench_engines: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at "
        f"start, default BLAS threads, {args.seeds} seed(s) per row ({args.seeds_large} from "
        f"n={LARGE}; median time), {args.layers} layers (random: depth {2 * args.layers}), "
        f"qaoa p={QAOA_P} ring, depolarizing noise, time cap {args.max_seconds:g} s per run\n"
    )
    args.extras = optional_engines()
    warm_up()
    rows, summaries = [], []
    if args.sizes:
        print(LEGEND + "\n")
        table_header(MAIN_COLUMNS + list(args.extras) + ["missed targets", "load"])
    for n in args.sizes or []:
        for family in args.families:
            for placement in args.placements:
                for level in args.levels:
                    row = measure_row(family, placement, level, n, args)
                    summary = row_summary(row)
                    table_row(summary["cells"])
                    rows.append(row)
                    summaries.append(summary)
    if rows:
        print_predictions(rows)
        print_targets(rows, summaries)
    if args.contention_n:
        contention(args)
    sizes = [args.large] if args.large else []
    if args.frontier:
        sizes += list(range(args.frontier[0], args.frontier[1] + 1, 2))
    if sizes:
        frontier(sizes, args)
    print(f"\n(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
