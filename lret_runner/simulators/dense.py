"""Dense density-matrix evolution in the Pauli basis, shared by fdm and LRET's dense phase.

**State.** rho = 2^-n sum_P c_P P over the 4^n Pauli strings P, with c_P = tr(P rho). The
coefficients of a Hermitian rho are real, so the state is a real tensor with one axis of
length 4 (I, X, Y, Z) per qubit: half the bytes of the complex matrix, and an operation
needs no separate row and column sides.

**Operations.** A k-qubit operation is a real 4^k x 4^k matrix on its qubits' axes, its
Pauli transfer matrix R = T S T^-1 (S its superoperator, T the change to the Pauli basis;
real because every channel preserves Hermiticity). Applying it costs 4^k real
multiply-adds per entry: the arithmetic of the sandwich U rho U^dagger (2 x 2^k complex
ones), a quarter of the complex superoperator's, on half the memory. Pauli channels
(depolarizing, dephasing) are diagonal there; every other channel (amplitude damping,
Kraus sets) is exact too.

**Fusion.** Consecutive operations whose qubits together span at most
``FUSE_MAX_QUBITS`` (2) are multiplied into one transfer matrix before they touch rho:
a layer's one-qubit gates, their noise, the two-qubit gate on the pair and its noise
become one 16 x 16 matrix and one pass over rho. Wider fused blocks are not made: the
passes are bound by arithmetic as much as by memory, and a block on 4 qubits costs 256
multiply-adds per entry against 2 x 16 for two passes (measured at n = 12 on one core of
the 2-core development machine, per entry: a copy 0.9 ns, a 4 x 4 pass 1.5 ns, 16 x 16
2.5 ns, 64 x 64 4.6 ns). An operation on up to ``PTM_MAX_QUBITS`` qubits is one pass of
its own matrix (64 x 64 for three qubits).

**Passes.** A matrix on qubits whose axes are adjacent is one matrix product over a
contiguous axis of length 4^k: no transpose. It is made in place, chunk by chunk
(``CHUNK`` entries: the chunk and its product stay in cache, so a pass reads and writes rho
once; one chunk's product is also the longest call a signal handler waits for). Qubits
whose axes are not adjacent are first made adjacent by one transposing copy, and the
tensor keeps that axis order (``order``) from then on: a circuit of nearest-neighbour
gates never moves an axis. An operation on more than ``PTM_MAX_QUBITS`` qubits (a Grover
oracle on 8 qubits would have a 65536 x 65536 matrix) is applied as Kraus sandwiches
K rho K^dagger after its qubits' axes are turned back to the (row, column) basis, and
turned to the Pauli basis again after it.

**Threads.** A pass's chunks are shared among as many threads as BLAS is allowed (the
caller's ``threadpool_limits``), each product on one BLAS thread; a thread takes the next
chunk when it finishes one, so one slowed down by another process takes fewer.

**Back to the matrix** (:meth:`Fuser.flush`, once per fdm run): c_P = i^(number of Y in P)
times a real linear map of the real and imaginary parts of rho, so the coefficients are
divided by those phases (two passes), changed by real products per pair of qubits on the
real and imaginary parts together, and transposed once into (rows, columns).

``Fuser(None, n)`` computes nothing and records, in ``applied``, the passes the real one
makes (:class:`Pass`), which is what the cost model (:mod:`~lret_runner.simulators.costs`)
prices.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from lret_runner.metrics import apply_local
from lret_runner.simulators.base import Instruction

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolController

# fuse consecutive operations into transfer matrices on at most this many qubits (16 x 16)
FUSE_MAX_QUBITS = 2
# operations on more qubits than this are applied as Kraus sandwiches (no 4^k x 4^k matrix)
PTM_MAX_QUBITS = 3
# a dense final state's rank needs its eigendecomposition; above this size it would cost
# more than the run (one core: 0.4-0.6 s at n = 10, where fdm's run of 20 noisy layers now
# takes 0.3 s; it was 11 when that run took 10x longer)
RANK_MAX_QUBITS = 9
# entries of rho one matrix product works on (256 KiB of float64: in cache with its output)
CHUNK = 1 << 15
# from this many entries on, a pass is shared among threads (below, they cost more than they save)
_PARALLEL_MIN = 1 << 18

# (rho00, rho01, rho10, rho11) of one qubit -> (tr(I rho), tr(X rho), tr(Y rho), tr(Z rho))
_TO_PAULI = np.array([[1, 0, 0, 1], [0, 1, 1, 0], [0, 1j, -1j, 0], [1, 0, 0, -1]])
# tr(Y rho) of a Hermitian rho is i (rho01 - rho10): the coefficients of I, X, Y, Z with the
# phase of Y taken out are real linear maps of the real and imaginary parts of rho
_PHASE = np.array([1, 1, 1j, 1])
_EYE4 = np.eye(4)
# the basis changes are applied to this many qubits at once (a 16 x 16 complex matrix)
_BASIS_GROUP = 2
_REAL = {np.dtype(np.complex128): np.float64, np.dtype(np.complex64): np.float32}


class Pass(NamedTuple):
    """One pass over rho, as the fuser records it in ``applied``."""

    qubits: tuple[int, ...]  # the qubits of its matrix (empty for a move)
    kind: str  # "ptm": a real 4^k x 4^k matrix; "move": a transposing copy that makes
    # axes adjacent; "kraus": a wide operation as Kraus sandwiches; "basis": back to the
    # complex (row, column) basis at a flush
    kraus: int = 0  # Kraus operators of a "kraus" pass


def superoperator(kraus: Sequence[np.ndarray]) -> np.ndarray:
    """S with S[(a,b),(c,d)] = sum_i K_i[a,c] conj(K_i[b,d]) acting on vec(rho) = rho[a,b]."""
    d = kraus[0].shape[0]
    s = sum(np.einsum("ac,bd->abcd", k, k.conj()) for k in kraus)
    return np.asarray(s).reshape(d * d, d * d)


def _kron_power(m: np.ndarray, k: int) -> np.ndarray:
    out = np.ones((1, 1), dtype=m.dtype)
    for _ in range(k):
        out = np.kron(out, m)
    return out


def _from_vec(t: np.ndarray, k: int) -> np.ndarray:
    """kron(t, ..., t) (k times, each on one qubit's (row bit, column bit)) as a matrix on
    vec(rho) of the k qubits: their k row bits, then their k column bits."""
    perm = np.arange(4**k).reshape((2,) * (2 * k))
    pairs = [axis for q in range(k) for axis in (q, k + q)]
    interleaved = perm.transpose(pairs).reshape(-1)  # vec index of each interleaved index
    full = _kron_power(t, k)
    out = np.zeros_like(full)
    out[:, interleaved] = full
    return out


@functools.cache
def _to_pauli_of_vec(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The change from vec(rho) of k qubits to their Pauli coefficients, and its inverse."""
    to = _from_vec(_TO_PAULI, k)
    return to, np.linalg.inv(to)


@functools.cache
def _real_pauli_of_vec(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The same with the phase i of every Y taken out (``_PHASE``): a real matrix, so that the
    change of basis of a whole rho is real products on its real and imaginary parts."""
    to = _from_vec(_TO_PAULI * np.conj(_PHASE)[:, None], k)
    assert np.abs(to.imag).max() == 0
    return np.ascontiguousarray(to.real), np.ascontiguousarray(np.linalg.inv(to).real)


def transfer_matrix(kraus: Sequence[np.ndarray]) -> np.ndarray:
    """The real Pauli transfer matrix R[P, Q] of the channel (float64), Pauli strings on its
    qubits in big-endian order of I, X, Y, Z: the coefficients c' = R c."""
    k = int(math.log2(kraus[0].shape[0]))
    to, back = _to_pauli_of_vec(k)
    s = superoperator([np.asarray(m, dtype=np.complex128) for m in kraus])
    return np.ascontiguousarray((to @ s @ back).real)


def _embed(r: np.ndarray, targets: tuple[int, ...], span: tuple[int, ...]) -> np.ndarray:
    """The transfer matrix ``r`` on ``targets`` as one on ``span`` (a superset)."""
    k = len(span)
    if len(targets) == k:
        return _reorder(r, [targets.index(q) for q in span])
    if len(targets) == 1 and k == 2:  # r (x) 1 or 1 (x) r, without np.kron's overhead
        first = targets[0] == span[0]
        a, b = (r, _EYE4) if first else (_EYE4, r)
        return (a[:, None, :, None] * b[None, :, None, :]).reshape(16, 16)
    identity = np.eye(4**k).reshape((4,) * (2 * k))
    pos = tuple(span.index(t) for t in targets)
    return _apply_axes(identity, r, pos).reshape(4**k, 4**k)


def _apply_axes(tensor: np.ndarray, matrix: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """A (4,)*m tensor multiplied by a 4^k x 4^k matrix on ``axes`` (small tensors only)."""
    k = len(axes)
    op = matrix.reshape((4,) * (2 * k))
    out = np.tensordot(op, tensor, axes=(list(range(k, 2 * k)), list(axes)))
    return np.moveaxis(out, list(range(k)), list(axes))


def _reorder(r: np.ndarray, perm: list[int]) -> np.ndarray:
    """``r`` on qubits (q_0..q_k-1) as a matrix on (q_perm[0], ..., q_perm[k-1])."""
    k = len(perm)
    if perm == sorted(perm):
        return r
    axes = perm + [k + p for p in perm]
    return np.ascontiguousarray(r.reshape((4,) * (2 * k)).transpose(axes).reshape(4**k, 4**k))


def matmul_inplace(x: np.ndarray, m: np.ndarray, before: int, d: int, after: int) -> None:
    """x <- (I_before (x) m (x) I_after) x for a contiguous flat ``x``, in place: one product
    per chunk of about ``CHUNK`` entries (read and written once, in cache), the chunks shared
    among as many threads as BLAS is allowed, each product on one BLAS thread (OpenBLAS's own
    threads made these small products up to 10x slower on a busy machine)."""
    if after == 1:  # the matrix on the last axes: (rows, d) @ m^T
        v = x.reshape(before, d)
        rows = max(1, CHUNK // d)
        blocks = [v[i : i + rows] for i in range(0, before, rows)]
        m, left = np.ascontiguousarray(m.T), False
    elif d * after <= CHUNK:  # whole (d, after) slices, several per chunk
        v = x.reshape(before, d, after)
        rows = CHUNK // (d * after)
        blocks = [v[i : i + rows] for i in range(0, before, rows)]
        left = True
    else:  # column blocks of one (d, after) slice
        v = x.reshape(before, d, after)
        cols = max(1, CHUNK // d)
        blocks = [v[i, :, j : j + cols] for i in range(before) for j in range(0, after, cols)]
        left = True

    def work(take: Callable[[], int]) -> None:
        scratch = np.empty(blocks[0].shape, dtype=x.dtype)
        while (i := take()) < len(blocks):
            block = blocks[i]
            out = scratch[: len(block)]
            if left:
                np.matmul(m, block, out=out)
            else:
                np.matmul(block, m, out=out)
            block[...] = out

    in_threads(len(blocks), work, x.size >= _PARALLEL_MIN)


def in_threads(tasks: int, work: Callable[[Callable[[], int]], None], parallel: bool) -> None:
    """``work(take)`` in as many threads as BLAS is allowed (one when not ``parallel``), each
    calling ``take()`` for its next task index until it returns ``tasks`` or more; every
    product inside runs on one BLAS thread."""
    libs = _blas_libraries()
    allowed = [lib.num_threads for lib in libs]
    workers = min([tasks, *allowed]) if parallel else 1
    for lib in libs:
        lib.set_num_threads(1)
    try:
        if workers <= 1:
            work(itertools.count().__next__)
            return
        # the threads take the next task as they finish one: a thread slowed down by another
        # process on its core takes fewer
        counter, lock = itertools.count(), threading.Lock()

        def take() -> int:
            with lock:
                return next(counter)

        futures = [_pool().submit(work, take) for _ in range(workers - 1)]
        work(take)  # this thread takes a share too
        for future in futures:
            future.result()
    finally:
        for lib, threads in zip(libs, allowed, strict=True):
            lib.set_num_threads(threads)


@functools.cache
def blas_controller() -> ThreadpoolController:
    """threadpoolctl's view of the BLAS libraries (made once: it inspects every library)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@functools.cache
def _blas_libraries() -> list:
    """The BLAS libraries' controllers: a pass shares its chunks among as many threads as
    they allow (the caller's ``threadpool_limits``; default: every core) and runs each
    product on one BLAS thread."""
    return blas_controller().select(user_api="blas").lib_controllers


_POOL: dict[int, ThreadPoolExecutor] = {}  # per process: a forked child has no pool threads
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    with _POOL_LOCK:
        pool = _POOL.get(os.getpid())
        if pool is None:
            _POOL.clear()
            pool = _POOL[os.getpid()] = ThreadPoolExecutor(
                max_workers=max(1, (os.cpu_count() or 1) - 1), thread_name_prefix="dense"
            )
        return pool


def _groups(slots: Sequence[int], size: int) -> list[tuple[int, int]]:
    """``slots`` (sorted) as runs (first, length) of at most ``size`` adjacent axes."""
    runs: list[tuple[int, int]] = []
    for s in slots:
        if runs and runs[-1][0] + runs[-1][1] == s and runs[-1][1] < size:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((s, 1))
    return runs


def _change_basis(x: np.ndarray, n: int, runs: list[tuple[int, int]], to_pauli: bool) -> None:
    """Change the axes ``runs`` of the flat (4,)*n complex tensor ``x`` in place, one pass
    per run (first axis, k axes), between the Pauli basis and the standard one, where a run's
    4^k entries are vec(rho) of its k qubits: their k row bits, then their k column bits."""
    for first, k in runs:
        m = _to_pauli_of_vec(k)[0 if to_pauli else 1].astype(x.dtype)
        matmul_inplace(x, m, 4**first, 4**k, 4 ** (n - first - k))


class Fuser:
    """rho in the Pauli basis under a stream of instructions: pending transfer matrices on
    disjoint qubit sets are multiplied together before they touch rho.

    ``rho`` is the starting state as a complex tensor with 2n axes (n row axes, then n
    column axes); :meth:`ground` starts from |0...0> without one. :meth:`flush` applies
    what is pending and returns rho in that form (the fuser can go on after it). With
    ``rho=None`` nothing is computed: the fuser only records, in ``applied``, the passes
    over rho it would make, which is what a cost prediction needs."""

    def __init__(self, rho: np.ndarray | None, n: int) -> None:
        self.n = n
        self.order = list(range(n))  # the qubit of each axis of the coefficient tensor
        self.pending: dict[tuple[int, ...], np.ndarray | None] = {}
        self._owner: dict[int, tuple[int, ...]] = {}  # the pending block of each qubit
        self.applied: list[Pass] = []
        self.coeffs: np.ndarray | None = None  # the 4^n real coefficients, flat
        self._spare: np.ndarray | None = None  # the target of a transposing copy
        self._cache: dict[bytes, np.ndarray] = {}  # channels' transfer matrices
        if rho is not None:
            self.complex_dtype = np.dtype(rho.dtype)
            self.coeffs = self._to_pauli(rho)

    @classmethod
    def ground(cls, n: int, dtype: type) -> Fuser:
        """A fuser holding |0...0><0...0|: the coefficient of a Pauli string is 1 where it has
        only I and Z (each qubit's coefficients are (1, 0, 0, 1)), else 0."""
        fuser = cls(None, n)
        fuser.complex_dtype = np.dtype(dtype)
        index = np.zeros(1, dtype=np.int64)
        for _ in range(n):
            index = (4 * index[:, None] + np.array([0, 3])).ravel()
        fuser.coeffs = np.zeros(4**n, dtype=_REAL[fuser.complex_dtype])
        fuser.coeffs[index] = 1.0
        return fuser

    def apply(self, ins: Instruction) -> None:
        k = len(ins.targets)
        if k > PTM_MAX_QUBITS:
            self._wide(ins.targets, ins.kraus)
            return
        r = None if self.coeffs is None else self._transfer(ins.kraus)
        self._add(ins.targets, r, max(k, FUSE_MAX_QUBITS))

    def _transfer(self, kraus: tuple[np.ndarray, ...]) -> np.ndarray:
        """The transfer matrix of ``kraus``; a channel met before (the same noise on other
        qubits) is looked up by its matrices' bytes."""
        if len(kraus) == 1:  # a gate: its angles rarely repeat
            return transfer_matrix(kraus)
        key = np.stack(kraus).tobytes()
        r = self._cache.get(key)
        if r is None:
            r = self._cache[key] = transfer_matrix(kraus)
        return r

    def flush(self) -> np.ndarray | None:
        """Apply what is pending; rho as a complex tensor with 2n axes (None in a dry run)."""
        self.settle()
        self.applied.append(Pass(tuple(range(self.n)), "basis"))
        return None if self.coeffs is None else self._to_standard()

    def settle(self) -> None:
        """Apply what is pending (rho stays in the Pauli basis)."""
        for t, r in self.pending.items():
            self._apply(t, r)
        self.pending.clear()
        self._owner.clear()

    def copy(self) -> Fuser:
        """An independent fuser holding the same rho (pending operations included)."""
        other = copy.copy(self)
        other.order, other.applied = list(self.order), list(self.applied)
        other.pending, other._owner = dict(self.pending), dict(self._owner)
        other.coeffs = None if self.coeffs is None else self.coeffs.copy()
        other._spare = None
        return other

    def trace(self) -> float:
        """tr rho: the coefficient of the identity string (rho = sum_P c_P P / 2^n)."""
        self.settle()
        assert self.coeffs is not None
        return float(self.coeffs[0])

    def diagonal(self) -> np.ndarray:
        """The diagonal of rho (float64, clipped at 0), the fuser left as it was."""
        rho = self.copy().flush()
        assert rho is not None
        dim = 2**self.n
        return np.clip(np.diagonal(rho.reshape(dim, dim)).real.astype(np.float64), 0.0, None)

    def add(self, other: Fuser) -> None:
        """rho += ``other``'s rho."""
        self.settle()
        other.settle()
        assert self.coeffs is not None and other.coeffs is not None
        x = other.coeffs
        if other.order != self.order:
            perm = [other.order.index(q) for q in self.order]
            x = x.reshape((4,) * self.n).transpose(perm).reshape(-1)
        self.coeffs += x

    # ------------------------------------------------------------------ fusion
    def _touched(self, targets: tuple[int, ...]) -> list[tuple[int, ...]]:
        """The pending blocks that share a qubit with ``targets``."""
        return list(dict.fromkeys(self._owner[q] for q in targets if q in self._owner))

    def _put(self, targets: tuple[int, ...], r: np.ndarray | None) -> None:
        self.pending[targets] = r
        self._owner.update(dict.fromkeys(targets, targets))

    def _pop(self, targets: tuple[int, ...]) -> np.ndarray | None:
        for q in targets:
            del self._owner[q]
        return self.pending.pop(targets)

    def _add(self, targets: tuple[int, ...], r: np.ndarray | None, limit: int) -> None:
        touched = self._touched(targets)
        span = tuple(sorted(set(targets).union(*touched)))
        if len(span) > limit:
            for t in touched:
                self._apply(t, self._pop(t))
            self._put(targets, r)
            return
        fused = None if r is None else _embed(r, targets, span)
        for t in touched:  # disjoint, so their order does not matter; all act before ``r``
            other = self._pop(t)
            if fused is not None and other is not None:
                fused = fused @ _embed(other, t, span)
        self._put(span, fused)

    # ------------------------------------------------------------------ passes
    def _apply(self, targets: tuple[int, ...], r: np.ndarray | None) -> None:
        first = self._adjacent(targets)
        self.applied.append(Pass(targets, "ptm"))
        if self.coeffs is None or r is None:
            return
        k = len(targets)
        layout = self.order[first : first + k]
        m = _reorder(r, [targets.index(q) for q in layout]).astype(self.coeffs.dtype)
        matmul_inplace(self.coeffs, m, 4**first, 4**k, 4 ** (self.n - first - k))

    def _adjacent(self, targets: tuple[int, ...]) -> int:
        """The first axis of ``targets``, after one transposing copy if their axes were not
        adjacent (they move next to the first of them; the others keep their order)."""
        slots = sorted(self.order.index(q) for q in targets)
        if slots[-1] - slots[0] + 1 == len(slots):
            return slots[0]
        moved = [self.order[s] for s in slots]
        rest = [q for q in self.order if q not in moved]
        new = rest[: slots[0]] + moved + rest[slots[0] :]
        perm = [self.order.index(q) for q in new]
        self.order = new
        self.applied.append(Pass((), "move"))
        if self.coeffs is not None:
            if self._spare is None:
                self._spare = np.empty_like(self.coeffs)
            shape = (4,) * self.n
            np.copyto(self._spare.reshape(shape), self.coeffs.reshape(shape).transpose(perm))
            self.coeffs, self._spare = self._spare, self.coeffs
        return slots[0]

    def _wide(self, targets: tuple[int, ...], kraus: Sequence[np.ndarray]) -> None:
        """rho <- sum_i K_i rho K_i^dagger on more than ``PTM_MAX_QUBITS`` qubits, after the
        pending operations it overlaps: its qubits' axes in the (row, column) basis."""
        for t in self._touched(targets):
            self._apply(t, self._pop(t))
        self.applied.append(Pass(targets, "kraus", len(kraus)))
        if self.coeffs is None:
            return
        n = self.n
        x = self.coeffs.astype(self.complex_dtype)
        self.coeffs = self._spare = None  # the sandwiches need the memory
        slots = [self.order.index(q) for q in targets]
        runs = [(slot, 1) for slot in sorted(slots)]  # each axis (row bit, column bit)
        _change_basis(x, n, runs, to_pauli=False)
        tensor = x.reshape((2,) * (2 * n))  # axis 2s: the row bit of axis s, 2s + 1: its column
        rows, cols = tuple(2 * s for s in slots), tuple(2 * s + 1 for s in slots)
        terms = (apply_local(apply_local(tensor, k, rows), k.conj(), cols) for k in kraus)
        total = next(terms)
        for term in terms:
            total += term
        x = np.ascontiguousarray(total).reshape(-1)
        _change_basis(x, n, runs, to_pauli=True)
        self.coeffs = np.ascontiguousarray(x.real)

    # ------------------------------------------------------------------ basis changes
    def _to_pauli(self, rho: np.ndarray) -> np.ndarray:
        n = self.n
        runs = _groups(range(n), _BASIS_GROUP)
        # each run's row axes, then its column axes (the identity axis order)
        axes = [a for f, k in runs for a in (*range(f, f + k), *range(n + f, n + f + k))]
        x = np.ascontiguousarray(rho.reshape((2,) * (2 * n)).transpose(axes)).reshape(-1)
        pairs = x.view(_REAL[x.dtype])  # real and imaginary parts: one real change for both
        for first, k in runs:
            m = _real_pauli_of_vec(k)[0].astype(pairs.dtype)
            matmul_inplace(pairs, m, 4**first, 4**k, 4 ** (n - first - k) * 2)
        high, low = _phases(n, x.dtype)
        grid = x.reshape(len(high), len(low))
        grid *= high[:, None]
        grid *= low
        return np.ascontiguousarray(x.real)

    def _to_standard(self) -> np.ndarray:
        assert self.coeffs is not None
        n = self.n
        runs = _groups(range(n), _BASIS_GROUP)
        high, low = _phases(n, self.complex_dtype)
        high, low = high.conj(), low.conj()
        x = np.empty(4**n, dtype=self.complex_dtype)
        grid = x.reshape(len(high), len(low))
        np.multiply(self.coeffs.reshape(grid.shape), high[:, None], out=grid)
        grid *= low
        pairs = x.view(self.coeffs.dtype)  # real and imaginary parts
        for first, k in runs:
            m = _real_pauli_of_vec(k)[1].astype(pairs.dtype)
            matmul_inplace(pairs, m, 4**first, 4**k, 4 ** (n - first - k) * 2)
        row, col = {}, {}  # the bit axis of each qubit's row and column
        for first, k in runs:
            for i in range(k):
                row[self.order[first + i]] = 2 * first + i
                col[self.order[first + i]] = 2 * first + k + i
        axes = [row[q] for q in range(n)] + [col[q] for q in range(n)]
        return np.ascontiguousarray(x.reshape((2,) * (2 * n)).transpose(axes))


def projector(qubit: int, outcome: int, dtype: type) -> Instruction:
    """P_outcome on ``qubit`` as an instruction (a one-operator, trace-decreasing map)."""
    p = np.zeros((2, 2), dtype=dtype)
    p[outcome, outcome] = 1.0
    return Instruction((qubit,), (p,), True)


def _phases(n: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The phases i^(number of Y) of the Pauli strings on the first n // 2 axes and on the
    others (their outer product is the phase of every coefficient): the coefficients are
    these phases times the real changes' outputs."""
    h = n // 2
    return (
        _kron_power(_PHASE[None, :], h).ravel().astype(dtype),
        _kron_power(_PHASE[None, :], n - h).ravel().astype(dtype),
    )
