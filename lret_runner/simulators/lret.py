"""LRET: low-rank density-matrix simulation, rho = L L^dagger with L of shape 2^n x r.

- A gate U on qubits Q multiplies L by U on Q (the rank is unchanged and no 2^n x 2^n
  matrix is ever built). Gates are fused into blocks on at most two qubits that wait until
  a channel on their qubits, the switch to dense or the end (:mod:`.fusion`): a diagonal
  block multiplies L in place, a permutation with phases moves slices of L, any other is
  a tensordot on its axes.
- A channel with Kraus operators K_1..K_k replaces L by [K_1 L | ... | K_k L].
- Truncation eigendecomposes the r x r Gram matrix L^dagger L = V diag(w) V^dagger and
  keeps the dominant directions, L <- L V_kept. It discards the smallest eigenvalues
  whose summed weight (relative to the trace) is at most ``rank_threshold``, then at
  most ``max_rank`` directions are kept. The discarded weight of every truncation is
  added to ``truncation_error`` and the trace is renormalised to 1.

``truncation_error`` bounds the trace distance to the exact state: one truncation
changes rho by exactly its discarded weight in trace distance, channels and gates
never increase it, and the triangle inequality sums the steps.

Adaptive representation: once the rank is so high that a moment with noise costs more on the
factor (per channel a (k r) x (k r) eigenproblem and d N r^2 products, per gate a pass over
L) than on a dense N x N rho (the passes fdm's fuser makes for it,
:mod:`lret_runner.simulators.costs`), and the dense matrix fits in memory, the engine
forms rho = L L^dagger and continues exactly, as fdm does (no truncation, so nothing is
added to ``truncation_error``). Every so often (after dense work worth 8 N x N
eigendecompositions, twice as long after each try that stays dense; only up to n = 10,
where one eigendecomposition takes under a second) it truncates rho with the same rule and
returns to the factor when the kept rank makes the rest of the circuit at least twice as
cheap on the factor as dense; that
truncation's discarded weight is added to ``truncation_error`` like any other.
``representation_switches`` lists the switches; ``rank_history`` holds 2^n while dense.
``representation=factor`` keeps the factor throughout.

Memory: :meth:`LretSimulator.check_memory` refuses, before anything is allocated, a
circuit whose rank-1 factor (2^n x 1, with its working copies) does not fit in free
memory; while running, every allocation of more than ``_CHECK_ABOVE_BYTES`` is checked
against free memory first, so a rank that grows too far stops the run with a
:class:`MemoryRefusal` instead of exhausting the machine.

Interrupts: Python runs signal handlers (Ctrl-C, SIGTERM) only between NumPy/LAPACK
calls, so the products over L (Gram matrices, the kept columns, gates on a large L) are
made in row blocks of about ``_BLOCK_MACS`` multiply-adds each; what remains unbounded is
one eigendecomposition of a Gram matrix (k r x k r for a channel of k Kraus operators on
rank r; the adaptive representation goes dense before that grows large wherever a dense
matrix fits), one pass over a dense rho, and single memory-bound copies of L. (A solve in
a worker thread was tried: a process that ends while OpenBLAS works in another thread hung
or crashed in OpenBLAS's shutdown, so it was not kept.)
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from lret_runner import accuracy as contract
from lret_runner.errors import MemoryRefusal, check_choice, check_range
from lret_runner.metrics import Dense, LowRank, State, apply_local
from lret_runner.metrics import rank as rank_of
from lret_runner.simulators import base, costs, kernel
from lret_runner.simulators.base import (
    CompiledCircuit,
    Engine,
    EngineOutput,
    Instruction,
    ProgressCallback,
    check_dtype,
    dense_bytes,
)
from lret_runner.simulators.dense import RANK_MAX_QUBITS, Fuser, projector
from lret_runner.simulators.fusion import Block, GateFuser

log = logging.getLogger(__name__)

SCHEDULES = ("channel", "moment", "rank")
REPRESENTATIONS = ("adaptive", "factor")

# L, the copy a channel or a gate works on, and its output live at once (rank 1: the
# least any run needs; the rank then grows with the noise, checked while running)
WORKING_FACTOR = 3.0
# allocations above this size are checked against free memory while running
_CHECK_ABOVE_BYTES = 64 * 2**20
# products over L are made in row blocks of about this many multiply-adds (~0.1 s on one
# core), so that an interrupt is handled between blocks
_BLOCK_MACS = 2 * 10**9
# gates on a factor larger than this are applied block by block (same reason)
_BLOCK_BYTES = 64 * 2**20

# without simulator.max_memory_gb, a run may use this fraction of the memory free at its start
MEMORY_FRACTION = 0.8
# the dense phase: rho, a contraction's output and NumPy's transposed operand
DENSE_WORKING_FACTOR = 3.0
# a dense phase tries to return to a factor after dense work worth this many of the N x N
# eigendecompositions a try costs (tries cost at most 1/8 of the dense phase; the wait
# doubles after each try that stays dense)
_RETURN_AFTER = 8.0
# returns are tried up to this size: the N x N eigendecomposition is one LAPACK call that no
# interrupt can stop (0.4 s at n = 10, 3 s at n = 11, 23 s at n = 12 on one core)
_RETURN_MAX_QUBITS = 10

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
        rank_threshold: trace weight one truncation may discard (0 = exact); None (the
            default) spends ``accuracy`` over the run instead (see :class:`_Budget`).
        max_rank: keep at most this many directions after a truncation (None = no cap).
        truncation: when to truncate: after every ``channel``, after every ``moment``,
            or when the ``rank`` exceeds ``rank_bound``. Whatever the schedule, a rank
            above 2^n (more columns than the space has dimensions) is truncated at once.
        rank_bound: the rank that triggers truncation under the ``rank`` schedule.
        representation: ``adaptive`` (default) continues with a dense rho when that is
            cheaper than the factor and fits in memory, and returns to a factor when a
            truncation brings the rank back down; ``factor`` always keeps the factor.
        max_memory_gb: the memory the run may use (None: ``MEMORY_FRACTION`` of free memory);
            truncations keep at most the rank that fits.
        accuracy: the largest trace distance to the exact state the run accepts
            (``run.accuracy``): without ``rank_threshold``, the truncations spend it as a
            budget, so ``truncation_error <= accuracy`` unless the memory cap binds.
        time_limit_seconds: the run's time limit (``run.timeout_seconds``), to warn before
            the run when meeting ``accuracy`` is predicted to take longer.
        dtype: ``complex128`` (default) or ``complex64``.
    """

    name = "lret"

    def __init__(
        self,
        *,
        rank_threshold: float | None = None,
        max_rank: int | None = None,
        truncation: str = "channel",
        rank_bound: int = 64,
        representation: str = "adaptive",
        max_memory_gb: float | None = None,
        accuracy: float = contract.DEFAULT,
        time_limit_seconds: float | None = None,
        dtype: str = "complex128",
    ) -> None:
        self.accuracy = contract.check(accuracy)
        if rank_threshold is not None:
            check_range(
                "simulator.rank_threshold",
                rank_threshold,
                0,
                1,
                open_high=True,
                what="must be null or",
            )
        self.rank_threshold = rank_threshold
        if max_rank is not None:
            check_range("simulator.max_rank", max_rank, 1, integer=True, what="must be null or")
        self.max_rank = max_rank
        self.truncation = check_choice("simulator.truncation", truncation, SCHEDULES)
        self.rank_bound = check_range("simulator.rank_bound", rank_bound, 1, integer=True)
        self.representation = check_choice(
            "simulator.representation", representation, REPRESENTATIONS
        )
        if max_memory_gb is not None:
            check_range(
                "simulator.max_memory_gb", max_memory_gb, 0, open_low=True, what="must be null or"
            )
        self.max_memory_gb = max_memory_gb
        self.time_limit_seconds = time_limit_seconds
        self.dtype = check_dtype(dtype)
        self._budget = _Budget(rank_threshold or 0.0, None)

    @property
    def target_error(self) -> float | None:
        """The truncation error the run spends as a budget (``accuracy``), or None when
        ``rank_threshold`` sets each truncation's threshold instead."""
        return self.accuracy if self.rank_threshold is None else None

    def memory_budget(self) -> float:
        """Bytes the run may use: ``max_memory_gb``, or ``MEMORY_FRACTION`` of free memory;
        never more than is free."""
        free = base.available_bytes()
        if self.max_memory_gb is None:
            return MEMORY_FRACTION * free
        return min(self.max_memory_gb * 2**30, free)

    def check_qubits(self, n_qubits: int) -> None:
        """Refuse, before allocating, a circuit whose rank-1 factor does not fit in the memory
        budget (2^n x itemsize x ``WORKING_FACTOR``; the rank only adds to that)."""
        n = n_qubits
        itemsize = np.dtype(self.dtype).itemsize
        need = float(2**n) * itemsize * WORKING_FACTOR
        budget = self.memory_budget()
        if need > budget:
            half = "" if itemsize == 8 else ", or backend.dtype=complex64 (half the memory)"
            allowed = (
                f"only {_gib(budget)} GiB is free"
                if self.max_memory_gb is None or budget < self.max_memory_gb * 2**30
                else f"simulator.max_memory_gb={self.max_memory_gb:g} allows {_gib(budget)} GiB"
            )
            raise MemoryRefusal(
                f"simulator=lret refuses n_qubits={n}: its factor L (2^{n} x rank x "
                f"{itemsize} B, {WORKING_FACTOR:g} working copies) needs "
                f"{_gib(need)} GiB at rank 1, and more as the rank grows, but {allowed}. "
                f"Use a circuit with fewer qubits{half}"
            )

    def _start(
        self, prog: CompiledCircuit, dense_seconds: list[float], target: float | None
    ) -> _Budget:
        """The run's truncation budget (the rank cap the memory budget allows), and a warning,
        before anything runs, when ``accuracy`` is predicted to be missed: a rank the memory
        budget does not allow, a ``rank_threshold`` that drops more than ``accuracy`` in all,
        or more time than the run's limit."""
        budget = self.memory_budget()
        cap = self.rank_cap(prog.n_qubits)
        channels = [sum(ins.is_channel for ins in moment) for moment in prog.moments]
        plan = _Budget(self.rank_threshold or 0.0, cap, target, channels, budget)
        if not sum(channels):
            return plan
        dense = self.representation == "adaptive" and (
            dense_bytes(prog.n_qubits, self.dtype, DENSE_WORKING_FACTOR) <= budget
        )
        pred = costs.predict(
            prog,
            rank_threshold=self.step_threshold(prog, target),
            max_rank=self.max_rank,
            dense_allowed=dense,
            dense_seconds=dense_seconds,
        )
        asked = f"run.accuracy={self.accuracy:g}"
        if pred.lret_dense_from is None and pred.lret_rank > cap:
            plan.warn(
                f"{asked} is predicted to need rank {pred.lret_rank}, but the memory budget "
                f"({_gib(budget)} GiB) allows rank {cap}: the truncation error will likely "
                "exceed it"
            )
        if self.rank_threshold is not None and pred.lret_error > self.accuracy:
            plan.warn(
                f"simulator.rank_threshold={self.rank_threshold:g} is predicted to discard "
                f"about {pred.lret_error:.2g} of the state in all, more than {asked}: remove "
                "simulator.rank_threshold to meet run.accuracy"
            )
        limit = self.time_limit_seconds
        if limit is not None and pred.lret_seconds > limit:
            plan.warn(
                f"{asked} is predicted to take {pred.lret_seconds:.3g} s on one core, more "
                f"than the run's time limit ({limit:g} s): loosen run.accuracy or raise "
                "run.timeout_seconds"
            )
        return plan

    def rank_cap(self, n_qubits: int) -> int:
        """The largest rank whose factor (``WORKING_FACTOR`` copies) fits the memory budget."""
        per_column = 2**n_qubits * np.dtype(self.dtype).itemsize * WORKING_FACTOR
        return max(int(self.memory_budget() // per_column), 1)

    def step_threshold(self, prog: CompiledCircuit, target: float | None = None) -> float:
        """The weight one truncation may discard: ``rank_threshold``, or the ``target`` error
        (default ``accuracy``) shared equally among the run's channels (what the budget
        starts with)."""
        if self.rank_threshold is not None:
            return self.rank_threshold
        target = self.accuracy if target is None else target
        return target / max(sum(ins.is_channel for m in prog.moments for ins in m), 1)

    def _ensure(self, nbytes: float, n: int, rank: int) -> None:
        """Refuse an allocation of ``nbytes`` that does not fit in free memory (checked
        only above ``_CHECK_ABOVE_BYTES``: small arrays never matter)."""
        if nbytes <= _CHECK_ABOVE_BYTES:
            return
        free = base.available_bytes()
        if nbytes > free:
            raise MemoryRefusal(
                f"simulator=lret stopped at n_qubits={n}, rank {rank}: the next step needs "
                f"{_gib(nbytes)} GiB more but only {_gib(free)} GiB is free. Raise "
                "simulator.rank_threshold or set simulator.max_rank to keep the rank lower"
            )

    def _run(self, prog: CompiledCircuit, progress: ProgressCallback) -> EngineOutput:
        n = prog.n_qubits
        dim = 2**n
        self.check_memory(prog)
        run = self._evolve(prog, progress, ground_factor(n, self.dtype), None, self.target_error)
        if run.dense is not None:
            matrix = np.ascontiguousarray(run.dense.flush().reshape(dim, dim))
            state: State = Dense(matrix)
            final_rank = rank_of(state) if n <= RANK_MAX_QUBITS else None
        else:
            assert run.factor is not None
            state = LowRank(np.ascontiguousarray(run.factor.reshape(dim, -1)))
            final_rank = run.factor.shape[-1]
        return EngineOutput(
            state=state,
            simulation_time_seconds=0.0,
            memory_used_mb=run.peak_bytes / 2**20,
            truncation_error=run.error,
            final_rank=final_rank,
            widest_factor=run.widest,
            rank_history=run.history,
            dense_history=run.dense_history,
            representation_switches=run.switches,
            warnings=run.warnings,
        )

    def _run_dynamic(self, prog: CompiledCircuit, progress: ProgressCallback) -> EngineOutput:
        """A dynamic circuit as an ensemble of branches (``branches.py``)."""
        from lret_runner.simulators import branches

        return branches.run(_Branching(self), prog, progress)

    def _evolve(
        self,
        prog: CompiledCircuit,
        progress: ProgressCallback,
        factor: np.ndarray | None,
        dense: Fuser | None,
        target: float | None,
    ) -> _Evolved:
        """A trace-1 state (the factor L as a tensor with n + 1 axes, or rho held ``dense``)
        through ``prog``; ``target``: the error its truncations may spend (None:
        ``rank_threshold`` sets each one's)."""
        n = prog.n_qubits
        dim = 2**n
        # each moment's cost on a dense rho, and a dense moment's mean cost from each moment on
        # (what the factor's cost of a moment is weighed against)
        dense_seconds = costs.dense_moment_seconds(prog)
        ahead = costs.mean_ahead(dense_seconds)
        self._budget = plan = self._start(prog, dense_seconds, target)
        error = 0.0
        peak_bytes = (
            factor.nbytes
            if factor is not None
            else dense_bytes(n, self.dtype, DENSE_WORKING_FACTOR)
        )
        widest = 1 if factor is None else factor.shape[-1]
        history: list[int] = []
        dense_history: list[bool] = []
        switches: list[dict[str, Any]] = []
        spent, wait = 0.0, _RETURN_AFTER * costs.eig_seconds(dim)
        # gates wait in blocks (simulators/fusion.py) until a channel on their qubits, the
        # switch to dense or the end; applying one may need a spare factor
        gates, spare = GateFuser(), None
        for done, moment in enumerate(prog.moments, start=1):
            plan.moment = index = done - 1
            for ins in moment:
                if ins.is_channel:
                    plan.before_channel(error)
                if (
                    dense is None
                    and ins.is_channel
                    and self._goes_dense(factor, moment, ahead[index])
                ):
                    switches.append({"moment": index, "to": "dense", "rank": factor.shape[-1]})
                    factor, spare = self._apply(factor, gates.release(), spare)
                    dense = Fuser(_to_dense(factor), n)
                    spare = None
                    peak_bytes = max(peak_bytes, dense_bytes(n, self.dtype, DENSE_WORKING_FACTOR))
                    spent, wait = 0.0, _RETURN_AFTER * costs.eig_seconds(dim)
                if dense is not None:
                    before = len(dense.applied)
                    dense.apply(ins)
                    spent += costs.passes_seconds(dim, dense.applied[before:])
                    continue
                if not ins.is_channel:
                    blocks = gates.add(ins.targets, ins.kraus[0])
                    factor, spare = self._apply(factor, blocks, spare)
                    continue
                factor, spare = self._apply(factor, gates.release(ins.targets), spare)
                rank = factor.shape[-1] * len(ins.kraus)
                widest = max(widest, rank)
                # the other schedules concatenate the k r columns first, where the budget allows
                concatenated = 2 * factor.nbytes * len(ins.kraus)
                if self.truncation == "channel" or concatenated > plan.budget_bytes:
                    new, discarded = self._channel_truncated(factor, ins.kraus, ins.targets)
                    peak_bytes = max(peak_bytes, factor.nbytes + new.nbytes)
                    factor, error = new, error + discarded
                    continue
                self._ensure(concatenated, n, rank)
                factor = np.concatenate(
                    [apply_blocked(factor, k, ins.targets) for k in ins.kraus], axis=-1
                )
                peak_bytes = max(peak_bytes, factor.nbytes)
                if rank > dim or (self.truncation == "rank" and rank > self.rank_bound):
                    factor, discarded = self._truncate(factor)
                    error += discarded
            if (
                dense is not None
                and done < len(prog.moments)
                and n <= _RETURN_MAX_QUBITS
                and spent >= wait
            ):
                back = self._back_to_factor(dense, prog.moments[done:], sum(dense_seconds[done:]))
                if back is None:  # still cheaper dense: try again after twice the work
                    spent, wait = 0.0, 2 * wait
                else:
                    factor, discarded = back
                    error += discarded
                    dense = None
                    switches.append({"moment": done, "to": "factor", "rank": factor.shape[-1]})
            elif dense is None and self.truncation == "moment":
                plan.before_moment_truncation(error)
                factor, discarded = self._truncate(factor)
                error += discarded
            history.append(dim if dense is not None else factor.shape[-1])
            dense_history.append(dense is not None)
            progress(done, len(prog.moments))
        if dense is None:
            factor, spare = self._apply(factor, gates.release(), spare)
        return _Evolved(
            None if dense is not None else factor,
            dense,
            error,
            peak_bytes,
            widest,
            history,
            dense_history,
            switches,
            plan.finish(error),
        )

    def _apply(
        self, factor: np.ndarray, blocks: list[Block], spare: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Fused gate blocks applied to L (each may need a spare L or a new one)."""
        if spare is not None and spare.shape != factor.shape:  # the rank changed
            spare = None
        for block in blocks:
            self._ensure(factor.nbytes, factor.ndim - 1, factor.shape[-1])
            factor, spare = kernel.apply(factor, block, spare, apply_blocked)
        return factor, spare

    def _goes_dense(self, factor: np.ndarray, moment: list[Instruction], seconds: float) -> bool:
        """Whether to continue dense from the next channel of ``moment``: adaptive, the moment
        is cheaper dense at the rank L has now (``seconds``: a dense moment's cost), and it
        fits in the memory budget and in free memory."""
        n = factor.ndim - 1
        return (
            self.representation == "adaptive"
            and costs.dense_cheaper(2**n, factor.shape[-1], moment, seconds)
            and dense_bytes(n, self.dtype, DENSE_WORKING_FACTOR)
            <= min(self._budget.budget_bytes, base.available_bytes())
        )

    def _back_to_factor(
        self, dense: Fuser, moments: list[list[Instruction]], seconds: float
    ) -> tuple[np.ndarray, float] | None:
        """Truncate the dense state; the factor of what is kept, and the weight discarded, when
        the kept rank makes the ``moments`` ahead (``seconds`` dense) at most half as costly
        on the factor (None, and the dense state untouched, otherwise)."""
        rho = dense.flush()
        n = dense.n
        dim = 2**n
        w, v, discarded = self._keep(rho.reshape(dim, dim), dim)
        if costs.factor_seconds(dim, len(w), moments) > 0.5 * seconds:
            return None
        factor = v * np.sqrt(w / w.sum())
        return factor.reshape((2,) * n + (len(w),)), discarded

    def _select(self, gram: np.ndarray, dim: int) -> tuple[np.ndarray, float]:
        """Eigen-directions of a Gram matrix to keep (at most ``dim``, the space's dimension),
        scaled so the kept state has trace 1, and the relative weight discarded."""
        w, v, discarded = self._keep(gram, dim)
        return v / np.sqrt(w.sum()), discarded

    def _dense_side(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        """The truncated factor of an N x N density matrix: its kept eigenvectors scaled by
        the square roots of their eigenvalues (trace 1), and the relative weight discarded.

        The nonzero eigenvalues of rho = L L^dagger are those of the Gram matrix
        L^dagger L, so this keeps exactly what :meth:`_select` would; it is the cheaper
        side when L has more columns than rows (k r > N after a channel)."""
        w, v, discarded = self._keep(rho, len(rho))
        return v * np.sqrt(w / w.sum()), discarded

    def _keep(self, mat: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray, float]:
        """The eigenvalues and eigenvectors of a Hermitian PSD matrix to keep (at most
        ``dim``), and the relative weight of the rest."""
        # ascending; LAPACK's MRRR driver is 1.2-2.5x faster than numpy's divide and conquer here
        single = len(mat) <= _SINGLE_THREAD_EIGH
        with _blas().limit(limits=1 if single else None, user_api="blas"):
            w, v = scipy.linalg.eigh(mat, driver="evr")
        w = np.clip(w, 0.0, None)
        total = w.sum()
        # drop the smallest eigenvalues whose cumulative weight stays within the threshold,
        # and numerical zeros in any case
        threshold = self._budget.threshold
        n_drop = int(np.searchsorted(np.cumsum(w) / total, threshold, side="right"))
        null = _NULL_EPS * np.finfo(w.dtype).eps * w[-1]
        n_drop = max(n_drop, int((w <= null).sum()), len(w) - dim)
        keep = max(len(w) - n_drop, 1)
        if self.max_rank is not None:
            keep = min(keep, self.max_rank)
        keep = self._budget.capped(keep)
        kept = w[-keep:].sum()
        return w[-keep:], v[:, -keep:], float((total - kept) / total)

    def _truncate(self, factor: np.ndarray) -> tuple[np.ndarray, float]:
        """Truncate L itself: L <- L V_kept from the eigendecomposition of L^dagger L."""
        mat = np.ascontiguousarray(factor.reshape(-1, factor.shape[-1]))
        if _dense_side_cheaper(mat.shape[1], mat.shape[0]):
            self._ensure(3 * mat.shape[0] ** 2 * mat.itemsize, factor.ndim - 1, mat.shape[1])
            new, discarded = self._dense_side(_product(mat, mat.conj().T))
            return new.reshape(factor.shape[:-1] + (new.shape[1],)), discarded
        v, discarded = self._select(_gram(mat), mat.shape[0])
        self._ensure(mat.shape[0] * v.shape[1] * mat.itemsize, factor.ndim - 1, v.shape[1])
        return _product(mat, v).reshape(factor.shape[:-1] + (v.shape[1],)), discarded

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
        if _dense_side_cheaper(k * r, 2**n):
            return self._channel_dense(factor, kraus, targets)
        tail = list(range(n - t, n))  # the target axes go just before the rank axis
        moved = np.moveaxis(factor, list(targets), tail)
        self._ensure(factor.nbytes, n, r)  # x
        x = np.ascontiguousarray(moved.reshape(-1, d * r))  # (M, d r): one copy; column (a, x)
        local = _gram(x).reshape(d, r, d, r)
        ks = np.stack(kraus)  # (k, out, in)
        q = np.einsum("ioa,job->iajb", ks.conj(), ks)
        gram = np.einsum("iajb,axby->ixjy", q, local).reshape(k * r, k * r)
        v, discarded = self._select(gram, x.shape[0] * d)
        keep = v.shape[1]
        w = np.einsum("ioa,ixc->axoc", ks, v.reshape(k, r, keep)).reshape(d * r, d * keep)
        self._ensure(x.shape[0] * d * keep * x.itemsize, n, keep)
        new = _product(x, w).reshape(moved.shape[:-1] + (keep,))  # columns (out, c): free
        return np.moveaxis(new, tail, list(targets)), discarded

    def _channel_dense(
        self, factor: np.ndarray, kraus: tuple[np.ndarray, ...], targets: tuple[int, ...]
    ) -> tuple[np.ndarray, float]:
        """A channel whose k r columns outnumber the N rows: rho = L L^dagger, then
        sum_i K_i rho K_i^dagger on the targets (rows) and their conjugates (columns), then
        the N x N eigenproblem instead of the k r x k r one."""
        n = factor.ndim - 1
        dim = 2**n
        self._ensure(4 * dim * dim * factor.itemsize, n, factor.shape[-1] * len(kraus))
        mat = np.ascontiguousarray(factor.reshape(dim, -1))
        rho = _product(mat, mat.conj().T).reshape((2,) * (2 * n))
        columns = tuple(q + n for q in targets)
        out = sum(apply_local(apply_local(rho, k, targets), k.conj(), columns) for k in kraus)
        new, discarded = self._dense_side(np.asarray(out).reshape(dim, dim))
        return new.reshape((2,) * n + (new.shape[1],)), discarded


class _Budget:
    """What one run's truncations may discard (``threshold``) and keep (``cap``, from the
    memory budget), and the warnings when a budget binds.

    With a ``target`` error, each truncation may discard what is left of the target divided
    by the truncations still to come (one per remaining channel, or per remaining moment
    under the ``moment`` schedule), so the total stays within the target unless the memory
    cap forces more."""

    def __init__(
        self,
        threshold: float,
        cap: int | None,
        target: float | None = None,
        channels: list[int] | None = None,
        budget_bytes: float = 0.0,
    ) -> None:
        self.threshold, self.cap, self.target = threshold, cap, target
        self.channels = channels or []
        self.budget_bytes = budget_bytes
        self.moment = 0
        self.channels_left = sum(self.channels)
        self.capped_at: list[int] = []  # moments where the memory cap bound a truncation
        self.warnings: list[str] = []

    def before_channel(self, error: float) -> None:
        if self.target is not None:
            self.threshold = max(self.target - error, 0.0) / max(self.channels_left, 1)
        self.channels_left -= 1

    def before_moment_truncation(self, error: float) -> None:
        if self.target is not None:
            self.threshold = max(self.target - error, 0.0) / (len(self.channels) - self.moment)

    def capped(self, keep: int) -> int:
        """``keep``, or the memory cap when it is lower (remembered)."""
        if self.cap is None or keep <= self.cap:
            return keep
        if not self.capped_at:
            log.warning(
                "moment %d: the memory budget (%s GiB) caps the rank at %d; the weight it "
                "discards is added to truncation_error",
                self.moment,
                _gib(self.budget_bytes),
                self.cap,
            )
        self.capped_at.append(self.moment)
        return self.cap

    def warn(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)

    def finish(self, error: float) -> list[str]:
        """The run's warnings, with the cap and the target's outcome."""
        if self.capped_at:
            self.warnings.append(
                f"the memory budget ({_gib(self.budget_bytes)} GiB) capped the rank at "
                f"{self.cap} in {len(self.capped_at)} truncations from moment "
                f"{self.capped_at[0]}; the weight they discarded is in truncation_error"
            )
        if self.target is not None and error > self.target:
            why = " because the memory budget capped the rank" if self.capped_at else ""
            self.warn(
                f"run.accuracy={self.target:g} was not met: truncation_error is {error:.3g}{why}"
            )
        return self.warnings


@dataclass
class _Evolved:
    """A state through a program (:meth:`LretSimulator._evolve`): L (None while dense) or the
    dense rho, and how it got there."""

    factor: np.ndarray | None
    dense: Fuser | None
    error: float
    peak_bytes: float
    widest: int
    history: list[int]
    dense_history: list[bool]
    switches: list[dict[str, Any]]
    warnings: list[str]


def ground_factor(n: int, dtype: type) -> np.ndarray:
    """L of |0...0>: a tensor with n qubit axes and one rank axis."""
    factor = np.zeros((2,) * n + (1,), dtype=dtype)
    factor[(0,) * n + (0,)] = 1.0
    return factor


@dataclass
class _Part:
    """A branch of a dynamic circuit (``branches.py``): its weight (probability) and its
    state normalised to trace 1, a factor or dense (truncations renormalise to trace 1)."""

    weight: float
    factor: np.ndarray | None = None
    dense: Fuser | None = None


class _Branching:
    """lret's branches: each evolves with the engine's own machinery (factor, dense phases,
    truncations) and spends its share of the accuracy budget in proportion to its weight."""

    def __init__(self, engine: LretSimulator) -> None:
        self.engine = engine

    def ground(self, prog: CompiledCircuit) -> _Part:
        self.engine.check_memory(prog)
        return _Part(1.0, ground_factor(prog.n_qubits, self.engine.dtype))

    def evolve(self, state: _Part, prog: CompiledCircuit, share: float) -> tuple[_Part, float]:
        # the branch's budget is ``share`` of the run's accuracy in absolute weight; its state
        # has trace 1, so its own truncations may spend that over its weight
        target = self.engine.target_error
        run = self.engine._evolve(
            prog,
            lambda done, total: None,
            state.factor,
            state.dense,
            None if target is None else target * share / max(state.weight, 1e-300),
        )
        return _Part(state.weight, run.factor, run.dense), run.error * state.weight

    def project(self, state: _Part, qubit: int, outcome: int) -> _Part:
        if state.factor is not None:
            factor = state.factor.copy()
            other = [slice(None)] * factor.ndim
            other[qubit] = 1 - outcome
            factor[tuple(other)] = 0.0
            norm = float(np.vdot(factor, factor).real)
            if norm > 0:
                factor /= np.sqrt(norm)
            return _Part(state.weight * norm, factor)
        assert state.dense is not None
        dense = state.dense.copy()
        dense.apply(projector(qubit, outcome, self.engine.dtype))
        trace = dense.trace()
        if trace > 0:
            dense.coeffs /= trace  # type: ignore[operator]
        return _Part(state.weight * trace, dense=dense)

    def weight(self, state: _Part) -> float:
        return state.weight

    def nbytes(self, state: _Part) -> int:
        if state.factor is not None:
            return state.factor.nbytes
        assert state.dense is not None and state.dense.coeffs is not None
        return state.dense.coeffs.nbytes

    def scale(self, state: _Part, factor: float) -> _Part:
        state.weight *= factor
        return state

    def copy(self, state: _Part) -> _Part:
        factor = None if state.factor is None else state.factor.copy()
        return _Part(state.weight, factor, None if state.dense is None else state.dense.copy())

    def merge(self, a: _Part, b: _Part) -> _Part:
        total = a.weight + b.weight
        if total <= 0:
            return a
        if a.factor is not None and b.factor is not None:
            parts = [a.factor * np.sqrt(a.weight / total), b.factor * np.sqrt(b.weight / total)]
            return _Part(total, np.concatenate(parts, axis=-1))
        dense = self._dense(a, a.weight / total)
        dense.add(self._dense(b, b.weight / total))
        return _Part(total, dense=dense)

    def _dense(self, part: _Part, scale: float) -> Fuser:
        """The part's rho, dense, times ``scale``."""
        if part.factor is not None:
            fuser = Fuser(_to_dense(part.factor), part.factor.ndim - 1)
        else:
            assert part.dense is not None
            fuser = part.dense
        fuser.settle()
        fuser.coeffs *= scale  # type: ignore[operator]
        return fuser

    def diagonal(self, state: _Part) -> np.ndarray:
        if state.dense is not None:
            return state.weight * state.dense.diagonal()
        assert state.factor is not None
        mat = state.factor.reshape(2 ** (state.factor.ndim - 1), -1)
        diag = np.einsum("ij,ij->i", mat.conj(), mat).real.astype(np.float64)
        return state.weight * np.clip(diag, 0.0, None)

    def total(self, states: list[_Part]) -> tuple[State, int | None]:
        if all(s.factor is not None for s in states):
            parts = [s.factor * np.sqrt(s.weight) for s in states]  # type: ignore[operator]
            n = parts[0].ndim - 1
            factor = np.concatenate(parts, axis=-1).reshape(2**n, -1)
            return LowRank(np.ascontiguousarray(factor)), None
        first = self._dense(states[0], states[0].weight)
        for s in states[1:]:
            first.add(self._dense(s, s.weight))
        rho = first.flush()
        assert rho is not None
        dim = 2**first.n
        return Dense(np.ascontiguousarray(rho.reshape(dim, dim))), None


def _to_dense(factor: np.ndarray) -> np.ndarray:
    """rho = L L^dagger as a tensor with 2n axes."""
    n = factor.ndim - 1
    mat = np.ascontiguousarray(factor.reshape(2**n, -1))
    return _product(mat, mat.conj().T).reshape((2,) * (2 * n))


def _dense_side_cheaper(columns: int, rows: int) -> bool:
    """Whether the N x N eigenproblem (rows) is smaller than the Gram one (columns)."""
    return columns > rows


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f}"


def _gram(x: np.ndarray) -> np.ndarray:
    """x^dagger x for a C-contiguous (M, c) matrix, in row blocks of about ``_BLOCK_MACS``
    multiply-adds when it is large (BLAS herk accumulating in place: no copy of x)."""
    m, c = x.shape
    if m * c * c <= _BLOCK_MACS or c == 0:
        return x.conj().T @ x
    from scipy.linalg import blas

    herk = blas.get_blas_funcs("herk", (x,))
    rows = max(64, _BLOCK_MACS // (c * c))
    # on the Fortran view b.T of a C-contiguous row block b, herk's A A^H is
    # b^T conj(b) = conj(b^dagger b); only its upper triangle is written
    acc = np.zeros((c, c), dtype=x.dtype, order="F")
    for start in range(0, m, rows):
        acc = herk(1.0, x[start : start + rows].T, beta=1.0, c=acc, trans=0, lower=0, overwrite_c=1)
    upper = np.triu(acc)
    return (upper + np.triu(acc, 1).conj().T).conj()


def _product(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w, in row blocks of about ``_BLOCK_MACS`` multiply-adds when it is large."""
    m, c = x.shape
    cols = w.shape[1]
    if m * c * cols <= _BLOCK_MACS:
        return x @ w
    out = np.empty((m, cols), dtype=np.result_type(x, w))
    rows = max(64, _BLOCK_MACS // max(c * cols, 1))
    for start in range(0, m, rows):
        np.matmul(x[start : start + rows], w, out=out[start : start + rows])
    return out


def apply_blocked(factor: np.ndarray, matrix: np.ndarray, targets: tuple[int, ...]) -> np.ndarray:
    """:func:`apply_local` on L, block by block over leading non-target qubit axes when L
    is larger than ``_BLOCK_BYTES`` (less memory than one tensordot, and interruptible)."""
    if factor.nbytes <= _BLOCK_BYTES:
        return apply_local(factor, matrix, targets)
    free = [a for a in range(factor.ndim - 1) if a not in targets]
    split = free[: min(len(free), math.ceil(math.log2(factor.nbytes / _BLOCK_BYTES)))]
    # target axes in a block, where the split axes are gone
    inner = tuple(t - sum(a < t for a in split) for t in targets)
    out = np.empty_like(factor)
    index: list[Any] = [slice(None)] * factor.ndim
    for bits in itertools.product((0, 1), repeat=len(split)):
        for axis, bit in zip(split, bits, strict=True):
            index[axis] = bit
        out[tuple(index)] = apply_local(factor[tuple(index)], matrix, inner)
    return out
