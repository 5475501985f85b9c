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
from rich.text import Text

from lret_runner.accuracy import PROBABILITIES_SE
from lret_runner.tracking.vocabulary import EXPVAL_PREFIX, METRICS, SECTIONS

__all__ = [
    "BLOCKS",
    "SPARKS",
    "histogram",
    "describe",
    "metrics_table",
    "rank_sparkline",
    "render",
    "rows_table",
    "rows_text",
    "sparkline",
    "summary_sections",
    "varying_columns",
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


# ---------------------------------------------------------------- one run's summary
# The terminal table, summary.png and `runs show` draw the same sections from the metric
# registry: what was simulated, the noise figures against the noiseless circuit, the
# task's figures, the engine's accuracy against the exact state, the ranks, the cost.
DENSE_MARK = "▒"  # a moment LRET ended holding a dense matrix, in the rank sparkline
_PLACEMENT = {"gate": "after every gate", "moment": "after every moment, on every qubit"}


def describe(params: Mapping[str, Any], result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What was simulated, from the run's flat params (``circuit.name``, ``noise.level``...)
    and its result: the circuit, the noise model and the engine, one line each."""
    name = params.get("circuit.name")
    if name == "qasm" and params.get("circuit.path"):
        name = f"qasm file {str(params['circuit.path']).rsplit('/', 1)[-1]}"
    n = result.get("n_qubits", params.get("circuit.n_qubits"))
    circuit = ", ".join(
        [str(name or "n/a")]
        + ([f"{n} qubits"] if n is not None else [])
        + ([f"depth {result['depth']}"] if result.get("depth") is not None else [])
    )
    engine = str(result.get("backend_used") or params.get("simulator.name") or "n/a")
    if params.get("simulator.name") == "auto":
        engine = f"{engine} (chosen by auto)"
    rows = [("circuit", circuit), ("noise", _noise_text(params)), ("engine", engine)]
    clbits = result.get("clbits")
    if clbits and clbits != [f"m[{i}]" for i in range(len(clbits))]:  # a file's own bits
        rows.append(("outcome bits", " ".join(clbits) + " (left to right in counts)"))
    if result.get("branches"):
        rows.append(("branches", f"{result['branches']} at most (a dynamic circuit)"))
    return rows


def _noise_text(params: Mapping[str, Any]) -> str:
    name = params.get("noise.name")
    if name is None:
        return "n/a"
    if name == "none":
        return "none (the noiseless circuit)"
    where = _PLACEMENT.get(str(params.get("noise.placement")), "")
    if name == "thermal":
        text = f"thermal, T1={params.get('noise.t1'):g} s, T2={params.get('noise.t2'):g} s"
    elif name == "readout":
        text = f"readout, flip probability {params.get('noise.readout_error'):g}"
    elif name == "composite":
        parts = [str(c.get("name")) for c in params.get("noise.components") or []]
        text = f"composite ({' + '.join(parts)})"
    elif name == "device":
        text = f"device {params.get('noise.device')}, scale {params.get('noise.scale'):g}"
    elif name == "sparse":
        p, kinds = params.get("noise.level"), "/".join(params.get("noise.channels") or [])
        at = "each qubit a gate touched, after the gate"
        if params.get("noise.placement") == "moment":
            at = "each qubit after every moment"
        return (
            f"sparse: with probability {p:g}, one {kinds} channel of strength <= {p:g} on "
            f"{at} (seed {params.get('noise.seed')})"
        )
    elif params.get("noise.level") is not None:
        text = f"{name}, p={params['noise.level']:g}"
        if name == "depolarizing":
            text += " (Cirq's depolarize(p))"
    else:
        text = str(name)
    return f"{text} {where}".strip()


def _observables(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    ideal = result.get("ideal_expectation_values") or {}
    return [
        (
            f"<{pauli}>",
            f"{fmt(value, '6f')}{_standard_error(result, EXPVAL_PREFIX + pauli)}   "
            f"noiseless {fmt(ideal.get(pauli), '6f')}",
        )
        for pauli, value in (result.get("expectation_values") or {}).items()
    ]


def _standard_error(result: Mapping[str, Any], key: str) -> str:
    """`` ± s.e. (1 s.e., N trajectories)`` for a figure a sampling engine estimated, else ""."""
    error = number((result.get("standard_errors") or {}).get(key))
    if error is None:
        return ""
    samples = result.get("trajectories")
    count = f", {samples} trajectories" if samples is not None else ""
    return f" ± {error:.2g} (1 s.e.{count})"


# figures that a truncation can move by at most the trace distance it causes, so by at most
# truncation_error: <psi|rho|psi> (a projector's expectation) and a measured distribution's TVD
BOUNDED = ("ideal_fidelity", "ideal_tvd")


def summary_sections(
    result: Mapping[str, Any],
) -> list[tuple[tuple[str, str], list[tuple[str, str]]]]:
    """((title, what it is measured against), [(label, formatted value)]) in the order every
    view shows them.

    An optional figure the run does not have (an energy, a cut, XEB) is left out; a
    reference that was not computed says why."""
    sections: dict[str, list[tuple[str, str]]] = {key: [] for key in SECTIONS}
    bound = number(result.get("truncation_error")) or 0.0
    for m in METRICS:
        value = result.get(m.key)
        if value is None and m.optional:
            continue
        text = fmt(value, m.fmt) + (f" {m.unit}" if m.unit == "columns" and value else "")
        if m.key in BOUNDED and value is not None and bound > 0:
            text += f" ± {bound:.1e} (truncation bound)"
        if value is not None:
            text += _standard_error(result, m.key)
        sections[m.section].append((m.label, text))
    sections["noise"] += _observables(result)
    each = _standard_error(result, PROBABILITIES_SE)
    if each:
        sections["noise"].append(("measured probabilities", f"each{each} or less"))
    # how each reference was obtained, or why it was not
    sections["noise"].append(("reference", str(result.get("ideal_reference", "n/a"))))
    sections["accuracy"].append(("reference", str(result.get("exact_reference", "n/a"))))
    history = result.get("rank_history")
    if history:
        sections["rank"].append(("rank history", rank_sparkline(history, result)))
    return [(SECTIONS[k], rows) for k, rows in sections.items() if rows]


def rank_sparkline(history: Sequence[float], result: Mapping[str, Any], width: int = 30) -> str:
    """The rank after every moment as a sparkline; moments held dense are marked."""
    spans = result.get("dense_spans") or []
    line = sparkline(history, width=width)
    if not spans:
        return line
    n = len(history)
    cells = list(line)
    for i in range(len(cells)):  # cell i covers moments [i n / len, (i + 1) n / len)
        first, last = i * n // len(cells), max(i * n // len(cells), (i + 1) * n // len(cells) - 1)
        if any(a <= last and first <= b for a, b in spans):
            cells[i] = DENSE_MARK
    moments = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)
    return f"{''.join(cells)}  ({DENSE_MARK} dense: moments {moments} of {n})"


def metrics_table(result: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> Table:
    """A run's summary as a two-column table: what was simulated (from its flat ``params``),
    then one titled section per group of figures (None shows as ``n/a``)."""
    table = Table(show_header=False)
    table.add_column("Metric", style="bold")
    table.add_column("Value")
    accuracy = accuracy_line(result)
    missed = accuracy is not None and not result["accuracy"]["met"]
    if missed:  # a run that did not meet its accuracy says so first
        table.add_row(Text("accuracy", style="bold red"), Text(accuracy, style="bold red"))
    if result.get("run_id"):
        table.add_row("run id", Text(str(result["run_id"])))
    table.add_row("status", Text(str(result.get("status", "n/a"))))
    if accuracy is not None and not missed:
        table.add_row("accuracy", Text(accuracy))
    for label, value in describe(params or {}, result):
        table.add_row(label, Text(value))
    for (title, reference), section in summary_sections(result):
        table.add_section()
        table.add_row(Text(title, style="italic"), Text(reference, style="italic"))
        for label, value in section:
            table.add_row(Text(label), Text(value))
    return table


def accuracy_line(result: Mapping[str, Any]) -> str | None:
    """The accuracy contract's outcome in plain words (None for a run without one)."""
    from lret_runner import accuracy

    record = result.get("accuracy")
    if not record:
        return None
    return accuracy.Accuracy(record["target"], record["achieved"], record["kind"]).sentence()


def varying_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Config keys (dotted) whose value differs between rows: a sweep's axes."""
    keys = sorted({k for r in rows for k in r if "." in k})
    return [k for k in keys if len({str(r.get(k)) for r in rows}) > 1]


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
