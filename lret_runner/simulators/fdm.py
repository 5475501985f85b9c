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
from lret_runner.simulators.dense import RANK_MAX_QUBITS, Fuser, blas_controller, projector

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

    def _run_dynamic(self, prog: CompiledCircuit, progress: ProgressCallback) -> EngineOutput:
        """A dynamic circuit as an ensemble of branches (``branches.py``)."""
        from lret_runner.simulators import branches

        return branches.run(_Branching(self.dtype), prog, progress)

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


class _Branching:
    """fdm's branches (``branches.py``): each a fuser holding rho in the Pauli basis."""

    def __init__(self, dtype: type) -> None:
        self.dtype = dtype

    def ground(self, prog: CompiledCircuit) -> Fuser:
        check_dense_memory("fdm", prog.n_qubits, self.dtype, WORKING_FACTOR)
        return Fuser.ground(prog.n_qubits, self.dtype)

    def evolve(self, state: Fuser, prog: CompiledCircuit, share: float) -> tuple[Fuser, float]:
        for moment in prog.moments:
            for ins in moment:
                state.apply(ins)
        return state, 0.0

    def project(self, state: Fuser, qubit: int, outcome: int) -> Fuser:
        new = state.copy()
        new.apply(projector(qubit, outcome, self.dtype))
        return new

    def weight(self, state: Fuser) -> float:
        return state.trace()

    def nbytes(self, state: Fuser) -> int:
        return 0 if state.coeffs is None else state.coeffs.nbytes

    def merge(self, a: Fuser, b: Fuser) -> Fuser:
        a.add(b)
        return a

    def scale(self, state: Fuser, factor: float) -> Fuser:
        state.settle()
        state.coeffs *= factor  # type: ignore[operator]
        return state

    def copy(self, state: Fuser) -> Fuser:
        return state.copy()

    def diagonal(self, state: Fuser) -> np.ndarray:
        return state.diagonal()

    def total(self, states: list[Fuser]) -> tuple[Dense, int | None]:
        first = states[0]
        for other in states[1:]:
            first.add(other)
        rho = first.flush()
        assert rho is not None
        dim = 2**first.n
        return Dense(np.ascontiguousarray(rho.reshape(dim, dim))), None
