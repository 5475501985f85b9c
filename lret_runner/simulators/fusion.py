"""Gate fusion for the pure-state side of the engines: consecutive gates multiplied into
blocks on a few qubits, each applied to the state in one pass, by its structure.

Every pass over a state (LRET's factor L, the noiseless state vector) costs the same
memory traffic, so fewer passes is faster. :class:`GateFuser` keeps a frontier of pending
blocks on disjoint qubits: a gate joins the blocks it touches while their qubits together
number at most ``max_qubits`` (as qsim and Aer fuse), otherwise those blocks are released,
in order, to be applied. A block on qubits nothing else touches waits: gates on disjoint
qubits commute, and so do a channel or a truncation on other qubits (or on the rank axis).

:func:`apply_block` applies a block by what its matrix is: a diagonal one (Z, S, T, CZ,
phase rotations and their products) multiplies the state in place; a monomial one (a
permutation with phases: X, Y, CNOT, SWAP, ...) moves slices of the state into a spare
array, without arithmetic; any other goes through a matrix product.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lret_runner.metrics import apply_local

if TYPE_CHECKING:
    from collections.abc import Callable

# blocks on at most this many qubits (a 2 x 2 block: 4 multiply-adds per amplitude)
MAX_QUBITS = 2


@dataclass
class Block:
    """A product of gates: ``matrix`` on ``qubits`` (ascending; the first the most significant
    bit of the matrix's index, as every instruction's matrix)."""

    qubits: tuple[int, ...]
    matrix: np.ndarray

    @functools.cached_property
    def diagonal(self) -> bool:
        """Whether the block only multiplies each basis state by a phase (Z, S, T, CZ, ...)."""
        return np.count_nonzero(self.matrix - np.diag(np.diagonal(self.matrix))) == 0


class GateFuser:
    """Gates in, blocks out (see the module docstring)."""

    def __init__(self, max_qubits: int = MAX_QUBITS) -> None:
        self.max_qubits = max_qubits
        self.pending: list[Block] = []  # disjoint qubit sets, in the order they were opened

    def add(self, qubits: tuple[int, ...], matrix: np.ndarray) -> list[Block]:
        """Take a gate; the blocks to apply before it can wait (usually none)."""
        touched = [b for b in self.pending if set(b.qubits) & set(qubits)]
        span = tuple(sorted(set(qubits).union(*(b.qubits for b in touched))))
        if len(span) > self.max_qubits and touched:  # too wide: release what it touches
            self.pending = [b for b in self.pending if b not in touched]
            self.pending.append(Block(*_sorted(qubits, matrix)))
            return touched
        fused = embed(matrix, qubits, span)
        for b in touched:  # disjoint and all earlier than the gate
            fused = fused @ embed(b.matrix, b.qubits, span)
        self.pending = [b for b in self.pending if b not in touched]
        self.pending.append(Block(span, fused))
        return []

    def release(self, qubits: Iterable[int] | None = None) -> list[Block]:
        """The pending blocks on any of ``qubits`` (all of them: None), to apply now."""
        wanted = None if qubits is None else set(qubits)
        out = [b for b in self.pending if wanted is None or wanted & set(b.qubits)]
        self.pending = [b for b in self.pending if b not in out]
        return out


def _sorted(qubits: tuple[int, ...], matrix: np.ndarray) -> tuple[tuple[int, ...], np.ndarray]:
    span = tuple(sorted(qubits))
    return span, embed(matrix, qubits, span)


def embed(matrix: np.ndarray, qubits: tuple[int, ...], span: tuple[int, ...]) -> np.ndarray:
    """``matrix`` on ``qubits`` as an operator on ``span`` (a superset), identity elsewhere."""
    if qubits == span:
        return matrix
    if len(span) == 2:  # the common cases, without a contraction
        if len(qubits) == 2:  # the pair in the other order
            return matrix.reshape(2, 2, 2, 2).transpose(1, 0, 3, 2).reshape(4, 4)
        identity = np.eye(2, dtype=matrix.dtype)
        return np.kron(matrix, identity) if qubits[0] == span[0] else np.kron(identity, matrix)
    k = len(span)
    identity = np.eye(2**k, dtype=matrix.dtype).reshape((2,) * k + (2**k,))
    positions = tuple(span.index(q) for q in qubits)
    return apply_local(identity, matrix, positions).reshape(2**k, 2**k)


def apply_block(
    state: np.ndarray,
    block: Block,
    spare: np.ndarray | None,
    dense: Callable[[np.ndarray, np.ndarray, tuple[int, ...]], np.ndarray],
) -> tuple[np.ndarray, np.ndarray | None]:
    """``block`` applied to ``state`` (a tensor with one axis per qubit, then any trailing
    axes such as LRET's rank axis): ``(new state, spare array)``.

    ``spare`` is an array of the state's shape and dtype that may be overwritten (None: one
    is allocated when needed); the state and the spare may trade places. ``dense(state,
    matrix, qubits)`` applies a matrix without structure."""
    m = block.matrix
    qubits = block.qubits
    if block.diagonal:  # in place
        shape = [2 if a in qubits else 1 for a in range(state.ndim)]
        state *= np.diagonal(m).reshape(shape)
        return state, spare
    nonzero = m != 0
    if (nonzero.sum(axis=1) == 1).all() and (nonzero.sum(axis=0) == 1).all():  # monomial
        if spare is None or spare.shape != state.shape or spare.dtype != state.dtype:
            spare = np.empty_like(state)
        columns = nonzero.argmax(axis=1)
        for row, column in enumerate(columns):
            np.multiply(
                state[_slice(qubits, column, state.ndim)],
                m[row, column],
                out=spare[_slice(qubits, row, state.ndim)],
            )
        return spare, state
    return dense(state, m, qubits), spare


def _slice(qubits: tuple[int, ...], index: int, ndim: int) -> tuple[int | slice, ...]:
    """The part of a state where ``qubits`` hold the bits of ``index`` (big-endian)."""
    where: list[int | slice] = [slice(None)] * ndim
    k = len(qubits)
    for j, q in enumerate(qubits):
        where[q] = (index >> (k - 1 - j)) & 1
    return tuple(where)
