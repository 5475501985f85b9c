"""What every engine shares: the compiled instruction list, the engine output, the memory guard.

A noisy ``cirq.Circuit`` is compiled once into numeric instructions (unitaries and
Kraus sets on qubit indices, Cirq's qubit order: index 0 is the most significant
bit of a basis index). The dense engines and LRET consume the same instructions,
so they agree on qubit order and bitstrings by construction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lret_runner.errors import ConfigError, MemoryRefusal, SimulationError, check_choice
from lret_runner.metrics import State

if TYPE_CHECKING:
    import cirq

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(moments_done, moments_total)`` after every moment.

It may raise (a timeout, a cancellation) to stop the engine between moments. A sampling
engine (trajectories) calls it as ``progress(trajectories_done, trajectories_planned)``."""

DTYPES = {"complex128": np.complex128, "complex64": np.complex64}


@dataclass(frozen=True)
class Instruction:
    """One operation: a unitary (``kraus`` has one matrix, ``is_channel`` False), a channel, or
    a mid-circuit measurement of its one target into the classical bit ``bit`` (no matrices).
    ``conditions`` (Cirq's, on the bits ``reads``) make it act only where they hold."""

    targets: tuple[int, ...]
    kraus: tuple[np.ndarray, ...]
    is_channel: bool
    noise: bool = False  # added by a noise model (tagged NOISE_TAG): absent from the ideal circuit
    bit: int | None = None  # a mid-circuit measurement: the index of its bit in ``clbits``
    # ... and its readout error: P(record 1 | outcome 0), P(record 0 | outcome 1)
    flips: tuple[float, float] = (0.0, 0.0)
    conditions: tuple[cirq.Condition, ...] = ()
    # the bits the conditions read: (name, index in ``clbits``, or -1 for a bit no
    # measurement writes, which reads 0)
    reads: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class CompiledCircuit:
    """The numeric form of a noisy circuit: instructions grouped by moment."""

    n_qubits: int
    moments: tuple[tuple[Instruction, ...], ...]
    # the qubits measured at the end (terminal measurements), may be empty
    measured: tuple[int, ...]
    # the classical bits the measurements write (a measurement's key; ``key[i]`` for the
    # i-th qubit of a measurement of several), in the order of the run's outcome bits: a
    # file's declaration order, else the order they are first written
    clbits: tuple[str, ...]
    circuit: cirq.Circuit  # the circuit it was compiled from
    qubits: tuple[cirq.Qid, ...]  # its qubit order
    dtype: type  # of the matrices
    final_bits: tuple[int, ...] = ()  # the bit (index in ``clbits``) of each of ``measured``

    @property
    def noisy(self) -> bool:
        return any(ins.is_channel for moment in self.moments for ins in moment)

    @property
    def dynamic(self) -> bool:
        """Whether it measures mid-circuit or controls operations classically: its state is
        an ensemble of branches, one per value of the classical bits (``branches.py``)."""
        return any(ins.bit is not None or ins.conditions for m in self.moments for ins in m)


def compile_circuit(
    circuit: cirq.Circuit, qubits: Sequence[cirq.Qid] | None = None, dtype: type = np.complex128
) -> CompiledCircuit:
    """Turn a (noisy) circuit into instructions on qubit indices.

    A terminal measurement (nothing acts on its qubit after it, nothing reads or rewrites
    its bit) is recorded in ``measured``: the engines return the state before it, and the
    distribution of its bit comes from the state's diagonal. Any other measurement is an
    instruction that splits the state into branches, and a classically controlled
    operation an instruction with conditions (``branches.py`` runs them).
    """
    import cirq

    from lret_runner.circuits import measured_bits
    from lret_runner.noise import NOISE_TAG

    order = list(qubits) if qubits is not None else sorted(circuit.all_qubits())
    index = {q: i for i, q in enumerate(order)}
    missing = circuit.all_qubits() - set(order)
    if missing:
        raise SimulationError(f"circuit acts on qubits {sorted(missing)} outside the qubit order")
    clbits, terminal = _classical_bits(circuit)
    bit_index = {b: i for i, b in enumerate(clbits)}
    moments: list[tuple[Instruction, ...]] = []
    readout: list[tuple[int, int]] = []  # (bit, qubit) of the terminal measurements
    # an operation that repeats (a Grover oracle, the same noise channel on the same qubit)
    # is converted once: its matrices are shared, not rebuilt and stored again
    seen: dict[cirq.Operation, Instruction] = {}
    for m_index, moment in enumerate(circuit):
        instructions = []
        for op in moment:
            targets = tuple(index[q] for q in op.qubits)
            if cirq.is_measurement(op) and (m_index, op) in terminal:
                readout += [
                    (bit_index[b], t) for b, t in zip(measured_bits(op), targets, strict=True)
                ]
                continue
            try:
                instruction = seen.get(op)
            except TypeError:  # an unhashable operation: converted every time
                instruction = None
            if instruction is None:
                instruction = _instruction(op, targets, m_index, dtype, bit_index)
                if NOISE_TAG in op.tags:
                    instruction = dataclasses.replace(instruction, noise=True)
                with contextlib.suppress(TypeError):
                    seen[op] = instruction
            if instruction.bit is not None:  # one per measured qubit, with its readout error
                confusion = getattr(op.gate, "confusion_map", None) or {}
                instructions += [
                    dataclasses.replace(
                        instruction,
                        targets=(t,),
                        bit=bit_index[b],
                        flips=_flips(confusion.get((i,))),
                    )
                    for i, (t, b) in enumerate(zip(targets, measured_bits(op), strict=True))
                ]
            else:
                instructions.append(instruction)
        moments.append(tuple(instructions))
    readout.sort()
    return CompiledCircuit(
        len(order),
        tuple(moments),
        tuple(q for _, q in readout),
        clbits,
        circuit,
        tuple(order),
        dtype,
        tuple(b for b, _ in readout),
    )


def _flips(confusion: np.ndarray | None) -> tuple[float, float]:
    """A one-qubit confusion matrix (M[i][j] = P(record j | outcome i)) as the probabilities
    of flipping 0 and 1."""
    if confusion is None:
        return (0.0, 0.0)
    return (float(confusion[0][1]), float(confusion[1][0]))


def _classical_bits(
    circuit: cirq.Circuit,
) -> tuple[tuple[str, ...], set[tuple[int, cirq.Operation]]]:
    """The bits the circuit's measurements write, in outcome order (a file's measurements
    carry their bit's position in its declaration order, ``qasm.ClassicalBit``; others come
    in the order they are first written), and the terminal measurements as (moment, op)."""
    import cirq

    from lret_runner.circuits import measured_bits, terminal_measurements
    from lret_runner.qasm import ClassicalBit

    first: dict[str, tuple[bool, int, int]] = {}
    for moment in circuit:
        for op in moment:
            if cirq.is_measurement(op):
                tagged = [t.index for t in op.tags if isinstance(t, ClassicalBit)]
                for b in measured_bits(op):
                    first.setdefault(b, (not tagged, tagged[0] if tagged else 0, len(first)))
    return tuple(sorted(first, key=first.__getitem__)), terminal_measurements(circuit)


# operations on more qubits than this have their matrix size checked before Cirq builds it
_CHECKED_OPERATION_QUBITS = 8
# Cirq builds the 2^k x 2^k matrix of a k-qubit operation with a few working copies
_OPERATION_WORKING_FACTOR = 4.0


def _instruction(
    op: cirq.Operation,
    targets: tuple[int, ...],
    m_index: int,
    dtype: type,
    bit_index: dict[str, int],
) -> Instruction:
    import cirq

    from lret_runner.circuits import measured_bits

    conditions = tuple(op.classical_controls)
    if conditions:
        keys = sorted({str(k) for c in conditions for k in c.keys})
        reads = tuple((k, bit_index.get(k, -1)) for k in keys)
        inner = _instruction(op.without_classical_controls(), targets, m_index, dtype, bit_index)
        return dataclasses.replace(inner, conditions=conditions, reads=tuple(reads))
    if cirq.is_measurement(op):  # mid-circuit: the first bit (compile_circuit splits the rest)
        return Instruction(targets, (), False, bit=bit_index[measured_bits(op)[0]])
    _check_operation_memory(op, m_index)
    if cirq.has_unitary(op):
        return Instruction(targets, (np.asarray(cirq.unitary(op), dtype=dtype),), False)
    if cirq.has_kraus(op):
        return Instruction(targets, tuple(np.asarray(k, dtype=dtype) for k in cirq.kraus(op)), True)
    raise SimulationError(f"moment {m_index}: {op!r} has neither a unitary nor Kraus operators")


def _check_operation_memory(op: cirq.Operation, m_index: int) -> None:
    """Refuse, before Cirq builds it, the matrix of an operation on many qubits (a Grover
    oracle on n qubits is a 2^n x 2^n matrix) that does not fit in free memory."""
    k = len(op.qubits)
    if k <= _CHECKED_OPERATION_QUBITS:
        return
    need = float(4**k) * 16 * _OPERATION_WORKING_FACTOR  # Cirq computes in complex128
    free = available_bytes()
    if need > free:
        raise MemoryRefusal(
            f"moment {m_index}: the gate {_short(op.gate or op)} acts on {k} qubits: its "
            f"2^{k} x 2^{k} matrix needs {need / 2**30:.1f} GiB to build but only "
            f"{free / 2**30:.1f} GiB is free. Use a circuit with fewer qubits, or decompose "
            "the gate into gates on fewer qubits"
        )


def _short(thing: object, limit: int = 40) -> str:
    text = str(thing)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class EngineOutput:
    """What an engine returns: the final state and how it got there."""

    state: State
    simulation_time_seconds: float
    memory_used_mb: float  # peak size of the engine's state arrays
    truncation_error: float = (
        0.0  # summed trace weight discarded by truncation (0 for exact engines)
    )
    final_rank: int | None = None  # None where computing it would cost more than the run
    # LRET only: the most columns the factor had before a truncation cut them (k branches x
    # r columns; not a rank, it may exceed 2^n)
    widest_factor: int | None = None
    # LRET only: the width of its representation after every moment (the factor's rank, or
    # 2^n while the state is held dense), whether it was dense then, and every switch
    # between factor and dense
    rank_history: list[int] | None = None
    dense_history: list[bool] | None = None
    representation_switches: list[dict[str, Any]] | None = None
    warnings: list[str] = field(default_factory=list)  # a budget that bound, a target missed
    # a sampling engine (trajectories, ``state`` is a metrics.Sampled): the figures it
    # estimated (the keys of metrics.PureFigures), the standard error of each, with
    # accuracy.PROBABILITIES_SE the largest over the measured outcomes' probabilities, the number of
    # trajectories, and how it ran (its kernel, the stratification)
    estimates: dict[str, float] = field(default_factory=dict)
    standard_errors: dict[str, float] = field(default_factory=dict)
    samples: int | None = None
    method: str | None = None
    # a dynamic circuit (branches.py): the most branches held at once, and the exact
    # distribution over the circuit's classical bits (``CompiledCircuit.clbits``)
    branches: int | None = None
    outcomes: np.ndarray | None = None


class Engine(ABC):
    """A simulator: keyword-only construction, ``run(circuit)`` returns an :class:`EngineOutput`."""

    name: str

    dtype: type

    # True: the engine samples pure states and estimates the figures itself; ``run`` takes
    # ``figures`` (metrics.PureFigures), ``seed`` and ``threads``
    sampled: bool = False

    def run(
        self,
        circuit: cirq.Circuit | CompiledCircuit,
        *,
        qubits: Sequence[cirq.Qid] | None = None,
        progress: ProgressCallback | None = None,
    ) -> EngineOutput:
        """Simulate a noisy circuit, or one already compiled (then it is not compiled again
        unless its qubit order or dtype differ from what is asked)."""
        if isinstance(circuit, CompiledCircuit):
            same = qubits is None or tuple(qubits) == circuit.qubits
            if same and circuit.dtype == self.dtype:
                prog = circuit
            else:
                prog = compile_circuit(circuit.circuit, qubits or circuit.qubits, self.dtype)
        else:
            prog = compile_circuit(circuit, qubits, self.dtype)
        start = time.perf_counter()
        report = progress or (lambda done, total: None)
        if prog.dynamic:
            self.check_dynamic()
            out = self._run_dynamic(prog, report)
        else:
            out = self._run(prog, report)
        out.simulation_time_seconds = time.perf_counter() - start
        return out

    def check_dynamic(self) -> None:
        """Refuse, naming the engines that can, a dynamic circuit (mid-circuit measurements,
        classical control) this engine cannot run: one that keeps :meth:`_run_dynamic`."""
        if type(self)._run_dynamic is Engine._run_dynamic:
            raise ConfigError(
                f"simulator={self.name} cannot run a dynamic circuit (mid-circuit measurements "
                "or classically controlled operations): use simulator=fdm or simulator=lret "
                "(exact ensembles of branches), simulator=cirq (Cirq's deferred measurements, "
                "a reference for small circuits) or simulator=auto"
            )

    def _run_dynamic(self, prog: CompiledCircuit, progress: ProgressCallback) -> EngineOutput:
        """A dynamic circuit: the engines that run them override this (fdm and lret as
        branches, ``branches.run``; cirq through deferred measurements)."""
        self.check_dynamic()
        raise AssertionError("check_dynamic refuses an engine without _run_dynamic")

    def check_memory(self, prog: CompiledCircuit) -> None:
        """Raise :class:`MemoryRefusal`, before anything is allocated, when the least state
        this engine needs for ``prog`` does not fit in free memory (the run calls it first;
        ``experiment.prepare`` calls it before a run is recorded)."""
        self.check_qubits(prog.n_qubits)

    def check_qubits(self, n_qubits: int) -> None:  # noqa: B027 (a no-op by default)
        """:meth:`check_memory` from the qubit count alone (before a circuit is built)."""

    @abstractmethod
    def _run(self, prog: CompiledCircuit, progress: ProgressCallback) -> EngineOutput: ...


def check_dtype(dtype: str) -> type:
    """The numpy type of ``backend.dtype``, or a :class:`ConfigError` naming it."""
    return DTYPES[check_choice("backend.dtype", dtype, tuple(DTYPES), ConfigError)]


def dense_bytes(n_qubits: int, dtype: type, working_factor: float) -> float:
    """Bytes a dense density matrix engine needs: 4^n entries times the working factor."""
    return float(4**n_qubits) * np.dtype(dtype).itemsize * working_factor


def available_bytes() -> float:
    import psutil

    return float(psutil.virtual_memory().available)


def check_dense_memory(engine: str, n_qubits: int, dtype: type, working_factor: float) -> None:
    """Refuse, before allocating, a dense state that does not fit in free memory."""
    need = dense_bytes(n_qubits, dtype, working_factor)
    free = available_bytes()
    if need > free:
        raise MemoryRefusal(
            f"simulator={engine} refuses n_qubits={n_qubits}: a dense density matrix needs "
            f"{need / 2**30:.1f} GiB (4^{n_qubits} x {np.dtype(dtype).itemsize} B x "
            f"{working_factor:g} working copies) but only {free / 2**30:.1f} GiB is free. "
            "Use simulator=lret, whose memory grows with the rank instead of 4^n."
        )
