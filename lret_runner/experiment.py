"""Run a noisy circuit on an engine and turn the outcome into a result record.

No Hydra, no MLflow: the entry points (``__main__``, the API, the optimiser) call this
and do the tracking themselves.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lret_runner import metrics
from lret_runner.simulators import (
    ENGINES,
    FdmSimulator,
    MemoryRefusal,
    choose_engine,
    compile_circuit,
    make_engine,
)
from lret_runner.simulators.base import EngineOutput, ProgressCallback

if TYPE_CHECKING:
    import cirq

# probabilities are a 2^n vector: beyond this they are not saved
PROBABILITIES_MAX_QUBITS = 16


@dataclass
class RunResult:
    """The record of one run (JSON-ready through :meth:`to_dict`)."""

    status: str  # FINISHED, FAILED or KILLED
    backend_used: str
    n_qubits: int
    depth: int | None  # moments of the noiseless circuit, terminal measurement excluded
    run_id: str | None = None
    simulation_time_seconds: float | None = None
    final_rank: int | None = None
    max_rank: int | None = None
    rank_history: list[int] | None = None
    memory_used_mb: float | None = None
    truncation_error: float | None = None
    purity: float | None = None
    fidelity: float | None = None  # vs the exact state; None with ``exact_reference`` saying why
    trace_distance: float | None = None
    exact_reference: str = "not requested"  # how fidelity/trace_distance were obtained, or why not
    backend_reason: str = ""  # why ``auto`` chose the engine ("requested" otherwise)
    counts: dict[str, int] | None = None
    probabilities: list[float] | None = None
    expectation_values: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    started_at: str | None = None
    completed_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def simulate(
    circuit: cirq.Circuit,
    *,
    simulator: str = "lret",
    simulator_params: dict[str, Any] | None = None,
    qubits: Sequence[cirq.Qid] | None = None,
    depth: int | None = None,
    shots: int = 0,
    seed: int | None = None,
    compare_to_exact: bool = False,
    exact_max_qubits: int = 12,
    observables: Sequence[str] = (),
    save_probabilities: bool = False,
    progress: ProgressCallback | None = None,
) -> tuple[RunResult, EngineOutput]:
    """Simulate ``circuit`` (already noisy) and measure what was asked.

    Returns the record and the engine output (which holds the final state).
    """
    params = dict(simulator_params or {})
    order = list(qubits) if qubits is not None else sorted(circuit.all_qubits())
    n = len(order)
    observables = [metrics.validate_pauli(p, n) for p in observables]
    if save_probabilities and n > PROBABILITIES_MAX_QUBITS:
        raise ValueError(
            f"run.save_probabilities=true is invalid for n_qubits={n}: "
            f"probabilities are saved only up to {PROBABILITIES_MAX_QUBITS} qubits"
        )
    reason = "requested"
    if simulator == "auto":
        simulator, reason = choose_engine(
            compile_circuit(circuit, order), params.get("dtype", "complex128")
        )
    engine = make_engine(simulator, **_params_for(simulator, params))
    out = engine.run(circuit, qubits=order, progress=progress)
    probs = metrics.probabilities(out.state)
    result = RunResult(
        status="FINISHED",
        backend_used=simulator,
        backend_reason=reason,
        n_qubits=n,
        depth=depth,
        simulation_time_seconds=out.simulation_time_seconds,
        final_rank=out.final_rank,
        max_rank=out.max_rank,
        rank_history=out.rank_history,
        memory_used_mb=out.memory_used_mb,
        truncation_error=out.truncation_error,
        purity=metrics.purity(out.state),
        counts=metrics.sample_counts(probs, shots, seed) if shots > 0 else None,
        probabilities=probs.tolist() if save_probabilities else None,
        expectation_values={p: metrics.expectation(out.state, p) for p in observables},
    )
    if compare_to_exact:
        _compare(result, out, circuit, order, exact_max_qubits, params.get("dtype", "complex128"))
    return result, out


def _params_for(engine: str, params: dict[str, Any]) -> dict[str, Any]:
    """The subset of simulator parameters an engine's constructor takes (dtype is common)."""
    if engine not in ENGINES:
        return params  # make_engine reports the unknown name
    accepted = inspect.signature(ENGINES[engine]).parameters
    return {k: v for k, v in params.items() if k in accepted}


def _compare(
    result: RunResult,
    out: EngineOutput,
    circuit: cirq.Circuit,
    order: Sequence[cirq.Qid],
    exact_max_qubits: int,
    dtype: str,
) -> None:
    if result.backend_used == "fdm":
        result.fidelity, result.trace_distance = 1.0, 0.0
        result.exact_reference = "the engine is the exact reference (fdm)"
        return
    if result.n_qubits > exact_max_qubits:
        result.exact_reference = (
            f"skipped: n_qubits={result.n_qubits} > run.exact_max_qubits={exact_max_qubits}"
        )
        return
    try:
        exact = FdmSimulator(dtype=dtype).run(circuit, qubits=order)
    except MemoryRefusal as exc:
        result.exact_reference = f"skipped: {exc}"
        return
    reference = metrics.to_low_rank(exact.state)  # one eigendecomposition serves both metrics
    result.fidelity = metrics.fidelity(out.state, reference)
    result.trace_distance = metrics.trace_distance(metrics.to_low_rank(out.state), reference)
    result.exact_reference = f"fdm ({exact.simulation_time_seconds:.3g} s)"


def run_experiment(
    cfg: Any, progress: ProgressCallback | None = None
) -> tuple[RunResult, EngineOutput]:
    """Build the noisy circuit a validated config describes and simulate it."""
    from threadpoolctl import threadpool_limits

    from lret_runner.config import build_noisy_circuit, simulator_params

    circuit, noisy = build_noisy_circuit(cfg)
    with threadpool_limits(limits=cfg.backend.threads):
        return simulate(
            noisy,
            simulator=cfg.simulator.name,
            simulator_params=simulator_params(cfg),
            qubits=sorted(circuit.all_qubits()),
            depth=len(circuit) - int(circuit.are_any_measurements_terminal()),
            shots=cfg.run.shots,
            seed=cfg.run.seed,
            compare_to_exact=cfg.run.compare_to_exact,
            exact_max_qubits=cfg.run.exact_max_qubits,
            observables=list(cfg.run.observables),
            save_probabilities=cfg.run.save_probabilities,
            progress=progress,
        )
