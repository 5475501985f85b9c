"""``cloud=aws_batch`` against a local AWS: boto3 talking to moto's server on loopback
(S3, Batch, IAM, CloudWatch Logs), whose Batch jobs really run (``tests/stubs/aws.py``):
moto's job thread takes the command and environment from the registered job definition
and runs them as a local process (``python`` being this interpreter, the Batch agent's
``AWS_BATCH_JOB_ARRAY_INDEX`` set from the child's id), so a job moto reports SUCCEEDED is
a run that ended with exit code 0, and its state reaches the launcher through moto's API.
The runs report to a real MLflow server whose artifact store is moto's S3.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto")

from conftest import RunCli  # noqa: E402
from stubs.aws import REGION, Moto, provision, start_moto  # noqa: E402

from e2e.conftest import (  # noqa: E402
    TrackingServer,
    free_port,
    start_tracking_server,
    stop_process_group,
)

BUCKET = "lret-jobs"
ARTIFACTS = "lret-mlflow"
QUEUE = "lret-queue"
TINY = ["circuit.depth=3", "run.quiet=true"]
SECRET = re.compile(r"SECRET|TOKEN|PASSWORD|ACCESS_KEY|SESSION", re.IGNORECASE)


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    proc, moto = start_moto(tmp_path_factory.mktemp("moto"), free_port())
    try:
        provision(moto, BUCKET, QUEUE)
        moto.client("s3").create_bucket(
            Bucket=ARTIFACTS, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield moto
    finally:
        stop_process_group(proc)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, aws: Moto) -> Iterator[TrackingServer]:
    """An MLflow server whose artifacts go to moto's S3 (it proxies the jobs' uploads)."""
    env = {**aws.env, "MLFLOW_S3_ENDPOINT_URL": aws.endpoint}
    proc, server = start_tracking_server(
        tmp_path_factory.mktemp("tracking-s3"), artifacts=f"s3://{ARTIFACTS}/mlflow", env=env
    )
    try:
        yield server
    finally:
        stop_process_group(proc)


def sweep_args(aws: Moto, server: TrackingServer, *overrides: str) -> list[str]:
    return [
        "-m",
        "cloud=aws_batch",
        f"cloud.job_queue={QUEUE}",
        f"cloud.bucket={BUCKET}",
        f"cloud.endpoint_url={aws.endpoint}",
        f"cloud.region={REGION}",
        "cloud.poll_seconds=0.5",
        "cloud.max_poll_seconds=2",
        "+cloud.tags.team=quantum",
        "tracking=server",
        f"tracking.uri={server.uri}",
        *overrides,
        *TINY,
    ]


@pytest.fixture(scope="module")
def sweeps(
    tmp_path_factory: pytest.TempPathFactory, start_cli: Any, aws: Moto, server: TrackingServer
) -> dict[str, Launched]:
    """Two sweeps launched at once (they take most of this module's time): two jobs that
    finish, and one job (a plain Batch job: arrays have two or more) that fails."""
    env = {**aws.env, "LRET_BATCH_RUN_ID": None}
    wanted = {"good": "circuit.n_qubits=3,4", "failing": "circuit.n_qubits=0"}
    procs = {
        # a session each: two sweeps creating one experiment at once collide (mlflow
        # refuses the second with RESOURCE_ALREADY_EXISTS)
        key: start_cli(
            sweep_args(aws, server, axis, f"session.name=aws-{key}"),
            tmp_path_factory.mktemp(key),
            env=env,
        )
        for key, axis in wanted.items()
    }
    done = {}
    for key, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=240)
        done[key] = Launched(proc.returncode, stdout, stderr, *job_name(stderr))
    return done


@dataclass
class Launched:
    returncode: int
    stdout: str
    stderr: str
    name: str  # the Batch job's name: lret-<the batch run's id[:8]>-0
    job_id: str

    def runs(self, server: TrackingServer) -> tuple[Any, list[Any]]:
        """The batch run in the tracking server and its children, by job number."""
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=server.uri)
        ids = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(ids, max_results=1000)
        short = self.name.split("-")[1]
        [parent] = [r for r in runs if r.info.run_id.startswith(short)]
        kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        return parent, sorted(kids, key=lambda r: int(r.data.tags["job_num"]))


def job_name(stderr: str) -> tuple[str, str]:
    """(the sweep's job name, the Batch job's id) from the launcher's stderr."""
    match = re.search(r"aws_batch: (lret-[\w-]+): job ([\w-]+) in queue", stderr)
    assert match, stderr[-3000:]
    return match.group(1), match.group(2)


def test_a_sweep_runs_each_index_as_its_definition_says(
    sweeps: dict[str, Launched], aws: Moto, server: TrackingServer
) -> None:
    out = sweeps["good"]
    assert out.returncode == 0, out.stderr[-4000:]
    name, job_id = out.name, out.job_id
    assert f"aws_batch: {name}[0] SUCCEEDED" in out.stderr
    assert f"aws_batch: {name}[1] SUCCEEDED" in out.stderr

    # the batch and its two jobs, as the jobs reported them to the tracking server
    parent, kids = out.runs(server)
    assert parent.info.status == "FINISHED"
    assert [k.info.status for k in kids] == ["FINISHED", "FINISHED"]
    assert sorted(float(k.data.params["circuit.n_qubits"]) for k in kids) == [3.0, 4.0]

    # what was registered and submitted
    batch = aws.client("batch")
    [definition] = batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
    props = definition["containerProperties"]
    source = f"s3://{BUCKET}/lret-runner/{name}"
    assert props["command"] == ["python", "-m", "lret_runner.cloud.entry", source]
    assert props["image"] == "lret-runner:latest"
    env = {e["name"]: e["value"] for e in props["environment"]}
    assert env == {"AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": aws.endpoint}
    resources = {r["type"]: r["value"] for r in props["resourceRequirements"]}
    assert resources == {"VCPU": "1", "MEMORY": "2048"}
    assert definition["retryStrategy"]["attempts"] == 1
    assert definition["timeout"] == {"attemptDurationSeconds": 3600}
    assert definition["status"] == "INACTIVE"  # deregistered once the job was over
    [job] = batch.describe_jobs(jobs=[job_id])["jobs"]
    assert job["jobName"] == name and job["arrayProperties"]["size"] == 2
    assert job["jobDefinition"] == definition["jobDefinitionArn"]
    assert job["tags"] == {"app": "lret", "lret-batch": name, "team": "quantum"}

    # what ran: that command, once per index, with nothing secret in its environment
    ran = [c for c in aws.containers() if c["environment"]["AWS_BATCH_JOB_ID"].startswith(job_id)]
    assert sorted(c["environment"]["AWS_BATCH_JOB_ID"] for c in ran) == [
        f"{job_id}:0",
        f"{job_id}:1",
    ]
    assert all(c["command"] == props["command"] for c in ran)
    assert not [k for c in ran for k in c["environment"] if SECRET.search(k)]

    # the staged files are gone; the results came back through the server's S3 store
    s3 = aws.client("s3")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=f"lret-runner/{name}/")["KeyCount"] == 0
    stored = [o["Key"] for o in s3.list_objects_v2(Bucket=ARTIFACTS)["Contents"]]
    for kid in kids:
        mine = [k for k in stored if f"/{kid.info.run_id}/artifacts/" in k]
        assert any(k.endswith("/result.json") for k in mine), mine


def test_a_failing_job_reaches_the_batch_as_a_failed_job(
    sweeps: dict[str, Launched], aws: Moto, server: TrackingServer
) -> None:
    out = sweeps["failing"]
    assert out.returncode == 1, out.stderr[-4000:]
    assert f"aws_batch: {out.name}[0] FAILED" in out.stderr
    [job] = aws.client("batch").describe_jobs(jobs=[out.job_id])["jobs"]
    assert job["status"] == "FAILED" and "arrayProperties" not in job
    parent, [kid] = out.runs(server)
    assert parent.info.status == "FAILED" and kid.info.status == "FAILED"
    assert "circuit.n_qubits=0 is invalid" in kid.data.tags["error"]
    assert "circuit.n_qubits=0 is invalid" in out.stdout  # the batch's summary


def test_a_refused_submission_removes_what_it_made(
    aws: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files were uploaded and the definition registered, then submit_job refused
    (the queue vanished after the check): both are removed."""
    from omegaconf import OmegaConf

    from lret_runner.cloud import aws_batch
    from lret_runner.cloud.jobs import Staged
    from lret_runner.config.schemas import AwsBatchCloudConfig
    from lret_runner.errors import UserError

    for key, value in aws.env.items():
        monkeypatch.setenv(key, value)
    cloud = OmegaConf.structured(
        AwsBatchCloudConfig(
            job_queue="gone", bucket=BUCKET, endpoint_url=aws.endpoint, region=REGION
        )
    )
    staged = Staged("lret-refused-0", None, 0, [["a=1"], ["a=2"]])
    staged.files = {"job-0.yaml": b"a: 1\n", "job-1.yaml": b"a: 2\n", "input-0-x.qasm": b"x"}
    with pytest.raises(UserError, match="cloud.job_queue=gone failed.*were removed"):
        aws_batch.run(staged, cloud)
    listed = aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="lret-runner/lret-refused-0")
    assert listed["KeyCount"] == 0
    batch = aws.client("batch")
    found = batch.describe_job_definitions(jobDefinitionName="lret-refused-0")["jobDefinitions"]
    assert [d["status"] for d in found] == ["INACTIVE"]


def test_dry_run_prints_the_requests_and_needs_no_credentials(
    run_cli: RunCli, tmp_path: Path
) -> None:
    import yaml

    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: a contact would fail
    no_aws = {k: None for k in os.environ if k.startswith("AWS_")}
    env = {
        **no_aws,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    args = [
        "-m",
        "cloud=aws_batch",
        f"cloud.job_queue={QUEUE}",
        f"cloud.bucket={BUCKET}",
        f"cloud.region={REGION}",
        "cloud.dry_run=true",
        "cloud.vcpus=2",
        f"tracking.uri={closed}",
        "circuit.n_qubits=3,4",
        *TINY,
    ]
    out = run_cli(args, tmp_path, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-4000:]
    printed = yaml.safe_load(out.stdout[out.stdout.index("# cloud.dry_run") :])
    name = printed["submit_job"]["jobName"]
    assert printed["submit_job"]["arrayProperties"] == {"size": 2}
    assert printed["submit_job"]["jobQueue"] == QUEUE
    container = printed["register_job_definition"]["containerProperties"]
    assert container["command"][-1] == f"s3://{BUCKET}/lret-runner/{name}"
    assert {"type": "VCPU", "value": "2"} in container["resourceRequirements"]
    assert printed["upload"] == [
        f"s3://{BUCKET}/lret-runner/{name}/job-0.yaml",
        f"s3://{BUCKET}/lret-runner/{name}/job-1.yaml",
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bucket": "no-such-bucket"}, "cloud.bucket='no-such-bucket' does not exist"),
        ({"job_queue": "lret-qeueu"}, "cloud.job_queue='lret-qeueu' does not exist.*lret-queue"),
        ({"job_definition": "nothing"}, "cloud.job_definition='nothing' has no active revision"),
    ],
)
def test_check_names_what_does_not_exist(
    aws: Moto, monkeypatch: pytest.MonkeyPatch, settings: dict, message: str
) -> None:
    from omegaconf import OmegaConf

    from lret_runner.cloud import aws_batch
    from lret_runner.config.schemas import AwsBatchCloudConfig
    from lret_runner.errors import ConfigError

    for key, value in aws.env.items():
        monkeypatch.setenv(key, value)
    base = {"job_queue": QUEUE, "bucket": BUCKET, "endpoint_url": aws.endpoint, "region": REGION}
    cloud = OmegaConf.structured(AwsBatchCloudConfig(**{**base, **settings}))
    with pytest.raises(ConfigError, match=message):
        aws_batch.check(cloud)
    aws_batch.check(OmegaConf.structured(AwsBatchCloudConfig(**base)))  # the same, right
