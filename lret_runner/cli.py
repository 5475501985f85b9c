"""``lret-runner``: sessions, runs, lineage and comparisons from the MLflow store.

::

    lret-runner sessions create NAME [--description D] [--timeout-hours H]
    lret-runner sessions list [--all]
    lret-runner sessions show NAME [--limit N]
    lret-runner sessions close NAME | sessions resume NAME
    lret-runner runs list [--session S] [--tag K=V ...] [--status STATUS] [--limit N]
    lret-runner runs show RUN_ID
    lret-runner runs tag RUN_ID KEY=VALUE|KEY ...
    lret-runner lineage RUN_ID
    lret-runner compare RUN_ID RUN_ID [...] [--plot FILE]

Every subcommand takes ``--json`` (machine-readable output instead of tables) and
``--tracking-uri`` (default: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlruns/mlflow.db``).
A run id may be abbreviated to any unique prefix (``runs list`` shows 8 characters).
User errors (unknown session or run, bad arguments) print one line on stderr and exit 2.

Only argparse and the standard library are imported at module load; MLflow, rich and
matplotlib are imported by the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lret_runner import tracking

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from rich.console import Console

PROG = "lret-runner"
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED", "RUNNING")
# (metric, higher is better) for `compare`
COMPARE_METRICS: tuple[tuple[str, bool], ...] = (
    ("simulation_time_seconds", False),
    ("fidelity", True),
    ("final_rank", False),
    ("memory_used_mb", False),
    ("truncation_error", False),
)
LINEAGE_IGNORED_PARAMS = frozenset({"lineage.parent"})  # differs along every chain by definition
SUMMARY_SECTIONS = ("circuit.", "noise.", "simulator.", "backend.")
SUMMARY_KEYS = ("run.shots", "run.seed", "session.name", "lineage.parent")
MAX_LINEAGE = 1000
_PAGE = 50_000  # MLflow's largest search page on SQL stores


class CliError(Exception):
    """A user error: printed as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """Argument errors raise :class:`CliError` (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise CliError(f"{message} (see `{self.prog} --help`)")


# ------------------------------------------------------------------------------ context


class _Context:
    """What a command needs: the store, the output mode and a console."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.uri: str = getattr(args, "tracking_uri", None) or tracking.default_uri()
        self.as_json: bool = bool(getattr(args, "json", False))
        self._tracker: tracking.MlflowTracker | None = None
        self._console: Console | None = None

    def tracker(self, create: bool = False) -> tracking.MlflowTracker:
        """The tracker; a missing SQLite store is an error unless ``create`` (no stray mlruns/)."""
        if self._tracker is None:
            if self.uri.startswith("sqlite:///") and not create:
                db = Path(self.uri.removeprefix("sqlite:///"))
                if not db.exists():
                    raise CliError(
                        f"no MLflow store at {db}: run an experiment first, or point "
                        "--tracking-uri / MLFLOW_TRACKING_URI at an existing store"
                    )
            self._tracker = tracking.MlflowTracker(self.uri)
        return self._tracker

    @property
    def client(self) -> MlflowClient:
        return self.tracker().client

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
            self._console = Console(highlight=False, width=width)
        return self._console

    def emit(self, data: Any, show: Callable[[Console], None]) -> int:
        """``data`` as JSON with ``--json``, else ``show(console)``."""
        if self.as_json:
            print(json.dumps(_jsonable(data), indent=2, default=str, allow_nan=False))
        else:
            show(self.console)
        return 0

    def text(self, console: Console, line: str) -> None:
        console.print(line, markup=False, highlight=False)


# ------------------------------------------------------------------------------ helpers


def _jsonable(value: Any) -> Any:
    """``value`` with NaN/inf floats as null (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _iso(ms: int | None) -> str | None:
    if not ms:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _when(iso: str | None) -> str | None:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS`` (UTC) for tables."""
    if not iso:
        return None
    from datetime import UTC, datetime

    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _short(run_id: str) -> str:
    return run_id[:8]


def _escape(value: Any) -> Any:
    """Free text for rich cells (``[x]`` is not markup)."""
    if isinstance(value, str):
        from rich.markup import escape

        return escape(value)
    return value


def _kv_table(pairs: Iterable[tuple[str, Any]], title: str | None = None) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in pairs:
        table.add_row(Text(key), Text("-" if value is None else str(value)))
    return table


def _experiment_ids(client: MlflowClient) -> list[str]:
    ids, token = [], None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        ids += [str(e.experiment_id) for e in page]
        token = page.token
        if not token:
            return ids


def _experiment_names(client: MlflowClient) -> dict[str, str]:
    names, token = {}, None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        names.update({str(e.experiment_id): e.name for e in page})
        token = page.token
        if not token:
            return names


def _search_runs(
    client: MlflowClient,
    experiment_ids: Sequence[str],
    filter_string: str = "",
    limit: int | None = None,
) -> list[Run]:
    """Runs of the experiments, newest first, following pages up to ``limit``."""
    if not experiment_ids:
        return []
    out: list[Run] = []
    token = None
    while limit is None or len(out) < limit:
        size = _PAGE if limit is None else min(_PAGE, limit - len(out))
        page = client.search_runs(
            list(experiment_ids),
            filter_string,
            max_results=size,
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        out += list(page)
        token = page.token
        if not token:
            break
    return out


def _quote(value: str, what: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise CliError(f"{what} {value!r} is invalid: it cannot hold both quote characters")


def _parse_tag(text: str) -> tuple[str, str]:
    """``key=value``, or a bare ``key`` meaning ``true``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not key:
        raise CliError(f"tag {text!r} is invalid: expected KEY=VALUE or KEY")
    return key, value if sep else "true"


def _get_run(ctx: _Context, ref: str) -> Run:
    """A run by full id or unique id prefix; unknown or ambiguous ids are user errors."""
    from mlflow.exceptions import MlflowException

    ref = ref.strip()
    if not ref:
        raise CliError("run id is empty")
    client = ctx.client
    try:
        return client.get_run(ref)
    except MlflowException:
        pass
    if len(ref) < 32:
        matches = [
            r
            for r in _search_runs(client, _experiment_ids(client))
            if r.info.run_id.startswith(ref)
        ]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            shown = ", ".join(r.info.run_id for r in matches[:4])
            raise CliError(
                f"run id prefix {ref!r} is ambiguous: it matches {len(matches)} runs ({shown}, ...)"
            )
    raise CliError(f"run {ref!r} does not exist in the tracking store {ctx.uri}")


def _run_row(run: Run, names: Mapping[str, str]) -> dict[str, Any]:
    info, data = run.info, run.data
    metrics = data.metrics
    return {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "session": names.get(str(info.experiment_id), str(info.experiment_id)),
        "status": info.status,
        "circuit": data.tags.get("circuit") or data.params.get("circuit.name"),
        "n_qubits": tracking.param_value(data.params.get("circuit.n_qubits")),
        "backend_used": data.tags.get("backend_used"),
        "simulation_time_seconds": metrics.get("simulation_time_seconds"),
        "fidelity": metrics.get("fidelity"),
        "final_rank": metrics.get("final_rank"),
        "started": _iso(info.start_time),
        "batch": data.tags.get(tracking.BATCH_TAG) == "true",
    }


def _runs_table(rows: Sequence[Mapping[str, Any]], title: str | None = None) -> Any:
    from lret_runner import ascii

    display = [
        {
            "run id": _short(r["run_id"]),
            "session": _escape(r["session"]),
            "status": r["status"],
            "circuit": _escape(r["circuit"]),
            "n": r["n_qubits"],
            "backend_used": r["backend_used"],
            "time (s)": r["simulation_time_seconds"],
            "fidelity": r["fidelity"],
            "final rank": None if r["final_rank"] is None else int(r["final_rank"]),
            "started": _when(r["started"]),
        }
        for r in rows
    ]
    columns = [
        "run id",
        "session",
        "status",
        "circuit",
        "n",
        "backend_used",
        "time (s)",
        "fidelity",
        "final rank",
        "started",
    ]
    return ascii.rows_table(display, columns, title=title)


def _parent_of(run: Run) -> str | None:
    """The lineage parent: the ``lret.lineage.parent`` tag, else the ``lineage.parent`` param."""
    parent = run.data.tags.get(tracking.LINEAGE_PARENT) or run.data.params.get("lineage.parent")
    if parent is None or parent.strip() in ("", "None", "null"):
        return None
    return parent.strip()


def _changes(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, dict[str, str | None]]:
    keys = sorted((set(old) | set(new)) - LINEAGE_IGNORED_PARAMS)
    return {k: {"old": old.get(k), "new": new.get(k)} for k in keys if old.get(k) != new.get(k)}


def _improvement(first: float | None, best: float | None, higher_is_better: bool) -> float | None:
    """How much better the best run is than the first, in percent of the first (>= 0)."""
    if first is None or best is None:
        return None
    if best == first:
        return 0.0
    if first == 0:
        return None
    gain = best - first if higher_is_better else first - best
    return 100.0 * gain / abs(first)


# --------------------------------------------------------------------------- sessions


def _session_rows(ctx: _Context, infos: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    client = ctx.client
    counts: dict[str, int] = {}
    for run in _search_runs(client, [s["id"] for s in infos]):
        eid = str(run.info.experiment_id)
        counts[eid] = counts.get(eid, 0) + 1
    return [{**s, "runs": counts.get(s["id"], 0)} for s in infos]


def cmd_sessions_create(ctx: _Context, args: argparse.Namespace) -> int:
    tracker = ctx.tracker(create=True)
    tracker.create_session(args.name, args.description, args.timeout_hours)
    info = tracker.session(args.name)

    def show(console: Console) -> None:
        ctx.text(console, f"created session {info['name']!r} (MLflow experiment {info['id']})")
        console.print(_session_table(info))

    return ctx.emit(info, show)


def _session_table(info: Mapping[str, Any], extra: Iterable[tuple[str, Any]] = ()) -> Any:
    timeout = info.get("timeout_hours")
    return _kv_table(
        [
            ("name", info["name"]),
            ("status", info["status"]),
            ("description", info.get("description") or ""),
            ("experiment id", info["id"]),
            ("created", _when(info.get("created"))),
            ("last access", _when(info.get("last_access"))),
            ("idle timeout", f"{timeout:g} h" if timeout else "never"),
            *extra,
        ]
    )


def cmd_sessions_list(ctx: _Context, args: argparse.Namespace) -> int:
    from lret_runner import ascii

    rows = _session_rows(ctx, ctx.tracker().sessions(include_all=args.all))
    if not args.all:
        # MLflow's own empty "Default" experiment is not a session anyone made
        rows = [
            r for r in rows if not (r["id"] == "0" and r["name"] == "Default" and r["runs"] == 0)
        ]
    rows.sort(key=lambda r: r.get("last_access") or "", reverse=True)

    def show(console: Console) -> None:
        if not rows:
            hint = "" if args.all else " (closed and expired ones are hidden: --all shows them)"
            ctx.text(console, f"no sessions{hint}")
            return
        display = [
            {
                "name": _escape(r["name"]),
                "status": r["status"],
                "description": _escape(r["description"]),
                "runs": r["runs"],
                "last access": _when(r["last_access"]),
            }
            for r in rows
        ]
        title = "sessions" if args.all else "open sessions (--all: closed and expired too)"
        console.print(
            ascii.rows_table(
                display, ["name", "status", "description", "runs", "last access"], title
            )
        )

    return ctx.emit(rows, show)


def cmd_sessions_show(ctx: _Context, args: argparse.Namespace) -> int:
    tracker = ctx.tracker()
    info = tracker.session(args.name)
    client = tracker.client
    all_runs = _search_runs(client, [info["id"]])
    batches = [r for r in all_runs if r.data.tags.get(tracking.BATCH_TAG) == "true"]
    names = {info["id"]: info["name"]}
    latest = [_run_row(r, names) for r in all_runs[: args.limit]]
    statuses: dict[str, int] = {}
    for r in all_runs:
        statuses[r.info.status] = statuses.get(r.info.status, 0) + 1
    data = {
        **info,
        "runs": len(all_runs),
        "batches": len(batches),
        "run_statuses": statuses,
        "latest_runs": latest,
    }

    def show(console: Console) -> None:
        by_status = ", ".join(f"{v} {k}" for k, v in sorted(statuses.items()))
        console.print(
            _session_table(
                info,
                [
                    ("runs", f"{len(all_runs)}" + (f" ({by_status})" if by_status else "")),
                    ("batches", len(batches)),
                ],
            )
        )
        if latest:
            console.print(
                _runs_table(latest, title=f"latest {len(latest)} of {len(all_runs)} runs")
            )
        else:
            ctx.text(console, "no runs yet")

    return ctx.emit(data, show)


def _set_status(ctx: _Context, name: str, status: str) -> int:
    tracker = ctx.tracker()
    tracker.set_session_status(name, status)
    info = tracker.session(name)

    def show(console: Console) -> None:
        ctx.text(console, f"session {name!r} is now {info['status']}")

    return ctx.emit(info, show)


def cmd_sessions_close(ctx: _Context, args: argparse.Namespace) -> int:
    return _set_status(ctx, args.name, "closed")


def cmd_sessions_resume(ctx: _Context, args: argparse.Namespace) -> int:
    return _set_status(ctx, args.name, "open")


# ------------------------------------------------------------------------------- runs


def cmd_runs_list(ctx: _Context, args: argparse.Namespace) -> int:
    tracker = ctx.tracker()
    client = tracker.client
    names = _experiment_names(client)
    if args.session:
        exp_ids = [tracker.session(args.session)["id"]]
    else:
        exp_ids = list(names)
    filters = []
    for text in args.tag or []:
        key, value = _parse_tag(text)
        if "`" in key:
            raise CliError(f"tag key {key!r} is invalid: it cannot contain a backtick")
        filters.append(f"tags.`{key}` = {_quote(value, 'tag value')}")
    if args.status:
        filters.append(f"attributes.status = '{args.status}'")
    runs = _search_runs(client, exp_ids, " and ".join(filters), limit=args.limit)
    rows = [_run_row(r, names) for r in runs]

    def show(console: Console) -> None:
        if not rows:
            ctx.text(console, "no runs match")
            return
        console.print(_runs_table(rows, title=f"{_plural(len(rows), 'run')}, newest first"))

    return ctx.emit(rows, show)


def _counts_artifact(client: MlflowClient, run_id: str) -> dict[str, int] | None:
    import tempfile

    try:
        names = {Path(f.path).name for f in client.list_artifacts(run_id) if not f.is_dir}
    except Exception:  # an unreachable artifact store: show the rest
        return None
    if "counts.json" not in names:
        return None
    bar = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"  # no progress bar on stderr for one small file
    previous = os.environ.get(bar)
    os.environ.setdefault(bar, "false")
    try:
        with tempfile.TemporaryDirectory(prefix="lret-counts-") as tmp:
            path = client.download_artifacts(run_id, "counts.json", dst_path=tmp)
            return {str(k): int(v) for k, v in json.loads(Path(path).read_text()).items()}
    finally:
        if previous is None:
            os.environ.pop(bar, None)


def cmd_runs_show(ctx: _Context, args: argparse.Namespace) -> int:
    from lret_runner import ascii

    run = _get_run(ctx, args.run_id)
    client = ctx.client
    info, data = run.info, run.data
    run_id = info.run_id
    names = _experiment_names(client)
    history = [
        m.value for m in sorted(client.get_metric_history(run_id, "rank"), key=lambda m: m.step)
    ]
    counts = _counts_artifact(client, run_id)
    record = {
        "run_id": run_id,
        "run_name": info.run_name,
        "session": names.get(str(info.experiment_id), str(info.experiment_id)),
        "status": info.status,
        "started": _iso(info.start_time),
        "ended": _iso(info.end_time),
        "params": dict(sorted(data.params.items())),
        "metrics": dict(sorted(data.metrics.items())),
        "tags": dict(sorted(data.tags.items())),
        "lineage_parent": _parent_of(run),
        "rank_history": history,
        "counts": counts,
    }

    def show(console: Console) -> None:
        error = data.tags.get("error")
        tags = {k: v for k, v in data.tags.items() if not k.startswith("mlflow.") and k != "error"}
        console.print(
            _kv_table(
                [
                    ("run id", run_id),
                    ("run name", info.run_name),
                    ("session", record["session"]),
                    ("status", info.status),
                    ("started", _when(record["started"])),
                    ("ended", _when(record["ended"])),
                    ("lineage parent", record["lineage_parent"]),
                    (
                        "error",
                        None if error in (None, "None") else error,
                    ),
                    ("tags", ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))),
                ],
                title="run",
            )
        )
        summary = [
            (k, v)
            for k, v in sorted(data.params.items())
            if (k.startswith(SUMMARY_SECTIONS) or k in SUMMARY_KEYS) and v not in ("None", "[]")
        ]
        console.print(
            _kv_table(
                summary, title=f"parameters ({len(summary)} of {len(data.params)}; --json: all)"
            )
        )
        result = {
            "run_id": run_id,
            "status": info.status,
            "backend_used": data.tags.get("backend_used"),
            "n_qubits": tracking.param_value(data.params.get("circuit.n_qubits")),
            "depth": tracking.param_value(data.params.get("circuit.depth")),
            **data.metrics,
        }
        console.print(ascii.metrics_table(result))
        if history:
            ctx.text(
                console,
                f"rank history ({len(history)} moments, {history[0]:g} -> {history[-1]:g}, "
                f"max {max(history):g}):",
            )
            ctx.text(console, "  " + ascii.sparkline(history, width=60))
        else:
            ctx.text(console, "rank history: none recorded")
        if counts:
            ctx.text(console, f"outcomes ({sum(counts.values())} shots):")
            ctx.text(console, ascii.histogram(counts))
        else:
            ctx.text(
                console, "outcomes: no counts.json artifact (shots=0, or the run did not finish)"
            )

    return ctx.emit(record, show)


def cmd_runs_tag(ctx: _Context, args: argparse.Namespace) -> int:
    pairs = [_parse_tag(t) for t in args.tags]
    for key, _ in pairs:
        if key.startswith("mlflow."):
            raise CliError(f"tag {key!r} is reserved for MLflow")
    run = _get_run(ctx, args.run_id)
    run_id = run.info.run_id
    client = ctx.client
    for key, value in pairs:
        client.set_tag(run_id, key, value)
    tags = dict(sorted(client.get_run(run_id).data.tags.items()))

    def show(console: Console) -> None:
        from lret_runner import ascii

        ctx.text(console, f"tagged run {run_id}: " + ", ".join(f"{k}={v}" for k, v in pairs))
        rows = [
            {"tag": _escape(k), "value": _escape(v)}
            for k, v in tags.items()
            if not k.startswith("mlflow.")
        ]
        console.print(ascii.rows_table(rows, ["tag", "value"]))

    return ctx.emit({"run_id": run_id, "set": dict(pairs), "tags": tags}, show)


# ---------------------------------------------------------------------------- lineage


def cmd_lineage(ctx: _Context, args: argparse.Namespace) -> int:
    from mlflow.exceptions import MlflowException

    run = _get_run(ctx, args.run_id)
    client = ctx.client
    names = _experiment_names(client)
    chain = [run]
    seen = {run.info.run_id}
    note: str | None = None
    current = run
    while (parent_id := _parent_of(current)) is not None:
        child = current.info.run_id
        if parent_id in seen:
            note = (
                f"cycle: run {child} names {parent_id} as its parent, which is already in the chain"
            )
            break
        if len(chain) >= MAX_LINEAGE:
            note = f"stopped after {MAX_LINEAGE} ancestors"
            break
        try:
            current = client.get_run(parent_id)
        except MlflowException:
            note = (
                f"missing parent: run {child} names {parent_id} as its parent, "
                f"which is not in the tracking store {ctx.uri}"
            )
            break
        chain.append(current)
        seen.add(parent_id)
    chain.reverse()  # root first

    steps = []
    for i, r in enumerate(chain):
        steps.append(
            {
                "run_id": r.info.run_id,
                "run_name": r.info.run_name,
                "session": names.get(str(r.info.experiment_id), str(r.info.experiment_id)),
                "status": r.info.status,
                "started": _iso(r.info.start_time),
                "parent": _parent_of(r),
                "changes": _changes(chain[i - 1].data.params, r.data.params) if i else {},
            }
        )
    data = {"run_id": run.info.run_id, "complete": note is None, "note": note, "chain": steps}

    def show(console: Console) -> None:
        from rich.table import Table
        from rich.text import Text

        table = Table(
            title=f"lineage of {run.info.run_id}: {_plural(len(steps), 'run')}, root first"
        )
        for col in ("#", "run id", "session", "status", "started", "changes vs previous"):
            table.add_column(col, no_wrap=col != "changes vs previous")
        for i, step in enumerate(steps):
            if i == 0:
                changes = "(root)" if note is None else "(chain incomplete: see note)"
            elif step["changes"]:
                changes = "\n".join(
                    f"{k}: {c['old'] if c['old'] is not None else '-'} -> "
                    f"{c['new'] if c['new'] is not None else '-'}"
                    for k, c in step["changes"].items()
                )
            else:
                changes = "(no param changes)"
            table.add_row(
                str(i + 1),
                _short(step["run_id"]),
                Text(step["session"]),
                step["status"],
                _when(step["started"]) or "-",
                Text(changes),
            )
        console.print(table)
        if note:
            ctx.text(console, f"note: {note}")

    return ctx.emit(data, show)


# ---------------------------------------------------------------------------- compare


def cmd_compare(ctx: _Context, args: argparse.Namespace) -> int:
    if len(args.run_ids) < 2:
        raise CliError(f"compare needs at least two run ids, got {len(args.run_ids)}")
    runs = [_get_run(ctx, ref) for ref in args.run_ids]
    names = _experiment_names(ctx.client)
    ids = [r.info.run_id for r in runs]

    keys = sorted(set().union(*(r.data.params for r in runs)))
    differing = {
        k: [r.data.params.get(k) for r in runs]
        for k in keys
        if len({r.data.params.get(k) for r in runs}) > 1
    }
    metrics: dict[str, Any] = {}
    for name, higher in COMPARE_METRICS:
        values = [r.data.metrics.get(name) if r.info.status == "FINISHED" else None for r in runs]
        present = [(v, i) for i, v in enumerate(values) if v is not None]
        best_index = None  # the first run with the best value
        for v, i in present:
            if best_index is None or (v > values[best_index] if higher else v < values[best_index]):
                best_index = i
        metrics[name] = {
            "values": values,
            "min": min((v for v, _ in present), default=None),
            "max": max((v for v, _ in present), default=None),
            "higher_is_better": higher,
            "best_run": ids[best_index] if best_index is not None else None,
            "improvement_percent": _improvement(
                values[0], values[best_index] if best_index is not None else None, higher
            ),
        }
    plot_path = None
    if args.plot:
        from lret_runner import plots

        rows = [
            {
                "run_id": r.info.run_id,
                "status": r.info.status,
                **{m: r.data.metrics.get(m) for m, _ in COMPARE_METRICS},
            }
            for r in runs
        ]
        try:
            fig = plots.comparison_figure(rows, metrics=[m for m, _ in COMPARE_METRICS])
        except ValueError as exc:
            raise CliError(f"--plot: {exc}") from None
        plot_path = str(plots.save(fig, args.plot))

    data = {
        "runs": [
            {
                "run_id": r.info.run_id,
                "session": names.get(str(r.info.experiment_id)),
                "status": r.info.status,
            }
            for r in runs
        ],
        "params": differing,
        "metrics": metrics,
        "plot": plot_path,
    }

    def show(console: Console) -> None:
        from lret_runner import ascii

        labels = []
        for i, rid in enumerate(ids):
            label = _short(rid)
            labels.append(label if label not in labels else f"{label}#{i + 1}")
        ctx.text(
            console,
            "runs: "
            + ", ".join(f"{lab} ({r.info.status})" for lab, r in zip(labels, runs, strict=True)),
        )
        if differing:
            rows = [
                {
                    "param": _escape(k),
                    **{lab: _escape(v) for lab, v in zip(labels, vals, strict=True)},
                }
                for k, vals in differing.items()
            ]
            console.print(
                ascii.rows_table(rows, ["param", *labels], title="config params that differ")
            )
        else:
            ctx.text(console, "config params: identical")
        rows = []
        for name, m in metrics.items():
            imp = m["improvement_percent"]
            best = m["best_run"]
            rows.append(
                {
                    "metric": name,
                    **dict(zip(labels, m["values"], strict=True)),
                    "min": m["min"],
                    "max": m["max"],
                    "best": labels[ids.index(best)] if best else None,
                    "improvement": None if imp is None else f"{imp:.2f}%",
                }
            )
        console.print(
            ascii.rows_table(
                rows,
                ["metric", *labels, "min", "max", "best", "improvement"],
                title="metrics (improvement: best run vs the first; fidelity higher is better, "
                "the others lower)",
            )
        )
        if plot_path:
            ctx.text(console, f"comparison chart: {plot_path}")

    return ctx.emit(data, show)


# ----------------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is invalid: must be >= 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{value} is invalid: must be > 0 and finite")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``lret-runner`` argument parser (every subcommand has ``--help`` and ``--json``)."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print machine-readable JSON instead of tables",
    )
    common.add_argument(
        "--tracking-uri",
        default=argparse.SUPPRESS,
        metavar="URI",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///<cwd>/mlruns/mlflow.db)",
    )

    parser = _Parser(
        prog=PROG,
        description="Sessions, runs, lineage and comparisons of lret_runner experiments in MLflow.",
        epilog="Run experiments with `python -m lret_runner +experiment=NAME`; "
        "`lret-runner COMMAND --help` for details.",
    )
    parser.add_argument(
        "--tracking-uri",
        default=None,
        metavar="URI",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///<cwd>/mlruns/mlflow.db)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=False,
        help="print machine-readable JSON instead of tables",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # sessions
    sessions = commands.add_parser(
        "sessions",
        help="create, list, show, close and resume sessions (MLflow experiments)",
        description="A session is an MLflow experiment; closed or expired sessions refuse runs.",
    )
    sub = sessions.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser(
        "create",
        parents=[common],
        help="create a new (open) session",
        description="Create a session; an existing name is an error.",
    )
    p.add_argument("name")
    p.add_argument("--description", default="", help="what the session is for")
    p.add_argument(
        "--timeout-hours",
        type=_positive_float,
        default=None,
        metavar="H",
        help="idle hours after which the session expires (default: never)",
    )
    p.set_defaults(func=cmd_sessions_create)
    p = sub.add_parser(
        "list",
        parents=[common],
        help="list open sessions",
        description="Open sessions; closed and expired ones with --all.",
    )
    p.add_argument("--all", action="store_true", help="include closed and expired sessions")
    p.set_defaults(func=cmd_sessions_list)
    p = sub.add_parser(
        "show",
        parents=[common],
        help="a session's state and latest runs",
        description="Session state, run and batch counts, latest runs.",
    )
    p.add_argument("name")
    p.add_argument(
        "--limit",
        type=_positive_int,
        default=10,
        metavar="N",
        help="latest runs shown (default 10)",
    )
    p.set_defaults(func=cmd_sessions_show)
    p = sub.add_parser(
        "close",
        parents=[common],
        help="close a session (runs into it are refused)",
        description="Close a session: new runs into it are refused until resumed.",
    )
    p.add_argument("name")
    p.set_defaults(func=cmd_sessions_close)
    p = sub.add_parser(
        "resume",
        parents=[common],
        help="reopen a closed or expired session",
        description="Reopen a session and restart its idle clock.",
    )
    p.add_argument("name")
    p.set_defaults(func=cmd_sessions_resume)

    # runs
    runs = commands.add_parser(
        "runs",
        help="list, show and tag runs",
        description="Runs recorded by `python -m lret_runner`.",
    )
    sub = runs.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser(
        "list",
        parents=[common],
        help="list runs, newest first",
        description="Runs of one session or of all, newest first.",
    )
    p.add_argument("--session", metavar="S", help="only runs of this session")
    p.add_argument(
        "--tag",
        action="append",
        metavar="K=V",
        help="only runs with this tag (a bare K means K=true); repeatable",
    )
    p.add_argument("--status", choices=RUN_STATUSES, help="only runs with this status")
    p.add_argument(
        "--limit", type=_positive_int, default=50, metavar="N", help="at most N runs (default 50)"
    )
    p.set_defaults(func=cmd_runs_list)
    p = sub.add_parser(
        "show",
        parents=[common],
        help="one run: params, metrics, rank history, outcomes",
        description="A run's parameters, metrics, rank history and outcome histogram.",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="run id or a unique prefix of it")
    p.set_defaults(func=cmd_runs_show)
    p = sub.add_parser(
        "tag",
        parents=[common],
        help="set tags on a run",
        description="Set tags on a run, then print its tags.",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="run id or a unique prefix of it")
    p.add_argument(
        "tags", nargs="+", metavar="TAG", help="KEY=VALUE, or a bare KEY meaning KEY=true"
    )
    p.set_defaults(func=cmd_runs_tag)

    # lineage
    p = commands.add_parser(
        "lineage",
        parents=[common],
        help="the chain of ancestors of a run",
        description="Ancestors of a run (lineage.parent), root first, with the params that "
        "changed at every step.",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="run id or a unique prefix of it")
    p.set_defaults(func=cmd_lineage)

    # compare
    p = commands.add_parser(
        "compare",
        parents=[common],
        help="compare the config and metrics of two or more runs",
        description="Config params that differ and key metrics (min, max, improvement of the "
        "best run over the first) of two or more runs.",
    )
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID", help="two or more run ids (or prefixes)")
    p.add_argument("--plot", metavar="FILE", help="also write a comparison chart (PNG) to FILE")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lret-runner`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(_Context(args), args))
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except (CliError, tracking.SessionError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not type(exc).__module__.startswith("mlflow"):
            raise
        code = getattr(exc, "error_code", "")
        first = str(getattr(exc, "message", exc)).strip().splitlines()
        print(f"{PROG}: error: {first[0] if first else type(exc).__name__}", file=sys.stderr)
        return 2 if code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST") else 1


if __name__ == "__main__":
    sys.exit(main())
