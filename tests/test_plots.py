"""Matplotlib figures: structure of every figure, PNG output, sweep selection, lazy import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

import matplotlib.image as mpimg  # noqa: E402
from conftest import SAMPLE_RESULT as RESULT  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lret_runner import plots  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CONFIG = {
    "circuit": {"name": "ghz", "n_qubits": 4, "gates": list(range(20))},
    "noise": {"name": "depolarizing", "level": 0.01},
    "simulator": {"name": "lret", "rank_threshold": 1e-4, "max_rank": None},
    "backend": {"name": "local"},
    "tracking": {"uri": "never shown"},
}


def row(
    sim: str = "lret",
    n: int = 4,
    level: float = 0.01,
    noise: str = "depolarizing",
    status: str = "FINISHED",
    **metrics: object,
) -> dict[str, object]:
    base: dict[str, object] = {
        "run_id": f"{sim}-{n}-{level}-{noise}".ljust(12, "x"),
        "simulator.name": sim,
        "circuit.n_qubits": n,
        "noise.level": level,
        "noise.name": noise,
        "status": status,
        "simulation_time_seconds": 0.001 * 2**n,
        "exact_fidelity": 1 - level,
        "ideal_fidelity": (1 - level) ** 2,
        "ideal_tvd": level / 2,
        "final_rank": n,
        "memory_used_mb": float(n),
        "truncation_error": 1e-6,
    }
    base.update(metrics)
    return base


NO_FIDELITY: dict[str, object] = dict(exact_fidelity=None, ideal_fidelity=None, ideal_tvd=None)


def texts(fig: Figure) -> str:
    """All text drawn in a figure (titles, labels, tick labels, free text)."""
    from matplotlib.text import Text

    return "\n".join(t.get_text() for t in fig.findobj(Text))


def visible_axes(fig: Figure) -> int:
    return len(fig.axes)


# ---------------------------------------------------------------------- histogram


def test_histogram_top_bars_and_others_note() -> None:
    counts = {format(i, "05b"): 100 - i for i in range(20)}
    fig = plots.histogram_figure(counts, top=16, title="ghz")
    (ax,) = fig.axes
    assert len(ax.patches) == 16
    shots = sum(counts.values())
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([(100 - i) / shots for i in range(16)])
    assert [t.get_text() for t in ax.get_xticklabels()] == [format(i, "05b") for i in range(16)]
    assert "others" in ax.get_title() and ax.get_title().startswith("ghz")


def test_histogram_untruncated_has_no_note_and_sorts() -> None:
    fig = plots.histogram_figure({"01": 10, "00": 30, "11": 10})
    (ax,) = fig.axes
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.get_xticklabels()] == ["00", "01", "11"]
    assert "others" not in ax.get_title()
    assert sum(p.get_height() for p in ax.patches) == pytest.approx(1.0)


@pytest.mark.parametrize("counts", [None, {}])
def test_histogram_empty_raises(counts: dict[str, int] | None) -> None:
    with pytest.raises(ValueError, match="no counts"):
        plots.histogram_figure(counts)


# ------------------------------------------------------------------------ summary


def test_summary_panels_with_rank_history() -> None:
    fig = plots.summary_figure(RESULT, CONFIG)
    assert isinstance(fig, Figure)
    assert visible_axes(fig) == 5  # (a) (b) (c) (d) + rank history
    hist, _, _, _, rank = fig.axes
    assert len(hist.patches) == 16
    assert len(rank.lines) == 1
    assert list(rank.lines[0].get_ydata()) == RESULT["rank_history"]
    text = texts(fig)
    assert "0.987654" in text and "n/a" in text  # fidelity shown, trace distance missing
    assert "circuit.n_qubits = 4" in text and "simulator.max_rank = None" in text
    assert "(+14)" in text  # the long list is truncated
    assert "never shown" not in text  # tracking is not part of the config panel
    assert RESULT["run_id"] in text
    assert "ghz" in fig.get_suptitle() and "n=4" in fig.get_suptitle()
    assert "depolarizing" in fig.get_suptitle()


def test_summary_config_values_are_short() -> None:
    config = {"circuit": {"name": "qaoa", "gammas": [0.1 + 0.2], "label": "x" * 200}}
    text = texts(plots.summary_figure(RESULT, config))
    assert "circuit.gammas = [0.3]" in text
    label = next(line for line in text.splitlines() if line.startswith("circuit.label"))
    assert label.endswith("...") and len(label) < 80


def test_summary_without_counts_history_and_with_error() -> None:
    result = dict(
        RESULT, counts=None, rank_history=None, status="FAILED", error="boom " * 40, **NO_FIDELITY
    )
    fig = plots.summary_figure(result, {})
    assert visible_axes(fig) == 4
    text = texts(fig)
    assert "no counts (shots=0)" in text
    assert "error: boom" in text
    assert "(no configuration)" in text
    assert len(fig.axes[0].patches) == 0


# ------------------------------------------------------------------------- sweeps


def test_scaling_lines_per_group_log_y_and_skips() -> None:
    rows = [row(sim, n) for sim in ("lret", "fdm") for n in (2, 4, 6)]
    rows += [row("cirq", 4, status="FAILED"), row("cirq", 6, simulation_time_seconds=None)]
    fig = plots.scaling_figure(rows)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.lines] == ["fdm", "lret"]  # sorted, cirq skipped
    assert list(ax.lines[1].get_xdata()) == [2, 4, 6]
    assert list(ax.lines[1].get_ydata()) == pytest.approx([0.004, 0.016, 0.064])


def test_scaling_averages_repeats() -> None:
    rows = [
        row(n=2, simulation_time_seconds=1.0),
        row(n=2, simulation_time_seconds=3.0),
        row(n=3, simulation_time_seconds=4.0),
    ]
    (ax,) = plots.scaling_figure(rows).axes
    assert list(ax.lines[0].get_ydata()) == pytest.approx([2.0, 4.0])


def test_backend_comparison_grouped_bars() -> None:
    rows = [row(sim, n) for sim in ("lret", "fdm", "cirq") for n in (2, 4)]
    rows.append(row("fdm", 8))  # only one group has n=8
    fig = plots.backend_comparison_figure(rows)
    assert visible_axes(fig) == 2
    for ax in fig.axes:
        assert len(ax.patches) == 7
        assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "4", "8"]
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["cirq", "fdm", "lret"]


def test_backend_comparison_metric_without_data() -> None:
    rows = [row(sim, 4, **NO_FIDELITY) for sim in ("lret", "fdm")]
    fig = plots.backend_comparison_figure(rows, metrics=("final_rank", "exact_fidelity"))
    assert len(fig.axes[0].patches) == 2
    assert len(fig.axes[1].patches) == 0
    assert "no exact_fidelity values" in texts(fig)


def test_noise_impact_symlog_with_zero() -> None:
    rows = [
        row(level=lv, noise=name)
        for name in ("damping", "depolarizing")
        for lv in (0.0, 0.001, 0.01, 0.1)
    ]
    fig = plots.noise_impact_figure(rows)
    fid_ax, tvd_ax = fig.axes  # fidelity and TVD to the noiseless circuit
    assert "against the noiseless circuit" in fid_ax.get_title()
    assert fid_ax.get_xscale() == tvd_ax.get_xscale() == "symlog"  # 0 is shown
    labels = [line.get_label() for line in fid_ax.lines]
    assert labels == ["damping", "depolarizing", "target 0.99"]
    assert list(fid_ax.lines[0].get_xdata()) == [0.0, 0.001, 0.01, 0.1]
    assert list(fid_ax.lines[0].get_ydata()) == pytest.approx([1.0, 0.998001, 0.9801, 0.81])
    assert [line.get_label() for line in tvd_ax.lines] == ["damping", "depolarizing"]


def test_noise_impact_log_without_zero_and_linear_for_narrow_range() -> None:
    fig = plots.noise_impact_figure([row(level=lv) for lv in (0.001, 0.01, 0.1)])
    assert [ax.get_xscale() for ax in fig.axes] == ["log", "log"]
    fig = plots.noise_impact_figure([row(level=lv) for lv in (0.02, 0.04)])
    assert [ax.get_xscale() for ax in fig.axes] == ["linear", "linear"]


def test_fidelity_over_runs_target_and_failed_marks() -> None:
    rows = [
        row(level=0.001),
        row(level=0.05),
        row(status="FAILED", **NO_FIDELITY),
        row(**NO_FIDELITY),
        row(level=0.0),
    ]
    fig = plots.fidelity_over_runs_figure(rows, target=0.99)
    ideal_ax, exact_ax = fig.axes  # one panel per fidelity, each saying its reference
    assert "against the noiseless circuit" in ideal_ax.get_title()
    assert "against the exact state of the same noisy circuit" in exact_ax.get_title()
    fid, target, failed = exact_ax.lines
    assert exact_ax.get_xlabel() == "noise level"  # the swept parameter, not run ids
    assert list(fid.get_xdata()) == [0.0, 0.001, 0.05]  # in level order
    assert list(fid.get_ydata()) == pytest.approx([1.0, 0.999, 0.95])
    assert target.get_linestyle() == "--"
    assert list(target.get_ydata()) == [0.99, 0.99]
    assert list(failed.get_xdata()) == [0.01]  # at its level
    assert failed.get_marker() == "x"
    assert "1 of 3 runs below 0.99" in exact_ax.get_title()
    assert list(ideal_ax.lines[0].get_ydata()) == pytest.approx([1.0, 0.998001, 0.9025])


def test_fidelity_over_runs_one_line_per_other_swept_key() -> None:
    rows = [row(sim, level=lv) for sim in ("lret", "fdm") for lv in (0.0, 0.01)]
    ideal_ax, _ = plots.fidelity_over_runs_figure(rows, x="noise.level").axes
    labels = [line.get_label() for line in ideal_ax.lines]
    assert labels == ["simulator.name=fdm", "simulator.name=lret", "target 0.99"]
    # a sweep of the engine's settings: its accuracy only (a truncation that drops the noise
    # would look best against the noiseless circuit)
    rows = [row(rank_threshold=t) for t in (0.0, 1e-4, 1e-2)]
    rows = [{**r, "simulator.rank_threshold": r.pop("rank_threshold")} for r in rows]
    (ax,) = plots.fidelity_over_runs_figure(rows).axes
    assert ax.get_xlabel() == "simulator.rank_threshold" and ax.get_xscale() == "symlog"
    assert "against the exact state" in ax.get_title()
    # a list-valued key (Optuna's circuit.angles) is no axis: the run index is
    rows = [{**row(), "circuit.angles": [0.1 * i, 0.2]} for i in range(3)]
    (ax, _) = plots.fidelity_over_runs_figure(rows).axes
    assert ax.get_xlabel() == "run index" and len(ax.lines[0].get_xdata()) == 3
    # nothing swept: against the run index
    (ax, _) = plots.fidelity_over_runs_figure([row(), row()]).axes
    assert ax.get_xlabel() == "run index" and len(ax.lines) == 2


def test_comparison_one_subplot_per_metric_one_bar_per_run() -> None:
    runs = [
        dict(RESULT, run_id=f"{i:08d}abcdef", exact_fidelity=0.9 + i / 100, ideal_fidelity=0.8)
        for i in range(3)
    ]
    runs.append(dict(RESULT, run_id="deadbeefcafe", status="FAILED"))
    fig = plots.comparison_figure(runs)
    assert visible_axes(fig) == 6
    for ax in fig.axes:
        assert len(ax.patches) == 3  # the failed run has no bar ...
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels == ["00000000", "00000001", "00000002", "deadbeef"]  # ... but keeps its slot
    fid_ax = fig.axes[2]
    assert "against the exact state of the same noisy circuit" in fid_ax.get_title()
    assert [p.get_height() for p in fid_ax.patches] == pytest.approx([0.9, 0.91, 0.92])
    assert "failed" in texts(fig)


def test_comparison_custom_metrics_and_none_values() -> None:
    runs = [dict(RESULT, **NO_FIDELITY), dict(RESULT, run_id="ffffffff0000")]
    fig = plots.comparison_figure(runs, metrics=("exact_fidelity",))
    (ax,) = fig.axes
    assert len(ax.patches) == 1
    assert "n/a" in texts(fig)


@pytest.mark.parametrize(
    "make",
    [
        lambda: plots.scaling_figure([]),
        lambda: plots.scaling_figure([row(status="FAILED")]),
        lambda: plots.backend_comparison_figure([row(**NO_FIDELITY, simulation_time_seconds=None)]),
        lambda: plots.noise_impact_figure([row(**NO_FIDELITY)]),
        lambda: plots.fidelity_over_runs_figure([]),
        lambda: plots.fidelity_over_runs_figure([row(status="FAILED")]),
        lambda: plots.comparison_figure([]),
        lambda: plots.comparison_figure([dict(RESULT, status="FAILED")]),
    ],
)
def test_nothing_to_plot_raises(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="no "):
        make()


# ----------------------------------------------------------------- sweep_figures


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([row(n=n) for n in (2, 4, 6)], {"scaling", "fidelity_over_runs"}),
        ([row(sim) for sim in ("lret", "fdm")], {"backend_comparison", "fidelity_over_runs"}),
        ([row(level=lv) for lv in (0.0, 0.01)], {"noise_impact", "fidelity_over_runs"}),
        ([row(n=n, **NO_FIDELITY) for n in (2, 4)], {"scaling"}),
        ([row(), row()], {"fidelity_over_runs"}),
        ([row(**NO_FIDELITY)], set()),
        ([], set()),
        (
            [row(sim, n, lv) for sim in ("lret", "fdm") for n in (2, 3) for lv in (0.0, 0.1)],
            {"scaling", "backend_comparison", "noise_impact", "fidelity_over_runs"},
        ),
    ],
)
def test_sweep_figures_selection(rows: list[dict[str, object]], expected: set[str]) -> None:
    figs = plots.sweep_figures(rows)
    assert set(figs) == expected
    assert all(isinstance(f, Figure) for f in figs.values())


def test_sweep_noise_impact_falls_back_to_rank_without_fidelity() -> None:
    figs = plots.sweep_figures([row(level=lv, **NO_FIDELITY) for lv in (0.0, 0.1)])
    assert set(figs) == {"noise_impact"}
    assert figs["noise_impact"].axes[0].get_ylabel() == "final rank"


def test_sweep_skips_figures_with_nothing_to_plot() -> None:
    # two sizes, but every run failed: no scaling figure, and no exception
    assert plots.sweep_figures([row(n=n, status="FAILED") for n in (2, 4)]) == {}


# -------------------------------------------------------------------------- save


def test_save_writes_valid_png(tmp_path: Path) -> None:
    fig = plots.summary_figure(RESULT, CONFIG)
    width_px, height_px = (fig.get_size_inches() * plots.DPI).round().astype(int)
    out = plots.save(fig, tmp_path / "nested" / "summary.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    image = mpimg.imread(out)
    assert image.ndim == 3 and image.shape[0] > 0 and image.shape[1] > 0
    assert image.shape[:2] == (height_px, width_px)  # written at DPI dots per inch
    assert len(fig.axes) == 0  # closed


def test_save_closes_pyplot_figures(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = plt.figure()
    fig.add_subplot().plot([0, 1])
    num = fig.number
    plots.save(fig, tmp_path / "p.png")
    assert not plt.fignum_exists(num)
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize(
    "make",
    [
        lambda: plots.histogram_figure(RESULT["counts"]),
        lambda: plots.scaling_figure([row(n=n) for n in (2, 4)]),
        lambda: plots.backend_comparison_figure([row(s) for s in ("lret", "fdm")]),
        lambda: plots.noise_impact_figure([row(level=lv) for lv in (0.0, 0.1)]),
        lambda: plots.fidelity_over_runs_figure([row(), row(status="FAILED")]),
        lambda: plots.comparison_figure([RESULT, RESULT]),
    ],
)
def test_every_figure_saves(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = plots.save(make(), tmp_path / "f.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert min(mpimg.imread(out).shape[:2]) > 0


# ------------------------------------------------------------------- lazy import


def test_import_does_not_load_matplotlib() -> None:
    code = (
        "import sys, lret_runner.plots, lret_runner.tables\n"
        "heavy = [m for m in ('matplotlib', 'mlflow', 'cirq', 'hydra') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
