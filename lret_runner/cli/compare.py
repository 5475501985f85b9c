"""``lret-runner compare RUN_ID RUN_ID [...] [--plot FILE]``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from lret_runner.cli._output import Context, add_command, escape, param_text, short

if TYPE_CHECKING:
    from rich.console import Console

    from lret_runner.tracking.queries import Comparison


def compare(ctx: Context, args: argparse.Namespace) -> int:
    comparison = ctx.queries.compare(args.run_ids)
    plot = _plot(comparison, args.plot) if args.plot else None
    data = {**comparison.to_dict(), "plot": plot}
    return ctx.emit(data, lambda console: _show(ctx, console, comparison, plot))


def _plot(comparison: Comparison, path: str) -> str:
    from lret_runner import plots
    from lret_runner.errors import UserError

    try:
        fig = plots.comparison_figure(
            [r.row() for r in comparison.runs], metrics=list(comparison.metrics)
        )
    except ValueError as exc:
        raise UserError(f"--plot: {exc}") from None
    try:
        return str(plots.save(fig, path))
    except OSError as exc:  # a directory, an unwritable place, a path through a file
        raise UserError(
            f"--plot {path}: cannot write the chart there ({exc.strerror or exc}): "
            "give the path of a PNG file in a writable directory"
        ) from None


def _show(ctx: Context, console: Console, comparison: Comparison, plot: str | None) -> None:
    from lret_runner import tables
    from lret_runner.tracking import vocabulary as V

    ids = [r.run_id for r in comparison.runs]
    labels: list[str] = []
    for i, run_id in enumerate(ids):  # the same run given twice gets two labels
        label = short(run_id)
        labels.append(label if label not in labels else f"{label}#{i + 1}")
    statuses = (f"{label} ({r.status})" for label, r in zip(labels, comparison.runs, strict=True))
    ctx.text("runs: " + ", ".join(statuses))
    if comparison.params:
        rows = [
            {
                "param": escape(k),
                **{lab: escape(param_text(v)) for lab, v in zip(labels, vals, strict=True)},
            }
            for k, vals in comparison.params.items()
        ]
        console.print(
            tables.rows_table(rows, ["param", *labels], title="config params that differ")
        )
    else:
        ctx.text("config params: identical")
    rows = [
        {
            "metric": V.METRIC[name].label,
            **dict(zip(labels, m.values, strict=True)),
            "min": m.min,
            "max": m.max,
            "best": labels[ids.index(m.best_run)] if m.best_run else None,
            "improvement": None if (imp := m.improvement_percent) is None else f"{imp:.2f}%",
        }
        for name, m in comparison.metrics.items()
    ]
    console.print(
        tables.rows_table(
            rows,
            ["metric", *labels, "min", "max", "best", "improvement"],
            title="metrics (improvement: best run vs the first; fidelities higher are better, "
            "the others lower; 'noiseless': against the noiseless circuit, 'exact': against "
            "the exact state of the same noisy circuit)",
        )
    )
    if plot:
        ctx.text(f"comparison chart: {plot}")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    p = add_command(
        commands,
        "compare",
        compare,
        common,
        help="compare the config and metrics of two or more runs",
        description="Config params that differ and key metrics (min, max, improvement of the "
        "best run over the first) of two or more runs.",
    )
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID", help="two or more run ids (or prefixes)")
    p.add_argument("--plot", metavar="FILE", help="also write a comparison chart (PNG) to FILE")
