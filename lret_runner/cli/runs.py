"""``lret-runner runs list|show|tag|cleanup``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from lret_runner.cli._output import (
    Context,
    add_command,
    escape,
    kv_table,
    param_text,
    plural,
    positive_int,
    runs_table,
    visible_tags,
    when,
)

if TYPE_CHECKING:
    from rich.console import Console

    from lret_runner.tracking.queries import RunDetail

SUMMARY_SECTIONS = ("circuit.", "noise.", "simulator.", "backend.")  # params `show` lists
SUMMARY_KEYS = ("run.shots", "run.seed")


def parse_tag(text: str) -> tuple[str, str]:
    """``key=value``, or a bare ``key`` meaning ``true``."""
    from lret_runner.errors import UserError

    key, sep, value = text.partition("=")
    key = key.strip()
    if not key:
        raise UserError(f"tag {text!r} is invalid: expected KEY=VALUE or KEY")
    return key, value if sep else "true"


def list_(ctx: Context, args: argparse.Namespace) -> int:
    tags = dict(parse_tag(t) for t in args.tag or [])
    runs = ctx.queries.runs(args.session, tags, args.status, args.limit)

    def show(console: Console) -> None:
        if runs:
            console.print(runs_table(runs, title=f"{plural(len(runs), 'run')}, newest first"))
        else:
            ctx.text("no runs match")

    return ctx.emit([r.brief() for r in runs], show)


def show_(ctx: Context, args: argparse.Namespace) -> int:
    detail = ctx.queries.run_detail(args.run_id)
    return ctx.emit(detail.to_dict(), lambda console: _show_detail(ctx, console, detail))


def _show_detail(ctx: Context, console: Console, run: RunDetail) -> None:
    from lret_runner import tables
    from lret_runner.tracking import vocabulary as V

    tags = visible_tags(run.tags, V.ERROR)
    console.print(
        kv_table(
            [
                ("run id", run.run_id),
                ("run name", run.run_name),
                ("session", run.session),
                ("status", run.status),
                ("started", when(run.started)),
                ("ended", when(run.ended)),
                ("lineage parent", run.lineage_parent),
                ("error", run.error),
                ("tags", ", ".join(f"{k}={v}" for k, v in tags.items())),
            ],
            title="run",
        )
    )
    summary = [
        (k, param_text(v))
        for k, v in sorted(run.params.items())
        if (k.startswith(SUMMARY_SECTIONS) or k in SUMMARY_KEYS) and v not in (None, [])
    ]
    title = f"parameters ({len(summary)} of {len(run.params)}; --json: all)"
    console.print(kv_table(summary, title=title))
    console.print(tables.metrics_table(run.result(), run.params))
    history = run.rank_history
    if history:
        ctx.text(
            f"rank history ({len(history)} moments, {history[0]:g} -> {history[-1]:g}, "
            f"largest {max(history):g}):"
        )
        ctx.text("  " + tables.rank_sparkline(history, {"dense_spans": run.dense_spans}, 60))
    else:
        ctx.text("rank history: none recorded")
    if run.counts:
        ctx.text(f"outcomes ({sum(run.counts.values())} shots):")
        ctx.text(tables.histogram(run.counts))
    else:
        ctx.text(
            "outcomes: no readable counts.json artifact "
            "(shots=0, the run did not finish, or the file is damaged)"
        )


def tag(ctx: Context, args: argparse.Namespace) -> int:
    pairs = dict(parse_tag(t) for t in args.tags)
    run = ctx.queries.tag_run(args.run_id, pairs)
    tags = dict(sorted(run.tags.items()))

    def show(console: Console) -> None:
        from lret_runner import tables

        ctx.text(f"tagged run {run.run_id}: " + ", ".join(f"{k}={v}" for k, v in pairs.items()))
        rows = [{"tag": escape(k), "value": escape(v)} for k, v in visible_tags(tags).items()]
        console.print(tables.rows_table(rows, ["tag", "value"]))

    return ctx.emit({"run_id": run.run_id, "set": pairs, "tags": tags}, show)


def cleanup(ctx: Context, args: argparse.Namespace) -> int:
    queries = ctx.queries
    found = queries.orphans(args.session) if args.dry_run else queries.end_orphans(args.session)
    rows = [{"run_id": run.run_id, "session": run.session, "reason": why} for run, why in found]

    def show(console: Console) -> None:
        from lret_runner import tables

        verb = "would mark" if args.dry_run else "marked"
        ctx.text(f"{verb} {plural(len(rows), 'orphaned run')} KILLED")
        if rows:
            console.print(tables.rows_table(rows, ["run_id", "session", "reason"]))

    return ctx.emit(rows, show)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    from lret_runner.tracking.queries import RUN_STATUSES

    group = commands.add_parser(
        "runs",
        help="list, show and tag runs",
        description="Runs recorded by `python -m lret_runner`.",
    )
    sub = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = add_command(
        sub,
        "list",
        list_,
        common,
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
        "--limit", type=positive_int, default=50, metavar="N", help="at most N runs (default 50)"
    )
    p = add_command(
        sub,
        "show",
        show_,
        common,
        help="one run: params, metrics, rank history, outcomes",
        description="A run's parameters, metrics, rank history and outcome histogram.",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="run id or a unique prefix of it")
    p = add_command(
        sub,
        "tag",
        tag,
        common,
        help="set tags on a run",
        description="Set tags on a run, then print its tags.",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="run id or a unique prefix of it")
    p.add_argument(
        "tags", nargs="+", metavar="TAG", help="KEY=VALUE, or a bare KEY meaning KEY=true"
    )
    p = add_command(
        sub,
        "cleanup",
        cleanup,
        common,
        help="end KILLED the RUNNING runs whose process is gone",
        description="A process killed with SIGKILL (or a crash) leaves its run RUNNING. Every "
        "run records its process (host, pid, start time); on that host, cleanup ends the "
        "RUNNING runs whose process no longer exists as KILLED, with the reason as their "
        "error. Runs of other hosts are left alone.",
    )
    p.add_argument("--session", metavar="S", help="only runs of this session")
    p.add_argument("--dry-run", action="store_true", help="list them, change nothing")
