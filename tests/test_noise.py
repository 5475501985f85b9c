"""Noise models: validation, placement, and channel strengths against closed forms."""

from __future__ import annotations

import math
import re

import cirq
import numpy as np
import pytest

from lret_runner.circuits import ghz
from lret_runner.noise import (
    NOISE_MODELS,
    NOISE_TAG,
    LretNoiseModel,
    NoiseError,
    ThermalRelaxationChannel,
    add_noise,
    build_noise_model,
    is_noise_moment,
)

Q = cirq.LineQubit.range(3)


def final_rho(circuit: cirq.Circuit, initial: np.ndarray | int = 0) -> np.ndarray:
    """The exact density matrix (measurements must be absent), qubit 0 most significant."""
    sim = cirq.DensityMatrixSimulator(dtype=np.complex128)
    qubits = sorted(circuit.all_qubits())
    return sim.simulate(circuit, qubit_order=qubits, initial_state=initial).final_density_matrix


def noise_ops(circuit: cirq.Circuit) -> list[cirq.Operation]:
    return [op for op in circuit.all_operations() if NOISE_TAG in op.tags]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("name", ["depolarizing", "bit_flip", "amplitude_damping"])
@pytest.mark.parametrize("level", [-0.1, 1.5])
def test_level_outside_unit_interval(name: str, level: float) -> None:
    with pytest.raises(NoiseError, match=rf"noise.level={level} is invalid: a probability"):
        build_noise_model(name, level=level)


@pytest.mark.parametrize(
    ("name", "kwargs", "key"),
    [
        ("readout", dict(level=0.1), "noise.level=0.1"),
        ("thermal", dict(level=0.1), "noise.level=0.1"),
        ("none", dict(level=0.3), "noise.level=0.3"),
        ("depolarizing", dict(t1=1e-5), "noise.t1=1e-05"),
        ("bit_flip", dict(readout_error=0.1), "noise.readout_error=0.1"),
        ("thermal", dict(readout_error=0.1), "noise.readout_error=0.1"),
    ],
)
def test_a_key_the_model_does_not_use_is_refused(name: str, kwargs: dict, key: str) -> None:
    """One knob means one thing: level is never a readout error, t1 never a level."""
    with pytest.raises(NoiseError, match=rf"{re.escape(key)} is invalid: the {name} model does"):
        build_noise_model(name, **kwargs)


@pytest.mark.parametrize(
    ("component", "key"),
    [
        ({"name": "readout", "level": 0.1}, r"noise.components\[1\].level=0.1"),
        ({"name": "thermal", "level": 0.1}, r"noise.components\[1\].level=0.1"),
        ({"name": "depolarizing", "t2": 1e-5}, r"noise.components\[1\].t2=1e-05"),
        ({"name": "bit_flip", "readout_error": 0.1}, r"noise.components\[1\].readout_error=0.1"),
        ({"name": "none", "level": 0.1}, r"noise.components\[1\].level=0.1"),
    ],
)
def test_a_component_key_its_model_does_not_use_is_refused(component: dict, key: str) -> None:
    with pytest.raises(NoiseError, match=key + " is invalid"):
        build_noise_model("composite", components=[{"name": "bit_flip"}, component])


def test_a_readout_component_needs_a_readout_error() -> None:
    with pytest.raises(NoiseError, match=r"noise.components\[0\] \(readout\) has no readout_err"):
        build_noise_model("composite", level=0.1, components=[{"name": "readout"}])
    # the composite's readout_error is the default of its readout components
    model = build_noise_model("composite", readout_error=0.07, components=[{"name": "readout"}])
    assert model.components[0].readout_error == 0.07


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(t1=10e-6, t2=25e-6), r"noise.t2=2.5e-05 is invalid: T2 must be <= 2\*T1 = 2e-05"),
        (dict(t1=0.0), "noise.t1=0.0 is invalid"),
        (dict(t2=-1e-6), "noise.t2=-1e-06 is invalid"),
        (dict(gate_time_1q=-1e-9), "noise.gate_time_1q=-1e-09 is invalid: a time must be >= 0"),
        (dict(gate_time_2q=-2e-9), "noise.gate_time_2q=-2e-09 is invalid"),
        (
            dict(placement="layer"),
            "noise.placement='layer' is invalid: must be one of gate, moment",
        ),
        (dict(level="high"), "noise.level='high' is invalid: must be a number"),
        (dict(level=float("nan")), "noise.level=nan is invalid"),
    ],
)
def test_invalid_thermal_and_common_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(NoiseError, match=message):
        build_noise_model("depolarizing" if "level" in kwargs else "thermal", **kwargs)


def test_invalid_names_and_components() -> None:
    with pytest.raises(NoiseError, match="noise.name='gaussian' is invalid: must be one of none"):
        build_noise_model("gaussian")
    with pytest.raises(NoiseError, match="noise.readout_error=1.2 is invalid"):
        build_noise_model("readout", readout_error=1.2)
    with pytest.raises(NoiseError, match=r"noise.components\[1\].level=2 is invalid"):
        build_noise_model(
            "composite", components=[{"name": "bit_flip"}, {"name": "phase_flip", "level": 2}]
        )
    with pytest.raises(NoiseError, match=r"noise.components\[0\].name='composite'"):
        build_noise_model("composite", components=[{"name": "composite"}])
    with pytest.raises(NoiseError, match=r"noise.components\[0\] has unknown keys placement"):
        build_noise_model("composite", components=[{"name": "bit_flip", "placement": "gate"}])
    with pytest.raises(NoiseError, match="needs components"):
        build_noise_model("composite")
    with pytest.raises(NoiseError, match="only for the composite"):
        build_noise_model("bit_flip", components=[{"name": "bit_flip"}])


def test_noise_error_is_a_value_error() -> None:
    assert issubclass(NoiseError, ValueError)


# --------------------------------------------------------------------------- placement


# device noise (tests/test_devices.py) has no level and no placement; scale 0 is its zero
@pytest.mark.parametrize(
    "name", [m for m in NOISE_MODELS if m not in ("composite", "thermal", "device")]
)
@pytest.mark.parametrize("placement", ["gate", "moment"])
def test_zero_strength_adds_nothing(name: str, placement: str) -> None:
    circuit = ghz(n_qubits=3, measure=True)
    zero = {"none": {}, "readout": {"readout_error": 0.0}}.get(name, {"level": 0.0})
    model = build_noise_model(name, placement=placement, **zero)
    assert model.is_noiseless
    assert add_noise(circuit, model) == circuit


def test_none_adds_no_moments() -> None:
    circuit = ghz(n_qubits=3)
    assert add_noise(circuit, build_noise_model("none")) == circuit


def test_depolarizing_gate_placement_two_qubit_channel_after_cnot() -> None:
    p = 0.02
    circuit = cirq.Circuit(cirq.H(Q[0]), cirq.CNOT(Q[0], Q[1]), cirq.CCX(*Q))
    noisy = add_noise(circuit, build_noise_model("depolarizing", level=p))
    assert len(noisy) == 6
    assert [is_noise_moment(m) for m in noisy] == [False, True] * 3
    assert noisy[1] == cirq.Moment(cirq.depolarize(p).on(Q[0]).with_tags(NOISE_TAG))
    (two,) = noisy[3].operations
    assert two.untagged == cirq.depolarize(p, n_qubits=2).on(Q[0], Q[1])
    # a three-qubit gate gets the three-qubit channel: every qubit it touched, jointly
    (three,) = noisy[5].operations
    assert three.untagged == cirq.depolarize(p, n_qubits=3).on(*Q)


def test_gate_placement_uses_one_qubit_channels_when_no_two_qubit_channel() -> None:
    noisy = add_noise(cirq.Circuit(cirq.CZ(Q[0], Q[1])), build_noise_model("bit_flip", level=0.1))
    assert {op.untagged for op in noisy[1]} == {
        cirq.bit_flip(0.1).on(Q[0]),
        cirq.bit_flip(0.1).on(Q[1]),
    }


def test_moment_placement_hits_idle_qubits() -> None:
    circuit = cirq.Circuit([cirq.Moment(cirq.X(Q[0])), cirq.Moment(cirq.CNOT(Q[1], Q[2]))])
    noisy = add_noise(circuit, build_noise_model("phase_flip", level=0.1, placement="moment"))
    assert len(noisy) == 4
    for index in (1, 3):  # every system qubit, touched or not
        assert {op.untagged for op in noisy[index]} == {cirq.phase_flip(0.1).on(q) for q in Q}
    # an empty moment is a time step too
    empty = cirq.Circuit([cirq.Moment(cirq.X(Q[0])), cirq.Moment(), cirq.Moment(cirq.X(Q[1]))])
    noisy = add_noise(empty, build_noise_model("phase_flip", level=0.1, placement="moment"))
    assert len(noisy) == 6


def test_noise_moments_hold_only_channels() -> None:
    model = build_noise_model(
        "composite",
        placement="moment",
        components=[{"name": "depolarizing", "level": 0.01}, {"name": "thermal"}],
    )
    noisy = add_noise(ghz(n_qubits=3, measure=True), model)
    for moment in noisy:
        if is_noise_moment(moment):
            assert all(not cirq.has_unitary(op) and cirq.has_kraus(op) for op in moment)
        else:
            assert not any(NOISE_TAG in op.tags for op in moment)


@pytest.mark.parametrize("placement", ["gate", "moment"])
def test_readout_goes_just_before_measurement(placement: str) -> None:
    circuit = ghz(n_qubits=3, measure=True)
    model = build_noise_model("readout", readout_error=0.05, placement=placement)
    noisy = add_noise(circuit, model)
    assert len(noisy) == len(circuit) + 1
    assert noisy[-1] == circuit[-1]  # measurement last, nothing after it
    assert {op.untagged for op in noisy[-2]} == {cirq.bit_flip(0.05).on(q) for q in Q}
    assert noisy[:-2] == circuit[:-1]  # nothing elsewhere


@pytest.mark.parametrize(
    ("name", "kwargs", "key"),
    [
        ("readout", dict(readout_error=0.05), "noise.readout_error=0.05"),
        (
            "composite",
            dict(components=[{"name": "bit_flip"}, {"name": "readout", "readout_error": 0.02}]),
            r"noise.components\[1\].readout_error=0.02",
        ),
    ],
)
def test_readout_noise_without_measurement_is_refused(name: str, kwargs: dict, key: str) -> None:
    """Readout noise on a circuit that measures nothing would be dropped silently while
    counts are still sampled: refused, naming the readout error and circuit.measure."""
    with pytest.raises(NoiseError, match=key + ".*circuit.measure=false"):
        add_noise(ghz(n_qubits=3), build_noise_model(name, **kwargs))
    # a zero readout error drops nothing
    assert add_noise(ghz(n_qubits=3), build_noise_model("readout", readout_error=0.0)) == ghz(
        n_qubits=3
    )


def test_readout_error_flips_outcomes() -> None:
    circuit = cirq.Circuit(cirq.X(Q[0]), cirq.measure(Q[0], key="m"))
    noisy = add_noise(circuit, build_noise_model("readout", readout_error=0.1))
    rho = final_rho(noisy[:-1])  # the state the measurement samples from
    assert rho[0, 0].real == pytest.approx(0.1, abs=1e-12)


@pytest.mark.parametrize("placement", ["gate", "moment"])
def test_no_noise_after_measurement_and_mixed_moments_split(placement: str) -> None:
    circuit = cirq.Circuit(cirq.Moment(cirq.X(Q[0]), cirq.measure(Q[1], key="a")))
    model = build_noise_model(
        "composite",
        placement=placement,
        components=[
            {"name": "depolarizing", "level": 0.1},
            {"name": "readout", "readout_error": 0.2},
        ],
    )
    noisy = add_noise(circuit, model)
    assert noisy[0] == cirq.Moment(cirq.X(Q[0]))
    assert noisy[-1] == cirq.Moment(cirq.measure(Q[1], key="a"))
    assert noisy[-2] == cirq.Moment(cirq.bit_flip(0.2).on(Q[1]).with_tags(NOISE_TAG))
    assert all(is_noise_moment(m) for m in noisy[1:-1])


# --------------------------------------------------------------------------- strengths


@pytest.mark.parametrize("gamma", [0.0, 0.1, 0.37, 1.0])
def test_amplitude_damping_of_one(gamma: float) -> None:
    noisy = add_noise(
        cirq.Circuit(cirq.X(Q[0])), build_noise_model("amplitude_damping", level=gamma)
    )
    rho = final_rho(noisy)
    assert rho[1, 1].real == pytest.approx(1 - gamma, abs=1e-12)


def test_phase_damping_scales_coherence() -> None:
    lam = 0.3
    noisy = add_noise(cirq.Circuit(cirq.H(Q[0])), build_noise_model("phase_damping", level=lam))
    rho = final_rho(noisy)
    assert abs(rho[0, 1]) == pytest.approx(0.5 * math.sqrt(1 - lam), abs=1e-12)
    assert rho[1, 1].real == pytest.approx(0.5, abs=1e-12)


PLUS = np.full((2, 2), 0.5, dtype=np.complex128)
ONE = np.diag([0.0, 1.0]).astype(np.complex128)


@pytest.mark.parametrize("t1, t2", [(50e-6, 70e-6), (30e-6, 60e-6), (40e-6, 5e-6)])
def test_thermal_relaxation_after_a_one_qubit_gate(t1: float, t2: float) -> None:
    t = 20e-6  # long gate, so the decay is visible
    circuit = cirq.Circuit(cirq.I(Q[0]))
    assert len(circuit) == 1 and circuit.all_qubits() == {Q[0]}  # Cirq keeps the identity
    model = build_noise_model("thermal", t1=t1, t2=t2, gate_time_1q=t)
    noisy = add_noise(circuit, model)
    assert len(noisy) == 2
    rho = final_rho(noisy, PLUS)
    assert abs(rho[0, 1]) == pytest.approx(0.5 * math.exp(-t / t2), abs=1e-10)
    assert rho[1, 1].real == pytest.approx(0.5 * math.exp(-t / t1), abs=1e-10)
    assert final_rho(noisy, ONE)[1, 1].real == pytest.approx(math.exp(-t / t1), abs=1e-10)


def test_thermal_two_qubit_gate_duration_and_moment_placement() -> None:
    t1, t2, t1q, t2q = 50e-6, 60e-6, 5e-6, 12e-6
    model = build_noise_model("thermal", t1=t1, t2=t2, gate_time_1q=t1q, gate_time_2q=t2q)
    noisy = add_noise(cirq.Circuit(cirq.CZ(Q[0], Q[1])), model)
    p11 = final_rho(noisy, 3)[3, 3].real  # |11>: both qubits relax for the 2q gate time
    assert p11 == pytest.approx(math.exp(-2 * t2q / t1), abs=1e-10)
    # moment placement: the longest gate of the moment sets every qubit's duration
    moment_model = build_noise_model(
        "thermal", t1=t1, t2=t2, gate_time_1q=t1q, gate_time_2q=t2q, placement="moment"
    )
    circuit = cirq.Circuit(cirq.Moment(cirq.I(Q[0]), cirq.CZ(Q[1], Q[2])))
    noisy = add_noise(circuit, moment_model)
    rho = final_rho(noisy, 0b100)  # qubit 0 in |1>, idle-ish next to the CZ
    assert np.trace(rho[4:, 4:]).real == pytest.approx(math.exp(-t2q / t1), abs=1e-10)


def test_thermal_without_dephasing_is_plain_amplitude_damping() -> None:
    model = build_noise_model("thermal", t1=10e-6, t2=20e-6, gate_time_1q=1e-6)
    (op,) = add_noise(cirq.Circuit(cirq.I(Q[0])), model)[1].operations
    assert isinstance(op.gate, cirq.AmplitudeDampingChannel)
    assert op.gate.gamma == pytest.approx(1 - math.exp(-0.1), rel=1e-12)


def test_thermal_relaxation_channel_kraus_is_complete() -> None:
    kraus = cirq.kraus(ThermalRelaxationChannel(0.2, 0.3))
    np.testing.assert_allclose(sum(k.conj().T @ k for k in kraus), np.eye(2), atol=1e-14)
    with pytest.raises(NoiseError, match="gamma=1.5"):
        ThermalRelaxationChannel(1.5, 0.0)


def test_composite_applies_all_channels_in_order() -> None:
    p, gamma = 0.06, 0.2
    model = build_noise_model(
        "composite",
        components=[
            {"name": "depolarizing", "level": p},
            {"name": "amplitude_damping", "level": gamma},
            {"name": "readout", "readout_error": 0.1},
        ],
    )
    assert isinstance(model, LretNoiseModel) and isinstance(model, cirq.NoiseModel)
    circuit = cirq.Circuit(cirq.X(Q[0]), cirq.measure(Q[0], key="m"))
    noisy = add_noise(circuit, model)
    assert len(noisy) == 5  # X, depolarizing, damping, readout flip, measurement
    rho = final_rho(noisy[:3])
    assert rho[1, 1].real == pytest.approx((1 - 2 * p / 3) * (1 - gamma), abs=1e-12)
    assert final_rho(noisy[:4])[1, 1].real == pytest.approx(
        0.9 * (1 - 2 * p / 3) * (1 - gamma) + 0.1 * (1 - (1 - 2 * p / 3) * (1 - gamma)), abs=1e-12
    )


def test_composite_components_inherit_the_composite_parameters() -> None:
    model = build_noise_model(
        "composite",
        level=0.05,
        readout_error=0.2,
        components=[{"name": "bit_flip"}, {"name": "readout"}],
    )
    noisy = add_noise(cirq.Circuit(cirq.X(Q[0]), cirq.measure(Q[0], key="m")), model)
    assert noisy[1].operations[0].untagged == cirq.bit_flip(0.05).on(Q[0])
    assert noisy[2].operations[0].untagged == cirq.bit_flip(0.2).on(Q[0])


@pytest.mark.parametrize("p", [0.001, 0.05, 0.3])
def test_depolarizing_level_is_qiskit_depolarizing_error(p: float) -> None:
    """noise.level=p is Cirq's depolarize(p) (p/3 per Pauli on one qubit, p/15 per
    non-identity two-qubit Pauli): Qiskit Aer's depolarizing_error(4p/3, 1) and
    depolarizing_error(16p/15, 2), as superoperators."""
    pytest.importorskip("qiskit_aer")
    from qiskit.quantum_info import Kraus, SuperOp
    from qiskit_aer.noise import depolarizing_error

    q = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(cirq.X(q[0]), cirq.CNOT(q[0], q[1]))
    noisy = add_noise(circuit, build_noise_model("depolarizing", level=p))
    one, two = (noisy[1].operations[0], noisy[3].operations[0])  # the model's own channels
    for op, aer in (
        (one, depolarizing_error(4 * p / 3, 1)),
        (two, depolarizing_error(16 * p / 15, 2)),
    ):
        ours = SuperOp(Kraus([np.asarray(k) for k in cirq.kraus(op)]))
        # a depolarizing channel is symmetric under qubit exchange: endianness does not matter
        assert np.abs(ours.data - SuperOp(aer.to_quantumchannel()).data).max() < 1e-14


# --------------------------------------------------------------------------- sparse


def _sparse_ops(circuit: cirq.Circuit) -> list[cirq.Operation]:
    return [op for op in circuit.all_operations() if NOISE_TAG in op.tags]


@pytest.mark.parametrize("placement", ["moment", "gate"])
def test_sparse_noise_hits_about_level_of_the_locations(placement: str) -> None:
    from lret_runner.circuits import random_circuit

    level = 0.1
    circuit = random_circuit(n_qubits=10, depth=200, seed=1)
    noisy = add_noise(circuit, build_noise_model("sparse", level=level, placement=placement))
    if placement == "moment":
        locations = 10 * len(circuit)
    else:
        locations = sum(len(op.qubits) for op in circuit.all_operations())
    hits = _sparse_ops(noisy)
    # binomial(locations, level): within 5 standard deviations (false alarm ~6e-7)
    sigma = (locations * level * (1 - level)) ** 0.5
    assert abs(len(hits) - locations * level) < 5 * sigma
    kinds = {type(op.gate) for op in hits}
    assert kinds == {
        cirq.DepolarizingChannel,
        cirq.AmplitudeDampingChannel,
        cirq.PhaseDampingChannel,
    }
    strengths = [op.gate for op in hits]
    assert all(0 < _strength(g) <= level for g in strengths)
    if placement == "gate":  # only qubits a gate touched in the moment before
        for index, moment in enumerate(noisy):
            if moment and all(NOISE_TAG in op.tags for op in moment):
                touched = {q for op in noisy[index - 1] for q in op.qubits}
                assert {q for op in moment for q in op.qubits} <= touched


def _strength(gate: cirq.Gate) -> float:
    for attr in ("p", "gamma"):
        if hasattr(gate, attr):
            return float(getattr(gate, attr))
    raise AssertionError(gate)


def test_sparse_noise_is_seeded_and_restarts_with_every_circuit() -> None:
    from lret_runner.circuits import random_circuit

    circuit = random_circuit(n_qubits=6, depth=30, seed=1)
    model = build_noise_model("sparse", level=0.2, seed=5)
    first = add_noise(circuit, model)
    assert add_noise(circuit, model) == first  # the same model again: the same noise
    assert add_noise(circuit, build_noise_model("sparse", level=0.2, seed=5)) == first
    assert add_noise(circuit, build_noise_model("sparse", level=0.2, seed=6)) != first
    only = build_noise_model("sparse", level=0.5, channels=["bit_flip"])
    assert {type(op.gate) for op in _sparse_ops(add_noise(circuit, only))} == {cirq.BitFlipChannel}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(channels=["depolarising"]), r"noise.channels\[0\]='depolarising' is invalid"),
        (dict(channels=[]), r"noise.channels is empty"),
        (dict(seed=-1), r"noise.seed=-1"),
        (dict(level=1.5), r"noise.level=1.5"),
        (dict(t1=1e-6), r"noise.t1=1e-06 is invalid: the sparse model does not use t1"),
    ],
)
def test_sparse_noise_refuses_bad_keys(kwargs: dict, message: str) -> None:
    with pytest.raises(NoiseError, match=message):
        build_noise_model("sparse", **{"level": 0.01, **kwargs})


@pytest.mark.parametrize("key", ["seed", "channels"])
def test_only_the_sparse_model_takes_its_keys(key: str) -> None:
    value = 1 if key == "seed" else ["bit_flip"]
    with pytest.raises(NoiseError, match=f"noise.{key}=.*only the sparse model takes {key}"):
        build_noise_model("depolarizing", level=0.01, **{key: value})


# --------------------------------------------------------------------------- what a file means

ADDER_DEFINED = """OPENQASM 2.0;
include "qelib1.inc";
gate maj a,b,c { cx c,b; cx c,a; ccx a,b,c; }
gate uma a,b,c { ccx a,b,c; cx c,a; cx a,b; }
qreg q[4];
x q[1]; h q[2];
maj q[0],q[1],q[2];
cx q[2],q[3];
uma q[0],q[1],q[2];
"""
ADDER_INLINED = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
x q[1]; h q[2];
cx q[2],q[1]; cx q[2],q[0]; ccx q[0],q[1],q[2];
cx q[2],q[3];
ccx q[0],q[1],q[2]; cx q[2],q[0]; cx q[0],q[1];
"""


@pytest.mark.parametrize("placement", ["gate", "moment"])
@pytest.mark.parametrize("name", ["depolarizing", "amplitude_damping", "thermal"])
def test_a_custom_gate_is_noisy_like_its_inlined_gates(tmp_path, name: str, placement: str) -> None:
    """User-defined gates are expanded before noise is added: the file written with them
    and the file written inline have the same noisy density matrix (Cirq's, 1e-12)."""
    from lret_runner.circuits import from_qasm

    strength = {"level": 0.03} if name != "thermal" else {"t1": 20e-6, "t2": 30e-6}
    model = build_noise_model(name, placement=placement, **strength)
    rhos = []
    for label, text in (("defined", ADDER_DEFINED), ("inlined", ADDER_INLINED)):
        path = tmp_path / f"{label}.qasm"
        path.write_text(text)
        rhos.append(final_rho(add_noise(from_qasm(path=path), model)))
    np.testing.assert_allclose(rhos[0], rhos[1], atol=1e-12)


def test_a_three_qubit_gate_gets_the_three_qubit_depolarizing_channel() -> None:
    """Depolarizing after a Toffoli acts on its three qubits jointly: from |110> the CCX
    gives |111>; each non-identity Pauli has weight p/63 and each flip pattern is made by 8
    of the 64 Paulis, so every other basis state gets 8p/63 (closed form)."""
    p = 0.09
    circuit = cirq.Circuit(cirq.X(Q[0]), cirq.X(Q[1]), cirq.CCX(*Q))
    model = build_noise_model("depolarizing", level=p)
    noisy = add_noise(cirq.Circuit(cirq.CCX(*Q)), model)  # from |110>, no X and its noise
    probs = np.diagonal(final_rho(noisy, initial=0b110)).real
    expected = np.full(8, 8 * p / 63)
    expected[0b111] = 1 - 7 * 8 * p / 63
    np.testing.assert_allclose(probs, expected, atol=1e-12)
    assert len(noise_ops(add_noise(circuit, model))) == 3  # X, X (one-qubit) and the CCX's


def test_terminal_measurements_move_to_the_end_before_idle_noise(tmp_path) -> None:
    """A file that measures a qubit early, then keeps working on the others: under
    placement=moment no noise acts on the measured qubit after its measurement (the
    measurement is moved to the last moment), and the run compiles."""
    from lret_runner.circuits import from_qasm
    from lret_runner.simulators.base import compile_circuit

    path = tmp_path / "early.qasm"
    path.write_text(
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\ncreg c[3];\nh q[0];\n'
        "measure q[0] -> c[0];\ncx q[1],q[2];\nh q[2];\ncx q[1],q[2];\n"
        "measure q[1] -> c[1];\nmeasure q[2] -> c[2];\n"
    )
    noisy = add_noise(
        from_qasm(path=path), build_noise_model("depolarizing", level=0.01, placement="moment")
    )
    assert all(cirq.is_measurement(op) for op in noisy[-1])
    assert cirq.is_measurement(noisy[-1].operations[0]) and len(noisy[-1]) == 3
    assert not any(cirq.is_measurement(op) for m in noisy[:-1] for op in m)
    assert compile_circuit(noisy).clbits == ("c[0]", "c[1]", "c[2]")
