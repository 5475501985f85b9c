"""The study's outcome on the batch's parent MLflow run, at the end of an Optuna sweep.

Called by the batch callback once the sweep's jobs are done. On the parent run: the
metric ``best_value`` and params ``best.<key>`` (one objective), ``pareto_size`` (several),
the study's name and storage as tags, and under ``optimization/``: the trials as a table
(``trials.csv``, each joined to its child run by job number), the optimisation history,
parameter importances (when Optuna can compute them), the Pareto front (two objectives)
and, for an architecture search, the best circuit as OpenQASM and as a text diagram.
Returns the lines the terminal prints and the number of trials the sweep asked for.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import Any

from lret_runner.optimize import objectives
from lret_runner.optimize.study import BATCH_ATTR, ERROR_ATTR, JOB_ATTR, grouped, location

ARTIFACT_DIR = "optimization"


def report(
    tracker: Any, parent_run_id: str, cfg: Any, root: Path, jobs: list[Any]
) -> tuple[list[str], int | None]:
    """Record the study on the parent run (see the module docstring); returns the lines to
    print and how many trials this sweep asked for (None: the study was never created)."""
    import optuna

    storage, name = location(cfg, root)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # the sweep stopped before the study was created
        return [f"study {name!r}: not created"], None
    runs = {r.job_num: r for r in jobs if r.job_num is not None}
    mine = [t for t in study.trials if t.user_attrs.get(BATCH_ATTR) == parent_run_id]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    names = objectives.names(cfg.optimize)
    tracker.set_tags(parent_run_id, {"optuna.study": name, "optuna.storage": storage})
    tracker.log_metrics(
        parent_run_id,
        {"study_trials": len(study.trials), "study_completed": len(complete), "trials": len(mine)},
    )
    failed = sum(t.state == optuna.trial.TrialState.FAIL for t in mine)
    lines = [
        f"study {name!r} ({storage}): {len(mine)} trials in this sweep ({failed} failed), "
        f"{len(study.trials)} in the study"
    ]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        files = [_trials_csv(out / "trials.csv", study, names, runs, parent_run_id)]
        if complete:
            files += _figures(out, study, names)
        if not complete:
            lines.append("no trial completed: nothing to report as best")
        elif len(names) == 1:
            lines += _best(tracker, parent_run_id, cfg, study, runs, out, files)
        else:
            front = study.best_trials
            tracker.log_metrics(parent_run_id, {"pareto_size": len(front)})
            lines.append(f"Pareto front ({', '.join(names)}): {len(front)} trials")
            lines += [f"  trial {t.number}: {_values(t.values)} {t.params}" for t in front[:10]]
        tracker.log_artifacts(parent_run_id, files, ARTIFACT_DIR)
    return lines, len(mine)


def _best(
    tracker: Any,
    run_id: str,
    cfg: Any,
    study: Any,
    runs: dict[int, Any],
    out: Path,
    files: list[Path],
) -> list[str]:
    best = study.best_trial
    opt = cfg.optimize
    tracker.log_metrics(run_id, {"best_value": best.value})
    tracker.log_params(run_id, {f"best.{k}": v for k, v in best.params.items()})
    child = (
        runs.get(best.user_attrs.get(JOB_ATTR))
        if best.user_attrs.get(BATCH_ATTR) == run_id
        else None
    )
    where = f", run {child.run_id}" if child is not None else ""
    lines = [f"best {objectives.names(opt)[0]} = {best.value:.6g} (trial {best.number}{where})"]
    shown = list(best.params.items())
    lines += [f"  {k} = {v}" for k, v in shown[:12]]
    if len(shown) > 12:
        lines.append(f"  ... and {len(shown) - 12} more (params best.* on the batch run)")
    bound = opt.min_exact_fidelity
    if bound is not None and child is not None:
        fidelity = child.metrics.get("exact_fidelity")
        met = fidelity is not None and fidelity >= bound
        tracker.set_tags(run_id, {"optimize.constraint_met": str(met).lower()})
        lines.append(
            f"fidelity to the exact state {fidelity:.6f} meets optimize.min_exact_fidelity={bound}"
            if met
            else f"no trial met optimize.min_exact_fidelity={bound}: the best has fidelity "
            f"{fidelity} to the exact state (its value includes the penalty); widen the "
            "search, allow a larger max_rank, or lower the bound"
        )
    if cfg.circuit.name == "architecture":
        lines += _best_circuit(cfg, best.params, out, files)
    return lines


def _best_circuit(cfg: Any, params: dict[str, Any], out: Path, files: list[Path]) -> list[str]:
    """The best architecture as OpenQASM and a diagram (printed too)."""
    import cirq

    from lret_runner.circuits import architecture

    chosen = grouped(params)  # the searched slots (and angles) as lists
    slots = list(chosen.get("circuit.slots", cfg.circuit.slots))
    angles = chosen.get("circuit.angles", cfg.circuit.angles)
    angles = None if angles is None else list(angles)
    circuit = architecture(n_qubits=cfg.circuit.n_qubits, slots=slots, angles=angles)
    kept = [s for s in slots if s != "none"]
    qasm = cirq.qasm(circuit) if len(circuit) else "OPENQASM 2.0;\n// no gates\n"
    diagram = str(circuit) if len(circuit) else "(no gates)"
    (out / "best_circuit.qasm").write_text(qasm)
    (out / "best_circuit.txt").write_text(f"slots: {kept}\n\n{diagram}\n")
    files += [out / "best_circuit.qasm", out / "best_circuit.txt"]
    return [f"best circuit ({len(kept)} gates: {' '.join(kept)}):", diagram]


def _values(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"


def _trials_csv(path: Path, study: Any, names: list[str], runs: dict[int, Any], batch: str) -> Path:
    params = sorted({k for t in study.trials for k in t.params})
    columns = ["number", "state", *names, "run_id", "batch", *params, "error"]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for t in study.trials:
            own = t.user_attrs.get(BATCH_ATTR)
            run = runs.get(t.user_attrs.get(JOB_ATTR)) if own == batch else None
            writer.writerow(
                {
                    "number": t.number,
                    "state": t.state.name,
                    **dict(zip(names, t.values or [], strict=False)),
                    "run_id": run.run_id if run is not None else "",
                    "batch": own or "",
                    **t.params,
                    "error": t.user_attrs.get(ERROR_ATTR, ""),
                }
            )
    return path


def _figures(out: Path, study: Any, names: list[str]) -> list[Path]:
    """History, importances and the Pareto front, where Optuna can draw them."""
    import sys
    import warnings

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    from optuna.visualization import matplotlib as vis

    from lret_runner.plots import save

    single = len(names) == 1
    draw = {
        "history": lambda: vis.plot_optimization_history(
            study, target=None if single else (lambda t: t.values[0]), target_name=names[0]
        )
    }
    if any(t.params for t in study.trials):
        draw["importances"] = lambda: vis.plot_param_importances(
            study, target=None if single else (lambda t: t.values[0]), target_name=names[0]
        )
    if len(names) in (2, 3):
        draw["pareto_front"] = lambda: vis.plot_pareto_front(study, target_names=names)
    files = []
    for stem, make in draw.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning
                axes = make()
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # not computable for this study (e.g. importances of one trial)
        figure = axes.flat[0].figure if hasattr(axes, "flat") else axes.figure
        files.append(save(figure, out / f"{stem}.png"))
    return files
