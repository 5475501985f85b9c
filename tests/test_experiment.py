"""experiment: prepare (validation, engine choice), simulate (the exact comparison,
observables, probabilities, counts) and run (the recorded library call), in-process."""

from __future__ import annotations

import json
import re

import cirq
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lret_runner import metrics
from lret_runner.circuits import ghz, random_circuit
from lret_runner.errors import ConfigError, MemoryRefusal, NoiseError
from lret_runner.experiment import PROBABILITIES_MAX_QUBITS, RunResult, prepare_circuit
from lret_runner.experiment import simulate as simulate_prepared
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators import base as sim_base


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread (see tests/test_simulators.py); results do not depend on it."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def simulate(circuit: cirq.Circuit, **options):
    """Prepare a noisy circuit and simulate it: (RunResult, EngineOutput)."""
    return simulate_prepared(prepare_circuit(circuit, **options))


# lret's default spends run.accuracy on truncations; this makes it exact
EXACT_LRET = {"rank_threshold": 0.0}


def noisy(n: int, depth: int = 6, seed: int = 3, level: float = 0.02, measure: bool = True):
    circuit = random_circuit(n_qubits=n, depth=depth, seed=seed, measure=measure)
    return add_noise(circuit, build_noise_model("depolarizing", level=level, placement="moment"))


def cirq_reference(circuit: cirq.Circuit) -> np.ndarray:
    sim = cirq.DensityMatrixSimulator(dtype=np.complex128)
    qubits = sorted(circuit.all_qubits())
    unmeasured = cirq.drop_terminal_measurements(circuit)
    return np.asarray(sim.simulate(unmeasured, qubit_order=qubits).final_density_matrix)


# ------------------------------------------------------------------------ auto


def test_auto_picks_fdm_where_the_rank_grows_past_dense() -> None:
    # strong noise on every qubit after every moment: the factor's rank soon costs more
    # than a dense matrix, so the prediction favours the exact engine
    result, out = simulate(noisy(4, depth=10, level=0.05), simulator="auto")
    assert result.backend_used == "fdm"
    assert "fdm is faster" in result.backend_reason
    assert set(result.predicted_seconds) == {"fdm", "lret"}
    assert result.predicted_seconds["fdm"] <= result.predicted_seconds["lret"]
    assert isinstance(out.state, metrics.Dense)
    assert result.truncation_error == 0.0
    assert result.rank_history is None


def test_auto_picks_lret_for_noiseless_circuits() -> None:
    result, out = simulate(ghz(n_qubits=12, measure=True), simulator="auto")
    assert result.backend_used == "lret"
    assert "lret is faster" in result.backend_reason and "rank up to 1" in result.backend_reason
    assert isinstance(out.state, metrics.LowRank)
    assert result.final_rank == 1
    assert abs(result.purity - 1) < 1e-12


def test_auto_picks_lret_where_the_state_stays_low_rank() -> None:
    circuit = ghz(n_qubits=10)
    circuit.append(cirq.amplitude_damp(0.1).on(cirq.LineQubit(0)))
    result, _ = simulate(circuit, simulator="auto")
    assert result.backend_used == "lret"
    assert result.predicted_seconds["lret"] < result.predicted_seconds["fdm"]


def test_auto_picks_lret_when_a_dense_state_does_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    import lret_runner.simulators as simulators

    # a few sparse errors: lret's rank stays far below 2^6, whose dense state needs 192 KiB
    circuit = add_noise(
        random_circuit(n_qubits=6, depth=6, seed=3, measure=True),
        build_noise_model("sparse", level=0.05, seed=1),
    )
    free = 100 * 2**10  # lret: 3 KiB a column (three copies), room for rank 26
    monkeypatch.setattr(simulators, "available_bytes", lambda: float(free))
    monkeypatch.setattr(sim_base, "available_bytes", lambda: float(free))
    result, _ = simulate(circuit, simulator="auto")
    assert result.backend_used == "lret"
    assert "does not fit" in result.backend_reason
    assert result.accuracy["met"] is True


def test_requested_engine_reason() -> None:
    for name in ("lret", "fdm", "cirq"):
        result, _ = simulate(noisy(2), simulator=name)
        assert result.backend_used == name
        assert result.backend_reason == "requested"


def test_auto_and_fdm_ignore_lret_only_parameters() -> None:
    params = {"rank_threshold": 0.3, "max_rank": 1, "truncation": "moment"}
    result, _ = simulate(noisy(3), simulator="auto", simulator_params=params)
    assert result.backend_used == "fdm"
    assert result.truncation_error == 0.0


# --------------------------------------------------------------- exact reference


def test_compare_to_exact_for_lret_threshold_zero() -> None:
    circuit = noisy(4)
    result, out = simulate(
        circuit, simulator="lret", simulator_params={"rank_threshold": 0.0}, compare_to_exact=True
    )
    assert result.exact_reference.startswith("fdm (")
    # RunResult.fidelity goes through metrics' dense path (accurate to ~1e-8 only)
    assert abs(result.exact_fidelity - 1) < 1e-7
    assert result.exact_trace_distance < 1e-10
    ref = cirq_reference(circuit)
    assert np.abs(metrics.dense(out.state) - ref).max() < 1e-10


def test_compare_to_exact_for_truncated_lret() -> None:
    circuit = noisy(5, level=0.02)
    result, out = simulate(
        circuit, simulator="lret", simulator_params={"rank_threshold": 1e-2}, compare_to_exact=True
    )
    ref = metrics.Dense(cirq_reference(circuit))
    assert result.truncation_error > 0
    assert result.exact_fidelity < 1 - 1e-4
    expected_f = metrics.fidelity(out.state, metrics.to_low_rank(ref))
    assert abs(result.exact_fidelity - expected_f) < 1e-7
    assert abs(result.exact_trace_distance - metrics.trace_distance(out.state, ref)) < 1e-10
    assert result.exact_trace_distance <= result.truncation_error + 1e-9
    assert 1 - result.exact_fidelity <= result.truncation_error + 1e-9


def test_compare_to_exact_for_cirq_and_fdm() -> None:
    circuit = noisy(3)
    result, _ = simulate(circuit, simulator="cirq", compare_to_exact=True)
    assert result.exact_reference.startswith("fdm (")
    assert abs(result.exact_fidelity - 1) < 1e-7
    assert result.exact_trace_distance < 1e-10
    result, _ = simulate(circuit, simulator="fdm", compare_to_exact=True)
    assert result.exact_fidelity == 1.0 and result.exact_trace_distance == 0.0
    assert "exact reference" in result.exact_reference


def test_no_comparison_unless_asked() -> None:
    result, _ = simulate(noisy(3), simulator="lret")
    assert result.exact_fidelity is None and result.exact_trace_distance is None
    assert result.exact_reference == "not requested"


def test_exact_max_qubits_below_n() -> None:
    result, _ = simulate(noisy(3), simulator="lret", compare_to_exact=True, exact_max_qubits=2)
    assert result.exact_fidelity is None and result.exact_trace_distance is None
    assert "n_qubits=3 > run.exact_max_qubits=2" in result.exact_reference


def test_exact_reference_refused_for_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_base, "available_bytes", lambda: float(2**20))
    result, _ = simulate(ghz(n_qubits=9), simulator="lret", compare_to_exact=True)
    assert result.status == "FINISHED"
    assert result.exact_fidelity is None
    assert result.exact_reference.startswith("skipped: simulator=fdm refuses n_qubits=9")
    with pytest.raises(MemoryRefusal, match="n_qubits=9"):
        simulate(ghz(n_qubits=9), simulator="fdm")


# ------------------------------------------------------------------ observables


def test_observables_match_cirq() -> None:
    circuit = noisy(3)
    ref = cirq_reference(circuit)
    q = cirq.LineQubit.range(3)
    qubit_map = {qq: i for i, qq in enumerate(q)}
    for name in ("lret", "fdm", "cirq"):
        result, _ = simulate(
            circuit, simulator=name, simulator_params=EXACT_LRET, observables=["zii", "IIZ", "XYZ"]
        )
        assert set(result.expectation_values) == {"ZII", "IIZ", "XYZ"}
        for label, value in result.expectation_values.items():
            ps = cirq.DensePauliString(label).on(*q)
            assert abs(value - ps.expectation_from_density_matrix(ref, qubit_map).real) < 1e-10


@pytest.mark.parametrize("bad", ["ZZ", "ZZZZ", "ZQZ"])
def test_observables_validated_before_running(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import lret_runner.experiment as experiment

    def no_engine(*args, **kwargs):
        raise AssertionError("engine built before the observables were checked")

    monkeypatch.setattr(experiment, "make_engine", no_engine)
    with pytest.raises(ConfigError, match=rf"observable '{bad}' is invalid.*3 characters"):
        simulate(noisy(3), simulator="lret", observables=[bad])


# ---------------------------------------------------------------- probabilities


def test_save_probabilities() -> None:
    circuit = noisy(3)
    result, _ = simulate(
        circuit, simulator="lret", simulator_params=EXACT_LRET, save_probabilities=True
    )
    ref = np.real(np.diagonal(cirq_reference(circuit)))
    assert len(result.probabilities) == 8
    assert np.abs(np.array(result.probabilities) - ref).max() < 1e-10
    result, _ = simulate(circuit, simulator="lret")
    assert result.probabilities is None


def test_save_probabilities_refused_above_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import lret_runner.experiment as experiment

    def no_engine(*args, **kwargs):
        raise AssertionError("engine built before save_probabilities was checked")

    monkeypatch.setattr(experiment, "make_engine", no_engine)
    n = PROBABILITIES_MAX_QUBITS + 1
    with pytest.raises(ConfigError, match=rf"save_probabilities=true is invalid for n_qubits={n}"):
        simulate(ghz(n_qubits=n), simulator="lret", save_probabilities=True)


# ----------------------------------------------------------------------- counts


@pytest.mark.parametrize("name", ["lret", "fdm", "cirq"])
def test_counts_deterministic_for_a_seed(name: str) -> None:
    circuit = noisy(3)
    a, _ = simulate(circuit, simulator=name, shots=2000, seed=5)
    b, _ = simulate(circuit, simulator=name, shots=2000, seed=5)
    c, _ = simulate(circuit, simulator=name, shots=2000, seed=6)
    assert a.counts == b.counts
    assert a.counts != c.counts
    assert sum(a.counts.values()) == 2000
    assert all(len(k) == 3 and set(k) <= {"0", "1"} for k in a.counts)
    none, _ = simulate(circuit, simulator=name, shots=0, seed=5)
    assert none.counts is None


def test_counts_identical_across_engines_for_a_seed() -> None:
    # same probabilities (to 1e-10) and same seed: same multinomial draw
    circuit = noisy(3)
    counts = [
        simulate(circuit, simulator=s, simulator_params=EXACT_LRET, shots=1000, seed=1)[0].counts
        for s in ("lret", "fdm", "cirq")
    ]
    assert counts[0] == counts[1] == counts[2]


def test_counts_bitstrings_follow_qubit_order() -> None:
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(cirq.X(q[0]), cirq.measure(*q, key="m"))
    for name in ("lret", "fdm", "cirq", "auto"):
        result, _ = simulate(circuit, simulator=name, qubits=q, shots=100, seed=0)
        assert result.counts == {"100": 100}
        assert result.n_qubits == 3


def test_counts_with_complex64() -> None:
    q = cirq.LineQubit.range(2)
    for theta in np.linspace(0.2, 2.9, 10):
        circuit = cirq.Circuit(cirq.ry(float(theta)).on(q[0]), cirq.amplitude_damp(0.1).on(q[0]))
        result, _ = simulate(
            circuit,
            simulator="fdm",
            qubits=q,
            simulator_params={"dtype": "complex64"},
            shots=1000,
            seed=1,
        )
        assert sum(result.counts.values()) == 1000


# ------------------------------------------------------------------- the record


def test_record_fields() -> None:
    circuit = noisy(4)
    result, out = simulate(
        circuit,
        simulator="lret",
        simulator_params={"rank_threshold": 1e-3},
        shots=10,
        seed=0,
        compare_to_exact=True,
        observables=["ZIII"],
        save_probabilities=True,
    )
    assert isinstance(result, RunResult)
    assert result.status == "FINISHED" and result.error is None
    assert result.n_qubits == 4
    assert result.final_rank == out.final_rank
    assert result.rank_history == out.rank_history and len(result.rank_history) == len(circuit)
    assert result.largest_rank == max(result.rank_history) <= 2**4  # a rank held: <= 2^n
    assert result.widest_factor >= result.largest_rank  # columns before a truncation cut them
    assert result.dense_spans == []  # never dense at this size and threshold
    assert result.simulation_time_seconds > 0
    assert result.memory_used_mb > 0
    assert abs(result.purity - metrics.purity(out.state)) < 1e-15
    assert simulate(circuit, simulator="lret", depth=6)[0].depth == 6
    json.dumps(result.to_dict())  # JSON-ready


# -------------------------------------------------------------------- bad input


def test_invalid_noise_parameters_before_simulate() -> None:
    # simulate takes a noisy circuit; the noise is validated when the model is built
    with pytest.raises(NoiseError, match=r"noise\.level=1\.5 is invalid: a probability"):
        simulate(add_noise(ghz(n_qubits=2), build_noise_model("depolarizing", level=1.5)))


@pytest.mark.parametrize(
    "params, key",
    [
        ({"rank_threshold": -1}, r"simulator\.rank_threshold=-1"),
        ({"max_rank": 0}, r"simulator\.max_rank=0"),
        ({"truncation": "bogus"}, r"simulator\.truncation='bogus'"),
    ],
)
def test_invalid_lret_parameters_through_simulate(params: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        simulate(ghz(n_qubits=2), simulator="lret", simulator_params=params)


def test_unknown_simulator() -> None:
    with pytest.raises(ConfigError, match="simulator.name='gpu' is invalid"):
        simulate(ghz(n_qubits=2), simulator="gpu")


# -------------------------------------------------------------------- refused in prepare
def _compose(overrides: list[str]):
    from conftest import compose_config

    return compose_config(overrides)


def _no_run(self, prog, progress):  # an engine that must not start
    raise AssertionError("the engine ran: the refusal came too late")


@pytest.mark.parametrize(
    ("overrides", "engine", "needles"),
    [
        (["simulator=lret", "circuit.n_qubits=24"], "lret", ["simulator=lret", "2^24"]),
        (["simulator=fdm", "circuit.n_qubits=12"], "fdm", ["simulator=fdm", "4^12"]),
        (["simulator=cirq", "circuit.n_qubits=12"], "cirq", ["simulator=cirq", "4^12"]),
        (["simulator=auto", "circuit.n_qubits=24"], "lret", ["simulator=lret", "2^24"]),
    ],
)
def test_every_engine_refuses_memory_in_prepare(
    overrides: list[str], engine: str, needles: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memory guard runs in prepare: before any state is allocated and before a run
    is recorded (prepare records nothing), naming the qubits and the bytes needed/free."""
    from lret_runner import experiment, simulators

    monkeypatch.setattr(sim_base, "available_bytes", lambda: float(2**20))  # 1 MiB free
    monkeypatch.setattr(simulators, "available_bytes", lambda: float(2**20))
    for cls in simulators.ENGINES.values():
        monkeypatch.setattr(cls, "_run", _no_run)
    cfg = _compose([*overrides, "noise=none", "circuit.depth=2"])
    with pytest.raises(MemoryRefusal) as info:
        experiment.prepare(cfg)
    message = str(info.value)
    n = cfg.circuit.n_qubits
    for needle in [*needles, f"n_qubits={n}", "GiB", "0.0 GiB is free"]:
        assert needle in message, message


def test_lret_memory_guard_numbers() -> None:
    """A rank-1 factor of 2^30 complex128 entries is 16 GiB; three working copies 48 GiB."""
    from lret_runner.simulators.lret import WORKING_FACTOR, LretSimulator

    prog = sim_base.compile_circuit(cirq.Circuit(cirq.X(q) for q in cirq.LineQubit.range(30)))
    free = sim_base.available_bytes()
    need = 2**30 * 16 * WORKING_FACTOR
    if need <= free:
        pytest.skip("this machine has the 48 GiB free that n=30 needs")
    with pytest.raises(MemoryRefusal, match=r"n_qubits=30.*48\.0 GiB at rank 1"):
        LretSimulator().check_memory(prog)
    LretSimulator(dtype="complex64").check_memory(  # 2^20 x 8 B x 3: fits
        sim_base.compile_circuit(cirq.Circuit(cirq.X(q) for q in cirq.LineQubit.range(20)))
    )


def _qasm(tmp_path, n: int, name: str = "c.qasm"):
    path = tmp_path / name
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{n}];"]
    path.write_text("\n".join(lines + [f"h q[{i}];" for i in range(n)]) + "\n")
    return path


def test_a_qasm_file_over_the_qubit_cap_is_refused(tmp_path) -> None:
    from lret_runner.errors import CircuitError
    from lret_runner.experiment import MAX_QUBITS, prepare

    path = _qasm(tmp_path, MAX_QUBITS + 1)
    with pytest.raises(CircuitError, match=rf"circuit\.path=.*c\.qasm.*acts on {MAX_QUBITS + 1} q"):
        prepare(_compose(["circuit=qasm", f"circuit.path={path}"]))


def test_a_qasm_run_records_the_file_qubit_count(tmp_path) -> None:
    from lret_runner.experiment import prepare

    path = _qasm(tmp_path, 5)
    prepared = prepare(_compose(["circuit=qasm", f"circuit.path={path}", "run.shots=10"]))
    assert prepared.n_qubits == 5
    result, _ = simulate_prepared(prepared)
    assert result.n_qubits == 5
    assert all(len(bits) == 5 for bits in result.counts)


def test_readout_noise_without_measurement_is_refused_in_prepare() -> None:
    from lret_runner.experiment import prepare

    with pytest.raises(NoiseError, match=r"noise\.readout_error=0\.02.*circuit\.measure=false"):
        prepare(_compose(["noise=readout", "circuit.measure=false"]))
    with pytest.raises(NoiseError, match=r"noise\.components\[2\]\.readout_error"):
        prepare(_compose(["noise=composite", "circuit.measure=false"]))
    # a qasm file that measures keeps its readout noise with measure=false
    prepare(_compose(["circuit=qasm", "circuit.measure=false", "noise=readout"]))


@pytest.mark.parametrize(
    ("options", "key"),
    [(dict(shots=10**20), r"run\.shots=10+ is invalid"), (dict(seed=-1), r"run\.seed=-1")],
)
def test_prepare_circuit_checks_shots_and_seed(options: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        prepare_circuit(ghz(n_qubits=2, measure=True), **options)


def test_outcomes_are_keyed_by_the_files_classical_bits(tmp_path) -> None:
    """A 7-qubit file that measures two qubits into a 2-bit register: counts and
    probabilities are over those two bits, c[0] first. Closed form: q[5] goes through h, h,
    x with depolarizing p after each (the channel commutes with the gates: its Bloch vector
    shrinks by (1 - 4p/3)^3), so P(c[0] = 1) = (1 + (1 - 4p/3)^3) / 2; q[2] is |+>, so c[1]
    is uniform."""
    from lret_runner.circuits import from_qasm

    path = tmp_path / "two_bits.qasm"
    path.write_text(
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[7];\ncreg c[2];\n'
        + "".join(f"h q[{i}];\n" for i in range(7))
        + "h q[5];\nx q[5];\nmeasure q[5] -> c[0];\nmeasure q[2] -> c[1];\n"
    )
    p = 0.1
    circuit = add_noise(from_qasm(path=path), build_noise_model("depolarizing", level=p))
    one = (1 + (1 - 4 * p / 3) ** 3) / 2
    expected = [(1 - one) / 2, (1 - one) / 2, one / 2, one / 2]  # 00, 01, 10, 11
    for engine in ("fdm", "lret", "cirq"):
        params = EXACT_LRET if engine == "lret" else {}
        result, _ = simulate(
            circuit, simulator=engine, simulator_params=params, shots=400, seed=1,
            save_probabilities=True,
        )  # fmt: skip
        assert result.clbits == ["c[0]", "c[1]"]
        assert len(next(iter(result.counts))) == 2 and sum(result.counts.values()) == 400
        np.testing.assert_allclose(result.probabilities, expected, atol=1e-12)


# ---------------------------------------------------------------- optimize keys on a plain run


@pytest.mark.parametrize("key", ["status", "lret.owner.host", "mlflow.parentRunId", "a/../b"])
def test_a_tag_may_not_set_a_runner_key_on_the_command_line(key: str) -> None:
    """tags.* on the command line follows the API's rule: a reserved key or one MLflow
    refuses is a ConfigError naming tags.<key>, before anything is recorded."""
    from conftest import compose_config

    from lret_runner.experiment import prepare

    cfg = compose_config([])
    cfg.tags = {key: "x"}  # what +tags={...} or tags.KEY=... on the command line give
    with pytest.raises(ConfigError, match=rf"tags\.'?{re.escape(key)}"):
        prepare(cfg)
