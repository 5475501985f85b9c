"""Speed at the accuracy asked: every engine on the same circuits at ``run.accuracy``, and
how well ``auto`` chooses, measured in one run.

For each circuit family x noise model x n x p x accuracy (seeded circuits, seed
``--seed``, not one the code was tuned on) the script prepares the run as a user's config
would (``prepare_circuit``, the engine's defaults, ``accuracy=A``) and simulates it with:

- **fdm**, the exact density matrix (where it fits in memory: the reference);
- **lret** at its default, spending the accuracy over its truncations;
- **auto**, the engine it chooses (its choice, then that engine's run);
- **trajectories** when asked (``--engines fdm lret auto trajectories``), to the same
  accuracy as a standard error (at 1e-3 it needs about 10^5 trajectories: slow).

Families: ``sparse_family`` (the upstream LRET benchmark's generator, as in
``bench_lret.py``, 2n layers), ``random`` brickwork, ``layered``, ``qft``, ``ghz``, ``qaoa``
(p = 2 on a random 3-regular-like graph) and ``ising`` (Trotterised transverse-field Ising,
n steps).

Per engine: seconds (wall, median over ``--repeats``), the accuracy achieved as the run
reports it (``accuracy.achieved``: lret's truncation bound, or the largest standard error),
and, where fdm ran, the distance measured against its exact state: the trace distance for
the density-matrix engines, the largest error of an outcome's probability for trajectories.
A cell is flagged ``!`` when the measured distance breaks the contract (a trace distance
above the accuracy; a probability more than 4 standard errors off) and ``miss`` when the
run itself reports that it did not meet its accuracy.

The **auto validation** table then lists, for every case where fdm ran, auto's time over
the fastest engine that met the accuracy (a proven bound: fdm or lret), and the share of
cases within 1.5x (the target: 90%).

Noise models: ``depolarizing``, ``amplitude_damping`` and ``phase_damping`` (dephasing)
after every moment (uniform noise: many weak error branches), ``sparse`` (rare errors at
random locations, the regime lret is built for) and ``device`` (fake_manila's calibrated
noise, on the first n <= 5 qubits).

    python benchmarks/bench_accuracy.py --quick            # n = 6, 8: ~1 min
    python benchmarks/bench_accuracy.py --families sparse_family random qft ghz qaoa ising \
        --noises depolarizing amplitude_damping sparse --levels 1e-4 1e-2   # the README's table
    python benchmarks/bench_accuracy.py                    # n = 8, 10, 12: ~30-60 min
    python benchmarks/bench_accuracy.py --sizes 14 16 20 --noises sparse --families random
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cirq
import numpy as np
from bench_lret import sparse_family
from threadpoolctl import threadpool_limits

from lret_runner import metrics
from lret_runner.circuits import ghz, layered, qaoa, qft, random_circuit
from lret_runner.errors import MemoryRefusal, NoiseError
from lret_runner.experiment import prepare_circuit, simulate
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators.threads import default_threads


def ising(n: int, steps: int, dt: float = 0.1) -> cirq.Circuit:
    """Trotterised transverse-field Ising evolution (J = h = 1) of |0...0>: per step,
    exp(-i J dt Z_i Z_i+1) on the chain, then exp(-i h dt X_i) on every qubit."""
    qubits = cirq.LineQubit.range(n)
    zz = cirq.ZZPowGate(exponent=2 * dt / np.pi)
    circuit = cirq.Circuit()
    for _ in range(steps):
        circuit.append(zz.on(a, b) for a, b in zip(qubits[::2], qubits[1::2], strict=False))
        circuit.append(zz.on(a, b) for a, b in zip(qubits[1::2], qubits[2::2], strict=False))
        circuit.append(cirq.rx(2 * dt).on(q) for q in qubits)
    circuit.append(cirq.measure(*qubits, key="m"))
    return circuit


FAMILIES: dict[str, Callable[[int, int], cirq.Circuit]] = {
    "sparse_family": lambda n, seed: sparse_family(n, 2 * n, seed),
    "random": lambda n, seed: random_circuit(n_qubits=n, depth=2 * n, seed=seed, measure=True),
    "layered": lambda n, seed: layered(n_qubits=n, layers=n, seed=seed, measure=True),
    "qft": lambda n, seed: qft(n_qubits=n, input_state=seed % 2**n, measure=True),
    "ghz": lambda n, seed: ghz(n_qubits=n, measure=True),
    "qaoa": lambda n, seed: qaoa(n_qubits=n, p=2, seed=seed, measure=True),
    "ising": lambda n, seed: ising(n, n),
}
NOISES = ("depolarizing", "amplitude_damping", "phase_damping", "sparse", "device")
AUTO_TARGET = 1.5  # auto within this factor of the fastest engine that met the accuracy
AUTO_SHARE = 0.9  # ... in at least this share of the cases


def noise_model(name: str, p: float, seed: int):
    if name == "sparse":
        return build_noise_model("sparse", level=p, seed=seed)
    if name == "device":
        return build_noise_model("device", device="fake_manila", scale=p / 1e-3)
    return build_noise_model(name, level=p, placement="moment")


@dataclass
class Result:
    seconds: float | None  # None: refused or not run
    achieved: float | None = None  # what the run reports (accuracy.achieved)
    met: bool | None = None  # what the run reports (accuracy.met)
    distance: float | None = None  # measured against fdm's exact state
    engine: str = ""  # what ran (auto: its choice)
    rank: int | None = None  # lret: the largest rank it held (2^n while dense)
    statistical: bool = False  # distance: the largest probability error (a sampled state)
    note: str = ""


@dataclass
class Case:
    family: str
    noise: str
    n: int
    p: float
    accuracy: float
    results: dict[str, Result] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.family} {self.noise} n={self.n} p={self.p:g}"


class Capped(Exception):
    """A run stopped at the benchmark's time cap."""


def run(circuit: cirq.Circuit, engine: str, accuracy: float, repeats: int, seed: int, cap: float):
    """The median seconds of ``repeats`` runs and the last run's (result, output); a run that
    passes ``cap`` seconds is stopped (:class:`Capped`) at its next moment."""
    times, last = [], None
    for _ in range(repeats):
        prepared = prepare_circuit(circuit, simulator=engine, accuracy=accuracy, seed=seed)
        start = time.perf_counter()

        def progress(done: int, total: int, start: float = start) -> None:
            if time.perf_counter() - start > cap:
                raise Capped

        last = simulate(prepared, progress)
        times.append(time.perf_counter() - start)
    return statistics.median(times), last


def measure(case: Case, circuit: cirq.Circuit, engines: list[str], args) -> None:
    exact = None
    for engine in engines:
        try:
            seconds, (result, out) = run(
                circuit, engine, case.accuracy, args.repeats, args.seed, args.cap
            )
        except MemoryRefusal:
            case.results[engine] = Result(None, note="refused")
            continue
        except Capped:
            case.results[engine] = Result(None, note=f">{args.cap:g}s")
            continue
        acc = result.accuracy or {}
        r = Result(seconds, acc.get("achieved"), acc.get("met"), engine=result.backend_used)
        r.rank = result.largest_rank
        if engine == "fdm":
            exact = out.state
        elif exact is not None:
            if isinstance(out.state, metrics.Dense | metrics.LowRank):
                r.distance = metrics.trace_distance(out.state, exact)
            else:  # a sampled state: the largest error of an estimated probability
                diff = metrics.probabilities(out.state) - metrics.probabilities(exact)
                r.distance = float(np.abs(diff).max())
                r.statistical = True
        case.results[engine] = r


def cell(r: Result | None, accuracy: float) -> str:
    if r is None or r.seconds is None:
        return "-" if r is None else r.note
    flags = ""
    # a proven bound must hold; a standard error may be exceeded, rarely beyond 4 of them
    allowed = accuracy * (4 if r.statistical else 1 + 1e-9)
    if r.distance is not None and r.distance > allowed:
        flags += "!"
    if r.met is False:
        flags += " miss"
    dist = "" if r.distance is None else f" d={r.distance:.1e}"
    ach = "" if r.achieved is None else f" a={r.achieved:.1e}"
    rank = "" if r.rank is None or r.engine != "lret" else f" r={r.rank}"
    return f"{r.seconds:.3g}s{rank}{ach}{dist}{flags}"


def fastest(case: Case) -> tuple[str, float] | None:
    """The fastest engine with a proven bound that met the accuracy, and its seconds."""
    met = [
        (r.seconds, e)
        for e in ("fdm", "lret")
        if (r := case.results.get(e)) and r.seconds is not None and r.met
    ]
    if not met:
        return None
    seconds, engine = min(met)
    return engine, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["random", "layered", "qft", "qaoa"])
    parser.add_argument("--noises", nargs="+", default=list(NOISES))
    parser.add_argument("--sizes", nargs="+", type=int, default=[8, 10, 12])
    parser.add_argument("--levels", nargs="+", type=float, default=[1e-4, 1e-3, 1e-2])
    parser.add_argument("--accuracies", nargs="+", type=float, default=[1e-2, 1e-3])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cap", type=float, default=60.0, help="seconds; a run is stopped")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--engines", nargs="+", default=None, help="default: fdm lret auto")
    parser.add_argument("--plot", default=None, help="write the summary plot (PNG) here")
    parser.add_argument("--quick", action="store_true", help="n = 6, 8; two families")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.families, args.levels = [6, 8], ["random", "layered"], [1e-3, 1e-2]
    threads = args.threads or default_threads()
    engines = args.engines or ["fdm", "lret", "auto"]
    print(f"# threads {threads}; engines {', '.join(engines)}; seed {args.seed}\n")
    print("| case | accuracy | " + " | ".join(engines) + " | auto chose | fastest | auto/fastest |")
    print("|---" * (len(engines) + 5) + "|")
    cases: list[Case] = []
    with threadpool_limits(limits=threads, user_api="blas"):
        grid = itertools.product(
            args.families, args.noises, args.sizes, args.levels, args.accuracies
        )
        for family, noise, n, p, accuracy in grid:
            if noise == "device" and n > 5:  # fake_manila has five qubits
                continue
            try:
                circuit = add_noise(
                    FAMILIES[family](n, args.seed), noise_model(noise, p, args.seed)
                )
            except NoiseError as exc:  # a two-qubit gate off the device's coupled pairs
                print(f"| {family} {noise} n={n} p={p:g} | skipped: {str(exc)[:90]}... |")
                continue
            case = Case(family, noise, n, p, accuracy)
            measure(case, circuit, engines, args)
            cases.append(case)
            best = fastest(case)
            auto = case.results.get("auto")
            ratio = (
                f"{auto.seconds / best[1]:.2f}"
                if best and auto is not None and auto.seconds is not None
                else "-"
            )
            print(
                f"| {case.label} | {accuracy:g} | "
                + " | ".join(cell(case.results.get(e), accuracy) for e in engines)
                + f" | {auto.engine if auto else '-'} | {best[0] if best else '-'} | {ratio} |",
                flush=True,
            )
    validate(cases)
    if args.plot:
        plot(cases, args.plot)


def plot(cases: list[Case], path: str) -> None:
    """Seconds against n, one panel per noise model and accuracy: per family and noise level,
    the fastest engine with a proven bound that met the accuracy (its marker says which)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    noises = sorted({c.noise for c in cases})
    accuracies = sorted({c.accuracy for c in cases}, reverse=True)
    fig, axes = plt.subplots(
        len(accuracies),
        len(noises),
        figsize=(4.2 * len(noises), 3.6 * len(accuracies)),
        squeeze=False,
        sharey=True,
    )
    markers = {"fdm": "s", "lret": "o"}
    colors = dict(zip(sorted({c.family for c in cases}), plt.cm.tab10.colors, strict=False))
    for (i, accuracy), (j, noise) in itertools.product(enumerate(accuracies), enumerate(noises)):
        ax = axes[i][j]
        for family, color in colors.items():
            for p, style in ((min(c.p for c in cases), ":"), (max(c.p for c in cases), "-")):
                mine = sorted(
                    (
                        c
                        for c in cases
                        if (c.family, c.noise, c.accuracy, c.p) == (family, noise, accuracy, p)
                    ),
                    key=lambda c: c.n,
                )
                points = [(c.n, fastest(c)) for c in mine if fastest(c)]
                if not points:
                    continue
                ax.plot(
                    [x for x, _ in points],
                    [b[1] for _, b in points],
                    style,
                    color=color,
                    label=f"{family}, p={p:g}",
                )
                for x, (engine, seconds) in points:
                    ax.plot(x, seconds, markers[engine], color=color, fillstyle="none")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(f"{noise}, run.accuracy={accuracy:g}", fontsize=9)
        ax.set_xlabel("qubits")
        if j == 0:
            ax.set_ylabel("seconds of the fastest engine\nthat met the accuracy")
    axes[0][-1].legend(fontsize=6, loc="upper left")
    fig.suptitle(
        "Fastest engine with a proven bound meeting run.accuracy (square: fdm, circle: lret);"
        " solid: highest p, dotted: lowest",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def validate(cases: list[Case]) -> None:
    """auto's time over the fastest engine with a proven bound that met the accuracy (a run
    of auto stopped at the cap counts as a miss)."""
    ratios = []
    for case in cases:
        best = fastest(case)
        auto = case.results.get("auto")
        if best is None or auto is None or "fdm" not in case.results:
            continue
        ratios.append(auto.seconds / best[1] if auto.seconds is not None else float("inf"))
    if not ratios:
        return
    within = np.mean([x <= AUTO_TARGET for x in ratios])
    print(
        f"\nauto validation: {len(ratios)} cases; auto / fastest engine that met the accuracy: "
        f"median {statistics.median(ratios):.2f}x, worst {max(ratios):.2f}x; within "
        f"{AUTO_TARGET}x in {within:.0%} of cases (target {AUTO_SHARE:.0%})"
    )


if __name__ == "__main__":
    main()
