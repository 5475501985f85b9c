"""The compiled kernel for LRET's large factors (simulators/kernel.py): a block applied in
place equals NumPy's product (``apply_local``, an independent tensordot), and an lret run
through the kernel equals Cirq's density matrix."""

from __future__ import annotations

import cirq
import numpy as np
import pytest

from lret_runner.metrics import apply_local
from lret_runner.simulators import kernel
from lret_runner.simulators.fusion import Block
from lret_runner.simulators.lret import LretSimulator, apply_blocked

N = 7


def random_unitary(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)) + 1j * rng.standard_normal((d, d)))
    return q * (np.diagonal(r) / np.abs(np.diagonal(r)))


@pytest.mark.parametrize("dtype, tol", [(np.complex128, 1e-13), (np.complex64, 1e-5)])
@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("targets", [(0,), (6,), (3,), (0, 1), (1, 0), (5, 6), (6, 2), (2, 4)])
def test_a_block_in_place_equals_numpy(targets, rank, dtype, tol) -> None:
    rng = np.random.default_rng(len(targets) * 10 + rank)
    shape = (2,) * N + (rank,)
    factor = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    matrix = random_unitary(2 ** len(targets), rng)
    expected = apply_local(factor.astype(np.complex128), matrix, targets)
    work = factor.copy()
    out = kernel.apply_dense(work, matrix, targets)
    assert out is work  # in place
    assert np.abs(out - expected).max() < tol


def test_a_non_contiguous_factor_is_mixed_on_a_copy() -> None:
    rng = np.random.default_rng(3)
    base = rng.standard_normal((2,) * N + (2,)) + 1j * rng.standard_normal((2,) * N + (2,))
    view = np.moveaxis(base, 0, 3)  # what a channel's moveaxis leaves behind
    matrix = random_unitary(4, rng)
    expected = apply_local(view, matrix, (2, 5))
    out = kernel.apply_dense(view, matrix, (2, 5))
    assert out.flags.c_contiguous
    assert np.abs(out - expected).max() < 1e-13


def test_the_kernel_is_loaded_only_once_numpy_has_taken_its_load_time(monkeypatch) -> None:
    rng = np.random.default_rng(4)
    monkeypatch.setattr(kernel, "MIN_ENTRIES", 1)
    monkeypatch.setattr(kernel, "_numpy_seconds", [0.0])
    monkeypatch.setattr(kernel, "LOAD_SECONDS", float("inf"))
    kernel._compiled.cache_clear()
    factor = rng.standard_normal((2,) * N + (2,)) + 0j
    block = Block((1, 4), random_unitary(4, rng))
    out, _ = kernel.apply(factor.copy(), block, None, apply_blocked)
    assert kernel._compiled.cache_info().currsize == 0  # numpy did it, and was timed
    assert kernel._numpy_seconds[0] > 0
    monkeypatch.setattr(kernel, "LOAD_SECONDS", 0.0)
    again, _ = kernel.apply(factor.copy(), block, None, apply_blocked)
    assert kernel._compiled.cache_info().currsize == 1  # now the kernel
    assert np.abs(out - again).max() < 1e-13


def test_an_lret_run_through_the_kernel_equals_cirq(monkeypatch) -> None:
    monkeypatch.setattr(kernel, "MIN_ENTRIES", 1)
    monkeypatch.setattr(kernel, "LOAD_SECONDS", 0.0)
    qubits = cirq.LineQubit.range(6)
    circuit = cirq.testing.random_circuit(qubits, n_moments=24, op_density=0.8, random_state=5)
    noisy = circuit.with_noise(cirq.amplitude_damp(0.03))
    out = LretSimulator(rank_threshold=0.0).run(noisy, qubits=qubits)
    rho = out.state.factor @ out.state.factor.conj().T
    expected = cirq.DensityMatrixSimulator(dtype=np.complex128).simulate(noisy, qubit_order=qubits)
    assert np.abs(rho - expected.final_density_matrix).max() < 1e-10
