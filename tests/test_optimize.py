"""Optimisation pieces in process: objectives and their checks, generated search spaces,
the study's bookkeeping (stale trials, stored problems), and the results they rest on
(energies, cuts, target fidelities, the architecture circuit), each against an
independent reference: diagonalisation, Cirq's state vectors, enumeration."""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import cirq
import numpy as np
import optuna
import pytest
from conftest import compose_config

from lret_runner import circuits, metrics
from lret_runner.errors import CircuitError, ConfigError, ObjectiveUndefined, UserError
from lret_runner.experiment import prepare, simulate
from lret_runner.optimize import objectives, study

H2_GROUND = -1.857275  # the value; the tests compute it by diagonalisation


def h2_terms() -> metrics.PauliSum:
    cfg = compose_config(["hamiltonian=h2", "circuit.n_qubits=2"])
    return [(k, float(v)) for k, v in cfg.hamiltonian.terms.items()]


# ---------------------------------------------------------------- energies and states
def test_h2_ground_energy_by_diagonalisation() -> None:
    ground = np.linalg.eigvalsh(metrics.pauli_sum_matrix(h2_terms()))[0]
    assert ground == pytest.approx(H2_GROUND, abs=1e-6)


def test_vqe_energy_reaches_the_h2_ground_state_at_its_closed_form_angles() -> None:
    # RY(a) q0, RY(b) q1, CNOT: b = pi gives cos(a/2)|01> + sin(a/2)|10>; the ground state
    # of H2's 2x2 block has tan(a/2) = -d / (2b + sqrt(4 b^2 + d^2)) with b = 0.3979, d = 0.1809
    b, d = 0.39793742484318045, 0.18093119978423156
    a = 2 * math.atan2(-d, 2 * b + math.sqrt(4 * b * b + d * d))
    cfg = compose_config(
        [
            "circuit=vqe",
            "circuit.n_qubits=2",
            "circuit.depth=1",
            "circuit.rotations=[ry]",
            f"circuit.angles=[{a},{math.pi}]",
            "hamiltonian=h2",
            "noise=none",
            "simulator=fdm",
            "run.shots=0",
        ]
    )
    result, _ = simulate(prepare(cfg))
    exact = np.linalg.eigvalsh(metrics.pauli_sum_matrix(h2_terms()))[0]
    assert result.energy == pytest.approx(exact, abs=1e-9)


@pytest.mark.parametrize("simulator", ["lret", "fdm", "cirq"])
def test_energy_matches_a_dense_trace_on_a_noisy_ising_run(simulator: str) -> None:
    cfg = compose_config(
        [
            "circuit=vqe",
            "circuit.n_qubits=4",
            "hamiltonian=ising",
            "hamiltonian.field=0.7",
            "hamiltonian.periodic=true",
            f"simulator={simulator}",
            *(["simulator.rank_threshold=0"] if simulator == "lret" else []),
            "noise.level=0.02",
            "run.shots=0",
        ]
    )
    result, out = simulate(prepare(cfg))
    terms = metrics.ising_chain(4, 1.0, 0.7, True)
    assert len(terms) == 8  # four bonds (a ring) and four field terms
    rho = metrics.dense(out.state)
    reference = float(np.trace(metrics.pauli_sum_matrix(terms) @ rho).real)
    assert result.energy == pytest.approx(reference, abs=1e-9)


def test_expected_and_maximum_cut_against_a_state_vector() -> None:
    cfg = compose_config(
        ["circuit=qaoa", "circuit.n_qubits=5", "circuit.graph=random", "circuit.p=2", "noise=none"]
    )
    result, _ = simulate(prepare(cfg))
    params = {k: v for k, v in cfg.circuit.items() if k not in ("name", "measure")}
    edges = circuits.qaoa_edges(5, "random", cfg.circuit.edge_probability, cfg.circuit.seed)
    circuit = cirq.drop_terminal_measurements(circuits.qaoa(**params))
    psi = cirq.final_state_vector(circuit, dtype=np.complex128)
    probs = np.abs(psi) ** 2
    bits = [[(x >> (4 - q)) & 1 for q in range(5)] for x in range(32)]
    cuts = [sum(b[i] != b[j] for i, j in edges) for b in bits]
    assert result.expected_cut == pytest.approx(float(probs @ cuts), abs=1e-9)
    assert result.max_cut == max(cuts)


@pytest.mark.parametrize(("target", "index"), [("ghz", [0, 7]), ("w", [1, 2, 4]), ("110", [6])])
def test_target_states(target: str, index: list[int]) -> None:
    vector = circuits.target_state(target, 3)
    assert np.flatnonzero(np.abs(vector) > 1e-12).tolist() == index
    assert np.linalg.norm(vector) == pytest.approx(1.0)


def test_a_qasm_target_is_the_files_output_state(tmp_path: Path) -> None:
    path = tmp_path / "bell.qasm"
    path.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0],q[1];\n')
    vector = circuits.target_state(str(path), 2)
    assert np.allclose(np.abs(vector) ** 2, [0.5, 0, 0, 0.5])
    with pytest.raises(UserError, match="optimize.target=.*missing.qasm.: QASM file not found"):
        circuits.target_state(str(tmp_path / "missing.qasm"), 2)
    with pytest.raises(CircuitError, match="bitstring of 3 bits"):
        circuits.target_state("nonsense", 3)


def test_target_fidelity_of_a_noisy_ghz_run() -> None:
    cfg = compose_config(
        ["circuit=ghz", "circuit.n_qubits=3", "optimize.target=ghz", "noise.level=0.05"]
    )
    result, out = simulate(prepare(cfg))
    psi = circuits.target_state("ghz", 3)
    assert result.target_fidelity == pytest.approx(
        float((psi.conj() @ metrics.dense(out.state) @ psi).real), abs=1e-9
    )
    assert 0.5 < result.target_fidelity < 1.0
    assert result.two_qubit_gates == 2


# ---------------------------------------------------------------- the architecture circuit
def test_architecture_circuit_matches_cirq() -> None:
    slots = ["h_0", "none", "cnot_0_2", "ry_1", "cz_1_2", "t_0"]
    built = circuits.architecture(n_qubits=3, slots=slots, angles=[0, 0, 0, 0.3, 0, 0])
    q = cirq.LineQubit.range(3)
    expected = cirq.Circuit(
        [cirq.H(q[0]), cirq.CNOT(q[0], q[2]), cirq.ry(0.3)(q[1]), cirq.CZ(q[1], q[2]), cirq.T(q[0])]
    )
    assert cirq.allclose_up_to_global_phase(
        cirq.final_state_vector(built, qubit_order=q),
        cirq.final_state_vector(expected, qubit_order=q),
    )


@pytest.mark.parametrize("slot", ["cnot_0_0", "h_3", "h", "foo_1", "cnot_0", "rx_a", "h_0_1"])
def test_a_bad_slot_names_its_position(slot: str) -> None:
    with pytest.raises(CircuitError, match=r"circuit\.slots\[1\]"):
        circuits.architecture(n_qubits=3, slots=["h_0", slot])


def test_architecture_slot_choices() -> None:
    every = circuits.architecture_slots(3)
    assert every[0] == "none"
    assert len(every) == 1 + 9 * 3 + 6 + 3  # none, 1q gates x qubits, cnot ordered, cz pairs
    linear = circuits.architecture_slots(3, ["h", "cnot", "cz"], "linear")
    assert linear == ["none", "h_0", "h_1", "h_2", "cnot_0_1", "cnot_1_0", "cnot_1_2",
                      "cnot_2_1", "cz_0_1", "cz_1_2"]  # fmt: skip


# ---------------------------------------------------------------- objectives
@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (
            ["optimize.objective=exact_fidelity", "run.compare_to_exact=false"],
            "run.compare_to_exact",
        ),
        (["optimize.objective=exact_fidelity", "circuit.n_qubits=14"], "run.exact_max_qubits=12"),
        (["optimize.objective=energy"], "hamiltonian=h2"),
        (["optimize.objective=expected_cut"], "circuit=qaoa"),
        (["optimize.objective=fitness"], "optimize.target=ghz"),
        (["optimize.objective=expval_ZZII"], "run.observables"),
        (["optimize.objective=speed"], "is not a metric of a run"),
        (
            [
                "optimize.objective=[exact_fidelity,purity]",
                "optimize.direction=[maximize,minimize,maximize]",
            ],
            "has 3 entries",
        ),
        (["optimize.direction=up"], "optimize.direction='up' is invalid"),
        (
            [
                "optimize.objective=[exact_fidelity,simulation_time_seconds]",
                "optimize.min_exact_fidelity=0.9",
                "optimize.direction=[maximize,minimize]",
            ],
            "single objective",
        ),  # fmt: skip
    ],
)
def test_an_objective_the_run_cannot_produce_is_refused(overrides: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(needle)):
        objectives.check(compose_config(overrides))


def _result(**fields: object) -> SimpleNamespace:
    base = dict(
        exact_fidelity=None, ideal_fidelity=None, target_fidelity=None, two_qubit_gates=None,
        expectation_values={},
        exact_reference="not requested", ideal_reference="not computed",
        simulation_time_seconds=0.5, energy=None,
    )  # fmt: skip
    return SimpleNamespace(**{**base, **fields})


@pytest.mark.parametrize(
    ("old", "new"),
    [("fidelity", "exact_fidelity"), ("infidelity", "exact_infidelity"), ("max_rank", "widest")],
)
def test_an_objective_of_the_old_result_schema_is_refused_naming_the_new(
    old: str, new: str
) -> None:
    cfg = compose_config([f"optimize.objective={old}"])
    with pytest.raises(ConfigError, match=f"optimize.objective='{old}' is a name of the old") as e:
        objectives.check(cfg)
    assert new in str(e.value)
    assert ("ideal_fidelity" in str(e.value)) == ("fidelity" in old)


def test_penalty_below_min_fidelity_is_added_when_minimising() -> None:
    cfg = compose_config(
        [
            "optimize.objective=simulation_time_seconds",
            "optimize.direction=minimize",
            "optimize.min_exact_fidelity=0.99",
            "optimize.penalty=100",
        ]  # fmt: skip
    )
    score = objectives.scorer(cfg)
    assert score(_result(exact_fidelity=0.995)) == {"simulation_time_seconds": 0.5}
    assert score(_result(exact_fidelity=0.98))["simulation_time_seconds"] == pytest.approx(1.5)
    with pytest.raises(ObjectiveUndefined, match="min_exact_fidelity"):
        score(_result(exact_fidelity=None))


def test_penalty_is_subtracted_when_maximising_and_fitness_counts_two_qubit_gates() -> None:
    cfg = compose_config(
        [
            "optimize.objective=fitness",
            "optimize.target=ghz",
            "optimize.two_qubit_penalty=0.01",
            "optimize.min_exact_fidelity=0.9",
            "optimize.penalty=10",
        ]  # fmt: skip
    )
    value = objectives.scorer(cfg)(
        _result(exact_fidelity=0.8, target_fidelity=0.9, two_qubit_gates=3)
    )
    assert value["fitness"] == pytest.approx(0.9 - 0.03 - 10 * 0.1)


def test_an_undefined_objective_is_an_error_not_a_number() -> None:
    cfg = compose_config(["optimize.objective=[exact_infidelity,simulation_time_seconds]",
                          "optimize.direction=minimize"])  # fmt: skip
    score = objectives.scorer(cfg)
    assert score(_result(exact_fidelity=0.75)) == {
        "exact_infidelity": 0.25,
        "simulation_time_seconds": 0.5,
    }
    with pytest.raises(ObjectiveUndefined, match="exact_infidelity has no value"):
        score(_result(exact_reference="skipped: n_qubits=14 > run.exact_max_qubits=12"))


# ---------------------------------------------------------------- search spaces
def test_generated_spaces() -> None:
    vqe = study.generated_space(
        compose_config(
            ["circuit=vqe", "circuit.n_qubits=3", "circuit.depth=2", "optimize.space=angles"]
        )  # fmt: skip
    )
    assert list(vqe) == [f"circuit.angles.{i}" for i in range(12)]
    qaoa = study.generated_space(
        compose_config(["circuit=qaoa", "circuit.p=2", "optimize.space=angles"])
    )
    assert qaoa["circuit.betas.1"].high == pytest.approx(math.pi / 2)
    arch = study.generated_space(
        compose_config(
            [
                "circuit=architecture",
                "optimize.space=architecture",
                "optimize.max_depth=5",
                "optimize.gates=[h,cnot]",
            ]
        )  # fmt: skip
    )
    assert list(arch) == [f"circuit.slots.{i}" for i in range(5)]
    assert len(arch["circuit.slots.0"].choices) == 1 + 3 + 6
    with pytest.raises(ConfigError, match="circuit=architecture"):
        study.generated_space(compose_config(["optimize.space=architecture"]))
    with pytest.raises(ConfigError, match="circuit=vqe or circuit=qaoa"):
        study.generated_space(compose_config(["optimize.space=angles"]))


def test_list_parameters_become_one_list_override() -> None:
    params = {"circuit.slots.1": "cnot_0_1", "circuit.slots.0": "h_0", "noise.level": 0.1}
    assert study.as_overrides(params) == ["noise.level=0.1", "circuit.slots=[h_0,cnot_0_1]"]
    with pytest.raises(ConfigError, match=r"indices \[1\]"):
        study.as_overrides({"circuit.angles.1": 0.5})
    cfg = compose_config(["circuit=architecture", *study.as_overrides(params)[1:]])
    assert list(cfg.circuit.slots) == ["h_0", "cnot_0_1"]


@pytest.mark.parametrize("name", ["tpe", "random", "cmaes", "qmc", "nsgaii"])
def test_samplers_by_name(name: str) -> None:
    opt = compose_config([f"optimize.sampler={name}", "optimize.seed=3"]).optimize
    study.check_sampler(opt)
    sampler = study.make_sampler(opt, None)
    assert isinstance(sampler, optuna.samplers.BaseSampler)


def test_an_unknown_sampler_is_refused() -> None:
    with pytest.raises(ConfigError, match="optimize.sampler='anneal' is invalid"):
        study.check_sampler(compose_config(["optimize.sampler=anneal"]).optimize)


# ---------------------------------------------------------------- the stored study
def test_trials_of_a_dead_sweeper_are_marked_failed() -> None:
    s = optuna.create_study()
    dead = s.ask()
    dead.set_user_attr(study.OWNER_ATTR, {"lret.owner.host": __import__("socket").gethostname(),
                                          "lret.owner.pid": "999999999",
                                          "lret.owner.started": "1.0"})  # fmt: skip
    alive = s.ask()
    from lret_runner.tracking.owners import owner_tags

    alive.set_user_attr(study.OWNER_ATTR, owner_tags())
    assert study.fail_stale(s) == 1
    states = {t.number: t.state for t in s.trials}
    assert states == {0: optuna.trial.TrialState.FAIL, 1: optuna.trial.TrialState.RUNNING}
    assert "killed or crashed" in s.trials[0].user_attrs[study.ERROR_ATTR]


def test_a_stored_study_for_another_problem_is_refused(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    overrides = ["+optimize=vqe_energy", f"optimize.storage={storage}", "optimize.study_name=s"]
    before = compose_config(overrides, hydra=True)
    stored = optuna.create_study(study_name="s", storage=storage)
    stored.set_user_attr(study.PROBLEM_ATTR, study.problem(before, study.searched_keys(before, [])))
    # the searched angles may differ; the noise may not
    study.check_stored(compose_config([*overrides, "circuit.angles=[1.0,2.0]"], True), tmp_path)
    with pytest.raises(ConfigError, match=r"another problem \(noise.level"):
        study.check_stored(compose_config([*overrides, "noise.level=0.01"], True), tmp_path)


def test_hydras_own_optuna_sweeper_must_share_the_objectives_direction(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"hydra.sweeper.direction=\['minimize'\] but"):
        study.check(compose_config(["hydra/sweeper=optuna"], hydra=True), tmp_path)
    study.check(
        compose_config(["hydra/sweeper=optuna", "hydra.sweeper.direction=maximize"], hydra=True),
        tmp_path,
    )


def test_a_new_optuna_storage_is_created_once_under_a_lock(tmp_path) -> None:
    """Four processes opening the same new optuna.db at once (two studies started together
    in a new directory): every one reads it, none fails on its half-created tables."""
    import multiprocessing

    from lret_runner.optimize.study import stored_studies

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(stored_studies, [storage] * 4)
    assert results == [[], [], [], []]


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["optimize.objective=foo"], ["optimize.objective='foo'", "exact_fidelity", "expval_"]),
        (["optimize.objective=[energy,foo]"], ["optimize.objective[1]='foo'"]),
        (["optimize.direction=upward"], ["optimize.direction='upward'", "minimize, maximize"]),
        (
            ["optimize.objective=[energy,purity]", "optimize.direction=[minimize,up]"],
            ["optimize.direction[1]='up'"],
        ),
    ],
)
def test_an_unknown_objective_or_direction_is_refused_on_a_plain_run(
    overrides: list[str], needles: list[str]
) -> None:
    """A plain run ignores optimize.*: a misspelt objective would pass silently until an
    Optuna sweep; the terminal refuses it first (objectives.check_names), naming what is
    allowed."""
    from conftest import compose_config

    from lret_runner.optimize.objectives import check_names

    with pytest.raises(ConfigError) as info:
        check_names(compose_config(overrides).optimize)
    for needle in needles:
        assert needle in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "objective", ["exact_fidelity", "exact_infidelity", "fitness", "expval_ZZII", "[energy,purity]"]
)
def test_a_known_objective_is_accepted_on_a_plain_run(objective: str) -> None:
    from conftest import compose_config

    from lret_runner.optimize.objectives import check_names

    check_names(compose_config([f"optimize.objective={objective}"]).optimize)
