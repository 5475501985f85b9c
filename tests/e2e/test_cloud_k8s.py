"""``cloud=k8s`` end to end: ``python -m lret_runner -m cloud=k8s ...`` and ``lret-runner cloud
k8s ...`` as subprocesses, with the real ``kubernetes`` client talking to a stub API server
on loopback (:mod:`stubs.k8s_api`, which also runs each index's pod as a local process with
this interpreter) through a generated kubeconfig, and a real MLflow tracking server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("kubernetes")
pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from stubs.k8s_api import INDEX_LABEL, StubCluster  # noqa: E402

TINY = ["circuit.n_qubits=3,4", "circuit.depth=3", "run.quiet=true"]
FAST_POLL = ["cloud.poll_seconds=0.2", "cloud.max_poll_seconds=0.5"]
LRET_RUNNER = [sys.executable, "-m", "lret_runner.cli"]


class Launch:
    """A launch directory whose sweeps go to the stub cluster and the tracking server, in a
    session of their own."""

    def __init__(self, root: Path, cluster: StubCluster, uri: str, run_cli: Any) -> None:
        self.root, self.cluster, self.uri, self._run_cli = root, cluster, uri, run_cli
        self.session = f"k8s-{uuid.uuid4().hex[:8]}"
        self.env = {
            "KUBECONFIG": str(cluster.kubeconfig(root / "kubeconfig")),
            "LRET_BATCH_RUN_ID": None,
            "MLFLOW_TRACKING_URI": uri,
        }

    def sweep(self, *overrides: str) -> subprocess.CompletedProcess[str]:
        args = [
            "-m", "cloud=k8s", "tracking=server", f"tracking.uri={self.uri}",
            f"session.name={self.session}", *FAST_POLL, *overrides,
        ]  # fmt: skip
        return self._run_cli(args, self.root, env=self.env, timeout=120)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*LRET_RUNNER, "cloud", "k8s", *args],
            cwd=self.root,
            env={**os.environ, "KUBECONFIG": self.env["KUBECONFIG"]},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def batch(self) -> tuple[Any, list[Any]]:
        """The session's one batch run and its children, by job number."""
        client = MlflowClient(self.uri)
        experiment = client.get_experiment_by_name(self.session)
        runs = client.search_runs([experiment.experiment_id])
        (parent,) = [r for r in runs if r.data.tags.get("lret.batch") == "true"]
        kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        return parent, sorted(kids, key=lambda r: int(r.data.tags["job_num"]))


@pytest.fixture
def launch(tmp_path: Path, tracking_server: Any, run_cli: Any) -> Iterator[Launch]:
    """A launch directory with a cluster of its own."""
    with StubCluster(tmp_path / "cluster") as cluster:
        yield Launch(tmp_path, cluster, tracking_server.uri, run_cli)


@pytest.fixture(scope="module")
def finished(
    tmp_path_factory: pytest.TempPathFactory, tracking_server: Any, run_cli: Any
) -> Iterator[tuple[Launch, subprocess.CompletedProcess[str]]]:
    """A sweep of two jobs that finished (one sweep for the tests that read it: each takes
    seconds), with the sweep's output."""
    root = tmp_path_factory.mktemp("k8s-finished")
    with StubCluster(root / "cluster") as cluster:
        launch = Launch(root, cluster, tracking_server.uri, run_cli)
        out = launch.sweep(*TINY, "cloud.parallelism=2", "+cloud.labels.team=qc")
        yield launch, out


def test_sweep_runs_as_one_indexed_job(
    finished: tuple[Launch, subprocess.CompletedProcess[str]],
) -> None:
    launch, out = finished
    assert out.returncode == 0, out.stderr[-4000:]
    parent, kids = launch.batch()
    assert parent.info.status == "FINISHED"
    assert [k.info.status for k in kids] == ["FINISHED", "FINISHED"]
    assert sorted(k.data.params["circuit.n_qubits"] for k in kids) == ["3", "4"]
    (job,) = launch.cluster.items("jobs")
    name = job["metadata"]["name"]
    assert job["metadata"]["labels"] == {"team": "qc", "app": "lret", "lret-batch": name}
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["parallelism"] == 2
    assert job["status"]["completedIndexes"] == "0-1"
    (cm,) = launch.cluster.items("configmaps")
    assert sorted(cm["data"]) == ["job-0.yaml", "job-1.yaml"]
    for index in (0, 1):
        assert re.search(rf"k8s: {name}: index {index} FINISHED \([12]/2 done\)", out.stderr)
    pods = launch.cluster.items("pods", "default", f"lret-batch={name}")
    assert sorted(p["metadata"]["labels"][INDEX_LABEL] for p in pods) == ["0", "1"]
    assert {p["status"]["phase"] for p in pods} == {"Succeeded"}


def test_failed_index_fails_the_batch_with_its_error(launch: Launch) -> None:
    bad = launch.root / "bad.qasm"
    bad.write_bytes(b"OPENQASM 2.0;\nthis is not qasm \xff\n")  # not UTF-8: binaryData
    good = launch.root / "good.qasm"
    good.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0],q[1];\n')
    out = launch.sweep("circuit=qasm", "circuit.path=good.qasm,bad.qasm", "run.quiet=true")
    assert out.returncode == 1, out.stderr[-4000:]
    parent, kids = launch.batch()
    assert parent.info.status == "FAILED"
    assert [k.info.status for k in kids] == ["FINISHED", "FAILED"]
    (job,) = launch.cluster.items("jobs")
    name = job["metadata"]["name"]
    assert re.search(rf"k8s: {name}: index 1 FAILED \([12]/2 done, 1 failed\)", out.stderr)
    (cm,) = launch.cluster.items("configmaps")
    assert any(k.endswith("bad.qasm") for k in cm["binaryData"])
    assert any(k.endswith("good.qasm") for k in cm["data"])
    # the run's error reaches the launching terminal
    assert "job 1: FAILED: CircuitError" in out.stdout


def test_refused_job_deletes_its_configmap(launch: Launch) -> None:
    launch.cluster.refuse_next_job = True
    out = launch.sweep(*TINY)
    assert out.returncode == 1, out.stderr[-4000:]
    assert "the sweep failed: Kubernetes API: creating Job" in out.stderr
    assert "deleted): 403" in out.stderr and "exceeded quota" in out.stderr
    assert launch.cluster.items("jobs") == [] and launch.cluster.items("configmaps") == []
    methods = [r for r in launch.cluster.requests if r[0] in ("POST", "DELETE")]
    assert [m for m, _ in methods] == ["POST", "POST", "DELETE"]


def test_dry_run_needs_no_cluster(tmp_path: Path, run_cli: Any) -> None:
    env = {"KUBECONFIG": None, "HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": None}
    out = run_cli(["-m", "cloud=k8s", "cloud.dry_run=true", *TINY], tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    configmap, job = yaml.safe_load_all(out.stdout)
    assert configmap["kind"] == "ConfigMap" and job["kind"] == "Job"
    assert job["spec"]["completions"] == 2
    assert sorted(configmap["data"]) == ["job-0.yaml", "job-1.yaml"]


def test_cli_lists_shows_logs_and_deletes(
    finished: tuple[Launch, subprocess.CompletedProcess[str]],
) -> None:
    launch, out = finished
    assert out.returncode == 0, out.stderr[-4000:]
    (job,) = launch.cluster.items("jobs")
    name = job["metadata"]["name"]
    listed = launch.cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["name"] == name and row["completions"] == 2 and row["succeeded"] == 2
    assert row["failed"] == 0
    table = launch.cli("list")
    assert name in table.stdout
    logs = launch.cli("logs", name, "--index", "1")
    assert logs.returncode == 0, logs.stderr
    assert "index 1" in logs.stdout and "index 0" not in logs.stdout
    deleted = launch.cli("delete", name)
    assert deleted.returncode == 0, deleted.stderr
    assert launch.cluster.items("jobs") == [] and launch.cluster.items("configmaps") == []
    assert launch.cluster.items("pods") == []
    missing = launch.cli("logs", "lret-00000000-0")
    assert missing.returncode == 2 and "lret-00000000-0" in missing.stderr
