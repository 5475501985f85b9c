"""A local stub of Google Cloud Batch's REST API (``batch.googleapis.com/v1``), for tests.

It is not the real service. It answers the paths the real ``google-cloud-batch`` client
calls with ``transport="rest"`` (create, get, list and delete jobs; list and get tasks)
with JSON shaped like the real API's (``status.state`` QUEUED, SCHEDULED, RUNNING,
SUCCEEDED, FAILED; tasks with ``statusEvents``; enums as integers when the client asks
with ``$alt=json;enum-encoding=int``, as it does; errors as ``{"error": {...}}``).

It also plays the executor: a created job's tasks run at once, as local subprocesses of
the first runnable's container command (entrypoint + commands; ``python`` is replaced by
``sys.executable``, the test's interpreter, where the image's would run), ``parallelism``
at a time, each with ``BATCH_TASK_INDEX``, ``BATCH_TASK_COUNT``, the task spec's and the
runnable's environment, and of this process's environment only what an image would also
set (PATH, HOME, locale, OPENBLAS_NUM_THREADS): the tasks see no variable the job does not
hand them. A task is retried ``maxRetryCount`` times and killed after ``maxRunDuration``
(exit code 50005, as Batch reports it); the job ends SUCCEEDED when every task did,
FAILED otherwise. Each task's output is kept in ``<workdir>/<job>/task-<i>.log``.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from google.cloud import batch_v1

KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "OPENBLAS_NUM_THREADS")
RUN_DURATION_EXIT = 50005  # Batch's exit code for a task stopped at its maxRunDuration
_JOBS = re.compile(r"/v1/(projects/[^/]+/locations/[^/]+)/jobs")
_JOB = re.compile(r"/v1/(projects/[^/]+/locations/[^/]+/jobs/[^/]+)")
_TASKS = re.compile(r"/v1/(projects/[^/]+/locations/[^/]+/jobs/[^/]+/taskGroups/[^/]+)/tasks")
_TASK = re.compile(r"/v1/(projects/[^/]+/locations/[^/]+/jobs/[^/]+/taskGroups/[^/]+/tasks/\d+)")
_ZONE = "zones/us-central1-a/instances/1234567890"

JobState = batch_v1.JobStatus.State
TaskState = batch_v1.TaskStatus.State


class ApiError(Exception):
    """An error answer, as Google's APIs shape it."""

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class _Job:
    """A created job, its tasks and the processes running them."""

    def __init__(self, job: Any, workdir: Path) -> None:
        self.job, self.workdir = job, workdir
        group = job.task_groups[0]
        self.tasks = [
            batch_v1.Task(
                name=f"{group.name}/tasks/{i}",
                status=batch_v1.TaskStatus(state=TaskState.PENDING),
            )
            for i in range(group.task_count)
        ]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.deleted = threading.Event()


class BatchStub:
    """The stub server (a thread of this process) and its jobs; ``url`` is what
    ``cloud.endpoint`` is set to. ``fail_next_create`` makes the next create_job answer an
    error (``(code, status, message)``); ``received`` holds every job as created."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.workdir = Path(workdir)
        self.jobs: dict[str, _Job] = {}
        self.received: list[Any] = []
        self.fail_next_create: tuple[int, str, str] | None = None
        self.lock = threading.Lock()
        stub = self

        class Handler(_Handler):
            pass

        Handler.stub = stub
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> BatchStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for job in list(self.jobs.values()):
            self._stop(job)
        self.server.shutdown()
        self.server.server_close()

    def log(self, job_id: str, index: int) -> str:
        """What task ``index`` of job ``job_id`` printed (its last attempt)."""
        path = self.workdir / job_id / f"task-{index}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------ the API

    def create(self, parent: str, job_id: str, body: bytes) -> Any:
        with self.lock:
            if self.fail_next_create is not None:
                code, status, message = self.fail_next_create
                self.fail_next_create = None
                raise ApiError(code, status, message)
            name = f"{parent}/jobs/{job_id}"
            if not re.fullmatch(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", job_id):
                raise ApiError(400, "INVALID_ARGUMENT", f"job_id {job_id!r} is invalid")
            if name in self.jobs:
                raise ApiError(409, "ALREADY_EXISTS", f"Job {name} already exists")
            job = batch_v1.Job.from_json(body, ignore_unknown_fields=True)
            if len(job.task_groups) != 1 or not job.task_groups[0].task_spec.runnables:
                raise ApiError(400, "INVALID_ARGUMENT", "one task group with runnables")
            self.received.append(batch_v1.Job(job))
            job.name, job.uid = name, f"{job_id}-{uuid.uuid4().hex[:8]}"
            job.create_time = job.update_time = _now()
            job.task_groups[0].name = f"{name}/taskGroups/group0"
            job.status = batch_v1.JobStatus(state=JobState.QUEUED)
            self._event(job.status, "Job state is set from QUEUED to QUEUED for job " + name)
            entry = _Job(job, self.workdir / job_id)
            self.jobs[name] = entry
        threading.Thread(target=self._execute, args=(entry,), daemon=True).start()
        return batch_v1.Job(job)

    def get(self, name: str) -> Any:
        with self.lock:
            return batch_v1.Job(self._find(name).job)

    def list_jobs(self, parent: str) -> list[Any]:
        with self.lock:
            return [batch_v1.Job(j.job) for n, j in self.jobs.items() if n.startswith(parent)]

    def list_tasks(self, group: str) -> list[Any]:
        with self.lock:
            job = self._find(group.split("/taskGroups/")[0])
            if group != job.job.task_groups[0].name:
                raise ApiError(404, "NOT_FOUND", f"task group {group} not found")
            return [batch_v1.Task(t) for t in job.tasks]

    def get_task(self, name: str) -> Any:
        group, _, index = name.rpartition("/tasks/")
        tasks = self.list_tasks(group)
        if int(index) >= len(tasks):
            raise ApiError(404, "NOT_FOUND", f"task {name} not found")
        return tasks[int(index)]

    def delete(self, name: str) -> dict[str, Any]:
        with self.lock:
            job = self._find(name)
            job.job.status.state = JobState.DELETION_IN_PROGRESS
        self._stop(job)
        with self.lock:
            self.jobs.pop(name, None)
        location = name.split("/jobs/")[0]
        return {"name": f"{location}/operations/{uuid.uuid4().hex}", "done": True}

    def _find(self, name: str) -> _Job:
        if name not in self.jobs:
            raise ApiError(404, "NOT_FOUND", f"Job {name} not found")
        return self.jobs[name]

    # ------------------------------------------------------------ the executor

    def _execute(self, entry: _Job) -> None:
        job = entry.job
        entry.workdir.mkdir(parents=True, exist_ok=True)
        self._set_job(entry, JobState.SCHEDULED)
        self._set_job(entry, JobState.RUNNING)
        group = job.task_groups[0]
        with ThreadPoolExecutor(group.parallelism or group.task_count) as pool:
            list(pool.map(lambda i: self._run_task(entry, i), range(group.task_count)))
        ok = all(t.status.state == TaskState.SUCCEEDED for t in entry.tasks)
        if not entry.deleted.is_set():
            self._set_job(entry, JobState.SUCCEEDED if ok else JobState.FAILED)

    def _run_task(self, entry: _Job, index: int) -> None:
        spec = entry.job.task_groups[0].task_spec
        container = spec.runnables[0].container
        argv = ([container.entrypoint] if container.entrypoint else []) + list(container.commands)
        if argv and argv[0] in ("python", "python3"):
            argv[0] = sys.executable  # the image's python: here, the test's interpreter
        env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
        env.update(spec.environment.variables)
        env.update(spec.runnables[0].environment.variables)
        count = entry.job.task_groups[0].task_count
        env.update(BATCH_TASK_INDEX=str(index), BATCH_TASK_COUNT=str(count))
        env["BATCH_JOB_UID"] = entry.job.uid
        limit = spec.max_run_duration.total_seconds() if spec.max_run_duration else None
        workdir = entry.workdir / f"task-{index}"
        workdir.mkdir(parents=True, exist_ok=True)
        self._set_task(entry, index, TaskState.ASSIGNED, None)
        for _attempt in range(spec.max_retry_count + 1):
            self._set_task(entry, index, TaskState.RUNNING, None)
            with open(entry.workdir / f"task-{index}.log", "wb") as log, self.lock:
                if entry.deleted.is_set():  # checked with the lock _stop takes
                    return
                proc = subprocess.Popen(
                    argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
                entry.procs[index] = proc
            try:
                code = proc.wait(timeout=limit or None)
            except subprocess.TimeoutExpired:
                _kill(proc)
                code = RUN_DURATION_EXIT
            if entry.deleted.is_set():
                return
            if code == 0:
                self._set_task(entry, index, TaskState.SUCCEEDED, code)
                return
            self._set_task(entry, index, TaskState.FAILED, code)

    def _stop(self, entry: _Job) -> None:
        with self.lock:
            entry.deleted.set()
            procs = list(entry.procs.values())
        for proc in procs:
            _kill(proc)

    def _set_job(self, entry: _Job, state: Any) -> None:
        with self.lock:
            status = entry.job.status
            old = status.state.name
            status.state = state
            entry.job.update_time = _now()
            self._event(
                status, f"Job state is set from {old} to {state.name} for job {entry.job.name}"
            )

    def _set_task(self, entry: _Job, index: int, state: Any, code: int | None) -> None:
        with self.lock:
            status = entry.tasks[index].status
            old = status.state.name
            where = f" on {_ZONE}" if state != TaskState.ASSIGNED else ""
            exited = f" with exit code {code}" if code is not None else ""
            if code == RUN_DURATION_EXIT:
                exited += " (the task ran longer than its maxRunDuration)"
            status.state = state
            status.status_events.append(
                batch_v1.StatusEvent(
                    type_="STATUS_CHANGED",
                    description=f"Task state is updated from {old} to {state.name}{where}{exited}.",
                    event_time=_now(),
                    task_state=state,
                )
            )

    @staticmethod
    def _event(status: Any, description: str) -> None:
        status.status_events.append(
            batch_v1.StatusEvent(type_="STATUS_CHANGED", description=description, event_time=_now())
        )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    proc.wait()


class _Handler(BaseHTTPRequestHandler):
    """Routes the REST calls to :class:`BatchStub`."""

    stub: BatchStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def _answer(self, method: str) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        ints = "enum-encoding=int" in ";".join(query.get("$alt", []))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        stub = self.stub
        try:
            path = url.path
            if method == "POST" and (m := _JOBS.fullmatch(path)):
                job_id = (query.get("jobId") or query.get("job_id") or [""])[0]
                out: Any = stub.create(m.group(1), job_id, body)
            elif method == "GET" and (m := _JOBS.fullmatch(path)):
                out = {"jobs": [_json(j, ints) for j in stub.list_jobs(m.group(1))]}
            elif method == "GET" and (m := _JOB.fullmatch(path)):
                out = stub.get(m.group(1))
            elif method == "DELETE" and (m := _JOB.fullmatch(path)):
                out = stub.delete(m.group(1))
            elif method == "GET" and (m := _TASKS.fullmatch(path)):
                out = {"tasks": [_json(t, ints) for t in stub.list_tasks(m.group(1))]}
            elif method == "GET" and (m := _TASK.fullmatch(path)):
                out = stub.get_task(m.group(1))
            else:
                raise ApiError(404, "NOT_FOUND", f"{method} {path} is not a path of this stub")
            code, data = 200, out if isinstance(out, dict) else _json(out, ints)
        except ApiError as exc:
            code, data = exc.code, exc.body()
        payload = json.dumps(data).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _json(message: Any, ints: bool) -> dict[str, Any]:
    """A message as the real API encodes it (camelCase; enums as names, or as numbers when
    the client asked for ``enum-encoding=int``)."""
    text = type(message).to_json(
        message, use_integers_for_enums=ints, always_print_fields_with_no_presence=False
    )
    return json.loads(text)
