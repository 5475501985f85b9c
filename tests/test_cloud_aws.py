"""``cloud=aws_batch`` without AWS: the requests it builds from the settings, ``check``'s
errors, the wait's back-off (a fake clock), the outcomes, the cleanup and ``read``, with
stand-in clients (the e2e tests run the same against moto's server)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("boto3")

from botocore.exceptions import ClientError  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from lret_runner.cloud import aws_batch  # noqa: E402
from lret_runner.cloud.jobs import Staged  # noqa: E402
from lret_runner.config.schemas import AwsBatchCloudConfig  # noqa: E402
from lret_runner.errors import ConfigError, UserError  # noqa: E402

BASE = {"job_queue": "q", "bucket": "my-bucket", "region": "eu-west-1"}


def cloud(**settings: Any) -> Any:
    return OmegaConf.structured(AwsBatchCloudConfig(**{**BASE, **settings}))


def staged(count: int = 2) -> Staged:
    out = Staged("lret-1a2b3c4d-0", "1a2b3c4d" * 4, 0, [[f"a={i}"] for i in range(count)])
    out.files = {f"job-{i}.yaml": f"a: {i}\n".encode() for i in range(count)}
    out.files["input-0123456789ab-c.qasm"] = b"OPENQASM 2.0;"
    return out


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No credentials, no region, no instance role: boto3's chain finds nothing."""
    import os

    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# ---------------------------------------------------------------- requests


def test_every_setting_lands_in_the_definition_and_the_submission() -> None:
    settings = cloud(
        image="123.dkr.ecr.eu-west-1.amazonaws.com/lret:1",
        prefix="/sweeps/",
        vcpus=4,
        memory_mib=8192,
        retry_attempts=3,
        timeout_seconds=600,
        tags={"team": "q"},
        endpoint_url="http://127.0.0.1:5000",
    )
    definition, submit = aws_batch.requests(staged(), settings, "eu-west-1")
    assert definition == {
        "jobDefinitionName": "lret-1a2b3c4d-0",
        "type": "container",
        "containerProperties": {
            "image": "123.dkr.ecr.eu-west-1.amazonaws.com/lret:1",
            "command": [
                *("python", "-m", "lret_runner.cloud.entry"),
                "s3://my-bucket/sweeps/lret-1a2b3c4d-0",
            ],
            "environment": [
                {"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"},
                {"name": "AWS_ENDPOINT_URL", "value": "http://127.0.0.1:5000"},
            ],
            "resourceRequirements": [
                {"type": "VCPU", "value": "4"},
                {"type": "MEMORY", "value": "8192"},
            ],
        },
        "retryStrategy": {"attempts": 3},
        "timeout": {"attemptDurationSeconds": 600},
        "tags": {"team": "q", "app": "lret", "lret-batch": "lret-1a2b3c4d-0"},
        "propagateTags": True,
    }
    assert submit == {
        "jobName": "lret-1a2b3c4d-0",
        "jobQueue": "q",
        "jobDefinition": "lret-1a2b3c4d-0",
        "tags": {"team": "q", "app": "lret", "lret-batch": "lret-1a2b3c4d-0"},
        "propagateTags": True,
        "arrayProperties": {"size": 2},
    }


def test_a_named_definition_is_used_with_the_runner_s_command() -> None:
    definition, submit = aws_batch.requests(
        staged(), cloud(job_definition="lret:7", prefix=""), None
    )
    assert definition is None
    assert submit["jobDefinition"] == "lret:7"
    assert submit["containerOverrides"] == {
        "command": ["python", "-m", "lret_runner.cloud.entry", "s3://my-bucket/lret-1a2b3c4d-0"],
        "environment": [],  # no region known, no endpoint: nothing to say
    }


def test_a_sweep_of_one_is_a_plain_job() -> None:
    _, submit = aws_batch.requests(staged(1), cloud(), "eu-west-1")
    assert "arrayProperties" not in submit


def test_dry_run_prints_the_requests_contacts_nothing_and_shows_no_secret(
    no_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-print-me")
    monkeypatch.setattr(aws_batch, "_client", lambda *a: pytest.fail("a client was made"))
    settings = cloud(dry_run=True)
    aws_batch.check(settings)  # no credentials needed
    assert aws_batch.run(staged(), settings) is None
    out = capsys.readouterr().out
    assert "do-not-print-me" not in out
    printed = yaml.safe_load(out)
    assert printed["submit_job"]["jobQueue"] == "q"
    assert printed["register_job_definition"]["containerProperties"]["image"] == (
        "lret-runner:latest"
    )
    assert printed["upload"][-1] == (
        "s3://my-bucket/lret-runner/lret-1a2b3c4d-0/input-0123456789ab-c.qasm"
    )


# ---------------------------------------------------------------- check


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"job_queue": None}, "cloud.job_queue is required"),
        ({"bucket": None}, "cloud.bucket is required"),
        ({"bucket": "My_Bucket"}, "cloud.bucket='My_Bucket' is invalid: an S3 bucket name"),
        ({"bucket": "ab"}, "cloud.bucket='ab' is invalid"),
        ({"bucket": "a..b"}, "cloud.bucket='a..b' is invalid"),
        ({"bucket": "10.0.0.1"}, "cloud.bucket='10.0.0.1' is invalid"),
        ({"bucket": "-bucket"}, "cloud.bucket='-bucket' is invalid"),
        ({"endpoint_url": "localhost:4566"}, "cloud.endpoint_url='localhost:4566' is invalid"),
        ({"tags": {"app": "x"}}, "cloud.tags.app is invalid"),
        ({"tags": {"aws:owner": "x"}}, "cloud.tags.aws:owner is invalid"),
        ({"image": ""}, "cloud.image is required"),
    ],
)
def test_check_names_the_wrong_setting(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        aws_batch.check(cloud(dry_run=True, **settings))


def test_check_needs_a_region(no_aws: None) -> None:
    with pytest.raises(ConfigError, match="cloud.region is required.*AWS_DEFAULT_REGION"):
        aws_batch.check(cloud(region=None, dry_run=True))


def test_check_takes_the_region_from_the_chain(no_aws: None, monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    aws_batch.check(cloud(region=None, dry_run=True))


def test_check_names_the_chain_when_there_are_no_credentials(no_aws: None) -> None:
    with pytest.raises(ConfigError, match="found no AWS credentials") as err:
        aws_batch.check(cloud())
    for source in ("AWS_ACCESS_KEY_ID", "~/.aws/credentials", "AWS_PROFILE", "instance role"):
        assert source in str(err.value)


# ---------------------------------------------------------------- the wait


class FakeBatch:
    """Batch's DescribeJobs from a script: one dict (job id -> status) per call."""

    def __init__(self, script: list[dict[str, str]], reasons: dict[str, str] | None = None):
        self.script = script
        self.reasons = reasons or {}
        self.calls: list[list[str]] = []
        self.terminated: list[str] = []

    def describe_jobs(self, jobs: list[str]) -> dict[str, Any]:
        self.calls.append(jobs)
        states = self.script[min(len(self.calls), len(self.script)) - 1]
        out = []
        for job_id in jobs:
            if job_id in states:
                job = {"jobId": job_id, "status": states[job_id]}
                if job_id in self.reasons and job["status"] == "FAILED":
                    job["statusReason"] = self.reasons[job_id]
                out.append(job)
        return {"jobs": out[::-1]}  # in no particular order

    def terminate_job(self, jobId: str, reason: str) -> None:  # noqa: N803 - boto3's name
        self.terminated.append(jobId)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_the_wait_doubles_its_pause_up_to_the_maximum_and_prints_changes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    running = {"j:0": "RUNNING", "j:1": "RUNNING"}
    script = [{"j:0": "RUNNABLE"}, *[running] * 5, {"j:0": "SUCCEEDED", "j:1": "FAILED"}]
    batch, clock = FakeBatch(script, {"j:1": "Essential container exited"}), Clock()
    settings = cloud(poll_seconds=1.0, max_poll_seconds=5.0)
    jobs = aws_batch.wait(batch, staged(), "j", settings, clock.sleep, clock)
    assert [j["status"] for j in jobs] == ["SUCCEEDED", "FAILED"]
    assert clock.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert capsys.readouterr().err.splitlines() == [
        "aws_batch: lret-1a2b3c4d-0[0] RUNNABLE",
        "aws_batch: lret-1a2b3c4d-0[1] SUBMITTED",  # not shown by Batch yet
        "aws_batch: lret-1a2b3c4d-0[0] RUNNING",
        "aws_batch: lret-1a2b3c4d-0[1] RUNNING",
        "aws_batch: lret-1a2b3c4d-0[0] SUCCEEDED",
        "aws_batch: lret-1a2b3c4d-0[1] FAILED: Essential container exited",
    ]


def test_the_wait_gives_up_after_timeout_minutes(capsys: pytest.CaptureFixture[str]) -> None:
    batch, clock = FakeBatch([{"j": "RUNNING"}]), Clock()
    settings = cloud(poll_seconds=20.0, max_poll_seconds=40.0, timeout_minutes=1.5)
    jobs = aws_batch.wait(batch, staged(1), "j", settings, clock.sleep, clock)
    assert jobs == [{"jobId": "j", "status": "RUNNING"}]
    assert clock.sleeps == [20.0, 40.0, 30.0]  # the last pause ends at the deadline
    assert "timeout_minutes=1.5 ran out; job j is left running" in capsys.readouterr().err
    outcome = aws_batch._outcome(0, jobs[0], logs=None)
    assert not outcome.succeeded and "still RUNNING" in outcome.reason


def test_the_wait_asks_for_at_most_100_jobs_at_a_time() -> None:
    done = {f"j:{i}": "SUCCEEDED" for i in range(150)}
    batch, clock = FakeBatch([done]), Clock()
    aws_batch.wait(batch, staged(150), "j", cloud(), clock.sleep, clock)
    assert [len(c) for c in batch.calls] == [100, 50]


# ---------------------------------------------------------------- outcomes


class FakeLogs:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse

    def get_log_events(self, **kwargs: Any) -> dict[str, Any]:
        if self.refuse:
            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetLogEvents")
        assert kwargs["logGroupName"] == "/aws/batch/job" and not kwargs["startFromHead"]
        return {"events": [{"message": "Traceback"}, {"message": "ValueError: boom"}]}


def test_a_failed_index_has_the_reason_the_exit_code_and_the_log() -> None:
    job = {
        "jobId": "j:1",
        "status": "FAILED",
        "statusReason": "Essential container in task exited",
        "container": {"exitCode": 1, "logStreamName": "lret/default/abc"},
    }
    outcome = aws_batch._outcome(1, job, FakeLogs())
    assert outcome.index == 1 and not outcome.succeeded
    assert outcome.reason == "Essential container in task exited (exit code 1)"
    assert outcome.log == "Traceback\nValueError: boom"
    assert aws_batch._outcome(1, job, FakeLogs(refuse=True)).log == ""
    bare = aws_batch._outcome(0, {"jobId": "j:0", "status": "FAILED"}, FakeLogs())
    assert bare.reason == "AWS Batch job j:0 FAILED" and bare.log == ""
    assert aws_batch._outcome(0, {"jobId": "j:0", "status": "SUCCEEDED"}, None).succeeded


# ---------------------------------------------------------------- run and cleanup


class FakeAws:
    """S3, Batch and Logs in memory, as far as :func:`aws_batch.run` uses them."""

    def __init__(self, refuse_submit: bool = False) -> None:
        self.objects: dict[str, bytes] = {}
        self.definitions: dict[str, str] = {}  # arn -> ACTIVE / INACTIVE
        self.refuse_submit = refuse_submit
        self.batch = FakeBatch([{"job-1:0": "SUCCEEDED", "job-1:1": "SUCCEEDED"}])

    def client(self, cloud: Any, service: str) -> Any:
        return {"s3": self, "batch": self, "logs": FakeLogs()}[service]

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:  # noqa: N803
        self.objects[f"{Bucket}/{Key}"] = Body

    def get_paginator(self, name: str) -> Any:
        fake = self

        class Pages:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict]:  # noqa: N803
                keys = [k.split("/", 1)[1] for k in fake.objects if k.startswith(Bucket)]
                return [{"Contents": [{"Key": k} for k in keys if k.startswith(Prefix)]}]

        return Pages()

    def delete_objects(self, Bucket: str, Delete: dict) -> None:  # noqa: N803
        for obj in Delete["Objects"]:
            del self.objects[f"{Bucket}/{obj['Key']}"]

    def register_job_definition(self, **request: Any) -> dict[str, str]:
        arn = f"arn:def/{request['jobDefinitionName']}:1"
        self.definitions[arn] = "ACTIVE"
        return {"jobDefinitionArn": arn}

    def deregister_job_definition(self, jobDefinition: str) -> None:  # noqa: N803
        self.definitions[jobDefinition] = "INACTIVE"

    def submit_job(self, **request: Any) -> dict[str, str]:
        if self.refuse_submit:
            raise ClientError(
                {"Error": {"Code": "ClientException", "Message": "Job queue q does not exist"}},
                "SubmitJob",
            )
        assert request["jobDefinition"] in self.definitions
        return {"jobId": "job-1"}

    def describe_jobs(self, jobs: list[str]) -> dict[str, Any]:
        return self.batch.describe_jobs(jobs)

    def terminate_job(self, jobId: str, reason: str) -> None:  # noqa: N803
        self.batch.terminate_job(jobId, reason)


def test_a_run_uploads_submits_waits_and_removes_what_it_made(monkeypatch: Any) -> None:
    fake = FakeAws()
    monkeypatch.setattr(aws_batch, "_client", fake.client)
    outcomes = aws_batch.run(staged(), cloud(poll_seconds=0.01))
    assert outcomes is not None and [o.succeeded for o in outcomes] == [True, True]
    assert fake.objects == {}  # the staged files were there while the job ran
    assert fake.definitions == {"arn:def/lret-1a2b3c4d-0:1": "INACTIVE"}


def test_a_refused_submission_removes_the_files_and_the_definition(monkeypatch: Any) -> None:
    fake = FakeAws(refuse_submit=True)
    uploads: list[str] = []
    put = fake.put_object
    monkeypatch.setattr(fake, "put_object", lambda **kw: (uploads.append(kw["Key"]), put(**kw)))
    monkeypatch.setattr(aws_batch, "_client", fake.client)
    with pytest.raises(UserError, match="Job queue q does not exist.*were removed"):
        aws_batch.run(staged(), cloud())
    assert len(uploads) == 3 and fake.objects == {}
    assert fake.definitions == {"arn:def/lret-1a2b3c4d-0:1": "INACTIVE"}


def test_an_interrupted_wait_terminates_the_job(monkeypatch: Any) -> None:
    fake = FakeAws()
    monkeypatch.setattr(aws_batch, "_client", fake.client)

    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(aws_batch, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        aws_batch.run(staged(), cloud())
    assert fake.batch.terminated == ["job-1"]
    assert len(fake.objects) == 3  # left for the jobs that may still be starting


# ---------------------------------------------------------------- read


class FakeS3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        import io

        if f"{Bucket}/{Key}" not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[f"{Bucket}/{Key}"])}


def test_read_fetches_a_staged_file(monkeypatch: Any) -> None:
    import boto3

    s3 = FakeS3({"b/p/q/lret-x-0/job-1.yaml": b"a: 1\n", "b/job-0.yaml": b"a: 0\n"})
    made: list[Any] = []
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(boto3, "client", lambda name, **kw: made.append(kw) or s3)
    assert aws_batch.read("s3://b/p/q/lret-x-0", "job-1.yaml") == b"a: 1\n"
    assert aws_batch.read("s3://b", "job-0.yaml") == b"a: 0\n"
    assert made[0] == {"endpoint_url": "http://127.0.0.1:9"}
    with pytest.raises(SystemExit, match="cannot read s3://b/p/job-2.yaml.*NoSuchKey"):
        aws_batch.read("s3://b/p/", "job-2.yaml")
