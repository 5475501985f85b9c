"""A local AWS for the AWS Batch tests: moto's server (S3, Batch, IAM, CloudWatch Logs) on
loopback, whose Batch jobs really run.

moto runs a Batch job's container with Docker, which these machines lack; without it every
job fails at once (and moto's Docker-less mode marks every job SUCCEEDED without running
anything). Run as a script (``python tests/stubs/aws.py PORT RUNS``), this module starts
moto's server with a stand-in for the few calls of the ``docker`` package moto's Batch
makes: a "container" is the job's command run as a local process, as moto's own job
thread builds it from the job definition and the submission (command, environment), plus
what the Batch agent adds on AWS (``AWS_BATCH_JOB_ARRAY_INDEX``, the job role's
credentials). The image is not run: ``python`` is this interpreter, which has lret_runner
installed as the image does. The job's state, exit code and log (CloudWatch Logs) are
moto's, from the process; every container started is appended to RUNS (JSON lines) so a
test can check what ran.

In the tests, :func:`start_moto` starts it (its own process group) and :func:`provision`
creates the bucket and a job queue.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REGION = "eu-west-1"
# what the jobs' boto3 finds: moto accepts any key (they stand in for the job role)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
HOST_ENV = ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")  # what any container has


# ---------------------------------------------------------------- the container stand-in


class Container:
    """A job's "container": its command as a local process in a folder of its own."""

    def __init__(self, runs: Path, image: str, command: list[str], environment: dict, name: str):
        env = {k: os.environ[k] for k in HOST_ENV if k in os.environ}
        env.update(CREDENTIALS, OPENBLAS_NUM_THREADS="1")
        env.update({k: str(v) for k, v in environment.items()})
        job_id = env.get("AWS_BATCH_JOB_ID", "")
        if ":" in job_id:  # a child of an array job: <parent id>:<index>
            env["AWS_BATCH_JOB_ARRAY_INDEX"] = job_id.rsplit(":", 1)[1]
        argv = [sys.executable if command[0] == "python" else command[0], *command[1:]]
        self.folder = Path(tempfile.mkdtemp(prefix="moto-container-"))
        self.status = "running"
        self.attrs: dict[str, Any] = {"NetworkSettings": {"Networks": {}, "IPAddress": ""}}
        self._out = open(self.folder / "stdout", "wb")  # noqa: SIM115 - closed in wait()
        self._err = open(self.folder / "stderr", "wb")  # noqa: SIM115
        self._proc = subprocess.Popen(
            argv,
            cwd=self.folder,
            env=env,
            stdout=self._out,
            stderr=self._err,
            start_new_session=True,
        )
        record = {"name": name, "image": image, "command": command, "environment": environment}
        with open(runs, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def reload(self) -> None:
        if self.status == "running" and self._proc.poll() is not None:
            self.status = "exited"

    def kill(self) -> None:
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._proc.wait()
        self.status = "exited"

    def logs(self, stdout: bool, stderr: bool, timestamps: bool, since: Any) -> bytes:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        name = "stdout" if stdout else "stderr"
        text = (self.folder / name).read_text(errors="replace")
        return "".join(f"{stamp} {line}\n" for line in text.splitlines() if line).encode()

    def wait(self) -> dict[str, int]:
        code = self._proc.wait()
        self._out.close()
        self._err.close()
        return {"StatusCode": code}

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def docker_module(runs: Path) -> types.ModuleType:
    """The part of the ``docker`` package moto's Batch jobs use."""

    class LogConfig:
        types = types.SimpleNamespace(JSON="json-file")

        def __init__(self, **kwargs: Any) -> None:
            self.config = kwargs

    class Containers:
        def run(self, image: str, command: list[str], environment: dict, name: str, **_: Any):
            return Container(runs, image, command, environment, name)

    module = types.ModuleType("docker")
    client = types.SimpleNamespace(containers=Containers())
    module.__dict__.update(
        types=types.SimpleNamespace(Mount=dict, LogConfig=LogConfig), from_env=lambda: client
    )
    return module


def serve(port: int, runs: Path) -> None:
    """moto's server on 127.0.0.1:PORT, its Batch jobs run as local processes."""
    sys.modules["docker"] = docker_module(runs)
    from moto.server import main

    main(["-H", "127.0.0.1", "-p", str(port)])


# ---------------------------------------------------------------- the test side


@dataclass
class Moto:
    """A running stub: its endpoint, the environment that points boto3 at it, and RUNS."""

    endpoint: str
    runs: Path

    @property
    def env(self) -> dict[str, str]:
        return {**CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}

    def client(self, service: str) -> Any:
        import boto3

        session = boto3.Session(region_name=REGION, **_boto_keys())
        return session.client(service, endpoint_url=self.endpoint)

    def containers(self) -> list[dict[str, Any]]:
        """Every container started so far (name, image, command, environment)."""
        if not self.runs.exists():
            return []
        return [json.loads(line) for line in self.runs.read_text().splitlines()]


def _boto_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def start_moto(root: Path, port: int) -> tuple[subprocess.Popen[bytes], Moto]:
    """The stub on ``port`` in its own process group, waited for until it answers."""
    moto = Moto(f"http://127.0.0.1:{port}", root / "containers.jsonl")
    log = open(root / "moto.log", "wb")  # noqa: SIM115 - the server writes it while it runs
    proc = subprocess.Popen(
        [sys.executable, __file__, str(port), str(moto.runs)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **moto.env},
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{moto.endpoint}/moto-api/", timeout=2):
                return proc, moto
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                text = (root / "moto.log").read_text(errors="replace")
                raise RuntimeError(f"moto server did not start:\n{text[-3000:]}") from None
            time.sleep(0.2)


def provision(moto: Moto, bucket: str, queue: str) -> None:
    """A bucket and an enabled job queue on an unmanaged compute environment."""
    moto.client("s3").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    role = moto.client("iam").create_role(
        RoleName=f"{queue}-service", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    batch = moto.client("batch")
    env = batch.create_compute_environment(
        computeEnvironmentName=f"{queue}-env", type="UNMANAGED", serviceRole=role
    )["computeEnvironmentArn"]
    batch.create_job_queue(
        jobQueueName=queue,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}],
    )


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
