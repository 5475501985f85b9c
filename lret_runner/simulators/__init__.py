"""The engines (one per file) and ``auto``, which picks one for a circuit."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any

from lret_runner.errors import ConfigError, MemoryRefusal, SimulationError, check_choice
from lret_runner.simulators import costs
from lret_runner.simulators.base import (
    CompiledCircuit,
    Engine,
    EngineOutput,
    available_bytes,
    compile_circuit,
    dense_bytes,
)
from lret_runner.simulators.cirq_sim import CirqSimulator
from lret_runner.simulators.dense import RANK_MAX_QUBITS
from lret_runner.simulators.fdm import WORKING_FACTOR as FDM_WORKING_FACTOR
from lret_runner.simulators.fdm import FdmSimulator
from lret_runner.simulators.lret import LretSimulator
from lret_runner.simulators.trajectories import TrajectoriesSimulator

ENGINES: dict[str, type[Engine]] = {
    "lret": LretSimulator,
    "fdm": FdmSimulator,
    "cirq": CirqSimulator,
    "trajectories": TrajectoriesSimulator,
}

__all__ = [
    "ENGINES",
    "Choice",
    "CompiledCircuit",
    "Engine",
    "EngineOutput",
    "MemoryRefusal",
    "SimulationError",
    "choose_engine",
    "compile_circuit",
    "make_engine",
]


@dataclass(frozen=True)
class Choice:
    """What ``auto`` picked, why, and the seconds it predicted for each engine."""

    engine: str
    reason: str
    predicted_seconds: dict[str, float]


def choose_engine(prog: CompiledCircuit, **lret_params: Any) -> Choice:
    """``auto``: the engine predicted to be faster on ``prog`` (:func:`costs.predict`, with the
    lret keys and ``accuracy`` ``auto`` carries) among those whose state fits in free memory
    and that are predicted to meet ``accuracy``; fdm on a tie.

    fdm is exact. lret spends ``accuracy`` over its truncations, which meets it unless the
    rank it needs exceeds its memory budget; with ``rank_threshold`` set it meets it when
    the predicted discarded weight is within ``accuracy``. Only when no engine with a
    proven bound can (a dense state does not fit, and lret's rank does not fit or its time
    exceeds the limit) does auto choose trajectories, whose guarantee is statistical."""
    lret = make_engine("lret", **lret_params)
    assert isinstance(lret, LretSimulator)
    dynamic = prog.dynamic
    if dynamic:  # weighed as one branch: every branch costs both engines about as much
        prog = _one_branch(prog)
    fits = dense_bytes(prog.n_qubits, prog.dtype, FDM_WORKING_FACTOR) <= available_bytes()
    pred = costs.predict(
        prog,
        rank_threshold=lret.step_threshold(prog),
        max_rank=lret.max_rank,
        dense_allowed=fits and lret.representation == "adaptive",
        final_rank_qubits=RANK_MAX_QUBITS,
    )
    rank = f"rank up to {pred.lret_rank}" + (
        "" if pred.lret_dense_from is None else f", dense from moment {pred.lret_dense_from}"
    )
    predicted = {"lret": pred.lret_seconds}
    asked = f"run.accuracy={lret.accuracy:g}"
    if not fits:
        reason = f"n={prog.n_qubits}: a dense density matrix does not fit in free memory"
        cap, limit = lret.rank_cap(prog.n_qubits), lret.time_limit_seconds
        if pred.lret_rank > cap:
            missed = f"rank {pred.lret_rank}, more than its memory budget allows ({cap})"
        elif limit is not None and pred.lret_seconds > limit:
            missed = f"{pred.lret_seconds:.3g} s, more than run.timeout_seconds={limit:g}"
        else:
            return Choice("lret", f"{reason}; lret is predicted to need {rank}", predicted)
        if dynamic:
            return Choice("lret", f"{reason}; lret holds the branches of a dynamic circuit "
                          f"(predicted to need {rank} per branch)", predicted)  # fmt: skip
        reason += (
            f", and lret at {asked} is predicted to need {missed}: trajectories estimate "
            "each figure to a standard error of run.accuracy instead (a statistical "
            "guarantee, not a bound)"
        )
        return Choice("trajectories", reason, predicted)
    predicted["fdm"] = pred.fdm_seconds
    if lret.rank_threshold is not None and pred.lret_error > lret.accuracy:
        reason = (
            f"lret at simulator.rank_threshold={lret.rank_threshold:g} is predicted to discard "
            f"{pred.lret_error:.2g} of the state, more than {asked}: fdm is exact (predicted "
            f"fdm {pred.fdm_seconds:.3g} s, lret {pred.lret_seconds:.3g} s)"
        )
        return Choice("fdm", reason, predicted)
    engine = "fdm" if pred.fdm_seconds <= pred.lret_seconds else "lret"
    reason = (
        f"predicted at {asked}: fdm {pred.fdm_seconds:.3g} s, lret {pred.lret_seconds:.3g} s "
        f"({rank}): {engine} is faster"
    )
    return Choice(engine, reason, predicted)


def _one_branch(prog: CompiledCircuit) -> CompiledCircuit:
    """A dynamic circuit as one branch would see it: its mid-circuit measurements left out,
    every classically controlled operation applied."""
    moments = tuple(tuple(i for i in m if i.bit is None) for m in prog.moments)
    return dataclasses.replace(prog, moments=moments)


def make_engine(name: str, **params: Any) -> Engine:
    """An engine by name with the keyword parameters its constructor takes (others, such as
    the lret keys ``auto`` carries to an fdm run, are dropped; ``auto`` is resolved by the
    caller)."""
    engine = ENGINES[check_choice("simulator.name", name, tuple(ENGINES), ConfigError)]
    accepted = inspect.signature(engine).parameters
    return engine(**{k: v for k, v in params.items() if k in accepted})
