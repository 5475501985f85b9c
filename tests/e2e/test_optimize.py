"""Optuna studies as real multiruns: ``python -m lret_runner -m +optimize=NAME`` in a
subprocess, the study in ``mlruns/optuna.db``, every trial a child run of the batch.

Each preset runs at tiny size; the checks read the MLflow store and the Optuna storage
back and compare the reported best with the trials and with independent references
(diagonalisation for H2, Cirq's state vector for the found circuit).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from conftest import compose_config, sqlite_uri
from mlflow import MlflowClient

from lret_runner import metrics

ENV = {"LRET_BATCH_RUN_ID": None}


class Study:
    """A launch directory: runs ``-m +optimize=...`` there and reads the store back."""

    def __init__(self, root: Path, run_cli: Any, start_cli: Any) -> None:
        self.root, self._run, self._start = root, run_cli, start_cli
        self.client = MlflowClient(sqlite_uri(root))

    def run(self, *args: str, timeout: float = 300) -> Any:
        return self._run(["-m", *args], self.root, env=ENV, timeout=timeout)

    def start(self, *args: str) -> Any:
        return self._start(["-m", *args], self.root, env=ENV)

    def batches(self, session: str) -> list[Any]:
        experiment = self.client.get_experiment_by_name(session)
        runs = self.client.search_runs([experiment.experiment_id], "tags.`lret.batch` = 'true'")
        return sorted(runs, key=lambda r: r.info.start_time)

    def children(self, parent: Any) -> list[Any]:
        return self.client.search_runs(
            [parent.info.experiment_id],
            f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
            max_results=5000,
        )

    def study(self, name: str) -> optuna.Study:
        return optuna.load_study(study_name=name, storage=f"sqlite:///{self.root}/mlruns/optuna.db")

    def results(self) -> dict[str, Any]:
        (path,) = self.root.glob("multirun/*/*/optimization_results.yaml")
        return yaml.safe_load(path.read_text())

    def artifacts(self, run_id: str, path: str = "optimization") -> list[str]:
        return sorted(Path(a.path).name for a in self.client.list_artifacts(run_id, path))


@pytest.fixture
def opt(tmp_path: Path, fresh_store: Path, run_cli: Any, start_cli: Any) -> Study:
    return Study(tmp_path, run_cli, start_cli)


def test_vqe_energy_reaches_the_h2_ground_energy(opt: Study) -> None:
    done = opt.run("+optimize=vqe_energy", "noise=none", "hydra.sweeper.n_trials=80")
    assert done.returncode == 0, done.stderr[-3000:]
    cfg = compose_config(["hamiltonian=h2", "circuit.n_qubits=2"])
    terms = [(k, float(v)) for k, v in cfg.hamiltonian.terms.items()]
    exact = np.linalg.eigvalsh(metrics.pauli_sum_matrix(terms))[0]  # -1.857275
    (parent,) = opt.batches("vqe_energy")
    best = parent.data.metrics["best_value"]
    assert abs(best - exact) < 1e-2
    children = opt.children(parent)
    assert len(children) == 80 and {c.info.status for c in children} == {"FINISHED"}
    energies = [c.data.metrics["objective.energy"] for c in children]
    assert best == pytest.approx(min(energies), abs=1e-12)  # the best is one of the trials
    assert opt.results()["best_value"] == pytest.approx(best, abs=1e-12)
    assert set(parent.data.params) == {"best.circuit.angles.0", "best.circuit.angles.1"}
    assert {"trials.csv", "history.png", "importances.png"} <= set(
        opt.artifacts(parent.info.run_id)
    )
    assert parent.info.status == "FINISHED"


def test_threshold_tuning_meets_the_bound_two_trials_at_a_time(opt: Study) -> None:
    done = opt.run(
        "+optimize=threshold_tuning", "hydra/launcher=joblib", "hydra.sweeper.n_trials=6"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "is launching 2 jobs" in done.stdout  # joblib runs each batch of two at once
    (parent,) = opt.batches("threshold_tuning")
    assert parent.data.tags["optimize.constraint_met"] == "true"
    children = {c.info.run_id: c for c in opt.children(parent)}
    assert len(children) == 6
    feasible = [
        c.data.metrics["simulation_time_seconds"]
        for c in children.values()
        if c.data.metrics["exact_fidelity"] >= 0.99
    ]
    # the best is the fastest run that meets the bound (the others carry a penalty)
    assert parent.data.metrics["best_value"] == pytest.approx(min(feasible), abs=1e-12)
    assert "meets optimize.min_exact_fidelity=0.99" in done.stdout


def test_threshold_tuning_says_when_no_trial_meets_the_bound(opt: Study) -> None:
    done = opt.run(
        "+optimize=threshold_tuning",
        "hydra.sweeper.n_trials=2",
        "optimize.min_exact_fidelity=0.999999",
        "simulator.max_rank=choice(2)",  # replaces the preset's choices
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no trial met optimize.min_exact_fidelity=0.999999" in done.stdout
    (parent,) = opt.batches("threshold_tuning")
    assert parent.data.tags["optimize.constraint_met"] == "false"


def test_two_objectives_report_their_pareto_front(opt: Study) -> None:
    done = opt.run(
        "+optimize=threshold_tuning",
        "hydra.sweeper.n_trials=4",
        "optimize.objective=[simulation_time_seconds,exact_infidelity]",
        "optimize.min_exact_fidelity=null",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (parent,) = opt.batches("threshold_tuning")
    front = opt.study("threshold_tuning-threshold_tuning").best_trials
    assert parent.data.metrics["pareto_size"] == len(front) >= 1
    assert "pareto_front.png" in opt.artifacts(parent.info.run_id)
    assert len(opt.results()["solutions"]) == len(front)


def test_qaoa_maxcut_best_is_its_best_trial(opt: Study) -> None:
    done = opt.run("+optimize=qaoa_maxcut", "circuit.n_qubits=4", "hydra.sweeper.n_trials=8")
    assert done.returncode == 0, done.stderr[-3000:]
    (parent,) = opt.batches("qaoa_maxcut")
    cuts = [c.data.metrics["expected_cut"] for c in opt.children(parent)]
    assert parent.data.metrics["best_value"] == pytest.approx(max(cuts), abs=1e-12)
    assert max(cuts) <= 4  # the ring of four has a maximum cut of 4
    assert {"best.circuit.gammas.0", "best.circuit.betas.0"} == set(parent.data.params)


def test_circuit_automl_at_tiny_size_reports_its_best_circuit(opt: Study) -> None:
    done = opt.run(
        "+optimize=circuit_automl", "optimize.target=ghz", "circuit.n_qubits=2", "noise=none",
        "optimize.max_depth=2", "optimize.population_size=4", "hydra.sweeper.n_trials=4",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (parent,) = opt.batches("circuit_automl")
    assert 0 <= parent.data.metrics["best_value"] <= 1
    assert {"best_circuit.qasm", "best_circuit.txt"} <= set(opt.artifacts(parent.info.run_id))


@pytest.mark.slow  # 40 s: the seeded GHZ search (the preset at tiny size is in the default suite)
def test_circuit_automl_finds_a_ghz_preparation(opt: Study) -> None:
    # a seeded budget: with this pool, depth and population NSGA-II (seed 0) reaches
    # fidelity 1 at trial 154 (measured); optimize.stop_at ends the search there
    done = opt.run(
        "+optimize=circuit_automl",
        "optimize.target=ghz",
        "circuit.n_qubits=3",
        "noise=none",
        "optimize.gates=[h,x,z,cnot]",
        "optimize.max_depth=4",
        "optimize.population_size=20",
        "hydra.sweeper.n_trials=200",
        "hydra/launcher=joblib",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (parent,) = opt.batches("circuit_automl")
    assert parent.data.metrics["best_value"] >= 0.99
    assert "best circuit" in done.stdout
    assert {"best_circuit.qasm", "best_circuit.txt"} <= set(opt.artifacts(parent.info.run_id))
    # the saved OpenQASM, read back by Cirq, prepares GHZ (an independent check)
    import cirq
    from cirq.contrib.qasm_import import circuit_from_qasm

    local = opt.client.download_artifacts(parent.info.run_id, "optimization/best_circuit.qasm")
    circuit = circuit_from_qasm(Path(local).read_text())
    psi = cirq.final_state_vector(
        circuit, qubit_order=sorted(circuit.all_qubits()), dtype=np.complex128
    )
    assert psi.size == 8 and abs(psi[0]) ** 2 + abs(psi[7]) ** 2 > 0.99
    assert abs(np.vdot(psi[[0, 7]], [1, 1]) / np.sqrt(2)) ** 2 >= 0.99


def test_running_again_adds_trials_to_the_stored_study(opt: Study) -> None:
    for _ in range(2):
        done = opt.run("+optimize=vqe_energy", "hydra.sweeper.n_trials=3")
        assert done.returncode == 0, done.stderr[-3000:]
    assert len(opt.study("vqe_energy-vqe_energy").trials) == 6
    first, second = opt.batches("vqe_energy")
    assert len(opt.children(first)) == len(opt.children(second)) == 3
    assert second.data.metrics["study_trials"] == 6


def test_a_killed_study_resumes(opt: Study) -> None:
    # trials of about a second (fdm on 10 qubits), so that the kill lands inside one
    slow = ["hamiltonian=ising", "circuit.n_qubits=10", "circuit.depth=3"]
    proc = opt.start("+optimize=vqe_energy", *slow, "hydra.sweeper.n_trials=200")
    name = "vqe_energy-vqe_energy"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until trials have finished and others are running
        try:
            trials = opt.study(name).trials
        except KeyError:
            trials = []
        states = [t.state for t in trials]
        if states.count(optuna.trial.TrialState.COMPLETE) >= 2 and states[-1].name == "RUNNING":
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)  # nothing can clean up: its trials stay RUNNING
    proc.communicate(timeout=30)
    before = opt.study(name).trials
    running = [t.number for t in before if t.state == optuna.trial.TrialState.RUNNING]
    assert running
    done = opt.run("+optimize=vqe_energy", *slow, "hydra.sweeper.n_trials=2")
    assert done.returncode == 0, done.stderr[-3000:]
    after = opt.study(name).trials
    assert len(after) == len(before) + 2  # the earlier trials kept, two added
    for number in running:
        assert after[number].state == optuna.trial.TrialState.FAIL
        assert "killed or crashed" in after[number].user_attrs["lret.error"]
    assert "left running by a killed sweep marked failed" in done.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["+optimize=threshold_tuning", "run.compare_to_exact=false"], "run.compare_to_exact"),
        (
            ["+optimize=vqe_energy", "hamiltonian=none"],
            "optimize.objective=energy needs a Hamiltonian",
        ),
        (["+optimize=vqe_energy", "optimize.sampler=gp"], "optimize.sampler=gp needs"),
    ],
)
def test_an_objective_it_cannot_produce_is_refused_before_the_first_trial(
    opt: Study, args: list[str], needle: str
) -> None:
    done = opt.run(*args)
    assert done.returncode == 1
    assert needle in done.stderr and "Traceback" not in done.stderr
    assert opt.client.search_experiments() == [] or all(
        not opt.client.search_runs([e.experiment_id]) for e in opt.client.search_experiments()
    )
    assert not (opt.root / "mlruns" / "optuna.db").exists() or not optuna.get_all_study_summaries(
        f"sqlite:///{opt.root}/mlruns/optuna.db"
    )


def test_a_grid_study_runs_its_grid_once(opt: Study) -> None:
    done = opt.run(
        "+optimize=threshold_tuning",
        "optimize.sampler=grid",
        "hydra.sweeper.n_trials=50",  # capped at the grid's size
        "simulator.rank_threshold=choice(0.01)",
        "simulator.max_rank=choice(8,16)",
        "simulator.truncation=choice(channel)",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (parent,) = opt.batches("threshold_tuning")
    assert parent.info.status == "FINISHED"  # two trials asked, two run: not cancelled
    assert sorted(c.data.params["simulator.max_rank"] for c in opt.children(parent)) == ["16", "8"]


def test_a_continuous_grid_is_refused_naming_the_parameter(opt: Study) -> None:
    done = opt.run("+optimize=threshold_tuning", "optimize.sampler=grid")
    assert done.returncode == 1
    assert "optimize.sampler=grid needs a discrete search space, but simulator.rank_threshold" in (
        done.stderr
    )


def test_a_trial_without_its_objective_fails_and_the_study_goes_on(opt: Study) -> None:
    # fidelity needs the exact state, skipped beyond run.exact_max_qubits=12: the 14-qubit
    # trials have no objective, the 4-qubit ones do
    done = opt.run(
        "+optimize=qaoa_maxcut",
        "optimize.objective=exact_fidelity",
        "run.compare_to_exact=true",
        "simulator=lret",
        "noise=none",
        "circuit.n_qubits=choice(4,14)",
        "optimize.sampler=grid",
        "circuit.gammas=[0.4]",
        "circuit.betas=[0.3]",
        "optimize.space=null",
    )
    assert done.returncode == 1  # a batch with a failed job ends FAILED
    trials = opt.study("qaoa_maxcut-qaoa_maxcut").trials
    states = {t.params["circuit.n_qubits"]: t for t in trials}
    assert states[4].state == optuna.trial.TrialState.COMPLETE
    assert states[14].state == optuna.trial.TrialState.FAIL
    assert "optimize.objective=exact_fidelity has no value" in states[14].user_attrs["lret.error"]
    (parent,) = opt.batches("qaoa_maxcut")
    failed = [c for c in opt.children(parent) if c.info.status == "FAILED"]
    assert len(failed) == 1 and "has no value" in failed[0].data.tags["error"]
