"""Optimisation: how close each sampler gets, how long a study takes, how often the
architecture search finds its target. One run, one markdown report.

1. **Samplers on VQE.** ``+optimize=vqe_energy`` on the transverse-field Ising chain
   (``hamiltonian=ising``, J = h = 1, open chain, ``--qubits`` 4, the vqe ansatz with
   ``--depth`` 2 layers of RY and a CNOT chain: 8 angles), without noise, through the
   real runner (every trial a tracked run). For each sampler (random, tpe, cmaes, and gp
   when torch is installed) and ``--seeds`` seeds: the best energy after 20, 50 and 100
   trials, read from the stored study, against the exact ground energy (diagonalisation
   of the same Pauli sum) and against the best the ansatz reaches (the best over every
   trial of every sampler in this run, a lower bound for what the samplers could find).
2. **Wall time with 1 and 2 joblib workers.** The same 100-trial tpe study with
   ``hydra/launcher=joblib hydra.launcher.n_jobs=1`` and ``=2`` (two trials asked at a
   time in both): seconds per study and the ratio.
3. **Architecture search.** The ``circuit_automl`` preset's search (NSGA-II, population
   100, 8 slots over the full gate pool, GHZ target on 3 qubits, no noise) with
   ``--automl-seeds`` seeds in process: the same sampler and search space
   (``lret_runner.optimize.study.generated_space``) and fitness computed by the same
   engine (fdm through ``prepare_circuit``/``simulate``), without the per-trial tracking;
   trials until fidelity >= 0.99 (budget 1500), and random search as the baseline.

    python benchmarks/bench_optimize.py
    python benchmarks/bench_optimize.py --seeds 3 --automl-seeds 16
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHECKPOINTS = (20, 50, 100)


def run_study(cwd: Path, name: str, sampler: str, seed: int, args: argparse.Namespace,
              extra: list[str], trials: int) -> float:  # fmt: skip
    """One vqe_energy study through the CLI; returns its wall seconds."""
    cmd = [
        sys.executable, "-m", "lret_runner", "-m", "+optimize=vqe_energy",
        "hamiltonian=ising", f"circuit.n_qubits={args.qubits}", f"circuit.depth={args.depth}",
        "noise=none", f"optimize.sampler={sampler}", f"optimize.seed={seed}",
        f"optimize.study_name={name}", f"hydra.sweeper.n_trials={trials}", *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return wall


def best_after(cwd: Path, name: str) -> list[float]:
    import optuna

    study = optuna.load_study(study_name=name, storage=f"sqlite:///{cwd}/mlruns/optuna.db")
    values = [t.value for t in study.trials if t.value is not None]
    return [min(values[:k]) for k in CHECKPOINTS if len(values) >= k]


def ground_energy(n: int) -> float:
    from lret_runner import metrics

    terms = metrics.ising_chain(n, 1.0, 1.0, False)
    return float(np.linalg.eigvalsh(metrics.pauli_sum_matrix(terms))[0])


def samplers_section(cwd: Path, args: argparse.Namespace) -> list[str]:
    samplers = ["random", "tpe", "cmaes"] + (["gp"] if importlib.util.find_spec("torch") else [])
    exact = ground_energy(args.qubits)
    found: dict[str, list[list[float]]] = {}
    for sampler in samplers:
        for seed in range(args.seeds):
            name = f"bench-{sampler}-{seed}"
            run_study(cwd, name, sampler, seed, args, [], max(CHECKPOINTS))
            found.setdefault(sampler, []).append(best_after(cwd, name))
    reachable = min(v[-1] for runs in found.values() for v in runs)
    lines = [
        f"### VQE on the Ising chain: n = {args.qubits}, {args.depth} RY layers, no noise",
        "",
        f"Exact ground energy {exact:.6f}; best any trial reached {reachable:.6f} "
        f"(ansatz gap at most {reachable - exact:.4f}). Cells: best energy after k trials, "
        f"minus the exact ground energy (median over {args.seeds} seed(s)).",
        "",
        "| sampler | " + " | ".join(f"{k} trials" for k in CHECKPOINTS) + " |",
        "|---|" + "---|" * len(CHECKPOINTS),
    ]
    for sampler, runs in found.items():
        cells = [statistics.median(r[i] for r in runs) - exact for i in range(len(CHECKPOINTS))]
        lines.append(f"| {sampler} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
    if "gp" not in found:
        lines.append("\ngp: skipped (its dependency, torch, is not installed)")
    return lines


def workers_section(cwd: Path, args: argparse.Namespace) -> list[str]:
    walls = {}
    for workers in (1, 2):
        extra = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={workers}"]
        walls[workers] = run_study(cwd, f"bench-workers-{workers}", "tpe", 0, args, extra, 100)
    return [
        "### Wall time of a 100-trial tpe study",
        "",
        "| joblib workers | seconds | per trial | speed-up |",
        "|---|---|---|---|",
        *(f"| {w} | {s:.1f} | {s / 100:.3f} | {walls[1] / s:.2f}x |" for w, s in walls.items()),
    ]


def automl_trials(kind: str, seed: int, budget: int) -> int | None:
    """Trials of the circuit_automl search (in process, see the module docstring) until
    the GHZ fidelity reaches 0.99 (None: not within ``budget``)."""
    import cirq
    import optuna
    from hydra import compose, initialize_config_module

    from lret_runner import circuits
    from lret_runner.config import CONF_PACKAGE, register_configs
    from lret_runner.experiment import prepare_circuit, simulate
    from lret_runner.optimize.study import generated_space, make_sampler

    register_configs()
    with initialize_config_module(config_module=CONF_PACKAGE):
        cfg = compose(config_name="config", overrides=["+optimize=circuit_automl", "noise=none",
                                                       f"optimize.seed={seed}"])  # fmt: skip
    space = generated_space(cfg)
    sampler = make_sampler(cfg.optimize, None) if kind == "nsgaii" else (
        optuna.samplers.RandomSampler(seed=seed)
    )  # fmt: skip
    target = circuits.target_state("ghz", 3)
    qubits = cirq.LineQubit.range(3)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for k in range(budget):
        trial = study.ask(space)
        slots = [trial.params[f"circuit.slots.{i}"] for i in range(len(space))]
        circuit = circuits.architecture(n_qubits=3, slots=slots)
        prepared = prepare_circuit(circuit, simulator="fdm", qubits=qubits, target=target)
        fidelity = simulate(prepared)[0].target_fidelity
        study.tell(trial, fidelity)
        if fidelity >= 0.99:
            return k + 1
    return None


def automl_section(args: argparse.Namespace) -> list[str]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budget = 1500
    lines = [
        "### Architecture search: 3-qubit GHZ, full gate pool, 8 slots, no noise",
        "",
        f"Trials until fidelity >= 0.99 (budget {budget}) over {args.automl_seeds} seeds.",
        "",
        "| search | found | median trials | per seed |",
        "|---|---|---|---|",
    ]
    for kind in ("nsgaii", "random"):
        hits = [automl_trials(kind, seed, budget) for seed in range(args.automl_seeds)]
        found = [h for h in hits if h is not None]
        median = statistics.median(found) if found else "-"
        shown = " ".join(str(h) if h else "-" for h in hits)
        lines.append(f"| {kind} | {len(found)}/{len(hits)} | {median} | {shown} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qubits", type=int, default=4)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=1, help="seeds per sampler")
    parser.add_argument("--automl-seeds", type=int, default=8)
    parser.add_argument("--skip", nargs="*", default=[], choices=["samplers", "workers", "automl"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        # the store's schema is created before any clock starts
        subprocess.run(
            [sys.executable, "-m", "lret_runner", "run.quiet=true", "circuit.n_qubits=2",
             "circuit.depth=1", "session.name=setup"],
            cwd=cwd, check=True, capture_output=True,
        )  # fmt: skip
        sections = []
        if "samplers" not in args.skip:
            sections.append(samplers_section(cwd, args))
        if "workers" not in args.skip:
            sections.append(workers_section(cwd, args))
    if "automl" not in args.skip:
        sections.append(automl_section(args))
    print("\n\n".join("\n".join(s) for s in sections))


if __name__ == "__main__":
    main()
