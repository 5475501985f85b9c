"""Dense density-matrix operations, shared by fdm and LRET's dense phase.

rho is a tensor with 2n axes (n row axes, then n column axes). Every operation is
a superoperator S = sum_i K_i (x) K_i^* (a gate: U (x) U^*) applied as ONE
contraction on the 2k axes it acts on, instead of k Kraus sandwiches. Consecutive
operations whose qubits together span at most ``FUSE_MAX_QUBITS`` are multiplied
into one superoperator first (a gate and the noise after it cost one pass over rho).
An operation on more qubits is applied as Kraus sandwiches K rho K^dagger (two
contractions with the 2^k x 2^k matrix): its superoperator would have 16^k entries
(64 GiB for a Grover oracle on 8 qubits).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lret_runner.metrics import apply_local
from lret_runner.simulators.base import Instruction

# fuse operations into superoperators on at most this many qubits (16 x 16 matrices)
FUSE_MAX_QUBITS = 2
# a dense final state's rank needs its eigendecomposition; above this size it would cost
# more than the run
RANK_MAX_QUBITS = 11


def superoperator(kraus: Sequence[np.ndarray]) -> np.ndarray:
    """S with S[(a,b),(c,d)] = sum_i K_i[a,c] conj(K_i[b,d]) acting on vec(rho) = rho[a,b]."""
    d = kraus[0].shape[0]
    s = sum(np.einsum("ac,bd->abcd", k, k.conj()) for k in kraus)
    return np.asarray(s).reshape(d * d, d * d)


def _pair_axes(targets: tuple[int, ...], n: int) -> tuple[int, ...]:
    return targets + tuple(t + n for t in targets)


def _embed(sup: np.ndarray, targets: tuple[int, ...], span: tuple[int, ...]) -> np.ndarray:
    """The superoperator ``sup`` on ``targets`` as a superoperator on ``span`` (a superset)."""
    k = len(span)
    identity = np.eye(4**k, dtype=sup.dtype).reshape((2,) * (4 * k))
    pos = tuple(span.index(t) for t in targets)
    return apply_local(identity, sup, _pair_axes(pos, k)).reshape(4**k, 4**k)


class Fuser:
    """rho under a stream of instructions: pending superoperators on disjoint qubit sets are
    multiplied together before they touch rho.

    With ``rho=None`` nothing is computed: the fuser only records, in ``applied``, the
    passes over rho it would make (their qubits and whether they are Kraus sandwiches),
    which is what a cost prediction needs."""

    def __init__(self, rho: np.ndarray | None, n: int) -> None:
        self.rho, self.n = rho, n
        self.pending: dict[tuple[int, ...], np.ndarray | None] = {}
        self.applied: list[tuple[tuple[int, ...], int]] = []  # (qubits, Kraus count or 0)

    def apply(self, ins: Instruction) -> None:
        if len(ins.targets) > FUSE_MAX_QUBITS:
            self._sandwich(ins.targets, ins.kraus)
        else:
            self._add(ins.targets, None if self.rho is None else superoperator(ins.kraus))

    def flush(self) -> np.ndarray | None:
        for t, sup in self.pending.items():
            self._apply(t, sup)
        self.pending.clear()
        return self.rho

    def _add(self, targets: tuple[int, ...], sup: np.ndarray | None) -> None:
        touched = [t for t in self.pending if set(t) & set(targets)]
        span = tuple(sorted(set(targets).union(*touched)))
        if len(span) > FUSE_MAX_QUBITS:
            for t in touched:
                self._apply(t, self.pending.pop(t))
            self.pending[targets] = sup
            return
        fused = None if sup is None else _embed(sup, targets, span)
        for t in touched:  # disjoint, so their order does not matter; all act before ``sup``
            other = self.pending.pop(t)
            if fused is not None and other is not None:
                fused = fused @ _embed(other, t, span)
        self.pending[span] = fused

    def _sandwich(self, targets: tuple[int, ...], kraus: Sequence[np.ndarray]) -> None:
        """rho <- sum_i K_i rho K_i^dagger, after the pending operations it overlaps."""
        for t in [t for t in self.pending if set(t) & set(targets)]:
            self._apply(t, self.pending.pop(t))
        self.applied.append((targets, len(kraus)))
        if self.rho is None:
            return
        cols = tuple(t + self.n for t in targets)
        terms = (apply_local(apply_local(self.rho, k, targets), k.conj(), cols) for k in kraus)
        total = next(terms)
        for term in terms:
            total += term
        self.rho = total

    def _apply(self, targets: tuple[int, ...], sup: np.ndarray | None) -> None:
        self.applied.append((targets, 0))
        if self.rho is not None and sup is not None:
            self.rho = apply_local(self.rho, sup, _pair_axes(targets, self.n))
