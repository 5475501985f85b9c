"""Gate fusion (simulators/fusion.py): blocks applied in the order released give the state
the gates give one by one (checked against Cirq's unitary of the same circuit), whatever
their structure (diagonal, monomial, dense), qubit order or trailing axes."""

from __future__ import annotations

import cirq
import numpy as np
import pytest

from lret_runner.metrics import apply_local
from lret_runner.simulators.fusion import Block, GateFuser, apply_block

N = 5


def random_unitary(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)) + 1j * rng.standard_normal((d, d)))
    return q * (np.diagonal(r) / np.abs(np.diagonal(r)))


QUBITS = cirq.LineQubit.range(N)
GATES = [
    lambda rng, a, b, c: cirq.H(a),
    lambda rng, a, b, c: cirq.X(a),
    lambda rng, a, b, c: cirq.Y(a),
    lambda rng, a, b, c: cirq.S(a),
    lambda rng, a, b, c: cirq.T(a),
    lambda rng, a, b, c: cirq.rx(rng.uniform(0, 6)).on(a),
    lambda rng, a, b, c: cirq.CNOT(a, b),
    lambda rng, a, b, c: cirq.CZ(a, b),
    lambda rng, a, b, c: cirq.SWAP(a, b),
    lambda rng, a, b, c: cirq.ISWAP(a, b),
    lambda rng, a, b, c: cirq.CCX(a, b, c),
    lambda rng, a, b, c: cirq.MatrixGate(random_unitary(4, rng)).on(a, b),
]


def random_ops(seed: int, count: int = 40) -> list[cirq.Operation]:
    rng = np.random.default_rng(seed)
    ops = []
    for _ in range(count):
        a, b, c = (QUBITS[i] for i in rng.choice(N, size=3, replace=False))
        ops.append(GATES[rng.integers(len(GATES))](rng, a, b, c))
    return ops


def fused_state(ops: list[cirq.Operation], state: np.ndarray, max_qubits: int) -> np.ndarray:
    """``state`` (axes: N qubits, then a trailing axis) after ``ops``, fused."""
    fuser, spare = GateFuser(max_qubits), None
    index = {q: i for i, q in enumerate(QUBITS)}
    for op in ops:
        targets = tuple(index[q] for q in op.qubits)
        for block in fuser.add(targets, cirq.unitary(op)):
            assert len(block.qubits) <= max(max_qubits, 3)
            state, spare = apply_block(state, block, spare, apply_local)
    for block in fuser.release():
        state, spare = apply_block(state, block, spare, apply_local)
    assert fuser.pending == []
    return state


@pytest.mark.parametrize("max_qubits", [1, 2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_fused_blocks_give_the_unfused_state(seed: int, max_qubits: int) -> None:
    ops = random_ops(seed)
    rng = np.random.default_rng(100 + seed)
    columns = rng.standard_normal((2**N, 3)) + 1j * rng.standard_normal((2**N, 3))
    expected = cirq.Circuit(ops).unitary(qubit_order=QUBITS) @ columns  # independent
    state = fused_state(ops, columns.reshape((2,) * N + (3,)).copy(), max_qubits)
    np.testing.assert_allclose(state.reshape(2**N, 3), expected, atol=1e-12)


def test_blocks_wait_until_something_needs_their_qubits() -> None:
    fuser = GateFuser(2)
    assert fuser.add((0,), cirq.unitary(cirq.H)) == []
    assert fuser.add((0, 1), cirq.unitary(cirq.CNOT)) == []  # the H joins the CNOT's block
    assert fuser.add((3,), cirq.unitary(cirq.T)) == []
    (released,) = fuser.add((1, 2), cirq.unitary(cirq.CZ))  # too wide: the (0, 1) block goes
    assert released.qubits == (0, 1)
    assert [b.qubits for b in fuser.release([2])] == [(1, 2)]  # a channel on qubit 2
    assert [b.qubits for b in fuser.release()] == [(3,)]


def test_each_structure_takes_its_path() -> None:
    rng = np.random.default_rng(0)
    state = rng.standard_normal((2, 2, 2, 4)) + 0j
    calls = []

    def dense(s, m, q):
        calls.append(q)
        return apply_local(s, m, q)

    diagonal = Block((0, 2), np.diag([1, 1j, -1, 1j]).astype(complex))
    out, spare = apply_block(state.copy(), diagonal, None, dense)
    assert spare is None and calls == []  # in place
    monomial = Block((1,), np.array([[0, 1j], [1, 0]], dtype=complex))  # X with a phase
    out2, spare = apply_block(out, monomial, None, dense)
    assert spare is out and out2 is not out and calls == []  # the state and spare trade
    general = Block((1, 2), random_unitary(4, rng))
    out3, spare = apply_block(out2, general, spare, dense)
    assert calls == [(1, 2)]
    expected = apply_local(
        apply_local(apply_local(state, diagonal.matrix, (0, 2)), monomial.matrix, (1,)),
        general.matrix,
        (1, 2),
    )
    np.testing.assert_allclose(out3, expected, atol=1e-12)
