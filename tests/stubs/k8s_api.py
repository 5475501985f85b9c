"""A stub Kubernetes API server (and kubelet) on loopback, for the real ``kubernetes`` client.

It implements only the paths :mod:`lret_runner.cloud.kubernetes` and ``lret-runner cloud
k8s`` use: ConfigMaps and batch/v1 Jobs (create, get, list with ``labelSelector``,
delete; a ConfigMap's ``metadata`` patched), pods (list with ``labelSelector``, log with
``tailLines``), ``/version``; errors are ``Status`` objects shaped like the real API's
(404 NotFound, 409 AlreadyExists, 403 Forbidden). Deleting a Job deletes the ConfigMaps it
owns (``ownerReferences``), and with ``propagationPolicy`` its pods, as the garbage
collector would.

It also plays the kubelet: a created Job's indexes run as local subprocesses, at most
``spec.parallelism`` at once, with ``JOB_COMPLETION_INDEX``, the container's ``env`` and
a minimal base environment (PATH, HOME, ...). Every volume mount is a temporary folder
(a ConfigMap's ``data`` and ``binaryData`` written into it) that replaces the mount path in
the command, its arguments and ``workingDir``. The one other rewrite: the image's
``python`` is this interpreter (``sys.executable``), since no image runs here. Pods keep
their phase, labels (``batch.kubernetes.io/job-completion-index`` included), container
state and log (the process's output); the Job's status keeps ``active``, ``succeeded``,
``failed``, ``completedIndexes``, ``failedIndexes`` and a ``Complete``/``Failed``
condition up to date. ``backoffLimitPerIndex`` retries a failed index, except on an exit
code a ``FailIndex`` rule of ``podFailurePolicy`` names.

``StubCluster.refuse_next_job`` makes the next Job creation fail (403), to test the
launcher's cleanup; ``requests`` records every (method, path).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "OPENBLAS_NUM_THREADS")
KINDS = {"configmaps": "ConfigMap", "jobs": "Job", "pods": "Pod"}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def matches(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def ranges(indexes: set[int]) -> str | None:
    """{0, 2, 3, 4} as ``"0,2-4"`` (the Job status's format)."""
    parts, items = [], sorted(indexes)
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        parts.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ",".join(parts) or None


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, name: str = "", kind: str = ""):
        super().__init__(message)
        self.status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": {"name": name, "kind": kind},
            "code": code,
        }


def not_found(plural: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{plural} "{name}" not found', name, plural)


class StubCluster:
    """The server, its objects and its pods' processes (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        # (plural, namespace, name) -> object
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.logs: dict[tuple[str, str], Path] = {}  # (namespace, pod) -> its output
        self.procs: dict[tuple[str, str], subprocess.Popen[bytes]] = {}
        self.deleted_jobs: set[tuple[str, str]] = set()
        self.requests: list[tuple[str, str]] = []
        self.refuse_next_job = False
        self.version = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubCluster:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            procs = list(self.procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig whose current context ("stub") is this server, with a token."""
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "stub", "cluster": {"server": self.url}}],
                    "users": [{"name": "stub", "user": {"token": "stub-token"}}],
                    "contexts": [
                        {
                            "name": "stub",
                            "context": {"cluster": "stub", "user": "stub", "namespace": namespace},
                        }
                    ],
                    "current-context": "stub",
                }
            )
        )
        return path

    def items(self, plural: str, namespace: str | None = None, selector: str = "") -> list[Any]:
        with self.lock:
            return [
                json.loads(json.dumps(obj))
                for (kind, ns, _), obj in sorted(self.objects.items())
                if kind == plural
                and namespace in (None, ns)
                and matches(obj["metadata"].get("labels") or {}, selector)
            ]

    # ------------------------------------------------------------ the API

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _reply(self, code: int, body: Any, text: bool = False) -> None:
                data = body.encode() if text else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null") if length else None
                with cluster.lock:
                    cluster.requests.append((method, url.path))
                try:
                    if self.headers.get("Authorization") != "Bearer stub-token":
                        raise ApiError(401, "Unauthorized", "Unauthorized")
                    code, out = cluster.route(method, url.path.rstrip("/"), query, body)
                except ApiError as exc:
                    self._reply(exc.status["code"], exc.status)
                    return
                self._reply(code, out, text=isinstance(out, str))

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

            def do_PATCH(self) -> None:
                self._serve("PATCH")

        return Handler

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if path == "/version":
            return 200, {
                "major": "1",
                "minor": "33",
                "gitVersion": "v1.33.0-stub",
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.24.0",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if parts[:2] == ["api", "v1"]:
            group, rest = "v1", parts[2:]
        elif parts[:3] == ["apis", "batch", "v1"]:
            group, rest = "batch/v1", parts[3:]
        else:
            raise ApiError(404, "NotFound", f"the server could not find {path}")
        namespace = None
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural, name, sub = rest[0], (rest[1:2] or [None])[0], (rest[2:3] or [None])[0]
        expected = "batch/v1" if plural == "jobs" else "v1"
        if plural not in KINDS or group != expected:
            raise ApiError(404, "NotFound", f"the server could not find {path}")
        selector = query.get("labelSelector", "")
        if name is None and method == "GET":
            kind = KINDS[plural]
            items = self.items(plural, namespace, selector)
            return 200, {
                "kind": f"{kind}List",
                "apiVersion": group,
                "metadata": {"resourceVersion": str(self.version)},
                "items": items,
            }
        if namespace is None:
            raise ApiError(405, "MethodNotAllowed", f"{method} {path} is not supported")
        if name is None and method == "POST":
            return 201, self.create(plural, namespace, body)
        if name is None:
            raise ApiError(405, "MethodNotAllowed", f"{method} {path} is not supported")
        if method == "GET" and plural == "pods" and sub == "log":
            return 200, self.log(namespace, name, query)
        if method == "GET" and sub in (None, "status"):
            with self.lock:
                obj = self.objects.get((plural, namespace, name))
                if obj is None:
                    raise not_found(plural, name)
                return 200, json.loads(json.dumps(obj))
        if method == "PATCH" and sub is None:
            return 200, self.patch(plural, namespace, name, body or {})
        if method == "DELETE" and sub is None:
            return 200, self.delete(plural, namespace, name, {**query, **(body or {})})
        raise ApiError(405, "MethodNotAllowed", f"{method} {path} is not supported")

    def create(self, plural: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        name = meta.get("name", "")
        if plural == "jobs" and self.refuse_next_job:
            self.refuse_next_job = False
            raise ApiError(
                403,
                "Forbidden",
                f'jobs.batch "{name}" is forbidden: exceeded quota: stub-quota',
                name,
                "jobs",
            )
        with self.lock:
            key = (plural, namespace, name)
            if key in self.objects:
                raise ApiError(
                    409, "AlreadyExists", f'{plural} "{name}" already exists', name, plural
                )
            self.version += 1
            meta.update(
                namespace=namespace,
                uid=str(uuid.uuid4()),
                creationTimestamp=now(),
                resourceVersion=str(self.version),
            )
            if plural == "jobs":
                obj["status"] = {"active": 0, "succeeded": 0, "failed": 0, "startTime": now()}
            self.objects[key] = obj
            out = json.loads(json.dumps(obj))
        if plural == "jobs":
            threading.Thread(target=self._run_job, args=(namespace, name), daemon=True).start()
        return out

    def patch(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> Any:
        """A merge patch of ``metadata`` (what the launcher patches: ownerReferences)."""
        with self.lock:
            obj = self.objects.get((plural, namespace, name))
            if obj is None:
                raise not_found(plural, name)
            if set(patch) - {"metadata"}:
                raise ApiError(422, "Invalid", f"the stub patches metadata only, not {patch}")
            obj["metadata"].update(patch.get("metadata", {}))
            self.version += 1
            obj["metadata"]["resourceVersion"] = str(self.version)
            return json.loads(json.dumps(obj))

    def delete(self, plural: str, namespace: str, name: str, options: dict[str, Any]) -> Any:
        with self.lock:
            obj = self.objects.pop((plural, namespace, name), None)
            if obj is None:
                raise not_found(plural, name)
            if plural == "jobs":
                self.deleted_jobs.add((namespace, name))
                uid = obj["metadata"]["uid"]
                for key, owned in list(self.objects.items()):  # the garbage collector
                    refs = owned["metadata"].get("ownerReferences") or []
                    if key[0] == "configmaps" and any(r.get("uid") == uid for r in refs):
                        del self.objects[key]
                if options.get("propagationPolicy") in ("Background", "Foreground"):
                    for pod in self.items("pods", namespace, f"controller-uid={uid}"):
                        pod_name = pod["metadata"]["name"]
                        self.objects.pop(("pods", namespace, pod_name), None)
                        proc = self.procs.get((namespace, pod_name))
                        if proc is not None and proc.poll() is None:
                            proc.kill()
        return {"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}}

    def log(self, namespace: str, pod: str, query: dict[str, str]) -> str:
        with self.lock:
            if ("pods", namespace, pod) not in self.objects:
                raise not_found("pods", pod)
            path = self.logs.get((namespace, pod))
        text = path.read_text(errors="replace") if path and path.exists() else ""
        if "tailLines" in query:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(query["tailLines"]) :]) if int(query["tailLines"]) else ""
        return text

    # ------------------------------------------------------------ the kubelet

    def _run_job(self, namespace: str, name: str) -> None:
        with self.lock:
            job = json.loads(json.dumps(self.objects[("jobs", namespace, name)]))
        spec = job["spec"]
        todo: queue.Queue[int] = queue.Queue()
        for index in range(spec["completions"]):
            todo.put(index)
        workers = [
            threading.Thread(target=self._worker, args=(namespace, job, todo), daemon=True)
            for _ in range(min(spec.get("parallelism") or 1, spec["completions"]))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        with self.lock:
            live = self.objects.get(("jobs", namespace, name))
            if live is None or live["metadata"]["uid"] != job["metadata"]["uid"]:
                return
            status = live["status"]
            failed = status.get("failedIndexes")
            cond = (
                ("Failed", "FailedIndexes", "Job has failed indexes")
                if failed
                else ("Complete", "", "")
            )
            status["conditions"] = [
                {
                    "type": cond[0],
                    "status": "True",
                    "reason": cond[1] or None,
                    "message": cond[2] or None,
                    "lastProbeTime": now(),
                    "lastTransitionTime": now(),
                }
            ]
            status["completionTime"] = now()

    def _worker(self, namespace: str, job: dict[str, Any], todo: queue.Queue[int]) -> None:
        spec = job["spec"]
        retries = spec.get("backoffLimitPerIndex") or 0
        fail_codes = {
            code
            for rule in (spec.get("podFailurePolicy") or {}).get("rules", [])
            if rule.get("action") == "FailIndex" and "onExitCodes" in rule
            for code in rule["onExitCodes"]["values"]
        }
        while True:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            for attempt in range(retries + 1):
                if (namespace, job["metadata"]["name"]) in self.deleted_jobs:
                    return
                code = self._run_pod(namespace, job, index)
                with self.lock:
                    live = self.objects.get(("jobs", namespace, job["metadata"]["name"]))
                    if live is None:
                        return
                    status = live["status"]
                    last = code != 0 and (attempt == retries or code in fail_codes)
                    if code == 0:
                        status["succeeded"] += 1
                        done = {*self._indexes(status.get("completedIndexes")), index}
                        status["completedIndexes"] = ranges(done)
                    else:
                        status["failed"] += 1
                        if last:
                            done = {*self._indexes(status.get("failedIndexes")), index}
                            status["failedIndexes"] = ranges(done)
                if code == 0 or last:
                    break

    @staticmethod
    def _indexes(text: str | None) -> set[int]:
        out: set[int] = set()
        for part in filter(None, (text or "").split(",")):
            low, _, high = part.partition("-")
            out.update(range(int(low), int(high or low) + 1))
        return out

    def _run_pod(self, namespace: str, job: dict[str, Any], index: int) -> int:
        """One pod of ``index``: its folders, its process, its status; the exit code."""
        template = job["spec"]["template"]
        pod_spec = json.loads(json.dumps(template["spec"]))
        container = pod_spec["containers"][0]
        pod_name = f"{job['metadata']['name']}-{index}-{uuid.uuid4().hex[:5]}"
        uid = job["metadata"]["uid"]
        labels = {
            **(template.get("metadata", {}).get("labels") or {}),
            "controller-uid": uid,
            "batch.kubernetes.io/controller-uid": uid,
            "job-name": job["metadata"]["name"],
            "batch.kubernetes.io/job-name": job["metadata"]["name"],
            INDEX_LABEL: str(index),
        }
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "labels": labels,
                "annotations": {INDEX_LABEL: str(index)},
                "creationTimestamp": now(),
            },
            "spec": pod_spec,
            "status": {"phase": "Pending"},
        }
        folder = Path(tempfile.mkdtemp(prefix=f"{pod_name}-", dir=self.root))
        mounts = self._volumes(namespace, pod_spec, container, folder)

        def local(text: str) -> str:
            for mount, where in mounts.items():
                if text == mount or text.startswith(mount + "/"):
                    return str(where) + text[len(mount) :]
            return text

        argv = [local(a) for a in (container.get("command") or []) + (container.get("args") or [])]
        if argv and argv[0] == "python":
            argv[0] = sys.executable  # the only rewrite besides the mounts: no image here
        env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
        env.update({e["name"]: e.get("value", "") for e in container.get("env") or []})
        env.update(JOB_COMPLETION_INDEX=str(index), HOSTNAME=pod_name)
        cwd = local(container["workingDir"]) if container.get("workingDir") else str(folder)
        log = folder / "pod.log"
        with self.lock:
            if (namespace, job["metadata"]["name"]) in self.deleted_jobs:
                return 1
            self.objects[("pods", namespace, pod_name)] = pod
            self.logs[(namespace, pod_name)] = log
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
                )
            self.procs[(namespace, pod_name)] = proc
            pod["status"] = {
                "phase": "Running",
                "startTime": now(),
                "containerStatuses": [
                    self._container(container, {"running": {"startedAt": now()}})
                ],
            }
            job_status = self.objects[("jobs", namespace, job["metadata"]["name"])]["status"]
            job_status["active"] += 1
        code = proc.wait()
        with self.lock:
            pod["status"] = {
                "phase": "Succeeded" if code == 0 else "Failed",
                "startTime": pod["status"]["startTime"],
                "containerStatuses": [
                    self._container(
                        container,
                        {
                            "terminated": {
                                "exitCode": code,
                                "reason": "Completed" if code == 0 else "Error",
                                "startedAt": pod["status"]["startTime"],
                                "finishedAt": now(),
                            }
                        },
                    )
                ],
            }
            live = self.objects.get(("jobs", namespace, job["metadata"]["name"]))
            if live is not None:
                live["status"]["active"] -= 1
        shutil.rmtree(folder / "work", ignore_errors=True)  # the emptyDir; the log stays
        return code

    def _volumes(
        self, namespace: str, pod_spec: dict[str, Any], container: dict[str, Any], folder: Path
    ) -> dict[str, Path]:
        """Each mount path of ``container`` -> a folder: a ConfigMap's files, or empty."""
        volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
        mounts = {}
        for mount in container.get("volumeMounts") or []:
            where = folder / mount["name"]
            where.mkdir()
            source = volumes[mount["name"]]
            if "configMap" in source:
                with self.lock:
                    cm = self.objects.get(("configmaps", namespace, source["configMap"]["name"]))
                if cm is None:
                    raise RuntimeError(f"ConfigMap {source['configMap']['name']} not found")
                for key, text in (cm.get("data") or {}).items():
                    (where / key).write_text(text)
                for key, b64 in (cm.get("binaryData") or {}).items():
                    (where / key).write_bytes(base64.b64decode(b64))
            mounts[mount["mountPath"]] = where
        return mounts

    @staticmethod
    def _container(container: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": container["name"],
            "image": container["image"],
            "imageID": "",
            "ready": "running" in state,
            "restartCount": 0,
            "state": state,
        }


def wait_until(predicate: Any, timeout: float = 30.0) -> None:
    """Poll ``predicate`` until it holds (a test's wait on the kubelet's threads)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the stub cluster did not get there in time")
        time.sleep(0.05)
