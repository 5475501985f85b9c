"""metrics.py: every code path of fidelity and trace distance against each other, against a
direct scipy.linalg.sqrtm computation, against cirq.fidelity and against closed forms."""

from __future__ import annotations

import warnings

import cirq
import numpy as np
import pytest
import scipy.linalg
import scipy.stats
from threadpoolctl import threadpool_limits

from lret_runner import metrics
from lret_runner.metrics import Dense, LowRank


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread (see tests/test_simulators.py); results do not depend on it."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def random_factor(rng: np.random.Generator, dim: int, rank: int) -> np.ndarray:
    """A Ginibre factor L (dim x rank) with tr(L L^dagger) = 1."""
    f = rng.normal(size=(dim, rank)) + 1j * rng.normal(size=(dim, rank))
    return f / np.linalg.norm(f)


def sqrtm_fidelity(rho: np.ndarray, sigma: np.ndarray) -> float:
    """(tr sqrt(sqrt(rho) sigma sqrt(rho)))^2 straight from the definition."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrtm warns on singular matrices
        s = scipy.linalg.sqrtm(rho)
        return float(np.trace(scipy.linalg.sqrtm(s @ sigma @ s)).real ** 2)


def direct_trace_distance(rho: np.ndarray, sigma: np.ndarray) -> float:
    return 0.5 * float(np.abs(np.linalg.eigvalsh(rho - sigma)).sum())


# (seed, rank_a, rank_b) on n = 3: low ranks, full rank, and mixed
PAIRS = [(0, 1, 1), (1, 1, 5), (2, 3, 2), (3, 4, 8), (4, 8, 8), (5, 2, 7), (6, 6, 3), (7, 8, 1)]


@pytest.mark.parametrize("seed, ra, rb", PAIRS)
def test_fidelity_paths_agree_with_sqrtm(seed: int, ra: int, rb: int) -> None:
    rng = np.random.default_rng(seed)
    la, lb = random_factor(rng, 8, ra), random_factor(rng, 8, rb)
    rho, sigma = la @ la.conj().T, lb @ lb.conj().T
    a, b, da, db = LowRank(la), LowRank(lb), Dense(rho), Dense(sigma)
    ref = sqrtm_fidelity(rho, sigma)
    assert 0.0 <= ref <= 1.0
    # the low-rank vs low-rank path (singular values of L_a^dagger L_b) is accurate
    f_lr = metrics.fidelity(a, b)
    assert abs(f_lr - metrics.fidelity(b, a)) < 1e-12
    assert abs(f_lr - cirq.fidelity(rho, sigma, qid_shape=(2,) * 3, validate=False)) < 1e-7
    # sqrtm of a singular matrix is itself only accurate to ~1e-8
    tol_ref = 1e-10 if ra == rb == 8 else 1e-7
    assert abs(f_lr - ref) < tol_ref
    # the paths through a dense matrix (factored by eigendecomposition) agree to rounding
    for f in (
        metrics.fidelity(a, db),
        metrics.fidelity(da, b),
        metrics.fidelity(da, db),
        metrics.fidelity(db, da),
    ):
        assert abs(f - f_lr) < 1e-10
        assert abs(f - ref) < tol_ref


@pytest.mark.parametrize("seed, ra, rb", PAIRS)
def test_trace_distance_paths_agree(seed: int, ra: int, rb: int) -> None:
    rng = np.random.default_rng(seed)
    la, lb = random_factor(rng, 8, ra), random_factor(rng, 8, rb)
    rho, sigma = la @ la.conj().T, lb @ lb.conj().T
    ref = direct_trace_distance(rho, sigma)
    a, b, da, db = LowRank(la), LowRank(lb), Dense(rho), Dense(sigma)
    for t in (
        metrics.trace_distance(a, b),
        metrics.trace_distance(b, a),
        metrics.trace_distance(a, db),
        metrics.trace_distance(da, b),
        metrics.trace_distance(da, db),
    ):
        assert abs(t - ref) < 1e-12
    # Fuchs-van de Graaf: 1 - sqrt(F) <= T <= sqrt(1 - F)
    f = metrics.fidelity(a, b)
    assert 1 - np.sqrt(f) <= ref + 1e-12
    assert ref <= np.sqrt(1 - f) + 1e-12


def test_trace_distance_more_columns_than_rows() -> None:
    # r_a + r_b > 2^n: the QR of [L_a | L_b] is wide
    rng = np.random.default_rng(42)
    la, lb = random_factor(rng, 4, 4), random_factor(rng, 4, 3)
    ref = direct_trace_distance(la @ la.conj().T, lb @ lb.conj().T)
    assert abs(metrics.trace_distance(LowRank(la), LowRank(lb)) - ref) < 1e-12


def test_commuting_states_closed_forms() -> None:
    p = np.array([0.5, 0.25, 0.125, 0.125, 0, 0, 0, 0])
    q = np.array([0.125, 0.125, 0.25, 0.25, 0.25, 0, 0, 0])
    u = scipy.stats.unitary_group.rvs(8, random_state=1)
    rho, sigma = (u * p) @ u.conj().T, (u * q) @ u.conj().T
    f = np.sqrt(p * q).sum() ** 2
    t = 0.5 * np.abs(p - q).sum()
    a, b = metrics.to_low_rank(Dense(rho)), metrics.to_low_rank(Dense(sigma))
    assert a.factor.shape[1] == 4 and b.factor.shape[1] == 5
    assert abs(metrics.fidelity(a, b) - f) < 1e-12
    assert abs(metrics.trace_distance(a, b) - t) < 1e-12
    assert abs(metrics.trace_distance(Dense(rho), Dense(sigma)) - t) < 1e-12
    assert abs(metrics.fidelity(Dense(rho), Dense(sigma)) - f) < 1e-7


@pytest.mark.parametrize("seed", range(5))
def test_fidelity_with_a_pure_state(seed: int) -> None:
    rng = np.random.default_rng(seed)
    psi = random_factor(rng, 8, 1)[:, 0]
    lb = random_factor(rng, 8, int(rng.integers(1, 9)))
    rho = lb @ lb.conj().T
    expected = float(np.real(psi.conj() @ rho @ psi))
    pure_lr, pure_dense = LowRank(psi[:, None]), Dense(np.outer(psi, psi.conj()))
    # the pure state first: exact to rounding on every path
    assert abs(metrics.fidelity(pure_lr, Dense(rho)) - expected) < 1e-12
    assert abs(metrics.fidelity(pure_lr, LowRank(lb)) - expected) < 1e-12
    assert abs(metrics.fidelity(LowRank(lb), pure_lr) - expected) < 1e-12
    assert abs(metrics.fidelity(pure_dense, Dense(rho)) - expected) < 1e-12
    assert abs(metrics.fidelity(pure_lr, pure_lr) - 1) < 1e-12
    # the pure state second, through a dense matrix: symmetric to rounding
    assert abs(metrics.fidelity(Dense(rho), pure_dense) - expected) < 1e-12


def test_dense_fidelity_is_accurate_to_rounding() -> None:
    errors = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        psi = random_factor(rng, 8, 1)[:, 0]
        lb = random_factor(rng, 8, 8)
        rho = lb @ lb.conj().T
        expected = float(np.real(psi.conj() @ rho @ psi))
        pure = Dense(np.outer(psi, psi.conj()))
        errors.append(abs(metrics.fidelity(Dense(rho), pure) - expected))
    # two commuting states sharing 30 eigenvalues of 1e-10 (closed form)
    d = 32
    p = np.array([0.6, 0.4] + [1e-10] * (d - 2))
    q = np.array([0.4, 0.6] + [1e-10] * (d - 2))
    p[1] -= p[2:].sum()
    q[1] -= q[2:].sum()
    u = scipy.stats.unitary_group.rvs(d, random_state=0)
    rho, sigma = (u * p) @ u.conj().T, (u * q) @ u.conj().T
    expected = np.sqrt(p * q).sum() ** 2
    # the low-rank path and Cirq get this right to ~1e-15
    lr = metrics.fidelity(metrics.to_low_rank(Dense(rho)), metrics.to_low_rank(Dense(sigma)))
    assert abs(lr - expected) < 1e-12
    errors.append(abs(metrics.fidelity(Dense(rho), Dense(sigma)) - expected))
    assert max(errors) < 1e-12, max(errors)


def test_fidelity_of_identical_noisy_states_is_one_with_low_rank_path() -> None:
    rng = np.random.default_rng(3)
    lb = random_factor(rng, 16, 5)
    state = LowRank(lb)
    assert abs(metrics.fidelity(state, state) - 1) < 1e-12
    assert metrics.trace_distance(state, state) < 1e-12
    assert metrics.fidelity(state, LowRank(lb * 1.0000001)) <= 1.0  # clipped at 1


def test_purity_closed_forms() -> None:
    rng = np.random.default_rng(0)
    for rank in (1, 3, 8):
        la = random_factor(rng, 8, rank)
        rho = la @ la.conj().T
        expected = float(np.real(np.trace(rho @ rho)))
        assert abs(metrics.purity(LowRank(la)) - expected) < 1e-12
        assert abs(metrics.purity(Dense(rho)) - expected) < 1e-12
    assert abs(metrics.purity(Dense(np.eye(8) / 8)) - 1 / 8) < 1e-15
    assert abs(metrics.purity(LowRank(np.eye(8) / np.sqrt(8))) - 1 / 8) < 1e-15
    assert abs(metrics.purity(LowRank(random_factor(rng, 8, 1))) - 1) < 1e-12
    # diag(p): purity = sum p^2
    p = np.array([0.7, 0.2, 0.1, 0.0])
    assert abs(metrics.purity(LowRank(np.diag(np.sqrt(p)))) - (p**2).sum()) < 1e-15


def test_rank_and_to_low_rank() -> None:
    rng = np.random.default_rng(5)
    la = random_factor(rng, 8, 3)
    rho = la @ la.conj().T
    assert metrics.rank(Dense(rho)) == 3
    assert metrics.rank(LowRank(np.hstack([la, la]))) == 3
    lr = metrics.to_low_rank(Dense(rho))
    assert lr.factor.shape == (8, 3)
    assert np.abs(lr.factor @ lr.factor.conj().T - rho).max() < 1e-14
    assert LowRank(la).n_qubits == Dense(rho).n_qubits == 3


def test_probabilities_and_expectation_against_cirq() -> None:
    rng = np.random.default_rng(9)
    la = random_factor(rng, 8, 3)
    rho = la @ la.conj().T
    q = cirq.LineQubit.range(3)
    qubit_map = {qq: i for i, qq in enumerate(q)}
    for state in (LowRank(la), Dense(rho)):
        assert np.abs(metrics.probabilities(state) - np.real(np.diagonal(rho))).max() < 1e-15
        assert abs(metrics.trace(state) - 1) < 1e-14
        for label in ("ZII", "IXI", "IIY", "XYZ", "ZZI", "III"):
            ps = cirq.DensePauliString(label).on(*q)
            expected = ps.expectation_from_density_matrix(rho, qubit_map).real
            assert abs(metrics.expectation(state, label.lower()) - expected) < 1e-14


@pytest.mark.parametrize("bad", ["ZZ", "ZZZZ", "ZAZ", ""])
def test_invalid_pauli_strings(bad: str) -> None:
    with pytest.raises(ValueError, match="observable .* is invalid: need a string of 3"):
        metrics.validate_pauli(bad, 3)


def test_sample_counts() -> None:
    probs = np.array([0.1, 0.0, 0.2, 0.05, 0.15, 0.0, 0.3, 0.2])
    a = metrics.sample_counts(probs, 10_000, seed=7)
    b = metrics.sample_counts(probs, 10_000, seed=7)
    c = metrics.sample_counts(probs, 10_000, seed=8)
    assert a == b
    assert a != c
    assert sum(a.values()) == 10_000
    assert list(a) == sorted(a)
    assert all(len(k) == 3 and set(k) <= {"0", "1"} for k in a)
    assert all(v > 0 for v in a.values())
    assert "001" not in a and "101" not in a  # zero-probability outcomes never appear
    # bitstrings are big-endian: index 6 = '110' is the most likely
    assert max(a, key=a.get) == "110"
    for key, count in a.items():
        p = probs[int(key, 2)]
        sd = np.sqrt(10_000 * p * (1 - p))
        assert abs(count - 10_000 * p) < 5 * sd
    assert metrics.sample_counts(np.array([0.0, 0.0, 1.0, 0.0]), 5, seed=None) == {"10": 5}
    assert metrics.bitstring(4, 3) == "100"
    assert metrics.bitstring(1, 3) == "001"


def test_sample_counts_from_complex64_state() -> None:
    factor = np.array([[1], [1], [1], [0]], dtype=np.complex64) / np.sqrt(np.float32(3))
    probs = metrics.probabilities(LowRank(factor))
    counts = metrics.sample_counts(probs, 300, seed=0)
    assert sum(counts.values()) == 300 and "11" not in counts
