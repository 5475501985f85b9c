"""LRET's adaptive representation (factor <-> dense) and the cost model behind it and ``auto``."""

from __future__ import annotations

import cirq
import numpy as np
import pytest

from lret_runner import metrics
from lret_runner.circuits import ghz, random_circuit
from lret_runner.errors import ConfigError
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators import FdmSimulator, LretSimulator, compile_circuit, costs
from lret_runner.simulators import lret as lret_module


def depolarized(n: int, depth: int, level: float, seed: int = 5, placement: str = "moment"):
    circuit = random_circuit(n_qubits=n, depth=depth, seed=seed)
    return add_noise(circuit, build_noise_model("depolarizing", level=level, placement=placement))


@pytest.mark.parametrize("placement", ["moment", "gate"])
def test_goes_dense_when_the_rank_makes_it_cheaper_and_stays_exact(placement: str) -> None:
    """At n = 10 a channel on a factor of rank 1 costs less than a dense moment, of rank 16 more
    (at n = 8 a dense moment is cheaper from rank 1 on: it switches at the first channel)."""
    n = 10
    circuit = depolarized(n, 12, 0.02, placement=placement)
    exact = FdmSimulator().run(circuit)
    out = LretSimulator(rank_threshold=0).run(circuit)
    (switch,) = out.representation_switches
    assert switch["to"] == "dense" and 1 < switch["rank"] < 2**n
    assert isinstance(out.state, metrics.Dense)
    assert out.rank_history[switch["moment"]] == 2**n  # the width while dense
    assert out.rank_history[: switch["moment"]] == [
        h for h in out.rank_history[: switch["moment"]] if h < 2**n
    ]
    assert metrics.trace_distance(out.state, exact.state) < 1e-10
    assert out.final_rank == exact.final_rank
    small = depolarized(8, 12, 0.02, placement=placement)
    factor = LretSimulator(rank_threshold=0, representation="factor").run(small)
    assert factor.representation_switches == [] and isinstance(factor.state, metrics.LowRank)


def test_returns_to_the_factor_when_a_truncation_brings_the_rank_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Strong noise makes the state dense; resetting every qubit (amplitude damping with
    probability 1) makes it pure again, so the next try returns to a rank-1 factor."""
    monkeypatch.setattr(lret_module, "_RETURN_AFTER", 0.0)  # try after every dense moment
    n = 8
    circuit = depolarized(n, 10, 0.05)
    qubits = cirq.LineQubit.range(n)
    circuit.append(cirq.Moment(cirq.amplitude_damp(1.0).on(q) for q in qubits))
    circuit += random_circuit(n_qubits=n, depth=4, seed=9)
    exact = FdmSimulator().run(circuit)
    out = LretSimulator(rank_threshold=1e-6).run(circuit)
    assert [s["to"] for s in out.representation_switches] == ["dense", "factor"]
    assert out.representation_switches[1]["rank"] == 1
    assert isinstance(out.state, metrics.LowRank) and out.final_rank == 1
    assert out.rank_history[-1] == 1
    distance = metrics.trace_distance(out.state, exact.state)
    assert distance <= out.truncation_error + 1e-9
    assert 1 - metrics.fidelity(out.state, metrics.to_low_rank(exact.state)) < 1e-9


def test_a_dense_state_that_does_not_fit_keeps_the_factor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    circuit = depolarized(8, 12, 0.02)
    budget = 2**8 * 16 * lret_module.WORKING_FACTOR * 2**7  # rank 128 fits, dense does not
    out = LretSimulator(rank_threshold=0, max_memory_gb=budget / 2**30).run(circuit)
    assert out.representation_switches == [] and isinstance(out.state, metrics.LowRank)


def test_representation_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"simulator.representation='sparse' is invalid"):
        LretSimulator(representation="sparse")


def test_prediction_noiseless_stays_rank_one() -> None:
    pred = costs.predict(compile_circuit(ghz(n_qubits=12)), rank_threshold=1e-4)
    assert pred.lret_rank == 1 and pred.lret_dense_from is None
    assert pred.lret_seconds < pred.fdm_seconds / 100


def test_prediction_high_noise_goes_dense_low_noise_stays_factor() -> None:
    high = costs.predict(compile_circuit(depolarized(8, 20, 0.01)), rank_threshold=1e-4)
    assert high.lret_dense_from is not None
    low = costs.predict(compile_circuit(depolarized(12, 20, 1e-4)), rank_threshold=1e-4)
    assert low.lret_dense_from is None and low.lret_seconds < low.fdm_seconds / 10


def test_model_truncation_keeps_what_the_engine_keeps() -> None:
    """The branch-weight model and the engine truncate one spectrum the same way."""
    weights = np.array([0.5, 0.3, 0.1, 1e-3, 5e-4, 2e-4, 1e-5])
    weights = weights / weights.sum()
    kept, _ = costs._truncate(weights, 1e-3, cap=10, dim=2**10)
    engine = LretSimulator(rank_threshold=1e-3)
    w, _, _ = engine._keep(np.diag(weights).astype(np.complex128), 10)
    assert np.allclose(np.sort(kept), np.sort(w / w.sum()))
