"""The noiseless reference: the state vector of the same circuit without its noise.

Every instruction a noise model added is marked (``Instruction.noise``, from the tag noise
models put on their operations); dropping them leaves the circuit as written. When what is
left is unitary, its final state is a state vector of 2^n amplitudes (16 MiB at n = 20),
from which the run's figures against the noiseless circuit are computed. Gates are applied
one by one with the same kernel as LRET's rank-one factor.
"""

from __future__ import annotations

import numpy as np

from lret_runner.errors import MemoryRefusal
from lret_runner.simulators.base import CompiledCircuit, ProgressCallback, available_bytes
from lret_runner.simulators.lret import apply_blocked

# the vector, the kernel's output and tensordot's transposed operand
WORKING_FACTOR = 3.0


def noiseless_program(prog: CompiledCircuit) -> CompiledCircuit | str:
    """``prog`` without the instructions its noise model added, or why it has no state
    vector (an operation of the circuit itself that is not unitary, such as a reset)."""
    moments = []
    for index, moment in enumerate(prog.moments):
        kept = tuple(ins for ins in moment if not ins.noise)
        if any(ins.is_channel for ins in kept):
            return (
                f"the circuit without its noise is not unitary (moment {index} of the noisy "
                "circuit holds a channel that is not the noise model's), so it has no "
                "noiseless state vector"
            )
        moments.append(kept)
    return CompiledCircuit(
        prog.n_qubits, tuple(moments), prog.measured, prog.circuit, prog.qubits, prog.dtype
    )


def check_memory(n_qubits: int, dtype: type) -> None:
    """Refuse a state vector that does not fit in free memory (:class:`MemoryRefusal`)."""
    need = float(2**n_qubits) * np.dtype(dtype).itemsize * WORKING_FACTOR
    free = available_bytes()
    if need > free:
        raise MemoryRefusal(
            f"the noiseless state vector of {n_qubits} qubits needs {need / 2**30:.1f} GiB "
            f"but only {free / 2**30:.1f} GiB is free"
        )


def state_vector(prog: CompiledCircuit, progress: ProgressCallback | None = None) -> np.ndarray:
    """The final state vector of a unitary program (:func:`noiseless_program`), qubit 0 the
    most significant bit of an index, as every engine orders it."""
    n = prog.n_qubits
    check_memory(n, prog.dtype)
    psi = np.zeros((2,) * n + (1,), dtype=prog.dtype)
    psi[(0,) * (n + 1)] = 1.0
    # a one-qubit gate waits on its qubit and is merged into the next gate there: every
    # pass over the 2^n amplitudes costs the same, so fewer passes is faster (2.5-2.9x on
    # layered and random circuits at n = 16-20)
    pending: dict[int, np.ndarray] = {}
    for done, moment in enumerate(prog.moments, start=1):
        for ins in moment:
            if ins.is_channel:
                raise ValueError("state_vector needs a unitary program (see noiseless_program)")
            matrix = ins.kraus[0]
            if len(ins.targets) == 1:
                (q,) = ins.targets
                pending[q] = matrix @ pending[q] if q in pending else matrix
                continue
            for j, q in enumerate(ins.targets):
                if q in pending:
                    matrix = matrix @ _on(pending.pop(q), j, len(ins.targets))
            psi = apply_blocked(psi, matrix, ins.targets)
        if progress is not None:
            progress(done, len(prog.moments))
    for q, matrix in pending.items():
        psi = apply_blocked(psi, matrix, (q,))
    return psi.reshape(2**n)


def _on(matrix: np.ndarray, position: int, k: int) -> np.ndarray:
    """A one-qubit ``matrix`` as a 2^k x 2^k operator on target ``position`` of k (the
    first target the most significant bit, as an instruction's matrix)."""
    out = np.eye(1, dtype=matrix.dtype)
    for j in range(k):
        out = np.kron(out, matrix if j == position else np.eye(2, dtype=matrix.dtype))
    return out
