"""``lret-runner cloud k8s list|logs|delete``: the Kubernetes Jobs of ``cloud=k8s`` sweeps.

A BATCH is a Job's name (``lret-<batch>-<first job>``, as ``list`` shows it) or the batch
run's id (any prefix of at least 8 characters: every Job of that batch). The cluster is
the kubeconfig's (``$KUBECONFIG``, else ``~/.kube/config``; ``--context``) or, in a pod, the
in-cluster one; ``kubernetes`` is imported only when a command runs.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from lret_runner.cli._output import Context, plural

if TYPE_CHECKING:
    from rich.console import Console


def _api(args: argparse.Namespace) -> Any:
    from lret_runner.cloud.kubernetes import api_client

    return api_client(SimpleNamespace(context=args.context))


def _age(created: datetime | None) -> str:
    """``3d4h``, ``5h12m``, ``7m3s`` or ``12s`` since ``created``."""
    if created is None:
        return "-"
    seconds = max(0, int((datetime.now(UTC) - created).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _state(job: Any) -> str:
    for cond in job.status.conditions or []:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return cond.type
    return "Running"


def _jobs(api: Any, namespace: str, batch: str | None = None) -> list[Any]:
    """The runner's Jobs in ``namespace`` (those of ``batch`` only, when given), by name;
    a UserError when ``batch`` matches none."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from lret_runner.cloud.kubernetes import REQUEST_SECONDS, api_error
    from lret_runner.errors import UserError

    try:
        jobs = (
            client.BatchV1Api(api)
            .list_namespaced_job(
                namespace, label_selector="app=lret", _request_timeout=REQUEST_SECONDS
            )
            .items
        )
    except ApiException as exc:
        raise api_error(exc, f"listing Jobs in namespace {namespace}") from None
    if batch is not None:
        exact = [j for j in jobs if j.metadata.name == batch]
        prefix = f"lret-{batch[:8]}-" if len(batch) >= 8 else None
        jobs = exact or [j for j in jobs if prefix and j.metadata.name.startswith(prefix)]
        if not jobs:
            raise UserError(
                f"no Job of batch {batch} in namespace {namespace} "
                "(`lret-runner cloud k8s list` shows them)"
            )
    return sorted(jobs, key=lambda j: j.metadata.name)


def list_(ctx: Context, args: argparse.Namespace) -> int:
    jobs = _jobs(_api(args), args.namespace)
    rows = [
        {
            "name": j.metadata.name,
            "namespace": j.metadata.namespace,
            "completions": j.spec.completions,
            "succeeded": j.status.succeeded or 0,
            "failed": j.status.failed or 0,
            "active": j.status.active or 0,
            "state": _state(j),
            "created": j.metadata.creation_timestamp,
            "age": _age(j.metadata.creation_timestamp),
        }
        for j in jobs
    ]

    def show(console: Console) -> None:
        from rich.table import Table

        if not rows:
            ctx.text(f"no lret Jobs in namespace {args.namespace}")
            return
        table = Table(title=f"{plural(len(rows), 'Job')} in namespace {args.namespace}")
        for column in ("name", "completions", "succeeded", "failed", "active", "state", "age"):
            table.add_column(column, justify="right" if column != "name" else "left")
        for row in rows:
            table.add_row(
                row["name"],
                *(str(row[k]) for k in ("completions", "succeeded", "failed", "active")),
                row["state"],
                row["age"],
            )
        console.print(table)

    return ctx.emit(rows, show)


def logs(ctx: Context, args: argparse.Namespace) -> int:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from lret_runner.cloud.kubernetes import INDEX_LABEL, REQUEST_SECONDS, api_error, pod_log
    from lret_runner.errors import UserError

    api = _api(args)
    core = client.CoreV1Api(api)
    out = []
    for job in _jobs(api, args.namespace, args.batch):
        selector = f"lret-batch={job.metadata.name}"
        if args.index is not None:
            selector += f",{INDEX_LABEL}={args.index}"
        try:
            pods = core.list_namespaced_pod(
                args.namespace, label_selector=selector, _request_timeout=REQUEST_SECONDS
            ).items
        except ApiException as exc:
            raise api_error(exc, f"listing the pods of Job {job.metadata.name}") from None
        for pod in sorted(
            pods,
            key=lambda p: (
                int(p.metadata.labels.get(INDEX_LABEL, -1)),
                str(p.metadata.creation_timestamp),
            ),
        ):
            out.append(
                {
                    "job": job.metadata.name,
                    "pod": pod.metadata.name,
                    "index": int(pod.metadata.labels.get(INDEX_LABEL, -1)),
                    "phase": pod.status.phase,
                    "log": pod_log(core, pod.metadata.name, args.namespace, args.tail),
                }
            )
    if not out:
        which = f" of index {args.index}" if args.index is not None else ""
        raise UserError(f"no pods{which} of batch {args.batch} (gone after the Job's TTL?)")

    def show(console: Console) -> None:
        for item in out:
            print(f"==> {item['pod']} (index {item['index']}, {item['phase']}) <==")
            print(item["log"], end="" if item["log"].endswith("\n") or not item["log"] else "\n")

    return ctx.emit(out, show)


def delete(ctx: Context, args: argparse.Namespace) -> int:
    from lret_runner.cloud.kubernetes import delete as delete_batch

    api = _api(args)
    done = [
        {"kind": kind, "name": job.metadata.name, "deleted": there}
        for job in _jobs(api, args.namespace, args.batch)
        for kind, there in delete_batch(api, args.namespace, job.metadata.name)
    ]

    def show(console: Console) -> None:
        for item in done:
            what = "deleted" if item["deleted"] else "already gone"
            ctx.text(f"{item['kind']} {args.namespace}/{item['name']} {what}")

    return ctx.emit(done, show)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    cloud = commands.add_parser(
        "cloud",
        help="the jobs of remote sweeps (cloud=k8s)",
        description="The jobs remote engines run for sweeps.",
    )
    engines = cloud.add_subparsers(dest="engine", metavar="ENGINE", required=True)
    k8s = engines.add_parser(
        "k8s",
        help="Kubernetes Jobs of cloud=k8s sweeps",
        description="The Kubernetes Jobs of cloud=k8s sweeps (label app=lret), from the "
        "kubeconfig's cluster ($KUBECONFIG, else ~/.kube/config) or the in-cluster one.",
    )
    actions = k8s.add_subparsers(dest="action", metavar="ACTION", required=True)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("-n", "--namespace", default="default", help="(default: default)")
    where.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parents = [common, where]
    p = actions.add_parser(
        "list", parents=parents, help="the Jobs: completions, succeeded, failed, age"
    )
    p.set_defaults(func=list_)
    p = actions.add_parser("logs", parents=parents, help="the pod logs of a batch")
    p.set_defaults(func=logs)
    p.add_argument("batch", metavar="BATCH", help="a Job name, or a batch run id (8+ chars)")
    p.add_argument("--index", type=int, default=None, help="only this array index")
    p.add_argument("--tail", type=int, default=None, metavar="N", help="the last N lines only")
    p = actions.add_parser(
        "delete", parents=parents, help="delete a batch's Jobs (and their pods) and ConfigMaps"
    )
    p.set_defaults(func=delete)
    p.add_argument("batch", metavar="BATCH", help="a Job name, or a batch run id (8+ chars)")
