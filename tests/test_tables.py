"""Terminal charts and tables: histogram bars, sparklines, rich tables as plain text."""

from __future__ import annotations

import pytest
from conftest import SAMPLE_RESULT as RESULT
from rich.table import Table

from lret_runner.tables import (
    BLOCKS,
    FULL,
    SPARKS,
    histogram,
    metrics_table,
    render,
    rows_table,
    rows_text,
    sparkline,
)


def bar_of(line: str) -> str:
    return "".join(ch for ch in line if ch == FULL or ch in BLOCKS[1:])


# ------------------------------------------------------------------------ histogram


def test_histogram_bars_proportional_2_to_1() -> None:
    lines = histogram({"00": 200, "11": 100}, width=40).splitlines()
    assert len(lines) == 2
    assert bar_of(lines[0]) == FULL * 40
    assert bar_of(lines[1]) == FULL * 20


def test_histogram_partial_blocks_and_line_format() -> None:
    # 3/16 of 8 cells = 1.5 cells: one full block and a half block
    lines = histogram({"0101": 16, "1010": 3}, width=8).splitlines()
    assert bar_of(lines[1]) == FULL + "▌"
    assert lines[0] == "0101  " + FULL * 8 + "  16  84.2%"
    assert lines[1] == "1010  " + (FULL + "▌").ljust(8) + "   3  15.8%"


def test_histogram_tiny_count_is_visible() -> None:
    lines = histogram({"0": 10_000, "1": 1}, width=10).splitlines()
    assert bar_of(lines[1]) == "▏"


def test_histogram_order_count_desc_then_bitstring() -> None:
    lines = histogram({"11": 5, "01": 7, "10": 5, "00": 1}).splitlines()
    assert [line.split()[0] for line in lines] == ["01", "10", "11", "00"]


def test_histogram_truncation_note() -> None:
    counts = {format(i, "04b"): 100 - i for i in range(16)}
    lines = histogram(counts, top=5).splitlines()
    assert len(lines) == 6
    assert lines[-1] == "(+11 more outcomes)"
    assert lines[0].startswith("0000")
    assert "(+" not in histogram(counts, top=16)


@pytest.mark.parametrize("counts", [None, {}])
def test_histogram_empty(counts: dict[str, int] | None) -> None:
    assert histogram(counts) == "no counts"


def test_histogram_percentages() -> None:
    out = histogram({"0": 512, "1": 512})
    assert out.count("50.0%") == 2


# ------------------------------------------------------------------------ sparkline


def test_sparkline_min_max_and_length() -> None:
    line = sparkline([3, 1, 2, 5, 4])
    assert len(line) == 5
    assert line[1] == SPARKS[0] and line[3] == SPARKS[-1]
    assert line == "▅▁▃█▆"  # (v - 1) / 4 * 7 rounded half up: 3.5 -> 4, 1.75 -> 2, 5.25 -> 5


def test_sparkline_monotone_uses_all_levels() -> None:
    assert sparkline(range(8)) == SPARKS


def test_sparkline_constant_and_empty() -> None:
    assert sparkline([7, 7, 7]) == "▁▁▁"
    assert sparkline([]) == ""


def test_sparkline_downsample_keeps_bucket_max() -> None:
    values = [0] * 100
    values[37] = 10  # a single spike must survive the downsampling
    line = sparkline(values, width=10)
    assert len(line) == 10
    assert line == "▁▁▁█▁▁▁▁▁▁"
    # no downsampling when the series already fits
    assert len(sparkline([1, 2, 3], width=10)) == 3


def test_sparkline_none_is_a_gap() -> None:
    assert sparkline([0, None, 1]) == "▁ █"


# ------------------------------------------------------------------------- tables


def test_metrics_table_contents() -> None:
    table = metrics_table(RESULT)
    assert isinstance(table, Table)
    assert [c.header for c in table.columns] == ["Metric", "Value"]
    text = render(table)
    for expected in (
        "0123456789abcdef0123456789abcdef",
        "FINISHED",
        "lret",
        "0.123 s",
        "0.987654",
        "3.20e-07",
        "1.5 MB",
        "0.750000",
        sparkline(RESULT["rank_history"]),
    ):
        assert expected in text, expected
    trace_line = next(line for line in text.splitlines() if "trace distance" in line)
    assert "n/a" in trace_line


def test_the_truncation_bound_is_the_uncertainty_of_the_noise_figures() -> None:
    # a truncation moves <psi|rho|psi> and a measured TVD by at most the trace distance it
    # causes, which truncation_error bounds
    result = {**RESULT, "ideal_fidelity": 1.0, "ideal_tvd": 0.0, "truncation_error": 0.24}
    lines = render(metrics_table(result)).splitlines()
    fidelity = next(line for line in lines if "fidelity to noiseless" in line)
    assert "1.000000 ± 2.4e-01 (truncation bound)" in fidelity
    exact = {**result, "truncation_error": 0.0}
    assert "±" not in render(metrics_table(exact))


def test_metrics_table_missing_everything() -> None:
    text = render(metrics_table({}))
    # every non-optional figure (optional ones, energy, XEB..., are left out), the status,
    # what was simulated (circuit, noise, engine) and the two references
    assert text.count("n/a") == 19


ROWS = [
    {"run_id": "aaa", "simulator.name": "lret", "circuit.n_qubits": 4, "exact_fidelity": 0.5},
    {"run_id": "bbbbbb", "simulator.name": "fdm", "circuit.n_qubits": 10, "exact_fidelity": None},
]
COLUMNS = ["run_id", "simulator.name", "circuit.n_qubits", "exact_fidelity"]


def test_rows_table_generic() -> None:
    table = rows_table(ROWS, COLUMNS, title="sweep")
    assert table.title == "sweep"
    assert [c.header for c in table.columns] == COLUMNS
    assert table.row_count == 2
    text = render(table)
    assert "sweep" in text and "bbbbbb" in text and "0.5" in text
    assert "-" in next(line for line in text.splitlines() if "bbbbbb" in line)


def test_rows_text_fixed_width() -> None:
    text = rows_text(ROWS, COLUMNS)
    lines = text.splitlines()
    assert lines[0].split() == COLUMNS
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["aaa", "lret", "4", "0.5"]
    assert lines[3].split() == ["bbbbbb", "fdm", "10", "-"]
    # numeric columns right-aligned: the ends of "4" and "10" line up
    assert lines[2].index("4") + 1 == lines[3].index("10") + 2
    assert "\x1b" not in text and "┃" not in text


def test_render_plain_text() -> None:
    text = render(rows_table(ROWS, COLUMNS))
    assert "\x1b[" not in text
    assert "aaa" in text
    assert render("hello") == "hello\n"
