"""The figures against the noiseless circuit, checked against independent computations:
Cirq's state-vector simulator (the noiseless state), Cirq's density-matrix simulator (the
noisy state), Qiskit's ``hellinger_fidelity``, Cirq's XEB estimator and closed forms; on
every engine and both noise placements."""

from __future__ import annotations

import math

import cirq
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lret_runner import metrics
from lret_runner.circuits import random_circuit
from lret_runner.experiment import prepare_circuit, simulate
from lret_runner.noise import add_noise, build_noise_model

ENGINES = {"lret": {"rank_threshold": 0.0}, "fdm": {}, "cirq": {}}  # lret made exact
TOL = 1e-10


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run(circuit: cirq.Circuit, engine: str, **options):
    prepared = prepare_circuit(
        circuit, simulator=engine, simulator_params=ENGINES[engine], **options
    )
    return simulate(prepared)[0]


def references(noiseless: cirq.Circuit, noisy: cirq.Circuit, measured: list[cirq.Qid]):
    """(psi, rho, ideal distribution, noisy distribution) of the measured qubits, by Cirq."""
    qubits = sorted(noiseless.all_qubits())
    psi = cirq.Simulator(dtype=np.complex128).simulate(
        cirq.drop_terminal_measurements(noiseless), qubit_order=qubits
    )
    rho = cirq.DensityMatrixSimulator(dtype=np.complex128).simulate(
        cirq.drop_terminal_measurements(noisy), qubit_order=qubits
    )
    vector = np.asarray(psi.final_state_vector)
    matrix = np.asarray(rho.final_density_matrix)
    keep = [qubits.index(q) for q in measured]
    axes = tuple(i for i in range(len(qubits)) if i not in keep)
    shape = (2,) * len(qubits)
    ideal = (np.abs(vector) ** 2).reshape(shape).sum(axis=axes).reshape(-1)
    noisy_p = np.diagonal(matrix).real.reshape(shape).sum(axis=axes).reshape(-1)
    return vector, matrix, ideal, noisy_p


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("placement", ["gate", "moment"])
def test_figures_against_the_noiseless_circuit_match_cirq(engine: str, placement: str) -> None:
    from qiskit.quantum_info import hellinger_fidelity

    circuit = random_circuit(n_qubits=5, depth=8, seed=11, measure=True)
    model = build_noise_model("amplitude_damping", level=0.03, placement=placement)
    noisy = add_noise(circuit, model)
    observables = ["XZIYI", "ZZZZZ"]
    result = run(noisy, engine, observables=observables, xeb=True, shots=4000, seed=5)
    psi, rho, ideal, noisy_p = references(circuit, noisy, sorted(circuit.all_qubits()))

    assert result.ideal_fidelity == pytest.approx(np.vdot(psi, rho @ psi).real, abs=TOL)
    assert result.ideal_fidelity < 0.95  # the noise moved the state: a figure that can fail
    assert result.ideal_tvd == pytest.approx(0.5 * np.abs(noisy_p - ideal).sum(), abs=TOL)
    as_dict = {format(i, "05b"): float(p) for i, p in enumerate(noisy_p)}
    ideal_dict = {format(i, "05b"): float(p) for i, p in enumerate(ideal)}
    assert result.ideal_hellinger_fidelity == pytest.approx(
        hellinger_fidelity(as_dict, ideal_dict), abs=TOL
    )
    assert result.xeb_fidelity == pytest.approx(32 * np.dot(noisy_p, ideal) - 1, abs=TOL)
    qubits = sorted(circuit.all_qubits())
    for pauli in observables:
        string = cirq.PauliString(
            {q: getattr(cirq, p) for q, p in zip(qubits, pauli, strict=True) if p != "I"}
        )
        noiseless = string.expectation_from_state_vector(
            psi.astype(np.complex64),
            {q: i for i, q in enumerate(qubits)},
            check_preconditions=False,
        )
        expected_noisy = np.trace(cirq.unitary(string.dense(qubits)) @ rho).real
        assert result.ideal_expectation_values[pauli] == pytest.approx(noiseless.real, abs=1e-6)
        assert result.expectation_values[pauli] == pytest.approx(expected_noisy, abs=TOL)
    assert result.ideal_reference.startswith("noiseless state vector")


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("placement", ["gate", "moment"])
def test_closed_form_hadamards_under_depolarizing_noise(engine: str, placement: str) -> None:
    # H on each of n qubits, then depolarize(p) on each: rho_q = (1 - 4p/3)|+><+| + 4p/3 I/2,
    # so F = (1 - 2p/3)^n, <X..X> = (1 - 4p/3)^n (noiseless 1), and the Z-basis output
    # stays uniform: TVD 0, Hellinger fidelity 1
    n, p = 4, 0.06
    qubits = cirq.LineQubit.range(n)
    circuit = cirq.Circuit([cirq.H.on_each(*qubits), cirq.measure(*qubits)])
    noisy = add_noise(circuit, build_noise_model("depolarizing", level=p, placement=placement))
    result = run(noisy, engine, observables=["XXXX", "ZIII"])
    assert result.ideal_fidelity == pytest.approx((1 - 2 * p / 3) ** n, abs=TOL)
    assert result.expectation_values["XXXX"] == pytest.approx((1 - 4 * p / 3) ** n, abs=TOL)
    assert result.ideal_expectation_values == pytest.approx({"XXXX": 1.0, "ZIII": 0.0}, abs=TOL)
    assert result.ideal_tvd == pytest.approx(0.0, abs=TOL)
    assert result.ideal_hellinger_fidelity == pytest.approx(1.0, abs=TOL)
    assert result.xeb_fidelity is None  # only for random circuits


def test_ghz_parity_falls_with_the_level() -> None:
    # GHZ, depolarizing after every gate: parity <XXX> and the fidelity to the noiseless
    # GHZ state fall monotonically with p, from exactly 1 at p = 0
    qubits = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(
        [cirq.H(qubits[0]), cirq.CNOT(*qubits[:2]), cirq.CNOT(*qubits[1:]), cirq.measure(*qubits)]
    )
    fidelities, parities = [], []
    for p in (0.0, 0.001, 0.01, 0.05):
        noisy = add_noise(circuit, build_noise_model("depolarizing", level=p))
        result = run(noisy, "fdm", observables=["XXX"])
        psi, rho, _, _ = references(circuit, noisy, qubits)
        assert result.ideal_fidelity == pytest.approx(np.vdot(psi, rho @ psi).real, abs=TOL)
        fidelities.append(result.ideal_fidelity)
        parities.append(result.expectation_values["XXX"])
    assert fidelities[0] == pytest.approx(1.0, abs=TOL) and parities[0] == pytest.approx(1.0)
    assert fidelities == sorted(fidelities, reverse=True) and fidelities[-1] < 0.9
    assert parities == sorted(parities, reverse=True)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_distributions_are_over_the_measured_qubits(engine: str) -> None:
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(
        [cirq.H(q[0]), cirq.CNOT(q[0], q[2]), cirq.X(q[1]), cirq.measure(q[0], q[2])]
    )
    noisy = add_noise(circuit, build_noise_model("bit_flip", level=0.1))
    result = run(noisy, engine)
    _, _, ideal, noisy_p = references(circuit, noisy, [q[0], q[2]])
    assert len(ideal) == 4  # two measured qubits
    assert result.ideal_tvd == pytest.approx(0.5 * np.abs(noisy_p - ideal).sum(), abs=TOL)
    assert result.ideal_tvd > 0.1


def test_sampled_xeb_matches_cirqs_estimator() -> None:
    from cirq.experiments import linear_xeb_fidelity_from_probabilities

    circuit = random_circuit(n_qubits=4, depth=10, seed=2, measure=True)
    noisy = add_noise(circuit, build_noise_model("depolarizing", level=0.01))
    result = run(noisy, "fdm", xeb=True, shots=3000, seed=1)
    _, _, ideal, _ = references(circuit, noisy, sorted(circuit.all_qubits()))
    samples = [ideal[int(bits, 2)] for bits, c in result.counts.items() for _ in range(c)]
    assert result.xeb_fidelity_sampled == pytest.approx(
        linear_xeb_fidelity_from_probabilities(16, samples), abs=1e-12
    )
    # the estimate is near the exact value (3000 shots: a standard error of a few 1e-2)
    assert abs(result.xeb_fidelity_sampled - result.xeb_fidelity) < 0.15
    # noiseless: D sum p^2 - 1; fully mixed: 0
    clean = run(circuit, "fdm", xeb=True)
    assert clean.xeb_fidelity == pytest.approx(16 * float(np.sum(ideal**2)) - 1, abs=TOL)
    mixed = add_noise(circuit, build_noise_model("depolarizing", level=0.75, placement="moment"))
    assert run(mixed, "fdm", xeb=True).xeb_fidelity == pytest.approx(0.0, abs=TOL)


def test_why_the_noiseless_figures_are_absent() -> None:
    circuit = random_circuit(n_qubits=4, depth=4, seed=0, measure=True)
    noisy = add_noise(circuit, build_noise_model("depolarizing", level=0.01))
    capped = run(noisy, "fdm", ideal_max_qubits=3)
    assert capped.ideal_fidelity is None and capped.ideal_tvd is None
    assert capped.ideal_reference == "skipped: n_qubits=4 > run.ideal_max_qubits=3"
    # a reset is part of the circuit, not its noise: no noiseless state vector
    q = cirq.LineQubit.range(2)
    with_reset = cirq.Circuit([cirq.H(q[0]), cirq.reset(q[0]), cirq.CNOT(*q)])
    result = run(with_reset, "fdm")
    assert result.ideal_fidelity is None and "not unitary" in result.ideal_reference


def test_the_noiseless_state_is_a_normalised_vector_of_the_unitary_part() -> None:
    from lret_runner.simulators.ideal import noiseless_program, state_vector

    circuit = random_circuit(n_qubits=6, depth=12, seed=4, measure=True)
    noisy = add_noise(circuit, build_noise_model("phase_damping", level=0.2))
    prepared = prepare_circuit(noisy, simulator="fdm")
    program = noiseless_program(prepared.program)
    assert not isinstance(program, str)
    assert sum(len(m) for m in program.moments) == len(list(circuit.all_operations())) - 1
    psi = state_vector(program)
    expected = cirq.final_state_vector(
        cirq.drop_terminal_measurements(circuit), dtype=np.complex128
    )
    assert math.isclose(np.linalg.norm(psi), 1.0, abs_tol=1e-12)
    assert np.allclose(psi, expected, atol=1e-12)
    assert metrics.state_overlap(metrics.LowRank(psi[:, None]), expected) == pytest.approx(1.0)
