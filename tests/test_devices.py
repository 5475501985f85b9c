"""Device noise (``noise=device``): the device files, the model against Qiskit Aer's
``NoiseModel.from_backend`` (density matrices and readout probabilities), scale, layout,
idle relaxation, refusals, the importer and ``lret-runner device``."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cirq
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lret_runner import experiment, metrics
from lret_runner.devices import (
    DATA_DIR,
    Device,
    dump_device,
    load_device,
    noise_model,
    shipped,
)
from lret_runner.devices.model import ReadoutConfusionChannel
from lret_runner.errors import NoiseError
from lret_runner.noise import NOISE_TAG, add_noise, build_noise_model, is_noise_moment

EXACT = 1e-10
ROOT = Path(__file__).resolve().parents[1]
# circuit qubit i -> device qubit; consecutive circuit qubits are coupled on the device
NAIROBI_CHAIN = [2, 1, 3, 5, 4]


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def measured(circuit: cirq.Circuit) -> cirq.Circuit:
    """``circuit`` with a terminal measurement of every qubit."""
    return circuit + cirq.Circuit(cirq.measure(*sorted(circuit.all_qubits()), key="m"))


def run_engine(noisy: cirq.Circuit, engine: str = "fdm") -> np.ndarray:
    """The final density matrix of ``noisy`` through experiment.prepare_circuit/simulate."""
    params = {"rank_threshold": 0.0} if engine == "lret" else {}
    prepared = experiment.prepare_circuit(noisy, simulator=engine, simulator_params=params)
    _, out = experiment.simulate(prepared)
    return np.asarray(metrics.dense(out.state), dtype=np.complex128)


def without_readout(noisy: cirq.Circuit) -> cirq.Circuit:
    """The noisy circuit up to (not including) its readout and measurement moments."""
    assert cirq.is_measurement(noisy[-1].operations[0])
    assert all(isinstance(op.gate, ReadoutConfusionChannel) for op in noisy[-2])
    return noisy[:-2]


# ---------------------------------------------------------------- native circuits


def native_moments(
    n: int, layers: int, seed: int
) -> list[list[tuple[str, tuple[int, ...], float]]]:
    """Moments of (gate, circuit qubits, angle): a layer of sx/x/rz on every qubit, then
    cx on neighbours (i, i+1) in a random direction, alternating offsets."""
    rng = np.random.default_rng(seed)
    moments = []
    for layer in range(layers):
        ones = []
        for q in range(n):
            gate = ("sx", "x", "rz")[int(rng.integers(3))]
            ones.append((gate, (q,), float(rng.uniform(-math.pi, math.pi))))
        moments.append(ones)
        twos = []
        for a in range(layer % 2, n - 1, 2):
            twos.append(("cx", (a, a + 1) if rng.integers(2) else (a + 1, a), 0.0))
        moments.append(twos)
    return moments


def cirq_circuit(moments, n: int) -> cirq.Circuit:
    q = cirq.LineQubit.range(n)
    gates = {"sx": lambda a: cirq.X**0.5, "x": lambda a: cirq.X, "rz": cirq.rz}
    out = cirq.Circuit()
    for moment in moments:
        ops = [
            cirq.CNOT(q[qs[0]], q[qs[1]]) if name == "cx" else gates[name](angle).on(q[qs[0]])
            for name, qs, angle in moment
        ]
        out.append(cirq.Moment(ops))
    return out


def qiskit_circuit(moments, device: Device, layout: Sequence[int], idle: bool, size: int):
    """The same circuit on the device qubits ``layout`` of a ``size``-qubit register; with
    ``idle``, delays that make every circuit qubit wait for the moment's longest gate."""
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(size)
    for moment in moments:
        busy = dict.fromkeys(range(len(layout)), 0.0)
        for name, qs, angle in moment:
            d = [layout[q] for q in qs]
            if name == "cx":
                qc.cx(*d)
                duration = device.pair(*d).gate_duration
            elif name == "rz":
                qc.rz(angle, d[0])
                duration = 0.0  # virtual
            else:
                getattr(qc, name)(d[0])
                duration = device.qubits[d[0]].gate_duration
            for q in qs:
                busy[q] = duration
        longest = max(busy.values())
        if idle:
            for q, duration in busy.items():
                if longest - duration > 0:
                    qc.delay(longest - duration, layout[q], unit="s")
    return qc


def device_backend(device: Device) -> Any:
    """The device as a Qiskit BackendV2 (its Target holds the same calibrations), for
    ``NoiseModel.from_backend``: sx, x, id and rz (zero error and duration when
    virtual_z) per qubit, cx per directed pair, measure with prob_meas1_prep0 and
    prob_meas0_prep1, delay."""
    from qiskit.circuit import Delay, Measure, Parameter
    from qiskit.circuit.library import CXGate, IGate, RZGate, SXGate, XGate
    from qiskit.providers import BackendV2, Options, QubitProperties
    from qiskit.transpiler import InstructionProperties, Target

    n = device.n_qubits
    target = Target(
        num_qubits=n, qubit_properties=[QubitProperties(t1=q.t1, t2=q.t2) for q in device.qubits]
    )
    for gate in (SXGate(), XGate(), IGate()):
        target.add_instruction(
            gate,
            {
                (i,): InstructionProperties(duration=q.gate_duration, error=q.gate_error)
                for i, q in enumerate(device.qubits)
            },
        )
    assert device.virtual_z
    target.add_instruction(
        RZGate(Parameter("a")),
        {(i,): InstructionProperties(duration=0.0, error=0.0) for i in range(n)},
    )
    assert device.two_qubit_gate == "cx"
    target.add_instruction(
        CXGate(),
        {
            p.qubits: InstructionProperties(duration=p.gate_duration, error=p.gate_error)
            for p in device.pairs
        },
    )
    readout = {}
    for i, q in enumerate(device.qubits):
        prop = InstructionProperties(duration=1e-6, error=q.prob_meas0_prep1)
        prop.prob_meas1_prep0 = q.prob_meas1_prep0  # Aer reads these when present
        prop.prob_meas0_prep1 = q.prob_meas0_prep1
        readout[(i,)] = prop
    target.add_instruction(Measure(), readout)
    target.add_instruction(Delay(Parameter("t")), {(i,): None for i in range(n)})

    class DeviceBackend(BackendV2):
        @property
        def target(self) -> Target:
            return target

        @property
        def max_circuits(self) -> None:
            return None

        @classmethod
        def _default_options(cls) -> Options:
            return Options()

        def run(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    return DeviceBackend(name=device.name)


def kraus_form(noise: Any) -> Any:
    """``noise`` with every gate error as one Kraus channel (the same channel).

    Aer's simulator drops the terms of an error's mixture whose probability is at most
    1e-10 (``QuantumError::set_circuits``, a fixed threshold) without renormalising; the
    products of depolarizing and relaxation terms of a two-qubit gate include such terms,
    so Aer's own density matrix is off from its noise model by up to a few 1e-10. As one
    Kraus instruction of probability 1 the channel is applied whole. The delay pass (idle
    relaxation) is kept as it is: its terms are far above the threshold."""
    from qiskit.quantum_info import Kraus
    from qiskit_aer.noise import NoiseModel, QuantumError

    exact = NoiseModel(basis_gates=noise.basis_gates)
    for name, errors in noise._local_quantum_errors.items():
        for qubits, error in errors.items():
            exact.add_quantum_error(QuantumError(Kraus(error.to_quantumchannel())), name, qubits)
    exact._custom_noise_passes = list(noise._custom_noise_passes)
    return exact


def big_endian(rho: Any, n: int) -> np.ndarray:
    """A Qiskit density matrix (qubit 0 least significant) in Cirq's order (qubit 0 most)."""
    t = np.asarray(rho).reshape([2] * (2 * n))
    perm = [*range(n)][::-1] + [n + i for i in range(n)][::-1]
    return t.transpose(perm).reshape(2**n, 2**n)


def aer_rho(qc: Any, noise: Any, qubits: Sequence[int]) -> np.ndarray:
    """Aer's density matrix of device ``qubits`` (in that order) in Cirq's qubit order."""
    from qiskit_aer import AerSimulator

    qc = qc.copy()
    qc.save_density_matrix(qubits=list(qubits))
    sim = AerSimulator(method="density_matrix", noise_model=noise)
    rho = sim.run(qc, shots=1, seed_simulator=1).result().data()["density_matrix"]
    return big_endian(rho, len(qubits))


def aer_readout(noise: Any) -> dict[int, np.ndarray]:
    """Aer's readout-error probabilities per device qubit: P[prepared, measured]."""
    out = {}
    for error in noise.to_dict()["errors"]:
        if error["type"] == "roerror":
            (qubits,) = error["gate_qubits"]
            out[qubits[0]] = np.asarray(error["probabilities"], dtype=float)
    return out


def confused(probabilities: np.ndarray, matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Probabilities (qubit 0 most significant) after each qubit's confusion matrix."""
    n = len(matrices)
    t = probabilities.reshape([2] * n)
    for axis, m in enumerate(matrices):
        t = np.moveaxis(np.tensordot(m.T, t, axes=([1], [axis])), 0, axis)
    return t.reshape(-1)


# ---------------------------------------------------------------- against Qiskit Aer

AER_CASES = [
    # device, circuit qubits, layout (None: device qubit i), idle, engine
    ("fake_manila", 4, None, False, "fdm"),
    ("fake_manila", 4, None, True, "lret"),
    ("fake_manila", 3, [2, 3, 4], True, "fdm"),
    ("fake_nairobi", 5, NAIROBI_CHAIN, False, "lret"),
    ("fake_nairobi", 5, NAIROBI_CHAIN, True, "fdm"),
    ("fake_nairobi", 3, [6, 5, 3], True, "cirq"),
]


@pytest.mark.parametrize("name, n, layout, idle, engine", AER_CASES)
def test_density_matrix_matches_aer_from_backend(name, n, layout, idle, engine) -> None:
    """sx, x, rz and cx circuits: our density matrix (without the readout moment) is Aer's
    with NoiseModel.from_backend of the same device to 1e-10 (its errors as Kraus channels,
    see :func:`kraus_form`; as from_backend makes them, within Aer's 1e-10 truncation of
    each two-qubit error); idle relaxation is Aer's relaxation on explicit delays."""
    pytest.importorskip("qiskit_aer")
    from qiskit_aer.noise import NoiseModel

    device = load_device(name)
    places = list(range(n)) if layout is None else layout
    moments = native_moments(n, layers=4, seed=n + 10 * len(name) + int(idle))
    circuit = cirq_circuit(moments, n)
    model = build_noise_model("device", device=name, layout=layout, idle=idle)
    noisy = add_noise(measured(circuit), model)
    ours = run_engine(without_readout(noisy), engine)
    aer_noise = NoiseModel.from_backend(device_backend(device))
    qc = qiskit_circuit(moments, device, places, idle, device.n_qubits)
    deviation = np.abs(ours - aer_rho(qc, kraus_form(aer_noise), places)).max()
    truncated = np.abs(ours - aer_rho(qc, aer_noise, places)).max()
    noiseless = run_engine(circuit, "fdm")
    print(
        f"{name} n={n} layout={layout} idle={idle} {engine}: max |ours - aer| = "
        f"{deviation:.2e} (Kraus form), {truncated:.2e} (from_backend's mixtures)"
    )
    assert deviation < EXACT
    assert truncated < 20 * EXACT  # Aer drops terms of probability <= 1e-10
    assert np.abs(ours - noiseless).max() > 1e-3  # the noise is there


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("error", [0.0, 1e-5, 3e-3, 0.2, 0.7, 0.79, 0.95, 1.0])
@pytest.mark.parametrize("duration", [0.0, 5e-8, 4e-6, 3e-4])
def test_depolarizing_parameter_is_aers(n: int, error: float, duration: float) -> None:
    """Aer's _device_depolarizing_error, clipping included (error above d/(d+1), the
    parameter above 4^n/(4^n-1), an error below the relaxation's), for T2 < T1 and T2 > T1."""
    pytest.importorskip("qiskit_aer")
    from qiskit_aer.noise.device.models import (
        _device_depolarizing_error,
        _device_thermal_relaxation_error,
    )

    from lret_runner.devices.model import depolarizing_parameter, relaxation_fidelity

    device = load_device("fake_nairobi")  # qubit 0: T2 < T1, qubit 1: T2 > T1
    qubits = (0, 1)[:n]
    params = {q: (device.qubits[q].t1, device.qubits[q].t2, None) for q in qubits}
    relax = _device_thermal_relaxation_error(qubits, duration, params, 0)
    expected = _device_depolarizing_error(qubits, error, relax)
    aer = 0.0 if expected is None else 4**n * expected.probabilities[1]  # lambda / 4^n each
    ours = depolarizing_parameter(error, relaxation_fidelity(device, qubits, duration), n)
    assert ours == pytest.approx(aer, abs=1e-12)


def test_readout_probabilities_match_aer_through_prepare(compose, tmp_path: Path) -> None:
    """A QASM file through compose + prepare + simulate (noise=device, a layout): the
    distribution the counts are sampled from is Aer's density matrix under the same gate
    noise with Aer's readout-error probabilities applied; Aer's sampled counts agree."""
    pytest.importorskip("qiskit_aer")
    from qiskit import QuantumCircuit, qasm2
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel

    text = (
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[5];\n'
        "sx q[0];\nx q[1];\nrz(0.4) q[2];\nsx q[2];\nx q[4];\n"
        "cx q[0],q[1];\ncx q[3],q[2];\nsx q[3];\ncx q[2],q[3];\ncx q[4],q[3];\nrz(-1.1) q[1];\n"
        "sx q[1];\n"
    )
    path = tmp_path / "native.qasm"
    path.write_text(text)
    layout = NAIROBI_CHAIN
    cfg = compose(
        [
            "circuit=qasm",
            f"circuit.path={path}",
            "noise=device",
            "noise.device=fake_nairobi",
            f"noise.layout=[{','.join(map(str, layout))}]",
            "noise.idle=false",
            "simulator=fdm",
            "run.shots=2000",
            "tracking=none",
        ]
    )
    result, out = experiment.simulate(experiment.prepare(cfg))
    ours = metrics.probabilities(out.state)
    assert sum(result.counts.values()) == 2000

    device = load_device("fake_nairobi")
    aer_noise = NoiseModel.from_backend(device_backend(device))
    qc = QuantumCircuit(device.n_qubits)
    loaded = qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    qc.compose(loaded, qubits=layout, inplace=True)
    rho = aer_rho(qc, kraus_form(aer_noise), layout)
    matrices = [aer_readout(aer_noise)[d] for d in layout]
    for d, m in zip(layout, matrices, strict=True):  # Aer keeps the asymmetric confusion
        q = device.qubits[d]
        assert m[1, 0] == q.prob_meas0_prep1 and m[0, 1] == q.prob_meas1_prep0
    expected = confused(np.real(np.diagonal(rho)), matrices)
    deviation = np.abs(ours - expected).max()
    print(f"readout: max |P_ours - P_aer| = {deviation:.2e}")
    assert deviation < EXACT
    # Aer's sampled counts (clbit i = circuit qubit i, printed last-first) agree
    qc.measure_all()  # measures every device qubit: marginalise to the layout's
    shots = 20000
    counts = AerSimulator(noise_model=aer_noise).run(qc, shots=shots, seed_simulator=7)
    freq = np.zeros(2 ** len(layout))
    for key, count in counts.result().get_counts().items():
        bits = key.replace(" ", "")[::-1]  # bits[k] = device qubit k
        freq[int("".join(bits[d] for d in layout), 2)] += count / shots
    assert np.all(np.abs(freq - ours) <= 5 * np.sqrt(ours * (1 - ours) / shots) + 2 / shots)


def test_readout_confusion_is_the_calibrated_one() -> None:
    """P(0|1) = prob_meas0_prep1 and P(1|0) = prob_meas1_prep0 on each measured qubit."""
    device = load_device("fake_manila")
    q = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(cirq.X(q[1]), cirq.measure(*q, key="m"))
    model = build_noise_model("device", device="fake_manila", scale=0.0)
    assert add_noise(circuit, model) == circuit  # scale 0: noiseless, readout included
    noisy = add_noise(circuit, noise_model(_readout_only(device)))
    assert len(noisy) == 3 and is_noise_moment(noisy[1])  # X, readout, measurement
    probs = np.real(np.diagonal(run_engine(noisy[:2])))
    p0, p1 = device.qubits[0], device.qubits[1]
    expected = np.kron(
        [1 - p0.prob_meas1_prep0, p0.prob_meas1_prep0],
        [p1.prob_meas0_prep1, 1 - p1.prob_meas0_prep1],
    )
    np.testing.assert_allclose(probs, expected, atol=1e-14)
    kraus = cirq.kraus(ReadoutConfusionChannel(0.1, 0.3))
    np.testing.assert_allclose(sum(k.conj().T @ k for k in kraus), np.eye(2), atol=1e-14)
    assert len(cirq.kraus(ReadoutConfusionChannel(0.1, 0.0))) == 2  # zero operators left out


def _readout_only(device: Device) -> Device:
    """The device without gate errors and relaxation: only readout."""
    qubits = tuple(
        dataclasses.replace(q, gate_error=0.0, t1=math.inf, t2=math.inf) for q in device.qubits
    )
    pairs = tuple(dataclasses.replace(p, gate_error=0.0) for p in device.pairs)
    return dataclasses.replace(device, qubits=qubits, pairs=pairs)


@pytest.mark.parametrize("name", ["fake_manila", "fake_nairobi"])
def test_snapshot_is_the_fake_backend(name: str) -> None:
    """The shipped snapshot gives Aer's from_backend(FakeXxxV2) gate noise to 1e-10.

    Readout differs by design: the fake backend's Target has the symmetric readout_error
    only (the mean of the two), which Aer uses both ways; the snapshot keeps the
    asymmetric P(0|1), P(1|0) of the same properties."""
    pytest.importorskip("qiskit_aer")
    fake_provider = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    from qiskit_aer.noise import NoiseModel

    backend = getattr(fake_provider, "Fake" + name[5:].capitalize() + "V2")()
    device = load_device(name)
    aer_noise = NoiseModel.from_backend(backend)
    n, places = 4, ([0, 1, 2, 3] if name == "fake_manila" else NAIROBI_CHAIN[:4])
    moments = native_moments(n, layers=3, seed=5)
    noisy = add_noise(
        measured(cirq_circuit(moments, n)),
        build_noise_model("device", device=name, layout=places, idle=False),
    )
    ours = run_engine(without_readout(noisy))
    qc = qiskit_circuit(moments, device, places, False, device.n_qubits)
    assert np.abs(ours - aer_rho(qc, kraus_form(aer_noise), places)).max() < EXACT
    for d, m in aer_readout(aer_noise).items():
        q = device.qubits[d]
        mean = (q.prob_meas0_prep1 + q.prob_meas1_prep0) / 2
        assert m[0, 1] == pytest.approx(mean, abs=1e-12) and m[1, 0] == pytest.approx(mean)


# ---------------------------------------------------------------- scale, layout, idle


def test_scale_zero_is_the_noiseless_circuit() -> None:
    circuit = measured(cirq_circuit(native_moments(5, 3, seed=1), 5))
    model = build_noise_model("device", device="fake_manila", scale=0)
    assert model.is_noiseless
    assert add_noise(circuit, model) == circuit


def test_scale_two_doubles_the_rates() -> None:
    """scale=2 is the device with every error rate doubled and T1, T2 halved."""
    device = load_device("fake_manila")
    doubled = dataclasses.replace(
        device,
        qubits=tuple(
            dataclasses.replace(
                q,
                t1=q.t1 / 2,
                t2=q.t2 / 2,
                prob_meas0_prep1=2 * q.prob_meas0_prep1,
                prob_meas1_prep0=2 * q.prob_meas1_prep0,
                gate_error=2 * q.gate_error,
            )
            for q in device.qubits
        ),
        pairs=tuple(dataclasses.replace(p, gate_error=2 * p.gate_error) for p in device.pairs),
    )
    circuit = measured(cirq_circuit(native_moments(4, 3, seed=2), 4))
    scaled = add_noise(circuit, build_noise_model("device", device="fake_manila", scale=2))
    assert scaled == add_noise(circuit, noise_model(doubled))
    np.testing.assert_allclose(
        run_engine(scaled[:-1]),
        run_engine(add_noise(circuit, noise_model(doubled))[:-1]),
        atol=1e-13,
    )
    # the readout channel and the relaxation of an X on qubit 0 (a 35.6 ns sx-calibrated gate)
    (readout,) = [op for op in scaled[-2] if op.qubits == (cirq.LineQubit(0),)]
    assert readout.gate.p01 == pytest.approx(2 * device.qubits[0].prob_meas0_prep1, rel=1e-14)
    one = add_noise(
        cirq.Circuit(cirq.X(cirq.LineQubit(0)), cirq.measure(cirq.LineQubit(0))),
        build_noise_model("device", device="fake_manila", scale=2),
    )
    relax = [op.gate for m in one if is_noise_moment(m) for op in m if hasattr(op.gate, "gamma")]
    q0 = device.qubits[0]
    assert relax[0].gamma == pytest.approx(1 - math.exp(-2 * q0.gate_duration / q0.t1), rel=1e-12)


def test_a_scale_that_pushes_a_readout_error_past_one_is_refused() -> None:
    with pytest.raises(
        NoiseError,
        match=r"noise.scale=20 is invalid for fake_manila: qubit 0's "
        r"prob_meas0_prep1 0.0548 x 20 = 1.096 is more than 1.*largest scale is 8.15",
    ):
        build_noise_model("device", device="fake_manila", scale=20)
    with pytest.raises(NoiseError, match=r"noise.scale=-1 is invalid: must be >= 0"):
        build_noise_model("device", device="fake_manila", scale=-1)


def test_layout_maps_circuit_qubits_to_device_qubits() -> None:
    """Circuit qubit i takes device qubit layout[i]'s calibration (and its readout)."""
    device = load_device("fake_manila")
    q = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(cirq.X(q[0]), cirq.X(q[1]), cirq.CNOT(q[1], q[0]), cirq.measure(*q))
    noisy = add_noise(
        circuit, build_noise_model("device", device=device, layout=[3, 2], idle=False)
    )
    gates = [op for m in noisy if is_noise_moment(m) for op in m]
    relax = {
        op.qubits[0]: op.gate
        for op in gates[:4]
        if len(op.qubits) == 1 and hasattr(op.gate, "gamma")
    }
    for circuit_qubit, device_qubit in ((0, 3), (1, 2)):
        cal = device.qubits[device_qubit]
        expected = 1 - math.exp(-cal.gate_duration / cal.t1)
        assert relax[q[circuit_qubit]].gamma == pytest.approx(expected, rel=1e-12)
    # the CNOT(q1, q0) runs on device qubits (2, 3): the [2, 3] calibration's duration
    pair = device.pair(2, 3)
    two = [op.gate for op in gates if hasattr(op.gate, "gamma") and op.gate not in relax.values()]
    cal3 = device.qubits[3]
    assert any(g.gamma == pytest.approx(1 - math.exp(-pair.gate_duration / cal3.t1)) for g in two)
    readout = {op.qubits[0]: op.gate for op in noisy[-2]}
    assert readout[q[0]].p01 == device.qubits[3].prob_meas0_prep1
    assert readout[q[1]].p10 == device.qubits[2].prob_meas1_prep0


def test_idle_qubits_relax_for_the_longest_gate() -> None:
    """idle=true: a qubit untouched by a moment relaxes for its longest gate (a cx);
    idle=false: it gets nothing."""
    device = load_device("fake_manila")
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(cirq.Moment(cirq.CNOT(q[0], q[1])), cirq.measure(*q))
    busy = add_noise(circuit, build_noise_model("device", device="fake_manila"))
    relax = {op.qubits[0]: op.gate for op in busy[2]}
    cal = device.qubits[2]
    expected = 1 - math.exp(-device.pair(0, 1).gate_duration / cal.t1)
    assert relax[q[2]].gamma == pytest.approx(expected, rel=1e-12)
    lazy = add_noise(circuit, build_noise_model("device", device="fake_manila", idle=False))
    assert q[2] not in {op.qubits[0] for op in lazy[2]}


def test_virtual_z_gates_are_noiseless_and_take_no_time() -> None:
    q = cirq.LineQubit.range(2)
    diagonal = [cirq.rz(0.3), cirq.Z, cirq.S, cirq.T, cirq.S**-1, cirq.Z**0.1]
    for gate in diagonal:
        circuit = cirq.Circuit(gate.on(q[0]), cirq.measure(*q))
        noisy = add_noise(circuit, build_noise_model("device", device="fake_manila"))
        assert noisy[0] == circuit[0] and len(noisy) == 3, gate  # the gate, readout, measure
    # the identity is a calibrated gate (IBM's id), so is any non-diagonal one
    for gate in (cirq.I, cirq.H, cirq.Y**0.5):
        circuit = cirq.Circuit(gate.on(q[0]), cirq.measure(*q))
        noisy = add_noise(circuit, build_noise_model("device", device="fake_manila"))
        assert len(noisy) > 3, gate


def test_noise_moments_follow_the_noise_model_conventions() -> None:
    circuit = measured(
        cirq.Circuit(cirq.X(cirq.LineQubit(0)) ** 0.5, cirq.CNOT(*cirq.LineQubit.range(2)))
    )
    noisy = add_noise(circuit, build_noise_model("device", device="fake_manila"))
    for moment in noisy:
        if is_noise_moment(moment):
            assert all(NOISE_TAG in op.tags and not cirq.has_unitary(op) for op in moment)
        else:
            assert not any(NOISE_TAG in op.tags for op in moment)
    assert noisy[-1] == circuit[-1]  # the measurement last, nothing after it
    # a moment mixing gates and measurements is split, readout just before the measurement
    a, b = cirq.LineQubit.range(2)
    mixed = cirq.Circuit(cirq.Moment(cirq.X(a), cirq.measure(b, key="b")))
    noisy = add_noise(mixed, build_noise_model("device", device="fake_manila"))
    assert noisy[0] == cirq.Moment(cirq.X(a))
    assert noisy[-1] == cirq.Moment(cirq.measure(b, key="b"))
    assert {op.qubits for op in noisy[-2]} == {(b,)}
    # the noisy circuit compiles and runs on every engine, which agree
    circuit = measured(cirq_circuit(native_moments(3, 2, seed=4), 3))
    noisy = add_noise(circuit, build_noise_model("device", device="fake_manila"))
    rhos = [run_engine(noisy, e) for e in ("fdm", "lret", "cirq")]
    assert max(np.abs(r - rhos[0]).max() for r in rhos) < EXACT


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "layout, message",
    [
        ([0, 1], r"noise.layout=\[0, 1\] is invalid for a circuit of 3 qubits: it places 2"),
        ([0, 1, 1], r"noise.layout=\[0, 1, 1\] is invalid: device qubit 1 is repeated"),
        (
            [0, 1, 5],
            r"noise.layout=\[0, 1, 5\] is invalid: device qubit 5 does not exist "
            r"\(fake_manila has qubits 0..4\)",
        ),
        ([0, "a", 2], r"noise.layout=\[0, 'a', 2\] is invalid: 'a' is not a device qubit"),
    ],
)
def test_bad_layouts_are_refused(layout: list, message: str) -> None:
    circuit = measured(cirq_circuit(native_moments(3, 1, seed=0), 3))
    with pytest.raises(NoiseError, match=message):
        add_noise(circuit, build_noise_model("device", device="fake_manila", layout=layout))


def test_a_circuit_larger_than_the_device_is_refused() -> None:
    circuit = measured(cirq.Circuit(cirq.X(q) for q in cirq.LineQubit.range(6)))
    with pytest.raises(
        NoiseError,
        match=r"noise.layout=null .* for a circuit of 6 qubits: "
        r"fake_manila has 5",
    ):
        add_noise(circuit, build_noise_model("device", device="fake_manila"))


def test_an_uncoupled_pair_is_refused_naming_the_pair_and_the_layout() -> None:
    q = cirq.LineQubit.range(3)
    circuit = measured(cirq.Circuit(cirq.CNOT(q[0], q[1]), cirq.CNOT(q[0], q[2])))
    with pytest.raises(
        NoiseError,
        match=r"noise.layout=null \(circuit qubit i on device qubit i\): the circuit's "
        r"CNOT\(q\(0\), q\(2\)\) on circuit qubits \(0, 2\) runs on device qubits \(0, 2\), "
        r"which fake_manila does not couple \(its coupled pairs: 0-1, 1-2, 2-3, 3-4\)",
    ):
        add_noise(circuit, build_noise_model("device", device="fake_manila"))
    with pytest.raises(
        NoiseError,
        match=r"noise.layout=\[1, 3, 2\]: .* on circuit qubits "
        r"\(0, 1\) runs on device qubits \(1, 3\)",
    ):
        add_noise(circuit, build_noise_model("device", device="fake_manila", layout=[1, 3, 2]))
    # a pair listed in one direction only serves both
    one_way = dataclasses.replace(
        load_device("fake_manila"), pairs=(load_device("fake_manila").pair(0, 1),)
    )
    add_noise(measured(cirq.Circuit(cirq.CNOT(q[1], q[0]))), noise_model(one_way))


def test_an_uncoupled_pair_is_refused_before_anything_is_recorded(compose, fresh_store, tmp_path):
    from lret_runner.tracking import MlflowTracker

    tracker = MlflowTracker(f"sqlite:///{fresh_store}")
    cfg = compose(["circuit=ghz", "circuit.n_qubits=3", "noise=device", "noise.layout=[0,2,1]"])
    with pytest.raises(NoiseError, match=r"noise.layout=\[0, 2, 1\]: the circuit's CNOT"):
        experiment.run(experiment.prepare(cfg), tracker, output_dir=tmp_path / "out")
    assert tracker.queries.summaries(tracker.queries.experiment_ids()) == []
    assert not (tmp_path / "out").exists()


def test_a_gate_on_three_qubits_is_refused_naming_it() -> None:
    circuit = measured(cirq.Circuit(cirq.CCX(*cirq.LineQubit.range(3))))
    with pytest.raises(
        NoiseError,
        match=r"the circuit's gate TOFFOLI\(q\(0\), q\(1\), q\(2\)\) "
        "acts on 3 qubits",
    ):
        add_noise(circuit, build_noise_model("device", device="fake_manila"))


def test_readout_noise_without_measurement_is_refused() -> None:
    circuit = cirq.Circuit(cirq.X(cirq.LineQubit(0)))
    with pytest.raises(
        NoiseError,
        match=r"noise=device \(fake_manila\) has readout errors .*"
        r"circuit.measure=false",
    ):
        add_noise(circuit, build_noise_model("device", device="fake_manila"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(level=0.1), r"noise.level=0.1 is invalid: the device model does not use level"),
        (dict(placement="moment"), r"noise.placement='moment' is invalid: the device model"),
        (dict(gate_time_1q=1e-9), r"noise.gate_time_1q=1e-09 is invalid"),
        (dict(components=[{"name": "bit_flip"}]), r"noise.components=.* is invalid"),
        (dict(idle="yes"), r"noise.idle='yes' is invalid: must be true or false"),
    ],
)
def test_keys_of_other_models_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(NoiseError, match=message):
        build_noise_model("device", device="fake_manila", **kwargs)


def test_device_keys_on_other_models_and_a_missing_device_are_refused() -> None:
    with pytest.raises(NoiseError, match=r"noise.scale=2 is invalid: only the device model"):
        build_noise_model("depolarizing", level=0.1, scale=2)
    with pytest.raises(
        NoiseError,
        match=r"noise.device is missing: name a shipped device "
        r"\(fake_manila, fake_nairobi\)",
    ):
        build_noise_model("device")
    with pytest.raises(NoiseError, match=r"noise.device='nowhere.yaml' is invalid: it is neither"):
        build_noise_model("device", device="nowhere.yaml")
    with pytest.raises(NoiseError, match=r"noise.components\[0\].name='device' is invalid"):
        build_noise_model("composite", components=[{"name": "device"}])


# ---------------------------------------------------------------- device files


def good_data() -> dict:
    return {
        "name": "toy",
        "source": "made up for the tests",
        "n_qubits": 3,
        "qubits": [
            {
                "t1": 1e-4,
                "t2": 8e-5,
                "prob_meas0_prep1": 0.02,
                "prob_meas1_prep0": 0.01,
                "gate_error": 3e-4,
                "gate_duration": 3.5e-8,
            }
            for _ in range(3)
        ],
        "pairs": [
            {"qubits": [0, 1], "gate_error": 0.01, "gate_duration": 3e-7},
            {"qubits": [2, 1], "gate_error": 0.02, "gate_duration": 4e-7},
        ],
    }


def _set(path: str, value: Any) -> Any:
    def change(data: dict) -> None:
        *parents, last = re.findall(r"\w+", path)
        node: Any = data
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return change


_DELETE = object()

BAD_FILES = [
    # (change, field and value in the message)
    (
        _set("qubits.2", _DELETE),
        r"qubits has 2 entries but n_qubits=3: the entry of qubit 2 is missing",
    ),
    (_set("qubits.1.t1", _DELETE), r"qubits\[1\].t1 is missing"),
    (
        _set("qubits.1.t2", 2.5e-4),
        r"qubits\[1\].t2=0.00025 is invalid: T2 must be <= 2\*T1 = 0.0002",
    ),
    (
        _set("qubits.0.prob_meas0_prep1", -0.1),
        r"qubits\[0\].prob_meas0_prep1=-0.1 is invalid: a rate",
    ),
    (
        _set("pairs.1.gate_error", 1.5),
        r"pairs\[1\].gate_error=1.5 is invalid: a rate must be in \[0, 1\]",
    ),
    (
        _set("qubits.2.gate_duration", 0),
        r"qubits\[2\].gate_duration=0 is invalid: a time must be > 0",
    ),
    (_set("qubits.0.t1", -1e-5), r"qubits\[0\].t1=-1e-05 is invalid: a time must be > 0"),
    (_set("pairs.0.gate_duration", -3e-7), r"pairs\[0\].gate_duration=-3e-07 is invalid"),
    (_set("qubits.0.t2", "long"), r"qubits\[0\].t2='long' is invalid: must be a number"),
    (_set("colour", "blue"), r"colour is not a key of a device file: allowed are name, source"),
    (_set("qubits.1.t3", 1.0), r"qubits\[1\].t3 is not a key of a device file qubits\[1\] entry"),
    (_set("pairs.0.fidelity", 0.9), r"pairs\[0\].fidelity is not a key"),
    (_set("two_qubit_gate", "cnotz"), r"two_qubit_gate='cnotz' is invalid: must be one of cx, cz"),
    (_set("one_qubit_gate", "sqrt_x"), r"one_qubit_gate='sqrt_x' is invalid: must be one of sx"),
    (
        _set("pairs.1.qubits", [2, 7]),
        r"pairs\[1\].qubits=\[2, 7\] is invalid: device qubit 7 does not exist",
    ),
    (_set("pairs.1.qubits", [1, 1]), r"pairs\[1\].qubits=\[1, 1\] is invalid: a pair needs two"),
    (
        _set("pairs.1.qubits", [0, 1]),
        r"pairs\[1\].qubits=\[0, 1\] is invalid: this pair is listed twice",
    ),
    (_set("n_qubits", 0), r"n_qubits=0 is invalid: must be an integer >= 1"),
    (_set("name", _DELETE), r"name is missing \(required: name, n_qubits, qubits, pairs\)"),
    (_set("virtual_z", "yes"), r"virtual_z='yes' is invalid: must be true or false"),
]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize("change, message", BAD_FILES)
def test_bad_device_files_are_refused_naming_file_field_and_value(
    tmp_path: Path, suffix: str, change, message: str
) -> None:
    data = good_data()
    change(data)
    path = tmp_path / f"device{suffix}"
    path.write_text(json.dumps(data) if suffix == ".json" else _yaml(data))
    with pytest.raises(NoiseError, match=re.escape(str(path)) + ": " + message):
        load_device(str(path))
    with pytest.raises(NoiseError, match=re.escape(str(path))):
        build_noise_model("device", device=str(path))


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("bad.yaml", "name: toy\nqubits: [\n", r"is not valid YAML: .* at line 3"),
        ("bad.json", '{"name": "toy",', r"is not valid JSON: .* at line 1"),
        ("list.yaml", "- 1\n- 2\n", r"the file holds list, not a mapping"),
        ("empty.yaml", "", r"the file holds nothing"),
        ("latin1.yaml", b"name: t\xe9\n", r"is not UTF-8 text"),
    ],
)
def test_unreadable_device_files_are_refused(tmp_path: Path, name: str, text: Any, message: str):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(NoiseError, match=re.escape(str(path)) + ".*" + message):
        load_device(path)


def test_a_valid_file_loads_and_round_trips(tmp_path: Path) -> None:
    device = load_device(good_data())
    assert device.n_qubits == 3 and device.couplings() == [(0, 1), (1, 2)]
    assert device.pair(1, 2) is device.pair(2, 1)  # listed as [2, 1]: serves both directions
    assert device.pair(0, 2) is None
    for suffix in (".yaml", ".json"):
        path = tmp_path / f"toy{suffix}"
        path.write_text(dump_device(device, "json" if suffix == ".json" else "yaml"))
        assert load_device(str(path)) == device
    # hand-written YAML numbers without a dot (1e-4) are numbers, as in Hydra configs
    text = _yaml(good_data()).replace("0.0001", "1e-4")
    assert "1e-4" in text
    (tmp_path / "hand.yaml").write_text(text)
    assert load_device(tmp_path / "hand.yaml").qubits[0].t1 == 1e-4


@pytest.mark.parametrize("name", sorted(shipped()))
def test_every_shipped_snapshot_loads(name: str) -> None:
    device = load_device(name)
    assert device.name == name and device.n_qubits in (5, 7)
    assert device.licence == "Apache-2.0" and "qiskit-ibm-runtime" in (device.source or "")
    assert device.virtual_z and device.two_qubit_gate == "cx"
    for a, b in device.couplings():  # both directions calibrated, as on the device
        assert (a, b) in device._pairs and (b, a) in device._pairs
    model = build_noise_model("device", device=name)
    assert not model.is_noiseless


def test_the_snapshots_ship_with_their_notice_and_licence() -> None:
    assert set(shipped()) >= {"fake_manila", "fake_nairobi"}
    notice = (DATA_DIR / "NOTICE").read_text()
    assert "Apache License, Version 2.0" in notice and "qiskit-ibm-runtime" in notice
    assert "Apache License" in (DATA_DIR / "LICENSE-Apache-2.0.txt").read_text()
    package_data = (ROOT / "pyproject.toml").read_text()
    assert '"devices/data/*.yaml"' in package_data and '"devices/data/NOTICE"' in package_data


# ---------------------------------------------------------------- the config


def test_noise_device_composes_and_names_a_file_relative_to_the_launch_dir(compose, tmp_path):
    from lret_runner.config import input_file, result_config

    cfg = compose(["noise=device"])
    assert dict(cfg.noise) == {
        "name": "device",
        "device": "fake_manila",
        "scale": 1.0,
        "layout": None,
        "idle": True,
    }
    assert input_file(cfg, "noise.device") is None  # a shipped name is not a file
    path = tmp_path / "mine.yaml"
    path.write_text(dump_device(load_device(good_data())))
    cfg = compose(["noise=device", f"noise.device={path}", "circuit.n_qubits=3"])
    assert input_file(cfg, "noise.device") == str(path)
    assert "noise_device" in result_config(cfg)["inputs"]  # its digest: an edit is a new run
    prepared = experiment.prepare(
        compose(["noise=device", f"noise.device={path}", "circuit=ghz", "circuit.n_qubits=3"])
    )
    assert prepared.n_qubits == 3


def test_a_relative_device_path_is_taken_from_the_launch_dir(compose, tmp_path: Path) -> None:
    """As circuit.path: made absolute against the launch directory before Hydra may change
    into the output directory (hydra.job.chdir); a shipped name is left alone."""
    from lret_runner.task.terminal import _absolute_inputs

    cfg = compose(["noise=device", "noise.device=mine.yaml"])
    _absolute_inputs(cfg, tmp_path)
    assert cfg.noise.device == str(tmp_path / "mine.yaml")
    cfg = compose(["noise=device", "noise.device=fake_nairobi"])
    _absolute_inputs(cfg, tmp_path)
    assert cfg.noise.device == "fake_nairobi"


# ---------------------------------------------------------------- the importer and the CLI


def properties_of(device: Device) -> dict:
    """The device as Qiskit BackendProperties JSON (what the importer reads)."""

    def nduv(name: str, value: float, unit: str = "") -> dict:
        return {"date": "2024-01-01T00:00:00Z", "name": name, "unit": unit, "value": value}

    gates = []
    for i, q in enumerate(device.qubits):
        for gate in ("id", "sx", "x"):
            params = [
                nduv("gate_error", q.gate_error),
                nduv("gate_length", q.gate_duration * 1e9, "ns"),
            ]
            gates.append({"qubits": [i], "gate": gate, "parameters": params})
        gates.append(
            {
                "qubits": [i],
                "gate": "rz",
                "parameters": [nduv("gate_error", 0), nduv("gate_length", 0, "ns")],
            }
        )
    for p in device.pairs:
        params = [
            nduv("gate_error", p.gate_error),
            nduv("gate_length", p.gate_duration * 1e9, "ns"),
        ]
        gates.append({"qubits": list(p.qubits), "gate": "cx", "parameters": params})
    qubits = [
        [
            nduv("T1", q.t1 * 1e6, "us"),
            nduv("T2", q.t2 * 1e6, "us"),
            nduv("frequency", 5.0, "GHz"),
            nduv("readout_error", (q.prob_meas0_prep1 + q.prob_meas1_prep0) / 2),
            nduv("prob_meas0_prep1", q.prob_meas0_prep1),
            nduv("prob_meas1_prep0", q.prob_meas1_prep0),
        ]
        for q in device.qubits
    ]
    return {
        "backend_name": device.name,
        "backend_version": "1.0",
        "last_update_date": "2024-01-01T00:00:00Z",
        "qubits": qubits,
        "gates": gates,
    }


def _same_numbers(a: Device, b: Device, rel: float = 1e-12) -> None:
    assert a.n_qubits == b.n_qubits and [p.qubits for p in a.pairs] == [p.qubits for p in b.pairs]
    for x, y in [*zip(a.qubits, b.qubits, strict=True), *zip(a.pairs, b.pairs, strict=True)]:
        for f in dataclasses.fields(x):
            if f.name != "qubits":
                assert getattr(x, f.name) == pytest.approx(getattr(y, f.name), rel=rel), f.name


def _cli(args: Sequence[str], capsys) -> tuple[int, str, str]:
    from lret_runner.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["fake_manila", "fake_nairobi"])
def test_the_importer_round_trips_a_properties_json(name: str, tmp_path: Path, capsys) -> None:
    device = load_device(name)
    props = tmp_path / "props.json"
    props.write_text(json.dumps(properties_of(device)))
    out = tmp_path / "imported.yaml"
    code, stdout, err = _cli(
        ["device", "import", str(props), "-o", str(out), "--name", "again"], capsys
    )
    assert code == 0, err
    assert f"wrote {out}" in stdout
    imported = load_device(str(out))
    assert imported.name == "again" and "props.json" in (imported.source or "")
    _same_numbers(imported, device)
    # with a configuration JSON: its coupling map lists the pairs; an existing file is kept
    conf = tmp_path / "conf.json"
    conf.write_text(
        json.dumps(
            {
                "n_qubits": device.n_qubits,
                "coupling_map": [list(p.qubits) for p in device.pairs[:2]],
            }
        )
    )
    code, _, err = _cli(
        ["device", "import", str(props), "--configuration", str(conf), "-o", str(out)], capsys
    )
    assert code == 2 and "exists" in err
    code, _, err = _cli(
        [
            "device",
            "import",
            str(props),
            "--configuration",
            str(conf),
            "-o",
            str(out),
            "--force",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    assert [p.qubits for p in load_device(out).pairs] == [p.qubits for p in device.pairs[:2]]


def test_the_importer_clips_t2_and_reads_units_and_symmetric_readout(tmp_path: Path) -> None:
    from lret_runner.devices.importer import from_properties

    props = properties_of(load_device(good_data()))
    props["qubits"][0][1] = {"name": "T2", "unit": "ns", "value": 3e5}  # 300 us > 2 T1
    props["qubits"][1] = [x for x in props["qubits"][1] if not x["name"].startswith("prob_")]
    device = from_properties(props)
    assert (
        device.qubits[0].t2 == pytest.approx(2e-4)
        and "T2 clipped to 2 T1 on qubits [0]" in device.source
    )
    q1 = device.qubits[1]
    assert q1.prob_meas0_prep1 == q1.prob_meas1_prep0 == pytest.approx(0.015)
    props["gates"] = [g for g in props["gates"] if g["gate"] != "sx" or g["qubits"] != [2]]
    props["gates"] = [
        g for g in props["gates"] if not (g["gate"] in ("x", "id") and g["qubits"] == [2])
    ]
    with pytest.raises(NoiseError, match="qubit 2 has no sx calibration"):
        from_properties(props)


def test_import_from_a_fake_backend(tmp_path: Path, capsys, monkeypatch) -> None:
    """--backend names a fake backend; without qiskit-ibm-runtime it names the extra."""
    import sys

    monkeypatch.setitem(sys.modules, "qiskit_ibm_runtime", None)
    code, _, err = _cli(["device", "import", "--backend", "FakeManilaV2"], capsys)
    assert code == 2 and "pip install 'lret_runner[qiskit]'" in err
    monkeypatch.undo()
    pytest.importorskip("qiskit_ibm_runtime")
    out = tmp_path / "manila.json"
    code, _, err = _cli(["device", "import", "--backend", "fake_manila", "-o", str(out)], capsys)
    assert code == 0, err
    _same_numbers(load_device(out), load_device("fake_manila"), rel=0)


def test_device_list_and_show(capsys) -> None:
    code, out, err = _cli(["device", "list", "--json"], capsys)
    assert code == 0, err
    listed = {d["name"]: d for d in json.loads(out)}
    assert listed["fake_manila"]["n_qubits"] == 5 and listed["fake_nairobi"]["n_qubits"] == 7
    code, out, err = _cli(["device", "list"], capsys)
    assert code == 0 and "fake_nairobi" in out and "7" in out
    code, out, err = _cli(["device", "show", "fake_nairobi"], capsys)
    assert code == 0 and "0-1, 1-2, 1-3, 3-5, 4-5, 5-6" in out
    code, out, err = _cli(["device", "show", "nowhere.yaml"], capsys)
    assert code == 2 and "device='nowhere.yaml' is invalid: it is neither a shipped device" in err
    code, _, err = _cli(["device", "import"], capsys)
    assert code == 2 and "a properties JSON file or --backend NAME" in err


def test_the_api_takes_shipped_devices_only(compose) -> None:
    from lret_runner.api.service import RequestError, _check_device

    _check_device(compose(["noise=device", "noise.device=fake_nairobi"]))
    with pytest.raises(RequestError, match="this server takes the shipped device snapshots only"):
        _check_device(compose(["noise=device", "noise.device=/etc/passwd"]))
