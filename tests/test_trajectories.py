"""simulator=trajectories: sampled pure states against fdm's exact density matrix.

Every comparison is "within 4 standard errors" with a fixed seed, so each test gives the same
answer on every run. Were the seeds drawn afresh, a figure would miss by chance with
probability about 6e-5 (a normal tail beyond 4 s.e.), a test of k figures about k x 6e-5.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import cirq
import numpy as np
import pytest

from lret_runner import metrics, tables
from lret_runner.accuracy import PROBABILITIES_SE
from lret_runner.circuits import layered
from lret_runner.experiment import RunResult, prepare_circuit, simulate
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators import ENGINES, compile_circuit, make_engine
from lret_runner.simulators.trajectories import TrajectoriesSimulator, pauli_mixture
from lret_runner.tracking import vocabulary as V

N = 6
EDGES = [(0, 1), (1, 2), (2, 5)]


def observables(n: int) -> list[str]:
    return ["ZZ" + "I" * (n - 2), "X" + "I" * (n - 2) + "X", "IYZ" + "I" * (n - 3)]


OBSERVABLES = observables(N)
Z = 4.0  # standard errors


def noisy_layered(model: str, level: float, n: int = N, layers: int = 3) -> cirq.Circuit:
    circuit = layered(n_qubits=n, layers=layers, seed=3)
    return add_noise(circuit, build_noise_model(model, level=level, placement="moment"))


def run(
    circuit: cirq.Circuit,
    engine: str,
    *,
    accuracy: float = 1e-2,
    seed: int = 1,
    threads: int | None = None,
    **params: Any,
) -> tuple[RunResult, np.ndarray]:
    """Every figure a run estimates: observables, an energy, a cut, a target, XEB."""
    n = len(circuit.all_qubits())
    target = np.zeros(2**n)
    target[[0, -1]] = 2**-0.5
    prepared = prepare_circuit(
        circuit,
        simulator=engine,
        simulator_params=params,
        accuracy=accuracy,
        seed=seed,
        xeb=True,
        observables=observables(n),
        hamiltonian=metrics.ising_chain(n, 1.0, 0.5, False),
        cut_edges=[(i, j) for i, j in EDGES if j < n],
        target=target,
        threads=threads,
        compare_to_exact=True,
    )
    result, out = simulate(prepared)
    return result, metrics.probabilities(out.state)


def figures(result: RunResult) -> dict[str, float]:
    """The estimated figures under their metric keys (those of ``standard_errors``)."""
    keys = ("ideal_fidelity", "xeb_fidelity", "energy", "expected_cut", "target_fidelity")
    out = {key: getattr(result, key) for key in keys}
    out.update({f"{V.EXPVAL_PREFIX}{k}": v for k, v in result.expectation_values.items()})
    return out


def assert_agree(
    got: tuple[RunResult, np.ndarray], exact: tuple[RunResult, np.ndarray], z: float = Z
) -> None:
    result, probs = got
    errors = result.standard_errors
    assert set(errors) == {*figures(result), PROBABILITIES_SE}
    for key, value in figures(result).items():
        assert abs(value - figures(exact[0])[key]) <= z * errors[key], key
    assert np.abs(probs - exact[1]).max() <= z * errors[PROBABILITIES_SE]
    assert result.purity is None and result.exact_fidelity is None


@pytest.fixture(scope="module")
def exact() -> Callable[[str, float], tuple[RunResult, np.ndarray]]:
    cache: dict[tuple[str, float], tuple[RunResult, np.ndarray]] = {}

    def get(model: str, level: float) -> tuple[RunResult, np.ndarray]:
        if (model, level) not in cache:
            cache[model, level] = run(noisy_layered(model, level), "fdm")
        return cache[model, level]

    return get


# ----------------------------------------------------------------- against fdm
@pytest.mark.parametrize("model", ["depolarizing", "amplitude_damping"])
def test_every_figure_agrees_with_fdm(model: str, exact: Callable[..., Any]) -> None:
    got = run(noisy_layered(model, 0.02), "trajectories")
    assert_agree(got, exact(model, 0.02))
    assert max(got[0].standard_errors.values()) <= 1e-2
    stratified = "stratified" in got[0].backend_reason
    assert stratified == (model == "depolarizing")  # amplitude damping: plain sampling


def test_stratified_agrees_with_plain_sampling_and_fdm(exact: Callable[..., Any]) -> None:
    circuit = noisy_layered("depolarizing", 0.005)
    stratified = run(circuit, "trajectories", stratify=True)
    plain = run(circuit, "trajectories", stratify=False)
    assert "stratified" in stratified[0].backend_reason
    assert "plain sampling" in plain[0].backend_reason
    for got in (stratified, plain):
        assert_agree(got, exact("depolarizing", 0.005))
    for key, value in figures(stratified[0]).items():
        both = np.hypot(stratified[0].standard_errors[key], plain[0].standard_errors[key])
        assert abs(value - figures(plain[0])[key]) <= Z * both, key
    # at low noise the error-free branch carries most of the weight: fewer trajectories
    assert stratified[0].trajectories is not None and plain[0].trajectories is not None
    assert stratified[0].trajectories < plain[0].trajectories


def test_pauli_channels_are_recognised() -> None:
    mix = pauli_mixture([np.asarray(k) for k in cirq.kraus(cirq.depolarize(0.03))])
    assert mix is not None and abs(mix.identity - 0.97) < 1e-12
    two = pauli_mixture([np.asarray(k) for k in cirq.kraus(cirq.depolarize(0.1, n_qubits=2))])
    assert two is not None and abs(two.identity - 0.9) < 1e-12 and len(two.probs) == 16
    # phase damping is a phase flip with probability (1 - sqrt(1 - g)) / 2
    phase = pauli_mixture([np.asarray(k) for k in cirq.kraus(cirq.phase_damp(0.19))])
    assert phase is not None and abs(phase.probs[3] - (1 - 0.9) / 2) < 1e-12
    assert pauli_mixture([np.asarray(k) for k in cirq.kraus(cirq.amplitude_damp(0.1))]) is None


# ----------------------------------------------------------------- reproducibility
def test_same_seed_same_numbers() -> None:
    circuit = noisy_layered("depolarizing", 0.02)
    first, again = (run(circuit, "trajectories", seed=5, accuracy=2e-2) for _ in range(2))
    assert figures(first[0]) == figures(again[0])
    assert first[0].standard_errors == again[0].standard_errors
    assert np.array_equal(first[1], again[1]) and first[0].counts == again[0].counts
    other = run(circuit, "trajectories", seed=6, accuracy=2e-2)
    assert figures(other[0]) != figures(first[0])


def test_thread_counts_agree(exact: Callable[..., Any]) -> None:
    circuit = noisy_layered("amplitude_damping", 0.02)
    one = run(circuit, "trajectories", threads=1, accuracy=2e-2)
    two = run(circuit, "trajectories", threads=2, accuracy=2e-2)
    for got in (one, two):
        assert_agree(got, exact("amplitude_damping", 0.02))
    for key, value in figures(one[0]).items():
        both = np.hypot(one[0].standard_errors[key], two[0].standard_errors[key])
        assert abs(value - figures(two[0])[key]) <= Z * both, key


# ----------------------------------------------------------------- how many trajectories
def test_accuracy_rule_stops_at_the_requested_error() -> None:
    circuit = noisy_layered("amplitude_damping", 0.02, n=4, layers=2)
    loose, _ = run(circuit, "trajectories", accuracy=2e-2)
    tight, _ = run(circuit, "trajectories", accuracy=7e-3)
    for result, accuracy in ((loose, 2e-2), (tight, 7e-3)):
        assert max(result.standard_errors.values()) <= accuracy
        assert not [w for w in result.warnings if "accuracy not met" in w]
    # the count grows as 1 / accuracy^2: (2 / 0.7)^2 is about 8
    assert loose.trajectories is not None and tight.trajectories is not None
    assert tight.trajectories > 4 * loose.trajectories


def test_cap_reached_says_which_figure_missed() -> None:
    result, _ = run(
        noisy_layered("amplitude_damping", 0.02),
        "trajectories",
        accuracy=1e-3,
        max_trajectories=100,
    )
    assert result.trajectories == 100
    (warning,) = [w for w in result.warnings if "accuracy not met" in w]
    assert "simulator.max_trajectories=100" in warning and "run.accuracy=0.001" in warning
    worst = max(result.standard_errors, key=lambda k: result.standard_errors[k])
    assert worst.removeprefix(V.EXPVAL_PREFIX) in warning


def test_fixed_count() -> None:
    result, _ = run(noisy_layered("amplitude_damping", 0.02), "trajectories", trajectories=50)
    assert result.trajectories == 50


def test_noiseless_circuit_is_one_state() -> None:
    circuit = layered(n_qubits=N, layers=3, seed=3)
    result, probs = run(circuit, "trajectories")
    exact, exact_probs = run(circuit, "fdm")
    assert result.trajectories == 0 and set(result.standard_errors.values()) == {0.0}
    assert abs(result.ideal_fidelity - 1.0) < 1e-6  # qsim computes in single precision
    assert np.abs(probs - exact_probs).max() < 1e-6


# ----------------------------------------------------------------- kernels
def test_numpy_kernel_agrees_with_fdm(exact: Callable[..., Any]) -> None:
    for model in ("depolarizing", "amplitude_damping"):
        got = run(noisy_layered(model, 0.02), "trajectories", kernel="numpy", accuracy=2e-2)
        assert "numpy kernel" in got[0].backend_reason
        assert not got[0].warnings
        assert_agree(got, exact(model, 0.02))


def test_without_qsim_the_fallback_says_so(
    monkeypatch: pytest.MonkeyPatch, exact: Callable[..., Any]
) -> None:
    monkeypatch.setitem(sys.modules, "qsimcirq", None)  # import qsimcirq raises ImportError
    got = run(noisy_layered("depolarizing", 0.02), "trajectories")
    assert "numpy kernel" in got[0].backend_reason
    (warning,) = got[0].warnings
    assert "qsimcirq is not installed" in warning
    assert "pip install 'lret_runner[trajectories]'" in warning
    assert_agree(got, exact("depolarizing", 0.02))


def test_kernel_qsim_without_qsim_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "qsimcirq", None)
    with pytest.raises(Exception, match=r"pip install 'lret_runner\[trajectories\]'"):
        make_engine("trajectories", kernel="qsim")


def test_qsim_kernel_is_used_when_installed() -> None:
    pytest.importorskip("qsimcirq")
    result, _ = run(noisy_layered("depolarizing", 0.02), "trajectories", threads=2)
    assert "qsim" in result.backend_reason and "2 threads" in result.backend_reason


# ----------------------------------------------------------------- the engine and the run
def test_registered_and_validated() -> None:
    assert ENGINES["trajectories"] is TrajectoriesSimulator
    assert make_engine("trajectories", accuracy=0.01, rank_threshold=0.1).sampled
    with pytest.raises(Exception, match=r"run\.accuracy=0 is invalid"):
        TrajectoriesSimulator(accuracy=0)
    with pytest.raises(Exception, match=r"simulator\.trajectories=1 is invalid"):
        TrajectoriesSimulator(trajectories=1)
    with pytest.raises(Exception, match=r"simulator\.kernel='gpu' is invalid"):
        TrajectoriesSimulator(kernel="gpu")


def test_progress_counts_trajectories() -> None:
    prog = compile_circuit(noisy_layered("amplitude_damping", 0.02))
    calls: list[tuple[int, int]] = []
    out = TrajectoriesSimulator(accuracy=2e-2).run(
        prog, progress=lambda done, total: calls.append((done, total)), seed=0
    )
    assert calls and calls[-1][0] == out.samples
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_result_reports_and_summarises_standard_errors() -> None:
    result, _ = run(noisy_layered("depolarizing", 0.02), "trajectories")
    logged = result.metrics()
    assert logged["ideal_fidelity_se"] == result.standard_errors["ideal_fidelity"]
    assert (
        logged[f"expval_{OBSERVABLES[0]}_se"] == result.standard_errors[f"expval_{OBSERVABLES[0]}"]
    )
    assert logged["trajectories"] == result.trajectories
    assert "not applicable" in result.exact_reference
    text = dict(row for _, rows in tables.summary_sections(result.to_dict()) for row in rows)
    trajectories = f"(1 s.e., {result.trajectories} trajectories)"
    assert trajectories in text["fidelity to noiseless"]
    assert trajectories in text[f"<{OBSERVABLES[0]}>"]
    assert trajectories in text["measured probabilities"]


def test_composed_config_runs(compose: Callable[..., Any]) -> None:
    from lret_runner.experiment import prepare

    cfg = compose(
        [
            "simulator=trajectories",
            "circuit=layered",
            "circuit.n_qubits=4",
            "circuit.layers=2",
            "noise=depolarizing",
            "noise.level=0.01",
            "run.accuracy=0.02",
            "simulator.max_trajectories=5000",
        ]
    )
    prepared = prepare(cfg)
    assert prepared.backend_used == "trajectories"
    result, _ = simulate(prepared)
    assert result.status == "FINISHED" and result.ideal_fidelity is not None
    assert max(result.standard_errors.values()) <= 0.02
