"""The batch callback closing a sweep, in-process: the jobs are counted once, at the end,
from one read of the children (a job does not count its batch)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import sqlite_uri

from lret_runner.task.batch import BatchCallback
from lret_runner.tracking import MlflowTracker
from lret_runner.tracking import vocabulary as V


@pytest.fixture
def tracker(fresh_store: Path, tmp_path: Path) -> MlflowTracker:
    return MlflowTracker(sqlite_uri(tmp_path))


def _child(tracker: MlflowTracker, parent: str, job: int, status: str | None) -> str:
    run_id = tracker.start_run("s", tags={V.PARENT_RUN: parent, V.JOB_NUM: job})
    if status is not None:
        tracker.set_tags(run_id, {V.STATUS: status})
        tracker.end_run(run_id, status)
    return run_id


def test_close_counts_the_jobs_once_and_ends_a_running_one(tracker, monkeypatch) -> None:
    parent = tracker.start_run("s", tags={V.BATCH_TAG: "true"})
    _child(tracker, parent, 0, "FINISHED")
    _child(tracker, parent, 1, "FAILED")
    left = _child(tracker, parent, 2, None)  # its worker ended without ending it
    callback = BatchCallback()
    callback.tracker, callback.total = tracker, 3
    searches = []
    original = tracker.queries.__class__.batch_children

    def counted(self, parent_run_id):
        searches.append(parent_run_id)
        return original(self, parent_run_id)

    monkeypatch.setattr(tracker.queries.__class__, "batch_children", counted)
    status, counts, jobs, study = callback._close(parent)
    assert counts == {"completed": 1, "failed": 1, "killed": 1, "skipped": 0}
    assert status == "KILLED"  # a job was killed: the sweep did not run to its end
    assert len(searches) == 2  # the children once to count them, once for the summary
    ended = tracker.client.get_run(left)
    assert ended.info.status == "KILLED" and ended.data.tags[V.STATUS] == "KILLED"
    record = tracker.client.get_run(parent)
    assert record.info.status == "KILLED"
    assert {k: record.data.metrics[k] for k in counts} == counts
    assert [j.job_num for j in jobs] == [0, 1, 2]


def test_close_counts_skipped_jobs_from_the_parents_tags(tracker) -> None:
    earlier = tracker.start_run("s")
    tracker.end_run(earlier, "FINISHED")
    parent = tracker.start_run("s", tags={V.BATCH_TAG: "true", f"{V.SKIPPED_TAG}0": earlier})
    _child(tracker, parent, 1, "FINISHED")
    callback = BatchCallback()
    callback.tracker, callback.total = tracker, 2
    status, counts, jobs, study = callback._close(parent)
    assert status == "FINISHED"
    assert counts == {"completed": 1, "failed": 0, "killed": 0, "skipped": 1}
    assert [j.run_id for j in jobs] == [earlier, jobs[1].run_id]
