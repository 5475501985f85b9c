"""What an Optuna trial returns to the sweeper: ``optimize.objective`` of its run.

An objective is a metric of the run's result (``exact_fidelity``, ``ideal_fidelity``,
``energy``, ``simulation_time_seconds``, ``expval_ZZ``, ...) or one derived from it:
``exact_infidelity`` (1 - exact_fidelity), ``ideal_infidelity`` (1 - ideal_fidelity) and
``fitness`` (target fidelity minus ``optimize.two_qubit_penalty`` per two-qubit gate). With
one objective and ``optimize.min_exact_fidelity`` set, a trial whose fidelity to the exact
state falls short is penalised by ``optimize.penalty`` per unit missing (added when
minimising, subtracted when maximising). A value the run does not have is an
:class:`ObjectiveUndefined` error: the run is recorded FAILED and the trial failed, never
given a made-up number. :func:`check` refuses, before the study starts, an objective the
configured run cannot produce.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lret_runner.errors import ConfigError, ObjectiveUndefined, check_choice, check_range
from lret_runner.tracking import vocabulary as V

DIRECTIONS = ("minimize", "maximize")
# objectives computed from other metrics: name -> (the metric, what it is)
DERIVED = ("exact_infidelity", "ideal_infidelity", "fitness")
# objectives that need the exact comparison (run.compare_to_exact)
NEEDS_EXACT = ("exact_fidelity", "exact_infidelity", "exact_trace_distance")
# objectives that need the noiseless state vector (run.ideal_max_qubits)
NEEDS_IDEAL = (
    "ideal_fidelity",
    "ideal_infidelity",
    "ideal_tvd",
    "ideal_hellinger_fidelity",
    "ideal_energy",
    "xeb_fidelity",
    "xeb_fidelity_sampled",
)
# names of result schema 1 (fidelity meant the engine against the exact state)
_RENAMED = {**V.LEGACY_METRICS, "infidelity": "exact_infidelity"}
_NEEDS = {  # objective -> (what the run needs, the setting that provides it)
    "energy": ("a Hamiltonian", "hamiltonian=h2 (or ising, or your own)"),
    "expected_cut": ("the qaoa circuit", "circuit=qaoa"),
    "max_cut": ("the qaoa circuit", "circuit=qaoa"),
    "target_fidelity": ("a target state", "optimize.target=ghz (w, a bitstring, a .qasm file)"),
    "fitness": ("a target state", "optimize.target=ghz (w, a bitstring, a .qasm file)"),
    "ideal_energy": ("a Hamiltonian", "hamiltonian=h2 (or ising, or your own)"),
    "xeb_fidelity": ("the random circuit", "circuit=random"),
    "xeb_fidelity_sampled": ("the random circuit and shots", "circuit=random run.shots=1000"),
}


def names(opt: Any) -> list[str]:
    """``optimize.objective`` as a list."""
    value = opt.objective
    return [str(v) for v in value] if is_list(value) else [str(value)]


def directions(opt: Any) -> list[str]:
    """``optimize.direction`` as a list, one per objective (a single one is broadcast)."""
    value = opt.direction
    found = [str(v) for v in value] if is_list(value) else [str(value)]
    return found * len(names(opt)) if len(found) == 1 else found


def is_list(value: Any) -> bool:
    """A list in a config (Python or OmegaConf)."""
    from omegaconf import ListConfig

    return isinstance(value, list | tuple | ListConfig)


def check_names(opt: Any) -> None:
    """``optimize.objective`` names metrics a run reports and ``optimize.direction`` is
    minimize or maximize, else a :class:`ConfigError` naming the allowed values. A plain
    run ignores both, so a misspelt name would go unnoticed until an Optuna sweep (which
    also checks, with :func:`check`, that the run can produce the objective)."""

    def entries(key: str, value: Any) -> list[tuple[str, Any]]:
        if is_list(value):
            return [(f"{key}[{i}]", v) for i, v in enumerate(value)]
        return [(key, value)]

    known = sorted({m.key for m in V.METRICS} | set(DERIVED))
    for key, name in entries("optimize.objective", opt.objective):
        if isinstance(name, str) and name.startswith(V.EXPVAL_PREFIX):
            continue  # an observable's expectation value (the sweep checks run.observables)
        if not isinstance(name, str) or name not in known:
            raise ConfigError(
                f"{key}={name!r} is not a metric of a run: choose one of {', '.join(known)}, "
                f"or {V.EXPVAL_PREFIX}<PAULI> for an observable in run.observables"
            )
    for key, direction in entries("optimize.direction", opt.direction):
        check_choice(key, direction, DIRECTIONS)


def check(cfg: Any) -> None:
    """Refuse, naming the setting, an objective the configured run cannot produce."""
    opt = cfg.optimize
    objectives = names(opt)
    if not objectives:
        raise ConfigError("optimize.objective=[] is invalid: name at least one metric")
    dirs = directions(opt)
    if len(dirs) != len(objectives):
        raise ConfigError(
            f"optimize.direction={dirs} has {len(dirs)} entries for {len(objectives)} "
            f"objectives {objectives}: give one direction, or one per objective"
        )
    for i, d in enumerate(dirs):
        check_choice(
            f"optimize.direction[{i}]" if len(dirs) > 1 else "optimize.direction", d, DIRECTIONS
        )
    for name in objectives:
        _check_available(cfg, name)
    if opt.min_exact_fidelity is not None:
        check_range("optimize.min_exact_fidelity", opt.min_exact_fidelity, 0.0, 1.0)
        check_range("optimize.penalty", opt.penalty, 0.0)
        if len(objectives) > 1:
            raise ConfigError(
                "optimize.min_exact_fidelity applies to a single objective: with several "
                f"({objectives}) the Pareto front shows the trade-off; set "
                "optimize.min_exact_fidelity=null or optimize.objective to one metric"
            )
        _check_available(cfg, "exact_fidelity", setting="optimize.min_exact_fidelity")
    check_range("optimize.two_qubit_penalty", opt.two_qubit_penalty, 0.0)
    if opt.stop_at is not None and len(objectives) > 1:
        raise ConfigError(
            "optimize.stop_at applies to a single objective: set optimize.stop_at=null"
        )


def _check_available(cfg: Any, name: str, setting: str = "optimize.objective") -> None:
    known = sorted({m.key for m in V.METRICS} | set(DERIVED))
    if name.startswith(V.EXPVAL_PREFIX):
        pauli = name.removeprefix(V.EXPVAL_PREFIX).upper()
        if pauli not in [str(o).upper() for o in cfg.run.observables]:
            raise ConfigError(
                f"{setting}={name} needs the observable {pauli} in run.observables "
                f"(now {list(cfg.run.observables)})"
            )
        return
    if name in _RENAMED:
        hint = (
            "; for how far noise moved the state from the noiseless circuit use "
            "'ideal_fidelity' (or 'ideal_infidelity', 'ideal_tvd')"
            if "fidelity" in name or "distance" in name
            else ""
        )
        raise ConfigError(
            f"{setting}={name!r} is a name of the old result schema: that figure is now "
            f"{_RENAMED[name]!r}{hint}"
        )
    if name not in known:
        raise ConfigError(
            f"{setting}={name!r} is not a metric of a run: choose one of {', '.join(known)}, "
            f"or {V.EXPVAL_PREFIX}<PAULI> for an observable in run.observables"
        )
    if name in NEEDS_EXACT:
        run = cfg.run
        if not run.compare_to_exact:
            raise ConfigError(
                f"{setting}={name} needs the exact comparison, but run.compare_to_exact=false: "
                "set run.compare_to_exact=true, or choose another objective"
            )
        n = cfg.circuit.get("n_qubits")
        if isinstance(n, int) and n > run.exact_max_qubits and cfg.simulator.name != "fdm":
            raise ConfigError(
                f"{setting}={name} needs the exact comparison, which is skipped at "
                f"circuit.n_qubits={n} > run.exact_max_qubits={run.exact_max_qubits}: raise "
                "run.exact_max_qubits, use fewer qubits, or choose another objective"
            )
    if name in NEEDS_IDEAL:
        n, limit = cfg.circuit.get("n_qubits"), cfg.run.ideal_max_qubits
        if isinstance(n, int) and n > limit:
            raise ConfigError(
                f"{setting}={name} needs the noiseless state vector, which is skipped at "
                f"circuit.n_qubits={n} > run.ideal_max_qubits={limit}: raise "
                "run.ideal_max_qubits, or choose another objective"
            )
    needs = _NEEDS.get(name)
    if needs is None:
        return
    what, how = needs
    missing = (
        (name in ("energy", "ideal_energy") and cfg.hamiltonian.name == "none")
        or (name.startswith("xeb_") and cfg.circuit.name != "random")
        or (name == "xeb_fidelity_sampled" and cfg.run.shots == 0)
        or (name in ("expected_cut", "max_cut") and cfg.circuit.name != "qaoa")
        or (name in ("target_fidelity", "fitness") and cfg.optimize.target is None)
    )
    if missing:
        raise ConfigError(f"{setting}={name} needs {what}: set {how}")


def value(result: Any, name: str, opt: Any) -> float | None:
    """The value of one objective for a run's result (None: the run does not have it)."""
    if name in ("exact_infidelity", "ideal_infidelity"):
        fidelity = getattr(result, name.replace("infidelity", "fidelity"))
        return None if fidelity is None else 1.0 - fidelity
    if name == "fitness":
        if result.target_fidelity is None or result.two_qubit_gates is None:
            return None
        return result.target_fidelity - opt.two_qubit_penalty * result.two_qubit_gates
    if name.startswith(V.EXPVAL_PREFIX):
        values = {k.upper(): v for k, v in result.expectation_values.items()}
        return values.get(name.removeprefix(V.EXPVAL_PREFIX).upper())
    found = getattr(result, name, None)
    return None if found is None else float(found)


def scorer(cfg: Any) -> Callable[[Any], dict[str, float]]:
    """``score(result) -> {objective: value}`` for the runs of an Optuna sweep."""
    opt = cfg.optimize
    objectives, dirs = names(opt), directions(opt)

    def score(result: Any) -> dict[str, float]:
        out = {}
        for name in objectives:
            found = value(result, name, opt)
            if found is None:
                why = f" ({result.exact_reference})" if name in NEEDS_EXACT else ""
                why = f" ({result.ideal_reference})" if name in NEEDS_IDEAL else why
                raise ObjectiveUndefined(
                    f"optimize.objective={name} has no value for this run{why}: the trial "
                    "is recorded as failed"
                )
            out[name] = found
        if opt.min_exact_fidelity is not None:
            fidelity = result.exact_fidelity
            if fidelity is None:
                raise ObjectiveUndefined(
                    "optimize.min_exact_fidelity needs the run's fidelity to the exact state "
                    f"({result.exact_reference})"
                )
            shortfall = max(0.0, opt.min_exact_fidelity - fidelity)
            sign = 1.0 if dirs[0] == "minimize" else -1.0
            out[objectives[0]] += sign * opt.penalty * shortfall
        return out

    return score


def returned(objectives: dict[str, float]) -> float | list[float]:
    """What the task returns to the sweeper: one float, or a list for several objectives."""
    values = list(objectives.values())
    return values[0] if len(values) == 1 else values
