"""The Optuna study behind ``-m +optimize=NAME``, and the sweep loop that runs it.

``hydra_plugins.lret_optuna_sweeper.LretOptunaSweeper`` (set as ``hydra.sweeper._target_``
by the presets, over Hydra's ``optuna`` sweeper config) hands its work to
:class:`StudySweeper`, Hydra's Optuna sweeper with these differences:

- the sampler is chosen by name (``optimize.sampler``: tpe random grid cmaes gp qmc
  nsgaii, seeded by ``optimize.seed``), or by ``hydra/sweeper/sampler`` when it is null;
- the study lives in SQLite next to the MLflow store (``mlruns/optuna.db``) under
  ``<session>-<preset>`` unless ``optimize.storage`` / ``optimize.study_name`` say
  otherwise. Running the command again adds ``n_trials`` trials to the same study; trials
  left running by a killed sweep (their process is gone) are marked failed first. A stored
  study made for a different problem (another circuit, noise, objective) is refused;
- ``optimize.space`` adds a generated search space: ``angles`` (the vqe circuit's angles,
  or the qaoa circuit's gammas and betas) or ``architecture`` (the architecture circuit's
  slots, and their angles with ``optimize.search_angles``). Parameters named ``KEY.I``
  are handed to the job as one list ``KEY=[...]``;
- a trial whose job failed or whose objective is undefined is told FAIL with the reason
  (``lret.error``); the study goes on unless more than ``max_failure_rate`` of a batch
  failed (the presets set 1.0: it always goes on). An interrupt marks the trials it cut
  short as failed before it propagates; ``optimize.stop_at`` ends the study early;
- every trial carries its batch (the parent MLflow run), its job number and its owner
  process as user attributes, which is how the report joins trials and runs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

from lret_runner.errors import ConfigError, check_choice, check_range

log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "qmc", "nsgaii")
SPACES = ("angles", "architecture")
STUDY_FILE = "optuna.db"
BATCH_ATTR = "lret.batch"  # the parent MLflow run of the sweep that ran the trial
JOB_ATTR = "lret.job"  # the trial's job number in that sweep (the child run's job_num)
OWNER_ATTR = "lret.owner"  # the sweeper process (host, pid, start time)
ERROR_ATTR = "lret.error"  # why a trial failed
PROBLEM_ATTR = "lret.problem"  # on the study: the fixed part of the config it optimises
_LIST_PARAM = re.compile(r"^(?P<key>.+)\.(?P<index>\d+)$")


def is_optuna(hydra_cfg: Any) -> bool:
    """Whether a multirun's sweeper is an Optuna sweeper (Hydra's or ours)."""
    sweeper = hydra_cfg.sweeper
    return "n_trials" in sweeper and "direction" in sweeper


def is_lret_study(hydra_cfg: Any) -> bool:
    """Whether the Optuna sweeper is lret_runner's (the presets'), which keeps the study."""
    return str(hydra_cfg.sweeper.get("_target_", "")).endswith("LretOptunaSweeper")


def preset(cfg: Any) -> str:
    """The ``+optimize=NAME`` preset of a composed config ("optimize" without one)."""
    from hydra.core.hydra_config import HydraConfig

    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    return str(choices.get("optimize") or choices.get("+optimize") or "optimize")


def location(cfg: Any, root: Path) -> tuple[str, str]:
    """(storage URL, study name): ``optimize.storage`` or sqlite ``optuna.db`` beside the
    MLflow SQLite store (under ``root/mlruns`` for a server or no tracking);
    ``optimize.study_name`` or ``<session>-<preset>``."""
    from lret_runner.tracking import store_uri
    from lret_runner.tracking.store import STORE_DIR, sqlite_path

    opt = cfg.optimize
    name = opt.study_name or f"{cfg.session.name}-{preset(cfg)}"
    if opt.storage:
        return str(opt.storage), name
    uri = store_uri(cfg.tracking, root)
    db = sqlite_path(uri) if uri is not None else None
    folder = db.parent if db is not None else root.resolve() / STORE_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"the Optuna study cannot be stored in {folder} ({exc.strerror or exc}): set "
            "optimize.storage to a writable sqlite:////path/optuna.db or a database URL"
        ) from None
    return f"sqlite:///{folder / STUDY_FILE}", name


# ---------------------------------------------------------------- sampler


def check_sampler(opt: Any) -> None:
    """The sampler settings, and that the sampler's dependency is installed."""
    if opt.sampler is None:
        return
    check_choice("optimize.sampler", opt.sampler, SAMPLERS)
    needs = {"cmaes": "cmaes", "gp": "torch"}.get(opt.sampler)
    if needs is not None:
        import importlib.util

        if importlib.util.find_spec(needs) is None:
            raise ConfigError(
                f"optimize.sampler={opt.sampler} needs the Python package {needs!r}, which is "
                f"not installed: pip install {needs}, or choose another of {', '.join(SAMPLERS)}"
            )
    if opt.seed is not None:
        check_range("optimize.seed", opt.seed, 0, integer=True)
    check_range("optimize.n_startup_trials", opt.n_startup_trials, 0, integer=True)
    check_range("optimize.population_size", opt.population_size, 2, integer=True)
    if opt.mutation_prob is not None:
        check_range("optimize.mutation_prob", opt.mutation_prob, 0.0, 1.0)
    check_range("optimize.crossover_prob", opt.crossover_prob, 0.0, 1.0)
    check_range("optimize.swapping_prob", opt.swapping_prob, 0.0, 1.0)


def make_sampler(opt: Any, hydra_sampler: Any) -> Any:
    """The sampler ``optimize.sampler`` names (grid: built once the space is known), or
    Hydra's ``hydra.sweeper.sampler`` config instantiated when it is null."""
    import functools

    import optuna

    s = optuna.samplers
    seed = opt.seed
    startup = opt.n_startup_trials
    if opt.sampler is None:
        from hydra.utils import instantiate

        whitelist = ("hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*")
        return instantiate(hydra_sampler, _execution_whitelist_=whitelist)
    if opt.sampler == "grid":
        return functools.partial(s.GridSampler, seed=seed)
    if opt.sampler == "nsgaii":
        return s.NSGAIISampler(
            seed=seed,
            population_size=opt.population_size,
            mutation_prob=opt.mutation_prob,
            crossover_prob=opt.crossover_prob,
            swapping_prob=opt.swapping_prob,
        )
    return {
        "tpe": lambda: s.TPESampler(seed=seed, n_startup_trials=startup),
        "random": lambda: s.RandomSampler(seed=seed),
        "cmaes": lambda: s.CmaEsSampler(seed=seed, n_startup_trials=max(startup, 1)),
        "gp": lambda: s.GPSampler(seed=seed, n_startup_trials=startup),
        "qmc": lambda: s.QMCSampler(seed=seed),
    }[opt.sampler]()


# ---------------------------------------------------------------- generated search spaces


def generated_space(cfg: Any) -> dict[str, Any]:
    """The distributions ``optimize.space`` adds, by parameter name (``KEY.I``)."""
    import math as m

    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from lret_runner import circuits

    opt, circuit = cfg.optimize, cfg.circuit
    if opt.space is None:
        return {}
    check_choice("optimize.space", opt.space, SPACES)
    full = FloatDistribution(-m.pi, m.pi)
    if opt.space == "angles":
        if circuit.name == "vqe":
            count = circuits.vqe_angle_count(circuit.n_qubits, circuit.depth, circuit.rotations)
            return {f"circuit.angles.{i}": full for i in range(count)}
        if circuit.name == "qaoa":
            return {
                **{f"circuit.gammas.{i}": FloatDistribution(0.0, m.pi) for i in range(circuit.p)},
                **{
                    f"circuit.betas.{i}": FloatDistribution(0.0, m.pi / 2) for i in range(circuit.p)
                },
            }
        raise ConfigError(
            f"optimize.space=angles searches the angles of the vqe or qaoa circuit, not "
            f"circuit={circuit.name}: choose circuit=vqe or circuit=qaoa"
        )
    if circuit.name != "architecture":
        raise ConfigError(
            f"optimize.space=architecture searches the slots of circuit=architecture, not "
            f"circuit={circuit.name}: set circuit=architecture"
        )
    check_range("optimize.max_depth", opt.max_depth, 1, 1000, integer=True)
    try:
        choices = circuits.architecture_slots(circuit.n_qubits, list(opt.gates), opt.connectivity)
    except ConfigError as exc:  # name the optimize keys, not the circuit's
        raise ConfigError(
            str(exc)
            .replace("circuit.gates", "optimize.gates")
            .replace("connectivity=", "optimize.connectivity=")
        ) from None
    space: dict[str, Any] = {
        f"circuit.slots.{i}": CategoricalDistribution(choices) for i in range(opt.max_depth)
    }
    if opt.search_angles:
        space.update({f"circuit.angles.{i}": full for i in range(opt.max_depth)})
    return space


def grouped(params: dict[str, Any]) -> dict[str, Any]:
    """Trial parameters with ``KEY.0 .. KEY.N`` gathered into one list ``KEY``."""
    lists: dict[str, dict[int, Any]] = {}
    out: dict[str, Any] = {}
    for name, value in params.items():
        match = _LIST_PARAM.match(name)
        if match:
            lists.setdefault(match["key"], {})[int(match["index"])] = value
        else:
            out[name] = value
    for key, items in lists.items():
        if sorted(items) != list(range(len(items))):
            raise ConfigError(
                f"the search space sets {key} at indices {sorted(items)}: a list parameter "
                f"needs every index from 0 ({key}.0, {key}.1, ...)"
            )
        out[key] = [items[i] for i in range(len(items))]
    return out


def as_overrides(params: dict[str, Any]) -> list[str]:
    """Trial parameters as Hydra overrides; ``KEY.0 .. KEY.N`` become one ``KEY=[...]``."""
    return [
        f"{k}=[{','.join(str(x) for x in v)}]" if isinstance(v, list) else f"{k}={v}"
        for k, v in grouped(params).items()
    ]


# ---------------------------------------------------------------- the stored problem


def problem(cfg: Any, searched: set[str]) -> dict[str, Any]:
    """What a study optimises apart from its search space: the result config without the
    searched keys, the objectives and directions (a stored study must match it)."""
    from lret_runner.config import result_config
    from lret_runner.optimize import objectives
    from lret_runner.tracking import vocabulary as V

    flat = V.flatten(result_config(cfg))
    prefixes = {_LIST_PARAM.sub(r"\g<key>", k) for k in searched} | searched
    kept = {k: v for k, v in flat.items() if k not in prefixes}
    kept["optimize.objective"] = objectives.names(cfg.optimize)
    kept["optimize.direction"] = objectives.directions(cfg.optimize)
    return json.loads(json.dumps(kept, default=str))


def parse_space(cfg: Any, overrides: list[str]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(search space, fixed params, fixed overrides) of a study: the sweeper's params and the
    command line's overrides (a command-line sweep of a key replaces the preset's; a plain
    value fixes it), then the generated space."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    params = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.get("params") or {}).items()]
    space, fixed, fixed_overrides = create_params_from_overrides(params + list(overrides))
    for name in fixed:
        space.pop(name, None)
    return {**space, **generated_space(cfg)}, fixed, fixed_overrides


def searched_keys(cfg: Any, overrides: list[str]) -> set[str]:
    """The parameter names of the study's search space."""
    return set(parse_space(cfg, overrides)[0])


def check_grid(cfg: Any) -> None:
    """``optimize.sampler=grid`` needs every searched parameter discrete."""
    from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl

    if cfg.optimize.sampler != "grid":
        return
    for name, distribution in parse_space(cfg, list(cfg.hydra.overrides.task))[0].items():
        try:
            OptunaSweeperImpl._to_grid_sampler_choices(distribution)
        except ValueError:
            raise ConfigError(
                f"optimize.sampler=grid needs a discrete search space, but {name} is "
                f"{distribution}: search it with choice(...) or range(...), or choose "
                "another sampler"
            ) from None


def stored_studies(storage: str) -> list[Any]:
    """The studies in ``storage``; a new SQLite storage is created under a lock (two sweeps
    creating the same ``optuna.db`` at once would corrupt its tables)."""
    import optuna

    from lret_runner.tracking.store import store_lock

    with store_lock(storage):
        return optuna.get_all_study_summaries(storage)


def check_stored(cfg: Any, root: Path) -> None:
    """A stored study of the same name must optimise the same problem (else a ConfigError
    listing what differs)."""

    storage, name = location(cfg, root)
    try:
        summaries = stored_studies(storage)
    except Exception as exc:
        raise ConfigError(
            f"the Optuna storage {storage} cannot be opened ({type(exc).__name__}: {exc}): "
            "fix optimize.storage (a writable sqlite:////path/optuna.db or a database URL)"
        ) from None
    stored = next((s for s in summaries if s.study_name == name), None)
    if stored is None:
        return
    before = stored.user_attrs.get(PROBLEM_ATTR)
    now = problem(cfg, searched_keys(cfg, list(cfg.hydra.overrides.task)))
    if before is None or before == now:
        return
    changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    shown = "; ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed[:6])
    raise ConfigError(
        f"the study {name!r} in {storage} was made for another problem ({shown}): set "
        "optimize.study_name=NEW to start a new study, or restore those settings to add "
        "trials to it"
    )


# ---------------------------------------------------------------- the sweep loop


def fail_stale(study: Any) -> int:
    """Mark failed the RUNNING trials whose sweeper process is gone (a killed sweep);
    returns how many."""
    import optuna

    from lret_runner.tracking.owners import gone

    stale = 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = trial.user_attrs.get(OWNER_ATTR)
        why = gone(owner) if isinstance(owner, dict) else None
        if why is None:
            continue
        study._storage.set_trial_user_attr(trial._trial_id, ERROR_ATTR, f"the sweep was {why}")
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        stale += 1
    return stale


def _trial_values(ret: Any, n_objectives: int) -> tuple[list[float] | None, str | None]:
    """A job's return as objective values, or why it has none."""
    from hydra.core.utils import JobStatus

    if ret.status != JobStatus.COMPLETED:
        return None, str(ret._return_value) or type(ret._return_value).__name__
    value = ret.return_value
    values = list(value) if isinstance(value, list | tuple) else [value]
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        return None, f"the task returned {value!r}, not {n_objectives} number(s)"
    if len(floats) != n_objectives or not all(math.isfinite(v) for v in floats):
        return None, f"the task returned {value!r}, not {n_objectives} finite number(s)"
    return floats, None


def make_sweeper(config: Any, **settings: Any) -> Any:
    """The :class:`StudySweeper` for a composed multirun config (imports optuna lazily)."""
    from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl

    class StudySweeper(OptunaSweeperImpl):
        """Hydra's Optuna sweeper with the differences the module docstring lists."""

        def sweep(self, arguments: list[str]) -> None:
            run_study(self, list(arguments))

        def _configure_trials(self, trials, space, fixed, fixed_overrides):  # type: ignore[no-untyped-def]
            out = []
            for trial in trials:
                for name, distribution in space.items():
                    trial._suggest(name, distribution)
                for name, value in fixed.items():
                    trial.set_user_attr(name, value)
                if self.custom_search_space_extender:
                    self.custom_search_space_extender(self.config, trial)
                out.append(tuple(as_overrides({**trial.params, **fixed})) + tuple(fixed_overrides))
            return out

    from lret_runner.optimize import objectives

    opt = config.optimize
    settings["sampler"] = make_sampler(opt, settings["sampler"])
    settings["direction"] = objectives.directions(opt)
    return StudySweeper(**settings)


def run_study(sweeper: Any, arguments: list[str]) -> None:
    """The ask / launch / tell loop (see the module docstring)."""
    import functools
    from pathlib import Path

    import optuna
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from lret_runner.tracking import vocabulary as V
    from lret_runner.tracking.owners import owner_tags

    cfg = sweeper.config
    opt = cfg.optimize
    space, fixed, fixed_overrides = parse_space(cfg, arguments)
    n_trials = sweeper.n_trials
    sampler = sweeper.sampler
    if isinstance(sampler, functools.partial) and sampler.func is optuna.samplers.GridSampler:
        grid = {k: sweeper._to_grid_sampler_choices(d) for k, d in space.items()}
        sampler = sampler(grid)
        n_trials = min(n_trials, math.prod(len(v) for v in grid.values()))
    root = Path(HydraConfig.get().runtime.cwd)
    storage, name = location(cfg, root)
    directions = sweeper._get_directions()
    from lret_runner.tracking.store import store_lock

    with store_lock(storage):  # a new optuna.db is created once, not by two sweeps at once
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            directions=directions,
            load_if_exists=True,
        )
    if PROBLEM_ATTR not in study.user_attrs:
        study.set_user_attr(PROBLEM_ATTR, problem(cfg, set(space)))
    stale = fail_stale(study)
    done_before = len(study.trials)
    log.info(
        f"Study {name!r} in {storage}: {done_before} earlier trials"
        + (f" ({stale} left running by a killed sweep marked failed)" if stale else "")
    )
    log.info(f"Sampler: {type(sampler).__name__}; directions: {directions}; trials: {n_trials}")
    batch = os.environ.get(V.BATCH_ENV)
    owner = owner_tags()
    launched = 0
    while launched < n_trials:
        size = min(sweeper.n_jobs, n_trials - launched)
        trials = [study.ask() for _ in range(size)]
        for k, trial in enumerate(trials):
            trial.set_user_attr(OWNER_ATTR, owner)
            trial.set_user_attr(JOB_ATTR, sweeper.job_idx + k)
            if batch:
                trial.set_user_attr(BATCH_ATTR, batch)
        try:
            overrides = sweeper._configure_trials(trials, space, fixed, fixed_overrides)
            returns = sweeper.launcher.launch(overrides, initial_job_idx=sweeper.job_idx)
        except BaseException as exc:  # an interrupt (or a launcher fault): nothing left RUNNING
            for trial in trials:
                trial.set_user_attr(ERROR_ATTR, f"the sweep stopped: {exc!r}")
                _tell(study, trial, state=optuna.trial.TrialState.FAIL)
            raise
        sweeper.job_idx += len(returns)
        launched += size
        reached = False
        failed = []
        for trial, ret in zip(trials, returns, strict=True):
            values, error = _trial_values(ret, len(directions))
            if values is None:
                trial.set_user_attr(ERROR_ATTR, error)
                _tell(study, trial, state=optuna.trial.TrialState.FAIL)
                log.warning(f"trial {trial.number} failed: {error}")
                failed.append(ret)
                continue
            _tell(study, trial, values)
            if opt.stop_at is not None:
                better = (
                    values[0] >= opt.stop_at
                    if directions[0] == "maximize"
                    else values[0] <= opt.stop_at
                )
                reached = reached or better
        if failed and len(failed) / len(returns) > sweeper.max_failure_rate:
            log.error(
                f"{len(failed)} of {len(returns)} trials failed, more than "
                f"hydra.sweeper.max_failure_rate={sweeper.max_failure_rate}: stopping"
            )
            _ = failed[0].return_value  # raises the job's error with its traceback
        if reached:
            log.info(f"optimize.stop_at={opt.stop_at} reached after {launched} trials: stopping")
            break
    outcome = results(study, len(directions))
    OmegaConf.save(OmegaConf.create(outcome), f"{cfg.hydra.sweep.dir}/optimization_results.yaml")
    if "best_value" in outcome:
        log.info(f"Best value: {outcome['best_value']}; parameters: {outcome['best_params']}")
    else:
        log.info(f"Pareto front: {len(outcome['solutions'])} trials")


def _tell(study: Any, trial: Any, values: Any = None, **kwargs: Any) -> None:
    """``study.tell``; the grid sampler calls ``study.stop()`` once its grid is used up,
    which Optuna refuses outside ``optimize()`` after the trial is already recorded."""
    try:
        study.tell(trial, values, **kwargs)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


def results(study: Any, n_objectives: int) -> dict[str, Any]:
    """optimization_results.yaml: the best parameters and value (the Pareto front for
    several objectives), or that no trial completed."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    out: dict[str, Any] = {"name": "optuna", "study": study.study_name, "trials": len(study.trials)}
    if not complete:
        return {**out, "best_params": None, "best_value": None, "note": "no trial completed"}
    if n_objectives == 1:
        best = study.best_trial
        return {**out, "best_params": best.params, "best_value": best.value}
    front = [{"params": t.params, "values": t.values} for t in study.best_trials]
    return {**out, "solutions": front}


def check(cfg: Any, root: Path) -> None:
    """Everything an Optuna sweep needs, before its batch run or first trial exists: the
    objective can be produced; with the presets' sweeper, the sampler and the search space
    are valid and a stored study of the same name optimises the same problem; with Hydra's
    own, its direction is the objective's."""
    from lret_runner.optimize import objectives

    objectives.check(cfg)
    if not is_lret_study(cfg.hydra):  # Hydra's own Optuna sweeper: its direction rules
        direction = cfg.hydra.sweeper.direction
        found = [
            str(getattr(d, "name", d))
            for d in (direction if objectives.is_list(direction) else [direction])
        ]
        wanted = objectives.directions(cfg.optimize)
        if found * (len(wanted) if len(found) == 1 else 1) != wanted:
            raise ConfigError(
                f"hydra.sweeper.direction={found} but optimize.direction={wanted}: the task "
                f"returns {objectives.names(cfg.optimize)}; set hydra.sweeper.direction to "
                "match, or use a +optimize=NAME preset (they tie the two)"
            )
        return
    check_sampler(cfg.optimize)
    check_grid(cfg)
    check_stored(cfg, root)
