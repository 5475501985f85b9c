"""The engines (one per file) and ``auto``, which picks one for a circuit."""

from __future__ import annotations

import inspect
from typing import Any

from lret_runner.errors import ConfigError, MemoryRefusal, SimulationError, check_choice
from lret_runner.simulators.base import (
    CompiledCircuit,
    Engine,
    EngineOutput,
    available_bytes,
    compile_circuit,
    dense_bytes,
)
from lret_runner.simulators.cirq_sim import CirqSimulator
from lret_runner.simulators.fdm import WORKING_FACTOR as FDM_WORKING_FACTOR
from lret_runner.simulators.fdm import FdmSimulator
from lret_runner.simulators.lret import LretSimulator

ENGINES: dict[str, type[Engine]] = {
    "lret": LretSimulator,
    "fdm": FdmSimulator,
    "cirq": CirqSimulator,
}

# Up to this size the exact engine is as fast as LRET and has no truncation error.
AUTO_FDM_MAX_QUBITS = 8

__all__ = [
    "ENGINES",
    "CompiledCircuit",
    "Engine",
    "EngineOutput",
    "MemoryRefusal",
    "SimulationError",
    "choose_engine",
    "compile_circuit",
    "make_engine",
]


def choose_engine(prog: CompiledCircuit) -> tuple[str, str]:
    """``auto``: an engine for a compiled circuit and why, from n, the noise and free memory."""
    n = prog.n_qubits
    if not prog.noisy:
        return "lret", "noiseless circuit: the state stays pure, LRET keeps rank 1"
    fits = dense_bytes(n, prog.dtype, FDM_WORKING_FACTOR) <= available_bytes()
    if n <= AUTO_FDM_MAX_QUBITS and fits:
        return "fdm", f"n={n} <= {AUTO_FDM_MAX_QUBITS}: the exact density matrix is cheap"
    if not fits:
        return "lret", f"n={n}: a dense density matrix does not fit in free memory"
    return "lret", f"n={n} > {AUTO_FDM_MAX_QUBITS} with noise: low rank is cheaper than 4^n"


def make_engine(name: str, **params: Any) -> Engine:
    """An engine by name with the keyword parameters its constructor takes (others, such as
    the lret keys ``auto`` carries to an fdm run, are dropped; ``auto`` is resolved by the
    caller)."""
    engine = ENGINES[check_choice("simulator.name", name, tuple(ENGINES), ConfigError)]
    accepted = inspect.signature(engine).parameters
    return engine(**{k: v for k, v in params.items() if k in accepted})
