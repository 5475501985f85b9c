"""FDM: the exact full density matrix, the reference engine.

rho is a tensor with 2n axes, evolved by :class:`~lret_runner.simulators.dense.Fuser`:
one contraction per (fused) superoperator, Kraus sandwiches for operations on more than
two qubits.
"""

from __future__ import annotations

import numpy as np

from lret_runner.metrics import Dense, rank
from lret_runner.simulators.base import (
    CompiledCircuit,
    Engine,
    EngineOutput,
    ProgressCallback,
    check_dense_memory,
    check_dtype,
)
from lret_runner.simulators.dense import RANK_MAX_QUBITS, Fuser

# rho, the contraction's output and numpy's transposed operand live at once
WORKING_FACTOR = 3.0


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
        fuser = Fuser(rho, n)
        for done, moment in enumerate(prog.moments, start=1):
            for ins in moment:
                fuser.apply(ins)
            progress(done, len(prog.moments))
        rho = fuser.flush()
        state = Dense(np.ascontiguousarray(rho.reshape(2**n, 2**n)))
        return EngineOutput(
            state=state,
            simulation_time_seconds=0.0,
            memory_used_mb=state.matrix.nbytes / 2**20,
            final_rank=rank(state) if n <= RANK_MAX_QUBITS else None,
        )
