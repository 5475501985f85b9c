"""A cost model of the engines: seconds per operation, and a prediction for a whole circuit.

LRET uses it to decide, moment by moment, whether its factor or a dense matrix is the
cheaper representation; ``auto`` uses the whole-circuit prediction to pick an engine.

The constants are seconds on one core of the development machine (measured with
``benchmarks/bench_engines.py``, which also prints predicted against measured times);
only their ratios matter for a choice, and a machine where all of them scale alike
chooses the same way.

The rank LRET will reach is predicted by a branch-weight model: a channel whose Kraus
operators carry probabilities a_i = ||K_i||_F^2 / d turns every weight w of the state's
spectrum into the weights w a_i; each truncation then drops the smallest weights whose sum
stays within ``rank_threshold`` (at most ``max_rank`` and 2^n kept), as the engine does.
Errors of channels on the same qubits with no multi-qubit gate on them in between lie in
the directions the first one opened (the Paulis on those qubits span them), so only the
first channel of such a segment multiplies the weights. Otherwise the model treats the
branches as orthogonal, so it overestimates the rank where errors coincide (a Z error on
|0>) and ignores the weight later channels of a segment add; the benchmark reports how far
off it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lret_runner.simulators.base import CompiledCircuit, Instruction

if TYPE_CHECKING:
    from lret_runner.simulators.dense import Pass

# an eigendecomposition of a Hermitian m x m matrix: c3 m^3 + c2 m^2 + c0 seconds
_EIG = (3.5e-10, 6e-8, 2e-5)
# one complex multiply-add in LRET's products over its factor (a channel's local Gram matrix
# and kept columns, rho = L L^dagger): measured on one core at n = 12, ranks 16-128
_MAC = 4.5e-10
# fixed Python/NumPy overhead of one LRET operation on the factor
_FACTOR_OP = 2e-4
# one pass over a complex rho of a d x d-local Kraus sandwich (LRET's channel on the N x N
# side, ``_channel_dense``): N^2 (c0 + c1 d^2) seconds
_DENSE = (6e-9, 3e-10)
# one pass of the dense fuser (simulators/dense.py) over rho's N^2 real Pauli coefficients
# with a transfer matrix on k qubits (4^k multiply-adds per coefficient):
# N^2 (c0 + c1 4^k) + c2 seconds (c2: the pass's fixed Python/threading overhead)
_PAULI_PASS = (1.3e-9, 6e-11, 4e-5)
# the fuser's fixed cost per instruction (its transfer matrix, the fusion products)
_PAULI_OP = 4e-5
# the fuser's other passes, in units of N^2 c0 (a pass without arithmetic): a transposing
# copy that makes axes adjacent; the change to the complex (row, column) basis at a flush
# (complex products, the deinterleaving transpose)
_PAULI_MOVE = 2.5
_PAULI_BASIS = 45.0
# an operation on k > 3 qubits with K Kraus operators (a Grover oracle): N^2 (a k + b K 2^(k+1))
# seconds, its qubits' basis changes and the sandwiches' complex multiply-adds
_PAULI_KRAUS = (2.9e-8, 1.3e-10)
# LRET continues dense only from this many qubits on
DENSE_MIN_QUBITS = 7
# kept from the branch-weight model at most this many weights (beyond it, LRET is dense)
_MODEL_MAX_WEIGHTS = 1 << 14


def eig_seconds(m: int) -> float:
    c3, c2, c0 = _EIG
    return c3 * m**3 + c2 * m**2 + c0


def factor_gate_seconds(dim: int, rank: int, d: int) -> float:
    return _MAC * dim * rank * d + _FACTOR_OP / 2


def factor_channel_seconds(dim: int, rank: int, kraus: int, d: int) -> float:
    """A channel of ``kraus`` operators on ``log2 d`` qubits applied to a rank-``rank`` factor
    and truncated (back to about ``rank`` columns): the local Gram matrix, the eigenproblem
    on the cheaper side, and the product that forms the kept columns."""
    columns = kraus * rank
    if columns > dim:  # the N x N side: rho = L L^dagger, the channel on it, its eigenproblem
        return eig_seconds(dim) + _MAC * dim * dim * columns + dense_pass_seconds(dim, d) * kraus
    return eig_seconds(columns) + _MAC * 2 * dim * d * rank * rank + _FACTOR_OP


def dense_pass_seconds(dim: int, d: int) -> float:
    """One pass over a dense complex rho of a superoperator on ``log2 d`` qubits."""
    c0, c1 = _DENSE
    return dim * dim * (c0 + c1 * d * d)


def pauli_pass_seconds(dim: int, k: int) -> float:
    """One pass of the dense fuser with a transfer matrix on ``k`` qubits."""
    c0, c1, c2 = _PAULI_PASS
    return dim * dim * (c0 + c1 * 4**k) + c2


def passes_seconds(dim: int, passes: list[Pass]) -> float:
    """The passes a :class:`~lret_runner.simulators.dense.Fuser` made (``applied``)."""
    c0 = _PAULI_PASS[0]
    entries = dim * dim
    total = 0.0
    for p in passes:
        if p.kind == "ptm":
            total += pauli_pass_seconds(dim, len(p.qubits))
        elif p.kind == "move":
            total += entries * c0 * _PAULI_MOVE
        elif p.kind == "basis":
            total += entries * c0 * _PAULI_BASIS
        else:  # "kraus"
            a, b = _PAULI_KRAUS
            k = len(p.qubits)
            total += entries * (a * k + b * max(p.kraus, 1) * 2 ** (k + 1))
    return total


def to_dense_seconds(dim: int, rank: int) -> float:
    """rho = L L^dagger from a rank-``rank`` factor."""
    return _MAC * dim * dim * rank


def factor_seconds(dim: int, rank: int, moments: list[list[Instruction]]) -> float:
    """Moments' gates and channels on a rank-``rank`` factor (the rank held fixed)."""
    total = 0.0
    for moment in moments:
        for ins in moment:
            d = 2 ** len(ins.targets)
            if ins.is_channel:
                total += factor_channel_seconds(dim, rank, len(ins.kraus), d)
            else:
                total += factor_gate_seconds(dim, rank, d)
    return total


def mean_ahead(seconds: list[float]) -> list[float]:
    """For each moment, the mean of ``seconds`` from it to the end: what a dense moment costs
    from there on (the fuser defers passes, so a moment's own share can be 0 or several)."""
    out, total = [0.0] * len(seconds), 0.0
    for i in range(len(seconds) - 1, -1, -1):
        total += seconds[i]
        out[i] = total / (len(seconds) - i)
    return out


def dense_cheaper(dim: int, rank: int, moment: list[Instruction], dense_seconds: float) -> bool:
    """Whether a moment with noise costs more on a rank-``rank`` factor than
    ``dense_seconds``, a moment's cost on a dense rho (the mean of the dense fuser's passes
    over the moments ahead, :func:`mean_ahead`). The moment as a whole is weighed: the dense
    fuser applies a gate and the noise after it in one pass, while on the factor the gates are
    cheap and
    every channel costs a Gram matrix and an eigenproblem. Below ``DENSE_MIN_QUBITS`` the
    factor is always kept: every operation takes microseconds there, and the factor's ranks
    stay visible."""
    if dim < 2**DENSE_MIN_QUBITS or not any(ins.is_channel for ins in moment):
        return False
    return factor_seconds(dim, rank, [moment]) > dense_seconds


def channel_probabilities(ins: Instruction) -> np.ndarray:
    """The probability each Kraus operator carries on a maximally mixed input."""
    d = ins.kraus[0].shape[0]
    return np.array([float(np.vdot(k, k).real) / d for k in ins.kraus])


def dense_moment_seconds(prog: CompiledCircuit) -> list[float]:
    """The seconds a dense engine spends on each moment (fused as it fuses them)."""
    from lret_runner.simulators.dense import Fuser

    dim = 2**prog.n_qubits
    fuser = Fuser(None, prog.n_qubits)
    costs = []
    for index, moment in enumerate(prog.moments, start=1):
        before = len(fuser.applied)
        for ins in moment:
            fuser.apply(ins)
        if index == len(prog.moments):
            fuser.flush()
        costs.append(passes_seconds(dim, fuser.applied[before:]) + _PAULI_OP * len(moment))
    return costs


@dataclass(frozen=True)
class Prediction:
    """Predicted seconds of fdm and of LRET on one circuit, and what LRET is predicted to do."""

    fdm_seconds: float
    lret_seconds: float
    lret_rank: int  # the largest rank the factor is predicted to keep after a truncation
    lret_dense_from: int | None  # the moment LRET is predicted to continue dense from
    lret_error: float  # the truncation error LRET is predicted to accumulate


def predict(
    prog: CompiledCircuit,
    *,
    rank_threshold: float,
    max_rank: int | None = None,
    dense_allowed: bool = True,
    final_rank_qubits: int = 0,
    dense_seconds: list[float] | None = None,
) -> Prediction:
    """Predict both engines on ``prog``. ``dense_allowed``: LRET may continue dense (it fits
    and the representation is adaptive). ``final_rank_qubits``: up to this n, both engines
    diagonalise a dense final state for its rank (2^n x 2^n). ``dense_seconds``: the
    moments' dense costs (:func:`dense_moment_seconds`), when already known."""
    dim = 2**prog.n_qubits
    dense = dense_seconds if dense_seconds is not None else dense_moment_seconds(prog)
    ahead = mean_ahead(dense)
    final = eig_seconds(dim) if prog.n_qubits <= final_rank_qubits else 0.0
    weights = np.ones(1)
    lret, top, error = 0.0, 1, 0.0
    segments: set[tuple[int, ...]] = set()  # channel targets not touched by a gate since
    for index, moment in enumerate(prog.moments):
        for ins in moment:
            d = 2 ** len(ins.targets)
            rank = len(weights)
            if not ins.is_channel:
                lret += factor_gate_seconds(dim, rank, d)
                if len(ins.targets) > 1:  # entangles: later errors are new branches
                    segments = {t for t in segments if not set(t) & set(ins.targets)}
                continue
            if dense_allowed and dense_cheaper(dim, rank, moment, ahead[index]):
                lret += to_dense_seconds(dim, rank) + sum(dense[index:]) + final
                return Prediction(sum(dense) + final, lret, top, index, error)
            lret += factor_channel_seconds(dim, rank, len(ins.kraus), d)
            if ins.targets in segments:
                # the errors of a channel on the same qubits, with only one-qubit gates since,
                # lie in the directions the earlier one opened: the rank does not grow
                continue
            segments.add(ins.targets)
            weights, dropped = _truncate(
                np.outer(weights, channel_probabilities(ins)).ravel(),
                rank_threshold,
                min(max_rank or _MODEL_MAX_WEIGHTS, _MODEL_MAX_WEIGHTS),
                dim,
            )
            error += dropped
            top = max(top, len(weights))
    return Prediction(sum(dense) + final, lret, top, None, error)


def _truncate(
    weights: np.ndarray, threshold: float, cap: int, dim: int
) -> tuple[np.ndarray, float]:
    """The weights LRET's truncation keeps (see ``LretSimulator._keep``), renormalised, and
    the relative weight it drops. Beyond ``dim`` (the space's dimension) the model's
    branches overlap: the state has at most ``dim`` directions, and cutting the model to
    ``dim`` weights loses nothing."""
    w = np.sort(weights)
    total = w.sum()
    drop = int(np.searchsorted(np.cumsum(w) / total, threshold, side="right"))
    drop = max(drop, len(w) - cap, int((w <= 1e-14 * w[-1]).sum()))
    kept = w[min(drop, len(w) - 1) :]
    dropped = float(1 - kept.sum() / total)
    kept = kept[-dim:]
    return kept / kept.sum(), dropped
