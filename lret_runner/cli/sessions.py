"""``lret-runner sessions create|list|show|close|resume``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from lret_runner.cli._output import (
    Context,
    add_command,
    escape,
    positive_float,
    positive_int,
    runs_table,
    session_table,
    when,
)

if TYPE_CHECKING:
    from rich.console import Console


def create(ctx: Context, args: argparse.Namespace) -> int:
    sessions = ctx.sessions(create=True)
    sessions.create(args.name, args.description, args.timeout_hours)
    info = sessions.get(args.name)

    def show(console: Console) -> None:
        ctx.text(f"created session {info.name!r} (MLflow experiment {info.id})")
        console.print(session_table(info))

    return ctx.emit(info.to_dict(), show)


def list_(ctx: Context, args: argparse.Namespace) -> int:
    from lret_runner import tables

    summaries = ctx.queries.session_summaries(include_all=args.all)

    def show(console: Console) -> None:
        if not summaries:
            hint = "" if args.all else " (closed and expired ones are hidden: --all shows them)"
            ctx.text(f"no sessions{hint}")
            return
        rows = [
            {
                "name": escape(s.session.name),
                "status": s.session.status,
                "description": escape(s.session.description),
                "runs": s.runs,
                "last access": when(s.session.last_access),
            }
            for s in summaries
        ]
        title = "sessions" if args.all else "open sessions (--all: closed and expired too)"
        columns = ["name", "status", "description", "runs", "last access"]
        console.print(tables.rows_table(rows, columns, title))

    return ctx.emit([s.to_dict() for s in summaries], show)


def show_(ctx: Context, args: argparse.Namespace) -> int:
    summary = ctx.queries.session_summary(args.name, args.limit)

    def show(console: Console) -> None:
        by_status = ", ".join(f"{v} {k}" for k, v in summary.run_statuses.items())
        runs = f"{summary.runs}" + (f" ({by_status})" if by_status else "")
        console.print(
            session_table(summary.session, [("runs", runs), ("batches", summary.batches)])
        )
        latest = summary.latest_runs
        if latest:
            console.print(runs_table(latest, title=f"latest {len(latest)} of {summary.runs} runs"))
        else:
            ctx.text("no runs yet")

    return ctx.emit(summary.to_dict(), show)


def _set_status(ctx: Context, name: str, status: str) -> int:
    info = ctx.sessions().set_status(name, status)
    return ctx.emit(info.to_dict(), lambda _: ctx.text(f"session {name!r} is now {info.status}"))


def close(ctx: Context, args: argparse.Namespace) -> int:
    return _set_status(ctx, args.name, "closed")


def resume(ctx: Context, args: argparse.Namespace) -> int:
    return _set_status(ctx, args.name, "open")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser(
        "sessions",
        help="create, list, show, close and resume sessions (MLflow experiments)",
        description="A session is an MLflow experiment; closed or expired sessions refuse runs.",
    )
    sub = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = add_command(
        sub,
        "create",
        create,
        common,
        help="create a new (open) session",
        description="Create a session; an existing name is an error.",
    )
    p.add_argument("name")
    p.add_argument("--description", default="", help="what the session is for")
    p.add_argument(
        "--timeout-hours",
        type=positive_float,
        default=None,
        metavar="H",
        help="idle hours after which the session expires (default: never)",
    )
    p = add_command(
        sub,
        "list",
        list_,
        common,
        help="list open sessions",
        description="Open sessions; closed and expired ones with --all.",
    )
    p.add_argument("--all", action="store_true", help="include closed and expired sessions")
    p = add_command(
        sub,
        "show",
        show_,
        common,
        help="a session's state and latest runs",
        description="Session state, run and batch counts, latest runs.",
    )
    p.add_argument("name")
    p.add_argument(
        "--limit", type=positive_int, default=10, metavar="N", help="latest runs shown (default 10)"
    )
    p = add_command(
        sub,
        "close",
        close,
        common,
        help="close a session (runs into it are refused)",
        description="Close a session: new runs into it are refused until resumed.",
    )
    p.add_argument("name")
    p = add_command(
        sub,
        "resume",
        resume,
        common,
        help="reopen a closed or expired session",
        description="Reopen a session and restart its idle clock.",
    )
    p.add_argument("name")
