"""The dense fuser (``simulators/dense.py``: rho as real Pauli coefficients, fused transfer
matrices, in-place chunked passes) against independent references: Cirq's
``DensityMatrixSimulator`` and Qiskit Aer's density matrix. Correctness only, no timings.

Tolerances: 1e-10 in complex128 (the references and fdm agree to ~1e-15), 1e-5 in
complex64."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cirq
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lret_runner import metrics
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators import FdmSimulator, LretSimulator, compile_circuit, costs
from lret_runner.simulators import dense as dense_module
from lret_runner.simulators.dense import Fuser, transfer_matrix

EXACT = 1e-10
SINGLE = 1e-5  # complex64


def random_unitary(d: int, rng: np.random.Generator) -> np.ndarray:
    z = rng.standard_normal((d, d)) + 1j * rng.standard_normal((d, d))
    q, r = np.linalg.qr(z)
    return q * (np.diag(r) / abs(np.diag(r)))


def random_kraus(d: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A random channel: the blocks of a random (count d) x d isometry (neither unitary nor
    a Pauli channel)."""
    v = random_unitary(count * d, rng)[:, :d]
    return [v[i * d : (i + 1) * d] for i in range(count)]


def random_operation(qubits: list[cirq.Qid], size: int, rng: np.random.Generator) -> cirq.Operation:
    """A random gate or channel on ``size`` random qubits, in a random order."""
    targets = [qubits[i] for i in rng.choice(len(qubits), size=size, replace=False)]
    d = 2**size
    if rng.random() < 0.5:
        return cirq.MatrixGate(random_unitary(d, rng)).on(*targets)
    count = int(rng.integers(2, 5))
    return cirq.KrausChannel(random_kraus(d, count, rng)).on(*targets)


def random_noisy_circuit(n: int, depth: int, seed: int, sizes: tuple[int, ...]) -> cirq.Circuit:
    rng = np.random.default_rng(seed)
    qubits = cirq.LineQubit.range(n)
    ops = [random_operation(qubits, int(rng.choice(sizes)), rng) for _ in range(depth)]
    ops.append(cirq.amplitude_damp(0.3).on(qubits[int(rng.integers(n))]))
    return cirq.Circuit(ops)  # one operation per moment where they overlap


def cirq_rho(circuit: cirq.Circuit, n: int, initial: np.ndarray | None = None) -> np.ndarray:
    sim = cirq.DensityMatrixSimulator(dtype=np.complex128)
    state = 0 if initial is None else initial
    result = sim.simulate(circuit, qubit_order=cirq.LineQubit.range(n), initial_state=state)
    return result.final_density_matrix


def fdm_rho(circuit: cirq.Circuit, n: int, dtype: str = "complex128") -> np.ndarray:
    out = FdmSimulator(dtype=dtype).run(circuit, qubits=cirq.LineQubit.range(n))
    return metrics.dense(out.state)


# ------------------------------------------------------------------ transfer matrices
@pytest.mark.parametrize("size", [1, 2, 3])
def test_transfer_matrix_acts_as_the_channel(size: int) -> None:
    """R c = the Pauli coefficients of the channel's output, for random inputs."""
    rng = np.random.default_rng(size)
    d = 2**size
    kraus = random_kraus(d, 3, rng)
    a = rng.standard_normal((d, d)) + 1j * rng.standard_normal((d, d))
    rho = a @ a.conj().T
    out = sum(k @ rho @ k.conj().T for k in kraus)
    paulis = [cirq.unitary(p) for p in (cirq.I, cirq.X, cirq.Y, cirq.Z)]
    strings = [np.ones((1, 1))]
    for _ in range(size):
        strings = [np.kron(s, p) for s in strings for p in paulis]

    def coefficients(m: np.ndarray) -> np.ndarray:
        return np.array([np.trace(s @ m) for s in strings])

    r = transfer_matrix(kraus)
    assert r.dtype == np.float64 and r.shape == (4**size, 4**size)
    assert np.abs(r @ coefficients(rho).real - coefficients(out)).max() < EXACT


def test_depolarizing_is_diagonal() -> None:
    r = transfer_matrix([np.asarray(k) for k in cirq.kraus(cirq.depolarize(0.09))])
    assert np.allclose(r, np.diag([1, 1 - 0.12, 1 - 0.12, 1 - 0.12]), atol=1e-14)


# ------------------------------------------------------------------ fdm against Cirq
@pytest.mark.parametrize(
    ("n", "sizes", "seed"),
    [
        (5, (1,), 0),
        (5, (2,), 1),  # pairs in random order, mostly not adjacent: axis moves
        (6, (1, 2), 2),
        (6, (1, 2, 3), 3),  # three-qubit operations: 64 x 64 transfer matrices
        (6, (2, 4), 4),  # four-qubit operations: Kraus sandwiches
        (7, (1, 2, 3, 5), 5),
    ],
)
def test_random_gates_and_channels_agree_with_cirq(n: int, sizes: tuple, seed: int) -> None:
    circuit = random_noisy_circuit(n, 14, seed, sizes)
    assert np.abs(fdm_rho(circuit, n) - cirq_rho(circuit, n)).max() < EXACT


def test_complex64_agrees_with_cirq() -> None:
    circuit = random_noisy_circuit(6, 14, 6, (1, 2, 3, 4))
    rho = fdm_rho(circuit, 6, dtype="complex64")
    assert rho.dtype == np.complex64
    assert np.abs(rho - cirq_rho(circuit, 6)).max() < SINGLE


@pytest.mark.parametrize("model", ["depolarizing", "amplitude_damping", "phase_damping"])
def test_noise_models_on_a_layered_circuit_agree_with_cirq(model: str) -> None:
    from lret_runner.circuits import layered

    noisy = add_noise(layered(n_qubits=6, layers=4, seed=3), build_noise_model(model, level=0.05))
    assert np.abs(fdm_rho(noisy, 6) - cirq_rho(noisy, 6)).max() < EXACT


@pytest.mark.parametrize("threads", [1, 2])
def test_small_chunks_and_threads_change_nothing(
    monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    """Chunks much smaller than rho (every branch of ``matmul_inplace``: the matrix on the
    last axes, whole slices per chunk, column blocks of one slice), shared among threads."""
    monkeypatch.setattr(dense_module, "CHUNK", 64)
    monkeypatch.setattr(dense_module, "_PARALLEL_MIN", 1)
    circuit = random_noisy_circuit(6, 12, 7, (1, 2, 3))
    with threadpool_limits(limits=threads, user_api="blas"):
        rho = fdm_rho(circuit, 6)
    assert np.abs(rho - cirq_rho(circuit, 6)).max() < EXACT


# ------------------------------------------------------------------ the fuser's interface
def test_starts_from_any_state_and_goes_on_after_a_flush() -> None:
    """LRET's dense phase: a fuser from a mixed state, flushed midway (a try to return to the
    factor) and continued."""
    n = 5
    rng = np.random.default_rng(8)
    a = rng.standard_normal((2**n, 3)) + 1j * rng.standard_normal((2**n, 3))
    rho = a @ a.conj().T
    rho /= np.trace(rho)
    first = random_noisy_circuit(n, 8, 9, (1, 2, 3))
    second = random_noisy_circuit(n, 8, 10, (2, 4))
    fuser = Fuser(rho.reshape((2,) * (2 * n)), n)
    assert np.abs(fuser.flush().reshape(2**n, 2**n) - rho).max() < EXACT  # round trip
    for part in (first, second):
        for moment in compile_circuit(part, cirq.LineQubit.range(n)).moments:
            for ins in moment:
                fuser.apply(ins)
        middle = fuser.flush().reshape(2**n, 2**n)
        rho = cirq_rho(part, n, initial=rho)
        assert np.abs(middle - rho).max() < EXACT


def test_dry_run_records_the_passes_the_real_one_makes() -> None:
    """Moves, transfer-matrix passes, Kraus sandwiches and the final change of basis."""
    n = 6
    prog = compile_circuit(random_noisy_circuit(n, 16, 11, (1, 2, 3, 4)))
    real, plan = Fuser.ground(n, np.complex128), Fuser(None, n)
    for moment in prog.moments:
        for ins in moment:
            real.apply(ins)
            plan.apply(ins)
    real.flush()
    plan.flush()
    assert real.applied == plan.applied
    assert {p.kind for p in plan.applied} == {"ptm", "move", "kraus", "basis"}
    assert all(
        len(p.qubits) <= dense_module.PTM_MAX_QUBITS for p in plan.applied if p.kind == "ptm"
    )
    assert costs.passes_seconds(2**n, plan.applied) > 0


def test_a_nearest_neighbour_brick_is_fused_into_one_pass_per_pair_and_never_moves() -> None:
    """ry, rz, a CNOT brick and depolarizing noise after every gate: after the first layer,
    one 16 x 16 pass per pair of a layer (and the edge qubits a brick leaves out)."""
    n = 6
    q = cirq.LineQubit.range(n)
    layers = 4
    moments = []
    for layer in range(layers):
        moments.append(cirq.Moment(cirq.ry(0.1 * i + layer).on(q[i]) for i in range(n)))
        moments.append(cirq.Moment(cirq.rz(0.2 * i + layer).on(q[i]) for i in range(n)))
        moments.append(cirq.Moment(cirq.CNOT(q[i], q[i + 1]) for i in range(layer % 2, n - 1, 2)))
    noisy = add_noise(cirq.Circuit(moments), build_noise_model("depolarizing", level=0.01))
    plan = Fuser(None, n)
    for moment in compile_circuit(noisy).moments:
        for ins in moment:
            plan.apply(ins)
    plan.flush()
    kinds = [p.kind for p in plan.applied]
    assert "move" not in kinds and kinds[-1] == "basis"
    assert kinds.count("ptm") <= layers * (n // 2 + 1)
    assert np.abs(fdm_rho(noisy, n) - cirq_rho(noisy, n)).max() < EXACT


# ------------------------------------------------------------------ LRET's dense phase
@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_lret_that_goes_dense_agrees_with_cirq(dtype: str) -> None:
    from lret_runner.circuits import random_circuit

    n = 8
    circuit = add_noise(
        random_circuit(n_qubits=n, depth=12, seed=5),
        build_noise_model("depolarizing", level=0.02, placement="gate"),
    )
    circuit.append(cirq.Moment(cirq.amplitude_damp(0.2).on(q) for q in cirq.LineQubit.range(n)))
    out = LretSimulator(rank_threshold=0, dtype=dtype).run(circuit)
    assert [s["to"] for s in out.representation_switches] == ["dense"]
    tolerance = EXACT if dtype == "complex128" else SINGLE
    assert np.abs(metrics.dense(out.state) - cirq_rho(circuit, n)).max() < tolerance


# ------------------------------------------------------------------ against Qiskit Aer
def test_layered_depolarizing_circuit_agrees_with_aer() -> None:
    """The benchmark's circuits (benchmarks/bench_dense.py: ry, rz, CNOT brick; Cirq's
    depolarize(p) and depolarize(p, n_qubits=2) after every gate) against Aer's density
    matrix with its NoiseModel (depolarizing_error(4p/3, 1), depolarizing_error(16p/15, 2)),
    as the benchmark runs it: what the benchmark times is the same density matrix."""
    pytest.importorskip("qiskit_aer")
    bench = _bench_dense()
    p = 0.02
    theta = bench.angles(5, 3, 12)
    seconds, aer = bench.aer_run(theta, p, explicit=False)
    assert aer is not None
    noisy = add_noise(bench.cirq_circuit(theta), build_noise_model("depolarizing", level=p))
    assert np.abs(fdm_rho(noisy, 5) - aer).max() < EXACT


def _bench_dense():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_dense.py"
    spec = importlib.util.spec_from_file_location("bench_dense", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
