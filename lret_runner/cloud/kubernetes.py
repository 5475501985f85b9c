"""``cloud=k8s``: a sweep as one Kubernetes Indexed Job, its job configs in a ConfigMap.

The staged files (:func:`lret_runner.cloud.jobs.stage`) become a ConfigMap (text in
``data``, other input files in ``binaryData``) mounted read-only at :data:`MOUNT` in every
pod; the Job (``completionMode: Indexed``, one completion per job) runs
``python -m lret_runner.cloud.entry MOUNT`` and each pod picks its config by
``JOB_COMPLETION_INDEX``. Both objects carry ``app=lret``, ``lret-batch=<name>`` and
``cloud.labels``. The launcher polls the Job's status (``cloud.poll_seconds`` doubled up to
``cloud.max_poll_seconds``, for at most ``cloud.timeout_minutes``), prints a line as each
index ends, and returns an :class:`~lret_runner.cloud.jobs.Outcome` per index with the end
of a failed index's pod log. A submission that fails part way deletes what it made.

The client comes from the kubeconfig (``$KUBECONFIG``, else ``~/.kube/config``; context
``cloud.context``) or, with neither, the pod's in-cluster config. ``kubernetes`` is imported
only when a cluster is contacted: ``cloud.dry_run`` prints the manifests without it.
"""

from __future__ import annotations

import base64
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from lret_runner.cloud.jobs import Outcome, Staged, polls
from lret_runner.errors import ConfigError, UserError, check_choice

MOUNT = "/etc/lret/jobs"  # where the ConfigMap is mounted in the pods
WORKDIR = "/lret/work"  # the pods' working directory (an emptyDir: writable for any user)
CONTAINER = "lret"
CONFIGMAP_LIMIT = 1024 * 1024  # bytes: the API server refuses a larger ConfigMap
_OVERHEAD = 16 * 1024  # what the rest of the ConfigMap object takes, at most
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
RESERVED_LABELS = ("app", "lret-batch")
LOG_LINES = 100  # lines of a failed pod's log read
REQUEST_SECONDS = 30  # each API call's timeout

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_QUANTITY = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][-+]?\d+)?")
_SUFFIX = {
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(10) ** (3 * (i - 3)) for i, s in enumerate("num kMGTPE") if s != " "},
}


# ---------------------------------------------------------------- settings


def check(cloud: Any) -> None:
    """Names, quantities and labels of ``cloud`` as the API server would take them, and
    (unless ``cloud.dry_run``) a cluster config that loads and a cluster that answers;
    a :class:`ConfigError` naming the setting otherwise. Nothing is created."""
    _check_name("cloud.namespace", cloud.namespace, _DNS_LABEL, 63, "a DNS-1123 label")
    image = str(cloud.image or "")
    if not image.strip() or re.search(r"\s", image):
        raise ConfigError(f"cloud.image={cloud.image!r} is invalid: must be an image reference")
    check_choice("cloud.image_pull_policy", cloud.image_pull_policy, PULL_POLICIES)
    quantities = {}
    for key in ("cpu_request", "memory_request", "cpu_limit", "memory_limit"):
        if cloud[key] is not None:
            quantities[key] = quantity(f"cloud.{key}", cloud[key])
    for kind in ("cpu", "memory"):
        request, limit = quantities.get(f"{kind}_request"), quantities.get(f"{kind}_limit")
        if request is not None and limit is not None and request > limit:
            raise ConfigError(
                f"cloud.{kind}_request={cloud[f'{kind}_request']} is invalid: must be at most "
                f"cloud.{kind}_limit={cloud[f'{kind}_limit']}"
            )
    _check_labels("cloud.node_selector", cloud.node_selector)
    _check_labels("cloud.labels", cloud.labels)
    for key in RESERVED_LABELS:
        if key in cloud.labels:
            raise ConfigError(
                f"cloud.labels.{key} is invalid: the runner sets {', '.join(RESERVED_LABELS)}"
            )
    if cloud.service_account is not None:
        _check_name(
            "cloud.service_account", cloud.service_account, _DNS_SUBDOMAIN, 253, "a DNS subdomain"
        )
    if cloud.context is not None and not str(cloud.context).strip():
        raise ConfigError("cloud.context='' is invalid: a kubeconfig context, or null")
    if not cloud.dry_run:
        _reachable(api_client(cloud))


def quantity(field: str, value: Any) -> Decimal:
    """A Kubernetes quantity ("1", "500m", "1Gi", "1e3") as a number; else a ConfigError."""
    match = _QUANTITY.fullmatch(str(value))
    if match is None:
        raise ConfigError(
            f"{field}={value!r} is invalid: must be a Kubernetes quantity such as 1, 500m, "
            "512Mi or 4Gi"
        )
    number, suffix = Decimal(match.group(1)), match.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return number * Decimal(10) ** int(suffix[1:])
    return number * _SUFFIX.get(suffix, Decimal(1))


def _check_name(field: str, value: Any, pattern: re.Pattern[str], most: int, what: str) -> None:
    text = str(value)
    if len(text) > most or pattern.fullmatch(text) is None:
        raise ConfigError(
            f"{field}={value!r} is invalid: must be {what} (lower-case letters, digits and '-', "
            f"at most {most} characters)"
        )


def _check_labels(field: str, labels: Mapping[str, Any]) -> None:
    """Label keys (``[prefix/]name``) and values as Kubernetes accepts them."""
    for key, value in labels.items():
        prefix, _, name = str(key).rpartition("/")
        valid_prefix = not prefix or (
            len(prefix) <= 253 and _DNS_SUBDOMAIN.fullmatch(prefix) is not None
        )
        if not name or len(name) > 63 or not _LABEL_NAME.fullmatch(name) or not valid_prefix:
            raise ConfigError(
                f"{field} key {key!r} is invalid: must be [DNS-prefix/]name, the name at most "
                "63 letters, digits, '-', '_' or '.' starting and ending alphanumeric"
            )
        text = "" if value is None else str(value)
        if len(text) > 63 or not _LABEL_NAME.fullmatch(text):
            raise ConfigError(
                f"{field}.{key}={value!r} is invalid: a label value is at most 63 letters, "
                "digits, '-', '_' or '.' starting and ending alphanumeric"
            )


# ---------------------------------------------------------------- manifests


def configmap_manifest(staged: Staged, cloud: Any) -> dict[str, Any]:
    """The ConfigMap of the staged files: UTF-8 text in ``data``, other files base64 in
    ``binaryData`` (the API refuses bytes in ``data``); a UserError when it is too big."""
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for name, content in staged.files.items():
        try:
            data[name] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[name] = base64.b64encode(content).decode("ascii")
    size = sum(len(k) + len(v.encode()) for k, v in data.items())
    size += sum(len(k) + len(v) for k, v in binary.items())
    if size + _OVERHEAD > CONFIGMAP_LIMIT:
        raise UserError(
            f"cloud=k8s: the sweep's {staged.count} job configs and input files take "
            f"{size} bytes, more than a ConfigMap holds ({CONFIGMAP_LIMIT} bytes with its "
            "metadata): split the sweep into smaller ones or use smaller input files"
        )
    manifest: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(staged, cloud),
        "data": data,
    }
    if binary:
        manifest["binaryData"] = binary
    return manifest


def job_manifest(staged: Staged, cloud: Any) -> dict[str, Any]:
    """The Indexed Job: one completion per job, each pod running the entry on the mounted
    ConfigMap. Runs that fail (exit 1) fail their index at once; retries
    (``backoff_limit_per_index``) are for pods that died, and evictions do not count."""
    resources: dict[str, dict[str, str]] = {
        "requests": {"cpu": str(cloud.cpu_request), "memory": str(cloud.memory_request)}
    }
    limits = {k: str(cloud[f"{k}_limit"]) for k in ("cpu", "memory") if cloud[f"{k}_limit"]}
    if limits:
        resources["limits"] = limits
    container = {
        "name": CONTAINER,
        "image": str(cloud.image),
        "imagePullPolicy": str(cloud.image_pull_policy),
        "command": ["python", "-m", "lret_runner.cloud.entry", MOUNT],
        "workingDir": WORKDIR,
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
        "resources": resources,
        "volumeMounts": [
            {"name": "jobs", "mountPath": MOUNT, "readOnly": True},
            {"name": "work", "mountPath": WORKDIR},
        ],
    }
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [
            {"name": "jobs", "configMap": {"name": staged.name}},
            {"name": "work", "emptyDir": {}},
        ],
    }
    if cloud.service_account:
        pod["serviceAccountName"] = str(cloud.service_account)
    if cloud.node_selector:
        pod["nodeSelector"] = {str(k): str(v) for k, v in cloud.node_selector.items()}
    spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": staged.count,
        "parallelism": min(staged.count, cloud.parallelism or staged.count),
        "backoffLimitPerIndex": int(cloud.backoff_limit_per_index),
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailIndex",
                    "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [1]},
                },
                {
                    "action": "Ignore",
                    "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                },
            ]
        },
        "template": {"metadata": {"labels": labels(staged, cloud)}, "spec": pod},
    }
    if cloud.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = int(cloud.ttl_seconds_after_finished)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(staged, cloud),
        "spec": spec,
    }


def labels(staged: Staged, cloud: Any) -> dict[str, str]:
    return {**{str(k): str(v) for k, v in cloud.labels.items()}, **staged.labels}


def _metadata(staged: Staged, cloud: Any) -> dict[str, Any]:
    return {"name": staged.name, "namespace": str(cloud.namespace), "labels": labels(staged, cloud)}


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    """Manifests as one YAML stream (``kubectl apply -f`` takes it); text as blocks."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> Any:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return "---\n".join(
        yaml.dump(m, Dumper=Dumper, sort_keys=False, width=1000, allow_unicode=True)
        for m in manifests
    )


# ---------------------------------------------------------------- the cluster


def api_client(cloud: Any) -> Any:
    """A client of the cluster: the kubeconfig's (``$KUBECONFIG``, else ``~/.kube/config``;
    ``cloud.context``), else the in-cluster config; a ConfigError saying which failed."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise ConfigError(
            "cloud=k8s needs the Kubernetes client: pip install 'lret_runner[cloud]'"
        ) from None

    configuration = client.Configuration()
    files = os.environ.get("KUBECONFIG", "")
    default = Path("~/.kube/config").expanduser()
    if files or default.is_file() or cloud.context is not None:
        where = f"KUBECONFIG={files}" if files else str(default)
        try:
            config.load_kube_config(
                config_file=files or str(default),
                context=cloud.context,
                client_configuration=configuration,
            )
        except (config.ConfigException, OSError, ValueError) as exc:
            setting = f"cloud.context={cloud.context}" if cloud.context else "the current context"
            raise ConfigError(
                f"cloud=k8s: the kubeconfig ({where}, {setting}) cannot be loaded: {exc}"
            ) from None
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            raise ConfigError(
                "cloud=k8s found no cluster config: KUBECONFIG is not set, ~/.kube/config does "
                "not exist and this is not a pod (set KUBECONFIG, or cloud.dry_run=true to "
                "print the manifests)"
            ) from None
    return client.ApiClient(configuration)


def _reachable(api: Any) -> None:
    from kubernetes import client

    try:
        client.VersionApi(api).get_code(_request_timeout=5, _preload_content=False)
    except Exception as exc:  # urllib3's connection errors, or the API's refusal
        raise ConfigError(
            f"cloud=k8s: the cluster at {api.configuration.host} does not answer "
            f"({_brief(exc)}): check the kubeconfig's server or cloud.context"
        ) from None


def _brief(exc: Exception) -> str:
    """An API error as one line (the Status message when the server sent one)."""
    import json

    status, body = getattr(exc, "status", None), getattr(exc, "body", None)
    if body:
        try:
            return f"{status} {json.loads(body).get('message', '')}".strip()
        except (ValueError, AttributeError):
            pass
    if status:
        return f"{status} {getattr(exc, 'reason', '')}".strip()
    text = str(exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__


def api_error(exc: Exception, what: str) -> UserError:
    return UserError(f"Kubernetes API: {what}: {_brief(exc)}")


def pod_log(core: Any, pod: str, namespace: str, tail_lines: int | None = LOG_LINES) -> str:
    """A pod's log as text ("" when it cannot be read); unparsed, since the client would
    turn a log that happens to be JSON into a Python repr."""
    try:
        resp = core.read_namespaced_pod_log(
            pod,
            namespace,
            container=CONTAINER,
            tail_lines=tail_lines,
            _preload_content=False,
            _request_timeout=REQUEST_SECONDS,
        )
    except Exception:  # a pod not yet started, or gone
        return ""
    return resp.data.decode("utf-8", errors="replace")


def submit(api: Any, configmap: dict[str, Any], job: dict[str, Any]) -> None:
    """Create the ConfigMap, then the Job, then make the Job the ConfigMap's owner (the
    cluster deletes it with the Job, after ``ttlSecondsAfterFinished`` too); the ConfigMap
    is deleted when the Job is refused."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    try:
        core.create_namespaced_config_map(namespace, configmap, _request_timeout=REQUEST_SECONDS)
    except ApiException as exc:
        raise api_error(exc, f"creating ConfigMap {namespace}/{name}") from None
    try:
        created = batch.create_namespaced_job(namespace, job, _request_timeout=REQUEST_SECONDS)
    except BaseException as exc:
        try:
            core.delete_namespaced_config_map(name, namespace, _request_timeout=REQUEST_SECONDS)
            undone = f"ConfigMap {name} deleted"
        except Exception as again:
            undone = f"ConfigMap {name} left behind ({_brief(again)}): delete it"
        if isinstance(exc, ApiException):
            raise api_error(exc, f"creating Job {namespace}/{name} ({undone})") from None
        print(f"k8s: {name}: the Job was not created; {undone}", file=sys.stderr)
        raise
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": name,
        "uid": created.metadata.uid,
        "blockOwnerDeletion": False,
    }
    try:
        core.patch_namespaced_config_map(
            name,
            namespace,
            {"metadata": {"ownerReferences": [owner]}},
            _request_timeout=REQUEST_SECONDS,
        )
    except ApiException as exc:  # the sweep runs all the same
        print(
            f"k8s: {name}: the ConfigMap will outlive the Job ({_brief(exc)}): "
            f"lret-runner cloud k8s delete {name} -n {namespace} deletes both",
            file=sys.stderr,
        )


def delete(api: Any, namespace: str, name: str) -> list[tuple[str, bool]]:
    """Delete a sweep's Job (its pods in the background) and ConfigMap: (kind, whether it
    was there) of each."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    calls = (
        ("Job", batch.delete_namespaced_job, {"propagation_policy": "Background"}),
        ("ConfigMap", core.delete_namespaced_config_map, {}),
    )
    done = []
    for kind, call, options in calls:
        try:
            call(name, namespace, _request_timeout=REQUEST_SECONDS, **options)
            done.append((kind, True))
        except ApiException as exc:
            if exc.status != 404:
                raise api_error(exc, f"deleting {kind} {namespace}/{name}") from None
            done.append((kind, False))
    return done


def run(
    staged: Staged,
    cloud: Any,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Outcome] | None:
    """Submit the sweep, wait for every index and return their outcomes (None with
    ``cloud.dry_run``: the manifests are printed on stdout and nothing is contacted)."""
    configmap, job = configmap_manifest(staged, cloud), job_manifest(staged, cloud)
    if cloud.dry_run:
        print(to_yaml([configmap, job]), end="")
        return None
    api = api_client(cloud)
    submit(api, configmap, job)
    namespace = str(cloud.namespace)
    print(f"k8s: {staged.name}: Job created in namespace {namespace}", file=sys.stderr)
    watch = JobWatch(api, namespace, staged.name, staged.count)
    try:
        status = wait(watch, cloud, clock=clock, sleep=sleep)
    except KeyboardInterrupt:  # the sweep is cancelled: so are its pods
        try:
            delete(api, namespace, staged.name)
            done = "the Job and its pods are deleted"
        except Exception as exc:
            done = f"the Job is left running ({exc}): lret-runner cloud k8s delete {staged.name}"
        print(f"k8s: {staged.name}: interrupted; {done}", file=sys.stderr)
        raise
    return watch.outcomes(status)


def wait(
    watch: Any,
    cloud: Any,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> JobStatus:
    """Poll ``watch`` until its Job ends or ``cloud.timeout_minutes`` pass (then the Job is
    left running and its unfinished indexes are reported as such)."""
    for out_of_time in polls(cloud, sleep=sleep, clock=clock):
        status = watch.poll()
        if status.done:
            return status
        if out_of_time:
            status.timed_out = True
            return status
    raise AssertionError("polls() never ends")


class JobStatus:
    """What the Job's status says: the indexes that ended, and whether the Job did."""

    def __init__(self, job: Any | None) -> None:
        status = job.status if job is not None else None
        self.gone = job is None
        self.completed = parse_indexes(getattr(status, "completed_indexes", None))
        self.failed = parse_indexes(getattr(status, "failed_indexes", None))
        self.condition: Any = None
        for cond in getattr(status, "conditions", None) or []:
            if cond.type in ("Complete", "Failed") and cond.status == "True":
                self.condition = cond
        self.timed_out = False

    @property
    def done(self) -> bool:
        return self.gone or self.condition is not None


def parse_indexes(text: str | None) -> set[int]:
    """``"0,2-4"`` (the Job's completedIndexes / failedIndexes) as {0, 2, 3, 4}."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if part.strip():
            low, _, high = part.partition("-")
            out.update(range(int(low), int(high or low) + 1))
    return out


class JobWatch:
    """One Job of a sweep: its status, a line per index as it ends, its outcomes."""

    def __init__(self, api: Any, namespace: str, name: str, count: int) -> None:
        from kubernetes import client

        self.batch, self.core = client.BatchV1Api(api), client.CoreV1Api(api)
        self.namespace, self.name, self.count = namespace, name, count
        self.seen: set[int] = set()

    def poll(self) -> JobStatus:
        from kubernetes.client.exceptions import ApiException

        try:
            job = self.batch.read_namespaced_job_status(
                self.name, self.namespace, _request_timeout=REQUEST_SECONDS
            )
        except ApiException as exc:
            if exc.status != 404:
                raise api_error(exc, f"reading Job {self.namespace}/{self.name}") from None
            job = None
        status = JobStatus(job)
        for index in sorted((status.completed | status.failed) - self.seen):
            self.seen.add(index)
            state = "FINISHED" if index in status.completed else "FAILED"
            failed = len(status.failed)
            print(
                f"k8s: {self.name}: index {index} {state} ({len(self.seen)}/{self.count} done"
                f"{f', {failed} failed' if failed else ''})",
                file=sys.stderr,
                flush=True,
            )
        return status

    def outcomes(self, status: JobStatus) -> list[Outcome]:
        out = []
        for index in range(self.count):
            if index in status.completed:
                out.append(Outcome(index, True))
                continue
            if status.gone:
                reason = f"the Job {self.name} was deleted before this index ended"
            elif status.timed_out:
                reason = (
                    "still running when cloud.timeout_minutes ran out; the Job is left running "
                    f"(lret-runner cloud k8s delete {self.name} -n {self.namespace} stops it)"
                )
            elif index not in status.failed and status.condition is not None:
                reason = f"the Job failed: {status.condition.reason}: {status.condition.message}"
            else:
                reason = "its pod failed"
            pod_reason, log = self._pod_end(index) if not status.gone else ("", "")
            out.append(Outcome(index, False, f"{reason}{pod_reason}", log))
        return out

    def _pod_end(self, index: int) -> tuple[str, str]:
        """The last pod of ``index``: how its container ended, and the end of its log."""
        try:
            pods = self.core.list_namespaced_pod(
                self.namespace,
                label_selector=f"lret-batch={self.name},{INDEX_LABEL}={index}",
                _request_timeout=REQUEST_SECONDS,
            ).items
        except Exception:  # the outcome stands without its details
            return "", ""
        if not pods:
            return "", ""
        pod = max(
            pods, key=lambda p: (p.status.phase == "Failed", str(p.metadata.creation_timestamp))
        )
        why = ""
        for cs in pod.status.container_statuses or []:
            ended = cs.state.terminated if cs.state else None
            if ended is not None:
                why = f" ({ended.reason or 'ended'}, exit code {ended.exit_code})"
        return f"{why} in pod {pod.metadata.name}", pod_log(
            self.core, pod.metadata.name, self.namespace
        )
