"""``cloud=k8s`` (:mod:`lret_runner.cloud.kubernetes`) without a sweep: the manifests (every
setting where Kubernetes reads it, validated offline against the API's JSON schemas by
``kubernetes-validate``), ``check`` naming the setting, the polling back-off on an injected
clock, and, with the real ``kubernetes`` client against the stub API server
(:mod:`stubs.k8s_api`, its pods local processes), the cleanup of a refused submission and
the outcomes of a Job whose index fails.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lret_runner.cloud import kubernetes as k8s
from lret_runner.cloud.jobs import Staged
from lret_runner.errors import ConfigError, UserError

NAME = "lret-0123abcd-0"


def staged(count: int = 2, **files: bytes) -> Staged:
    out = Staged(NAME, None, 0, [[f"circuit.n_qubits={3 + i}"] for i in range(count)])
    out.files = {f"job-{i}.yaml": f"job: {i}\n".encode() for i in range(count)} | files
    return out


@pytest.fixture(scope="module")
def cloud() -> Any:
    """``cloud=k8s`` as composed from the preset, with every setting given."""
    from conftest import compose_config

    return compose_config(
        [
            "cloud=k8s",
            "cloud.namespace=lab",
            "cloud.image=registry.example/lret-runner:1.2",
            "cloud.image_pull_policy=Always",
            "cloud.parallelism=3",
            "cloud.cpu_request=500m",
            "cloud.memory_request=512Mi",
            "cloud.cpu_limit=2",
            "cloud.memory_limit=2Gi",
            "+cloud.node_selector.pool=cpu",
            "cloud.backoff_limit_per_index=2",
            "cloud.ttl_seconds_after_finished=600",
            "cloud.service_account=lret-jobs",
            "+cloud.labels.team=qc",
            "cloud.dry_run=true",
        ]
    ).cloud


def with_(cloud: Any, **settings: Any) -> Any:
    from omegaconf import OmegaConf

    out = OmegaConf.create(OmegaConf.to_container(cloud))
    for key, value in settings.items():
        out[key] = value
    return out


# ---------------------------------------------------------------- manifests


def test_every_setting_lands_in_the_job(cloud: Any) -> None:
    job = k8s.job_manifest(staged(5), cloud)
    labels = {"team": "qc", "app": "lret", "lret-batch": NAME}
    assert job["metadata"] == {"name": NAME, "namespace": "lab", "labels": labels}
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 5
    assert spec["parallelism"] == 3
    assert spec["backoffLimitPerIndex"] == 2 and spec["ttlSecondsAfterFinished"] == 600
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"] == labels
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "lret-jobs"
    assert pod["nodeSelector"] == {"pool": "cpu"}
    assert pod["volumes"][0] == {"name": "jobs", "configMap": {"name": NAME}}
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/lret-runner:1.2"
    assert container["imagePullPolicy"] == "Always"
    assert container["command"] == ["python", "-m", "lret_runner.cloud.entry", k8s.MOUNT]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert {"name": "jobs", "mountPath": k8s.MOUNT, "readOnly": True} in container["volumeMounts"]


def test_defaults_leave_out_what_is_unset(compose: Any) -> None:
    cloud = compose(["cloud=k8s", "cloud.ttl_seconds_after_finished=null"]).cloud
    spec = k8s.job_manifest(staged(4), cloud)["spec"]
    assert spec["parallelism"] == 4  # null: every job at once
    assert "ttlSecondsAfterFinished" not in spec
    pod = spec["template"]["spec"]
    assert "serviceAccountName" not in pod and "nodeSelector" not in pod
    assert pod["containers"][0]["resources"]["limits"] == {"memory": "4Gi"}
    assert k8s.job_manifest(staged(2), with_(cloud, parallelism=8))["spec"]["parallelism"] == 2


def test_configmap_holds_text_and_binary_files(cloud: Any) -> None:
    raw = b"\x00\xff binary"
    cm = k8s.configmap_manifest(
        staged(2, **{"input-1-a.qasm": b"OPENQASM 2.0;", "input-2-b": raw}), cloud
    )
    assert cm["metadata"]["name"] == NAME and cm["metadata"]["namespace"] == "lab"
    assert cm["data"]["job-1.yaml"] == "job: 1\n"
    assert cm["data"]["input-1-a.qasm"] == "OPENQASM 2.0;"
    assert base64.b64decode(cm["binaryData"]["input-2-b"]) == raw
    assert "binaryData" not in k8s.configmap_manifest(staged(1), cloud)


def test_configmap_over_a_mebibyte_is_refused(cloud: Any) -> None:
    big = staged(1, **{"input-x-big.qasm": b"x" * k8s.CONFIGMAP_LIMIT})
    with pytest.raises(UserError, match="more than a ConfigMap holds"):
        k8s.configmap_manifest(big, cloud)


@pytest.mark.parametrize("version", ["1.30", "1.33", "latest"])
def test_manifests_match_the_kubernetes_schema(cloud: Any, version: str) -> None:
    """Offline: the API's OpenAPI-derived JSON schemas (strict: no unknown field)."""
    kv = pytest.importorskip("kubernetes_validate")
    version = kv.latest_version() if version == "latest" else version
    files = {"input-1-b": b"\xff"}
    for manifest in (
        k8s.configmap_manifest(staged(3, **files), cloud),
        k8s.job_manifest(staged(3), cloud),
    ):
        kv.validate(manifest, version, strict=True)


def test_dry_run_prints_yaml_and_contacts_nothing(
    cloud: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    monkeypatch.setattr(k8s, "api_client", lambda cloud: pytest.fail("contacted a cluster"))
    assert k8s.run(staged(2), cloud) is None
    cm, job = yaml.safe_load_all(capsys.readouterr().out)
    assert cm == k8s.configmap_manifest(staged(2), cloud)
    assert job == k8s.job_manifest(staged(2), cloud)


# ---------------------------------------------------------------- check


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("namespace", "Lab_1", "cloud.namespace='Lab_1' is invalid"),
        ("namespace", "x" * 64, "cloud.namespace="),
        ("image", " ", "cloud.image=' ' is invalid"),
        ("image_pull_policy", "always", "cloud.image_pull_policy='always' is invalid: must be one"),
        ("cpu_request", "1 core", "cloud.cpu_request='1 core' is invalid"),
        ("memory_limit", "4GB", "cloud.memory_limit='4GB' is invalid"),
        ("memory_request", "8Gi", "cloud.memory_request=8Gi is invalid: must be at most"),
        ("cpu_request", "3", "cloud.cpu_request=3 is invalid: must be at most cloud.cpu_limit=2"),
        ("service_account", "Jobs!", "cloud.service_account='Jobs!' is invalid"),
        ("labels", {"team": "q c"}, "cloud.labels.team='q c' is invalid"),
        ("labels", {"app": "other"}, "cloud.labels.app is invalid: the runner sets"),
        ("labels", {"-bad": "x"}, "cloud.labels key '-bad' is invalid"),
        ("node_selector", {"example.com/pool": "x" * 64}, "cloud.node_selector.example.com/pool="),
        ("context", "", "cloud.context='' is invalid"),
    ],
)
def test_check_names_the_setting(cloud: Any, setting: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        k8s.check(with_(cloud, **{setting: value}))
    assert message in str(err.value)


def test_check_accepts_good_settings(cloud: Any) -> None:
    k8s.check(cloud)  # dry_run: no cluster needed
    k8s.check(with_(cloud, cpu_limit=None, memory_limit=None, service_account=None))


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1), ("500m", 0.5), ("1Gi", 2**30), ("1.5G", 1.5e9), ("2e3", 2000), ("100Ki", 102400)],
)
def test_quantities(text: str, value: float) -> None:
    assert float(k8s.quantity("q", text)) == value


def test_no_cluster_config_names_kubeconfig(
    cloud: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="KUBECONFIG is not set"):
        k8s.check(with_(cloud, dry_run=False))


def test_unknown_context_names_it(
    cloud: Any, cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig(tmp_path / "kubeconfig")))
    with pytest.raises(ConfigError, match="cloud.context=elsewhere"):
        k8s.check(with_(cloud, dry_run=False, context="elsewhere"))
    k8s.check(with_(cloud, dry_run=False, context="stub"))


def test_unreachable_cluster_is_a_config_error(
    cloud: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"""{{"apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{{"name": "c", "cluster": {{"server": "http://127.0.0.1:{port}"}}}}],
        "users": [{{"name": "u", "user": {{}}}}],
        "contexts": [{{"name": "c", "context": {{"cluster": "c", "user": "u"}}}}]}}"""
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(ConfigError, match="does not answer"):
        k8s.check(with_(cloud, dry_run=False))


# ---------------------------------------------------------------- waiting


class FakeWatch:
    """A Job that ends after ``polls`` status reads."""

    def __init__(self, polls: int) -> None:
        self.polls, self.count = polls, 0

    def poll(self) -> k8s.JobStatus:
        self.count += 1
        status = k8s.JobStatus(None)
        status.gone = self.count >= self.polls
        return status


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_polls_double_up_to_the_most() -> None:
    clock = Clock()
    wait_cfg = SimpleNamespace(poll_seconds=2.0, max_poll_seconds=30.0, timeout_minutes=None)
    status = k8s.wait(FakeWatch(8), wait_cfg, clock=clock, sleep=clock.sleep)
    assert status.done and not status.timed_out
    assert clock.sleeps == [2, 4, 8, 16, 30, 30, 30]


def test_timeout_stops_waiting_on_time() -> None:
    clock = Clock()
    wait_cfg = SimpleNamespace(poll_seconds=1.0, max_poll_seconds=8.0, timeout_minutes=0.5)
    status = k8s.wait(FakeWatch(1000), wait_cfg, clock=clock, sleep=clock.sleep)
    assert status.timed_out and not status.done
    assert clock.sleeps == [1, 2, 4, 8, 8, 7]  # the last one up to the deadline only
    assert clock.now == 130


def test_indexes() -> None:
    assert k8s.parse_indexes("0,2-4,7") == {0, 2, 3, 4, 7}
    assert k8s.parse_indexes(None) == set() and k8s.parse_indexes("") == set()


# ---------------------------------------------------------------- against the stub


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    from stubs.k8s_api import StubCluster

    with StubCluster(tmp_path / "cluster") as stub:
        yield stub


@pytest.fixture
def api(cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    pytest.importorskip("kubernetes")
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig(tmp_path / "kubeconfig")))
    return k8s.api_client(SimpleNamespace(context=None))


def test_refused_job_deletes_the_configmap(cloud: Any, cluster: Any, api: Any) -> None:
    cloud = with_(cloud, namespace="default")
    cluster.refuse_next_job = True
    with pytest.raises(UserError, match="ConfigMap .* deleted.*exceeded quota") as err:
        k8s.submit(api, k8s.configmap_manifest(staged(), cloud), k8s.job_manifest(staged(), cloud))
    assert f"creating Job default/{NAME} (ConfigMap {NAME} deleted): 403" in str(err.value)
    assert cluster.items("configmaps") == [] and cluster.items("jobs") == []


def test_existing_configmap_is_an_api_error(cloud: Any, cluster: Any, api: Any) -> None:
    cloud = with_(cloud, namespace="default")
    cm, job = k8s.configmap_manifest(staged(), cloud), k8s.job_manifest(staged(), cloud)
    cluster.create("configmaps", "default", dict(cm))
    with pytest.raises(UserError, match="creating ConfigMap default/.*: 409 .*already exists"):
        k8s.submit(api, cm, job)
    assert cluster.items("jobs") == []


def test_failed_index_outcome_has_its_log(
    cloud: Any, cluster: Any, api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pods whose command exits 1 for index 1 (not the entry: seconds faster)."""
    cloud = with_(cloud, namespace="default", poll_seconds=0.05, max_poll_seconds=0.1)
    job = k8s.job_manifest(staged(3), cloud)
    script = (
        "import os, sys; i = int(os.environ['JOB_COMPLETION_INDEX']); "
        "print('index', i, 'reads', sorted(os.listdir(sys.argv[1]))); "
        "print('{\"not\": \"parsed\"}' if i == 1 else ''); sys.exit(i == 1)"
    )
    job["spec"]["template"]["spec"]["containers"][0]["command"] = [
        "python",
        "-c",
        script,
        k8s.MOUNT,
    ]
    k8s.submit(api, k8s.configmap_manifest(staged(3), cloud), job)
    watch = k8s.JobWatch(api, "default", NAME, 3)
    outcomes = watch.outcomes(k8s.wait(watch, cloud))
    assert [o.succeeded for o in outcomes] == [True, False, True]
    failed = outcomes[1]
    assert "its pod failed (Error, exit code 1) in pod lret-0123abcd-0-1-" in failed.reason
    assert "index 1 reads ['job-0.yaml', 'job-1.yaml', 'job-2.yaml']" in failed.log
    assert '{"not": "parsed"}' in failed.log
    err = capsys.readouterr().err
    assert f"k8s: {NAME}: index 1 FAILED (" in err and "1 failed)" in err
    # podFailurePolicy: a run that failed (exit 1) is not retried despite the backoff limit
    assert len(cluster.items("pods", "default", f"{k8s.INDEX_LABEL}=1")) == 1


def test_deleted_job_ends_the_wait(cloud: Any, cluster: Any, api: Any) -> None:
    cloud = with_(cloud, namespace="default", poll_seconds=0.05, max_poll_seconds=0.1)
    job = k8s.job_manifest(staged(1), cloud)
    job["spec"]["template"]["spec"]["containers"][0]["command"] = [
        "python", "-c", "import time; time.sleep(60)",
    ]  # fmt: skip
    k8s.submit(api, k8s.configmap_manifest(staged(1), cloud), job)
    cluster.delete("jobs", "default", NAME, {"propagationPolicy": "Background"})
    watch = k8s.JobWatch(api, "default", NAME, 1)
    (outcome,) = watch.outcomes(k8s.wait(watch, cloud))
    assert not outcome.succeeded and "was deleted" in outcome.reason


def test_job_owns_its_configmap(cloud: Any, cluster: Any, api: Any) -> None:
    """So the cluster deletes the ConfigMap with the Job (after its TTL too)."""
    cloud = with_(cloud, namespace="default")
    job = k8s.job_manifest(staged(1), cloud)
    job["spec"]["template"]["spec"]["containers"][0]["command"] = ["python", "-c", "pass"]
    k8s.submit(api, k8s.configmap_manifest(staged(1), cloud), job)
    (cm,) = cluster.items("configmaps")
    (created,) = cluster.items("jobs")
    (owner,) = cm["metadata"]["ownerReferences"]
    assert owner["uid"] == created["metadata"]["uid"] and owner["kind"] == "Job"
    cluster.delete("jobs", "default", NAME, {})
    assert cluster.items("configmaps") == []


def test_interrupt_deletes_the_job(
    cloud: Any, cluster: Any, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = with_(cloud, namespace="default", dry_run=False)

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        k8s.run(staged(2), cloud, sleep=interrupt)
    assert cluster.items("jobs") == [] and cluster.items("configmaps") == []
    assert ("DELETE", f"/apis/batch/v1/namespaces/default/jobs/{NAME}") in cluster.requests


def test_timeout_leaves_the_job_running(cloud: Any, cluster: Any, api: Any) -> None:
    cloud = with_(
        cloud, namespace="default", poll_seconds=0.05, max_poll_seconds=0.1, timeout_minutes=0.005
    )
    job = k8s.job_manifest(staged(1), cloud)
    job["spec"]["template"]["spec"]["containers"][0]["command"] = [
        "python", "-c", "import time; time.sleep(60)",
    ]  # fmt: skip
    k8s.submit(api, k8s.configmap_manifest(staged(1), cloud), job)
    watch = k8s.JobWatch(api, "default", NAME, 1)
    (outcome,) = watch.outcomes(k8s.wait(watch, cloud))
    assert not outcome.succeeded
    assert "cloud.timeout_minutes ran out; the Job is left running" in outcome.reason
    assert f"lret-runner cloud k8s delete {NAME} -n default" in outcome.reason
    assert len(cluster.items("jobs")) == 1
