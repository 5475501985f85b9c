"""A compiled kernel for LRET's large factors: a gate block on one or two qubits applied to L
in place.

NumPy applies a k-qubit matrix to L (2^n x r) with ``tensordot``: a transposing copy of L,
the product into a new array, and a copy back into qubit order, about three passes over L
and an allocation per block. This kernel (numba, compiled once per machine and cached on
disk) reads, for each setting of the other qubits, the 2^k entries a block mixes and writes
them back mixed: one pass, in place, shared among the run's threads. Measured at n = 20 on
one thread, a random two-qubit block on qubits (0, 1), (3, 17) or (18, 19): rank 2, 8-9 ms
against NumPy's 19-64 ms; rank 9, 31-49 ms against 175-182 ms; one in-place pass over L
(``L *= c``) takes 2.4 ms and 16 ms (``benchmarks/bench_lret.py`` times whole runs).

LRET sends a block through it when L has at least ``MIN_ENTRIES`` entries and the block is
not diagonal (NumPy multiplies a diagonal block in place, in one pass, already), and only
once NumPy's passes on such factors have taken ``LOAD_SECONDS`` in this process: importing
numba and loading the compiled kernel takes about 0.8 s (compiling it, the first time on a
machine, about 1.5 s per dtype), which a short run must not pay.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lret_runner.simulators.dense import in_threads
from lret_runner.simulators.fusion import Block, apply_block

# L of at least this many entries (2^n x r) goes through the kernel (n = 18 at rank 1)
MIN_ENTRIES = 1 << 18
# ... once NumPy's passes on such factors have taken this many seconds in this process
LOAD_SECONDS = 1.0
_numpy_seconds = [0.0]
# entries of L one task of a thread mixes
_TASK_ENTRIES = 1 << 16


def apply(
    factor: np.ndarray,
    block: Block,
    spare: np.ndarray | None,
    numpy_dense: Callable[[np.ndarray, np.ndarray, tuple[int, ...]], np.ndarray],
) -> tuple[np.ndarray, np.ndarray | None]:
    """``block`` on L (qubit axes, then the rank axis), as :func:`.fusion.apply_block` does:
    through the kernel when L has at least ``MIN_ENTRIES`` entries, the block is on one or two
    qubits (a gate on three, such as a Toffoli, makes a wider block) and not diagonal
    (NumPy multiplies those in place in one pass already) and the kernel is worth loading:
    once this process's NumPy passes on such factors have taken ``LOAD_SECONDS``, so a short
    run never pays for loading it."""
    large = factor.size >= MIN_ENTRIES and len(block.qubits) <= 2 and not block.diagonal
    if large and (_compiled.cache_info().currsize or _numpy_seconds[0] >= LOAD_SECONDS):
        return apply_dense(factor, block.matrix, block.qubits), spare
    start = time.perf_counter()
    out = apply_block(factor, block, spare, numpy_dense)
    if large:
        _numpy_seconds[0] += time.perf_counter() - start
    return out


def apply_dense(factor: np.ndarray, matrix: np.ndarray, targets: tuple[int, ...]) -> np.ndarray:
    """``matrix`` on one or two qubit axes ``targets`` (big-endian: the first the most
    significant bit of its index) of ``factor``, of shape (2,) * n + (r,): in place when it is
    C-contiguous (else on a C-contiguous copy); the result."""
    if len(targets) > 2:
        raise ValueError(f"the kernel mixes one or two qubits, not {len(targets)}")
    factor = np.ascontiguousarray(factor)
    n, r = factor.ndim - 1, factor.shape[-1]
    k = len(targets)
    shifts = [n - 1 - t for t in targets]  # the bit of each target in the row index
    low = min(shifts)
    # the entries below the lowest target's bit (lower qubits and the rank axis): contiguous
    run = r << low
    offsets = np.array(
        [
            sum(run << (s - low) for j, s in enumerate(shifts) if (a >> (k - 1 - j)) & 1)
            for a in range(2**k)
        ],
        dtype=np.int64,
    )
    ordered = np.array(sorted(s - low for s in shifts), dtype=np.int64)
    matrix = np.ascontiguousarray(matrix, dtype=factor.dtype)
    groups = 2 ** (n - k - low)  # settings of the other qubits above the lowest target
    per_task = max(1, (_TASK_ENTRIES >> k) // run)
    tasks = -(-groups // per_task)
    flat = factor.reshape(-1)
    kernel = _compiled()

    def work(take: Callable[[], int]) -> None:
        while (i := take()) < tasks:
            start = i * per_task
            kernel(flat, matrix, offsets, ordered, run, start, min(groups, start + per_task))

    in_threads(tasks, work, parallel=True)
    return factor


def _mix(flat, m, offsets, ordered, run, start, stop):  # type: ignore[no-untyped-def]
    """The kernel's source (compiled by :func:`_compiled`). For each setting ``group`` of the
    qubits above the lowest target, the block mixes 2^k runs of ``run`` contiguous entries of
    L, ``offsets`` apart: entry by entry, all 2^k are read, then written mixed."""
    d = offsets.shape[0]
    o1 = offsets[1]
    o2, o3 = (offsets[2], offsets[3]) if d == 4 else (0, 0)
    for group in range(start, stop):
        index = group  # a zero bit inserted at each target's position, lowest first
        for s in ordered:
            index = ((index >> s) << (s + 1)) | (index & ((1 << s) - 1))
        base = index * run
        if d == 2:
            for c in range(base, base + run):
                x0, x1 = flat[c], flat[c + o1]
                flat[c] = m[0, 0] * x0 + m[0, 1] * x1
                flat[c + o1] = m[1, 0] * x0 + m[1, 1] * x1
            continue
        for c in range(base, base + run):
            x0, x1, x2, x3 = flat[c], flat[c + o1], flat[c + o2], flat[c + o3]
            flat[c] = m[0, 0] * x0 + m[0, 1] * x1 + m[0, 2] * x2 + m[0, 3] * x3
            flat[c + o1] = m[1, 0] * x0 + m[1, 1] * x1 + m[1, 2] * x2 + m[1, 3] * x3
            flat[c + o2] = m[2, 0] * x0 + m[2, 1] * x1 + m[2, 2] * x2 + m[2, 3] * x3
            flat[c + o3] = m[3, 0] * x0 + m[3, 1] * x1 + m[3, 2] * x2 + m[3, 3] * x3


@functools.cache
def _compiled() -> Callable[..., Any]:
    """:func:`_mix` compiled (from numba's on-disk cache after the first time)."""
    import numba

    return numba.njit(cache=True, nogil=True, fastmath=True)(_mix)
