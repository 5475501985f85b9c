"""Google Cloud Batch (``cloud=gcp_batch``): a sweep as one Batch job, a task per job.

The staged files (:class:`lret_runner.cloud.jobs.Staged`) go to
``gs://BUCKET/PREFIX/<name>/``; the job's task group has one task per job
(``BATCH_TASK_INDEX`` picks its config), each a container of ``cloud.image`` running
``python -m lret_runner.cloud.entry gs://BUCKET/PREFIX/<name>``. The launcher polls the
job with back-off, prints every task's state changes to stderr, and returns each task's
outcome; its staged objects are deleted once the job has ended (or when the submission
fails part way).

Credentials come only from Application Default Credentials (``google.auth.default``):
nothing secret is in a config or the job. ``cloud.endpoint`` points the Batch client at
another API (a local stub, REST, anonymous); ``STORAGE_EMULATOR_HOST`` points the storage
client at an emulator, and the tasks get the same variable so they read from it too. The
Google clients are imported only when this engine is used (``pip install
'lret_runner[cloud]'``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from lret_runner.cloud.jobs import Outcome, Staged, polls
from lret_runner.errors import ConfigError, UserError

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"  # the storage client's emulator; handed to the tasks
ENTRY = ("python", "-m", "lret_runner.cloud.entry")
_REGION = re.compile(r"[a-z]+-[a-z]+[0-9]+")  # us-central1, europe-west4, me-central2
_BUCKET_PART = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")  # GCP's label rules (ASCII)
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
_MAX_LABELS = 64
_EVENTS_KEPT = 3  # a failed task's last status events kept in its reason
_INSTALL = "pip install 'lret_runner[cloud]'"
CHECK_SECONDS = 15.0  # check() gives up on GCS after this long (retries included)


# ---------------------------------------------------------------- settings


def check(cloud: Any) -> None:
    """Settings, the clients, credentials and (unless ``cloud.dry_run``) the bucket; a
    :class:`ConfigError` naming the setting otherwise. Nothing is created."""
    for key, example in (
        ("project", "my-project"),
        ("region", "us-central1"),
        ("bucket", "my-bucket"),
    ):
        if not cloud.get(key):
            raise ConfigError(
                f"cloud.{key} is required with cloud=gcp_batch: set cloud.{key}={example}"
            )
    _check_region(str(cloud.region))
    _check_bucket(str(cloud.bucket))
    _check_labels(cloud.labels)
    if not cloud.image:
        raise ConfigError("cloud.image is required with cloud=gcp_batch: the tasks' image")
    if cloud.endpoint is not None and not re.match(r"https?://[^/]+", str(cloud.endpoint)):
        raise ConfigError(
            f"cloud.endpoint={cloud.endpoint!r} is invalid: must be http(s)://HOST[:PORT] "
            "(a local stub of the Batch API), or null for Google's"
        )
    try:
        from google.cloud import batch_v1, storage  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"cloud=gcp_batch needs google-cloud-batch and google-cloud-storage: {_INSTALL}"
        ) from None
    if cloud.dry_run:
        return
    if not (cloud.endpoint and os.environ.get(EMULATOR_ENV)):
        _check_credentials()
    _check_bucket_exists(cloud)


def _check_region(region: str) -> None:
    if _REGION.fullmatch(region):
        return
    zone = re.fullmatch(r"([a-z]+-[a-z]+[0-9]+)-[a-z]", region)
    hint = f" ({region} is a zone; its region is {zone.group(1)})" if zone else ""
    raise ConfigError(
        f"cloud.region={region!r} is invalid: must be a Google Cloud region such as "
        f"us-central1 or europe-west4{hint}"
    )


def _check_bucket(bucket: str) -> None:
    """GCS bucket name rules: 3-63 characters (222 with dots, 63 per part), lowercase
    letters, digits, '-', '_' and '.', a letter or digit at each end, not an IP address,
    no 'goog' prefix."""
    parts = bucket.split(".")
    ok = (
        3 <= len(bucket) <= (222 if len(parts) > 1 else 63)
        and all(_BUCKET_PART.fullmatch(p) for p in parts)
        and not bucket.startswith("goog")
        and "google" not in bucket
    )
    try:
        ipaddress.ip_address(bucket)
        ok = False
    except ValueError:
        pass
    if not ok:
        raise ConfigError(
            f"cloud.bucket={bucket!r} is invalid: a GCS bucket name is 3-63 lowercase letters, "
            "digits, '-', '_' or '.' starting and ending with a letter or digit (the name "
            "only, without gs://)"
        )


def _check_labels(labels: Mapping[str, Any] | None) -> None:
    """GCP label rules: at most 64; keys of 1-63 lowercase letters, digits, '_' or '-'
    starting with a letter; values of at most 63 of the same characters."""
    labels = labels or {}
    if len(labels) + 2 > _MAX_LABELS:  # the job also carries app and lret-batch
        raise ConfigError(f"cloud.labels has {len(labels)} labels: at most {_MAX_LABELS - 2}")
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(str(key)):
            raise ConfigError(
                f"cloud.labels: key {key!r} is invalid: 1-63 lowercase letters, digits, '_' "
                "or '-', starting with a lowercase letter"
            )
        if not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value):
            raise ConfigError(
                f"cloud.labels.{key}={value!r} is invalid: a string of at most 63 lowercase "
                "letters, digits, '_' or '-'"
            )


def _check_credentials() -> None:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError as exc:
        raise ConfigError(
            "cloud=gcp_batch uses Application Default Credentials and found none "
            f"({str(exc).split('. ')[0]}): run `gcloud auth application-default login`, or "
            "set GOOGLE_APPLICATION_CREDENTIALS to a service account's key file"
        ) from None


def _check_bucket_exists(cloud: Any) -> None:
    from google.api_core import exceptions

    where = f" (the emulator at {os.environ[EMULATOR_ENV]})" if os.environ.get(EMULATOR_ENV) else ""
    from google.cloud.storage.retry import DEFAULT_RETRY

    retry = DEFAULT_RETRY.with_timeout(CHECK_SECONDS)
    try:
        found = storage_client(cloud).lookup_bucket(
            cloud.bucket, timeout=CHECK_SECONDS, retry=retry
        )
    except exceptions.Forbidden as exc:
        raise ConfigError(
            f"cloud.bucket={cloud.bucket}: access denied ({exc.message}): the credentials "
            "need storage access to the bucket"
        ) from None
    except (exceptions.GoogleAPIError, OSError) as exc:
        raise ConfigError(
            f"cloud.bucket={cloud.bucket}: GCS{where} does not answer ({exc})"
        ) from None
    if found is None:
        raise ConfigError(
            f"cloud.bucket={cloud.bucket} does not exist{where}: create it "
            f"(gcloud storage buckets create gs://{cloud.bucket} --location={cloud.region})"
        )


# ---------------------------------------------------------------- clients


def storage_client(cloud: Any = None) -> Any:
    """GCS with Application Default Credentials, or the emulator ``$STORAGE_EMULATOR_HOST``
    names (anonymous: the client does that itself)."""
    from google.cloud import storage

    return storage.Client(project=cloud.project if cloud is not None else None)


def batch_client(cloud: Any) -> Any:
    """The Batch API: Google's with Application Default Credentials, or ``cloud.endpoint``
    over REST with anonymous credentials (a local stub)."""
    from google.cloud import batch_v1

    if not cloud.endpoint:
        return batch_v1.BatchServiceClient()
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    return batch_v1.BatchServiceClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=str(cloud.endpoint)),
    )


def location(cloud: Any) -> str:
    return f"projects/{cloud.project}/locations/{cloud.region}"


def folder(cloud: Any, staged: Staged) -> str:
    """The object prefix of the sweep's staged files: ``PREFIX/<name>``."""
    return "/".join(p for p in (str(cloud.prefix or "").strip("/"), staged.name) if p)


# ---------------------------------------------------------------- the job


def build_job(staged: Staged, cloud: Any) -> Any:
    """The ``batch_v1.Job`` of a sweep: one task group of ``staged.count`` tasks."""
    from google.cloud import batch_v1
    from google.protobuf import duration_pb2

    source = f"gs://{cloud.bucket}/{folder(cloud, staged)}"
    env = {EMULATOR_ENV: os.environ[EMULATOR_ENV]} if os.environ.get(EMULATOR_ENV) else {}
    runnable = batch_v1.Runnable(
        container=batch_v1.Runnable.Container(
            image_uri=cloud.image, entrypoint=ENTRY[0], commands=[*ENTRY[1:], source]
        ),
    )
    if env:
        runnable.environment = batch_v1.Environment(variables=env)
    task = batch_v1.TaskSpec(
        runnables=[runnable],
        compute_resource=batch_v1.ComputeResource(
            cpu_milli=cloud.cpu_milli, memory_mib=cloud.memory_mib
        ),
        max_retry_count=cloud.max_retry_count,
        max_run_duration=duration_pb2.Duration(seconds=cloud.max_run_duration_seconds),
    )
    group = batch_v1.TaskGroup(task_count=staged.count, task_spec=task)
    if cloud.parallelism is not None:
        group.parallelism = cloud.parallelism
    model = batch_v1.AllocationPolicy.ProvisioningModel
    policy = batch_v1.AllocationPolicy.InstancePolicy(
        machine_type=cloud.machine_type,
        provisioning_model=model.SPOT if cloud.spot else model.STANDARD,
    )
    labels = {**{str(k): str(v) for k, v in (cloud.labels or {}).items()}, **staged.labels}
    return batch_v1.Job(
        task_groups=[group],
        allocation_policy=batch_v1.AllocationPolicy(
            instances=[batch_v1.AllocationPolicy.InstancePolicyOrTemplate(policy=policy)],
        ),
        labels=labels,
        logs_policy=batch_v1.LogsPolicy(destination=batch_v1.LogsPolicy.Destination.CLOUD_LOGGING),
    )


def describe(staged: Staged, cloud: Any, job: Any) -> str:
    """What a dry run prints: the objects it would write and the job it would create."""
    from google.cloud import batch_v1

    where = f"gs://{cloud.bucket}/{folder(cloud, staged)}"
    files = "\n".join(f"  {where}/{n} ({len(b)} bytes)" for n, b in sorted(staged.files.items()))
    body = batch_v1.Job.to_json(
        job, use_integers_for_enums=False, always_print_fields_with_no_presence=False
    )
    return (
        f"gcp_batch dry run: would upload\n{files}\nand create job {staged.name} in "
        f"{location(cloud)}:\n{body}"
    )


# ---------------------------------------------------------------- launching


def run(staged: Staged, cloud: Any) -> list[Outcome] | None:
    """Upload the staged files, create the job, wait for it; each task's outcome. A
    submission that fails part way deletes what it uploaded; an interrupt deletes the job.
    ``cloud.dry_run``: print the job, contact nothing, return None."""
    job = build_job(staged, cloud)
    if cloud.dry_run:
        print(describe(staged, cloud, job))
        return None
    bucket = storage_client(cloud).bucket(cloud.bucket)
    client = batch_client(cloud)
    blobs = submit(client, bucket, staged, cloud, job)
    name = f"{location(cloud)}/jobs/{staged.name}"
    print(f"gcp_batch: {staged.name}: created {name}", file=sys.stderr)
    try:
        done = wait(client, name, staged, cloud)
    except KeyboardInterrupt:
        print(f"gcp_batch: {staged.name}: interrupted, deleting the job", file=sys.stderr)
        _quietly(lambda: client.delete_job(name=name))
        _delete(blobs)
        raise
    if done is not None:
        _delete(blobs)  # the job has ended: nothing reads them again
    return outcomes(staged, cloud, done)


def submit(client: Any, bucket: Any, staged: Staged, cloud: Any, job: Any) -> list[Any]:
    """Upload the staged files and create the job; the uploaded blobs. Whatever fails
    (an upload, create_job refused, an interrupt) deletes the blobs already uploaded."""
    from google.api_core import exceptions

    prefix = folder(cloud, staged)
    blobs: list[Any] = []
    try:
        for name, data in staged.files.items():
            blob = bucket.blob(f"{prefix}/{name}")
            # if_generation_match=0: a new object, which makes the upload safe to retry
            blob.upload_from_string(
                data, content_type="application/octet-stream", if_generation_match=0
            )
            blobs.append(blob)
        client.create_job(parent=location(cloud), job=job, job_id=staged.name)
    except BaseException as exc:
        _delete(blobs)
        if not isinstance(exc, exceptions.GoogleAPIError | OSError):
            raise
        message = (
            f"gcp_batch: {staged.name}: not submitted to {location(cloud)} ({exc}); the "
            f"objects staged under gs://{cloud.bucket}/{prefix}/ were deleted"
        )
        print(message, file=sys.stderr)  # a status line, as the others: Hydra may not show it
        raise UserError(message) from exc
    return blobs


def _delete(blobs: list[Any]) -> None:
    for blob in blobs:
        _quietly(blob.delete)


def _quietly(call: Callable[[], Any]) -> None:
    """Clean-up that must not hide the error being handled (a warning instead)."""
    try:
        call()
    except Exception as exc:
        print(f"gcp_batch: clean-up failed: {exc}", file=sys.stderr)


# ---------------------------------------------------------------- waiting

_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "DELETION_IN_PROGRESS")


def wait(
    client: Any,
    name: str,
    staged: Staged,
    cloud: Any,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Poll job ``name`` until it ends (its last state, with ``.tasks`` by index set), or
    None after ``cloud.timeout_minutes`` (the job is left running). Waits
    ``cloud.poll_seconds`` first, doubled up to ``cloud.max_poll_seconds``; prints each
    change of the job's or a task's state to stderr."""
    from google.api_core import exceptions

    states: dict[Any, str] = {}
    for out_of_time in polls(cloud, sleep=sleep, clock=clock):
        try:
            job = client.get_job(name=name)
            tasks = _tasks(client, job)
        except exceptions.NotFound:
            print(f"gcp_batch: {staged.name}: the job was deleted", file=sys.stderr)
            return _Ended("DELETED", {}, "", ["the job was deleted while it ran"])
        except (exceptions.ServerError, exceptions.TooManyRequests, OSError) as exc:
            print(f"gcp_batch: {staged.name}: status unavailable ({exc})", file=sys.stderr)
        else:
            _report(staged, job, tasks, states)
            state = job.status.state.name
            if state in _TERMINAL:
                events = [e.description for e in job.status.status_events]
                return _Ended(state, tasks, job.uid, events)
        if out_of_time:
            print(
                f"gcp_batch: {staged.name}: still not done after cloud.timeout_minutes="
                f"{cloud.timeout_minutes}; the job is left running",
                file=sys.stderr,
            )
            return None
    raise AssertionError("polls() never ends")


class _Ended:
    """A job that ended: its state, its tasks by index, its uid and status events."""

    def __init__(self, state: str, tasks: dict[int, Any], uid: str, events: list[str]) -> None:
        self.state, self.tasks, self.uid, self.events = state, tasks, uid, events


def _tasks(client: Any, job: Any) -> dict[int, Any]:
    """The job's tasks by index (a task's name ends in ``/tasks/<index>``)."""
    if not job.task_groups or not job.task_groups[0].name:
        return {}
    return {
        int(t.name.rsplit("/", 1)[1]): t for t in client.list_tasks(parent=job.task_groups[0].name)
    }


def _report(staged: Staged, job: Any, tasks: dict[int, Any], seen: dict[Any, str]) -> None:
    """One stderr line per change of the job's state or a task's (an ended job's last)."""
    ended = job.status.state.name in _TERMINAL
    line = f"gcp_batch: {staged.name}: job {job.status.state.name}"
    line = "" if seen.get("job") == job.status.state.name else line
    seen["job"] = job.status.state.name
    if line and not ended:
        print(line, file=sys.stderr)
    for index, task in sorted(tasks.items()):
        state = task.status.state.name
        if seen.get(index) != state:
            seen[index] = state
            last = task.status.status_events[-1].description if task.status.status_events else ""
            why = f": {last}" if state == "FAILED" and last else ""
            num = staged.first_num + index
            print(
                f"gcp_batch: {staged.name} task {index} (job {num}): {state}{why}", file=sys.stderr
            )
    if line and ended:
        print(line, file=sys.stderr)


def outcomes(staged: Staged, cloud: Any, ended: _Ended | None) -> list[Outcome]:
    """Each index's outcome: succeeded when its task did; else the task's last status
    events (or the job's) as the reason."""
    if ended is None:
        why = (
            f"still running after cloud.timeout_minutes={cloud.timeout_minutes} (left "
            f"running: gcloud batch jobs describe {staged.name} --location={cloud.region} "
            f"--project={cloud.project})"
        )
        return [Outcome(i, False, why) for i in range(staged.count)]
    logs = (
        f" (its log: gcloud logging read 'logName=projects/{cloud.project}/logs/"
        f"batch_task_logs AND labels.job_uid={ended.uid}' --project={cloud.project})"
        if ended.uid
        else ""
    )
    out = []
    for index in range(staged.count):
        task = ended.tasks.get(index)
        state = task.status.state.name if task is not None else "unknown"
        if state == "SUCCEEDED":
            out.append(Outcome(index, True))
            continue
        events = [e.description for e in task.status.status_events] if task is not None else []
        events = events[-_EVENTS_KEPT:] or ended.events[-_EVENTS_KEPT:]
        why = f"task {state} in job {ended.state}" + (": " + "; ".join(events) if events else "")
        out.append(Outcome(index, False, why + logs))
    return out


# ---------------------------------------------------------------- the job side


def read(source: str, name: str) -> bytes:
    """``name`` under ``gs://BUCKET/PREFIX`` (what a task's entry fetches)."""
    from google.api_core import exceptions

    bucket, _, prefix = source.removeprefix("gs://").partition("/")
    path = f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name
    try:
        return storage_client().bucket(bucket).blob(path).download_as_bytes()
    except exceptions.NotFound:
        raise SystemExit(f"lret_runner: gs://{bucket}/{path} does not exist") from None
