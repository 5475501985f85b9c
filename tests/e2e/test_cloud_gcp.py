"""``cloud=gcp_batch`` end to end: the real ``python -m lret_runner -m cloud=gcp_batch``
against a stub of the Batch REST API (tests/stubs/gcp_batch_api.py, which runs each task's
command as a local process), the GCS emulator (``STORAGE_EMULATOR_HOST``) and a real
``mlflow server`` whose artifacts go to the same emulator (``gs://lret-test/mlflow``)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from stubs.gcp_batch_api import BatchStub
from stubs.gcs import EMULATOR_ENV, Gcs, gcs_emulator

from e2e.conftest import TrackingServer, free_port, start_tracking_server

BUCKET = "lret-test"
STAGED = "lret-runner/"  # cloud.prefix: where the sweeps' files are staged


@pytest.fixture(scope="module")
def gcs() -> Iterator[Gcs]:
    with gcs_emulator([BUCKET]) as gcs:
        yield gcs


@pytest.fixture(scope="module")
def server(gcs: Gcs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    """An MLflow server whose artifacts are objects in the emulator."""
    root = tmp_path_factory.mktemp("gcs-tracking")
    proc, server = start_tracking_server(root, artifacts=f"gs://{BUCKET}/mlflow", env=gcs.env)
    try:
        yield server
    finally:  # SIGKILL: with GCS artifacts it waits out stop_process_group's 15 s SIGTERM
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[BatchStub]:
    with BatchStub(tmp_path / "batch") as stub:
        yield stub


def gcp_sweep(
    run_cli: Any, cwd: Path, server: TrackingServer, gcs: Gcs, stub: BatchStub, *overrides: str
) -> Any:
    """``python -m lret_runner -m cloud=gcp_batch ...`` against the stubs, the emulator
    named by STORAGE_EMULATOR_HOST."""
    args = [
        "-m", "cloud=gcp_batch", "cloud.project=p", "cloud.region=us-central1",
        f"cloud.bucket={BUCKET}", f"cloud.endpoint={stub.url}", "cloud.poll_seconds=0.2",
        "cloud.max_poll_seconds=0.5", "tracking=server", f"tracking.uri={server.uri}",
        "circuit.depth=3", "run.quiet=true", *overrides,
    ]  # fmt: skip
    return run_cli(args, cwd, env=gcs.env, timeout=240)


def batch_runs(server: TrackingServer, stdout: str) -> tuple[Any, list[Any]]:
    """The sweep's batch run (named in its summary line) and its children by job number."""
    match = re.search(r"batch ([0-9a-f]{32}) ", stdout)
    assert match, stdout
    client = MlflowClient(server.uri)
    parent = client.get_run(match.group(1))
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    return parent, sorted(children, key=lambda r: int(r.data.tags.get("job_num", 0)))


def test_sweep_is_one_batch_job_with_a_task_per_job(
    run_cli: Any, tmp_path: Path, server: TrackingServer, gcs: Gcs, stub: BatchStub
) -> None:
    done = gcp_sweep(run_cli, tmp_path, server, gcs, stub, "circuit.n_qubits=3,4")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    parent, children = batch_runs(server, done.stdout)
    assert parent.info.status == "FINISHED"
    assert [c.info.status for c in children] == ["FINISHED", "FINISHED"]
    assert sorted(c.data.params["circuit.n_qubits"] for c in children) == ["3", "4"]
    name = re.search(r"gcp_batch: (lret-[0-9a-f]{8}-0): 2 jobs", done.stderr).group(1)
    for index in (0, 1):
        assert f"gcp_batch: {name} task {index} (job {index}): RUNNING" in done.stderr
        assert f"gcp_batch: {name} task {index} (job {index}): SUCCEEDED" in done.stderr
    assert f"gcp_batch: {name}: job SUCCEEDED" in done.stderr
    (job,) = stub.received  # one Batch job for the sweep
    assert job.task_groups[0].task_count == 2
    runnable = job.task_groups[0].task_spec.runnables[0]
    assert runnable.container.commands[-1] == f"gs://{BUCKET}/{STAGED}{name}"
    assert dict(runnable.environment.variables) == {EMULATOR_ENV: gcs.url}
    assert job.labels["lret-batch"] == name
    # the jobs' artifacts, through the tracking server, are objects in GCS
    objects = gcs.names(BUCKET, "mlflow/")
    for child in children:
        run = child.info
        assert f"mlflow/{run.experiment_id}/{run.run_id}/artifacts/result.json" in objects
    assert gcs.names(BUCKET, STAGED) == []  # the staged configs went with the job


def test_a_failing_task_is_a_failed_job_with_its_error(
    run_cli: Any, tmp_path: Path, server: TrackingServer, gcs: Gcs, stub: BatchStub
) -> None:
    done = gcp_sweep(run_cli, tmp_path, server, gcs, stub, "circuit.n_qubits=0")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "FAILED: 1 of 1 jobs failed" in done.stderr
    assert re.search(r"task 0 \(job 0\): FAILED: Task state .* with exit code 1", done.stderr)
    parent, (child,) = batch_runs(server, done.stdout)
    assert parent.info.status == "FAILED"
    assert child.info.status == "FAILED"
    assert "circuit.n_qubits=0 is invalid" in child.data.tags["error"]
    assert gcs.names(BUCKET, STAGED) == []


def test_a_refused_submission_leaves_no_objects(
    run_cli: Any, tmp_path: Path, server: TrackingServer, gcs: Gcs, stub: BatchStub
) -> None:
    stub.fail_next_create = (403, "PERMISSION_DENIED", "Permission 'batch.jobs.create' denied")
    done = gcp_sweep(run_cli, tmp_path, server, gcs, stub, "circuit.n_qubits=3,4")
    assert done.returncode != 0
    assert "Permission 'batch.jobs.create' denied" in done.stderr
    assert "were deleted" in done.stderr
    assert not stub.jobs
    assert gcs.names(BUCKET, STAGED) == []


def test_dry_run_needs_no_credentials_and_contacts_nothing(run_cli: Any, tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {
        EMULATOR_ENV: None, "GOOGLE_APPLICATION_CREDENTIALS": None, "HOME": str(tmp_path),
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
    }  # fmt: skip
    done = run_cli(
        ["-m", "cloud=gcp_batch", "cloud.project=p", "cloud.region=europe-west4",
         f"cloud.bucket={BUCKET}", "cloud.dry_run=true", "cloud.spot=true", "tracking=server",
         f"tracking.uri={nobody}", "circuit.n_qubits=3,4", "run.quiet=true"],
        tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(rf"gs://{BUCKET}/{STAGED}lret-[0-9a-f]{{8}}-0/job-1\.yaml", out)
    assert "in projects/p/locations/europe-west4:" in out
    job = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert job["taskGroups"][0]["taskCount"] == "2"
    assert job["allocationPolicy"]["instances"][0]["policy"]["provisioningModel"] == "SPOT"
    assert "environment" not in job["taskGroups"][0]["taskSpec"]["runnables"][0]
