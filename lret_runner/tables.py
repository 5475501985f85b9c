"""Terminal charts and tables: plain-text histograms and sparklines, rich tables.

Everything takes plain Python data (a result dict, flat sweep rows) and either returns a
string or a :mod:`rich` renderable; :func:`render` turns a renderable into plain text
(no colour) for tests and ``.txt`` artifacts.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table

from lret_runner.tracking.vocabulary import METRICS

__all__ = [
    "BLOCKS",
    "SPARKS",
    "histogram",
    "metrics_table",
    "render",
    "rows_table",
    "rows_text",
    "sparkline",
]

FULL = "█"
BLOCKS = ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")  # 0/8 .. 7/8 of a cell
SPARKS = "▁▂▃▄▅▆▇█"


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (shared with plots.py)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _bar(fraction: float, width: int) -> str:
    """A bar of ``fraction`` (0..1) of ``width`` cells in eighths, padded to ``width``."""
    eighths = math.floor(max(0.0, min(1.0, fraction)) * width * 8 + 0.5)
    if fraction > 0 and eighths == 0:
        eighths = 1  # a non-zero count is never invisible
    text = FULL * (eighths // 8) + BLOCKS[eighths % 8]
    return text.ljust(width)


def histogram(counts: Mapping[str, int] | None, *, top: int = 10, width: int = 40) -> str:
    """One line per outcome, most frequent first (ties by bitstring)::

        0101  ████████████▌        512  50.0%

    Bars are scaled so the most frequent outcome fills ``width`` cells; the percentage is
    of all shots. A last line ``(+K more outcomes)`` tells how many were left out.
    """
    items = sorted(
        ((str(k), int(v)) for k, v in (counts or {}).items()), key=lambda kv: (-kv[1], kv[0])
    )
    if not items:
        return "no counts"
    shots = sum(v for _, v in items)
    shown = items[: max(1, top)]
    peak = max(v for _, v in shown)
    label_w = max(len(k) for k, _ in shown)
    count_w = max(len(str(v)) for _, v in shown)
    pcts = [f"{100.0 * v / shots if shots else 0.0:.1f}%" for _, v in shown]
    pct_w = max(len(p) for p in pcts)
    lines = []
    for (key, value), pct in zip(shown, pcts, strict=True):
        bar = _bar(value / peak if peak else 0.0, width)
        lines.append(f"{key:<{label_w}}  {bar}  {value:>{count_w}}  {pct:>{pct_w}}")
    if len(items) > len(shown):
        lines.append(f"(+{len(items) - len(shown)} more outcomes)")
    return "\n".join(lines)


def sparkline(values: Sequence[float | None], width: int | None = None) -> str:
    """``values`` as ``▁▂▃▄▅▆▇█`` from their min to their max (a constant series is all ``▁``).

    With ``width`` and more values than that, the series is cut into ``width`` buckets of
    near-equal size and each bucket shows its maximum. None/NaN values show as a space.
    """
    vals = [number(v) for v in values]
    if not vals:
        return ""
    if width is not None and width > 0 and len(vals) > width:
        n = len(vals)
        buckets = [vals[i * n // width : (i + 1) * n // width] for i in range(width)]
        vals = [max((v for v in b if v is not None), default=None) for b in buckets]
    present = [v for v in vals if v is not None]
    if not present:
        return " " * len(vals)
    lo, hi = min(present), max(present)
    span = hi - lo
    out = []
    for v in vals:
        if v is None:
            out.append(" ")
        elif span == 0:
            out.append(SPARKS[0])
        else:
            out.append(SPARKS[math.floor((v - lo) / span * (len(SPARKS) - 1) + 0.5)])
    return "".join(out)


def fmt(value: Any, kind: str = "g") -> str:
    if value is None:
        return "n/a"
    num = number(value)
    if num is None:
        return str(value)
    if kind == "time":
        return f"{num:.1f} s" if num >= 100 else f"{num:.3g} s"
    if kind == "mb":
        return f"{num:.1f} MB"
    if kind == "sci":
        return f"{num:.2e}"
    if kind == "6f":
        return f"{num:.6f}"
    if kind == "int":
        return str(int(num))
    return f"{num:.4g}"


# (label, result key, format) rows: who ran what, then the key metrics
RUN_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("status", "status", "str"),
    ("backend", "backend_used", "str"),
    ("qubits", "n_qubits", "int"),
    ("depth", "depth", "int"),
)
KEY_METRICS: tuple[tuple[str, str, str], ...] = tuple((m.label, m.key, m.fmt) for m in METRICS)
_OPTIONAL = {m.key for m in METRICS if m.optional}


def metric_lines(
    result: Mapping[str, Any], rows: Sequence[tuple[str, str, str]] = KEY_METRICS
) -> list[tuple[str, str]]:
    """(label, formatted value) for each row; the terminal table and the summary PNG share it.
    An optional metric (energy, expected cut, ...) the run does not have is left out."""
    return [
        (label, fmt(result.get(key), kind))
        for label, key, kind in rows
        if not (result.get(key) is None and key in _OPTIONAL)
    ]


def metrics_table(result: Mapping[str, Any]) -> Table:
    """A two-column Metric/Value table of a run's key metrics (None shows as ``n/a``)."""
    table = Table()
    table.add_column("Metric", style="bold")
    table.add_column("Value")
    if result.get("run_id"):
        table.add_row("run id", str(result["run_id"]))
    for label, value in metric_lines(result, RUN_FIELDS + KEY_METRICS):
        table.add_row(label, value)
    history = result.get("rank_history")
    if history:
        table.add_row("rank history", sparkline(history, width=30))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3e}"
        return f"{value:.6g}"
    return str(value)


def _numeric_column(rows: Sequence[Mapping[str, Any]], column: str) -> bool:
    present = [r.get(column) for r in rows if r.get(column) is not None]
    return bool(present) and all(number(v) is not None for v in present)


def rows_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str | None = None
) -> Table:
    """A rich table with one row per dict and the given ``columns`` (None shows as ``-``)."""
    table = Table(title=title)
    for col in columns:
        table.add_column(
            col, justify="right" if _numeric_column(rows, col) else "left", no_wrap=True
        )
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    return table


def rows_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """The same content as :func:`rows_table` as plain fixed-width text (no box drawing)."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    right = [_numeric_column(rows, c) for c in columns]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(columns)), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out) + "\n"


def render(renderable: RenderableType, *, width: int = 120) -> str:
    """``renderable`` rendered as plain text (no colour, no styles), ``width`` columns at most."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        color_system=None,
        force_terminal=False,
        no_color=True,
        highlight=False,
        emoji=False,
        legacy_windows=False,
    )
    console.print(renderable)
    return buffer.getvalue()
