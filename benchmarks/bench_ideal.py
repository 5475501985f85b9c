"""What the figures against the noiseless circuit cost per run, measured in one run.

Every run computes the state vector of its circuit without the noise
(``simulators/ideal.py``: ``noiseless_program`` + ``state_vector``) and from it
``ideal_fidelity`` (<psi|rho|psi>), the TVD and Hellinger fidelity of the output
distributions, the linear XEB (random circuits, exact and from the sampled counts) and the
noiseless observables. This script measures that cost against the run's simulation time.

Circuits: seeded layered and random brickwork circuits (seed ``--seed``, not one the code was
tuned on), depolarizing noise after every gate (``placement=gate``), 1024 shots, two
observables (ZZ on qubits 0 and 1, X on the last qubit), no Hamiltonian and no exact
comparison (``compare_to_exact=false``, as ``prepare_circuit`` defaults), lret at
``rank_threshold`` 1e-4 (a fixed threshold per truncation, so that the work does not depend
on ``run.accuracy``; adaptive) and fdm where it fits (n = 10; 4^16 entries at
n = 16 do not). Depths and levels are chosen so that lret does real work and the whole
benchmark finishes in about 10 minutes on the 2-core development machine:

- n = 10: depth 20 (10 layers), p = 1e-3 and 1e-2 (lret ends dense there), lret and fdm;
- n = 16: depth 4 (2 layers), p = 1e-3: ranks 30-45, about 3 s a run;
- n = 20: depth 2 (1 layer), p = 1e-3: rank 31, 17-19 s a run (depth 4 took 65 s: three
  simulate calls per mode would not fit in the budget);
- p = 1e-2 only at n = 10: every error branch then weighs ~p/3, far above the threshold,
  and the rank grows with every channel (n = 16 at depth 2 took more than 60 s a run);
- one extra row, outside the target: n = 20, random depth 4 at p = 1e-4, where a
  truncation drops every error branch (rank 1-2): lret does little more than a state
  vector simulation, so the noiseless reference is a large fraction of it; a worst case
  for the ratio, not a level where lret does real work (``--no-light`` leaves it out).

Per row, medians over ``--repeats``:

- **simulation s**: the engine's ``simulation_time_seconds``, over every ``simulate`` call;
- **noiseless reference s**: ``noiseless_program`` + ``state_vector`` timed directly
  (in a run, ``noiseless_program`` is part of ``prepare_circuit``: about 0.1 ms);
- **figures s**: the figures of ``experiment._against_noiseless`` from that vector (the same
  metric calls, in the same order; ``ideal_fidelity`` is checked against the run's to 1e-12);
- **total extra s** = the two, and **% of simulation** = total extra / simulation;
- two cross-checks: **in run s**, the time ``simulate`` itself reports for the noiseless part
  (``ideal_reference``), and **on - off s**, the median wall time of ``simulate`` with the
  reference enabled minus with it disabled (``prepare_circuit(..., ideal_max_qubits=0)``),
  the two alternated; that difference is as noisy as the simulation itself.

Threads: one BLAS thread count for everything (``--threads``; default: the runner's policy,
``simulators.threads.default_threads``, sampled once at the start), passed to
``prepare_circuit`` (``simulate`` applies it) and set with ``threadpool_limits`` around the
direct timings. Target (reported, not asserted): the noiseless part at most 10% of the
simulation at n >= 16.

    python benchmarks/bench_ideal.py                  # n = 10, 16, 20: ~6-10 min
    python benchmarks/bench_ideal.py --sizes 10 16 --repeats 5
    python benchmarks/bench_ideal.py --sizes 10 --no-light   # ~1 min
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import statistics
import time
from dataclasses import dataclass
from typing import Any

import cirq
from threadpoolctl import threadpool_limits

from lret_runner import metrics
from lret_runner.circuits import layered, random_circuit
from lret_runner.experiment import Prepared, prepare_circuit, simulate
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators.ideal import noiseless_program, state_vector
from lret_runner.simulators.threads import default_threads

TARGET_PERCENT = 10.0  # the noiseless part, at most this % of the simulation at n >= TARGET_N
TARGET_N = 16
RANK_THRESHOLD = 1e-4  # lret: trace weight one truncation may discard
SHOTS = 1024  # the run default (run.shots)
DIRECT_REPEATS = 5  # the direct timings are cheap: at least this many


@dataclass(frozen=True)
class Case:
    family: str  # layered or random
    n: int
    depth: int  # moments (layered: 2 per layer)
    level: float  # depolarizing p after every gate
    engine: str
    in_target: bool = True  # counted for the target (False: the light row)

    @property
    def label(self) -> str:
        if self.family == "layered":
            layers = self.depth // 2
            return f"layered, {layers} layer{'s' if layers > 1 else ''}"
        return f"random, depth {self.depth}"

    def circuit(self, seed: int) -> cirq.Circuit:
        if self.family == "layered":
            return layered(n_qubits=self.n, layers=self.depth // 2, seed=seed)
        return random_circuit(n_qubits=self.n, depth=self.depth, seed=seed)


def cases(sizes: list[int], light: bool) -> list[Case]:
    """The rows, in the order they run (see the module docstring)."""
    out: list[Case] = []
    for n in sizes:
        depth = {10: 20, 16: 4, 20: 2}.get(n, 4)
        levels = (1e-3, 1e-2) if n <= 10 else (1e-3,)
        engines = ("lret", "fdm") if n <= 10 else ("lret",)
        for engine in engines:
            for level in levels:
                for family in ("layered", "random"):
                    out.append(Case(family, n, depth, level, engine))
    if light and 20 in sizes:
        out.append(Case("random", 20, 4, 1e-4, "lret", in_target=False))
    return out


def observables(n: int) -> list[str]:
    return ["ZZ" + "I" * (n - 2), "I" * (n - 1) + "X"]


def figures(p: Prepared, state: metrics.State, probs: Any, psi: Any, counts: Any) -> float:
    """The figures of ``experiment._against_noiseless`` from ``psi`` (same calls, same order);
    returns ideal_fidelity."""
    pure = metrics.LowRank(psi[:, None])
    fidelity = metrics.state_overlap(state, psi)
    kept = sorted(set(p.program.measured)) or list(range(p.n_qubits))
    noisy = metrics.marginal(probs, kept)
    ideal = metrics.marginal(metrics.probabilities(pure), kept)
    metrics.total_variation(noisy, ideal)
    metrics.hellinger_fidelity(noisy, ideal)
    if p.xeb:
        metrics.linear_xeb(noisy, ideal)
        if counts:
            metrics.linear_xeb_sampled(counts, ideal, kept)
    for q in p.observables:
        metrics.expectation(pure, q)
    if p.hamiltonian is not None:
        metrics.energy(pure, p.hamiltonian)
    return fidelity


IN_RUN = re.compile(r"\(([0-9.e+-]+) s\)")


@dataclass
class Row:
    case: Case
    rank: str
    simulation: float
    reference: float
    figures: float
    in_run: float
    on_minus_off: float
    note: str = ""

    @property
    def extra(self) -> float:
        return self.reference + self.figures

    @property
    def percent(self) -> float:
        return 100.0 * self.extra / self.simulation


def measure(case: Case, seed: int, threads: int, repeats: int) -> Row:
    noisy = add_noise(case.circuit(seed), build_noise_model("depolarizing", level=case.level))
    options: dict[str, Any] = {
        "simulator": case.engine,
        "shots": SHOTS,
        "seed": 0,
        "xeb": case.family == "random",
        "observables": observables(case.n),
        "threads": threads,
        "simulator_params": {"rank_threshold": RANK_THRESHOLD},
    }
    on = prepare_circuit(noisy, **options)
    off = prepare_circuit(noisy, ideal_max_qubits=0, **options)
    assert not isinstance(on.ideal, str) and isinstance(off.ideal, str)
    sims: list[float] = []
    walls: dict[str, list[float]] = {"on": [], "off": []}
    in_run: list[float] = []
    kept: Any = None  # the last run with the reference: its state and counts
    for _ in range(repeats):
        for mode, prepared in (("on", on), ("off", off)):
            gc.collect()
            start = time.perf_counter()
            run = simulate(prepared)
            walls[mode].append(time.perf_counter() - start)
            sims.append(float(run[0].simulation_time_seconds or 0.0))
            if mode == "on":
                kept = run
                in_run.append(float(IN_RUN.search(run[0].ideal_reference).group(1)))  # type: ignore[union-attr]
            del run
    result, out = kept
    probs = metrics.probabilities(out.state)  # simulate computes it with or without the reference
    reference: list[float] = []
    figure: list[float] = []
    fidelity = 0.0
    with threadpool_limits(limits=threads, user_api="blas"):
        for _ in range(max(repeats, DIRECT_REPEATS)):
            start = time.perf_counter()
            psi = state_vector(noiseless_program(on.program))  # type: ignore[arg-type]
            reference.append(time.perf_counter() - start)
            start = time.perf_counter()
            fidelity = figures(on, out.state, probs, psi, result.counts)
            figure.append(time.perf_counter() - start)
            del psi
    note = ""
    if abs(fidelity - float(result.ideal_fidelity or 0.0)) > 1e-12:
        note = f"ideal_fidelity {fidelity!r} != the run's {result.ideal_fidelity!r}"
    largest = result.largest_rank
    rank = "dense" if case.engine == "fdm" else str(largest if largest is not None else "-")
    if case.engine == "lret" and result.dense_spans:
        rank += " (dense)"
    return Row(
        case,
        rank,
        statistics.median(sims),
        statistics.median(reference),
        statistics.median(figure),
        statistics.median(in_run),
        statistics.median(walls["on"]) - statistics.median(walls["off"]),
        note,
    )


def warm_up(threads: int) -> None:
    """One tiny run per engine: imports done inside functions are not timed later."""
    noisy = add_noise(
        random_circuit(n_qubits=4, depth=4, seed=0), build_noise_model("depolarizing", level=1e-3)
    )
    for engine in ("lret", "fdm"):
        prepared = prepare_circuit(
            noisy,
            simulator=engine,
            shots=SHOTS,
            xeb=True,
            threads=threads,
            simulator_params={"rank_threshold": RANK_THRESHOLD},
        )
        simulate(prepared)


def fmt(seconds: float) -> str:
    return f"{seconds:.3g}"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 16, 20])
    ap.add_argument("--repeats", type=int, default=3, help="simulate calls per mode (median)")
    ap.add_argument("--seed", type=int, default=101, help="circuit seed")
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: policy)")
    ap.add_argument("--no-light", dest="light", action="store_false", help="skip the p=1e-4 row")
    args = ap.parse_args()
    began = time.perf_counter()
    threads = args.threads or default_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{os.cpu_count()} CPUs, load average {load:.2f} at the start, {threads} BLAS thread(s) "
        f"throughout, circuit seed {args.seed}, depolarizing after every gate, {SHOTS} shots, "
        f"median of {args.repeats} simulate calls per mode (direct timings: "
        f"{max(args.repeats, DIRECT_REPEATS)})\n"
    )
    warm_up(threads)
    print(
        "| circuit | p | n | engine | rank | simulation s | noiseless reference s | figures s "
        "| total extra s | % of simulation | in run s | on - off s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for case in cases(args.sizes, args.light):
        row = measure(case, args.seed, threads, args.repeats)
        rows.append(row)
        mark = "" if case.in_target else " (light)"
        print(
            f"| {case.label}{mark} | {case.level:g} | {case.n} | {case.engine} | {row.rank} "
            f"| {fmt(row.simulation)} | {fmt(row.reference)} | {fmt(row.figures)} "
            f"| {fmt(row.extra)} | {row.percent:.1f} | {fmt(row.in_run)} "
            f"| {row.on_minus_off:+.3g} |",
            flush=True,
        )
        if row.note:
            print(f"  WARNING: {row.note}", flush=True)
    counted = [r for r in rows if r.case.in_target and r.case.n >= TARGET_N]
    if counted:
        worst = max(counted, key=lambda r: r.percent)
        verdict = "met" if worst.percent <= TARGET_PERCENT else "MISSED"
        print(
            f"\nTarget (noiseless part <= {TARGET_PERCENT:g}% of the simulation at "
            f"n >= {TARGET_N}, the light row excluded): {verdict}; the largest is "
            f"{worst.percent:.1f}% ({worst.case.label}, n = {worst.case.n}, "
            f"p = {worst.case.level:g})"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Load average {load:.2f} at the end; {time.perf_counter() - began:.0f} s in all")


if __name__ == "__main__":
    main()
