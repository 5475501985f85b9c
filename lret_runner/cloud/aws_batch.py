"""AWS Batch (``cloud=aws_batch``): a sweep as one array job, its job configs in S3.

:func:`run` uploads the staged files to ``s3://BUCKET/PREFIX/<name>/``, registers a job
definition (``cloud.image``, vCPUs, memory, retry strategy, timeout) unless
``cloud.job_definition`` names one, and submits one array job (a plain job for a sweep of
one: arrays need two or more) whose index ``i`` runs
``python -m lret_runner.cloud.entry s3://BUCKET/PREFIX/<name>``; the entry reads its config
with :func:`read` and picks it by ``AWS_BATCH_JOB_ARRAY_INDEX``. The definition and the job
are tagged ``app=lret`` and ``lret-batch=<name>`` (plus ``cloud.tags``). The jobs'
environment holds nothing secret: their config carries the tracking URI, and boto3 finds
credentials through its standard chain (the job role on AWS). ``cloud.endpoint_url`` (a
local emulator) serves this process's clients and, as ``AWS_ENDPOINT_URL``, the jobs'.

The launcher waits, polling every ``cloud.poll_seconds`` doubled up to
``cloud.max_poll_seconds`` (``cloud.timeout_minutes``: give up, the job left running), and
prints each index's state changes to stderr. When the job is over, its staged files and
the definition it registered are removed; so are they when the submission fails part way.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from lret_runner.cloud.jobs import Outcome, Staged, polls
from lret_runner.errors import ConfigError, UserError

COMMAND = ["python", "-m", "lret_runner.cloud.entry"]  # + the staged files' s3:// location
TERMINAL = ("SUCCEEDED", "FAILED")
LOG_GROUP = "/aws/batch/job"  # where Batch sends a job's log unless its definition says
DESCRIBE_MAX = 100  # job ids per DescribeJobs call
LOG_LINES = 50  # lines of a failed job's log kept
RESERVED_TAGS = ("app", "lret-batch")  # the runner's own tags
CHAIN = (
    "the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), a profile in "
    "~/.aws/credentials or ~/.aws/config (AWS_PROFILE), SSO (aws sso login), web identity "
    "(AWS_WEB_IDENTITY_TOKEN_FILE), a container role or the instance role"
)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


# ---------------------------------------------------------------- clients and names


def _session(cloud: Any) -> Any:
    import boto3

    # botocore says at INFO, for every client, where it found the credentials: noise
    logging.getLogger("botocore.credentials").setLevel(logging.WARNING)
    return boto3.Session(region_name=cloud.region or None)


def _client(cloud: Any, service: str) -> Any:
    return _session(cloud).client(service, endpoint_url=cloud.endpoint_url or None)


def key_prefix(staged: Staged, cloud: Any) -> str:
    """The S3 key prefix of a sweep's files: ``PREFIX/<name>``."""
    return "/".join(p for p in (str(cloud.prefix).strip("/"), staged.name) if p)


def location(staged: Staged, cloud: Any) -> str:
    return f"s3://{cloud.bucket}/{key_prefix(staged, cloud)}"


def _tags(staged: Staged, cloud: Any) -> dict[str, str]:
    return {**{str(k): str(v) for k, v in (cloud.tags or {}).items()}, **staged.labels}


def environment(cloud: Any, region: str | None) -> list[dict[str, str]]:
    """The jobs' environment: where AWS is, nothing secret."""
    env = {"AWS_DEFAULT_REGION": region, "AWS_ENDPOINT_URL": cloud.endpoint_url}
    return [{"name": k, "value": str(v)} for k, v in env.items() if v]


def requests(staged: Staged, cloud: Any, region: str | None) -> tuple[dict | None, dict]:
    """The ``register_job_definition`` request (None with ``cloud.job_definition``) and the
    ``submit_job`` one (its ``jobDefinition`` set to the definition's name)."""
    command = [*COMMAND, location(staged, cloud)]
    env = environment(cloud, region)
    tags = _tags(staged, cloud)
    submit: dict[str, Any] = {
        "jobName": staged.name,
        "jobQueue": cloud.job_queue,
        "jobDefinition": cloud.job_definition or staged.name,
        "tags": tags,
        "propagateTags": True,
    }
    if staged.count > 1:
        submit["arrayProperties"] = {"size": staged.count}
    if cloud.job_definition:  # its image, resources, retries and timeout; our command
        submit["containerOverrides"] = {"command": command, "environment": env}
        return None, submit
    definition = {
        "jobDefinitionName": staged.name,
        "type": "container",
        "containerProperties": {
            "image": cloud.image,
            "command": command,
            "environment": env,
            "resourceRequirements": [
                {"type": "VCPU", "value": str(cloud.vcpus)},
                {"type": "MEMORY", "value": str(cloud.memory_mib)},
            ],
        },
        "retryStrategy": {"attempts": cloud.retry_attempts},
        "timeout": {"attemptDurationSeconds": cloud.timeout_seconds},
        "tags": tags,
        "propagateTags": True,
    }
    return definition, submit


# ---------------------------------------------------------------- check


def check(cloud: Any) -> None:
    """The settings, the credentials and (unless ``cloud.dry_run``) that the bucket, the
    queue and a named definition exist; a :class:`ConfigError` naming the setting."""
    for key in ("job_queue", "bucket"):
        if not cloud.get(key):
            raise ConfigError(f"cloud.{key} is required with cloud=aws_batch")
    bucket = str(cloud.bucket)
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or re.fullmatch(r"[\d.]+", bucket):
        raise ConfigError(
            f"cloud.bucket={bucket!r} is invalid: an S3 bucket name is 3-63 lowercase "
            "letters, digits, dots and hyphens, starting and ending with a letter or digit"
        )
    if cloud.endpoint_url and not re.match(r"https?://[^/]+", str(cloud.endpoint_url)):
        raise ConfigError(
            f"cloud.endpoint_url={cloud.endpoint_url!r} is invalid: must be an http:// or "
            "https:// address"
        )
    for key in cloud.tags or {}:
        if key in RESERVED_TAGS or str(key).startswith("aws:"):
            raise ConfigError(
                f"cloud.tags.{key} is invalid: {', '.join(RESERVED_TAGS)} are the runner's "
                "own tags and aws: is AWS's prefix"
            )
    if not cloud.job_definition and not cloud.image:
        raise ConfigError("cloud.image is required with cloud=aws_batch (or cloud.job_definition)")
    session = _session(cloud)
    if not session.region_name:
        raise ConfigError(
            "cloud.region is required with cloud=aws_batch: set it, or a region boto3 "
            "finds (AWS_DEFAULT_REGION, AWS_REGION, the profile's region in ~/.aws/config)"
        )
    if cloud.dry_run:  # prints the requests: nothing contacted, no credentials needed
        return
    if session.get_credentials() is None:
        raise ConfigError(f"cloud=aws_batch found no AWS credentials; boto3 looks in {CHAIN}")
    _check_exists(cloud)


def _check_exists(cloud: Any) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    where = cloud.endpoint_url or f"AWS region {_session(cloud).region_name}"
    try:
        try:
            _client(cloud, "s3").head_bucket(Bucket=cloud.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            why = {"404": "does not exist", "403": "is not reachable with these credentials"}
            raise ConfigError(
                f"cloud.bucket={cloud.bucket!r} {why.get(code, f'cannot be used ({code})')} "
                f"at {where}"
            ) from None
        batch = _client(cloud, "batch")
        queues = batch.describe_job_queues(jobQueues=[cloud.job_queue])["jobQueues"]
        if not queues:
            names = [q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]]
            raise ConfigError(
                f"cloud.job_queue={cloud.job_queue!r} does not exist at {where}; its job "
                f"queues: {', '.join(names) or 'none'}"
            )
        if queues[0].get("state") != "ENABLED":
            raise ConfigError(
                f"cloud.job_queue={cloud.job_queue!r} is {queues[0].get('state')}: its jobs "
                "would never start"
            )
        if cloud.job_definition:
            _check_definition(batch, str(cloud.job_definition), where)
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(
            f"cloud=aws_batch: checking cloud.bucket and cloud.job_queue at {where} failed "
            f"(cloud.endpoint_url, cloud.region, the credentials?): {exc}"
        ) from None


def _check_definition(batch: Any, name: str, where: str) -> None:
    if ":" in name:  # name:revision or an ARN
        found = batch.describe_job_definitions(jobDefinitions=[name])["jobDefinitions"]
    else:
        found = batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")
        found = found["jobDefinitions"]
    if not [d for d in found if d.get("status") == "ACTIVE"]:
        raise ConfigError(f"cloud.job_definition={name!r} has no active revision at {where}")


# ---------------------------------------------------------------- run


def run(staged: Staged, cloud: Any) -> list[Outcome] | None:
    """Submit the sweep as one array job and wait for it; None after printing the
    requests with ``cloud.dry_run``."""
    region = _session(cloud).region_name
    definition, submit = requests(staged, cloud, region)
    if cloud.dry_run:
        _print_dry_run(staged, cloud, definition, submit)
        return None
    batch = _client(cloud, "batch")
    job_id, registered = _submit(staged, cloud, batch, definition, submit)
    try:
        jobs = wait(batch, staged, job_id, cloud)
    except KeyboardInterrupt:
        batch.terminate_job(jobId=job_id, reason="the sweep was interrupted (lret_runner)")
        raise
    if all(j["status"] in TERMINAL for j in jobs):
        _remove(staged, cloud, registered)
    logs = _client(cloud, "logs")
    return [_outcome(i, job, logs) for i, job in enumerate(jobs)]


def _print_dry_run(staged: Staged, cloud: Any, definition: dict | None, submit: dict) -> None:
    import yaml

    prefix = key_prefix(staged, cloud)
    shown = {
        "upload": [f"s3://{cloud.bucket}/{prefix}/{name}" for name in staged.files],
        "register_job_definition": definition,
        "submit_job": submit,
    }
    print(f"# cloud.dry_run: AWS Batch requests for {staged.name} (nothing submitted)")
    print(yaml.safe_dump(shown, sort_keys=False), end="")


def _submit(
    staged: Staged, cloud: Any, batch: Any, definition: dict | None, submit: dict
) -> tuple[str, str | None]:
    """Upload, register, submit: the job's id and the definition registered (None: named);
    what was made is removed if a step fails."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = _client(cloud, "s3")
    prefix = key_prefix(staged, cloud)
    registered = None
    try:
        for name, data in staged.files.items():
            s3.put_object(Bucket=cloud.bucket, Key=f"{prefix}/{name}", Body=data)
        if definition is not None:
            registered = batch.register_job_definition(**definition)["jobDefinitionArn"]
            submit = {**submit, "jobDefinition": registered}
        job_id = batch.submit_job(**submit)["jobId"]
    except BaseException as exc:
        _remove(staged, cloud, registered)
        if isinstance(exc, BotoCoreError | ClientError):
            raise UserError(
                f"cloud=aws_batch: submitting {staged.name} to cloud.job_queue="
                f"{cloud.job_queue} failed: {exc} (its staged files and job definition "
                "were removed)"
            ) from None
        raise
    print(f"aws_batch: {staged.name}: job {job_id} in queue {cloud.job_queue}", file=sys.stderr)
    return job_id, registered


def _remove(staged: Staged, cloud: Any, registered: str | None) -> None:
    """Delete the sweep's staged objects and deregister the definition it registered; a
    refusal is reported, not raised (the sweep's outcome matters more)."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = _client(cloud, "s3")
    prefix = key_prefix(staged, cloud) + "/"
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=cloud.bucket, Prefix=prefix)
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=cloud.bucket, Delete={"Objects": keys, "Quiet": True})
        if registered is not None:
            _client(cloud, "batch").deregister_job_definition(jobDefinition=registered)
    except (BotoCoreError, ClientError) as exc:
        print(f"aws_batch: {staged.name}: could not remove what it made: {exc}", file=sys.stderr)


def wait(
    batch: Any,
    staged: Staged,
    job_id: str,
    cloud: Any,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict[str, Any]]:
    """Each index's job description once all are over, or when ``cloud.timeout_minutes``
    runs out; every change of state printed to stderr. An index the service does not
    show yet is SUBMITTED."""
    ids = [f"{job_id}:{i}" for i in range(staged.count)] if staged.count > 1 else [job_id]
    shown: dict[str, str] = {}
    for out_of_time in polls(cloud, sleep=sleep, clock=clock):
        found = _describe(batch, ids)
        jobs = [found.get(i, {"jobId": i, "status": "SUBMITTED"}) for i in ids]
        for index, job in enumerate(jobs):
            if shown.get(job["jobId"]) != job["status"]:
                shown[job["jobId"]] = job["status"]
                reason = f": {job['statusReason']}" if job.get("statusReason") else ""
                print(f"aws_batch: {staged.name}[{index}] {job['status']}{reason}", file=sys.stderr)
        if all(j["status"] in TERMINAL for j in jobs):
            return jobs
        if out_of_time:
            print(
                f"aws_batch: cloud.timeout_minutes={cloud.timeout_minutes} ran out; job "
                f"{job_id} is left running (aws batch terminate-job --job-id {job_id} stops it)",
                file=sys.stderr,
            )
            return jobs
    raise AssertionError("polls() never ends")


def _describe(batch: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), DESCRIBE_MAX):
        for job in batch.describe_jobs(jobs=ids[start : start + DESCRIBE_MAX])["jobs"]:
            found[job["jobId"]] = job
    return found


def _outcome(index: int, job: dict[str, Any], logs: Any) -> Outcome:
    status = job["status"]
    if status == "SUCCEEDED":
        return Outcome(index, True)
    reason = job.get("statusReason") or ""
    code = job.get("container", {}).get("exitCode")
    if status == "FAILED":
        reason = reason or f"AWS Batch job {job['jobId']} FAILED"
        reason += f" (exit code {code})" if code is not None else ""
    else:
        reason = f"AWS Batch job {job['jobId']} still {status} when the wait ended"
    return Outcome(index, False, reason, _log(job, logs) if status == "FAILED" else "")


def _log(job: dict[str, Any], logs: Any) -> str:
    """The end of a failed job's log in CloudWatch Logs ("" when it has none)."""
    from botocore.exceptions import BotoCoreError, ClientError

    stream = job.get("container", {}).get("logStreamName")
    if not stream:
        return ""
    try:
        events = logs.get_log_events(
            logGroupName=LOG_GROUP, logStreamName=stream, limit=LOG_LINES, startFromHead=False
        )["events"]
    except (BotoCoreError, ClientError):  # no log yet, or no right to read it
        return ""
    return "\n".join(e["message"] for e in events)


# ---------------------------------------------------------------- the job side


def read(source: str, name: str) -> bytes:
    """The staged file ``name`` under ``source`` (``s3://BUCKET/PREFIX``), read with
    boto3's standard chain (``AWS_ENDPOINT_URL``: another endpoint)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = source.removeprefix("s3://").partition("/")
    key = f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name
    try:
        s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (BotoCoreError, ClientError) as exc:
        raise SystemExit(f"lret_runner: cannot read s3://{bucket}/{key}: {exc}") from None
