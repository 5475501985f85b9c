"""The MLflow tracker's writes: batches within MLflow's limits, a session's last access
written only when it matters, the owner identity and the store's schema revision looked
up once per process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import spy_on, sqlite_uri

from lret_runner.tracking import MlflowTracker
from lret_runner.tracking import vocabulary as V
from lret_runner.tracking.sessions import ACCESS_REFRESH_SECONDS


@pytest.fixture
def tracker(fresh_store: Path, tmp_path: Path) -> MlflowTracker:
    return MlflowTracker(sqlite_uri(tmp_path))


# ---------------------------------------------------------------- batches


def test_large_batches_are_split_within_mlflows_limits(tracker: MlflowTracker) -> None:
    run_id = tracker.start_run("s")
    params = {f"p{i}": i for i in range(250)}
    tags = {f"t{i}": str(i) for i in range(150)}
    spy = spy_on(tracker)
    tracker.log_params(run_id, params)
    tracker.set_tags(run_id, tags)
    tracker.log_metrics(run_id, {"m": 1.0, "none": None}, series={"rank": range(1, 2500)})
    assert spy.calls.count("log_batch") == 3 + 2 + 3  # 100 params a batch, 100 tags, 1000 metrics
    run = tracker.client.get_run(run_id)
    assert len(run.data.params) == 250 and run.data.params["p249"] == "249"
    assert {f"t{i}" for i in range(150)} <= set(run.data.tags)
    assert run.data.metrics["m"] == 1.0 and "none" not in run.data.metrics
    history = tracker.client.get_metric_history(run_id, "rank")
    assert sorted((m.step, m.value) for m in history) == [(i, float(i)) for i in range(1, 2500)]


def test_the_start_tags_are_written_with_the_run(tracker: MlflowTracker) -> None:
    tracker.sessions.ensure("s")
    spy = spy_on(tracker)
    config = {"circuit": {"name": "ghz", "n_qubits": 3}}
    run_id = tracker.start_run("s", tags={"a": 1, "b": None, **V.config_tags(config)})
    assert [c for c in spy.calls if c in ("create_run", "log_batch", "set_tag")] == ["create_run"]
    tags = tracker.client.get_run(run_id).data.tags
    assert tags["a"] == "1" and "b" not in tags
    assert V.config_from_tags(tags) == config
    assert {V.OWNER_HOST, V.OWNER_PID, V.OWNER_STARTED} <= set(tags)


def test_log_config_is_one_batch_of_params_and_typed_tags(tracker: MlflowTracker) -> None:
    run_id = tracker.start_run("s")
    spy = spy_on(tracker)
    config = {"circuit": {"name": "ghz", "n_qubits": 3}, "run": {"observables": ["ZZI"]}}
    tracker.log_config(run_id, config)
    assert spy.calls.count("log_batch") == 1
    run = tracker.client.get_run(run_id)
    assert run.data.params == {
        "circuit.name": "ghz",
        "circuit.n_qubits": "3",
        "run.observables": "['ZZI']",
    }
    assert V.config_from_tags(run.data.tags) == config


# ---------------------------------------------------------------- counting a batch


def test_refresh_counts_uses_the_children_it_is_given(tracker: MlflowTracker) -> None:
    parent = tracker.start_run("s")
    done = tracker.start_run("s", tags={V.PARENT_RUN: parent})
    tracker.end_run(done, "FINISHED")
    children = tracker.batch_children(parent)
    spy = spy_on(tracker)
    counts = tracker.refresh_counts(parent, children)
    assert counts == {"completed": 1, "failed": 0, "killed": 0, "skipped": 0}
    assert "search_runs" not in spy.calls
    assert tracker.client.get_run(parent).data.metrics["completed"] == 1
    assert tracker.refresh_counts(parent) == counts  # reads the children itself


# ---------------------------------------------------------------- the session's last access


def _access(tracker: MlflowTracker, session: str) -> str:
    return tracker.client.get_experiment_by_name(session).tags[V.SESSION_ACCESS]


def _set_access(tracker: MlflowTracker, session: str, ago: timedelta) -> str:
    when = (datetime.now(UTC) - ago).isoformat(timespec="seconds")
    exp = tracker.client.get_experiment_by_name(session)
    tracker.client.set_experiment_tag(exp.experiment_id, V.SESSION_ACCESS, when)
    return when


def test_a_recent_last_access_is_not_rewritten(tracker: MlflowTracker) -> None:
    tracker.sessions.ensure("s")
    recent = _set_access(tracker, "s", timedelta(seconds=5))
    spy = spy_on(tracker)
    tracker.start_run("s")
    assert "set_experiment_tag" not in spy.calls
    assert _access(tracker, "s") == recent


def test_an_old_last_access_is_rewritten(tracker: MlflowTracker) -> None:
    tracker.sessions.ensure("s")
    old = _set_access(tracker, "s", timedelta(seconds=ACCESS_REFRESH_SECONDS + 5))
    tracker.start_run("s")
    assert _access(tracker, "s") > old


@pytest.mark.parametrize("bad", ["yesterday", "2024-01-01T00:00:00"])  # not ISO, no zone
def test_an_unreadable_last_access_is_rewritten(tracker: MlflowTracker, bad: str) -> None:
    exp_id = tracker.sessions.ensure("s")
    tracker.client.set_experiment_tag(exp_id, V.SESSION_ACCESS, bad)
    tracker.start_run("s")
    assert _access(tracker, "s") != bad


def test_a_session_with_an_idle_timeout_is_touched_by_every_run(tracker: MlflowTracker) -> None:
    tracker.sessions.ensure("s", timeout_hours=1)
    _set_access(tracker, "s", timedelta(seconds=5))
    spy = spy_on(tracker)
    tracker.start_run("s")
    assert spy.calls.count("set_experiment_tag") == 1


def test_a_new_session_is_not_touched_twice(tracker: MlflowTracker) -> None:
    spy = spy_on(tracker)
    tracker.start_run("brand_new")
    assert "set_experiment_tag" not in spy.calls  # created with its last access
    assert _access(tracker, "brand_new")


# ---------------------------------------------------------------- once per process


def test_owner_tags_are_computed_once_per_process(monkeypatch) -> None:
    from lret_runner.tracking import owners

    first = owners.owner_tags()
    monkeypatch.setattr(owners, "_started", lambda pid: pytest.fail("looked up again"))
    assert owners.owner_tags() == first
    first[V.OWNER_PID] = "changed"  # a copy: the cache is not the caller's to change
    assert owners.owner_tags()[V.OWNER_PID] != "changed"


def test_the_schema_revision_is_read_once(tracker: MlflowTracker, monkeypatch) -> None:
    from mlflow.store.db import utils

    from lret_runner.tracking import store

    assert tracker.client is not None  # connects: the revision is known from here on
    monkeypatch.setattr(utils, "_get_latest_schema_revision", lambda: pytest.fail("read again"))
    store.connect(tracker.uri)


def test_a_bad_artifact_location_is_refused_before_the_session_is_made(
    fresh_store: Path, tmp_path: Path
) -> None:
    """A local artifact location that is a file (or cannot be made) is refused naming
    tracking.artifact_location, and the session is not created with it: the next run, with
    a good location, creates it and works."""
    from lret_runner.errors import SessionError

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    bad = MlflowTracker(sqlite_uri(tmp_path), artifact_location=str(blocker / "sub"))
    with pytest.raises(SessionError, match=r"tracking\.artifact_location=.*a_file"):
        bad.start_run("s")
    good = MlflowTracker(sqlite_uri(tmp_path), artifact_location=(tmp_path / "art").as_uri())
    run_id = good.start_run("s")
    assert run_id and (tmp_path / "art").is_dir()
