"""FDM: the exact full density matrix, the reference engine.

rho is a tensor with 2n axes (n row axes, then n column axes). A gate is two
contractions (U on the row axes, U* on the column axes); a channel is ONE
contraction with its superoperator S = sum_i K_i (x) K_i^* on the 2k axes it acts
on, instead of k Kraus sandwiches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lret_runner.metrics import Dense, apply_local, rank
from lret_runner.simulators.base import (
    DTYPES,
    Engine,
    EngineOutput,
    ProgressCallback,
    check_dense_memory,
    compile_circuit,
)

if TYPE_CHECKING:
    import cirq

# rho, the contraction's output and numpy's transposed operand live at once
WORKING_FACTOR = 3.0
# the final rank needs an eigendecomposition; above this size it would cost more than the run
RANK_MAX_QUBITS = 11


def superoperator(kraus: Sequence[np.ndarray]) -> np.ndarray:
    """S with S[(a,b),(c,d)] = sum_i K_i[a,c] conj(K_i[b,d]) acting on vec(rho) = rho[a,b]."""
    d = kraus[0].shape[0]
    s = sum(np.einsum("ac,bd->abcd", k, k.conj()) for k in kraus)
    return np.asarray(s).reshape(d * d, d * d)


def _pair_axes(targets: tuple[int, ...], n: int) -> tuple[int, ...]:
    return targets + tuple(t + n for t in targets)


class FdmSimulator(Engine):
    """Exact density-matrix engine (4^n memory). Refuses, before allocating, what does not fit."""

    name = "fdm"

    def __init__(self, *, dtype: str = "complex128") -> None:
        if dtype not in DTYPES:
            raise ValueError(f"backend.dtype={dtype!r} is invalid: choose one of {tuple(DTYPES)}")
        self.dtype = DTYPES[dtype]

    def _run(
        self,
        circuit: cirq.Circuit,
        qubits: Sequence[cirq.Qid] | None,
        progress: ProgressCallback,
    ) -> EngineOutput:
        prog = compile_circuit(circuit, qubits, self.dtype)
        n = prog.n_qubits
        check_dense_memory(self.name, n, self.dtype, WORKING_FACTOR)
        rho = np.zeros((2,) * (2 * n), dtype=self.dtype)
        rho[(0,) * (2 * n)] = 1.0
        for done, moment in enumerate(prog.moments, start=1):
            for ins in moment:
                if ins.is_channel:
                    rho = apply_local(rho, superoperator(ins.kraus), _pair_axes(ins.targets, n))
                else:
                    u = ins.kraus[0]
                    rho = apply_local(rho, u, ins.targets)
                    rho = apply_local(rho, u.conj(), tuple(t + n for t in ins.targets))
            progress(done, len(prog.moments))
        state = Dense(np.ascontiguousarray(rho.reshape(2**n, 2**n)))
        return EngineOutput(
            state=state,
            simulation_time_seconds=0.0,
            memory_used_mb=state.matrix.nbytes / 2**20,
            final_rank=rank(state) if n <= RANK_MAX_QUBITS else None,
        )
