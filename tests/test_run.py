"""The library call ``experiment.run(prepare(cfg), tracker)``, in-process: what it records
in a temporary MLflow store and in the output directory, with the MLflow and the null
tracker; prepare builds everything once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import spy_on
from threadpoolctl import threadpool_limits

from lret_runner import experiment
from lret_runner.errors import ConfigError, TrackingError
from lret_runner.simulators import base as sim_base
from lret_runner.tracking import MlflowTracker, NullTracker
from lret_runner.tracking import vocabulary as V

TINY = ["circuit.n_qubits=3", "circuit.depth=4", "run.shots=50", "run.quiet=true"]


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _run(cfg, tracker, out: Path, **kwargs) -> experiment.RunResult:
    return experiment.run(experiment.prepare(cfg), tracker, output_dir=out, **kwargs)


def _mlflow_run(tracker: MlflowTracker, run_id: str):
    return tracker.client.get_run(run_id)


# ---------------------------------------------------------------- build once


def test_a_qasm_file_is_parsed_once(compose, tmp_path: Path, monkeypatch) -> None:
    from lret_runner import circuits

    calls = []
    original = circuits.from_qasm

    def counted(*, path, measure=False):
        calls.append(path)
        return original(path=path, measure=measure)

    monkeypatch.setitem(circuits.CIRCUIT_BUILDERS, "qasm", counted)
    result = _run(compose(["+experiment=qasm_file", "run.quiet=true"]), NullTracker(), tmp_path)
    assert result.status == "FINISHED" and len(calls) == 1


@pytest.mark.parametrize("simulator", ["auto", "lret", "fdm", "cirq"])
def test_the_circuit_is_compiled_once(compose, tmp_path: Path, monkeypatch, simulator) -> None:
    calls = []
    original = sim_base.compile_circuit
    monkeypatch.setattr(
        experiment, "compile_circuit", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    monkeypatch.setattr(sim_base, "compile_circuit", _forbidden)
    cfg = compose([*TINY, f"simulator={simulator}", "run.compare_to_exact=true"])
    result = _run(cfg, NullTracker(), tmp_path)
    assert result.status == "FINISHED", result.error
    assert len(calls) == 1  # the exact reference reuses it too


def test_an_fdm_run_builds_no_lret_engine(compose, monkeypatch) -> None:
    from lret_runner import simulators

    monkeypatch.setitem(simulators.ENGINES, "lret", _forbidden)
    prepared = experiment.prepare(compose([*TINY, "simulator=fdm"]))
    assert prepared.backend_used == "fdm"


def _forbidden(*args, **kwargs):
    raise AssertionError("built twice, or built when not needed")


# ---------------------------------------------------------------- the MLflow record


def test_a_run_is_recorded_finished(compose, store_uri: str, tmp_path: Path) -> None:
    tracker = MlflowTracker(store_uri)
    result = _run(compose([*TINY, "session.name=inproc"]), tracker, tmp_path / "out")
    run = _mlflow_run(tracker, result.run_id)
    assert run.info.status == "FINISHED" and result.status == "FINISHED"
    assert run.data.metrics["exact_fidelity"] == pytest.approx(result.exact_fidelity, abs=1e-12)
    assert run.data.tags[V.SESSION] == "inproc"
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["run_id"] == result.run_id and saved["status"] == "FINISHED"
    artifacts = {a.path for a in tracker.client.list_artifacts(result.run_id)}
    assert {"result.json", "config.yaml", "counts.json", "summary.png"} <= artifacts
    assert "histogram.png" in artifacts  # a single run renders its plots by default


def test_params_hold_only_what_affects_the_result(compose, store_uri, tmp_path) -> None:
    tracker = MlflowTracker(store_uri)
    result = _run(compose([*TINY, "simulator=fdm"]), tracker, tmp_path)
    params = _mlflow_run(tracker, result.run_id).data.params
    assert params["simulator.name"] == "fdm"
    assert not any(
        k.startswith(("simulator.rank", "tracking.", "session.", "sweep.")) for k in params
    )
    assert "run.quiet" not in params and "backend.threads" not in params


def test_params_keep_their_types(compose, store_uri, tmp_path) -> None:
    tracker = MlflowTracker(store_uri)
    cfg = compose([*TINY, "run.observables=[ZZI]", "noise.level=0.01"])
    result = _run(cfg, tracker, tmp_path)
    summary = tracker.queries.summaries([_mlflow_run(tracker, result.run_id).info.experiment_id])[0]
    assert summary.params["circuit.n_qubits"] == 3
    assert summary.params["noise.level"] == 0.01
    assert summary.params["circuit.measure"] is True
    assert summary.params["run.observables"] == ["ZZI"]


def test_a_failure_inside_the_run_is_recorded_failed(compose, store_uri, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("engine exploded")

    prepared = experiment.prepare(compose(TINY))
    monkeypatch.setattr(prepared.engine, "run", broken)
    tracker = MlflowTracker(store_uri)
    result = experiment.run(prepared, tracker, output_dir=tmp_path)
    run = _mlflow_run(tracker, result.run_id)
    assert result.status == "FAILED" and isinstance(result.exception, RuntimeError)
    assert run.info.status == "FAILED"
    assert run.data.tags[V.ERROR] == "RuntimeError: engine exploded"
    assert json.loads((tmp_path / "result.json").read_text())["error"] == result.error


def test_an_interrupt_inside_the_run_is_recorded_killed(compose, store_uri, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("SIGTERM")

    prepared = experiment.prepare(compose(TINY))
    monkeypatch.setattr(prepared.engine, "run", interrupted)
    tracker = MlflowTracker(store_uri)
    result = experiment.run(prepared, tracker, output_dir=tmp_path)
    assert result.status == "KILLED" and result.error == "interrupted (SIGTERM)"
    assert _mlflow_run(tracker, result.run_id).info.status == "KILLED"


def test_an_invalid_config_in_a_batch_is_recorded_failed(compose, store_uri, tmp_path) -> None:
    cfg = compose([*TINY, "noise.level=2"])
    with pytest.raises(ConfigError) as info:
        experiment.prepare(cfg)
    tracker = MlflowTracker(store_uri)
    batch = tracker.start_run("default")
    result = experiment.record_failure(cfg, tracker, info.value, output_dir=tmp_path, batch=batch)
    run = _mlflow_run(tracker, result.run_id)
    assert run.info.status == "FAILED" and "noise.level=2" in run.data.tags[V.ERROR]
    assert run.data.tags[V.PARENT_RUN] == batch
    assert [c.run_id for c in tracker.batch_children(batch)] == [result.run_id]


def test_resume_reuses_a_finished_run(compose, store_uri, tmp_path) -> None:
    tracker = MlflowTracker(store_uri)
    cfg = compose([*TINY, "sweep.resume=true"])
    first = _run(cfg, tracker, tmp_path / "a")
    second = _run(cfg, tracker, tmp_path / "b")
    assert second.reused and second.run_id == first.run_id
    assert second.exact_fidelity == pytest.approx(first.exact_fidelity)
    experiment_id = _mlflow_run(tracker, first.run_id).info.experiment_id
    assert len(tracker.queries.summaries([experiment_id])) == 1


def test_a_missing_lineage_parent_is_refused_before_recording(compose, store_uri, tmp_path):
    tracker = MlflowTracker(store_uri)
    cfg = compose([*TINY, "lineage.parent=0123456789abcdef0123456789abcdef"])
    with pytest.raises(TrackingError, match="lineage.parent=0123456789abcdef"):
        _run(cfg, tracker, tmp_path)
    assert tracker.queries.summaries(tracker.queries.experiment_ids()) == []


# ---------------------------------------------------------------- the null tracker


def test_the_null_tracker_records_nothing(compose, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = _run(compose([*TINY, "tracking=none"]), NullTracker(), tmp_path / "out")
    assert result.status == "FINISHED" and result.run_id
    assert not (tmp_path / "mlruns").exists()
    assert (tmp_path / "out" / "result.json").is_file()
    assert not (tmp_path / "out" / "summary.png").exists()  # log_plots defaults to false


def test_the_null_tracker_refuses_a_lineage_parent(compose, tmp_path: Path) -> None:
    cfg = compose([*TINY, "tracking=none", "lineage.parent=abc"])
    with pytest.raises(ConfigError, match="lineage.parent=abc is invalid with tracking=none"):
        _run(cfg, NullTracker(), tmp_path)


def test_resume_does_not_reuse_a_run_of_an_edited_qasm_file(compose, store_uri, tmp_path) -> None:
    from lret_runner.circuits import EXAMPLE_QASM

    qasm = tmp_path / "mine.qasm"
    qasm.write_text(EXAMPLE_QASM.read_text())
    tracker = MlflowTracker(store_uri)
    overrides = ["circuit=qasm", f"circuit.path={qasm}", "sweep.resume=true", "run.quiet=true"]
    first = _run(compose(overrides), tracker, tmp_path / "a")
    assert _run(compose(overrides), tracker, tmp_path / "b").run_id == first.run_id  # reused
    qasm.write_text(qasm.read_text().replace("h q[0];", "x q[0];"))
    edited = _run(compose(overrides), tracker, tmp_path / "c")
    assert not edited.reused and edited.run_id != first.run_id


def test_a_qasm_run_records_the_file_qubit_count_and_digest(compose, store_uri, tmp_path) -> None:
    import hashlib

    from lret_runner.circuits import EXAMPLE_QASM

    tracker = MlflowTracker(store_uri)
    result = _run(compose(["+experiment=qasm_file", "run.quiet=true"]), tracker, tmp_path)
    run = _mlflow_run(tracker, result.run_id)
    assert run.data.params["circuit.n_qubits"] == "3" and result.n_qubits == 3
    digest = hashlib.sha256(EXAMPLE_QASM.read_bytes()).hexdigest()
    assert run.data.params["inputs.circuit_path"] == digest
    assert run.info.run_name == "qasm-n3-lret"


# ---------------------------------------------------------------- per-run plots (log_plots)

PNGS = {"histogram.png", "summary.png"}


@pytest.fixture
def uri(fresh_store: Path, tmp_path: Path) -> str:
    """A copy of the empty store (creating one takes seconds) at tmp_path/mlruns."""
    from conftest import sqlite_uri

    return sqlite_uri(tmp_path)


def test_log_plots_defaults_to_auto_with_mlflow_and_off_untracked(compose) -> None:
    assert compose(TINY).tracking.log_plots is None
    assert compose([*TINY, "tracking=none"]).tracking.log_plots is False


@pytest.mark.parametrize(
    ("setting", "in_sweep", "renders"),
    [
        ("null", False, True),  # auto: a single run
        ("null", True, False),  # auto: a sweep's job
        ("true", True, True),
        ("false", False, False),
    ],
)
def test_log_plots_is_honoured_and_auto_when_null(compose, setting, in_sweep, renders) -> None:
    cfg = compose([*TINY, f"tracking.log_plots={setting}"])
    assert experiment.log_plots(cfg, in_sweep) is renders


def test_a_sweep_job_renders_no_pngs(compose, uri, tmp_path) -> None:
    tracker = MlflowTracker(uri)
    batch = tracker.start_run("default")
    result = _run(compose(TINY), tracker, tmp_path / "out", batch=batch, job_num=0)
    assert result.status == "FINISHED"
    assert not list((tmp_path / "out").glob("*.png"))
    artifacts = {a.path for a in tracker.client.list_artifacts(result.run_id)}
    assert artifacts == {"config.yaml", "result.json", "counts.json"}


def test_an_untracked_sweep_job_renders_no_pngs_when_auto(compose, tmp_path) -> None:
    cfg = compose([*TINY, "tracking=none", "tracking.log_plots=null"])
    assert _run(cfg, NullTracker(), tmp_path, job_num=3).status == "FINISHED"
    assert not list(tmp_path.glob("*.png"))
    assert _run(cfg, NullTracker(), tmp_path / "single").status == "FINISHED"
    assert {p.name for p in (tmp_path / "single").glob("*.png")} == PNGS


def test_log_plots_true_renders_a_sweep_jobs_pngs(compose, uri, tmp_path) -> None:
    tracker = MlflowTracker(uri)
    batch = tracker.start_run("default")
    cfg = compose([*TINY, "tracking.log_plots=true"])
    result = _run(cfg, tracker, tmp_path / "out", batch=batch, job_num=0)
    assert {p.name for p in (tmp_path / "out").glob("*.png")} == PNGS
    assert PNGS <= {a.path for a in tracker.client.list_artifacts(result.run_id)}


def test_log_plots_false_renders_no_single_run_pngs(compose, uri, tmp_path) -> None:
    tracker = MlflowTracker(uri)
    result = _run(compose([*TINY, "tracking.log_plots=false"]), tracker, tmp_path / "out")
    assert result.status == "FINISHED"
    assert not list((tmp_path / "out").glob("*.png"))


# ---------------------------------------------------------------- few writes per run

# MlflowClient calls that write to the store (each a SQLite transaction: ~20 ms of fsync)
WRITES = {
    "create_run",
    "log_batch",
    "log_metric",
    "log_param",
    "set_tag",
    "set_terminated",
    "update_run",
    "set_experiment_tag",
    "create_experiment",
}


@pytest.mark.parametrize("in_batch", [False, True], ids=["single", "sweep-job"])
def test_a_run_writes_to_the_store_five_times(compose, uri, tmp_path, in_batch) -> None:
    tracker = MlflowTracker(uri)
    tracker.sessions.ensure("default")  # created before: a one-off write per session
    batch = tracker.start_run("default") if in_batch else None
    counting = spy_on(tracker)
    result = _run(compose(TINY), tracker, tmp_path / "out", batch=batch, job_num=batch and 0)
    assert result.status == "FINISHED"
    # create (with every start tag), params, metrics + rank history, final tags, end
    writes = Counter(c for c in counting.calls if c in WRITES)
    assert writes == {"create_run": 1, "log_batch": 3, "set_terminated": 1}
    assert "search_runs" not in counting.calls  # a job does not recount its batch
    run = _mlflow_run(tracker, result.run_id)
    assert run.data.tags[V.STATUS] == "FINISHED" and V.config_from_tags(run.data.tags)
    assert run.data.params["circuit.n_qubits"] == "3"
    history = tracker.client.get_metric_history(result.run_id, V.RANK_METRIC)
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (i, float(r)) for i, r in enumerate(result.rank_history, start=1)
    ]
