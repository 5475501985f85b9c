"""Dynamic circuits on the density-matrix engines: an ensemble of branches.

A circuit that measures mid-circuit (a qubit used after its measurement, a bit read or
written again) or controls operations classically is run as an ensemble: one branch per
value of the classical bits, each an unnormalised state (its trace is the branch's
probability). Between mid-circuit measurements every branch evolves with the engine's own
machinery, through the operations whose conditions its bits satisfy. A measurement of
qubit q into bit b splits each branch into its projections P0 rho P0 and P1 rho P1 with b
set to the outcome; branches whose bits then agree are merged (their states summed).
Reset is a channel and never splits.

At the end, the distribution over the classical bits is exact: each branch's bits, with
its terminal measurements' bits read from the diagonal of its state. The run's state is
the sum of the branches (every measurement's record forgotten).

Branches of weight below :data:`DROP_WEIGHT` are dropped, their weight added to the
truncation error; an engine's truncations inside a branch are added too, so
``truncation_error`` bounds the trace distance summed over branches.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from lret_runner.errors import ConfigError
from lret_runner.metrics import State
from lret_runner.simulators.base import CompiledCircuit, EngineOutput, Instruction, ProgressCallback

S = TypeVar("S")

# a branch lighter than this is dropped (its weight goes to truncation_error): a projection
# onto an outcome the state cannot give leaves rounding noise of this order, not a branch
DROP_WEIGHT = 1e-13
# the most classical bits a dynamic circuit may write: its outcome distribution has 2^bits
# entries
MAX_CLBITS = 24
# the most branches a run may hold at once (``run.max_branches``' default)
DEFAULT_MAX_BRANCHES = 1024


class Branching(Protocol[S]):
    """What an engine provides to run branches (its state type ``S``)."""

    def ground(self, prog: CompiledCircuit) -> S: ...

    def evolve(self, state: S, prog: CompiledCircuit, share: float) -> tuple[S, float]:
        """``state`` through ``prog``'s moments; the weight its truncations discarded.
        ``share`` is the fraction of the run's accuracy budget this part may spend."""
        ...

    def project(self, state: S, qubit: int, outcome: int) -> S:
        """P_outcome rho P_outcome on ``qubit``, as a new state (``state`` is kept)."""
        ...

    def weight(self, state: S) -> float: ...

    def nbytes(self, state: S) -> int: ...

    def merge(self, a: S, b: S) -> S: ...

    def scale(self, state: S, factor: float) -> S:
        """``factor`` times the state (in place)."""
        ...

    def copy(self, state: S) -> S: ...

    def diagonal(self, state: S) -> np.ndarray:
        """The (unnormalised) probabilities of the basis states, 2^n entries."""
        ...

    def total(self, states: list[S]) -> tuple[State, int | None]:
        """The sum of the branches as a state, and its rank where known cheaply."""
        ...


@dataclasses.dataclass
class _Branch(Generic[S]):
    bits: tuple[int, ...]
    state: S


def max_branches(prog: CompiledCircuit) -> int:
    """An upper bound on the branches ``prog`` holds at once: 2 to the number of bits its
    mid-circuit measurements write."""
    written = {ins.bit for m in prog.moments for ins in m if ins.bit is not None}
    return 2 ** len(written)


def check(prog: CompiledCircuit, limit: int, setting: str = "run.max_branches") -> None:
    """Refuse, before anything runs, a dynamic circuit with more classical bits than its
    outcome distribution may have, or more branches than ``limit``."""
    if len(prog.clbits) > MAX_CLBITS:
        raise ConfigError(
            f"the circuit writes {len(prog.clbits)} classical bits: a dynamic circuit's "
            f"outcome distribution is kept for at most {MAX_CLBITS} bits; measure fewer bits"
        )
    bound = max_branches(prog)
    if bound > limit:
        written = len({ins.bit for m in prog.moments for ins in m if ins.bit is not None})
        raise ConfigError(
            f"{setting}={limit} is too small for this circuit: its mid-circuit measurements "
            f"write {written} bits, up to {bound} branches (one state each). Raise {setting} "
            "if they fit in memory, or measure fewer bits mid-circuit"
        )


def holds(ins: Instruction, bits: tuple[int, ...]) -> bool:
    """Whether ``ins``'s conditions hold for the classical bits ``bits`` (0 where unwritten:
    OpenQASM's bits start at 0), evaluated by Cirq's own conditions."""
    if not ins.conditions:
        return True
    import cirq

    store = cirq.ClassicalDataDictionaryStore()
    for name, b in ins.reads:
        value = bits[b] if b >= 0 else 0
        store.record_measurement(cirq.MeasurementKey(name), [value], [cirq.LineQubit(0)])
    return all(c.resolve(store) for c in ins.conditions)


def run(engine: Branching[Any], prog: CompiledCircuit, progress: ProgressCallback) -> EngineOutput:
    """Run a dynamic circuit: the engine output with the sum of the branches as its state,
    the truncation error summed over branches, the most branches held at once and the
    exact distribution over ``prog.clbits``."""
    segments = _segments(prog)
    branches = [_Branch((0,) * len(prog.clbits), engine.ground(prog))]
    error, most, peak = 0.0, 1, engine.nbytes(branches[0].state)
    done = 0
    for moments, measurements in segments:
        evolved = []
        for branch in branches:
            sub = dataclasses.replace(
                prog,
                moments=tuple(tuple(i for i in m if holds(i, branch.bits)) for m in moments),
            )
            share = engine.weight(branch.state) / len(segments)
            state, discarded = engine.evolve(branch.state, sub, share)
            error += discarded
            evolved.append(_Branch(branch.bits, state))
        branches = evolved
        for ins in measurements:
            branches, dropped = _measure(engine, branches, ins, prog.clbits)
            error += dropped
            most = max(most, len(branches))
            peak = max(peak, sum(engine.nbytes(b.state) for b in branches))
        done += len(moments)
        progress(done, len(prog.moments))
    outcomes = np.zeros(2 ** len(prog.clbits))
    shift = [len(prog.clbits) - 1 - b for b in prog.final_bits]
    for branch in branches:
        _outcomes(outcomes, branch, engine.diagonal(branch.state), prog, shift)
    state, rank = engine.total([b.state for b in branches])
    return EngineOutput(
        state,
        0.0,
        peak / 2**20,
        truncation_error=error,
        final_rank=rank,
        branches=most,
        outcomes=outcomes / outcomes.sum(),
    )


def _segments(
    prog: CompiledCircuit,
) -> list[tuple[list[tuple[Instruction, ...]], list[Instruction]]]:
    """The moments up to and including each moment with mid-circuit measurements (without
    them), and those measurements (applied after the moment's other operations, which act
    on other qubits)."""
    out: list[tuple[list[tuple[Instruction, ...]], list[Instruction]]] = []
    current: list[tuple[Instruction, ...]] = []
    for moment in prog.moments:
        measures = [i for i in moment if i.bit is not None]
        current.append(tuple(i for i in moment if i.bit is None))
        if measures:
            out.append((current, measures))
            current = []
    if current or not out:
        out.append((current, []))
    return out


def _measure(
    engine: Branching[Any], branches: list[_Branch[Any]], ins: Instruction, clbits: tuple[str, ...]
) -> tuple[list[_Branch[Any]], float]:
    """Split every branch (whose bits satisfy ``ins``'s conditions) by the outcome of
    measuring its qubit into its bit; merge branches whose bits agree; drop the empty."""
    assert ins.bit is not None
    (qubit,) = ins.targets
    merged: dict[tuple[int, ...], Any] = {}
    dropped = 0.0

    def add(bits: tuple[int, ...], state: Any) -> None:
        nonlocal dropped
        w = engine.weight(state)
        if w < DROP_WEIGHT:
            dropped += max(w, 0.0)
            return
        merged[bits] = state if bits not in merged else engine.merge(merged[bits], state)

    for branch in branches:
        if not holds(ins, branch.bits):
            add(branch.bits, branch.state)
            continue
        parts = [engine.project(branch.state, qubit, outcome) for outcome in (0, 1)]
        flip0, flip1 = ins.flips
        if flip0 or flip1:  # a readout error flips the record; the qubit stays collapsed
            zero, one = parts
            parts = [
                engine.merge(
                    engine.scale(engine.copy(zero), 1 - flip0),
                    engine.scale(engine.copy(one), flip1),
                ),
                engine.merge(engine.scale(zero, flip0), engine.scale(one, 1 - flip1)),
            ]
        for outcome, state in enumerate(parts):
            bits = branch.bits[: ins.bit] + (outcome,) + branch.bits[ins.bit + 1 :]
            add(bits, state)
    return [_Branch(bits, state) for bits, state in merged.items()], dropped


def _outcomes(
    out: np.ndarray,
    branch: _Branch[Any],
    diagonal: np.ndarray,
    prog: CompiledCircuit,
    shift: list[int],
) -> None:
    """Add a branch's outcomes: its bits, with the terminal measurements' bits from its
    diagonal (a bit a terminal measurement writes takes that measurement's value)."""
    from lret_runner.metrics import marginal

    m = len(prog.clbits)
    base = sum(b << (m - 1 - i) for i, b in enumerate(branch.bits))
    if not prog.measured:
        out[base] += diagonal.sum()
        return
    for b in prog.final_bits:
        base &= ~(1 << (m - 1 - b))
    probs = marginal(diagonal, list(prog.measured))
    k = len(prog.measured)
    values = np.arange(2**k, dtype=np.int64)
    index = np.full(2**k, base, dtype=np.int64)
    for j, s in enumerate(shift):
        index |= ((values >> (k - 1 - j)) & 1) << s
    out[index] += probs  # distinct indices: one outcome per value
