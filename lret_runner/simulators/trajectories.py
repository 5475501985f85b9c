"""Quantum trajectories (Monte-Carlo wave functions): the noisy circuit as sampled pure states.

Every channel of the noisy circuit is sampled: one Kraus operator is applied, chosen with
its probability, and the state renormalised. A trajectory ends in a pure state psi_k of
2^n amplitudes (16 MiB at n = 20, where a density matrix is 16 TiB), and
rho = E|psi_k><psi_k|. Every figure linear in rho, tr(A rho) (a probability, an expectation
value, an energy, a fidelity to a pure state, the linear XEB), is the mean over
trajectories of its value on psi_k (:class:`~lret_runner.metrics.PureFigures`), estimated
with a standard error. Nothing of a trajectory is kept but its figures' running sums and
those of |psi_k|^2 (the estimated distribution, from which counts are sampled and the TVD
and Hellinger fidelity to the noiseless output are computed, as a plug-in: not linear in
rho, they carry no standard error). Purity is not estimated.

How many: ``trajectories`` fixes the count; otherwise a pilot batch estimates each figure's
variance, and batches follow until every figure's standard error is within ``accuracy``
(for the distribution, the largest over the measured outcomes), ``max_trajectories`` or the
time limit is reached; a figure that missed is named in a warning. A mean can rest on rare
trajectories (at strong noise most have a fidelity near 2^-n, a few near 1) that a small
batch may not contain, and its variance then looks tiny: the rule decides with the variance
of the trajectories plus two made-up ones at the ends of the figure's range (a fidelity's
0 and 1, an expectation value's -1 and 1, :attr:`PureFigures.bounds`), which costs about
range / (1.4 x accuracy) trajectories at least (about 70 for a fidelity at 1e-2, times
1 - w0 when stratified). The standard errors reported are these too: they stay honest about
what a batch may have missed, and exceed the plain ones by O(range / N) only.

Stratification (``stratify``). A channel whose Kraus operators are a mixture of Paulis (its
process matrix in the Pauli basis is diagonal: depolarizing, bit and phase flip, phase
damping, their two-qubit forms) applies the identity with a probability q_l that does not
depend on the state. When every channel of the circuit is such, the error-free branch has
the exact weight w0 = prod_l q_l and one state psi_0 (the circuit without its channels),
simulated once, and only trajectories with at least one error are sampled: the first
error's location l with its exact probability prod_(j<l) q_j (1 - q_l) / (1 - w0), its
Pauli in proportion to its probability, the channels after it as usual. Then
E[f] = w0 f(psi_0) + (1 - w0) E[f | an error], whose standard error is (1 - w0) times the
conditional one: the work falls with the noise. Trajectories are drawn in batches sorted by
the first error's moment, and the error-free state is carried forward through the batch
once, so each trajectory simulates only what follows its first error. A channel whose
no-error probability depends on the state (amplitude damping, thermal relaxation, a general
channel) has no such constant weight: a circuit with one is sampled plainly, every
trajectory from the start.

Kernels: qsim (``qsimcirq``, the ``trajectories`` extra; single precision whatever
``backend.dtype``, run with the run's thread count) when installed, else a numpy sampler on
the compiled instructions with LRET's rank-one kernel (:func:`~.lret.apply_blocked`), which
says so in a warning. Random draws come from ``seed`` alone (qsim's from seeds drawn from
it), so a seed gives the same trajectories whatever the thread count.
"""

from __future__ import annotations

import itertools
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lret_runner import accuracy as contract
from lret_runner.accuracy import PROBABILITIES_SE
from lret_runner.errors import ConfigError, MemoryRefusal, check_choice, check_range
from lret_runner.metrics import Sampled, marginal
from lret_runner.simulators import base
from lret_runner.simulators.base import (
    CompiledCircuit,
    Engine,
    EngineOutput,
    Instruction,
    ProgressCallback,
    check_dtype,
)
from lret_runner.simulators.lret import apply_blocked

if TYPE_CHECKING:
    from collections.abc import Sequence

    import cirq

PureFigures = Callable[[np.ndarray, np.ndarray], dict[str, float]]  # (psi, |psi|^2) -> values
KERNELS = ("auto", "qsim", "numpy")
QSIM_EXTRA = "pip install 'lret_runner[trajectories]'"
DEFAULT_MAX_TRAJECTORIES = 100_000
# trajectories of the first batch, from which the variances are estimated: PILOT, or as few
# as PILOT_MIN where the made-up trajectories alone allow accuracy with fewer than PILOT
PILOT, PILOT_MIN = 64, 16
GROWTH = 2  # a batch at most this many times the trajectories so far (the variances settle)
TIME_SHARE = 0.9  # of time_limit_seconds the sampling may use (measuring follows)
# state vectors held at once (the error-free state, a branch, the kernel's output and
# working copies) and float64 vectors of 2^n (the sums of |psi|^2 and of its square, |psi|^2)
VECTORS, FLOAT_VECTORS = 5, 3
_PAULI_TOL = 1e-10  # off-diagonal process-matrix weight below which a channel is Pauli


@dataclass(frozen=True)
class PauliMixture:
    """A channel that applies ``unitaries[a]`` with probability ``probs[a]`` (index 0 is the
    identity, whose probability does not depend on the state)."""

    unitaries: tuple[np.ndarray, ...]
    probs: np.ndarray

    @property
    def identity(self) -> float:
        return float(self.probs[0])


def pauli_mixture(kraus: Sequence[np.ndarray]) -> PauliMixture | None:
    """The channel as a mixture of Paulis when its process matrix in the Pauli basis is
    diagonal (chi_ab = sum_i c_ia c_ib^*, K_i = sum_a c_ia P_a), else None. Up to 2 qubits."""
    dim = kraus[0].shape[0]
    k = dim.bit_length() - 1
    if k > 2:
        return None
    basis = _pauli_basis(k)
    coeffs = np.array([[np.trace(p.conj().T @ m) / dim for p in basis] for m in kraus])
    chi = coeffs.T @ coeffs.conj()
    off = chi - np.diag(np.diag(chi))
    if np.abs(off).max(initial=0.0) > _PAULI_TOL:
        return None
    probs = np.clip(np.diag(chi).real, 0.0, None)
    probs = probs / probs.sum()
    dtype = np.result_type(kraus[0].dtype, np.complex64)
    return PauliMixture(tuple(p.astype(dtype) for p in basis), probs)


def _pauli_basis(k: int) -> list[np.ndarray]:
    one = [np.eye(2), np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1, -1])]
    out = []
    for letters in itertools.product(one, repeat=k):
        matrix = np.eye(1)
        for m in letters:
            matrix = np.kron(matrix, m)
        out.append(matrix.astype(np.complex128))
    return out


class TrajectoriesSimulator(Engine):
    """Samples pure-state trajectories of the noisy circuit (module docstring).

    Args:
        accuracy: the largest standard error of each reported figure (``run.accuracy``).
        trajectories: a fixed number of trajectories (with at least one error when
            stratified), instead of the accuracy rule.
        max_trajectories: the most trajectories the accuracy rule may run.
        time_limit_seconds: the run's time limit (``run.timeout_seconds``): no batch starts
            that would end after 90% of it.
        stratify: simulate the error-free branch once when its weight is exact.
        kernel: ``auto`` (qsim if installed, else numpy), ``qsim`` or ``numpy``.
        dtype: of the numpy kernel (qsim computes in complex64).
    """

    name = "trajectories"
    sampled = True

    def __init__(
        self,
        *,
        accuracy: float = contract.DEFAULT,
        trajectories: int | None = None,
        max_trajectories: int = DEFAULT_MAX_TRAJECTORIES,
        time_limit_seconds: float | None = None,
        stratify: bool = True,
        kernel: str = "auto",
        dtype: str = "complex128",
    ) -> None:
        self.accuracy = contract.check(accuracy)
        if trajectories is not None:
            check_range("simulator.trajectories", trajectories, 2, integer=True)
        self.trajectories = trajectories
        self.max_trajectories = int(
            check_range("simulator.max_trajectories", max_trajectories, 2, integer=True)
        )
        if time_limit_seconds is not None:
            check_range("run.timeout_seconds", time_limit_seconds, 0, open_low=True)
        self.time_limit_seconds = time_limit_seconds
        self.stratify = bool(stratify)
        self.kernel = check_choice("simulator.kernel", kernel, KERNELS, ConfigError)
        if self.kernel == "qsim" and not _has_qsim():
            raise ConfigError(
                f"simulator.kernel=qsim needs qsimcirq, which is not installed: {QSIM_EXTRA}"
            )
        self.dtype = check_dtype(dtype)
        self._request: tuple[PureFigures | None, int | None, int] = (None, None, 1)

    def run(  # type: ignore[override]
        self,
        circuit: cirq.Circuit | CompiledCircuit,
        *,
        qubits: Sequence[cirq.Qid] | None = None,
        progress: ProgressCallback | None = None,
        figures: PureFigures | None = None,
        seed: int | None = None,
        threads: int | None = None,
    ) -> EngineOutput:
        """:meth:`Engine.run`, estimating ``figures`` (psi, |psi|^2) -> {key: value} besides
        the distribution; ``seed`` makes it reproducible, ``threads`` is qsim's."""
        self._request = (figures, seed, max(1, int(threads or 1)))
        try:
            return super().run(circuit, qubits=qubits, progress=progress)
        finally:
            self._request = (None, None, 1)

    def check_qubits(self, n_qubits: int) -> None:
        need = float(2**n_qubits) * (VECTORS * np.dtype(self.dtype).itemsize + FLOAT_VECTORS * 8)
        free = base.available_bytes()
        if need > free:
            raise MemoryRefusal(
                f"simulator=trajectories refuses n_qubits={n_qubits}: its state vectors and "
                f"sums need {need / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB is free"
            )

    # ------------------------------------------------------------ the run
    def _run(self, prog: CompiledCircuit, progress: ProgressCallback) -> EngineOutput:
        figures, seed, threads = self._request
        self.check_qubits(prog.n_qubits)
        rng = np.random.default_rng(seed)
        warnings: list[str] = []
        kernel = self._make_kernel(prog, threads, rng, warnings)
        try:
            psi0 = kernel.advance(None, 0, len(prog.moments), noisy=False)
        except Exception as exc:  # a gate qsim cannot translate
            if not isinstance(kernel, _QsimKernel) or self.kernel == "qsim":
                raise
            warnings.append(
                f"qsim could not run this circuit ({type(exc).__name__}: {exc}); the "
                "trajectories ran on the numpy kernel instead"
            )
            kernel = _NumpyKernel(prog, rng, self.dtype)
            psi0 = kernel.advance(None, 0, len(prog.moments), noisy=False)
        sampler = _Sampler(prog, kernel, rng, figures or (lambda psi, probs: {}))
        bounds = dict(getattr(figures, "bounds", {}))
        locations = sampler.locations
        mixtures = [pauli_mixture(ins.kraus) for _, _, ins in locations]
        exact_branch = all(m is not None for m in mixtures)
        clean: tuple[dict[str, float], np.ndarray] | None = sampler.measure(psi0)
        if not locations:  # no channel: the one state
            error_free, tally = 1.0, _Tally(prog, bounds)
            how = "no channel to sample: the circuit's state vector"
        elif self.stratify and exact_branch:
            sampler.stratify([m for m in mixtures if m is not None])
            error_free = sampler.error_free
            tally = self._sample(sampler, progress, warnings, bounds, weight=1.0 - error_free)
            how = (
                f"stratified: the error-free branch (weight {error_free:.6g}) once, "
                f"{tally.count} trajectories with an error"
            )
        else:
            error_free, clean = 0.0, None
            tally = self._sample(sampler, progress, warnings, bounds, weight=1.0)
            why = (
                "stratify=false"
                if exact_branch
                else "a channel's no-error weight depends on the state"
            )
            how = f"plain sampling ({why}): {tally.count} trajectories"
        estimates, errors, diagonal = tally.estimates(1.0 - error_free, clean)
        method = f"{kernel.describe(threads)}; {how}"
        return EngineOutput(
            state=Sampled(diagonal),
            simulation_time_seconds=0.0,
            memory_used_mb=float(2**prog.n_qubits)
            * (VECTORS * kernel.itemsize + FLOAT_VECTORS * 8)
            / 2**20,
            warnings=warnings,
            estimates=estimates,
            standard_errors=errors,
            samples=tally.count,
            method=method,
        )

    def _make_kernel(
        self, prog: CompiledCircuit, threads: int, rng: np.random.Generator, warnings: list[str]
    ) -> _Kernel:
        if self.kernel == "numpy":
            return _NumpyKernel(prog, rng, self.dtype)
        if not _has_qsim():
            warnings.append(
                "qsimcirq is not installed: the trajectories ran on the slower numpy kernel "
                f"({QSIM_EXTRA} for qsim)"
            )
            return _NumpyKernel(prog, rng, self.dtype)
        return _QsimKernel(prog, threads, rng)

    def _sample(
        self,
        sampler: _Sampler,
        progress: ProgressCallback,
        warnings: list[str],
        bounds: dict[str, tuple[float, float]],
        *,
        weight: float,
    ) -> _Tally:
        """Batches until every standard error (times ``weight``, the sampled stratum's; with
        the ``bounds`` as made-up trajectories) is within accuracy, or the count is fixed, or
        the cap or the time limit binds."""
        tally = _Tally(sampler.prog, bounds)
        if weight <= 0:
            return tally
        fixed = self.trajectories
        cap = fixed or self.max_trajectories
        spread = max((hi - lo for lo, hi in bounds.values()), default=1.0)
        floor = math.ceil(weight * max(spread, 1.0) / (math.sqrt(2) * self.accuracy))
        target = fixed or min(max(PILOT_MIN, min(PILOT, floor)), cap)
        start = time.perf_counter()
        stopped_by = ""
        while tally.count < target:
            batch = min(target - tally.count, max(PILOT_MIN, (GROWTH - 1) * tally.count))
            if self.time_limit_seconds is not None and tally.count:
                per = (time.perf_counter() - start) / tally.count
                left = TIME_SHARE * self.time_limit_seconds - (time.perf_counter() - start)
                batch = min(batch, int(left / per))
                if batch < 1:
                    stopped_by = f"the time limit (run.timeout_seconds={self.time_limit_seconds:g})"
                    break
            sampler.sample(batch, tally, lambda t=target: progress(tally.count, t))
            if fixed:
                continue
            worst = weight * max(tally.errors().values(), default=math.inf)
            if worst <= self.accuracy:
                break
            needed = math.ceil(tally.count * (worst / self.accuracy) ** 2 * 1.05)
            target = min(cap, max(needed, tally.count + 1))
            if target == tally.count:
                stopped_by = f"simulator.max_trajectories={cap}"
                break
        self._warn_missed(tally, weight, warnings, stopped_by or f"simulator.trajectories={fixed}")
        return tally

    def _warn_missed(
        self, tally: _Tally, weight: float, warnings: list[str], stopped_by: str
    ) -> None:
        errors = {k: weight * v for k, v in tally.errors().items()}
        missed = {k: v for k, v in errors.items() if v > self.accuracy}
        if not missed:
            return
        worst = max(missed, key=lambda k: missed[k])
        needed = tally.count * (missed[worst] / self.accuracy) ** 2
        names = ", ".join(
            f"{_label(k)} {v:.2g}" for k, v in sorted(missed.items(), key=lambda kv: -kv[1])
        )
        warnings.append(
            f"accuracy not met: after {tally.count} trajectories ({stopped_by}) the standard "
            f"error of {names} exceeds run.accuracy={self.accuracy:g} (the worst by "
            f"{missed[worst] / self.accuracy:.2g}x); about {needed:.3g} trajectories would "
            "meet it"
        )


def _has_qsim() -> bool:
    try:
        import qsimcirq  # noqa: F401
    except ImportError:
        return False
    return True


def _label(key: str) -> str:
    if key == PROBABILITIES_SE:
        return "the measured probabilities (the largest over outcomes)"
    return f"<{key}>" if set(key) <= set("IXYZ") else key


# ---------------------------------------------------------------- sampling
class _Sampler:
    """Draws trajectories of ``prog`` with a kernel and tallies their figures."""

    def __init__(
        self, prog: CompiledCircuit, kernel: _Kernel, rng: np.random.Generator, figures: PureFigures
    ) -> None:
        self.prog, self.kernel, self.rng, self.figures = prog, kernel, rng, figures
        # every channel in order: (moment, position in the moment, instruction)
        self.locations = [
            (m, i, ins)
            for m, moment in enumerate(prog.moments)
            for i, ins in enumerate(moment)
            if ins.is_channel
        ]
        self._where = {(m, i): j for j, (m, i, _) in enumerate(self.locations)}
        self.mixtures: list[PauliMixture] = []
        self.error_free = 0.0
        self._first: np.ndarray | None = None  # cumulative law of the first error's location

    def stratify(self, mixtures: list[PauliMixture]) -> None:
        """Condition on at least one error: the first error's law (module docstring)."""
        self.mixtures = mixtures
        q = np.array([m.identity for m in mixtures])
        before = np.concatenate([[1.0], np.cumprod(q)[:-1]])  # no error before location l
        first = before * (1.0 - q)
        self.error_free = float(np.prod(q))
        self._first = np.cumsum(first) / first.sum() if first.sum() > 0 else None

    def measure(self, psi: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
        psi = psi / np.sqrt(np.vdot(psi, psi).real)
        probs = np.abs(psi.astype(np.complex128, copy=False)) ** 2
        return self.figures(psi, probs), probs

    def sample(self, count: int, tally: _Tally, tick: Callable[[], None]) -> None:
        """``count`` more trajectories into ``tally``, ``tick()`` after each."""
        if self._first is None:
            for _ in range(count):
                tally.add(*self.measure(self.kernel.advance(None, 0, len(self.prog.moments))))
                tick()
            return
        self._sample_conditional(count, tally, tick)

    def _sample_conditional(self, count: int, tally: _Tally, tick: Callable[[], None]) -> None:
        """``count`` trajectories with at least one error, sorted by the first error's moment:
        the error-free state is carried forward once through the batch."""
        assert self._first is not None
        firsts = np.minimum(
            np.searchsorted(self._first, self.rng.random(count), side="right"),
            len(self.locations) - 1,
        )
        firsts.sort()
        end = len(self.prog.moments)
        psi, at = None, 0  # the error-free state before moment ``at``
        for first in firsts:
            moment = self.locations[first][0]
            for m in range(at, moment):  # one moment at a time: each kernel call is reused
                psi = self.kernel.advance(psi, m, m + 1, noisy=False)
            at = moment
            branch = self._branch_moment(psi, int(first))
            tally.add(*self.measure(self.kernel.advance(branch, moment + 1, end)))
            tick()

    def _branch_moment(self, psi: np.ndarray | None, first: int) -> np.ndarray:
        """The first error's moment on the error-free state: no error before it, the error
        (a Pauli other than the identity), the channels after it sampled."""
        moment, _, _ = self.locations[first]
        n = self.prog.n_qubits
        state = _zero(n, self.kernel.dtype) if psi is None else psi.astype(self.kernel.dtype)
        tensor = state.reshape((2,) * n + (1,))
        for position, ins in enumerate(self.prog.moments[moment]):
            if not ins.is_channel:
                tensor = apply_blocked(tensor, ins.kraus[0].astype(tensor.dtype), ins.targets)
                continue
            j = self._where[(moment, position)]
            if j < first:
                continue
            mix = self.mixtures[j]
            if j == first:
                errors = mix.probs[1:] / mix.probs[1:].sum()
                a = 1 + int(self.rng.choice(len(errors), p=errors))
            else:
                a = int(self.rng.choice(len(mix.probs), p=mix.probs))
            if a:
                tensor = apply_blocked(tensor, mix.unitaries[a].astype(tensor.dtype), ins.targets)
        return tensor.reshape(2**n)


class _Tally:
    """Running sums over trajectories: of each figure (shifted by its first value, so the
    variance does not cancel), of |psi|^2, and of the measured marginal's square."""

    def __init__(self, prog: CompiledCircuit, bounds: dict[str, tuple[float, float]]) -> None:
        self.bounds = bounds
        self.n = prog.n_qubits
        self.kept = sorted(set(prog.measured)) or list(range(self.n))
        self.count = 0
        self.shift: dict[str, float] = {}
        self.sums: dict[str, float] = {}
        self.squares: dict[str, float] = {}
        self.diagonal = np.zeros(2**self.n)
        self.marginal_squares = np.zeros(2 ** len(self.kept))

    def add(self, values: dict[str, float], probs: np.ndarray) -> None:
        if not self.count:
            self.shift = dict(values)
            self.sums = dict.fromkeys(values, 0.0)
            self.squares = dict.fromkeys(values, 0.0)
        for key, value in values.items():
            d = value - self.shift[key]
            self.sums[key] += d
            self.squares[key] += d * d
        self.diagonal += probs
        self.marginal_squares += marginal(probs, self.kept) ** 2
        self.count += 1

    def errors(self) -> dict[str, float]:
        """The standard error of each mean (the sampled stratum's, unweighted), of the
        trajectories and two made-up ones at each figure's bounds (the probabilities': 0 and
        1; module docstring)."""
        if self.count < 2:
            return {}
        out = {}
        for key in self.sums:
            n, total, squares = self.count, self.sums[key], self.squares[key]
            if key in self.bounds:
                for end in self.bounds[key]:
                    d = end - self.shift[key]
                    n, total, squares = n + 1, total + d, squares + d * d
            var = (squares - total**2 / n) / (n - 1)
            out[key] = math.sqrt(max(var, 0.0) / n)
        # with two made-up trajectories: one puts everything on outcome x, one nothing
        n = self.count + 2
        total = marginal(self.diagonal, self.kept) + 1.0
        squares = self.marginal_squares + 1.0
        var = np.clip(squares - total**2 / n, 0.0, None) / (n - 1)
        out[PROBABILITIES_SE] = float(np.sqrt(var.max() / n))
        return out

    def estimates(
        self, weight: float, clean: tuple[dict[str, float], np.ndarray] | None
    ) -> tuple[dict[str, float], dict[str, float], np.ndarray]:
        """The estimates, their standard errors and the distribution: the sampled stratum's
        means with ``weight``, plus the error-free branch ``clean`` (its figures and
        distribution) with the rest."""
        errors = {k: weight * v for k, v in self.errors().items()}
        if self.count:
            means = {k: self.shift[k] + self.sums[k] / self.count for k in self.sums}
            diagonal = self.diagonal / self.count
        else:
            means, diagonal = {}, np.zeros(2**self.n)
        if clean is None:
            return means, errors, diagonal
        values, probs = clean
        rest = 1.0 - weight
        estimates = {k: rest * v + weight * means.get(k, 0.0) for k, v in values.items()}
        if not self.count:
            errors = {**dict.fromkeys(values, 0.0), PROBABILITIES_SE: 0.0}
        return estimates, errors, rest * probs + weight * diagonal


# ---------------------------------------------------------------- kernels
def _zero(n: int, dtype: Any) -> np.ndarray:
    psi = np.zeros(2**n, dtype=dtype)
    psi[0] = 1.0
    return psi


class _Kernel(ABC):
    """Advances a state vector through moments [start, stop): sampling the channels
    (``noisy``), or without them (the error-free branch). ``psi`` None is |0...0>."""

    dtype: Any
    itemsize: int

    @abstractmethod
    def advance(
        self, psi: np.ndarray | None, start: int, stop: int, noisy: bool = True
    ) -> np.ndarray: ...

    @abstractmethod
    def describe(self, threads: int) -> str: ...


class _NumpyKernel(_Kernel):
    """The compiled instructions, one by one, with LRET's rank-one kernel."""

    def __init__(self, prog: CompiledCircuit, rng: np.random.Generator, dtype: Any) -> None:
        self.prog, self.rng, self.dtype = prog, rng, dtype
        self.itemsize = np.dtype(dtype).itemsize
        self._mixtures: dict[int, PauliMixture | None] = {}

    def describe(self, threads: int) -> str:
        return f"numpy kernel ({np.dtype(self.dtype).name}, {threads} BLAS threads)"

    def advance(
        self, psi: np.ndarray | None, start: int, stop: int, noisy: bool = True
    ) -> np.ndarray:
        n = self.prog.n_qubits
        state = _zero(n, self.dtype) if psi is None else psi.astype(self.dtype)
        tensor = state.reshape((2,) * n + (1,))
        for moment in self.prog.moments[start:stop]:
            for ins in moment:
                if not ins.is_channel:
                    tensor = apply_blocked(tensor, ins.kraus[0].astype(self.dtype), ins.targets)
                elif noisy:
                    tensor = self._channel(tensor, ins)
        return tensor.reshape(2**n)

    def _channel(self, tensor: np.ndarray, ins: Instruction) -> np.ndarray:
        key = id(ins.kraus)
        if key not in self._mixtures:
            self._mixtures[key] = pauli_mixture(ins.kraus)
        mix = self._mixtures[key]
        if mix is not None:  # a state-independent choice; the identity costs nothing
            a = int(self.rng.choice(len(mix.probs), p=mix.probs))
            if not a:
                return tensor
            return apply_blocked(tensor, mix.unitaries[a].astype(self.dtype), ins.targets)
        # a general channel: K_i with probability |K_i psi|^2, tried in order until the
        # uniform draw is passed (the likeliest operator of a weak channel usually first)
        u = self.rng.random()
        total = 0.0
        branch = tensor
        for k in ins.kraus:
            branch = apply_blocked(tensor, k.astype(self.dtype), ins.targets)
            weight = float(np.vdot(branch, branch).real)
            total += weight
            if u < total and weight > 0:
                return branch / math.sqrt(weight)
        return branch / math.sqrt(max(float(np.vdot(branch, branch).real), 1e-300))


class _QsimKernel(_Kernel):
    """qsim on the circuit's moments [start, stop): the noisy slices sampled by qsim (one
    trajectory per call, from a seed of its own generator), the error-free ones without
    their channels. Each slice is translated once (a simulator per slice)."""

    dtype = np.complex64
    itemsize = 8

    def __init__(self, prog: CompiledCircuit, threads: int, rng: np.random.Generator) -> None:
        import cirq
        import qsimcirq

        self.prog = prog
        self.threads = threads
        self.seeds = np.random.default_rng(rng.integers(2**63))
        # (operation, is it a channel) per moment: compile_circuit keeps the circuit's moments
        # and their operations in order, measurements left out. A mixed-unitary channel is
        # given to qsim with its mixture computed once (qsim's translation asks Cirq for it
        # on every operation of every slice, which costs ms each for depolarize)
        mixtures: dict[Any, Any] = {}
        self.moments: list[list[tuple[cirq.Operation, bool]]] = []
        for moment, instructions in zip(prog.circuit, prog.moments, strict=True):
            ops = [op for op in moment if not cirq.is_measurement(op)]
            entry = []
            for op, ins in zip(ops, instructions, strict=True):
                if ins.is_channel and op.gate is not None and cirq.has_mixture(op):
                    if op.gate not in mixtures:
                        mixtures[op.gate] = cirq.MixedUnitaryChannel(cirq.mixture(op.gate))
                    op = mixtures[op.gate].on(*op.qubits)
                entry.append((op, ins.is_channel))
            self.moments.append(entry)
        fused = 2 if prog.n_qubits < 22 else 3  # qsim's advice
        self.options = qsimcirq.QSimOptions(cpu_threads=threads, max_fused_gate_size=fused)
        self.slices: dict[tuple[int, int, bool], tuple[Any, Any] | None] = {}

    def describe(self, threads: int) -> str:
        import qsimcirq

        return f"qsim {qsimcirq.__version__} ({threads} threads, complex64)"

    def _slice(self, start: int, stop: int, noisy: bool) -> tuple[Any, Any] | None:
        key = (start, stop, noisy)
        if key not in self.slices:
            import cirq
            import qsimcirq

            moments = [
                cirq.Moment(op for op, channel in ops if noisy or not channel)
                for ops in self.moments[start:stop]
            ]
            circuit = cirq.Circuit(moments)
            if not any(moments):
                self.slices[key] = None
            else:
                sim = qsimcirq.QSimSimulator(
                    self.options,
                    seed=int(self.seeds.integers(2**31 - 1)),
                    circuit_memoization_size=1,
                )
                self.slices[key] = (sim, circuit)
        return self.slices[key]

    def advance(
        self, psi: np.ndarray | None, start: int, stop: int, noisy: bool = True
    ) -> np.ndarray:
        entry = self._slice(start, stop, noisy)
        if entry is None:
            return _zero(self.prog.n_qubits, self.dtype) if psi is None else psi
        sim, circuit = entry
        initial = 0 if psi is None else np.ascontiguousarray(psi, dtype=np.complex64)
        _, out, _ = sim.simulate_into_1d_array(
            circuit, qubit_order=list(self.prog.qubits), initial_state=initial
        )
        return out
