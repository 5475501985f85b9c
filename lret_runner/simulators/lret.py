"""LRET: low-rank density-matrix simulation, rho = L L^dagger with L of shape 2^n x r.

- A gate U on qubits Q multiplies L by U on Q (a tensordot on those axes; the rank
  is unchanged and no 2^n x 2^n matrix is ever built).
- A channel with Kraus operators K_1..K_k replaces L by [K_1 L | ... | K_k L].
- Truncation eigendecomposes the r x r Gram matrix L^dagger L = V diag(w) V^dagger and
  keeps the dominant directions, L <- L V_kept. It discards the smallest eigenvalues
  whose summed weight (relative to the trace) is at most ``rank_threshold``, then at
  most ``max_rank`` directions are kept. The discarded weight of every truncation is
  added to ``truncation_error`` and the trace is renormalised to 1.

``truncation_error`` bounds the trace distance to the exact state: one truncation
changes rho by exactly its discarded weight in trace distance, channels and gates
never increase it, and the triangle inequality sums the steps.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.linalg

from lret_runner.errors import check_choice, check_range
from lret_runner.metrics import LowRank, apply_local
from lret_runner.simulators.base import (
    CompiledCircuit,
    Engine,
    EngineOutput,
    ProgressCallback,
    check_dtype,
)

if TYPE_CHECKING:
    pass

SCHEDULES = ("channel", "moment", "rank")

# Gram matrices up to this size are diagonalised on one BLAS thread: threads buy nothing
# there, and when other processes share the cores (parallel sweep jobs, a busy machine)
# OpenBLAS's spinning threads made these small eigensolves 10-80x slower (measured).
_SINGLE_THREAD_EIGH = 1024


@functools.cache
def _blas() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


# Eigenvalues below this many machine epsilons (of the dtype) times the largest are
# numerical zeros: the exact state has no weight there, so dropping them keeps
# rank_threshold = 0 exact (~1e-14 relative in complex128, ~2e-6 in complex64).
_NULL_EPS = 64


class LretSimulator(Engine):
    """Low-rank density-matrix engine.

    Args:
        rank_threshold: trace weight one truncation may discard (0 = exact).
        max_rank: keep at most this many directions after a truncation (None = no cap).
        truncation: when to truncate: after every ``channel``, after every ``moment``,
            or when the ``rank`` exceeds ``rank_bound``. Whatever the schedule, a rank
            above 2^n (more columns than the space has dimensions) is truncated at once.
        rank_bound: the rank that triggers truncation under the ``rank`` schedule.
        dtype: ``complex128`` (default) or ``complex64``.
    """

    name = "lret"

    def __init__(
        self,
        *,
        rank_threshold: float = 1e-4,
        max_rank: int | None = None,
        truncation: str = "channel",
        rank_bound: int = 64,
        dtype: str = "complex128",
    ) -> None:
        self.rank_threshold = float(
            check_range("simulator.rank_threshold", rank_threshold, 0, 1, open_high=True)
        )
        if max_rank is not None:
            check_range("simulator.max_rank", max_rank, 1, integer=True, what="must be null or")
        self.max_rank = max_rank
        self.truncation = check_choice("simulator.truncation", truncation, SCHEDULES)
        self.rank_bound = check_range("simulator.rank_bound", rank_bound, 1, integer=True)
        self.dtype = check_dtype(dtype)

    def _run(self, prog: CompiledCircuit, progress: ProgressCallback) -> EngineOutput:
        n = prog.n_qubits
        dim = 2**n
        factor = np.zeros((2,) * n + (1,), dtype=self.dtype)
        factor[(0,) * n + (0,)] = 1.0
        error = 0.0
        peak_bytes = factor.nbytes
        max_rank = 1
        history: list[int] = []
        for done, moment in enumerate(prog.moments, start=1):
            for ins in moment:
                if not ins.is_channel:
                    factor = apply_local(factor, ins.kraus[0], ins.targets)
                    continue
                rank = factor.shape[-1] * len(ins.kraus)
                max_rank = max(max_rank, rank)
                if self.truncation == "channel":
                    new, discarded = self._channel_truncated(factor, ins.kraus, ins.targets)
                    peak_bytes = max(peak_bytes, factor.nbytes + new.nbytes)
                    factor, error = new, error + discarded
                    continue
                factor = np.concatenate(
                    [apply_local(factor, k, ins.targets) for k in ins.kraus], axis=-1
                )
                peak_bytes = max(peak_bytes, factor.nbytes)
                if rank > dim or (self.truncation == "rank" and rank > self.rank_bound):
                    factor, discarded = self._truncate(factor)
                    error += discarded
            if self.truncation == "moment":
                factor, discarded = self._truncate(factor)
                error += discarded
            history.append(factor.shape[-1])
            progress(done, len(prog.moments))
        return EngineOutput(
            state=LowRank(np.ascontiguousarray(factor.reshape(dim, -1))),
            simulation_time_seconds=0.0,
            memory_used_mb=peak_bytes / 2**20,
            truncation_error=error,
            final_rank=factor.shape[-1],
            max_rank=max_rank,
            rank_history=history,
        )

    def _select(self, gram: np.ndarray, dim: int) -> tuple[np.ndarray, float]:
        """Eigen-directions of a Gram matrix to keep (at most ``dim``, the space's dimension),
        scaled so the kept state has trace 1, and the relative weight discarded."""
        # ascending; LAPACK's MRRR driver is 1.2-2.5x faster than numpy's divide and conquer here
        with _blas().limit(limits=1 if len(gram) <= _SINGLE_THREAD_EIGH else None, user_api="blas"):
            w, v = scipy.linalg.eigh(gram, driver="evr")
        w = np.clip(w, 0.0, None)
        total = w.sum()
        # drop the smallest eigenvalues whose cumulative weight stays within the threshold,
        # and numerical zeros in any case
        n_drop = int(np.searchsorted(np.cumsum(w) / total, self.rank_threshold, side="right"))
        null = _NULL_EPS * np.finfo(w.dtype).eps * w[-1]
        n_drop = max(n_drop, int((w <= null).sum()), len(w) - dim)
        keep = max(len(w) - n_drop, 1)
        if self.max_rank is not None:
            keep = min(keep, self.max_rank)
        kept = w[-keep:].sum()
        return v[:, -keep:] / np.sqrt(kept), float((total - kept) / total)

    def _truncate(self, factor: np.ndarray) -> tuple[np.ndarray, float]:
        """Truncate L itself: L <- L V_kept from the eigendecomposition of L^dagger L."""
        mat = factor.reshape(-1, factor.shape[-1])
        v, discarded = self._select(mat.conj().T @ mat, mat.shape[0])
        return (mat @ v).reshape(factor.shape[:-1] + (v.shape[1],)), discarded

    def _channel_truncated(
        self, factor: np.ndarray, kraus: tuple[np.ndarray, ...], targets: tuple[int, ...]
    ) -> tuple[np.ndarray, float]:
        """Apply a channel and truncate without forming the k r columns [K_1 L | ... | K_k L].

        With the target axes last (before the rank axis), L splits into d blocks X_a
        (M x r, a over the 2^t target basis states). The Gram matrix of the k r columns is
        G[(i,x),(j,y)] = sum_ab (K_i^dagger K_j)[a,b] (X_a^dagger X_b)[x,y], so only the
        d r x d r local Gram (d N r^2 work instead of k^2 N r^2) is computed from L;
        the kept columns sum_i K_i L V_i are then one (M x d r)(d r x d keep) product.
        Kraus matrices are big-endian over ``targets``, so ``targets`` must keep their
        order when moved.
        """
        t, r = len(targets), factor.shape[-1]
        d, k = 2**t, len(kraus)
        n = factor.ndim - 1
        tail = list(range(n - t, n))  # the target axes go just before the rank axis
        moved = np.moveaxis(factor, list(targets), tail)
        x = moved.reshape(-1, d * r)  # (M, d r): one copy; column (a, x)
        local = (x.conj().T @ x).reshape(d, r, d, r)
        ks = np.stack(kraus)  # (k, out, in)
        q = np.einsum("ioa,job->iajb", ks.conj(), ks)
        gram = np.einsum("iajb,axby->ixjy", q, local).reshape(k * r, k * r)
        v, discarded = self._select(gram, x.shape[0] * d)
        keep = v.shape[1]
        w = np.einsum("ioa,ixc->axoc", ks, v.reshape(k, r, keep)).reshape(d * r, d * keep)
        new = (x @ w).reshape(moved.shape[:-1] + (keep,))  # columns (out, c): a free reshape
        return np.moveaxis(new, tail, list(targets)), discarded
