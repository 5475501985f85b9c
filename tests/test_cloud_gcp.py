"""``cloud=gcp_batch`` (lret_runner/cloud/gcp_batch.py) without a sweep: the Batch job
built from the settings, ``check``'s errors, the polling back-off (no real sleeping), the
outcomes, and the real clients against the local stubs (tests/stubs: a stub of the Batch
REST API, the GCS emulator)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import batch_v1
from omegaconf import OmegaConf
from stubs.gcp_batch_api import BatchStub
from stubs.gcs import EMULATOR_ENV, Gcs, gcs_emulator

from lret_runner.cloud import gcp_batch
from lret_runner.cloud.jobs import Outcome, Staged
from lret_runner.config.schemas import GcpBatchCloudConfig
from lret_runner.errors import ConfigError, UserError

BUCKET = "lret-test"
JobState = batch_v1.JobStatus.State
TaskState = batch_v1.TaskStatus.State


def settings(**changes: Any) -> Any:
    base = {"project": "p", "region": "us-central1", "bucket": BUCKET}
    return OmegaConf.structured(GcpBatchCloudConfig(**{**base, **changes}))


def staged(count: int = 2, first: int = 0) -> Staged:
    out = Staged("lret-1a2b3c4d-0", "0123456789abcdef", first, [[f"x={i}"] for i in range(count)])
    out.files = {f"job-{i}.yaml": f"job {i}".encode() for i in range(count)}
    out.files["input-0123456789ab-c.qasm"] = b"OPENQASM 2.0;"
    return out


@pytest.fixture(scope="module")
def gcs() -> Iterator[Gcs]:
    with gcs_emulator([BUCKET]) as gcs:
        yield gcs


@pytest.fixture
def emulated(gcs: Gcs, monkeypatch: pytest.MonkeyPatch) -> Gcs:
    """The emulator, named by STORAGE_EMULATOR_HOST, emptied."""
    monkeypatch.setenv(EMULATOR_ENV, gcs.url)
    gcs.wipe([BUCKET])
    return gcs


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[BatchStub]:
    with BatchStub(tmp_path / "batch") as stub:
        yield stub


@pytest.fixture
def no_adc(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Application Default Credentials (whatever this machine has)."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def missing(*args: Any, **kwargs: Any) -> Any:
        raise DefaultCredentialsError("Your default credentials were not found. To set up...")

    monkeypatch.setattr(google.auth, "default", missing)
    monkeypatch.delenv(EMULATOR_ENV, raising=False)


# ---------------------------------------------------------------- the job


def test_every_setting_lands_in_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EMULATOR_ENV, "http://127.0.0.1:9023")
    cloud = settings(
        image="europe-docker.pkg.dev/p/r/lret-runner:1", machine_type="n2-standard-4",
        spot=True, cpu_milli=1500, memory_mib=3072, parallelism=3, max_retry_count=2,
        max_run_duration_seconds=600, labels={"team": "qc", "cost_center": "42"},
        prefix="/runs/x/",
    )  # fmt: skip
    job = gcp_batch.build_job(staged(5), cloud)
    (group,) = job.task_groups
    assert (group.task_count, group.parallelism) == (5, 3)
    spec = group.task_spec
    (runnable,) = spec.runnables
    source = f"gs://{BUCKET}/runs/x/lret-1a2b3c4d-0"
    assert runnable.container.image_uri == "europe-docker.pkg.dev/p/r/lret-runner:1"
    assert runnable.container.entrypoint == "python"
    assert list(runnable.container.commands) == ["-m", "lret_runner.cloud.entry", source]
    assert dict(runnable.environment.variables) == {EMULATOR_ENV: "http://127.0.0.1:9023"}
    assert (spec.compute_resource.cpu_milli, spec.compute_resource.memory_mib) == (1500, 3072)
    assert spec.max_retry_count == 2
    assert spec.max_run_duration.total_seconds() == 600
    (instance,) = job.allocation_policy.instances
    assert instance.policy.machine_type == "n2-standard-4"
    assert instance.policy.provisioning_model == batch_v1.AllocationPolicy.ProvisioningModel.SPOT
    assert dict(job.labels) == {
        "team": "qc", "cost_center": "42", "app": "lret", "lret-batch": "lret-1a2b3c4d-0"
    }  # fmt: skip
    assert job.logs_policy.destination == batch_v1.LogsPolicy.Destination.CLOUD_LOGGING


def test_defaults_standard_vms_no_parallelism_and_no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EMULATOR_ENV, raising=False)
    job = gcp_batch.build_job(staged(), settings(prefix=""))
    group = job.task_groups[0]
    assert group.parallelism == 0  # unset: Batch decides
    assert not group.task_spec.runnables[0].environment.variables
    assert group.task_spec.runnables[0].container.commands[-1] == f"gs://{BUCKET}/lret-1a2b3c4d-0"
    model = job.allocation_policy.instances[0].policy.provisioning_model
    assert model == batch_v1.AllocationPolicy.ProvisioningModel.STANDARD
    assert group.task_spec.runnables[0].container.image_uri == "lret-runner:latest"


def test_the_launchers_labels_win_over_the_users() -> None:
    job = gcp_batch.build_job(staged(), settings(labels={"app": "mine"}))
    assert job.labels["app"] == "lret"


def test_dry_run_prints_the_job_and_contacts_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_adc: None
) -> None:
    def contact(*args: Any) -> Any:
        raise AssertionError("a dry run contacted a service")

    monkeypatch.setattr(gcp_batch, "storage_client", contact)
    monkeypatch.setattr(gcp_batch, "batch_client", contact)
    gcp_batch.check(settings(dry_run=True))
    assert gcp_batch.run(staged(), settings(dry_run=True, spot=True)) is None
    out = capsys.readouterr().out
    assert f"gs://{BUCKET}/lret-runner/lret-1a2b3c4d-0/job-1.yaml (5 bytes)" in out
    assert "create job lret-1a2b3c4d-0 in projects/p/locations/us-central1" in out
    job = json.loads(out[out.index("{") :])
    assert job["taskGroups"][0]["taskCount"] == "2"
    assert job["allocationPolicy"]["instances"][0]["policy"]["provisioningModel"] == "SPOT"
    assert job["logsPolicy"]["destination"] == "CLOUD_LOGGING"


# ---------------------------------------------------------------- check


@pytest.mark.parametrize("key", ["project", "region", "bucket"])
def test_check_requires_project_region_bucket(key: str) -> None:
    with pytest.raises(ConfigError, match=rf"cloud\.{key} is required with cloud=gcp_batch"):
        gcp_batch.check(settings(**{key: None}, dry_run=True))


@pytest.mark.parametrize(
    ("region", "hint"),
    [("us-central1-a", "us-central1-a is a zone; its region is us-central1"),
     ("US-CENTRAL1", "must be a Google Cloud region"), ("uscentral", "us-central1 or")],
)  # fmt: skip
def test_check_region_syntax(region: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=f"cloud.region='{region}' is invalid") as err:
        gcp_batch.check(settings(region=region, dry_run=True))
    assert hint in str(err.value)


@pytest.mark.parametrize(
    "bucket",
    ["b", "Upper", "gs://lret-test", "-lead", "trail-", "192.168.1.1", "goog-x", "a..b",
     "x" * 64, "my-google-bucket", "with/slash"],
)  # fmt: skip
def test_check_bucket_syntax(bucket: str) -> None:
    with pytest.raises(ConfigError, match=r"cloud\.bucket=.* is invalid: a GCS bucket name"):
        gcp_batch.check(settings(bucket=bucket, dry_run=True))


@pytest.mark.parametrize("bucket", ["lret-test", "a_b", "abc", "runs.example.com", "x" * 63])
def test_check_accepts_valid_bucket_names(bucket: str) -> None:
    gcp_batch.check(settings(bucket=bucket, dry_run=True))


@pytest.mark.parametrize(
    ("labels", "match"),
    [({"Team": "x"}, "key 'Team' is invalid"), ({"1st": "x"}, "key '1st' is invalid"),
     ({"k" * 64: "x"}, "is invalid: 1-63"), ({"team": "QC"}, r"cloud\.labels\.team='QC'"),
     ({"team": "a b"}, "at most 63 lowercase"), ({"team": "v" * 64}, "at most 63"),
     ({f"k{i}": "v" for i in range(63)}, "has 63 labels: at most 62")],
)  # fmt: skip
def test_check_label_rules(labels: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        gcp_batch.check(settings(labels=labels, dry_run=True))


def test_check_accepts_gcp_labels() -> None:
    gcp_batch.check(
        settings(labels={"team": "qc", "cost_center": "", "env-1": "a_b-9"}, dry_run=True)
    )


def test_check_endpoint_syntax() -> None:
    with pytest.raises(ConfigError, match=r"cloud\.endpoint='127\.0\.0\.1:1' is invalid"):
        gcp_batch.check(settings(endpoint="127.0.0.1:1", dry_run=True))


def test_check_without_credentials_says_how_to_get_them(no_adc: None) -> None:
    with pytest.raises(ConfigError) as err:
        gcp_batch.check(settings())
    message = str(err.value)
    assert "gcloud auth application-default login" in message
    assert "GOOGLE_APPLICATION_CREDENTIALS" in message


def test_check_with_a_stub_endpoint_still_needs_credentials_for_real_gcs(no_adc: None) -> None:
    with pytest.raises(ConfigError, match="Application Default Credentials"):
        gcp_batch.check(settings(endpoint="http://127.0.0.1:1"))


def test_check_with_stub_and_emulator_needs_no_credentials(no_adc: None, emulated: Gcs) -> None:
    gcp_batch.check(settings(endpoint="http://127.0.0.1:1"))


def test_check_names_a_missing_bucket(no_adc: None, emulated: Gcs) -> None:
    with pytest.raises(ConfigError, match=r"cloud\.bucket=nope-bucket does not exist") as err:
        gcp_batch.check(settings(bucket="nope-bucket", endpoint="http://127.0.0.1:1"))
    assert emulated.url in str(err.value)


def test_check_names_an_unreachable_emulator(no_adc: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EMULATOR_ENV, "http://127.0.0.1:9")
    monkeypatch.setattr(gcp_batch, "CHECK_SECONDS", 0.5)
    with pytest.raises(ConfigError, match=r"cloud\.bucket=lret-test: GCS \(the emulator at"):
        gcp_batch.check(settings(endpoint="http://127.0.0.1:1"))


def test_shared_check_reaches_the_engine(compose: Any, tmp_path: Path) -> None:
    from lret_runner import cloud

    config = compose(["cloud=gcp_batch", "cloud.project=p", "cloud.region=us-central1"])
    with pytest.raises(ConfigError, match=r"cloud\.bucket is required"):
        cloud.check(config, tmp_path)
    config = compose(["cloud=gcp_batch", "cloud.max_retry_count=11"])
    with pytest.raises(ConfigError, match=r"cloud\.max_retry_count=11"):
        cloud.check(config, tmp_path)


# ---------------------------------------------------------------- waiting


def job_at(state: Any, events: tuple[str, ...] = ()) -> Any:
    name = "projects/p/locations/r/jobs/lret-1a2b3c4d-0"
    return batch_v1.Job(
        name=name,
        uid="lret-1a2b3c4d-0-abc",
        task_groups=[batch_v1.TaskGroup(name=f"{name}/taskGroups/group0")],
        status=batch_v1.JobStatus(
            state=state, status_events=[batch_v1.StatusEvent(description=e) for e in events]
        ),
    )


def task_at(index: int, state: Any, events: tuple[str, ...] = ()) -> Any:
    return batch_v1.Task(
        name=f"projects/p/locations/r/jobs/lret-1a2b3c4d-0/taskGroups/group0/tasks/{index}",
        status=batch_v1.TaskStatus(
            state=state, status_events=[batch_v1.StatusEvent(description=e) for e in events]
        ),
    )


class FakeBatch:
    """get_job answers each of ``answers`` in turn (an exception is raised); list_tasks the
    tasks given with the job."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers, self.tasks = list(answers), []

    def get_job(self, name: str) -> Any:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        job, self.tasks = answer
        return job

    def list_tasks(self, parent: str) -> list[Any]:
        return self.tasks


class Clock:
    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def running(n: int) -> list[Any]:
    return [(job_at(JobState.RUNNING), [task_at(0, TaskState.RUNNING)])] * n


def test_polling_backs_off_doubling_up_to_the_maximum() -> None:
    done = (job_at(JobState.SUCCEEDED), [task_at(0, TaskState.SUCCEEDED)])
    client, clock = FakeBatch([*running(6), done]), Clock()
    cloud = settings(poll_seconds=1, max_poll_seconds=5)
    ended = gcp_batch.wait(
        client, "j", staged(1), cloud, sleep=clock.sleep, clock=lambda: clock.now
    )
    assert ended is not None and ended.state == "SUCCEEDED"
    assert clock.sleeps == [1, 2, 4, 5, 5, 5]


def test_timeout_gives_up_and_leaves_the_job_running() -> None:
    client, clock = FakeBatch(running(1)), Clock()
    cloud = settings(poll_seconds=20, max_poll_seconds=60, timeout_minutes=1.5)
    ended = gcp_batch.wait(
        client, "j", staged(1), cloud, sleep=clock.sleep, clock=lambda: clock.now
    )
    assert ended is None
    assert clock.sleeps == [20, 40, 30]  # the last wait ends at the deadline
    (outcome,) = gcp_batch.outcomes(staged(1), cloud, ended)
    assert not outcome.succeeded
    assert "cloud.timeout_minutes=1.5" in outcome.reason
    assert "gcloud batch jobs describe lret-1a2b3c4d-0 --location=us-central1" in outcome.reason


def test_transient_errors_are_waited_out(capsys: pytest.CaptureFixture[str]) -> None:
    done = (job_at(JobState.SUCCEEDED), [task_at(0, TaskState.SUCCEEDED)])
    client, clock = FakeBatch([exceptions.ServiceUnavailable("busy"), done]), Clock()
    ended = gcp_batch.wait(
        client, "j", staged(1), settings(), sleep=clock.sleep, clock=lambda: clock.now
    )
    assert ended is not None and ended.state == "SUCCEEDED"
    assert "status unavailable (503 busy)" in capsys.readouterr().err


def test_a_deleted_job_ends_the_wait() -> None:
    client, clock = FakeBatch([exceptions.NotFound("gone")]), Clock()
    ended = gcp_batch.wait(client, "j", staged(2), settings(), sleep=clock.sleep, clock=lambda: 0)
    outcomes = gcp_batch.outcomes(staged(2), settings(), ended)
    assert [o.succeeded for o in outcomes] == [False, False]
    assert "the job was deleted while it ran" in outcomes[0].reason


def test_status_lines_print_each_change_once(capsys: pytest.CaptureFixture[str]) -> None:
    failed = "Task state is updated from RUNNING to FAILED on zones/z/instances/1 with exit code 1."
    answers = [
        (job_at(JobState.QUEUED), []),
        (job_at(JobState.RUNNING), [task_at(0, TaskState.RUNNING), task_at(1, TaskState.PENDING)]),
        (job_at(JobState.RUNNING), [task_at(0, TaskState.RUNNING), task_at(1, TaskState.RUNNING)]),
        (
            job_at(JobState.FAILED),
            [task_at(0, TaskState.SUCCEEDED), task_at(1, TaskState.FAILED, ("started", failed))],
        ),
    ]
    clock = Clock()
    ended = gcp_batch.wait(
        FakeBatch(answers), "j", staged(2, first=4), settings(), sleep=clock.sleep, clock=lambda: 0
    )
    assert capsys.readouterr().err.splitlines() == [
        "gcp_batch: lret-1a2b3c4d-0: job QUEUED",
        "gcp_batch: lret-1a2b3c4d-0: job RUNNING",
        "gcp_batch: lret-1a2b3c4d-0 task 0 (job 4): RUNNING",
        "gcp_batch: lret-1a2b3c4d-0 task 1 (job 5): PENDING",
        "gcp_batch: lret-1a2b3c4d-0 task 1 (job 5): RUNNING",
        "gcp_batch: lret-1a2b3c4d-0 task 0 (job 4): SUCCEEDED",
        f"gcp_batch: lret-1a2b3c4d-0 task 1 (job 5): FAILED: {failed}",
        "gcp_batch: lret-1a2b3c4d-0: job FAILED",
    ]
    ok, bad = gcp_batch.outcomes(staged(2, first=4), settings(), ended)
    assert ok == Outcome(0, True)
    assert bad.reason.startswith(f"task FAILED in job FAILED: started; {failed}")
    assert "labels.job_uid=lret-1a2b3c4d-0-abc" in bad.reason


def test_a_task_that_never_ran_gets_the_jobs_events() -> None:
    ended = gcp_batch._Ended("FAILED", {}, "", ["Job failed: quota exceeded"])
    (outcome,) = gcp_batch.outcomes(staged(1), settings(), ended)
    assert outcome.reason == "task unknown in job FAILED: Job failed: quota exceeded"


# ---------------------------------------------------------------- the real clients and stubs


def test_the_rest_client_drives_the_stub(stub: BatchStub, emulated: Gcs) -> None:
    """create_job, get_job, list_tasks over REST against the stub; the stub runs each task's
    command with its index and the job's environment, and retries a failing task."""
    client = gcp_batch.batch_client(settings(endpoint=stub.url))
    code = "import os, sys; print(os.environ.get('STORAGE_EMULATOR_HOST')); " + (
        "sys.exit(int(os.environ['BATCH_TASK_INDEX']))"
    )
    job = gcp_batch.build_job(staged(2), settings(max_retry_count=1))
    job.task_groups[0].task_spec.runnables[0].container.commands = ["-c", code]
    job.task_groups[0].parallelism = 1
    client.create_job(parent="projects/p/locations/us-central1", job=job, job_id="lret-x-0")
    clock = Clock()
    ended = gcp_batch.wait(
        client,
        "projects/p/locations/us-central1/jobs/lret-x-0",
        staged(2),
        settings(poll_seconds=0.05, max_poll_seconds=0.2),
        clock=lambda: clock.now,
    )
    assert ended is not None and ended.state == "FAILED"
    ok, bad = gcp_batch.outcomes(staged(2), settings(), ended)
    assert ok.succeeded and not bad.succeeded
    assert bad.reason.count("with exit code 1") == 2  # two attempts: max_retry_count=1
    assert stub.log("lret-x-0", 0).strip() == emulated.url  # the job's env, not ours
    received = stub.received[0]
    assert received.labels["app"] == "lret"
    assert received.task_groups[0].task_spec.compute_resource.memory_mib == 2048


def test_run_submits_waits_and_removes_its_objects(
    stub: BatchStub, emulated: Gcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run() with a job whose tasks print their config from GCS (gcp_batch.read)."""
    real = gcp_batch.build_job

    def build(staged: Staged, cloud: Any) -> Any:
        job = real(staged, cloud)
        source = job.task_groups[0].task_spec.runnables[0].container.commands[-1]
        code = "import os; from lret_runner.cloud import gcp_batch as g; print(g.read(" + (
            f"{source!r}, 'job-' + os.environ['BATCH_TASK_INDEX'] + '.yaml').decode())"
        )
        job.task_groups[0].task_spec.runnables[0].container.commands = ["-c", code]
        return job

    monkeypatch.setattr(gcp_batch, "build_job", build)
    out = gcp_batch.run(staged(2), settings(endpoint=stub.url, poll_seconds=0.1))
    assert out == [Outcome(0, True), Outcome(1, True)]
    assert [stub.log("lret-1a2b3c4d-0", i).strip() for i in (0, 1)] == ["job 0", "job 1"]
    assert emulated.names(BUCKET) == []


def test_a_refused_create_deletes_the_staged_objects(
    stub: BatchStub, emulated: Gcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.fail_next_create = (403, "PERMISSION_DENIED", "batch.jobs.create denied")
    uploaded: list[str] = []
    real_delete = gcp_batch._delete

    def spy(blobs: list[Any]) -> None:
        uploaded.extend(emulated.names(BUCKET))
        real_delete(blobs)

    monkeypatch.setattr(gcp_batch, "_delete", spy)
    with pytest.raises(UserError, match="batch.jobs.create denied") as err:
        gcp_batch.run(staged(2), settings(endpoint=stub.url))
    assert len(uploaded) == 3  # all three were uploaded before create_job was refused
    assert emulated.names(BUCKET) == []
    assert f"gs://{BUCKET}/lret-runner/lret-1a2b3c4d-0/ were deleted" in str(err.value)
    assert not stub.jobs


def test_an_interrupt_deletes_the_job_and_its_objects(
    stub: BatchStub, emulated: Gcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = gcp_batch.build_job

    def sleepy(staged: Staged, cloud: Any) -> Any:
        job = real(staged, cloud)
        job.task_groups[0].task_spec.runnables[0].container.commands = [
            "-c",
            "import time; time.sleep(60)",
        ]
        return job

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(gcp_batch, "build_job", sleepy)
    monkeypatch.setattr(gcp_batch, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gcp_batch.run(staged(1), settings(endpoint=stub.url))
    assert not stub.jobs
    assert emulated.names(BUCKET) == []


def test_read_fetches_from_gcs_and_names_a_missing_object(emulated: Gcs) -> None:
    emulated.client().bucket(BUCKET).blob("a/b/job-0.yaml").upload_from_string(b"cfg")
    assert gcp_batch.read(f"gs://{BUCKET}/a/b", "job-0.yaml") == b"cfg"
    assert gcp_batch.read(f"gs://{BUCKET}/a/b/", "job-0.yaml") == b"cfg"
    with pytest.raises(SystemExit, match=f"gs://{BUCKET}/a/b/job-1.yaml does not exist"):
        gcp_batch.read(f"gs://{BUCKET}/a/b", "job-1.yaml")


def test_stub_answers_unknown_jobs_like_the_api(stub: BatchStub) -> None:
    client = gcp_batch.batch_client(settings(endpoint=stub.url))
    with pytest.raises(exceptions.NotFound):
        client.get_job(name="projects/p/locations/r/jobs/nope")
