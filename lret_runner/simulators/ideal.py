"""The noiseless reference: the state vector of the same circuit without its noise.

Every instruction a noise model added is marked (``Instruction.noise``, from the tag noise
models put on their operations); dropping them leaves the circuit as written. When what is
left is unitary, its final state is a state vector of 2^n amplitudes (16 MiB at n = 20),
from which the run's figures against the noiseless circuit are computed. Gates are fused
into blocks and applied as LRET applies them to its factor.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lret_runner.errors import MemoryRefusal
from lret_runner.simulators.base import CompiledCircuit, ProgressCallback, available_bytes
from lret_runner.simulators.fusion import GateFuser, apply_block
from lret_runner.simulators.lret import apply_blocked

# the vector, a block's output (or the spare vector) and tensordot's transposed operand
WORKING_FACTOR = 3.0


def noiseless_program(prog: CompiledCircuit) -> CompiledCircuit | str:
    """``prog`` without the instructions its noise model added, or why it has no state
    vector (an operation of the circuit itself that is not unitary, such as a reset). A
    dynamic circuit keeps its resets: it is run as branches (its outcome distribution is
    the reference), never as a state vector."""
    moments = []
    for index, moment in enumerate(prog.moments):
        # a mid-circuit measurement keeps its bit but loses its readout error
        kept = tuple(
            dataclasses.replace(ins, flips=(0.0, 0.0)) if ins.bit is not None else ins
            for ins in moment
            if not ins.noise
        )
        if not prog.dynamic and any(ins.is_channel for ins in kept):
            return (
                f"the circuit without its noise is not unitary (moment {index} of the noisy "
                "circuit holds a channel that is not the noise model's), so it has no "
                "noiseless state vector"
            )
        moments.append(kept)
    return dataclasses.replace(prog, moments=tuple(moments))


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
    most significant bit of an index, as every engine orders it.

    Gates are fused into blocks (:mod:`~lret_runner.simulators.fusion`): every pass over the
    2^n amplitudes costs the same, so fewer passes is faster."""
    n = prog.n_qubits
    check_memory(n, prog.dtype)
    psi = np.zeros((2,) * n + (1,), dtype=prog.dtype)
    psi[(0,) * (n + 1)] = 1.0
    gates, spare = GateFuser(), None
    for done, moment in enumerate(prog.moments, start=1):
        for ins in moment:
            if ins.is_channel:
                raise ValueError("state_vector needs a unitary program (see noiseless_program)")
            for block in gates.add(ins.targets, ins.kraus[0]):
                psi, spare = apply_block(psi, block, spare, apply_blocked)
        if progress is not None:
            progress(done, len(prog.moments))
    for block in gates.release():
        psi, spare = apply_block(psi, block, spare, apply_blocked)
    return np.ascontiguousarray(psi).reshape(2**n)
