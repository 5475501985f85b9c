"""The read side in-process: typed records from a temporary SQLite store.

Runs are written with :class:`MlflowTracker` (no runner, no subprocesses) and read back
through :class:`Queries`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from lret_runner.errors import SessionError, TrackingError, UserError
from lret_runner.tracking import MlflowTracker, queries
from lret_runner.tracking import vocabulary as V
from lret_runner.tracking.queries import Queries, store_errors

CONFIG: dict[str, Any] = {
    "circuit": {"name": "ghz", "n_qubits": 3, "measure": True, "gates": ["h", "cx"]},
    "noise": {"name": "depolarizing", "level": 0.002},
    "simulator": {"name": "lret", "max_rank": None},
}


@pytest.fixture
def tracker(fresh_store: Path) -> MlflowTracker:
    return MlflowTracker(f"sqlite:///{fresh_store}")


@pytest.fixture
def q(tracker: MlflowTracker) -> Queries:
    return tracker.queries


def make_run(
    tracker: MlflowTracker,
    session: str = "s",
    config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, Any] | None = None,
    status: str = "FINISHED",
) -> str:
    run_id = tracker.start_run(session)
    if config is not None:
        tracker.log_config(run_id, dict(config))
    tracker.log_metrics(run_id, metrics or {})
    tracker.set_tags(run_id, tags or {})
    tracker.end_run(run_id, status)
    return run_id


def with_config(**changes: Any) -> dict[str, Any]:
    """CONFIG with ``section__key=value`` changes."""
    config = json.loads(json.dumps(CONFIG))
    for name, value in changes.items():
        section, key = name.split("__")
        config[section][key] = value
    return config


def shared_first_digit(ids: list[str]) -> str:
    """A first hex digit that at least two of ``ids`` start with (17 ids always have one)."""
    digit, count = Counter(i[0] for i in ids).most_common(1)[0]
    assert count >= 2
    return digit


# ------------------------------------------------------------------------------ resolve


def test_resolve_full_id(tracker: MlflowTracker, q: Queries) -> None:
    run_id = make_run(tracker)
    assert q.resolve(run_id).run_id == run_id


def test_resolve_unique_prefix(tracker: MlflowTracker, q: Queries) -> None:
    ids = [make_run(tracker) for _ in range(5)]
    target = ids[0]
    prefix = next(
        target[:n] for n in range(1, 33) if not any(i.startswith(target[:n]) for i in ids[1:])
    )
    assert q.resolve(prefix).run_id == target


def test_resolve_ambiguous_prefix(tracker: MlflowTracker, q: Queries) -> None:
    ids = [make_run(tracker) for _ in range(17)]
    digit = shared_first_digit(ids)
    count = sum(i.startswith(digit) for i in ids)
    with pytest.raises(TrackingError, match=f"prefix '{digit}' is ambiguous: it matches {count} "):
        q.resolve(digit)


@pytest.mark.parametrize("ref", ["zzz", "0123456789abcdef0123456789abcdef", "0123", "a%"])
def test_resolve_unknown(ref: str, tracker: MlflowTracker, q: Queries) -> None:
    make_run(tracker)
    with pytest.raises(TrackingError, match=re.escape(f"run '{ref}' does not exist")):
        q.resolve(ref)


def test_resolve_filters_in_the_store(
    tracker: MlflowTracker, q: Queries, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prefix is looked up with a LIKE filter: only the matching runs are fetched."""
    ids = [make_run(tracker) for _ in range(17)]
    digit = shared_first_digit(ids)
    search = q.client.search_runs
    fetched: list[tuple[str, int]] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        page = search(*args, **kwargs)
        fetched.append((args[1], len(page)))
        return page

    monkeypatch.setattr(q.client, "search_runs", spy, raising=False)
    with pytest.raises(TrackingError, match="ambiguous"):
        q.resolve(digit)
    assert fetched == [(f"attributes.run_id LIKE '{digit}%'", Counter(i[0] for i in ids)[digit])]


# ---------------------------------------------------------------------------------- runs


def test_runs_follow_pages(
    tracker: MlflowTracker, q: Queries, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "PAGE", 2)
    ids = {make_run(tracker) for _ in range(5)}
    assert {r.run_id for r in q.runs(limit=None)} == ids
    assert len(q.runs(limit=3)) == 3


def test_runs_filter_by_session_tag_and_status(tracker: MlflowTracker, q: Queries) -> None:
    wanted = make_run(tracker, "a", tags={"owner": "it's me"})
    make_run(tracker, "a", tags={"owner": "it's me"}, status="FAILED")
    make_run(tracker, "b", tags={"owner": "it's me"})
    found = q.runs(session="a", tags={"owner": "it's me"}, status="FINISHED")
    assert [r.run_id for r in found] == [wanted]


def test_runs_of_an_unknown_session(q: Queries) -> None:
    with pytest.raises(SessionError, match="'nope' does not exist"):
        q.runs(session="nope")


def test_runs_refuse_an_unknown_status(q: Queries) -> None:
    with pytest.raises(UserError, match="status 'DONE' is invalid"):
        q.runs(status="DONE")


def test_params_keep_their_types(tracker: MlflowTracker, q: Queries) -> None:
    params = q.resolve(make_run(tracker, config=CONFIG)).params
    assert params["circuit.n_qubits"] == 3 and type(params["circuit.n_qubits"]) is int
    assert params["noise.level"] == 0.002 and type(params["noise.level"]) is float
    assert params["circuit.measure"] is True
    assert params["circuit.gates"] == ["h", "cx"]
    assert params["simulator.max_rank"] is None


def test_run_detail_has_rank_history_and_counts(
    tracker: MlflowTracker, q: Queries, tmp_path: Path
) -> None:
    run_id = tracker.start_run("s")
    tracker.log_metrics(run_id, {}, series={V.RANK_METRIC: [1, 2, 4, 3]})
    counts = tmp_path / "counts.json"
    counts.write_text(json.dumps({"00": 3, "11": 5}))
    tracker.log_artifacts(run_id, [counts])
    tracker.end_run(run_id, "FINISHED")
    detail = q.run_detail(run_id[:12])
    assert (detail.run_id, detail.rank_history, detail.counts) == (
        run_id,
        [1.0, 2.0, 4.0, 3.0],
        {"00": 3, "11": 5},
    )


def test_a_corrupt_counts_artifact_reads_as_none(
    tracker: MlflowTracker, q: Queries, tmp_path: Path
) -> None:
    run_id = tracker.start_run("default")
    counts = tmp_path / "counts.json"
    counts.write_text("{not json")
    tracker.log_artifacts(run_id, [counts])
    assert q.run_detail(run_id).counts is None


def test_run_detail_without_counts(tracker: MlflowTracker, q: Queries) -> None:
    detail = q.run_detail(make_run(tracker, status="FAILED"))
    assert (detail.counts, detail.rank_history) == (None, [])


def test_records_are_json(tracker: MlflowTracker, q: Queries) -> None:
    a = make_run(tracker, config=CONFIG, metrics={"exact_fidelity": 0.9})
    b = make_run(tracker, config=CONFIG, tags={V.LINEAGE_PARENT: a})
    for record in (q.run_detail(b), q.lineage(b), q.compare([a, b]), q.session_summary("s")):
        assert json.loads(json.dumps(record.to_dict()))


def test_tag_run(tracker: MlflowTracker, q: Queries) -> None:
    run_id = make_run(tracker)
    run = q.tag_run(run_id[:10], {"reviewed": "true", "note": "[x]"})
    assert (run.tags["reviewed"], run.tags["note"]) == ("true", "[x]")


def test_tag_run_refuses_mlflow_tags(tracker: MlflowTracker, q: Queries) -> None:
    with pytest.raises(UserError, match="reserved for MLflow"):
        q.tag_run(make_run(tracker), {"mlflow.runName": "x"})


def test_store_errors_become_tracking_errors(q: Queries) -> None:
    with pytest.raises(TrackingError), store_errors():
        q.client.get_experiment("999999")


# ------------------------------------------------------------------------------- lineage


def test_lineage_chain_with_typed_changes(tracker: MlflowTracker, q: Queries) -> None:
    a = make_run(tracker, config=CONFIG)
    b = make_run(tracker, config=with_config(circuit__n_qubits=4), tags={V.LINEAGE_PARENT: a})
    c = make_run(tracker, config=with_config(circuit__n_qubits=4), tags={V.LINEAGE_PARENT: b})
    lineage = q.lineage(c)
    assert (lineage.complete, lineage.note) == (True, None)
    assert [s.run_id for s in lineage.chain] == [a, b, c]
    assert [s.changes for s in lineage.chain] == [
        {},
        {"circuit.n_qubits": {"old": 3, "new": 4}},
        {},
    ]


def test_lineage_with_a_cycle(tracker: MlflowTracker, q: Queries) -> None:
    a = make_run(tracker)
    b = make_run(tracker, tags={V.LINEAGE_PARENT: a})
    tracker.set_tags(a, {V.LINEAGE_PARENT: b})
    lineage = q.lineage(b)
    assert [s.run_id for s in lineage.chain] == [a, b]
    assert not lineage.complete and lineage.note.startswith(f"cycle: run {a} names {b}")


def test_lineage_with_a_missing_parent(tracker: MlflowTracker, q: Queries) -> None:
    gone = "f" * 32
    child = make_run(tracker, tags={V.LINEAGE_PARENT: gone})
    lineage = q.lineage(child)
    assert [s.run_id for s in lineage.chain] == [child]
    assert not lineage.complete and lineage.note.startswith(f"missing parent: run {child} names")
    assert gone in lineage.note


def test_lineage_too_long(
    tracker: MlflowTracker, q: Queries, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "MAX_LINEAGE", 2)
    run_id = make_run(tracker)
    for _ in range(4):
        run_id = make_run(tracker, tags={V.LINEAGE_PARENT: run_id})
    lineage = q.lineage(run_id)
    assert len(lineage.chain) == 3 and lineage.chain[-1].run_id == run_id
    assert (lineage.complete, lineage.note) == (False, "stopped after 2 ancestors")


# ------------------------------------------------------------------------------- compare


def test_compare_best_run_and_improvement(tracker: MlflowTracker, q: Queries) -> None:
    first = make_run(tracker, metrics={"exact_fidelity": 0.8, "simulation_time_seconds": 10.0})
    best = make_run(tracker, metrics={"exact_fidelity": 0.9, "simulation_time_seconds": 5.0})
    tie = make_run(tracker, metrics={"exact_fidelity": 0.9, "simulation_time_seconds": 8.0})
    metrics = q.compare([first, best, tie]).metrics
    fidelity, time = metrics["exact_fidelity"], metrics["simulation_time_seconds"]
    assert (fidelity.min, fidelity.max, fidelity.higher_is_better) == (0.8, 0.9, True)
    assert fidelity.best_run == best  # the first of the best
    assert fidelity.improvement_percent == pytest.approx(12.5)
    assert (time.higher_is_better, time.best_run) == (False, best)
    assert time.improvement_percent == pytest.approx(50.0)
    assert set(metrics) == set(V.COMPARED_METRICS)


def test_compare_leaves_out_unfinished_runs(tracker: MlflowTracker, q: Queries) -> None:
    done = make_run(tracker, metrics={"exact_fidelity": 0.5})
    failed = make_run(tracker, metrics={"exact_fidelity": 0.99}, status="FAILED")
    fidelity = q.compare([done, failed]).metrics["exact_fidelity"]
    assert (fidelity.values, fidelity.best_run, fidelity.improvement_percent) == (
        [0.5, None],
        done,
        0.0,
    )


def test_compare_params_that_differ_keep_types(tracker: MlflowTracker, q: Queries) -> None:
    a = make_run(tracker, config=CONFIG)
    b = make_run(tracker, config=with_config(noise__level=0.01, circuit__gates=["h"]))
    assert q.compare([a, b]).params == {
        "circuit.gates": [["h", "cx"], ["h"]],
        "noise.level": [0.002, 0.01],
    }


def test_compare_needs_two_runs(tracker: MlflowTracker, q: Queries) -> None:
    with pytest.raises(UserError, match="at least two run ids, got 1"):
        q.compare([make_run(tracker)])


# ------------------------------------------------------------------------------ sessions


def test_session_summary_counts(tracker: MlflowTracker, q: Queries) -> None:
    batch = make_run(tracker, "sweep", tags={V.BATCH_TAG: "true"})
    for status in ("FINISHED", "FINISHED", "FAILED"):
        make_run(tracker, "sweep", tags={V.PARENT_RUN: batch}, status=status)
    summary = q.session_summary("sweep", limit=2)
    assert (summary.session.name, summary.runs, summary.batches) == ("sweep", 4, 1)
    assert summary.run_statuses == {"FAILED": 1, "FINISHED": 3}
    assert len(summary.latest_runs) == 2


def test_session_summaries_count_page_by_page(
    tracker: MlflowTracker, q: Queries, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "PAGE", 2)
    for _ in range(5):
        make_run(tracker, "big")
    make_run(tracker, "small")
    counts = {s.session.name: s.runs for s in q.session_summaries()}
    assert counts == {"big": 5, "small": 1}  # MLflow's empty Default experiment is left out


def test_session_summaries_hide_closed_sessions(tracker: MlflowTracker, q: Queries) -> None:
    make_run(tracker, "kept")
    make_run(tracker, "shut")
    tracker.sessions.set_status("shut", "closed")
    assert [s.session.name for s in q.session_summaries()] == ["kept"]
    every = {s.session.name: s.session.status for s in q.session_summaries(include_all=True)}
    assert every == {"kept": "open", "shut": "closed", "Default": "open"}


def test_count_runs_agrees_with_listing_them(tmp_path: Path) -> None:
    """The SQL count (SQLite) and the runs themselves, for every filter the API uses."""
    from lret_runner.tracking import MlflowTracker

    tracker = MlflowTracker(f"sqlite:///{tmp_path}/mlflow.db", None, 10.0)
    for i in range(7):
        run = tracker.start_run("a" if i % 2 else "b", tags={"k": str(i % 3), "status": "x"})
        if i % 3:
            tracker.end_run(run, "FINISHED")
    q = tracker.queries
    cases = [
        (None, {}, None),
        ("a", {}, None),
        (None, {"k": "1"}, None),
        (None, {}, "RUNNING"),
        ("b", {"k": "0"}, "RUNNING"),
        (None, {"k": "9"}, None),
        (None, {"k": "1", "status": "x"}, "FINISHED"),
    ]
    for session, tags, status in cases:
        expected = len(q.runs(session, tags, status, None))
        assert q.count_runs(session, tags, status) == expected, (session, tags, status)
    assert q.count_runs() == 7


def test_runs_of_the_first_result_schema_read_under_todays_names(
    tracker: MlflowTracker, q: Queries
) -> None:
    # before version 2, "fidelity" was the engine against the exact state and "max_rank" the
    # widest factor: a reader shows them as exact_fidelity and widest_factor, never as a
    # fidelity to the noiseless circuit
    old = make_run(tracker, metrics={"fidelity": 0.97, "trace_distance": 0.01, "max_rank": 64})
    new = make_run(
        tracker,
        metrics={"exact_fidelity": 0.99, "ideal_fidelity": 0.8},
        tags={V.RESULT_SCHEMA: V.RESULT_SCHEMA_VERSION},
    )
    old_run, new_run = q.resolve(old), q.resolve(new)
    assert old_run.metrics == {
        "exact_fidelity": 0.97,
        "exact_trace_distance": 0.01,
        "widest_factor": 64,
    }
    assert new_run.metrics == {"exact_fidelity": 0.99, "ideal_fidelity": 0.8}
    compared = q.compare([old, new]).metrics
    assert compared["exact_fidelity"].values == [0.97, 0.99]
    assert compared["ideal_fidelity"].values == [None, 0.8]  # the old run never had it
    assert old_run.brief()["exact_fidelity"] == 0.97 and old_run.brief()["ideal_fidelity"] is None
