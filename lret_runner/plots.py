"""Matplotlib figures for one run and for sweeps.

Inputs are plain Python data: a run's result dict (``RunResult.to_dict()`` plus ``run_id``,
``started_at``...), its nested config dict, and for sweeps a list of flat "rows" whose keys
mix dotted config keys (``circuit.n_qubits``, ``noise.level``, ``simulator.name``) with
metrics (``simulation_time_seconds``, ``fidelity``, ``status``, ``run_id``...).

Every figure function returns a :class:`matplotlib.figure.Figure` that is *not* registered
with pyplot (no global state, safe to build from API worker threads); :func:`save` writes
it as a PNG. Matplotlib is imported lazily, so ``import lret_runner.plots`` stays cheap.

Metric plots skip rows whose metric is missing, None or not finite, and rows whose
``status`` is present and not ``FINISHED`` (rows without a ``status`` key are kept).
Groups are ordered deterministically (sorted). A figure function raises ``ValueError``
when nothing is left to plot.
"""

from __future__ import annotations

import math
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lret_runner.tables import describe, fmt, number, summary_sections, varying_columns
from lret_runner.tracking.vocabulary import METRIC, METRICS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "backend_comparison_figure",
    "comparison_figure",
    "fidelity_over_runs_figure",
    "histogram_figure",
    "noise_impact_figure",
    "save",
    "scaling_figure",
    "summary_figure",
    "sweep_figures",
]

DPI = 120
FINISHED = "FINISHED"
MONO = "DejaVu Sans Mono"  # ships with matplotlib, so always available
CONFIG_SECTIONS = ("circuit", "noise", "simulator", "backend")
_MAX_LIST = 6  # list items shown in the config panel before "..."
_MAX_VALUE_CHARS = 48  # a config value is cut after this many characters
_MAX_CONFIG_LINES = 30

_LABELS = {
    **{m.key: m.axis_label for m in METRICS},
    "circuit.n_qubits": "qubits",
    "noise.level": "noise level",
}


# --------------------------------------------------------------------------- helpers


def _new_figure(**kwargs: Any) -> Figure:
    """A pyplot-free Figure on the Agg backend (matplotlib imported here, not at module load)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        # switching with pyplot loaded would close the user's open figures
        matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` as a PNG at :data:`DPI` dpi, then close it.

    Parent directories are created. Returns the path written.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, dpi=DPI, format="png")
    finally:
        if "matplotlib.pyplot" in sys.modules:  # figures from pyplot.figure() are tracked there
            import matplotlib.pyplot as plt

            plt.close(fig)
        fig.clear()
    return out


def _label(key: str) -> str:
    return _LABELS.get(key, key)


def _finished(row: Mapping[str, Any]) -> bool:
    return "status" not in row or row.get("status") == FINISHED


def _sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers first in numeric order, then everything else by its text."""
    num = number(value)
    if num is not None:
        return (0, num, "")
    return (1, 0.0, str(value))


def _group_name(value: Any) -> str:
    return "-" if value is None else str(value)


def _collect(
    rows: Iterable[Mapping[str, Any]], metric: str, x: str, group: str | None
) -> dict[str, dict[Any, list[float]]]:
    """{group label: {x value: [metric values]}} over the usable rows."""
    out: dict[str, dict[Any, list[float]]] = {}
    for row in rows:
        if not _finished(row):
            continue
        value = number(row.get(metric))
        xv = row.get(x)
        if value is None or xv is None:
            continue
        g = _group_name(row.get(group)) if group else ""
        out.setdefault(g, {}).setdefault(xv, []).append(value)
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _sorted_counts(counts: Mapping[str, int] | None) -> list[tuple[str, int]]:
    items = [(str(k), int(v)) for k, v in (counts or {}).items()]
    return sorted(items, key=lambda kv: (-kv[1], kv[0]))


def _short_id(run: Mapping[str, Any], index: int) -> str:
    rid = run.get("run_id")
    return str(rid)[:8] if rid else f"run{index}"


def _no_data(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


# ------------------------------------------------------------------------ histograms


def _draw_histogram(ax: Axes, counts: Mapping[str, int], top: int) -> str:
    """Bars of the ``top`` most frequent outcomes on ``ax``; returns the "others" note or ""."""
    items = _sorted_counts(counts)
    shots = sum(v for _, v in items)
    shown = items[: max(1, top)]
    probs = [v / shots if shots else 0.0 for _, v in shown]
    labels = [k for k, _ in shown]
    ax.bar(range(len(shown)), probs, color="#4c72b0")
    ax.set_xticks(range(len(shown)))
    longest = max(len(s) for s in labels)
    ax.set_xticklabels(
        labels,
        rotation=90 if longest > 4 else 45,
        ha="center" if longest > 4 else "right",
        fontfamily=MONO,
        fontsize=8 if len(shown) > 8 or longest > 8 else 9,
    )
    ax.set_ylabel("probability")
    ax.set_ylim(0, max(probs) * 1.1 if max(probs) > 0 else 1)
    ax.grid(axis="y", alpha=0.3)
    rest = items[len(shown) :]
    if not rest:
        return ""
    others = sum(v for _, v in rest) / shots if shots else 0.0
    return f"(+{len(rest)} others, {others:.1%})"


def histogram_figure(counts: Mapping[str, int] | None, *, top: int = 16, title: str = "") -> Figure:
    """Bar chart of the ``top`` most frequent bitstrings, y = count / shots."""
    if not counts:
        raise ValueError("histogram_figure: no counts to plot (were shots > 0?)")
    fig = _new_figure(figsize=(max(5.0, 0.45 * min(top, len(counts)) + 2), 4), layout="constrained")
    ax = fig.add_subplot()
    note = _draw_histogram(ax, counts, top)
    shots = sum(int(v) for v in counts.values())
    head = title or f"measurement outcomes ({shots} shots)"
    ax.set_title(f"{head} {note}".strip())
    return fig


# --------------------------------------------------------------------------- summary


def _scalar(value: Any) -> str:
    """A config value as text; floats short (``0.30000000000000004`` -> ``0.3``)."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for k in value:
            out += _flatten(f"{prefix}.{k}" if prefix else str(k), value[k])
        return out or [(prefix, "{}")]
    if isinstance(value, list | tuple):
        items = [_scalar(v) for v in value[:_MAX_LIST]]
        more = f", ... (+{len(value) - _MAX_LIST})" if len(value) > _MAX_LIST else ""
        text = "[" + ", ".join(items) + more + "]"
    else:
        text = _scalar(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return [(prefix, text)]


def _config_lines(config: Mapping[str, Any] | None) -> list[str]:
    pairs: list[tuple[str, str]] = []
    for section in CONFIG_SECTIONS:
        if config and section in config and config[section] is not None:
            pairs += _flatten(section, config[section])
    if not pairs:
        return ["(no configuration)"]
    if len(pairs) > _MAX_CONFIG_LINES:
        extra = len(pairs) - (_MAX_CONFIG_LINES - 1)
        pairs = pairs[: _MAX_CONFIG_LINES - 1] + [("...", f"(+{extra} more)")]
    return [f"{k} = {v}" if k != "..." else f"... {v}" for k, v in pairs]


def _text_panel(ax: Axes, title: str, lines: Sequence[str], *, fontsize: float = 9) -> None:
    ax.axis("off")
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    ax.text(
        0.0,
        1.0,
        "\n".join(lines),
        transform=ax.transAxes,
        va="top",
        ha="left",
        fontfamily=MONO,
        fontsize=fontsize,
        linespacing=1.35,
    )


def _suptitle(result: Mapping[str, Any], config: Mapping[str, Any] | None) -> str:
    config = config or {}
    circuit = config.get("circuit") or {}
    noise = config.get("noise") or {}
    name = circuit.get("name") if isinstance(circuit, Mapping) else None
    n = result.get("n_qubits")
    if n is None and isinstance(circuit, Mapping):
        n = circuit.get("n_qubits")
    parts = [str(name or "circuit"), f"n={n if n is not None else '?'}"]
    if isinstance(noise, Mapping) and noise.get("name"):
        level = noise.get("level")
        parts.append(
            f"noise: {noise['name']}" + (f" (level {level:g})" if number(level) is not None else "")
        )
    else:
        parts.append("noise: none")
    return "  |  ".join(parts)


def summary_figure(result: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> Figure:
    """A 2x2 overview of one run.

    (a) top measured states, (b) key metrics, (c) the circuit/noise/simulator/backend
    config, (d) run info, with the rank after every moment below it when ``rank_history``
    is present (the figure then has 5 axes, otherwise 4).
    """
    fig = _new_figure(figsize=(14, 9.5), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.1])
    ax_hist = fig.add_subplot(grid[0, 0])
    ax_metrics = fig.add_subplot(grid[0, 1])
    ax_config = fig.add_subplot(grid[1, 0])
    history = [h for h in (result.get("rank_history") or []) if number(h) is not None]
    if history:
        sub = grid[1, 1].subgridspec(2, 1, height_ratios=[1, 1.15])
        ax_info = fig.add_subplot(sub[0])
        ax_rank = fig.add_subplot(sub[1])
    else:
        ax_info = fig.add_subplot(grid[1, 1])
        ax_rank = None

    # (a) top states
    counts = result.get("counts")
    if counts:
        note = _draw_histogram(ax_hist, counts, 16)
        shots = sum(int(v) for v in counts.values())
        ax_hist.set_title(
            f"(a) top states, {shots} shots {note}".strip(),
            loc="left",
            fontsize=11,
            fontweight="bold",
        )
    else:
        ax_hist.set_title("(a) top states", loc="left", fontsize=11, fontweight="bold")
        _no_data(ax_hist, "no counts (shots=0)")

    # (b) what was simulated, then the figures by section (as the terminal shows them)
    flat = _flat_config(config)
    head = describe(flat, result)
    sections = summary_sections({**result, "rank_history": None})
    width = max(len(k) for _, rows in [("", head), *sections] for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in head]
    for (title, reference), rows in sections:
        head = f"-- {title}" + (f" ({reference})" if reference else "")
        lines += ["", head, *(f"{k:<{width}}  {v}" for k, v in rows)]
    _text_panel(
        ax_metrics,
        "(b) what was simulated, and its figures",
        lines,
        fontsize=9 if len(lines) <= 28 else (8 if len(lines) <= 34 else 7),
    )

    # (c) configuration
    lines = _config_lines(config)
    _text_panel(
        ax_config,
        "(c) configuration",
        lines,
        fontsize=9 if len(lines) <= 18 else (8 if len(lines) <= 24 else 7),
    )

    # (d) run info (+ rank history)
    info = [
        ("run_id", result.get("run_id")),
        ("status", result.get("status")),
        ("backend_used", result.get("backend_used")),
        ("n_qubits / depth", f"{result.get('n_qubits', 'n/a')} / {result.get('depth', 'n/a')}"),
        ("started", result.get("started_at")),
        ("completed", result.get("completed_at")),
    ]
    width = max(len(k) for k, _ in info)
    info_lines = [f"{k:<{width}}  {'n/a' if v is None else v}" for k, v in info]
    error = result.get("error")
    if error:
        wrapped = textwrap.wrap(f"error: {error}", width=64, subsequent_indent="  ")
        if len(wrapped) > 4:
            wrapped = wrapped[:3] + ["  ..."]
        info_lines += wrapped
    _text_panel(ax_info, "(d) run info", info_lines)
    if ax_rank is not None:
        _draw_rank(ax_rank, history, result.get("dense_spans") or [])

    fig.suptitle(_suptitle(result, config), fontsize=14)
    return fig


def _flat_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    from lret_runner.tracking.vocabulary import flatten

    return flatten(dict(config or {}))


def _draw_rank(ax: Axes, history: Sequence[float], spans: Sequence[Sequence[int]]) -> None:
    """The rank held after every moment; moments LRET held a dense matrix shaded."""
    ax.step(range(len(history)), history, where="post", color="#dd8452", label="rank held")
    for i, (first, last) in enumerate(spans):
        ax.axvspan(
            first, last + 1, color="0.6", alpha=0.3, lw=0, label="dense (2^n)" if i == 0 else None
        )
    ax.set_xlabel("moment", fontsize=9)
    ax.set_ylabel("rank", fontsize=9)
    ax.set_title("rank after every moment", loc="left", fontsize=10)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    if spans:
        ax.legend(fontsize=7, loc="upper left")


# --------------------------------------------------------------------------- sweeps


def _apply_scale(
    ax: Axes, values: Sequence[float], axis: str = "y", force_log: bool = False
) -> None:
    """Log scale when all values are positive and span >= 2 decades (or ``force_log``)."""
    if not values:
        return
    lo, hi = min(values), max(values)
    setter = ax.set_yscale if axis == "y" else ax.set_xscale
    if lo > 0 and (force_log or hi / lo >= 100):
        setter("log")
    elif force_log and hi > 0:
        positive = [v for v in values if v > 0]
        setter("symlog", linthresh=min(positive) if positive else 1.0)


def scaling_figure(
    rows: Sequence[Mapping[str, Any]],
    metric: str = "simulation_time_seconds",
    x: str = "circuit.n_qubits",
    group: str = "simulator.name",
) -> Figure:
    """``metric`` against ``x``, one line per ``group`` (mean over repeats), log y axis."""
    data = _collect(rows, metric, x, group)
    if not data:
        raise ValueError(f"scaling_figure: no finished rows with both {x!r} and {metric!r}")
    fig = _new_figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    values: list[float] = []
    for g in sorted(data):
        xs = sorted(data[g], key=_sort_key)
        ys = [_mean(data[g][xv]) for xv in xs]
        values += ys
        ax.plot(xs, ys, marker="o", label=g)
    _apply_scale(ax, values, "y", force_log=True)
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(metric))
    ax.set_title(f"{_label(metric)} vs {_label(x)}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(title=group)
    return fig


def backend_comparison_figure(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] = ("simulation_time_seconds", "exact_fidelity"),
    x: str = "circuit.n_qubits",
    group: str = "simulator.name",
) -> Figure:
    """Grouped bars: for every ``x`` value one bar per ``group``; one subplot per metric."""
    if not metrics:
        raise ValueError("backend_comparison_figure: no metrics given")
    collected = {m: _collect(rows, m, x, group) for m in metrics}
    if not any(collected.values()):
        raise ValueError(
            f"backend_comparison_figure: no finished rows with {x!r} and any of {list(metrics)}"
        )
    groups = sorted({g for data in collected.values() for g in data})
    xs = sorted(
        {xv for data in collected.values() for d in data.values() for xv in d}, key=_sort_key
    )
    fig = _new_figure(figsize=(max(6.0, 5.0 * len(metrics)), 4.5), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    width = 0.8 / len(groups)
    for ax, metric in zip(axes, metrics, strict=True):
        data = collected[metric]
        ax.set_title(_title(metric), fontsize=10)
        if not data:
            _no_data(ax, f"no {metric} values")
            continue
        values: list[float] = []
        for i, g in enumerate(groups):
            pos, heights = [], []
            for j, xv in enumerate(xs):
                if xv in data.get(g, {}):
                    pos.append(j - 0.4 + width * (i + 0.5))
                    heights.append(_mean(data[g][xv]))
            values += heights
            bars = ax.bar(pos, heights, width=width, label=g, color=f"C{i}")
            if "fidelity" in metric:  # bars near 1 look alike: the values say how near
                ax.bar_label(bars, fmt="%.5f", rotation=90, fontsize=7, label_type="center")
        _apply_scale(ax, values, "y")
        ax.set_xticks(range(len(xs)))
        ax.set_xticklabels([str(v) for v in xs])
        ax.set_xlabel(_label(x))
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(title=group, fontsize=8)
    return fig


def _level_scale(ax: Axes, levels: set[float]) -> None:
    """A log x axis when the levels span a decade or more; symlog (linear below the smallest
    positive level) when they include 0, so that the noiseless point is shown."""
    positive = sorted(v for v in levels if v > 0)
    if positive and min(levels) >= 0:
        if 0 in levels:
            ax.set_xscale("symlog", linthresh=positive[0])
            # no negative decade: 0 just inside the left edge, the largest level inside the right
            ax.set_xlim(-0.15 * positive[0], positive[-1] * 1.6)
        elif positive[-1] / positive[0] >= 10:
            ax.set_xscale("log")


def _title(metric: str) -> str:
    """A metric's label with what it is measured against."""
    m = METRIC.get(metric)
    if m is None or not m.reference:
        return _label(metric)
    return f"{m.label}\n(against {m.reference})"


NOISE_FIGURES = ("ideal_fidelity", "ideal_tvd")  # how far noise moved the output


def noise_impact_figure(
    rows: Sequence[Mapping[str, Any]],
    x: str = "noise.level",
    group: str = "noise.name",
    metrics: Sequence[str] = NOISE_FIGURES,
    target: float | None = 0.99,
) -> Figure:
    """Each of ``metrics`` against the noise level, one line per noise model (one panel
    per metric; a dashed ``target`` line on the fidelity panels).

    The x axis is logarithmic when the levels are positive and span a decade or more,
    symlog (linear below the smallest positive level) when they include 0.
    """
    panels = {}
    for metric in metrics:
        data = _collect(rows, metric, x, group)
        data = {g: {k: v for k, v in d.items() if number(k) is not None} for g, d in data.items()}
        if any(data.values()):
            panels[metric] = {g: d for g, d in data.items() if d}
    if not panels:
        raise ValueError(
            f"noise_impact_figure: no finished rows with numeric {x!r} and any of {list(metrics)}"
        )
    fig = _new_figure(figsize=(6.5 * len(panels), 4.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (metric, data) in zip(axes, panels.items(), strict=True):
        levels: set[float] = set()
        for g in sorted(data):
            xs = sorted(data[g], key=_sort_key)
            levels.update(float(v) for v in xs)
            ax.plot([float(v) for v in xs], [_mean(data[g][v]) for v in xs], marker="o", label=g)
        if target is not None and "fidelity" in metric:
            ax.axhline(target, linestyle="--", color="0.35", label=f"target {target:g}")
        _level_scale(ax, levels)
        ax.set_xlabel(_label(x))
        ax.set_ylabel(_label(metric))
        ax.set_title(_title(metric), fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(title=group, fontsize=8)
    return fig


FIDELITIES = ("ideal_fidelity", "exact_fidelity")


def fidelity_over_runs_figure(
    rows: Sequence[Mapping[str, Any]], target: float = 0.99, x: str | None = None
) -> Figure:
    """Each fidelity the runs have (to the noiseless circuit, to the exact state: one panel
    each) against the swept parameter ``x`` (default: the first config key that varies;
    the run index when none does), one line per value of the other swept keys; a dashed
    line at ``target``; failed runs marked with x at their position. A sweep of the engine's
    settings (``simulator.*``, ``backend.*``) shows only the fidelity to the exact state."""
    rows = list(rows)
    # the swept config keys with scalar values (a list, such as Optuna's circuit.angles,
    # is no axis: those trials are drawn in their order)
    swept = [
        k
        for k in varying_columns(rows)
        if k.startswith(CONFIG_SECTIONS + ("run.",))
        and not any(isinstance(r.get(k), list | tuple | dict) for r in rows)
    ]
    x = x or (swept[0] if swept else None)
    others = _independent(rows, [k for k in swept if k != x])
    # a sweep of the engine's own settings asks how accurate it is: the fidelity to the
    # noiseless circuit would only show how much noise a loose truncation dropped
    engine_sweep = any(
        k.startswith(("simulator.", "backend.")) and k != "simulator.name"
        for k in [x or "", *others]
    )
    present = [
        m
        for m in (("exact_fidelity",) if engine_sweep else FIDELITIES)
        if any(_finished(r) and number(r.get(m)) is not None for r in rows)
    ]
    if not present:
        raise ValueError("fidelity_over_runs_figure: no finished run has a fidelity")
    if x is None:
        rows = [{**r, "run index": i} for i, r in enumerate(rows)]
        x = "run index"
    values = sorted({r.get(x) for r in rows if r.get(x) is not None}, key=_sort_key)
    numeric = all(number(v) is not None for v in values)
    position = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
    fig = _new_figure(figsize=(6.5 * len(present), 4.8), layout="constrained")
    axes = fig.subplots(1, len(present), squeeze=False)[0]
    for ax, metric in zip(axes, present, strict=True):
        lines: dict[str, list[tuple[float, float]]] = {}
        failed = []
        for r in rows:
            if r.get(x) is None:
                continue
            if not _finished(r):
                failed.append(position[r.get(x)])
                continue
            f = number(r.get(metric))
            if f is not None:
                name = ", ".join(f"{k}={_scalar(r.get(k))}" for k in others)
                lines.setdefault(name, []).append((position[r.get(x)], f))
        below = sum(f < target for pts in lines.values() for _, f in pts)
        total = sum(len(pts) for pts in lines.values())
        for name in sorted(lines):
            pts = sorted(lines[name])
            label = name or METRIC[metric].label
            ax.plot([p for p, _ in pts], [f for _, f in pts], marker="o", label=label)
        ax.axhline(target, linestyle="--", color="0.35", label=f"target {target:g}")
        if failed:
            ax.plot(
                failed,
                [0.03] * len(failed),
                linestyle="none",
                marker="x",
                color="C3",
                markersize=9,
                label=f"failed ({len(failed)})",
                transform=ax.get_xaxis_transform(),
            )
        if numeric:  # levels, thresholds: log where they span decades, 0 kept in view
            _level_scale(ax, set(position.values()))
            if ax.get_xscale() == "linear" and len(values) <= 12:
                ax.set_xticks([float(v) for v in values])  # the swept values, not 4.5 qubits
        if not numeric:
            ax.set_xticks(range(len(values)))
            ax.set_xticklabels([str(v) for v in values], rotation=45, ha="right", fontsize=8)
        ax.set_xlabel(_label(x))
        ax.set_ylabel(_label(metric))
        m = METRIC[metric]
        ax.set_title(
            f"{m.label}: {below} of {total} runs below {target:g}\n(against {m.reference})",
            fontsize=10,
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    return fig


def _independent(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    """``keys`` less those whose value the kept ones already determine (lret's settings are
    set where simulator.name is lret and unset elsewhere: they name no line of their own).
    Keys with more distinct values are kept first."""
    kept: list[str] = []
    for key in sorted(keys, key=lambda k: (-len(_distinct(rows, k)), k)):
        seen: dict[tuple[str, ...], str] = {}
        determined = True
        for r in rows:
            known = tuple(repr(r.get(k)) for k in kept)
            if seen.setdefault(known, repr(r.get(key))) != repr(r.get(key)):
                determined = False
                break
        if not determined:
            kept.append(key)
    return sorted(kept)


def comparison_figure(
    runs: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] = (
        "simulation_time_seconds",
        "ideal_fidelity",
        "exact_fidelity",
        "final_rank",
        "memory_used_mb",
        "truncation_error",
    ),
) -> Figure:
    """One bar subplot per metric, one bar per run (labelled by the first 8 chars of run_id).

    Every run keeps its x position in every subplot; a missing value is written "n/a"
    (or "failed" for a run that did not finish) instead of a bar.
    """
    if not runs:
        raise ValueError("comparison_figure: no runs to compare")
    if not metrics:
        raise ValueError("comparison_figure: no metrics given")
    table = [[number(r.get(m)) if _finished(r) else None for r in runs] for m in metrics]
    if all(v is None for col in table for v in col):
        raise ValueError(f"comparison_figure: no finished run has any of {list(metrics)}")
    labels = [_short_id(r, i) for i, r in enumerate(runs)]
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig = _new_figure(
        figsize=(max(4.0, 0.6 * len(runs) + 2.5) * ncols, 3.8 * nrows), layout="constrained"
    )
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(metrics) :]:
        fig.delaxes(ax)
    for ax, metric, col in zip(axes, metrics, table, strict=False):
        pos = [i for i, v in enumerate(col) if v is not None]
        heights = [col[i] for i in pos]
        bars = ax.bar(pos, heights, color=[f"C{i % 10}" for i in pos])
        ax.bar_label(
            bars,
            labels=[fmt(h, "sci" if metric == "truncation_error" else "g") for h in heights],
            fontsize=7,
            padding=2,
        )
        for i, v in enumerate(col):
            if v is None:
                ax.text(
                    i,
                    0,
                    "failed" if not _finished(runs[i]) else "n/a",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color="0.4",
                    rotation=90,
                )
        if heights:
            top = max(heights)
            ax.set_ylim(min(0.0, min(heights)), top * 1.15 if top > 0 else 1.0)
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontfamily=MONO, fontsize=8)
        ax.set_xlim(-0.6, len(runs) - 0.4)
        ax.set_title(_title(metric), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    return fig


def _distinct(rows: Sequence[Mapping[str, Any]], key: str) -> set[str]:
    return {repr(r[key]) for r in rows if r.get(key) is not None}


def sweep_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Figure]:
    """The figures that fit a sweep, keyed by file stem.

    - ``scaling``: more than one distinct ``circuit.n_qubits``;
    - ``backend_comparison``: more than one distinct ``simulator.name`` (time, and the
      fidelity to the exact state);
    - ``noise_impact``: more than one distinct ``noise.level`` (the fidelity and TVD to the
      noiseless circuit; the final rank when no run has them);
    - ``fidelity_over_runs``: any run has a fidelity (to the noiseless circuit or the exact
      state), against the swept parameter.

    A chosen figure with nothing to plot (e.g. every run failed) is left out.
    """
    rows = list(rows)
    has_noise_figures = any(number(r.get(m)) is not None for r in rows for m in NOISE_FIGURES)
    makers: dict[str, Any] = {}
    if len(_distinct(rows, "circuit.n_qubits")) > 1:
        makers["scaling"] = lambda: scaling_figure(rows)
    if len(_distinct(rows, "simulator.name")) > 1:
        makers["backend_comparison"] = lambda: backend_comparison_figure(rows)
    if len(_distinct(rows, "noise.level")) > 1:
        metrics = NOISE_FIGURES if has_noise_figures else ("final_rank",)
        makers["noise_impact"] = lambda: noise_impact_figure(rows, metrics=metrics)
    if any(number(r.get(m)) is not None for r in rows for m in FIDELITIES):
        x = "noise.level" if len(_distinct(rows, "noise.level")) > 1 else None
        makers["fidelity_over_runs"] = lambda: fidelity_over_runs_figure(rows, x=x)
    out: dict[str, Figure] = {}
    for stem, make in makers.items():
        try:
            out[stem] = make()
        except ValueError:
            continue
    return out
