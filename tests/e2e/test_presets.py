"""Every preset runs once through ``python -m lret_runner``, at the smallest size that still
exercises what it is for. Sweep presets run as sweeps in test_sweep.py (``PRESETS``); a
preset added without a run here or there fails ``test_every_preset_is_exercised``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CONF_DIR

from e2e.test_sweep import PRESETS as SWEEP_PRESETS

# preset -> overrides that make it small (what it is for stays: ghz_noise keeps its 8-qubit
# parity observables, large_lret its max_rank cap without the exact comparison)
SINGLE_RUNS: dict[str, list[str]] = {
    "quickstart": ["circuit.n_qubits=3", "circuit.depth=4"],
    "ghz_noise": [],
    "qft_amplitude_damping": ["circuit.n_qubits=3"],
    "random_lret_vs_exact": ["circuit.n_qubits=4", "circuit.depth=4"],
    "vqe_thermal": ["circuit.n_qubits=3", "run.observables=[ZII]"],
    "qasm_file": [],
    "large_lret": ["circuit.n_qubits=6", "circuit.depth=6", "simulator.max_rank=4"],
}


def test_every_preset_is_exercised() -> None:
    presets = {p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")}
    swept = {p.id.split("-")[0] for p in SWEEP_PRESETS}
    assert presets == set(SINGLE_RUNS) | swept


@pytest.mark.parametrize("preset", sorted(SINGLE_RUNS))
def test_preset_runs(preset: str, run_cli: Any, tmp_path: Path) -> None:
    proc = run_cli([f"+experiment={preset}", "run.quiet=true", *SINGLE_RUNS[preset]], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = tmp_path.glob("outputs/**/result.json")
    result = json.loads(path.read_text())
    assert result["status"] == "FINISHED"
    if result["exact_fidelity"] is not None:
        assert 0.0 < result["exact_fidelity"] <= 1.0 + 1e-9
