"""The external reference: ``cirq.DensityMatrixSimulator`` on the same noisy circuit."""

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
from lret_runner.simulators.dense import RANK_MAX_QUBITS

# Cirq keeps rho, a buffer of the same size and a scratch copy per Kraus operator
WORKING_FACTOR = 4.0


class CirqSimulator(Engine):
    """Runs Cirq's density-matrix simulator; terminal measurements are dropped (counts are
    sampled from the final diagonal, as for the other engines)."""

    name = "cirq"

    def __init__(self, *, dtype: str = "complex128", seed: int | None = None) -> None:
        self.dtype = check_dtype(dtype)
        self.seed = seed

    def check_qubits(self, n_qubits: int) -> None:
        """Refuse, before allocating, a dense state that does not fit in free memory."""
        check_dense_memory(self.name, n_qubits, self.dtype, WORKING_FACTOR)

    def _run(self, prog: CompiledCircuit, progress: ProgressCallback) -> EngineOutput:
        import cirq

        order, circuit = list(prog.qubits), prog.circuit  # compiled: measurements are terminal
        check_dense_memory(self.name, len(order), self.dtype, WORKING_FACTOR)
        unmeasured = cirq.Circuit(
            cirq.Moment(op for op in moment if not cirq.is_measurement(op)) for moment in circuit
        )
        sim = cirq.DensityMatrixSimulator(dtype=self.dtype, seed=self.seed)
        total = len(unmeasured)
        step = None
        steps = sim.simulate_moment_steps(unmeasured, qubit_order=order)
        for done, step in enumerate(steps, start=1):  # noqa: B007 (the last step is kept)
            progress(done, total)
        if step is None:  # an empty circuit: |0..0><0..0|
            matrix = np.zeros((2 ** len(order),) * 2, dtype=self.dtype)
            matrix[0, 0] = 1.0
        else:
            matrix = np.array(step.density_matrix(copy=True))
        state = Dense(matrix)
        return EngineOutput(
            state=state,
            simulation_time_seconds=0.0,
            memory_used_mb=matrix.nbytes / 2**20,
            final_rank=rank(state) if len(order) <= RANK_MAX_QUBITS else None,
        )
