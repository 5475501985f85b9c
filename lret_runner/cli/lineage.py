"""``lret-runner lineage RUN_ID``: the chain of ancestors of a run, root first."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from lret_runner.cli._output import Context, add_command, param_text, plural, short, when

if TYPE_CHECKING:
    from rich.console import Console

    from lret_runner.tracking.queries import Lineage, LineageStep

COLUMNS = ("#", "run id", "session", "status", "started", "changes vs previous")


def lineage(ctx: Context, args: argparse.Namespace) -> int:
    found = ctx.queries.lineage(args.run_id)
    return ctx.emit(found.to_dict(), lambda console: _show(ctx, console, found))


def _changes(i: int, step: LineageStep, lineage: Lineage) -> str:
    if i == 0:
        return "(root)" if lineage.complete else "(chain incomplete: see note)"
    if not step.changes:
        return "(no param changes)"
    return "\n".join(
        f"{k}: {param_text(c['old'])} -> {param_text(c['new'])}" for k, c in step.changes.items()
    )


def _show(ctx: Context, console: Console, lineage: Lineage) -> None:
    from rich.table import Table
    from rich.text import Text

    steps = lineage.chain
    table = Table(title=f"lineage of {lineage.run_id}: {plural(len(steps), 'run')}, root first")
    for col in COLUMNS:
        table.add_column(col, no_wrap=col != COLUMNS[-1])
    for i, step in enumerate(steps):
        table.add_row(
            str(i + 1),
            short(step.run_id),
            Text(step.session),
            step.status,
            when(step.started) or "-",
            Text(_changes(i, step, lineage)),
        )
    console.print(table)
    if lineage.note:
        ctx.text(f"note: {lineage.note}")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    p = add_command(
        commands,
        "lineage",
        lineage,
        common,
        help="the chain of ancestors of a run",
        description="Ancestors of a run (lineage.parent), root first, with the params that "
        "changed at every step.",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="run id or a unique prefix of it")
