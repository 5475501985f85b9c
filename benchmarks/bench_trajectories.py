"""simulator=trajectories: trajectories, seconds and the standard error reached, per size and noise.

A layered circuit (20 layers: 40 moments), depolarizing noise after every moment on every
qubit, run.accuracy (the largest standard error of each figure) 1e-2 by default. The figures
estimated: the fidelity to the noiseless state, the linear XEB, <Z0 Z1>, <X0> and the
measured probabilities. At n <= 12 each is compared with fdm's exact value: the largest
|trajectories - fdm| in standard errors (about 2-3 is expected of ~5 figures plus the
probabilities' max over outcomes).

Usage: python benchmarks/bench_trajectories.py [--sizes 12 16 20] [--levels 1e-4 1e-2]
       [--accuracy 1e-2] [--kernel auto|qsim|numpy] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lret_runner import metrics
from lret_runner.circuits import layered
from lret_runner.experiment import prepare_circuit, simulate
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators.threads import default_threads

FDM_MAX_QUBITS = 12


def observables(n: int) -> list[str]:
    return ["ZZ" + "I" * (n - 2), "X" + "I" * (n - 1)]


def run(n: int, level: float, engine: str, accuracy: float, kernel: str, threads: int) -> dict:
    circuit = layered(n_qubits=n, layers=20, seed=7)
    noisy = add_noise(circuit, build_noise_model("depolarizing", level=level, placement="moment"))
    params = {"kernel": kernel} if engine == "trajectories" else {}
    prepared = prepare_circuit(
        noisy,
        simulator=engine,
        simulator_params=params,
        accuracy=accuracy,
        seed=1,
        xeb=True,
        observables=observables(n),
        threads=threads,
    )
    start = time.perf_counter()
    result, out = simulate(prepared)
    return {
        "seconds": time.perf_counter() - start,
        "result": result,
        "probs": metrics.probabilities(out.state),
    }


def figures(result: object) -> dict[str, float | None]:
    values = {
        "ideal_fidelity": getattr(result, "ideal_fidelity", None),
        "xeb_fidelity": getattr(result, "xeb_fidelity", None),
    }
    for pauli, value in getattr(result, "expectation_values", {}).items():
        values[f"expval_{pauli}"] = value
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 16, 20])
    parser.add_argument("--levels", type=float, nargs="+", default=[1e-4, 1e-2])
    parser.add_argument("--accuracy", type=float, default=1e-2)
    parser.add_argument("--kernel", default="auto")
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()
    print(
        f"layered circuit, 20 layers, depolarizing after every moment, run.accuracy="
        f"{args.accuracy:g}, {args.threads} threads, kernel={args.kernel}"
    )
    header = (
        f"{'n':>3} {'p':>7} {'trajectories':>12} {'seconds':>8} {'largest s.e.':>12} "
        f"{'met':>4} {'vs fdm (max |diff|/s.e.)':>25}  how"
    )
    print(header)
    for n in args.sizes:
        for level in args.levels:
            got = run(n, level, "trajectories", args.accuracy, args.kernel, args.threads)
            result = got["result"]
            errors = result.standard_errors
            largest = max(errors.values())
            agreement = "-"
            if n <= FDM_MAX_QUBITS:
                exact = run(n, level, "fdm", args.accuracy, args.kernel, args.threads)
                z = [
                    abs(value - figures(exact["result"])[key]) / errors[key]
                    for key, value in figures(result).items()
                    if value is not None and errors.get(key)
                ]
                prob_z = np.abs(got["probs"] - exact["probs"]).max() / errors["probabilities"]
                agreement = f"{max(z):.2f} (probabilities {prob_z:.2f})"
            how = result.backend_reason.split("; ", 1)[-1]
            print(
                f"{n:>3} {level:>7.0e} {result.trajectories:>12} {got['seconds']:>8.1f} "
                f"{largest:>12.2e} {str(largest <= args.accuracy):>4} {agreement:>25}  {how}",
                flush=True,
            )
            for warning in result.warnings:
                print(f"    warning: {warning}")


if __name__ == "__main__":
    main()
