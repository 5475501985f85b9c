"""FDM: the exact full density matrix, the reference engine.

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

from lret_runner.metrics import Dense, apply_local, rank
from lret_runner.simulators.base import (
    CompiledCircuit,
    Engine,
    EngineOutput,
    ProgressCallback,
    check_dense_memory,
    check_dtype,
)

# rho, the contraction's output and numpy's transposed operand live at once
WORKING_FACTOR = 3.0
# fuse operations into superoperators on at most this many qubits (16 x 16 matrices)
FUSE_MAX_QUBITS = 2
# the final rank needs an eigendecomposition; above this size it would cost more than the run
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


class _Fuser:
    """Pending superoperators on disjoint qubit sets, multiplied together before they touch rho."""

    def __init__(self, rho: np.ndarray, n: int) -> None:
        self.rho, self.n = rho, n
        self.pending: dict[tuple[int, ...], np.ndarray] = {}

    def add(self, targets: tuple[int, ...], sup: np.ndarray) -> None:
        touched = [t for t in self.pending if set(t) & set(targets)]
        span = tuple(sorted(set(targets).union(*touched)))
        if len(span) > FUSE_MAX_QUBITS:
            for t in touched:
                self._apply(t, self.pending.pop(t))
            self.pending[targets] = sup
            return
        fused = _embed(sup, targets, span)
        for t in touched:  # disjoint, so their order does not matter; all act before ``sup``
            fused = fused @ _embed(self.pending.pop(t), t, span)
        self.pending[span] = fused

    def sandwich(self, targets: tuple[int, ...], kraus: Sequence[np.ndarray]) -> None:
        """rho <- sum_i K_i rho K_i^dagger, after the pending operations it overlaps."""
        for t in [t for t in self.pending if set(t) & set(targets)]:
            self._apply(t, self.pending.pop(t))
        cols = tuple(t + self.n for t in targets)
        terms = (apply_local(apply_local(self.rho, k, targets), k.conj(), cols) for k in kraus)
        total = next(terms)
        for term in terms:
            total += term
        self.rho = total

    def flush(self) -> np.ndarray:
        for t, sup in self.pending.items():
            self._apply(t, sup)
        self.pending.clear()
        return self.rho

    def _apply(self, targets: tuple[int, ...], sup: np.ndarray) -> None:
        self.rho = apply_local(self.rho, sup, _pair_axes(targets, self.n))


class FdmSimulator(Engine):
    """Exact density-matrix engine (4^n memory). Refuses, before allocating, what does not fit."""

    name = "fdm"

    def __init__(self, *, dtype: str = "complex128") -> None:
        self.dtype = check_dtype(dtype)

    def check_qubits(self, n_qubits: int) -> None:
        """Refuse, before allocating, a dense state that does not fit in free memory."""
        check_dense_memory(self.name, n_qubits, self.dtype, WORKING_FACTOR)

    def _run(self, prog: CompiledCircuit, progress: ProgressCallback) -> EngineOutput:
        n = prog.n_qubits
        check_dense_memory(self.name, n, self.dtype, WORKING_FACTOR)
        rho = np.zeros((2,) * (2 * n), dtype=self.dtype)
        rho[(0,) * (2 * n)] = 1.0
        fuser = _Fuser(rho, n)
        for done, moment in enumerate(prog.moments, start=1):
            for ins in moment:
                if len(ins.targets) > FUSE_MAX_QUBITS:
                    fuser.sandwich(ins.targets, ins.kraus)
                else:
                    fuser.add(ins.targets, superoperator(ins.kraus))
            progress(done, len(prog.moments))
        rho = fuser.flush()
        state = Dense(np.ascontiguousarray(rho.reshape(2**n, 2**n)))
        return EngineOutput(
            state=state,
            simulation_time_seconds=0.0,
            memory_used_mb=state.matrix.nbytes / 2**20,
            final_rank=rank(state) if n <= RANK_MAX_QUBITS else None,
        )
