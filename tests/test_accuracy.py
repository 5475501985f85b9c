"""The accuracy contract (``run.accuracy``): the default run meets it against the exact
density matrix, an override that cannot is marked as such before and after, ``auto`` picks
among engines predicted to meet it, and every view states the outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from threadpoolctl import threadpool_limits

from lret_runner import experiment, metrics, tables
from lret_runner.circuits import layered
from lret_runner.errors import ConfigError
from lret_runner.experiment import prepare_circuit, simulate
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators import FdmSimulator
from lret_runner.tracking import MlflowTracker
from lret_runner.tracking import vocabulary as V


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def low_noise(n: int = 8, layers: int = 10, level: float = 1e-4):
    """Depolarizing noise of ``level`` after every moment on every qubit: 2 n layers noise
    locations whose error branches each weigh about level / 3, far below 1e-4."""
    circuit = layered(n_qubits=n, layers=layers, seed=1, measure=True)
    return add_noise(circuit, build_noise_model("depolarizing", level=level, placement="moment"))


def exact_distance(result_state, circuit) -> float:
    exact = FdmSimulator().run(circuit).state
    return metrics.trace_distance(result_state, exact)


def test_the_default_lret_run_meets_the_accuracy_at_low_noise() -> None:
    circuit = low_noise()
    # at n = 8 a dense rho is the cheaper representation from the first channel on (and
    # exact): the factor, where the accuracy is spent, is what is checked here
    factor = {"representation": "factor"}
    result, out = simulate(prepare_circuit(circuit, accuracy=1e-3, simulator_params=factor))
    distance = exact_distance(out.state, circuit)
    assert out.truncation_error <= 1e-3
    assert distance <= out.truncation_error + 1e-9  # the bound holds
    assert result.accuracy == {
        "target": 1e-3,
        "achieved": out.truncation_error,
        "kind": "bound",
        "met": True,
    }
    assert out.final_rank > 1  # the noise is kept, not dropped
    # the old default, a per-truncation threshold of 1e-4, drops every error branch here:
    # it returns the noiseless state, about 0.016 from the exact one, and says so
    loose, loose_out = simulate(
        prepare_circuit(circuit, simulator_params={**factor, "rank_threshold": 1e-4})
    )
    assert loose_out.final_rank == 1
    assert exact_distance(loose_out.state, circuit) > 1e-2
    assert loose.accuracy["met"] is False and loose.accuracy["achieved"] > 1e-2
    assert any("predicted to discard" in w for w in loose.warnings)  # before the run


@pytest.mark.parametrize("accuracy", [1e-2, 1e-4])
def test_the_bound_follows_the_accuracy(accuracy: float) -> None:
    circuit = low_noise(n=6, level=1e-3)
    result, out = simulate(
        prepare_circuit(circuit, accuracy=accuracy, simulator_params={"representation": "factor"})
    )
    assert 0 < out.truncation_error <= accuracy
    assert exact_distance(out.state, circuit) <= out.truncation_error + 1e-9
    assert result.accuracy["met"] is True


@pytest.mark.parametrize("engine", ["fdm", "cirq"])
def test_exact_engines_meet_any_accuracy(engine: str) -> None:
    result, _ = simulate(prepare_circuit(low_noise(n=4), simulator=engine, accuracy=1e-9))
    assert result.accuracy == {"target": 1e-9, "achieved": 0.0, "kind": "bound", "met": True}


def test_auto_refuses_an_override_predicted_to_miss_the_accuracy() -> None:
    circuit = low_noise()
    loose = {"rank_threshold": 1e-4, "representation": "factor"}
    result, _ = simulate(prepare_circuit(circuit, simulator="auto", simulator_params=loose))
    assert result.backend_used == "fdm"
    assert "more than run.accuracy=0.001" in result.backend_reason
    assert result.accuracy["met"] is True
    # the same override at an accuracy it meets: auto compares speed as before
    result, _ = simulate(
        prepare_circuit(circuit, simulator="auto", simulator_params=loose, accuracy=0.5)
    )
    assert "is faster" in result.backend_reason


@pytest.mark.parametrize("value", [0, 1, -1e-3, 2.0, "tight"])
def test_an_invalid_accuracy_is_refused_naming_it(value, compose) -> None:
    with pytest.raises(ConfigError, match=r"run\.accuracy="):
        prepare_circuit(low_noise(n=2, layers=1), accuracy=value)
    if not isinstance(value, str):
        with pytest.raises(ConfigError, match=r"run\.accuracy="):
            experiment.prepare(compose([f"run.accuracy={value}", "circuit.n_qubits=2"]))


def _text(table) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_a_missed_accuracy_is_the_first_line_of_the_summary() -> None:
    circuit = low_noise()
    loose_factor = {"rank_threshold": 1e-4, "representation": "factor"}
    loose, _ = simulate(prepare_circuit(circuit, simulator_params=loose_factor))
    lines = [
        line for line in _text(tables.metrics_table(loose.to_dict())).splitlines() if "│" in line
    ]
    assert "accuracy" in lines[0] and "NOT MET" in lines[0]
    assert "run.accuracy=0.001" in _text(tables.metrics_table(loose.to_dict()))
    met, _ = simulate(prepare_circuit(circuit, simulator_params={"representation": "factor"}))
    text = _text(tables.metrics_table(met.to_dict()))
    assert "NOT MET" not in text and "met: the trace distance" in text


def test_mlflow_records_the_outcome_and_the_readers_show_it(
    compose, store_uri: str, tmp_path: Path
) -> None:
    from lret_runner.cli._output import runs_table

    tracker = MlflowTracker(store_uri)
    tiny = ["circuit.n_qubits=4", "circuit.depth=6", "run.quiet=true", "session.name=acc"]
    runs = {}
    for label, extra in (("met", []), ("missed", ["simulator.rank_threshold=0.2"])):
        cfg = compose([*tiny, "noise.level=0.05", *extra])
        runs[label] = experiment.run(experiment.prepare(cfg), tracker, output_dir=tmp_path / label)
    for label, result in runs.items():
        data = tracker.client.get_run(result.run_id).data
        assert json.loads(data.tags[V.ACCURACY]) == result.accuracy
        assert data.metrics[V.ACCURACY_MET] == (1.0 if label == "met" else 0.0)
        assert data.params["run.accuracy"] == "0.001"
    experiment_id = tracker.client.get_run(runs["met"].run_id).info.experiment_id
    summaries = {s.run_id: s for s in tracker.queries.summaries([experiment_id])}
    assert summaries[runs["missed"].run_id].brief()["accuracy"]["met"] is False
    assert summaries[runs["met"].run_id].result()["accuracy"]["met"] is True
    listing = _text(runs_table(list(summaries.values())))
    assert "NOT MET" in listing and " met " in listing


def test_auto_turns_to_trajectories_only_when_no_bounded_engine_can(monkeypatch) -> None:
    from lret_runner.simulators import base as sim_base

    # uniform noise at n = 8: the rank to meet 1e-3 runs into the hundreds
    circuit = low_noise(n=8, level=1e-2)
    free = 4**8 * 16 * 2.0  # below fdm's three working copies of the dense state
    import lret_runner.simulators as simulators

    monkeypatch.setattr(simulators, "available_bytes", lambda: float(free))
    monkeypatch.setattr(sim_base, "available_bytes", lambda: float(free))
    result, _ = simulate(prepare_circuit(circuit, simulator="auto", accuracy=1e-2))
    assert result.backend_used == "trajectories"
    assert "does not fit" in result.backend_reason and "statistical" in result.backend_reason
    assert result.accuracy["kind"] == "statistical" and result.accuracy["met"] is True
    # a circuit whose rank stays small keeps lret, with its proven bound
    sparse = add_noise(
        layered(n_qubits=8, layers=4, seed=1, measure=True),
        build_noise_model("sparse", level=0.01, seed=3),
    )
    result, _ = simulate(prepare_circuit(sparse, simulator="auto"))
    assert result.backend_used == "lret" and result.accuracy["kind"] == "bound"
