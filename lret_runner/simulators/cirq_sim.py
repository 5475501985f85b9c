"""The external reference: ``cirq.DensityMatrixSimulator`` on the same noisy circuit.

A dynamic circuit runs through Cirq's own classical control, exactly: ``cirq.defer_measurements``
turns each measurement into a copy onto an ancilla qubit and each classically controlled
operation into one controlled by those ancillas, and the density matrix of system and
ancillas gives the distribution of the classical bits (the ancillas' diagonal) and the
state (the ancillas traced out)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lret_runner.errors import ConfigError
from lret_runner.metrics import Dense, marginal, rank
from lret_runner.simulators.base import (
    CompiledCircuit,
    Engine,
    EngineOutput,
    ProgressCallback,
    check_dense_memory,
    check_dtype,
)
from lret_runner.simulators.dense import RANK_MAX_QUBITS

if TYPE_CHECKING:
    import cirq

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

    def check_memory(self, prog: CompiledCircuit) -> None:
        """A dynamic circuit's density matrix also holds an ancilla per measured qubit, and
        Cirq must be able to defer its measurements."""
        ancillas = 0
        if prog.dynamic:
            ancillas = len(deferred(prog).all_qubits()) - prog.n_qubits
        check_dense_memory(self.name, prog.n_qubits + ancillas, self.dtype, WORKING_FACTOR)

    def _run_dynamic(self, prog: CompiledCircuit, progress: ProgressCallback) -> EngineOutput:
        import cirq

        from lret_runner.circuits import measured_bits

        circuit = deferred(prog)
        ancillas: dict[str, cirq.Qid] = {}  # each classical bit's ancilla
        for op in circuit.all_operations():
            if cirq.is_measurement(op):
                for bit, q in zip(measured_bits(op), op.qubits, strict=True):
                    ancillas[bit] = q
        extra = sorted(circuit.all_qubits() - set(prog.qubits))
        order = list(prog.qubits) + extra
        check_dense_memory(self.name, len(order), self.dtype, WORKING_FACTOR)
        matrix = self._simulate(circuit, order, progress)
        n, m = len(prog.qubits), len(extra)
        probs = np.clip(np.diagonal(matrix).real.astype(np.float64), 0.0, None)
        index = {q: i for i, q in enumerate(order)}
        outcomes = marginal(probs / probs.sum(), [index[ancillas[b]] for b in prog.clbits])
        tensor = matrix.reshape((2**n, 2**m, 2**n, 2**m))
        state = Dense(np.ascontiguousarray(np.einsum("ajbj->ab", tensor)))
        return EngineOutput(
            state=state,
            simulation_time_seconds=0.0,
            memory_used_mb=matrix.nbytes / 2**20,
            outcomes=outcomes,
        )

    def _simulate(
        self, circuit: cirq.Circuit, order: list[cirq.Qid], progress: ProgressCallback
    ) -> np.ndarray:
        """The final density matrix of ``circuit`` without its measurements (on ``order``)."""
        import cirq

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
            return matrix
        return np.array(step.density_matrix(copy=True))

    def _run(self, prog: CompiledCircuit, progress: ProgressCallback) -> EngineOutput:
        order = list(prog.qubits)  # compiled: measurements are terminal
        check_dense_memory(self.name, len(order), self.dtype, WORKING_FACTOR)
        state = Dense(self._simulate(prog.circuit, order, progress))
        matrix = state.matrix
        return EngineOutput(
            state=state,
            simulation_time_seconds=0.0,
            memory_used_mb=matrix.nbytes / 2**20,
            final_rank=rank(state) if len(order) <= RANK_MAX_QUBITS else None,
        )


def deferred(prog: CompiledCircuit) -> cirq.Circuit:
    """``cirq.defer_measurements`` of a dynamic circuit, or why Cirq cannot (a condition
    that reads a bit before it is written, a classically controlled channel)."""
    import cirq

    try:
        return cirq.defer_measurements(prog.circuit)
    except (ValueError, NotImplementedError, TypeError) as exc:
        raise ConfigError(
            f"simulator=cirq cannot run this dynamic circuit: Cirq cannot defer its "
            f"measurements ({exc}). Use simulator=fdm or simulator=lret"
        ) from None
