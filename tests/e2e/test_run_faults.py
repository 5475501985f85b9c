"""Fault injection: a signal or a failure at every phase of a run and a sweep, through the
real ``python -m lret_runner``; each test checks the exit code, that no traceback is
printed, and the store afterwards (statuses, metrics, artifacts, ``result.json``,
``PRAGMA integrity_check``).

Faults are injected by a ``sitecustomize`` module put on the subprocess's PYTHONPATH:
``LRET_TEST_FAULT=<target>:<signal>[:<nth call>][:<times>]`` sends the signal to the
process itself just before (or, for ``start_run``, just after) the nth call of the
target, ``times`` times in a row.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import sqlite_uri
from mlflow import MlflowClient
from mlflow.entities import ViewType

TINY = ["circuit.n_qubits=3", "circuit.depth=4", "run.quiet=true", "run.shots=20"]

SITECUSTOMIZE = """
import os, signal

_fault = os.environ.get("LRET_TEST_FAULT")
if _fault:
    _target, _sig, *_rest = _fault.split(":")
    _nth = int(_rest[0]) if _rest else 1
    _times = int(_rest[1]) if len(_rest) > 1 else 1
    _calls = [0]

    def _strike():
        for _ in range(_times):
            os.kill(os.getpid(), getattr(signal, _sig))

    def _patch(owner, name, after=False):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            _calls[0] += 1
            hit = _calls[0] == _nth
            if hit and not after:
                _strike()
            out = original(*args, **kwargs)
            if hit and after:
                _strike()
            return out

        setattr(owner, name, wrapper)

    from lret_runner import experiment
    from lret_runner.simulators.lret import LretSimulator
    from lret_runner.tracking.trackers import MlflowTracker

    {
        "prepare": lambda: _patch(experiment, "prepare"),
        "start_run": lambda: _patch(MlflowTracker, "start_run", after=True),
        "simulate": lambda: _patch(LretSimulator, "_run"),
        "log_metrics": lambda: _patch(MlflowTracker, "log_metrics"),
        "log_artifacts": lambda: _patch(MlflowTracker, "log_artifacts"),
    }[_target]()
"""


@pytest.fixture(scope="module")
def hook_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hook")
    (directory / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return directory


def faulty(run_cli: Any, hook_dir: Path, cwd: Path, fault: str | None, *args: str):
    env = {"LRET_TEST_FAULT": fault, "PYTHONPATH": str(hook_dir), "LRET_BATCH_RUN_ID": None}
    return run_cli(list(args), cwd, env=env, timeout=300)


def store_runs(cwd: Path) -> list[Any]:
    uri = sqlite_uri(cwd)
    if not Path(uri.removeprefix("sqlite:///")).exists():
        return []
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return list(client.search_runs(ids, run_view_type=ViewType.ALL)) if ids else []


def integrity(cwd: Path) -> str:
    with sqlite3.connect(cwd / "mlruns" / "mlflow.db") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def result_json(cwd: Path) -> dict[str, Any]:
    (path,) = cwd.glob("outputs/**/result.json")
    return json.loads(path.read_text())


def artifacts(cwd: Path, run_id: str) -> set[str]:
    return {a.path for a in MlflowClient(sqlite_uri(cwd)).list_artifacts(run_id)}


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]


def cleanup(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": sqlite_uri(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "lret_runner.cli", "runs", "cleanup", "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# ---------------------------------------------------------------- one run, every phase


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupt_while_preparing_records_nothing(run_cli, hook_dir, tmp_path, sig) -> None:
    proc = faulty(run_cli, hook_dir, tmp_path, f"prepare:{sig}", *TINY)
    assert proc.returncode == 130
    no_traceback(proc)
    assert "nothing" in proc.stderr and "recorded" in proc.stderr
    assert store_runs(tmp_path) == []


@pytest.mark.parametrize(
    ("target", "sig"),
    [("start_run", "SIGTERM"), ("simulate", "SIGINT"), ("simulate", "SIGTERM")],
)
def test_interrupt_before_the_result_ends_the_run_killed(
    run_cli, hook_dir, tmp_path, target, sig
) -> None:
    proc = faulty(run_cli, hook_dir, tmp_path, f"{target}:{sig}", *TINY)
    assert proc.returncode == 130
    no_traceback(proc)
    (run,) = store_runs(tmp_path)
    assert run.info.status == "KILLED"
    assert run.data.tags["status"] == "KILLED"
    assert run.data.tags["error"].startswith("interrupted (")
    saved = result_json(tmp_path)
    assert saved["status"] == "KILLED" and saved["run_id"] == run.info.run_id
    assert "config.yaml" in artifacts(tmp_path, run.info.run_id)
    assert integrity(tmp_path) == "ok"


@pytest.mark.parametrize("target", ["log_metrics", "log_artifacts"])
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupt_while_recording_keeps_what_was_computed(
    run_cli, hook_dir, tmp_path, target, sig
) -> None:
    proc = faulty(run_cli, hook_dir, tmp_path, f"{target}:{sig}", *TINY)
    assert proc.returncode == 130
    no_traceback(proc)
    assert "recorded FINISHED first" in proc.stderr
    (run,) = store_runs(tmp_path)
    saved = result_json(tmp_path)
    assert run.info.status == "FINISHED" == saved["status"]
    assert run.data.metrics["exact_fidelity"] == pytest.approx(saved["exact_fidelity"])
    assert {"result.json", "counts.json", "config.yaml"} <= artifacts(tmp_path, run.info.run_id)
    assert integrity(tmp_path) == "ok"


def test_a_second_interrupt_leaves_an_orphan_that_cleanup_ends(run_cli, hook_dir, tmp_path) -> None:
    proc = faulty(run_cli, hook_dir, tmp_path, "log_artifacts:SIGTERM:1:2", *TINY)
    assert proc.returncode == 130
    no_traceback(proc)
    (run,) = store_runs(tmp_path)
    assert run.info.status == "RUNNING"
    done = cleanup(tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r["run_id"] for r in json.loads(done.stdout)] == [run.info.run_id]
    (run,) = store_runs(tmp_path)
    assert run.info.status == "KILLED" and "is gone" in run.data.tags["error"]


def test_sigkill_leaves_an_orphan_that_cleanup_ends(run_cli, hook_dir, tmp_path) -> None:
    proc = faulty(run_cli, hook_dir, tmp_path, "simulate:SIGKILL", *TINY)
    assert proc.returncode == -signal.SIGKILL
    (run,) = store_runs(tmp_path)
    assert run.info.status == "RUNNING"
    assert cleanup(tmp_path).returncode == 0
    (run,) = store_runs(tmp_path)
    assert run.info.status == "KILLED"
    assert f"pid {run.data.tags['lret.owner.pid']}" in run.data.tags["error"]
    assert integrity(tmp_path) == "ok"


def test_cleanup_leaves_a_live_run_alone(run_cli, hook_dir, tmp_path) -> None:
    proc = faulty(run_cli, hook_dir, tmp_path, None, *TINY)
    assert proc.returncode == 0
    (run,) = store_runs(tmp_path)
    client = MlflowClient(sqlite_uri(tmp_path))
    live = client.create_run(
        run.info.experiment_id,
        tags={
            "lret.owner.host": run.data.tags["lret.owner.host"],
            "lret.owner.pid": str(os.getpid()),  # this test process: alive
            "lret.owner.started": _started(os.getpid()),
        },
    )
    assert json.loads(cleanup(tmp_path).stdout) == []
    assert client.get_run(live.info.run_id).info.status == "RUNNING"


def _started(pid: int) -> str:
    from lret_runner.tracking.owners import owner_tags

    assert pid == os.getpid()
    return owner_tags()["lret.owner.started"]


def test_a_failure_while_logging_artifacts_ends_the_run_failed(run_cli, hook_dir, tmp_path) -> None:
    """The session's artifact folder becomes a file after the session was made (a location
    that cannot be made is refused before the session is): the next run's artifacts fail
    to log and the run ends FAILED with the error."""
    import shutil

    folder = tmp_path / "art"
    first = run_cli(
        [*TINY, "session.name=unwritable_artifacts", f"tracking.artifact_location={folder}"],
        tmp_path,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    shutil.rmtree(folder)
    folder.write_text("not a directory")
    shutil.rmtree(tmp_path / "outputs")
    proc = faulty(run_cli, hook_dir, tmp_path, None, *TINY, "session.name=unwritable_artifacts")
    assert proc.returncode == 1
    no_traceback(proc)
    (run,) = [r for r in store_runs(tmp_path) if r.info.status != "FINISHED"]
    saved = result_json(tmp_path)
    assert run.info.status == "FAILED" == saved["status"]
    assert run.data.tags["error"].startswith("recording the run failed")
    assert saved["error"] == run.data.tags["error"]
    assert integrity(tmp_path) == "ok"


# ---------------------------------------------------------------- sweeps

SWEEP = ["-m", "circuit.seed=0,1,2", *TINY]


def batches(cwd: Path) -> list[Any]:
    runs = [r for r in store_runs(cwd) if r.data.tags.get("lret.batch") == "true"]
    return sorted(runs, key=lambda r: r.info.start_time)


def test_an_interrupted_sweep_prints_its_summary_not_a_traceback(
    run_cli, hook_dir, tmp_path
) -> None:
    proc = faulty(run_cli, hook_dir, tmp_path, "simulate:SIGTERM:2", *SWEEP)
    assert proc.returncode == 130
    no_traceback(proc)
    (batch,) = batches(tmp_path)
    assert batch.info.status == "KILLED"
    assert f"batch {batch.info.run_id}" in proc.stdout
    assert "the sweep was interrupted" in proc.stderr


def test_a_sigkilled_sweep_resumes_and_its_summary_covers_every_job(
    run_cli, hook_dir, tmp_path
) -> None:
    killed = faulty(run_cli, hook_dir, tmp_path, "simulate:SIGKILL:2", *SWEEP)
    assert killed.returncode == -signal.SIGKILL
    (first,) = batches(tmp_path)
    assert first.info.status == "RUNNING"
    resumed = faulty(run_cli, hook_dir, tmp_path, None, *SWEEP, "sweep.resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    no_traceback(resumed)
    runs = {r.info.run_id: r for r in store_runs(tmp_path)}
    assert runs[first.info.run_id].info.status == "KILLED"  # the orphans were ended
    assert not [r for r in runs.values() if r.info.status == "RUNNING"]
    second = batches(tmp_path)[-1]
    assert second.info.status == "FINISHED"
    assert second.data.metrics["skipped"] == 1 and second.data.metrics["completed"] == 2
    client = MlflowClient(sqlite_uri(tmp_path))
    csv_path = client.download_artifacts(second.info.run_id, "summary/jobs.csv", str(tmp_path))
    rows = Path(csv_path).read_text().splitlines()[1:]
    assert len(rows) == 3  # the reused job 0 and the two that ran
    assert integrity(tmp_path) == "ok"
