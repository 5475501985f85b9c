"""One experiment: prepare it once, simulate it, record it.

- :func:`prepare` turns a config into a :class:`Prepared` run: it validates every
  value (errors name the key, the value and what is allowed), builds the circuit and
  the noise model, compiles the noisy circuit once and picks the engine. It is what
  validation means: nothing is built twice.
- :func:`simulate` runs a prepared experiment and measures what was asked (no
  tracking, no printing).
- :func:`run` is the library call every entry point uses (``python -m lret_runner``,
  sweep jobs, the API, Optuna trials): it simulates a prepared experiment and records
  it through a tracker (``result.json`` and friends in ``output_dir``, the run in
  MLflow), and returns the result whatever its status. No printing, no signal handling:
  a ``KeyboardInterrupt`` raised by the caller's handler ends the run KILLED.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lret_runner import __version__, metrics
from lret_runner import accuracy as contract
from lret_runner.errors import ConfigError, MemoryRefusal, TrackingError, UserError, check_range
from lret_runner.simulators import (
    CompiledCircuit,
    Engine,
    FdmSimulator,
    branches,
    choose_engine,
    compile_circuit,
    make_engine,
)
from lret_runner.simulators.base import EngineOutput, ProgressCallback, check_dtype
from lret_runner.simulators.branches import DEFAULT_MAX_BRANCHES
from lret_runner.simulators.ideal import noiseless_program
from lret_runner.tracking import vocabulary as V

if TYPE_CHECKING:
    import cirq
    import numpy as np

    from lret_runner.tracking import Tracker

# probabilities are a 2^n vector: beyond this they are not saved
PROBABILITIES_MAX_QUBITS = 16
MAX_QUBITS = 30  # circuit.n_qubits (or a QASM file's qubit count) beyond this is refused
EXACT_MAX_QUBITS_LIMIT = 20  # run.exact_max_qubits beyond this is refused
MAX_SHOTS = 10**9  # run.shots beyond this is refused (numpy samples at most 2^63 - 1)


@dataclass
class RunResult:
    """The record of one run (JSON-ready through :meth:`to_dict`)."""

    status: str  # FINISHED, FAILED or KILLED
    backend_used: str
    n_qubits: int | None
    depth: int | None  # moments of the noiseless circuit, terminal measurement excluded
    run_id: str | None = None
    simulation_time_seconds: float | None = None
    final_rank: int | None = None
    largest_rank: int | None = None  # LRET: the largest rank held after a moment (dense: 2^n)
    widest_factor: int | None = None  # LRET: the most columns before a truncation (not a rank)
    rank_history: list[int] | None = None
    dense_spans: list[list[int]] | None = None  # LRET: [first, last] moments held dense
    memory_used_mb: float | None = None
    truncation_error: float | None = None
    purity: float | None = None
    # against the noiseless circuit (its state vector); None with ``ideal_reference`` saying why
    ideal_fidelity: float | None = None  # <psi|rho|psi>
    ideal_tvd: float | None = None  # total variation distance of the output distributions
    ideal_hellinger_fidelity: float | None = None  # (sum_x sqrt(p(x) q(x)))^2, as Qiskit's
    xeb_fidelity: float | None = None  # random circuits: linear XEB of the noisy distribution
    xeb_fidelity_sampled: float | None = None  # ... estimated from the sampled counts
    ideal_reference: str = "not computed"  # how the noiseless figures were obtained, or why not
    ideal_expectation_values: dict[str, float] = field(default_factory=dict)
    ideal_energy: float | None = None  # tr(H |psi><psi|) for the configured hamiltonian
    # the engine's accuracy: against the exact density matrix of the same noisy circuit
    exact_fidelity: float | None = None  # None with ``exact_reference`` saying why
    exact_trace_distance: float | None = None
    exact_reference: str = "not requested"  # how the exact_* figures were obtained, or why not
    # the accuracy contract: {target (run.accuracy), achieved, kind (bound | statistical), met}
    accuracy: dict[str, Any] | None = None
    backend_reason: str = ""  # why ``auto`` chose the engine ("requested" otherwise)
    predicted_seconds: dict[str, float] | None = None  # auto's predicted time per engine
    # LRET: switches between its factor and a dense matrix ({moment, to, rank})
    representation_switches: list[dict[str, Any]] | None = None
    # the engine's: a memory budget that capped the rank, a target error not met
    warnings: list[str] = field(default_factory=list)
    # simulator=trajectories: each estimated figure's standard error ({metric key: s.e.};
    # "probabilities": the largest over the measured outcomes) and the trajectories sampled
    standard_errors: dict[str, float] = field(default_factory=dict)
    trajectories: int | None = None
    # the outcomes' bits, in the order of the characters of ``counts`` keys and of the
    # index bits of ``probabilities`` (the circuit's measurements; None: every qubit, in order)
    clbits: list[str] | None = None
    # a dynamic circuit (mid-circuit measurements, if): the most branches held at once
    branches: int | None = None
    counts: dict[str, int] | None = None
    probabilities: list[float] | None = None
    expectation_values: dict[str, float] = field(default_factory=dict)
    energy: float | None = None  # tr(H rho) for the configured hamiltonian
    expected_cut: float | None = None  # qaoa: the expected cut size of the final state
    max_cut: int | None = None  # qaoa: the graph's maximum cut (by enumeration, n <= 20)
    target_fidelity: float | None = None  # <psi|rho|psi> for optimize.target
    two_qubit_gates: int | None = None  # in the noiseless circuit
    # Optuna trials: the objective values returned to the sweeper ({metric: value})
    objectives: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    reused: bool = False  # sweep.resume: an earlier FINISHED run of this config, not run again
    threads: int | None = None  # BLAS threads the engine ran with
    started_at: str | None = None
    completed_at: str | None = None
    # what ended a FAILED or KILLED run (not part of the record)
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "exception"
        }

    def metrics(self) -> dict[str, float | None]:
        """The registry's metrics and the expectation values, as MLflow metrics."""
        out: dict[str, float | None] = {m.key: getattr(self, m.key) for m in V.METRICS}
        out.update({f"{V.EXPVAL_PREFIX}{k}": v for k, v in self.expectation_values.items()})
        out.update(
            {f"{V.IDEAL_EXPVAL_PREFIX}{k}": v for k, v in self.ideal_expectation_values.items()}
        )
        out.update({f"{V.OBJECTIVE_PREFIX}{k}": v for k, v in self.objectives.items()})
        out.update({f"{k}{V.SE_SUFFIX}": v for k, v in self.standard_errors.items()})
        if self.accuracy is not None:
            out[V.ACCURACY_MET] = float(self.accuracy["met"])
        return out


@dataclass
class Prepared:
    """An experiment ready to run: the compiled noisy circuit, the engine, what to measure."""

    program: CompiledCircuit
    engine: Engine
    backend_used: str
    backend_reason: str  # why auto chose the engine ("requested" otherwise)
    predicted_seconds: dict[str, float] | None  # auto's prediction per engine
    depth: int | None
    accuracy: float = contract.DEFAULT  # run.accuracy
    shots: int = 0
    seed: int | None = None
    compare_to_exact: bool = False
    exact_max_qubits: int = 12
    # the noiseless program (the noisy one without its noise), or why there is none
    ideal: CompiledCircuit | str = "not computed"
    xeb: bool = False  # report the linear XEB fidelity (random circuits)
    observables: list[str] = field(default_factory=list)
    save_probabilities: bool = False
    threads: int | None = None  # BLAS threads while simulating (None: threads.default_threads)
    hamiltonian: metrics.PauliSum | None = None  # whose energy to report
    cut_edges: list[tuple[int, int]] | None = None  # qaoa: the MaxCut graph
    target: Any = None  # a 2^n state vector: report target_fidelity
    two_qubit_gates: int | None = None
    cfg: Any = None  # the config it came from (None when prepared from a circuit)

    @property
    def n_qubits(self) -> int:
        return self.program.n_qubits


# ---------------------------------------------------------------- prepare


def prepare(cfg: Any) -> Prepared:
    """Validate ``cfg`` and build everything its run needs (see the module docstring)."""
    import cirq

    from lret_runner.circuits import build_circuit, target_state
    from lret_runner.config import check_known_keys, check_option_names, check_values, plain
    from lret_runner.errors import CircuitError
    from lret_runner.noise import add_noise, build_noise_model

    check_known_keys(cfg)
    check_values(cfg)  # every value resolves and is finite; run.timeout_seconds' bound
    check_option_names(cfg)
    for key, value in (cfg.tags or {}).items():  # never one of the runner's own tags
        why = V.check_user_tag(str(key), value)
        if why is not None:
            raise ConfigError(why)
    run = cfg.run
    contract.check(run.accuracy)
    check_range("run.exact_max_qubits", run.exact_max_qubits, 1, EXACT_MAX_QUBITS_LIMIT)
    check_range("run.ideal_max_qubits", run.ideal_max_qubits, 0, MAX_QUBITS, integer=True)
    if cfg.backend.threads is not None:
        check_range("backend.threads", cfg.backend.threads, 1, integer=True)
    check_dtype(cfg.backend.dtype)
    circuit_params = dict(plain(cfg.circuit))
    name = circuit_params.pop("name")
    simulator = dict(plain(cfg.simulator))
    simulator_name = simulator.pop("name")
    if "n_qubits" in circuit_params:
        check_range("circuit.n_qubits", circuit_params["n_qubits"], 1, MAX_QUBITS, integer=True)
    circuit = build_circuit(name, **circuit_params)
    if "n_qubits" not in circuit_params and len(circuit.all_qubits()) > MAX_QUBITS:
        raise CircuitError(
            f"circuit.path={circuit_params.get('path')!r}: the file's circuit acts on "
            f"{len(circuit.all_qubits())} qubits, more than the {MAX_QUBITS} a run may have: "
            "use a circuit with fewer qubits"
        )
    noise_params = dict(plain(cfg.noise))
    model = build_noise_model(noise_params.pop("name"), **noise_params)
    n = len(circuit.all_qubits())
    return prepare_circuit(
        add_noise(circuit, model),
        simulator=simulator_name,
        simulator_params={
            **simulator,
            "dtype": cfg.backend.dtype,
            "time_limit_seconds": run.timeout_seconds,
        },
        qubits=sorted(circuit.all_qubits()),
        depth=len(circuit) - int(circuit.are_any_measurements_terminal()),
        accuracy=run.accuracy,
        shots=run.shots,
        seed=run.seed,
        compare_to_exact=run.compare_to_exact,
        exact_max_qubits=run.exact_max_qubits,
        ideal_max_qubits=run.ideal_max_qubits,
        xeb=name == "random",
        observables=list(run.observables),
        save_probabilities=run.save_probabilities,
        max_branches=run.max_branches,
        threads=cfg.backend.threads,
        hamiltonian=hamiltonian_terms(cfg.hamiltonian, n),
        cut_edges=_maxcut_graph(circuit_params) if name == "qaoa" else None,
        target=None if cfg.optimize.target is None else target_state(cfg.optimize.target, n),
        two_qubit_gates=sum(
            1
            for op in circuit.all_operations()
            if len(op.qubits) == 2 and not cirq.is_measurement(op)
        ),
        cfg=cfg,
    )


def _maxcut_graph(params: dict[str, Any]) -> list[tuple[int, int]]:
    from lret_runner.circuits import qaoa_edges

    keys = ("n_qubits", "graph", "edge_probability", "seed")
    return qaoa_edges(**{k: params[k] for k in keys})


def hamiltonian_terms(node: Any, n_qubits: int) -> metrics.PauliSum | None:
    """The ``hamiltonian`` option as a Pauli sum on ``n_qubits`` (None for ``none``)."""
    from lret_runner.config import plain

    params = dict(plain(node))
    name = params.pop("name")
    if name == "none":
        return None
    if name == "ising":
        return metrics.ising_chain(n_qubits, **params)
    terms = []
    for pauli, coeff in params["terms"].items():
        try:
            terms.append((metrics.validate_pauli(str(pauli), n_qubits), float(coeff)))
        except ValueError as exc:
            raise ConfigError(f"hamiltonian.terms.{pauli}: {exc}") from None
    if not terms:
        raise ConfigError(
            "hamiltonian.terms is empty: a Pauli-sum Hamiltonian needs at least one term "
            "such as {ZZ: -1.0}"
        )
    return terms


def prepare_circuit(
    circuit: cirq.Circuit,
    *,
    simulator: str = "lret",
    simulator_params: Mapping[str, Any] | None = None,
    qubits: Sequence[cirq.Qid] | None = None,
    depth: int | None = None,
    accuracy: float = contract.DEFAULT,
    shots: int = 0,
    seed: int | None = None,
    compare_to_exact: bool = False,
    exact_max_qubits: int = 12,
    ideal_max_qubits: int = MAX_QUBITS,
    xeb: bool = False,
    observables: Sequence[str] = (),
    save_probabilities: bool = False,
    max_branches: int = DEFAULT_MAX_BRANCHES,
    threads: int | None = None,
    hamiltonian: metrics.PauliSum | None = None,
    cut_edges: list[tuple[int, int]] | None = None,
    target: Any = None,
    two_qubit_gates: int | None = None,
    cfg: Any = None,
) -> Prepared:
    """Prepare an already noisy circuit: check what to measure, compile once, pick the engine
    (every engine is given ``accuracy``) and check that its state fits in free memory
    (:class:`MemoryRefusal` otherwise)."""
    accuracy = contract.check(accuracy)
    check_range("run.shots", shots, 0, MAX_SHOTS, integer=True)
    check_range("run.max_branches", max_branches, 1, integer=True)
    if seed is not None:
        check_range("run.seed", seed, 0, integer=True)
    params = {**(simulator_params or {}), "accuracy": accuracy}
    order = list(qubits) if qubits is not None else sorted(circuit.all_qubits())
    n = len(order)
    checked = []
    for i, pauli in enumerate(observables):
        try:
            checked.append(metrics.validate_pauli(pauli, n))
        except ValueError as exc:
            raise ConfigError(f"run.observables[{i}]: {exc}") from None
    if save_probabilities and n > PROBABILITIES_MAX_QUBITS:
        raise ConfigError(
            f"run.save_probabilities=true is invalid for n_qubits={n}: "
            f"probabilities are saved only up to {PROBABILITIES_MAX_QUBITS} qubits"
        )
    dtype = check_dtype(params.get("dtype", "complex128"))
    # validates the name and the keys before compiling (auto may pick lret: its keys must be
    # valid), and refuses a qubit count whose least state does not fit (auto: lret's)
    engine = make_engine("lret" if simulator == "auto" else simulator, **params)
    engine.check_qubits(n)
    program = compile_circuit(circuit, order, dtype)
    reason, predicted = "requested", None
    if simulator == "auto":
        choice = choose_engine(program, **params)
        simulator, reason, predicted = choice.engine, choice.reason, choice.predicted_seconds
        if simulator != engine.name:
            engine = make_engine(simulator, **params)
    if program.dynamic:  # an engine that holds branches, and not too many of them
        branches.check(program, max_branches)
        engine.check_dynamic()
    engine.check_memory(program)  # before anything is allocated or recorded
    ideal: CompiledCircuit | str = (
        noiseless_program(program)
        if n <= ideal_max_qubits
        else f"skipped: n_qubits={n} > run.ideal_max_qubits={ideal_max_qubits}"
    )

    return Prepared(
        program=program,
        engine=engine,
        backend_used=simulator,
        backend_reason=reason,
        predicted_seconds=predicted,
        depth=depth,
        accuracy=accuracy,
        shots=shots,
        seed=seed,
        compare_to_exact=compare_to_exact,
        exact_max_qubits=exact_max_qubits,
        ideal=ideal,
        xeb=xeb,
        observables=checked,
        save_probabilities=save_probabilities,
        threads=threads,
        hamiltonian=hamiltonian,
        cut_edges=cut_edges,
        target=target,
        two_qubit_gates=two_qubit_gates,
        cfg=cfg,
    )


# ---------------------------------------------------------------- simulate


def simulate(
    prepared: Prepared, progress: ProgressCallback | None = None
) -> tuple[RunResult, EngineOutput]:
    """Run the engine and measure what was asked; returns the record and the engine output."""
    from threadpoolctl import threadpool_limits

    from lret_runner.simulators.threads import default_threads

    p = prepared
    threads = p.threads or default_threads()
    with threadpool_limits(limits=threads, user_api="blas"):
        noiseless: tuple[np.ndarray, float] | str | None = None
        if p.engine.sampled:  # it estimates the figures from pure states: tell it which first
            noiseless = _noiseless_state(p)
            figures = metrics.PureFigures(
                tuple(p.observables),
                p.hamiltonian,
                None if p.cut_edges is None else tuple(p.cut_edges),
                p.target,
                ideal=None if isinstance(noiseless, str) else noiseless[0],
                xeb_qubits=tuple(_measured(p)) if p.xeb else None,
            )
            out = p.engine.run(
                p.program, progress=progress, figures=figures, seed=p.seed, threads=threads
            )
        else:
            out = p.engine.run(p.program, progress=progress)
        probs = metrics.probabilities(out.state)
        # of the measured bits, in order (a dynamic circuit's engine computes them exactly)
        outcomes = (
            out.outcomes if out.outcomes is not None else metrics.marginal(probs, _measured(p))
        )

        def figure(key: str, exact: Callable[[metrics.State], float]) -> float:
            """The engine's estimate (a sampling engine), else the figure of its state."""
            return out.estimates[key] if key in out.estimates else exact(out.state)

        result = RunResult(
            status="FINISHED",
            backend_used=p.backend_used,
            backend_reason=p.backend_reason + (f"; {out.method}" if out.method else ""),
            predicted_seconds=p.predicted_seconds,
            n_qubits=p.n_qubits,
            depth=p.depth,
            threads=threads,
            simulation_time_seconds=out.simulation_time_seconds,
            final_rank=out.final_rank,
            largest_rank=max(out.rank_history) if out.rank_history else None,
            widest_factor=out.widest_factor,
            rank_history=out.rank_history,
            dense_spans=V.dense_spans(out.dense_history) if out.dense_history else None,
            representation_switches=out.representation_switches,
            warnings=out.warnings,
            memory_used_mb=out.memory_used_mb,
            truncation_error=None if p.engine.sampled else out.truncation_error,
            accuracy=_accuracy(p, out).to_dict(),
            purity=None if isinstance(out.state, metrics.Sampled) else metrics.purity(out.state),
            clbits=list(p.program.clbits) or None,
            branches=out.branches,
            counts=metrics.sample_counts(outcomes, p.shots, p.seed) if p.shots > 0 else None,
            probabilities=outcomes.tolist() if p.save_probabilities else None,
            expectation_values={
                q: figure(q, lambda state, q=q: metrics.expectation(state, q))
                for q in p.observables
            },
            two_qubit_gates=p.two_qubit_gates,
            # the observables' under their metric keys
            standard_errors={
                (V.EXPVAL_PREFIX + k if k in p.observables else k): v
                for k, v in out.standard_errors.items()
            },
            trajectories=out.samples,
        )
        if p.hamiltonian is not None:
            h = p.hamiltonian
            result.energy = figure("energy", lambda state: metrics.energy(state, h))
        if p.cut_edges is not None:
            edges = p.cut_edges
            result.expected_cut = figure(
                "expected_cut", lambda state: metrics.expected_cut(state, edges)
            )
            result.max_cut = metrics.max_cut(p.n_qubits, p.cut_edges)
        if p.target is not None:
            target = p.target
            result.target_fidelity = figure(
                "target_fidelity", lambda state: metrics.state_overlap(state, target)
            )
        _against_noiseless(result, out, p, probs, noiseless)
        if p.compare_to_exact and isinstance(out.state, metrics.Sampled):
            result.exact_reference = (
                f"not applicable: simulator={p.backend_used} estimates figures from sampled "
                "pure states (their standard errors are in standard_errors), it holds no "
                "density matrix to compare with fdm's"
            )
        elif p.compare_to_exact:
            _compare(result, out, p)
    return result, out


def _accuracy(p: Prepared, out: EngineOutput) -> contract.Accuracy:
    """What the run achieved against ``run.accuracy``: a sampling engine's largest standard
    error, else the proven bound on the trace distance (0 for the exact engines)."""
    if p.engine.sampled:
        worst = max(out.standard_errors.values(), default=0.0)
        return contract.Accuracy(p.accuracy, worst, contract.STATISTICAL)
    return contract.Accuracy(p.accuracy, out.truncation_error, contract.BOUND)


def _measured(p: Prepared) -> list[int]:
    """The measured qubits in the order of the outcomes' bits (every qubit, in order, when
    nothing is measured)."""
    return list(p.program.measured) or list(range(p.n_qubits))


def _noiseless_state(p: Prepared) -> tuple[np.ndarray, float] | str:
    """The noiseless circuit's state vector and the seconds it took, or why there is none."""
    from lret_runner.simulators.ideal import state_vector

    if isinstance(p.ideal, str):
        return p.ideal
    start = time.perf_counter()
    try:
        psi = state_vector(p.ideal)
    except MemoryRefusal as exc:
        return f"skipped: {exc}"
    return psi, time.perf_counter() - start


def _against_noiseless(
    result: RunResult,
    out: EngineOutput,
    p: Prepared,
    probs: np.ndarray,
    noiseless: tuple[np.ndarray, float] | str | None = None,
) -> None:
    """The figures against the noiseless circuit, from its state vector ``noiseless``
    (computed here unless given), or why not; a sampling engine's estimates where it made
    them (TVD and Hellinger fidelity come from its estimated distribution)."""
    if p.program.dynamic:
        _against_noiseless_outcomes(result, out, p)
        return
    noiseless = _noiseless_state(p) if noiseless is None else noiseless
    if isinstance(noiseless, str):
        result.ideal_reference = noiseless
        return
    psi, seconds = noiseless
    start = time.perf_counter()
    pure = metrics.LowRank(psi[:, None])
    if "ideal_fidelity" in out.estimates:
        result.ideal_fidelity = out.estimates["ideal_fidelity"]
    else:
        result.ideal_fidelity = metrics.state_overlap(out.state, psi)
    # over the measured qubits (every qubit when nothing is measured)
    kept = _measured(p)
    noisy = metrics.marginal(probs, kept)
    ideal = metrics.marginal(metrics.probabilities(pure), kept)
    result.ideal_tvd = metrics.total_variation(noisy, ideal)
    result.ideal_hellinger_fidelity = metrics.hellinger_fidelity(noisy, ideal)
    if p.xeb:
        result.xeb_fidelity = out.estimates.get("xeb_fidelity")
        if result.xeb_fidelity is None:
            result.xeb_fidelity = metrics.linear_xeb(noisy, ideal)
        if result.counts:
            result.xeb_fidelity_sampled = metrics.linear_xeb_sampled(result.counts, ideal, kept)
    result.ideal_expectation_values = {q: metrics.expectation(pure, q) for q in p.observables}
    if p.hamiltonian is not None:
        result.ideal_energy = metrics.energy(pure, p.hamiltonian)
    seconds += time.perf_counter() - start
    result.ideal_reference = f"noiseless state vector ({seconds:.3g} s)"


def _against_noiseless_outcomes(result: RunResult, out: EngineOutput, p: Prepared) -> None:
    """A dynamic circuit against the noiseless circuit: the distributions of their classical
    bits (the noiseless one from exact branches). It ends in a mixture of branches, not a
    state vector, so there is no ideal_fidelity."""
    from lret_runner.simulators.lret import LretSimulator

    if isinstance(p.ideal, str):
        result.ideal_reference = p.ideal
        return
    assert out.outcomes is not None
    start = time.perf_counter()
    ideal = LretSimulator(rank_threshold=0.0, dtype=p.program.dtype.__name__).run(p.ideal)
    assert ideal.outcomes is not None
    result.ideal_tvd = metrics.total_variation(out.outcomes, ideal.outcomes)
    result.ideal_hellinger_fidelity = metrics.hellinger_fidelity(out.outcomes, ideal.outcomes)
    result.ideal_reference = (
        "the noiseless circuit's distribution over the classical bits (exact branches, "
        f"{time.perf_counter() - start:.3g} s); no ideal_fidelity: a dynamic circuit ends in "
        "a mixture of branches, not a state vector"
    )


def _compare(result: RunResult, out: EngineOutput, p: Prepared) -> None:
    if p.backend_used == "fdm":
        result.exact_fidelity, result.exact_trace_distance = 1.0, 0.0
        result.exact_reference = "the engine is the exact reference (fdm)"
        return
    if p.n_qubits > p.exact_max_qubits:
        result.exact_reference = (
            f"skipped: n_qubits={p.n_qubits} > run.exact_max_qubits={p.exact_max_qubits}"
        )
        return
    try:
        exact = FdmSimulator(dtype=p.program.dtype.__name__).run(p.program)
    except MemoryRefusal as exc:
        result.exact_reference = f"skipped: {exc}"
        return
    reference = metrics.to_low_rank(exact.state)  # one eigendecomposition serves both metrics
    result.exact_fidelity = metrics.fidelity(out.state, reference)
    result.exact_trace_distance = metrics.trace_distance(metrics.to_low_rank(out.state), reference)
    result.exact_reference = f"fdm ({exact.simulation_time_seconds:.3g} s)"


# ---------------------------------------------------------------- run and record

Recording = Callable[[str], AbstractContextManager[Any]]


def _unguarded(phase: str) -> AbstractContextManager[Any]:
    return nullcontext()


def run(
    prepared: Prepared,
    tracker: Tracker,
    *,
    output_dir: Path,
    progress: ProgressCallback | None = None,
    batch: str | None = None,
    job_num: int | None = None,
    recording: Recording = _unguarded,
    score: Callable[[RunResult], dict[str, float]] | None = None,
    run_id: str | None = None,
) -> RunResult:
    """Simulate a prepared config and record it; returns the result whatever its status.

    ``batch`` is the parent run of the sweep this run is a job of. With ``sweep.resume``
    a config that already FINISHED in the session is not run again: the earlier run is
    returned (``reused``) and counted as skipped in the batch. A lineage parent that does
    not exist raises a :class:`UserError` before anything is recorded.

    ``recording(phase)`` wraps the two stretches where the record is written: ``"start"``
    (the run is created and its config logged) and ``"finish"`` (files, metrics, artifacts,
    the final status). The terminal defers Ctrl-C and SIGTERM there, so that an interrupt
    ends the run KILLED (or lets it finish recording) instead of leaving it half-written.
    Once the run exists, every failure ends it FAILED (KILLED for an interrupt) with the
    error, and ``result.json`` says the same as MLflow.

    ``score(result)`` (an Optuna trial's objectives) fills ``result.objectives`` before the
    run is recorded; an error it raises ends the run FAILED. ``run_id``: a run opened ahead
    (the REST API returns its id before the run starts) to record into.
    """
    cfg = prepared.cfg
    if cfg.lineage.parent is not None:
        tracker.require_run(cfg.lineage.parent, "lineage.parent")
    if cfg.sweep.resume:
        previous = tracker.finished_run(cfg.session.name, _config_hash(cfg, prepared))
        if previous is not None:
            reused = _reuse(prepared, tracker, previous, batch, job_num)
            if score is not None:  # the trial's value comes from the earlier run's metrics
                reused.objectives = score(reused)
            return reused

    def compute() -> RunResult:
        result = simulate(prepared, progress)[0]
        if score is not None:
            result.objectives = score(result)
        return result

    return _recorded(
        cfg,
        tracker,
        compute,
        prepared=prepared,
        output_dir=output_dir,
        batch=batch,
        job_num=job_num,
        recording=recording,
        run_id=run_id,
    )


def record_failure(
    cfg: Any,
    tracker: Tracker,
    exc: Exception,
    *,
    output_dir: Path,
    batch: str | None = None,
    job_num: int | None = None,
    recording: Recording = _unguarded,
    run_id: str | None = None,
) -> RunResult:
    """Record a config that could not be prepared as a FAILED run (a sweep shows its jobs
    that were invalid next to those that ran)."""

    def fail() -> RunResult:
        raise exc

    return _recorded(
        cfg,
        tracker,
        fail,
        prepared=None,
        output_dir=output_dir,
        batch=batch,
        job_num=job_num,
        recording=recording,
        run_id=run_id,
    )


def _recorded(
    cfg: Any,
    tracker: Tracker,
    compute: Callable[[], RunResult],
    *,
    prepared: Prepared | None,
    output_dir: Path,
    batch: str | None,
    job_num: int | None,
    recording: Recording,
    run_id: str | None = None,
) -> RunResult:
    """Start the run (or continue ``run_id``, a run opened ahead by :func:`open_run`),
    compute its result, record how it ended (see :func:`run`)."""
    from lret_runner.tracking.sessions import now_iso

    existing, run_id = run_id, None
    files: list[Path] = []
    started = now_iso()
    try:
        with recording("start"):
            config = _result_config(cfg, prepared)
            tags = run_tags(
                cfg,
                {
                    V.CONFIG_HASH: _config_hash(cfg, prepared) if prepared else None,
                    V.PARENT_RUN: batch,
                    V.LINEAGE_PARENT: cfg.lineage.parent,
                    V.JOB_NUM: job_num,
                    V.RESULT_SCHEMA: V.RESULT_SCHEMA_VERSION,
                    **(V.config_tags(config) if config is not None else {}),
                },
            )
            if existing is not None:
                tracker.set_tags(existing, {**tags, V.STATUS: "RUNNING"})
                run_id = existing
            else:
                run_id = open_run(tracker, cfg, tags, _n_qubits(cfg, prepared))
            files.append(_write_config(cfg, output_dir, resolve=config is not None))
            if config is not None:
                tracker.log_params(run_id, V.flatten(config))
        result = compute()
    except KeyboardInterrupt as exc:
        if run_id is None:
            raise
        result = _stopped(cfg, prepared, "KILLED", f"interrupted ({str(exc) or 'Ctrl-C'})", exc)
    except Exception as exc:  # recorded; the caller decides how to report it
        if run_id is None:
            raise
        result = _stopped(cfg, prepared, "FAILED", f"{type(exc).__name__}: {exc}", exc)
    result.run_id, result.started_at = run_id, started
    in_sweep = batch is not None or job_num is not None
    with recording("finish"):
        return _finish(cfg, tracker, result, files, output_dir, plots=log_plots(cfg, in_sweep))


def open_run(tracker: Tracker, cfg: Any, tags: Mapping[str, Any], n_qubits: int | None) -> str:
    """Create the run of ``cfg`` in its session (named circuit-nN-simulator); its id."""
    name = "-".join((cfg.circuit.name, f"n{n_qubits or ''}", cfg.simulator.name))
    return tracker.start_run(cfg.session.name, cfg.session.description, run_name=name, tags=tags)


def _n_qubits(cfg: Any, prepared: Prepared | None) -> int | None:
    """The qubit count: the prepared circuit's (a QASM file's), else the config's."""
    return prepared.n_qubits if prepared else cfg.circuit.get("n_qubits")


def _stopped(
    cfg: Any, prepared: Prepared | None, status: str, error: str, exc: BaseException
) -> RunResult:
    """The record of a run that did not finish."""
    return RunResult(
        status=status,
        backend_used=prepared.backend_used if prepared else cfg.simulator.name,
        n_qubits=_n_qubits(cfg, prepared),
        depth=prepared.depth if prepared else None,
        backend_reason=prepared.backend_reason if prepared else "",
        error=error,
        exception=exc,
    )


def _config_hash(cfg: Any, prepared: Prepared) -> str:
    from lret_runner.config import config_hash

    return config_hash(cfg, n_qubits=prepared.n_qubits)


def run_tags(cfg: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Tags every run carries: session, circuit family, noise model, engine, version, commit."""
    return {
        V.SESSION: cfg.session.name,
        "circuit": cfg.circuit.name,
        "noise": cfg.noise.name,
        "simulator": cfg.simulator.name,
        "lret_runner_version": __version__,
        "git_commit": _git_commit(),
        **{str(k): v for k, v in (cfg.tags or {}).items()},
        **(extra or {}),
    }


@functools.cache
def _git_commit() -> str | None:
    """The commit of the working directory (looked up once per process: a process runs
    the code it imported at its start)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _result_config(cfg: Any, prepared: Prepared | None) -> dict[str, Any] | None:
    """The result-affecting config (the params), None if it does not resolve."""
    from omegaconf.errors import OmegaConfBaseException

    from lret_runner.config import result_config

    try:
        n_qubits = prepared.n_qubits if prepared else None  # a QASM file's count
        return result_config(cfg, n_qubits=n_qubits)
    except (UserError, OmegaConfBaseException):  # an invalid config may not even resolve
        return None


def _write_config(cfg: Any, output_dir: Path, *, resolve: bool) -> Path:
    """config.yaml in the output directory (resolved if the config resolves)."""
    from omegaconf import OmegaConf

    output_dir.mkdir(parents=True, exist_ok=True)
    config_file = output_dir / "config.yaml"
    config_file.write_text(OmegaConf.to_yaml(cfg, resolve=resolve))
    return config_file


def log_plots(cfg: Any, in_sweep: bool) -> bool:
    """Whether a run renders its PNGs (histogram, summary): ``tracking.log_plots`` when it
    is true or false; unset (null, the default) for a single run and not for the jobs of
    a sweep, whose batch gets summary plots (rendering takes about 0.4 s a run)."""
    value = cfg.tracking.get("log_plots")
    return not in_sweep if value is None else bool(value)


def _finish(
    cfg: Any,
    tracker: Tracker,
    result: RunResult,
    files: list[Path],
    output_dir: Path,
    *,
    plots: bool,
) -> RunResult:
    """Write result.json (and counts, plots), log metrics and artifacts, end the run.

    A failure while recording ends the run FAILED with why (result.json says so too);
    only a store that cannot take the final status leaves it RUNNING (for cleanup).
    Metrics and the rank history are one batch; a sweep counts its jobs at its end.
    """
    from lret_runner.tracking.sessions import now_iso

    run_id = str(result.run_id)
    try:
        result.completed_at = now_iso()
        files.append(write_json(output_dir / "result.json", result.to_dict()))
        if result.counts is not None:
            files.append(write_json(output_dir / "counts.json", result.counts))
        if result.status == "FINISHED":
            history = {
                V.RANK_METRIC: result.rank_history or [],
                V.DENSE_METRIC: V.dense_flags(result.dense_spans, len(result.rank_history or [])),
            }
            tracker.log_metrics(run_id, result.metrics(), series=history)
            if plots:
                files += _plots(result.to_dict(), cfg, output_dir)
        tracker.log_artifacts(run_id, files)
    except Exception as exc:
        failure = f"recording the run failed: {type(exc).__name__}: {exc}"
        if isinstance(exc, OSError):  # a place that cannot be written: the user's to fix
            exc = TrackingError(
                f"{failure} (check tracking.artifact_location and the output directory)"
            )
        if result.status == "FINISHED":
            result.status, result.error, result.exception = "FAILED", failure, exc
        else:
            result.error = f"{result.error}; {failure}"
        with contextlib.suppress(OSError):  # result.json agrees with MLflow where it can
            write_json(output_dir / "result.json", result.to_dict())
    tags = {V.STATUS: result.status, V.ERROR: result.error, V.BACKEND_USED: result.backend_used}
    if result.status == "FINISHED":
        tags[V.IDEAL_REFERENCE] = result.ideal_reference
        tags[V.EXACT_REFERENCE] = result.exact_reference
        if result.accuracy is not None:
            tags[V.ACCURACY] = json.dumps(result.accuracy)
    tracker.set_tags(run_id, tags)
    tracker.end_run(run_id, result.status)
    return result


def _reuse(
    prepared: Prepared, tracker: Tracker, previous: Any, batch: str | None, job_num: int | None
) -> RunResult:
    """``sweep.resume``: report the earlier run instead of running again."""
    if batch is not None:  # counted at the sweep's end
        tracker.set_tags(batch, {f"{V.SKIPPED_TAG}{job_num}": previous.run_id})
    values = {m.key: previous.metrics.get(m.key) for m in V.METRICS}
    return RunResult(
        status="FINISHED",
        backend_used=previous.backend_used or prepared.backend_used,
        n_qubits=prepared.n_qubits,
        depth=prepared.depth,
        run_id=previous.run_id,
        reused=True,
        **{k: v for k, v in values.items() if v is not None},  # type: ignore[arg-type]
    )


def _plots(record: dict[str, Any], cfg: Any, output_dir: Path) -> list[Path]:
    from omegaconf import OmegaConf

    from lret_runner import plots

    paths = []
    if record["counts"]:
        paths.append(output_dir / "histogram.png")
        plots.save(plots.histogram_figure(record["counts"], title="top outcomes"), paths[-1])
    paths.append(output_dir / "summary.png")
    container = OmegaConf.to_container(cfg, resolve=True)
    plots.save(plots.summary_figure(record, container), paths[-1])  # type: ignore[arg-type]
    return paths


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2, default=str))
    return path
