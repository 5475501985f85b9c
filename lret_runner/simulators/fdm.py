"""FDM: the exact full density matrix, the reference engine.

rho is evolved by :class:`~lret_runner.simulators.dense.Fuser` as its 4^n real Pauli
coefficients: operations on at most two qubits are fused into 16 x 16 real transfer
matrices, each applied as one in-place pass over the coefficients (no transposes on
nearest-neighbour circuits); operations on more than three qubits as Kraus sandwiches.
The complex density matrix is formed once, at the end.
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
from lret_runner.simulators.dense import RANK_MAX_QUBITS, Fuser, blas_controller

# complex copies of rho that live at once: the coefficients and a transposing copy's target
# (half a copy each), the complex result and its transposed copy at the end (2.5), and the
# Kraus sandwiches of an operation on more than three qubits (rho, their sum, a product and
# NumPy's transposed operand, 4, briefly)
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
        fuser = Fuser.ground(n, self.dtype)
        for done, moment in enumerate(prog.moments, start=1):
            for ins in moment:
                fuser.apply(ins)
            progress(done, len(prog.moments))
        rho = fuser.flush()
        state = Dense(np.ascontiguousarray(rho.reshape(2**n, 2**n)))
        final_rank = None
        if n <= RANK_MAX_QUBITS:
            # one BLAS thread: on a busy machine OpenBLAS's spinning threads made these
            # eigendecompositions 3-250x slower (1024 x 1024: 1.7-52 s against 0.2-0.6 s)
            with blas_controller().limit(limits=1, user_api="blas"):
                final_rank = rank(state)
        return EngineOutput(
            state=state,
            simulation_time_seconds=0.0,
            memory_used_mb=state.matrix.nbytes / 2**20,
            final_rank=final_rank,
        )
