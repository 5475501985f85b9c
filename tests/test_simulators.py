"""The engines (lret, fdm, cirq) against each other, against Cirq's own
``DensityMatrixSimulator`` run here independently, and against closed forms."""

from __future__ import annotations

import functools
import math
import tracemalloc
import warnings
from pathlib import Path

import cirq
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lret_runner import metrics
from lret_runner.circuits import EXAMPLE_QASM, CircuitError, build_circuit, ghz, random_circuit
from lret_runner.errors import ConfigError
from lret_runner.noise import NOISE_MODELS, add_noise, build_noise_model
from lret_runner.simulators import (
    ENGINES,
    CirqSimulator,
    FdmSimulator,
    LretSimulator,
    MemoryRefusal,
    SimulationError,
    compile_circuit,
    make_engine,
)
from lret_runner.simulators import base as sim_base
from lret_runner.simulators import dense as dense_module
from lret_runner.simulators import fdm as fdm_module
from lret_runner.simulators import lret as lret_module

EXACT = 1e-10


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread: on a loaded 2-core machine OpenBLAS's spinning threads make the
    small eigendecompositions LRET does 10-80x slower (the numbers do not change)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


PLACEMENTS = ("gate", "moment")

# strengths large enough that every channel visibly changes the state
NOISE_KWARGS: dict[str, dict] = {
    "none": dict(),
    "depolarizing": dict(level=0.03),
    "amplitude_damping": dict(level=0.06),
    "phase_damping": dict(level=0.07),
    "bit_flip": dict(level=0.04),
    "phase_flip": dict(level=0.05),
    "thermal": dict(t1=2e-6, t2=3e-6),
    "readout": dict(readout_error=0.05),
    "sparse": dict(level=0.3, seed=2),
    "composite": dict(
        level=0.02,
        t1=2e-6,
        t2=3e-6,
        components=[
            {"name": "depolarizing"},
            {"name": "thermal"},
            {"name": "readout", "readout_error": 0.04},
        ],
    ),
}
# device noise needs circuits on its coupled pairs: tests/test_devices.py runs it on the engines
assert set(NOISE_KWARGS) == set(NOISE_MODELS) - {"device"}


def noise(name: str, placement: str):
    return build_noise_model(name, placement=placement, **NOISE_KWARGS[name])


def noisy_random(n: int, depth: int, seed: int, model: str, placement: str) -> cirq.Circuit:
    """A seeded random circuit with a final measurement (so readout noise acts), made noisy."""
    circuit = random_circuit(n_qubits=n, depth=depth, seed=seed, measure=True)
    return add_noise(circuit, noise(model, placement))


def cirq_reference(circuit: cirq.Circuit, dtype=np.complex128) -> np.ndarray:
    """The exact final density matrix from Cirq itself (terminal measurements dropped,
    qubits in sorted order: qubit 0 is the most significant bit)."""
    unmeasured = cirq.drop_terminal_measurements(circuit)
    qubits = sorted(circuit.all_qubits())
    sim = cirq.DensityMatrixSimulator(dtype=dtype)
    return np.asarray(sim.simulate(unmeasured, qubit_order=qubits).final_density_matrix)


def run_all(circuit: cirq.Circuit, dtype: str = "complex128", **kwargs):
    """LRET on its factor throughout, fdm and the cirq engine."""
    lret = LretSimulator(rank_threshold=0, representation="factor", dtype=dtype)
    fdm = FdmSimulator(dtype=dtype).run(circuit, **kwargs)
    cq = CirqSimulator(dtype=dtype).run(circuit, **kwargs)
    return lret.run(circuit, **kwargs), fdm, cq


def check_agreement(circuit: cirq.Circuit, n: int, dtype: str = "complex128", tol: float = EXACT):
    """LRET (threshold 0), FDM and the cirq engine agree with an independent Cirq run."""
    ref = cirq_reference(circuit, np.complex128)
    assert ref.shape == (2**n, 2**n)
    ref_state = metrics.Dense(ref)
    ref_probs = np.real(np.diagonal(ref))
    lret, fdm, cq = run_all(circuit, dtype)
    assert isinstance(lret.state, metrics.LowRank)
    assert lret.truncation_error < 1e-12  # only numerical zeros are dropped
    assert lret.final_rank <= 2**n
    # the default, adaptive LRET (dense where that is cheaper): exact as well
    adaptive = LretSimulator(rank_threshold=0, dtype=dtype).run(circuit)
    assert adaptive.truncation_error < 1e-12
    for out in (lret, adaptive, fdm, cq):
        assert out.state.n_qubits == n
        rho = metrics.dense(out.state)
        assert abs(np.trace(rho) - 1) < tol
        assert np.abs(rho - ref).max() < tol
        assert np.abs(metrics.probabilities(out.state) - ref_probs).max() < tol
        assert metrics.trace_distance(out.state, ref_state) < tol
        # metrics.fidelity through an explicit factorisation of the reference
        assert 1 - metrics.fidelity(out.state, metrics.to_low_rank(ref_state)) < tol
        # Cirq's own fidelity on the dense matrices, an independent implementation
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sqrtm warns on singular matrices
            f_cirq = cirq.fidelity(
                rho.astype(np.complex128), ref, qid_shape=(2,) * n, validate=False
            )
        assert abs(1 - f_cirq) < tol
        # ... and given the dense reference directly
        assert 1 - metrics.fidelity(out.state, ref_state) < tol
    # the exact engines agree on the rank of the state
    if dtype == "complex128":
        assert lret.final_rank >= fdm.final_rank == cq.final_rank == metrics.rank(ref_state)
    return lret, fdm, cq


# ----------------------------------------------------------------------- 1. agreement

# every model at n = 3, both placements
ALL_AT_3 = [(3, m, p) for m in NOISE_KWARGS for p in PLACEMENTS]
# n = 1..6 with a rotating model (every model appears), both placements; cheap
# models at n = 6 (LRET with threshold 0 on 6 qubits and 16-Kraus channels is slow)
ROTATING = [
    (1, "composite", "gate"),
    (1, "bit_flip", "moment"),
    (2, "depolarizing", "gate"),
    (2, "phase_damping", "moment"),
    (4, "thermal", "gate"),
    (4, "depolarizing", "moment"),
    (5, "phase_flip", "gate"),
    (5, "readout", "moment"),
    (6, "amplitude_damping", "gate"),
    (6, "none", "moment"),
    (6, "phase_damping", "moment"),
]


@pytest.mark.parametrize("n, model, placement", ALL_AT_3 + ROTATING)
def test_engines_agree_with_cirq_reference(n: int, model: str, placement: str) -> None:
    depth = 6 if n <= 4 else 4
    circuit = noisy_random(n, depth, seed=200 + n, model=model, placement=placement)
    lret, fdm, cq = check_agreement(circuit, n)
    if model != "none":
        # the noise did something: the state is mixed
        assert metrics.purity(fdm.state) < 1 - 1e-4
        assert lret.widest_factor > 1


# LRET with threshold 0 after every 16-Kraus two-qubit depolarizing channel on 6 qubits
# diagonalises 1024 x 1024 Gram matrices: seconds per case
_SLOW_AT_6 = {("depolarizing", "gate"), ("composite", "gate")}


@pytest.mark.parametrize(
    "model, placement",
    [
        pytest.param(m, p, marks=[pytest.mark.slow] if (m, p) in _SLOW_AT_6 else [])
        for m in NOISE_KWARGS
        for p in PLACEMENTS
    ],
)
def test_engines_agree_all_models_at_six_qubits(model: str, placement: str) -> None:
    circuit = noisy_random(6, 6, seed=7, model=model, placement=placement)
    check_agreement(circuit, 6)


@pytest.mark.parametrize(
    "model, placement",
    [("depolarizing", "gate"), ("thermal", "moment"), ("readout", "gate"), ("composite", "moment")],
)
def test_three_qubit_gates_from_example_qasm(model: str, placement: str) -> None:
    circuit = build_circuit("qasm", path=str(EXAMPLE_QASM))
    assert any(len(op.qubits) == 3 for op in circuit.all_operations())  # the ccx
    check_agreement(add_noise(circuit, noise(model, placement)), 3)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_ccx_and_cswap_appended_to_random_circuit(placement: str) -> None:
    q = cirq.LineQubit.range(4)
    circuit = random_circuit(n_qubits=4, depth=4, seed=5)
    circuit.append([cirq.CCX(q[0], q[2], q[3]), cirq.CSWAP(q[3], q[0], q[1]), cirq.H(q[2])])
    circuit.append(cirq.measure(*q, key="m"))
    check_agreement(add_noise(circuit, noise("composite", placement)), 4)


def test_complex64_agrees_with_complex128_reference() -> None:
    circuit = noisy_random(3, 6, seed=31, model="depolarizing", placement="gate")
    ref = cirq_reference(circuit)
    lret, fdm, cq = run_all(circuit, "complex64")
    for out in (lret, fdm, cq):
        rho = metrics.dense(out.state)
        assert rho.dtype == np.complex64
        assert np.abs(rho - ref).max() < 1e-5
        assert np.abs(metrics.probabilities(out.state) - np.real(np.diagonal(ref))).max() < 1e-5
        f = metrics.fidelity(
            metrics.to_low_rank(metrics.Dense(rho.astype(np.complex128))),
            metrics.to_low_rank(metrics.Dense(ref)),
        )
        assert 1 - f < 1e-5


def test_complex64_rank_never_exceeds_dimension() -> None:
    q = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(
        [cirq.H(q[0]), cirq.CNOT(*q)] + [cirq.depolarize(0.1).on_each(*q) for _ in range(4)]
    )
    for schedule in ("channel", "moment", "rank"):
        out = LretSimulator(rank_threshold=0, dtype="complex64", truncation=schedule).run(circuit)
        assert out.final_rank <= 4, (schedule, out.rank_history)
        assert max(out.rank_history) <= 4, (schedule, out.rank_history)


# the engines that hold a density matrix (trajectories samples pure states: its figures are
# estimates, tested against these in tests/test_trajectories.py)
DENSITY_ENGINES = sorted(name for name, engine in ENGINES.items() if not engine.sampled)

# ----------------------------------------------------------------- 2. qubit order


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_x_on_qubit_zero_is_index_four(engine: str) -> None:
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(cirq.X(q[0]), cirq.measure(*q, key="m"))
    out = make_engine(engine).run(circuit, qubits=q)
    probs = metrics.probabilities(out.state)
    expected = np.zeros(8)
    expected[4] = 1.0
    assert np.abs(probs - expected).max() < EXACT
    assert metrics.sample_counts(probs, 500, seed=3) == {"100": 500}


def test_pauli_expectations_follow_qubit_order() -> None:
    q = cirq.LineQubit.range(3)
    a, b = 0.3, 1.1
    circuit = cirq.Circuit(
        cirq.ry(a).on(q[0]),
        cirq.ry(b).on(q[2]),
        cirq.CNOT(q[2], q[1]),
        cirq.amplitude_damp(0.2).on(q[0]),
    )
    ref = cirq_reference(circuit)
    qubit_map = {qq: i for i, qq in enumerate(q)}
    ps = {
        "ZII": cirq.PauliString(cirq.Z(q[0])),
        "IIZ": cirq.PauliString(cirq.Z(q[2])),
        "IZZ": cirq.PauliString(cirq.Z(q[1]), cirq.Z(q[2])),
        "XIX": cirq.PauliString(cirq.X(q[0]), cirq.X(q[2])),
    }
    # closed forms: <Z0> after damping: 1 - 2 (1-g) sin^2(a/2); <Z2> = cos b; Z1 Z2 = 1
    closed = {"ZII": 1 - 2 * 0.8 * math.sin(a / 2) ** 2, "IIZ": math.cos(b), "IZZ": 1.0}
    assert abs(closed["ZII"] - closed["IIZ"]) > 0.1  # the test can tell the ends apart
    for out in run_all(circuit):
        for label, pauli in ps.items():
            expected = pauli.expectation_from_density_matrix(ref, qubit_map).real
            got = metrics.expectation(out.state, label)
            assert abs(got - expected) < EXACT, label
            if label in closed:
                assert abs(got - closed[label]) < EXACT, label


# ----------------------------------------------------------------- 3. closed forms


@pytest.mark.parametrize("n", range(2, 11))
def test_ghz_on_lret(n: int) -> None:
    out = LretSimulator(rank_threshold=0).run(ghz(n_qubits=n, measure=True))
    probs = metrics.probabilities(out.state)
    expected = np.zeros(2**n)
    expected[0] = expected[-1] = 0.5
    assert np.abs(probs - expected).max() < EXACT
    assert out.final_rank == out.widest_factor == 1
    assert out.rank_history == [1] * n + [1]  # H, n-1 CNOTs, measurement
    assert abs(metrics.expectation(out.state, "X" * n) - 1) < EXACT


@pytest.mark.parametrize("gamma", [0.0, 0.1, 0.37, 0.9, 1.0])
@pytest.mark.parametrize("engine", DENSITY_ENGINES)
def test_amplitude_damping_of_one(engine: str, gamma: float) -> None:
    (q,) = cirq.LineQubit.range(1)
    circuit = cirq.Circuit(cirq.X(q), cirq.amplitude_damp(gamma).on(q))
    out = make_engine(engine).run(circuit)
    p = metrics.probabilities(out.state)
    assert abs(p[1] - (1 - gamma)) < EXACT
    assert abs(metrics.purity(out.state) - (gamma**2 + (1 - gamma) ** 2)) < EXACT


@pytest.mark.parametrize("p", [0.0, 0.05, 0.3, 0.75, 1.0])
@pytest.mark.parametrize("engine", DENSITY_ENGINES)
def test_depolarizing_purity_and_z(engine: str, p: float) -> None:
    # rho = (1-p)|0><0| + p/3 (X|0><0|X + Y|0><0|Y + Z|0><0|Z)
    #     = (1 - 2p/3)|0><0| + (2p/3)|1><1|
    # purity = (1-2p/3)^2 + (2p/3)^2 = 1 - 4p/3 + 8p^2/9 = ((1 - 4p/3)^2 + 1)/2
    # <Z> = (1 - 2p/3) - 2p/3 = 1 - 4p/3
    (q,) = cirq.LineQubit.range(1)
    out = make_engine(engine).run(cirq.Circuit(cirq.depolarize(p).on(q)))
    assert abs(metrics.purity(out.state) - ((1 - 4 * p / 3) ** 2 + 1) / 2) < EXACT
    assert abs(metrics.expectation(out.state, "Z") - (1 - 4 * p / 3)) < EXACT
    assert abs(metrics.expectation(out.state, "X")) < EXACT


# ---------------------------------------------------------------- 4. truncation


@functools.cache
def truncation_case(n: int) -> tuple[cirq.Circuit, metrics.Dense, int]:
    circuit = add_noise(
        random_circuit(n_qubits=n, depth=6, seed=11),
        build_noise_model("depolarizing", level=0.01, placement="moment"),
    )
    exact = FdmSimulator().run(circuit)
    return circuit, exact.state, exact.final_rank


TRUNCATIONS = [
    dict(rank_threshold=1e-4),
    dict(rank_threshold=1e-3),
    dict(rank_threshold=1e-2),
    dict(rank_threshold=5e-2),
    dict(rank_threshold=1e-4, max_rank=4),
    dict(rank_threshold=0.0, max_rank=8),
]


@pytest.mark.parametrize("n", [6, 7, 8])
@pytest.mark.parametrize(
    "params", TRUNCATIONS, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items())
)
@pytest.mark.parametrize("representation", ["factor", "adaptive"])
def test_truncation_error_bounds_the_distance_to_exact(
    n: int, params: dict, representation: str
) -> None:
    circuit, exact, exact_rank = truncation_case(n)
    assert exact_rank == 2**n  # moment-placed depolarizing on every qubit: full rank
    out = LretSimulator(representation=representation, **params).run(circuit)
    err = out.truncation_error
    infidelity = 1 - metrics.fidelity(out.state, metrics.to_low_rank(exact))
    distance = metrics.trace_distance(out.state, exact)
    assert abs(metrics.trace(out.state) - 1) < 1e-12
    assert infidelity <= err + 1e-9
    assert distance <= err + 1e-9
    assert len(out.rank_history) == len(circuit)
    if out.representation_switches:  # adaptive went dense: exact from there on
        assert representation == "adaptive" and isinstance(out.state, metrics.Dense)
        assert out.rank_history[-1] == 2**n
        return
    assert err > 1e-4  # these settings all truncate real weight on this circuit
    assert out.final_rank < exact_rank
    if params.get("max_rank"):
        assert out.final_rank <= params["max_rank"]
        assert max(out.rank_history) <= params["max_rank"]
    assert len(out.rank_history) == len(circuit)
    assert out.rank_history[-1] == out.final_rank
    assert out.widest_factor >= max(out.rank_history)


def test_larger_threshold_discards_more() -> None:
    circuit, exact, _ = truncation_case(6)
    errors, ranks = [], []
    for threshold in (1e-4, 1e-3, 1e-2):
        out = LretSimulator(rank_threshold=threshold).run(circuit)
        errors.append(out.truncation_error)
        ranks.append(out.final_rank)
    assert errors == sorted(errors) and errors[0] < errors[-1]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] > ranks[-1]


SCHEDULES = [
    dict(truncation="channel"),
    dict(truncation="moment"),
    dict(truncation="rank", rank_bound=8),
]


@functools.cache
def schedule_case() -> tuple[cirq.Circuit, metrics.Dense]:
    circuit = add_noise(
        random_circuit(n_qubits=5, depth=6, seed=4, measure=True),
        build_noise_model("depolarizing", level=0.01, placement="moment"),
    )
    return circuit, metrics.Dense(cirq_reference(circuit))


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s["truncation"])
def test_schedules_exact_at_threshold_zero(schedule: dict) -> None:
    circuit, ref = schedule_case()
    out = LretSimulator(rank_threshold=0, **schedule).run(circuit)
    assert out.truncation_error < 1e-12
    assert np.abs(metrics.dense(out.state) - ref.matrix).max() < EXACT
    assert 1 - metrics.fidelity(out.state, metrics.to_low_rank(ref)) < EXACT
    assert len(out.rank_history) == len(circuit)
    assert out.widest_factor >= max(out.rank_history)
    assert out.final_rank == metrics.rank(ref) == 2**5


@pytest.mark.parametrize("threshold", [1e-3, 2e-2])
@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s["truncation"])
def test_schedules_obey_the_bound(schedule: dict, threshold: float) -> None:
    circuit, ref = schedule_case()
    out = LretSimulator(rank_threshold=threshold, **schedule).run(circuit)
    assert out.truncation_error > 0
    assert 1 - metrics.fidelity(out.state, metrics.to_low_rank(ref)) <= out.truncation_error + 1e-9
    assert metrics.trace_distance(out.state, ref) <= out.truncation_error + 1e-9
    assert out.final_rank < 2**5
    assert len(out.rank_history) == len(circuit)
    assert out.widest_factor >= max(out.rank_history)


def test_progress_called_once_per_moment() -> None:
    circuit = noisy_random(3, 4, seed=2, model="depolarizing", placement="gate")
    for name in DENSITY_ENGINES:  # trajectories counts trajectories (tests/test_trajectories.py)
        calls: list[tuple[int, int]] = []
        make_engine(name).run(circuit, progress=lambda d, t, calls=calls: calls.append((d, t)))
        assert calls == [(i, len(circuit)) for i in range(1, len(circuit) + 1)], name


# ----------------------------------------------------------------- 6. bad input


def test_qubit_outside_the_order_is_refused() -> None:
    q0, q1 = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(cirq.H(q0), cirq.CNOT(q0, q1))
    with pytest.raises(SimulationError, match=r"LineQubit\(1\)"):
        compile_circuit(circuit, qubits=[q0])
    for name in ENGINES:
        with pytest.raises(SimulationError, match="outside the qubit order"):
            make_engine(name).run(circuit, qubits=[q0])


def test_malformed_qasm_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.qasm"
    path.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\nfoo q[1];\n')
    with pytest.raises(CircuitError, match=r"circuit\.path='.*bad\.qasm': line 5\b.*foo"):
        build_circuit("qasm", path=str(path))


class _NoZeros:
    """numpy as seen from the fdm module, with ``zeros`` forbidden (records attempts)."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name: str):
        if name == "zeros":
            self.calls += 1
            raise AssertionError("numpy.zeros called: the engine allocated before refusing")
        return getattr(np, name)


@pytest.mark.parametrize("engine", ["fdm", "cirq"])
def test_memory_refusal_before_allocation(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 12  # 4^12 x 16 B = 256 MiB per dense copy
    monkeypatch.setattr(sim_base, "available_bytes", lambda: float(2**20))
    spy = _NoZeros()
    monkeypatch.setattr(fdm_module, "np", spy)

    def no_cirq_sim(*args, **kwargs):
        raise AssertionError("cirq.DensityMatrixSimulator constructed before refusing")

    monkeypatch.setattr(cirq, "DensityMatrixSimulator", no_cirq_sim)
    circuit = ghz(n_qubits=n, measure=True)
    tracemalloc.start()
    try:
        with pytest.raises(MemoryRefusal) as info:
            make_engine(engine).run(circuit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert f"simulator={engine}" in message
    assert f"n_qubits={n}" in message
    assert "lret" in message
    assert peak < 16 * 2**20  # far below the 256 MiB a dense state would take
    assert spy.calls == 0
    assert issubclass(MemoryRefusal, SimulationError)


@pytest.mark.parametrize("engine", ["fdm", "cirq"])
def test_memory_refusal_for_real(engine: str) -> None:
    # 4^24 x 16 B x working copies: petabytes, refused on any machine
    with pytest.raises(MemoryRefusal, match="n_qubits=24"):
        make_engine(engine).run(ghz(n_qubits=24))


def test_lret_has_no_dense_memory_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_base, "available_bytes", lambda: float(2**20))
    out = LretSimulator().run(ghz(n_qubits=12))
    assert out.final_rank == 1


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_a_mid_circuit_measurement_runs_on_fdm_lret_and_cirq(engine: str) -> None:
    """H, measure into a, X: a is uniform and the final state is the mixture of |1> and |0>
    (closed form); cirq through its deferred measurements; trajectories refuses, naming
    the others."""
    q0, q1 = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(cirq.H(q0), cirq.measure(q0, key="a"), cirq.X(q0), cirq.H(q1))
    if engine == "trajectories":
        with pytest.raises(ConfigError, match="use simulator=fdm or simulator=lret"):
            make_engine(engine).run(circuit)
        return
    out = make_engine(engine).run(circuit)
    np.testing.assert_allclose(out.outcomes, [0.5, 0.5], atol=1e-12)
    plus = np.array([1, 1]) / 2
    expected = np.kron(np.eye(2) / 2, np.outer(plus, plus) * 2)
    rho = (
        out.state.matrix
        if hasattr(out.state, "matrix")
        else out.state.factor @ out.state.factor.conj().T
    )
    np.testing.assert_allclose(rho, expected, atol=1e-12)
    assert out.branches == (None if engine == "cirq" else 2)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(rank_threshold=-1), r"simulator\.rank_threshold=-1 is invalid"),
        (dict(rank_threshold=1.0), r"simulator\.rank_threshold=1\.0 is invalid"),
        (dict(max_rank=0), r"simulator\.max_rank=0 is invalid"),
        (dict(truncation="bogus"), r"simulator\.truncation='bogus' is invalid"),
        (dict(rank_bound=0), r"simulator\.rank_bound=0 is invalid"),
        (dict(dtype="complex256"), r"backend\.dtype='complex256' is invalid"),
    ],
)
def test_invalid_lret_parameters(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LretSimulator(**params)


def test_unknown_engine_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="simulator.name='qiskit' is invalid: must be one of"):
        make_engine("qiskit")


@pytest.mark.parametrize("engine", [FdmSimulator, CirqSimulator])
def test_unknown_dtype_is_a_config_error(engine: type) -> None:
    with pytest.raises(ConfigError, match=r"backend\.dtype='float32' is invalid"):
        engine(dtype="float32")


def test_make_engine_drops_keys_the_engine_does_not_take() -> None:
    engine = make_engine("fdm", rank_threshold=0.5, max_rank=1, dtype="complex64")
    assert isinstance(engine, FdmSimulator) and engine.dtype == np.complex64


def test_a_compiled_circuit_is_not_compiled_again(monkeypatch: pytest.MonkeyPatch) -> None:
    prog = compile_circuit(noisy_random(3, 4, 2, "depolarizing", "moment"))
    monkeypatch.setattr(sim_base, "compile_circuit", _no_compile)
    for engine in (LretSimulator(rank_threshold=0), FdmSimulator(), CirqSimulator()):
        out = engine.run(prog)
        assert abs(metrics.trace(out.state) - 1) < 1e-10


def test_a_compiled_circuit_of_another_dtype_is_recompiled() -> None:
    prog = compile_circuit(noisy_random(3, 4, 2, "depolarizing", "moment"))
    out = LretSimulator(rank_threshold=0, dtype="complex64").run(prog)
    assert out.state.factor.dtype == np.complex64


def _no_compile(*args: object, **kwargs: object) -> None:
    raise AssertionError("compiled twice")


def test_engines_do_not_mutate_the_circuit() -> None:
    circuit = noisy_random(3, 4, seed=9, model="composite", placement="gate")
    copy = circuit.copy()
    run_all(circuit)
    assert circuit == copy


def test_lret_output_is_a_factor_not_a_dense_matrix() -> None:
    out = LretSimulator(rank_threshold=0).run(noisy_random(4, 4, 1, "amplitude_damping", "gate"))
    assert isinstance(out.state, metrics.LowRank)
    assert out.state.factor.shape == (16, out.final_rank)
    assert out.memory_used_mb > 0
    # compiled instruction list: types of instructions are as documented
    prog = compile_circuit(noisy_random(2, 2, 1, "bit_flip", "gate"))
    kinds = {ins.is_channel for moment in prog.moments for ins in moment}
    assert kinds == {True, False}
    assert prog.measured == (0, 1)
    assert isinstance(prog, sim_base.CompiledCircuit)


# ------------------------------------------------------------------ input faults, memory
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_multi_qubit_gates_and_channels_agree(placement: str) -> None:
    """A Grover oracle on 5 qubits (fdm applies it as Kraus sandwiches, not as a 16^5
    superoperator) and a three-qubit channel, on every engine against Cirq."""
    from lret_runner.circuits import grover

    circuit = grover(n_qubits=5, iterations=1, seed=1, measure=True)
    q = cirq.LineQubit.range(5)
    xyz = np.kron(cirq.unitary(cirq.X), np.kron(cirq.unitary(cirq.Y), cirq.unitary(cirq.Z)))
    three = cirq.KrausChannel([np.sqrt(0.9) * np.eye(8), np.sqrt(0.1) * xyz])
    circuit.insert(3, cirq.Moment(three.on(q[0], q[2], q[4])))
    check_agreement(add_noise(circuit, noise("depolarizing", placement)), 5)


def test_fdm_builds_no_superoperator_beyond_two_qubits(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = []
    original = dense_module.superoperator

    def spy(kraus):
        sizes.append(kraus[0].shape[0])
        return original(kraus)

    monkeypatch.setattr(dense_module, "superoperator", spy)
    from lret_runner.circuits import grover

    FdmSimulator().run(grover(n_qubits=8, iterations=1, seed=0))  # 64 GiB as a superoperator
    assert sizes and max(sizes) <= 4


def test_repeated_operations_are_compiled_once() -> None:
    from lret_runner.circuits import grover

    prog = compile_circuit(grover(n_qubits=6, iterations=3, seed=2))
    oracles = [ins for moment in prog.moments for ins in moment if len(ins.targets) == 6]
    assert len(oracles) == 6  # oracle and diffuser, three iterations
    assert len({id(ins.kraus[0]) for ins in oracles}) == 1  # one matrix, shared


def test_a_gate_whose_matrix_does_not_fit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from lret_runner.circuits import grover

    monkeypatch.setattr(sim_base, "available_bytes", lambda: float(2**20))
    with pytest.raises(MemoryRefusal, match=r"moment \d+: the gate .* acts on 9 qubits.*GiB"):
        compile_circuit(grover(n_qubits=9, iterations=1, seed=0))
    compile_circuit(grover(n_qubits=8, iterations=1, seed=0))  # not checked: 8 qubits or fewer


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_check_memory_refuses_before_running(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    prog = compile_circuit(ghz(n_qubits=10))
    make_engine(engine).check_memory(prog)  # fits
    monkeypatch.setattr(sim_base, "available_bytes", lambda: float(2**10))
    with pytest.raises(MemoryRefusal, match=rf"simulator={engine} refuses n_qubits=10"):
        make_engine(engine).check_memory(prog)


def test_lret_memory_budget_caps_the_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rank-1 start fits; the rank the noise makes does not: the memory budget caps the
    rank (the result says so, and truncation_error still bounds the distance to exact)
    instead of exhausting memory, under every schedule."""
    circuit, exact, _ = truncation_case(8)
    free = 2**8 * 16 * lret_module.WORKING_FACTOR * 4  # rank 4's worth
    monkeypatch.setattr(sim_base, "available_bytes", lambda: float(free))
    for truncation in ("channel", "moment", "rank"):
        engine = LretSimulator(rank_threshold=0, truncation=truncation, rank_bound=2)
        out = engine.run(circuit)
        assert max(out.rank_history) <= 3  # 80% of rank 4's worth
        assert any("capped the rank at 3" in w for w in out.warnings)
        assert metrics.trace_distance(out.state, exact) <= out.truncation_error + 1e-9


def test_lret_max_memory_gb_refuses_before_allocating() -> None:
    engine = LretSimulator(max_memory_gb=0.001)
    with pytest.raises(MemoryRefusal, match=r"n_qubits=20.*simulator.max_memory_gb=0.001"):
        engine.check_qubits(20)
    with pytest.raises(ConfigError, match=r"simulator.max_memory_gb=0 is invalid"):
        LretSimulator(max_memory_gb=0)


def test_lret_spends_the_accuracy_as_a_budget() -> None:
    circuit, exact, _ = truncation_case(8)
    target = 0.02
    out = LretSimulator(accuracy=target, representation="factor").run(circuit)
    assert 0 < out.truncation_error <= target
    assert metrics.trace_distance(out.state, exact) <= out.truncation_error + 1e-9
    assert out.warnings == []
    # a per-truncation threshold that also spends about this much keeps a larger rank
    # somewhere (the budget is spread evenly, not spent first)
    fixed = LretSimulator(rank_threshold=target / 10, representation="factor").run(circuit)
    assert fixed.truncation_error > target  # no total bound without a target
    # ... and says so before the run, from the cost model's predicted discarded weight
    assert any("predicted to discard" in w for w in fixed.warnings)


def test_lret_reports_an_accuracy_it_cannot_meet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    circuit, _, _ = truncation_case(8)
    free = 2**8 * 16 * lret_module.WORKING_FACTOR * 3
    monkeypatch.setattr(sim_base, "available_bytes", lambda: float(free))
    out = LretSimulator(accuracy=1e-6, representation="factor").run(circuit)
    assert out.truncation_error > 1e-6
    assert any("predicted to need rank" in w for w in out.warnings)  # before the run
    assert any("was not met" in w for w in out.warnings)  # after it


def test_lret_blocked_products_match_unblocked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Gram matrices, kept columns and gates made block by block (so that an interrupt
    is handled between blocks) give the state the one-call products give."""

    # exact runs (rank_threshold=0): truncation with a threshold is sensitive to rounding
    # (it cuts through clusters of equal eigenvalues), exact runs are not
    circuit = add_noise(
        random_circuit(n_qubits=6, depth=6, seed=3, measure=True),
        build_noise_model("depolarizing", level=0.02, placement="moment"),
    )
    schedules = ("channel", "moment")
    reference = {t: LretSimulator(rank_threshold=0, truncation=t).run(circuit) for t in schedules}
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1000, 24)) + 1j * rng.standard_normal((1000, 24))
    w = rng.standard_normal((24, 7)) + 1j * rng.standard_normal((24, 7))
    monkeypatch.setattr(lret_module, "_BLOCK_MACS", 1000)
    for dtype in (np.complex128, np.complex64):
        xd, wd = x.astype(dtype), w.astype(dtype)
        tol = 1e-12 if dtype == np.complex128 else 1e-4
        gram = lret_module._gram(xd)
        np.testing.assert_allclose(gram, xd.conj().T @ xd, rtol=tol, atol=tol * 1e3)
        np.testing.assert_array_equal(gram, gram.conj().T)  # exactly Hermitian
        np.testing.assert_allclose(lret_module._product(xd, wd), xd @ wd, rtol=tol, atol=tol)
    monkeypatch.setattr(lret_module, "_BLOCK_BYTES", 2**10)
    for truncation, ref in reference.items():
        out = LretSimulator(rank_threshold=0, truncation=truncation).run(circuit)
        assert out.truncation_error < 1e-12
        np.testing.assert_allclose(metrics.dense(out.state), metrics.dense(ref.state), atol=1e-12)


@pytest.mark.parametrize("truncation", ["channel", "moment"])
@pytest.mark.parametrize("threshold", [0.0, 1e-3])
def test_the_dense_side_truncates_as_the_gram_side(
    truncation: str, threshold: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When k r > 2^n the N x N eigenproblem replaces the k r x k r one. The nonzero spectra
    of L L^dagger and L^dagger L are equal, so exact runs agree to rounding; with a
    threshold, a cut between (near-)degenerate eigenvalues may fall one apart, so both
    stay within their truncation_error of the exact state (checked against fdm)."""

    circuit = noisy_random(4, 8, 3, "depolarizing", "gate")  # two-qubit channels: k = 16
    engine = LretSimulator(rank_threshold=threshold, truncation=truncation)
    dense = engine.run(circuit)
    monkeypatch.setattr(lret_module, "_dense_side_cheaper", lambda columns, rows: False)
    gram = engine.run(circuit)
    assert gram.widest_factor > 2**4  # k r exceeded N: the dense side was taken
    exact = metrics.dense(FdmSimulator().run(circuit).state)
    for out in (dense, gram):
        distance = metrics.trace_distance(out.state, metrics.Dense(exact))
        assert distance <= out.truncation_error + 1e-9
    if threshold == 0:
        assert np.abs(metrics.dense(dense.state) - metrics.dense(gram.state)).max() < 1e-10
        assert dense.rank_history == gram.rank_history


def test_lret_warns_before_a_run_predicted_past_its_time_limit() -> None:
    circuit, _, _ = truncation_case(6)
    out = LretSimulator(time_limit_seconds=1e-6).run(circuit)
    assert any("more than the run's time limit (1e-06 s)" in w for w in out.warnings)
    quiet = LretSimulator(time_limit_seconds=3600).run(circuit)
    assert not any("time limit" in w for w in quiet.warnings)
