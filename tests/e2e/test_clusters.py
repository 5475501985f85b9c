"""Sweeps on real local clusters: Slurm (``make slurm-up``: munge, slurmdbd, slurmctld and
slurmd on this machine) and Ray (``scripts/ray-up.sh``, what ``make ray-up`` runs, on
loopback). Marked ``cluster``: a test skips, saying why, when its cluster is not up.

Slurm's jobs run through sbatch on the node and Ray's in the cluster's worker processes,
which were started in another directory and do not inherit the launching environment:
these tests prove the launching process hands every job the store, the batch and the
sweep directory (before, Ray jobs were not children of the batch and wrote their outputs
under the directory where the cluster had been started).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import Sweep, TrackingServer, free_port

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
TINY = ["circuit.n_qubits=3,4", "circuit.depth=3", "run.quiet=true"]
# jobs of about 7 s (fdm at 12 qubits, depth 100), to cancel or interrupt while they run
LONG = ["simulator=fdm", "run.compare_to_exact=false", "circuit.depth=100", "run.quiet=true"]


def _statuses(sw: Sweep) -> tuple[Any, list[str]]:
    [parent] = sw.batches()
    return parent, [k.info.status for k in sw.children(parent)]


# ---------------------------------------------------------------- Slurm
def _slurm_idle() -> str | None:
    """None if a Slurm node is up and idle, else why not."""
    if shutil.which("sinfo") is None:
        return "Slurm is not installed here (make slurm-up installs and starts it)"
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"sinfo failed: {exc}"
    if out.returncode != 0 or not any(
        s.startswith(("idle", "mixed", "allocated")) for s in out.stdout.split()
    ):
        return f"no Slurm node is up (sinfo: {(out.stdout + out.stderr).strip()[:200]})"
    return None


@pytest.fixture
def slurm(tmp_path: Path, empty_store: Path, run_cli: Any, start_cli: Any) -> Sweep:
    why = _slurm_idle()
    if why:
        pytest.skip(f"Slurm cluster tests skipped: {why}")
    return Sweep(tmp_path, empty_store, run_cli, start_cli)


def test_slurm_sweep_lands_in_one_batch_and_a_failing_job_fails_alone(slurm: Sweep) -> None:
    out = slurm.run("cloud=slurm", "circuit.n_qubits=3,4,99", "circuit.depth=3", "run.quiet=true")
    assert out.returncode == 1, out.stderr[-3000:]
    parent, statuses = _statuses(slurm)
    assert parent.info.status == "FAILED" and statuses == ["FINISHED", "FINISHED", "FAILED"]
    assert "circuit.n_qubits=99 is invalid" in out.stdout
    assert "Slurm sweep output dir" in out.stdout
    # submitit ran them on the cluster: its folder holds the array's logs
    assert list((slurm.root / "multirun").glob("*/*/.submitit/*"))


def test_slurm_cancelled_job_then_resume(slurm: Sweep) -> None:
    """scancel of one running job: that job is lost, the others finish and are recorded,
    the batch ends KILLED; ``sweep.resume=true`` then runs only the job that is missing."""
    axes = ["cloud=slurm", "circuit.n_qubits=3,12", *LONG]
    proc = slurm.popen(*axes)
    big = _wait_for_slurm_job(proc)
    subprocess.run(["scancel", big], check=True, timeout=10)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 130, stderr[-3000:]
    parent, statuses = _statuses(slurm)
    assert parent.info.status == "KILLED"
    assert statuses.count("FINISHED") == 1 and set(statuses) <= {"FINISHED", "KILLED"}
    assert "1 of 2 jobs have no run" in stdout or "KILLED" in statuses

    slurm.ok(*axes, "sweep.resume=true", timeout=300)
    batches = slurm.batches()
    assert [b.info.status for b in batches] == ["KILLED", "FINISHED"]
    [again] = slurm.children(batches[1])  # the finished job is reused, not run again
    assert again.info.status == "FINISHED" and again.data.params["circuit.n_qubits"] == "12"
    assert batches[1].data.metrics["skipped"] == 1


def _wait_for_slurm_job(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """The id of the sweep's 12-qubit job once it runs (the array's second task)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        out = subprocess.run(
            ["squeue", "-h", "-t", "R", "-o", "%i"], capture_output=True, text=True, timeout=10
        ).stdout.split()
        running = [j for j in out if j.endswith("_1")]
        if running:
            time.sleep(2)  # let it open its run
            return running[0]
        time.sleep(0.5)
    proc.kill()
    pytest.fail("the 12-qubit Slurm job never ran")


# ---------------------------------------------------------------- Ray
@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A Ray cluster started by scripts/ray-up.sh from a directory of its own (its workers
    run there), on a free loopback port; (address, that directory)."""
    ray = Path(sys.executable).parent / "ray"
    if not ray.exists():
        pytest.skip("Ray cluster tests skipped: ray is not installed (the ray extra)")
    where = tmp_path_factory.mktemp("ray_cluster_dir")
    port = free_port()
    env = {"RAY": str(ray), "RAY_PORT": str(port), "RAY_CPUS": "2", "PATH": _path()}
    up = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ray-up.sh")],
        cwd=where, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    if up.returncode != 0:
        pytest.skip(f"Ray cluster tests skipped: ray-up failed: {up.stderr[-1000:]}")
    try:
        yield f"127.0.0.1:{port}", where
    finally:
        subprocess.run([str(ray), "stop", "--force"], capture_output=True, timeout=120)


def _path() -> str:
    import os

    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def test_ray_sweep_lands_in_the_launching_store(ray_cluster: tuple[str, Path], sweep: Sweep):
    """Two jobs and a failing one: the failure stays with its job."""
    address, cluster_dir = ray_cluster
    out = sweep.run("cloud=ray", f"cloud.address={address}", "circuit.n_qubits=3,4,99",
                    "circuit.depth=3", "run.quiet=true")  # fmt: skip
    assert out.returncode == 1, out.stderr[-3000:]
    parent, statuses = _statuses(sweep)
    assert parent.info.status == "FAILED" and statuses == ["FINISHED", "FINISHED", "FAILED"]
    assert "circuit.n_qubits=99 is invalid" in out.stdout
    # the jobs wrote their outputs in the launching sweep dir, nothing where Ray started
    assert len(list((sweep.root / "multirun").rglob("result.json"))) == 3
    assert not list(cluster_dir.rglob("result.json")) and not (cluster_dir / "mlruns").exists()


def test_ray_workers_report_to_the_tracking_server(
    ray_cluster: tuple[str, Path], tracking_server: TrackingServer, tmp_path: Path, run_cli: Any
) -> None:
    from mlflow import MlflowClient

    address, _ = ray_cluster
    session = f"ray-server-{tmp_path.name}"
    out = run_cli(
        ["-m", "cloud=ray", f"cloud.address={address}", "tracking=server",
         f"tracking.uri={tracking_server.uri}", f"session.name={session}", *TINY],
        tmp_path, env={"MLFLOW_TRACKING_URI": None, "LRET_BATCH_RUN_ID": None},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(tracking_server.uri)
    exp = client.get_experiment_by_name(session)
    runs = client.search_runs([exp.experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("lret.batch") == "true"]
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED"
    assert sorted(r.info.status for r in kids) == ["FINISHED", "FINISHED"]
    assert not (tmp_path / "mlruns").exists()  # nothing went to an embedded store


def test_ray_interrupt_cancels_the_running_tasks(
    ray_cluster: tuple[str, Path], sweep: Sweep
) -> None:
    """SIGINT while a job runs on the cluster: the task is cancelled, its run ends KILLED
    (never left RUNNING, never FINISHED after the batch closed)."""
    address, _ = ray_cluster
    proc = sweep.popen("cloud=ray", f"cloud.address={address}", "circuit.n_qubits=12", *LONG)
    deadline = time.monotonic() + 90
    while not any(r.info.status == "RUNNING" for r in sweep.runs() if "job_num" in r.data.tags):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    parent, statuses = _statuses(sweep)
    assert parent.info.status == "KILLED" and statuses == ["KILLED"]
    time.sleep(3)  # a task that was not cancelled would finish its run by now
    _, statuses = _statuses(sweep)
    assert statuses == ["KILLED"]
