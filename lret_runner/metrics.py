"""State metrics in pure numpy: probabilities, purity, fidelity, trace distance, Pauli expectations.

A state is either :class:`LowRank` (rho = L L^dagger, L of shape 2^n x r) or
:class:`Dense` (rho, 2^n x 2^n). Between two low-rank states nothing 2^n x 2^n is
formed: fidelity is an r_a x r_b singular-value problem (a dense state is factored by its
eigendecomposition first) and trace distance an (r_a + r_b) square one. Fidelity is
Uhlmann's, squared (Jozsa's convention, as ``cirq.fidelity``):
F(rho, sigma) = (tr sqrt(sqrt(rho) sigma sqrt(rho)))^2, which is <psi|sigma|psi> when
rho = |psi><psi|.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

PAULI = {
    "I": np.eye(2),
    "X": np.array([[0, 1], [1, 0]]),
    "Y": np.array([[0, -1j], [1j, 0]]),
    "Z": np.diag([1, -1]),
}


@dataclass(frozen=True)
class LowRank:
    """rho = L L^dagger; ``factor`` has shape (2^n, r)."""

    factor: np.ndarray

    @property
    def n_qubits(self) -> int:
        return int(self.factor.shape[0]).bit_length() - 1


@dataclass(frozen=True)
class Dense:
    """A full density matrix of shape (2^n, 2^n)."""

    matrix: np.ndarray

    @property
    def n_qubits(self) -> int:
        return int(self.matrix.shape[0]).bit_length() - 1


@dataclass(frozen=True)
class Sampled:
    """A state known from samples of pure states (quantum trajectories, rho = E|psi_k><psi_k|):
    its estimated diagonal (2^n). Its other figures are estimated by the engine that sampled
    it, with standard errors (``EngineOutput.estimates``); purity and the distances to another
    density matrix are not known."""

    diagonal: np.ndarray

    @property
    def n_qubits(self) -> int:
        return int(self.diagonal.shape[0]).bit_length() - 1


State = LowRank | Dense | Sampled


def probabilities(state: State) -> np.ndarray:
    """Diagonal of rho (basis index in Cirq's order), clipped at 0 and normalised."""
    if isinstance(state, LowRank):
        p = np.einsum("ij,ij->i", state.factor.conj(), state.factor).real
    elif isinstance(state, Sampled):
        p = state.diagonal
    else:
        p = np.diagonal(state.matrix).real
    p = np.clip(p.astype(np.float64), 0.0, None)  # float64 also for complex64 states
    return p / p.sum()


def trace(state: State) -> float:
    if isinstance(state, LowRank):
        return float(np.vdot(state.factor, state.factor).real)
    return float(np.trace(state.matrix).real)


def purity(state: State) -> float:
    """tr(rho^2); for a low-rank state ||L^dagger L||_F^2 (r x r)."""
    if isinstance(state, LowRank):
        gram = state.factor.conj().T @ state.factor
        return float(np.vdot(gram, gram).real)
    return float(np.vdot(state.matrix, state.matrix).real)


def fidelity(a: State, b: State) -> float:
    """Uhlmann fidelity (squared convention): (sum of singular values of L_a^dagger L_b)^2.

    With rho = L_a L_a^dagger and sigma = L_b L_b^dagger this is an r_a x r_b problem. A
    dense state is first factored through its eigendecomposition (``to_low_rank``): the
    cheaper tr sqrt(L^dagger sigma L) takes square roots of eigenvalues known only to
    ~1e-16, which costs ~1e-8 of accuracy, and fidelity vs the exact state must be exact.
    """
    overlap = to_low_rank(a).factor.conj().T @ to_low_rank(b).factor
    return min(float(np.linalg.svd(overlap, compute_uv=False).sum()) ** 2, 1.0)


def to_low_rank(state: State, tol: float = 1e-14) -> LowRank:
    """Factor a state as L L^dagger, dropping eigenvalues below ``tol`` x the largest."""
    if isinstance(state, LowRank):
        return state
    w, v = np.linalg.eigh((state.matrix + state.matrix.conj().T) / 2)
    keep = w > tol * max(w[-1], 0.0)
    return LowRank(v[:, keep] * np.sqrt(w[keep]))


def trace_distance(a: State, b: State) -> float:
    """T = 1/2 ||rho - sigma||_1.

    Two low-rank states: rho - sigma = W J W^dagger with W = [L_a | L_b] and
    J = diag(I, -I); with W = QR its eigenvalues are those of R J R^dagger, an
    (r_a + r_b) square problem. Otherwise the dense difference is diagonalised.
    """
    if isinstance(a, LowRank) and isinstance(b, LowRank):
        w = np.hstack([a.factor, b.factor])
        r = np.linalg.qr(w, mode="r")
        j = np.concatenate([np.ones(a.factor.shape[1]), -np.ones(b.factor.shape[1])])
        diff = (r * j) @ r.conj().T
    else:
        diff = dense(a) - dense(b)
    return 0.5 * float(np.abs(np.linalg.eigvalsh((diff + diff.conj().T) / 2)).sum())


def dense(state: State) -> np.ndarray:
    """The full density matrix (only for sizes where 4^n is affordable)."""
    if isinstance(state, Dense):
        return state.matrix
    return state.factor @ state.factor.conj().T


def rank(state: State, tol: float = 1e-12) -> int:
    """Numerical rank: eigenvalues above ``tol`` x trace."""
    if isinstance(state, LowRank):
        s = np.linalg.svd(state.factor, compute_uv=False) ** 2
    else:
        s = np.linalg.eigvalsh(state.matrix)
    return int((s > tol * s.sum()).sum())


def apply_local(tensor: np.ndarray, matrix: np.ndarray, targets: tuple[int, ...]) -> np.ndarray:
    """Multiply a (2,)*m + rest tensor by a 2^k x 2^k matrix on the axes ``targets``.

    The matrix index is big-endian over ``targets`` (Cirq's convention). Never builds
    the operator on the whole space: one tensordot on k axes.
    """
    k = len(targets)
    op = matrix.reshape((2,) * (2 * k))
    out = np.tensordot(op, tensor, axes=(list(range(k, 2 * k)), list(targets)))
    return np.moveaxis(out, list(range(k)), list(targets))


def _apply_pauli_string(tensor: np.ndarray, pauli: str) -> np.ndarray:
    for q, p in enumerate(pauli):
        if p != "I":
            tensor = apply_local(tensor, PAULI[p].astype(tensor.dtype), (q,))
    return tensor


def validate_pauli(pauli: str, n_qubits: int) -> str:
    """Upper-case and check a Pauli string such as ``ZZI`` (character q acts on qubit q)."""
    p = pauli.strip().upper()
    if len(p) != n_qubits or set(p) - set(PAULI):
        raise ValueError(
            f"observable {pauli!r} is invalid: need a string of {n_qubits} characters "
            "from I, X, Y, Z (character q acts on qubit q)"
        )
    return p


def expectation(state: State, pauli: str) -> float:
    """<P> = tr(P rho) for a Pauli string; for low rank sum_j <l_j|P|l_j> on the factor."""
    n = state.n_qubits
    p = validate_pauli(pauli, n)
    if isinstance(state, LowRank):
        r = state.factor.shape[1]
        t = state.factor.reshape((2,) * n + (r,))
        return float(np.vdot(t, _apply_pauli_string(t, p)).real)
    t = state.matrix.reshape((2,) * n + (2**n,))
    return float(np.trace(_apply_pauli_string(t, p).reshape(2**n, 2**n)).real)


def bitstring(index: int, n_qubits: int) -> str:
    """Basis index -> bitstring, qubit 0 first (Cirq's big-endian convention)."""
    return format(index, f"0{n_qubits}b")


def marginal(probs: np.ndarray, qubits: Sequence[int]) -> np.ndarray:
    """The distribution of ``qubits`` (indices in Cirq's order; the result's index has the
    first of them as its most significant bit), the other qubits summed out."""
    n = int(probs.shape[0]).bit_length() - 1
    if list(qubits) == list(range(n)):
        return probs
    others = tuple(q for q in range(n) if q not in qubits)
    out = probs.reshape((2,) * n).sum(axis=others)
    order = sorted(qubits)  # the axes left, in ascending qubit order
    return np.transpose(out, [order.index(q) for q in qubits]).reshape(-1)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """TVD = 1/2 sum_x |p(x) - q(x)| between two distributions over the same outcomes."""
    return 0.5 * float(np.abs(p - q).sum())


def hellinger_fidelity(p: np.ndarray, q: np.ndarray) -> float:
    """(sum_x sqrt(p(x) q(x)))^2 = (1 - H^2)^2 with H the Hellinger distance: the definition
    of Qiskit's ``hellinger_fidelity``."""
    return min(float(np.sqrt(p * q).sum()) ** 2, 1.0)


def linear_xeb(p: np.ndarray, ideal: np.ndarray) -> float:
    """The linear cross-entropy fidelity of ``p`` against the noiseless ``ideal``
    distribution, exactly: D sum_x p(x) ideal(x) - 1 (D outcomes). About 1 for a noiseless
    random circuit (Porter-Thomas), 0 for the uniform distribution."""
    return float(ideal.shape[0] * np.dot(p, ideal) - 1.0)


def linear_xeb_sampled(
    counts: Mapping[str, int], ideal: np.ndarray, qubits: Sequence[int]
) -> float:
    """:func:`linear_xeb` estimated from samples: D mean_i ideal(x_i) - 1, where ``counts``
    are keyed by bitstrings of every qubit (qubit 0 first) and ``ideal`` is the noiseless
    distribution of ``qubits``."""
    total = weighted = 0.0
    for bits, count in counts.items():
        index = int("".join(bits[q] for q in qubits), 2)
        weighted += count * float(ideal[index])
        total += count
    return float(ideal.shape[0] * weighted / total - 1.0)


def sample_counts(probs: np.ndarray, shots: int, seed: int | None) -> dict[str, int]:
    """Seeded multinomial sampling of ``shots`` outcomes; returns {bitstring: count}, sorted."""
    n = int(probs.shape[0]).bit_length() - 1
    counts = np.random.default_rng(seed).multinomial(shots, probs)
    nz = np.flatnonzero(counts)
    return {bitstring(int(i), n): int(counts[i]) for i in nz}


# ---------------------------------------------------------------- Hamiltonians, cuts, targets
PauliSum = list[tuple[str, float]]  # (Pauli string, real coefficient)


def ising_chain(n_qubits: int, coupling: float, field: float, periodic: bool) -> PauliSum:
    """H = -coupling sum Z_i Z_(i+1) - field sum X_i as a Pauli sum (a ring if periodic)."""
    n = n_qubits
    bonds = [(i, i + 1) for i in range(n - 1)]
    if periodic and n > 2:
        bonds.append((n - 1, 0))
    terms = [(_pauli_on(n, {i: "Z", j: "Z"}), -coupling) for i, j in bonds]
    return terms + [(_pauli_on(n, {i: "X"}), -field) for i in range(n)]


def _pauli_on(n_qubits: int, ops: dict[int, str]) -> str:
    return "".join(ops.get(q, "I") for q in range(n_qubits))


def energy(state: State, hamiltonian: PauliSum) -> float:
    """tr(H rho) for H a Pauli sum, exactly from the state (no sampling)."""
    return float(sum(c * expectation(state, p) for p, c in hamiltonian))


def pauli_sum_matrix(hamiltonian: PauliSum) -> np.ndarray:
    """H as a dense 2^n x 2^n matrix (for references: ground energies by diagonalisation)."""
    out = 0
    for pauli, c in hamiltonian:
        term = np.eye(1)
        for p in pauli:
            term = np.kron(term, PAULI[p])
        out = out + c * term
    return np.asarray(out)


def expected_cut(state: State, edges: list[tuple[int, int]]) -> float:
    """<C> for the cut size C = sum over edges of (1 - Z_i Z_j) / 2."""
    n = state.n_qubits
    return float(
        sum((1 - expectation(state, _pauli_on(n, {i: "Z", j: "Z"}))) / 2 for i, j in edges)
    )


MAX_CUT_MAX_QUBITS = 20  # the exact maximum cut is found by enumeration up to this size


def max_cut(n_qubits: int, edges: list[tuple[int, int]]) -> int | None:
    """The largest cut of the graph, by enumerating the 2^n partitions (None beyond
    :data:`MAX_CUT_MAX_QUBITS` qubits)."""
    if n_qubits > MAX_CUT_MAX_QUBITS:
        return None
    x = np.arange(2**n_qubits)
    best = np.zeros(2**n_qubits, dtype=np.int64)
    for i, j in edges:  # bit of qubit q: (x >> (n - 1 - q)) & 1
        best += ((x >> (n_qubits - 1 - i)) ^ (x >> (n_qubits - 1 - j))) & 1
    return int(best.max())


def state_overlap(state: State, vector: np.ndarray) -> float:
    """<psi|rho|psi>: the fidelity of rho with the pure state psi."""
    psi = vector.astype(np.complex128) / np.linalg.norm(vector)
    if isinstance(state, LowRank):
        return float(np.sum(np.abs(psi.conj() @ state.factor) ** 2))
    return float((psi.conj() @ state.matrix @ psi).real)


# ---------------------------------------------------------------- figures of pure states
@dataclass(frozen=True)
class PureFigures:
    """The figures a sampling engine estimates, each linear in rho (tr(A rho)), as functions
    of one pure state: their mean over pure states psi_k is the figure of
    rho = E|psi_k><psi_k|.

    Called as ``figures(psi, probs)`` with ``probs`` = |psi|^2 (float64); returns
    ``{key: value}`` with the keys of :class:`~lret_runner.experiment.RunResult`
    (``ideal_fidelity``, ``xeb_fidelity``, ``energy``, ``expected_cut``,
    ``target_fidelity``) and each observable under its Pauli string.
    """

    observables: tuple[str, ...] = ()
    hamiltonian: PauliSum | None = None
    cut_edges: tuple[tuple[int, int], ...] | None = None
    target: np.ndarray | None = None  # a state vector: target_fidelity
    ideal: np.ndarray | None = None  # the noiseless state vector: ideal_fidelity
    # the measured qubits: xeb_fidelity against the noiseless distribution over them
    xeb_qubits: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        xeb = None
        if self.xeb_qubits is not None and self.ideal is not None:
            xeb = marginal(np.abs(self.ideal.astype(np.complex128)) ** 2, self.xeb_qubits)
        object.__setattr__(self, "_xeb_ideal", xeb)

    @property
    def bounds(self) -> dict[str, tuple[float, float]]:
        """The range of each figure over pure states (a sampler's prior, see
        ``simulators.trajectories``; XEB's: a scrambled state's to the noiseless state's)."""
        out = {p: (-1.0, 1.0) for p in self.observables}
        if self.hamiltonian is not None:
            norm = float(sum(abs(c) for _, c in self.hamiltonian))
            out["energy"] = (-norm, norm)
        if self.cut_edges is not None:
            out["expected_cut"] = (0.0, float(len(self.cut_edges)))
        for key, vector in (("target_fidelity", self.target), ("ideal_fidelity", self.ideal)):
            if vector is not None:
                out[key] = (0.0, 1.0)
        xeb = getattr(self, "_xeb_ideal", None)
        if xeb is not None:  # a scrambled state's (0) and the noiseless state's
            out["xeb_fidelity"] = (0.0, max(linear_xeb(xeb, xeb), 1.0))
        return out

    def __call__(self, psi: np.ndarray, probs: np.ndarray) -> dict[str, float]:
        n = int(psi.shape[0]).bit_length() - 1
        paulis = set(self.observables) | {p for p, _ in self.hamiltonian or ()}
        cuts = [_pauli_on(n, {i: "Z", j: "Z"}) for i, j in self.cut_edges or ()]
        values = {p: pure_expectation(psi, probs, p) for p in paulis | set(cuts)}
        out = {p: values[p] for p in self.observables}
        if self.hamiltonian is not None:
            out["energy"] = float(sum(c * values[p] for p, c in self.hamiltonian))
        if self.cut_edges is not None:
            out["expected_cut"] = float(sum((1 - values[p]) / 2 for p in cuts))
        if self.target is not None:
            out["target_fidelity"] = _overlap(self.target, psi)
        if self.ideal is not None:
            out["ideal_fidelity"] = _overlap(self.ideal, psi)
        xeb = getattr(self, "_xeb_ideal", None)
        if self.xeb_qubits is not None and xeb is not None:
            out["xeb_fidelity"] = linear_xeb(marginal(probs, self.xeb_qubits), xeb)
        return out


def _overlap(vector: np.ndarray, psi: np.ndarray) -> float:
    """|<vector|psi>|^2 / (|vector|^2 |psi|^2)."""
    norms = float(np.vdot(vector, vector).real * np.vdot(psi, psi).real)
    return float(abs(np.vdot(vector, psi)) ** 2 / norms)


def pure_expectation(psi: np.ndarray, probs: np.ndarray, pauli: str) -> float:
    """<psi|P|psi> for a normalised state vector; a diagonal P (I and Z only) from the
    distribution ``probs`` = |psi|^2 (one pass over 2^n floats, no copy of psi)."""
    n = int(psi.shape[0]).bit_length() - 1
    if set(pauli) <= {"I", "Z"}:
        qubits = [q for q, p in enumerate(pauli) if p == "Z"]
        if not qubits:
            return float(probs.sum())
        marg = marginal(probs, qubits).reshape((2,) * len(qubits))
        signs = functools.reduce(np.multiply.outer, [np.array([1.0, -1.0])] * len(qubits))
        return float((marg * signs).sum())
    return expectation(LowRank(psi.reshape(2**n, 1)), pauli)
