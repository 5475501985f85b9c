"""Dynamic circuits (mid-circuit measurements, reset, classically controlled operations) on
the branch-ensemble engines (fdm, and lret with ``rank_threshold=0``) against closed forms,
against Qiskit Aer on the same OpenQASM 2 file, against Cirq (its deferred-measurement
transformer, exact, and its own sampling of mid-circuit measurements), and against each
other under noise.

The circuits are the ``tests/qasm/dyn_*.qasm`` corpus (each file's first two lines say
what it is and what it is checked against). Outcome distributions are indexed by the
run's classical bits (``CompiledCircuit.clbits``: the file's declaration order, bits
that are never measured left out), ``clbits[0]`` the most significant bit of the index.

Sampled references (Aer, Cirq's ``run``) are compared outcome by outcome with an exact
two-sided binomial test: every outcome's p-value must exceed :data:`P_VALUE` (the
two-sided 5-sigma normal tail), and an outcome of probability 0 must never be sampled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import cirq
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lret_runner import metrics
from lret_runner.circuits import from_qasm
from lret_runner.errors import CircuitError, ConfigError
from lret_runner.experiment import prepare_circuit, simulate
from lret_runner.noise import add_noise, build_noise_model
from lret_runner.simulators import branches, make_engine
from lret_runner.simulators.base import EngineOutput, compile_circuit

CORPUS = Path(__file__).with_name("qasm")

EXACT = 1e-10  # closed forms and exact references
AGREE = 1e-12  # fdm against lret at rank_threshold=0 (the same arithmetic, other layouts)
IMPOSSIBLE = 1e-12  # an exact probability below this is an outcome that never happens
P_VALUE = 5.7e-7  # two-sided normal tail beyond 5 standard deviations
AER_SHOTS = 20_000
CIRQ_REPETITIONS = 3_000  # Cirq's run costs ~1.6 ms a repetition on the noisy teleportation

# the engines that hold branches, exactly (no truncation)
EXACT_ENGINES: dict[str, dict[str, Any]] = {"fdm": {}, "lret": {"rank_threshold": 0.0}}


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    """One BLAS thread: LRET's small eigendecompositions are much slower with OpenBLAS's
    spinning threads on a loaded machine (the numbers do not change)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# ---------------------------------------------------------------------------- helpers


def read(name: str) -> cirq.Circuit:
    return from_qasm(path=CORPUS / name)


def write(tmp_path: Path, text: str, name: str = "c.qasm") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_exact(circuit: cirq.Circuit, engine: str) -> EngineOutput:
    """The engine's output on ``circuit``, with its exact outcome distribution."""
    out = make_engine(engine, **EXACT_ENGINES[engine]).run(circuit)
    assert out.outcomes is not None, f"{engine} returned no outcome distribution"
    return out


def clbits_of(circuit: cirq.Circuit) -> tuple[str, ...]:
    return compile_circuit(circuit).clbits


def dense(state: metrics.State) -> np.ndarray:
    """The density matrix of an engine's state (Dense, or LowRank: factor @ factor^dagger)."""
    if isinstance(state, metrics.Dense):
        return np.asarray(state.matrix)
    assert isinstance(state, metrics.LowRank), type(state)
    factor = np.asarray(state.factor)
    return factor @ factor.conj().T


def trace_distance(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * float(np.abs(np.linalg.eigvalsh(a - b)).sum())


def bits_of(index: int, clbits: Sequence[str]) -> dict[str, int]:
    m = len(clbits)
    return {key: (index >> (m - 1 - i)) & 1 for i, key in enumerate(clbits)}


def index_of(bits: Mapping[str, int], clbits: Sequence[str]) -> int:
    m = len(clbits)
    return sum(bits[key] << (m - 1 - i) for i, key in enumerate(clbits))


def closed_form(clbits: Sequence[str], prob: Callable[[dict[str, int]], float]) -> np.ndarray:
    """The distribution over ``clbits`` whose outcome ``bits`` has probability ``prob(bits)``."""
    out = np.array([prob(bits_of(i, clbits)) for i in range(2 ** len(clbits))])
    assert abs(out.sum() - 1) < 1e-12, f"the closed form sums to {out.sum()}"
    return out


def assert_close(got: np.ndarray, want: np.ndarray, clbits: Sequence[str], atol: float) -> None:
    """Equal to ``atol`` outcome by outcome; the failure message lists the outcomes that
    differ, as bitstrings over ``clbits``."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, (got.shape, want.shape)
    bad = np.flatnonzero(np.abs(got - want) > atol)
    rows = [f"{i:0{len(clbits)}b}: got {got[i]:.12g}, want {want[i]:.12g}" for i in bad]
    assert not rows, f"clbits {list(clbits)}:\n" + "\n".join(rows)


def assert_sampled(counts: np.ndarray, probs: np.ndarray, clbits: Sequence[str]) -> None:
    """``counts`` (sampled) against the exact ``probs``: every outcome's exact two-sided
    binomial p-value above :data:`P_VALUE`, no count on an outcome of probability 0."""
    from scipy.stats import binomtest

    shots = int(counts.sum())
    rows = []
    for i, (n, p) in enumerate(zip(counts, probs, strict=True)):
        label = f"{i:0{len(clbits)}b}: {int(n)} of {shots} sampled, exact p={p:.6g}"
        if p < IMPOSSIBLE:
            if n:
                rows.append(f"{label} (an impossible outcome)")
            continue
        pvalue = binomtest(int(n), shots, min(float(p), 1.0)).pvalue
        if pvalue < P_VALUE:
            rows.append(f"{label}, binomial p-value {pvalue:.2g}")
    assert not rows, f"clbits {list(clbits)}:\n" + "\n".join(rows)


def qiskit_index(
    key: str, registers: Sequence[tuple[str, int]], clbits: Sequence[str]
) -> tuple[int, dict[str, int]]:
    """Our outcome index from a Qiskit counts key (registers last-first, separated by
    spaces, each register's highest bit first), and the bits the key holds that are not
    ours (declared, never measured)."""
    parts = key.split()
    assert len(parts) == len(registers), (key, registers)
    bits: dict[str, int] = {}
    for (name, size), part in zip(registers, reversed(parts), strict=True):
        assert len(part) == size, (key, registers)
        for i in range(size):
            bits[f"{name}[{i}]"] = int(part[size - 1 - i])
    others = {k: v for k, v in bits.items() if k not in clbits}
    return index_of(bits, clbits), others


def aer_counts(
    text: str,
    clbits: Sequence[str],
    *,
    seed: int,
    noise_model: Any = None,
    method: str = "statevector",
) -> np.ndarray:
    """Qiskit Aer's counts for an OpenQASM 2 program, indexed as our outcomes. A bit the
    file declares but never measures must read 0 in every Aer key."""
    qasm2 = pytest.importorskip("qiskit.qasm2")
    aer = pytest.importorskip("qiskit_aer")
    qc = qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    sim = aer.AerSimulator(method=method, seed_simulator=seed, noise_model=noise_model)
    counts = sim.run(qc, shots=AER_SHOTS).result().get_counts()
    registers = [(r.name, r.size) for r in qc.cregs]
    out = np.zeros(2 ** len(clbits), dtype=np.int64)
    for key, n in counts.items():
        index, others = qiskit_index(key, registers, clbits)
        assert not any(others.values()), f"Aer key {key!r} sets an unmeasured bit: {others}"
        out[index] += n
    return out


def cirq_deferred(circuit: cirq.Circuit, clbits: Sequence[str]) -> np.ndarray:
    """The exact distribution over ``clbits`` from Cirq alone: ``cirq.defer_measurements``
    (each mid-circuit measurement copied to an ancilla, each classical control made a
    quantum control on the ancillas), then ``cirq.DensityMatrixSimulator``'s final state,
    marginalised onto each bit's measured qubit."""
    deferred = cirq.defer_measurements(circuit)
    where: dict[str, cirq.Qid] = {}
    for op in deferred.all_operations():
        if cirq.is_measurement(op):
            assert len(op.qubits) == 1, op
            key = cirq.measurement_key_name(op)
            assert key not in where, f"{key} is measured twice after deferral"
            where[key] = op.qubits[0]
    bare = cirq.Circuit(
        cirq.Moment(op for op in moment if not cirq.is_measurement(op)) for moment in deferred
    )
    order = sorted(bare.all_qubits() | set(where.values()), key=str)
    sim = cirq.DensityMatrixSimulator(dtype=np.complex128)
    rho = sim.simulate(bare, qubit_order=order).final_density_matrix
    n = len(order)
    diagonal = np.real(np.diagonal(rho)).reshape((2,) * n)
    keep = [order.index(where[key]) for key in clbits]
    marginal = diagonal.sum(axis=tuple(i for i in range(n) if i not in keep))
    ascending = sorted(keep)
    marginal = np.transpose(marginal, [ascending.index(k) for k in keep])
    return marginal.reshape(-1)


def cirq_sampled(circuit: cirq.Circuit, clbits: Sequence[str], seed: int) -> np.ndarray:
    """Counts from ``cirq.DensityMatrixSimulator.run``: Cirq samples every mid-circuit
    measurement and applies its own classical control. A bit measured several times takes
    its last measurement's value."""
    result = cirq.DensityMatrixSimulator(seed=seed, split_untangled_states=False).run(
        circuit, repetitions=CIRQ_REPETITIONS
    )
    m = len(clbits)
    index = np.zeros(CIRQ_REPETITIONS, dtype=np.int64)
    for i, key in enumerate(clbits):
        records = result.records[key]  # (repetitions, instances, qubits)
        index |= records[:, -1, 0].astype(np.int64) << (m - 1 - i)
    return np.bincount(index, minlength=2**m)


# ---------------------------------------------------------------------------- closed forms

TELEPORT_ANGLES = [(0.0, 0.0), (1.1, 0.4), (math.pi / 2, 2.0), (2.5, -1.3), (math.pi, 0.7)]


def teleport_text(version: int, theta: float, phi: float, basis: str) -> str:
    """dyn_teleport.qasm (version 2) or dyn_teleport3.qasm (version 3) with input
    ``ry(theta) rz(phi)|0>``, read out in the Z or X basis."""
    text = (CORPUS / ("dyn_teleport.qasm" if version == 2 else "dyn_teleport3.qasm")).read_text()
    for old, new in (
        ("ry(1.1) q[0];", f"ry({theta!r}) q[0];"),
        ("rz(0.4) q[0];", f"rz({phi!r}) q[0];"),
        ("h q[2];\n", "h q[2];\n" if basis == "x" else ""),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def teleported(theta: float, phi: float, basis: str) -> np.ndarray:
    """The input state ``rz(phi) ry(theta)|0>`` (then H for the X basis) as a density matrix."""
    q = cirq.LineQubit(0)
    ops = [cirq.ry(theta)(q), cirq.rz(phi)(q)] + ([cirq.H(q)] if basis == "x" else [])
    psi = cirq.final_state_vector(cirq.Circuit(ops), dtype=np.complex128)
    return np.outer(psi, psi.conj())


@pytest.mark.parametrize("engine", EXACT_ENGINES)
@pytest.mark.parametrize("basis", ["z", "x"])
@pytest.mark.parametrize(("theta", "phi"), TELEPORT_ANGLES)
@pytest.mark.parametrize("version", [2, 3])
def test_teleportation_closed_form(
    tmp_path: Path, version: int, theta: float, phi: float, basis: str, engine: str
) -> None:
    """Teleportation (OpenQASM 2 ``if(m1==1) x``, OpenQASM 3 ``if (m1[0]) x``): against the
    closed form P(m0, m1, out) = P_in(out) / 4, P_in(out=1) = (1 - cos theta) / 2 in the Z
    basis, (1 - sin theta cos phi) / 2 in the X basis (which checks the Z correction), to
    1e-10; and the teleported qubit's state (the sum of the branches, traced over the
    measured qubits) equals the input state to 1e-10."""
    path = write(tmp_path, teleport_text(version, theta, phi, basis))
    circuit = from_qasm(path=path)
    clbits = clbits_of(circuit)
    assert clbits == ("m0[0]", "m1[0]", "out[0]")
    out = run_exact(circuit, engine)
    one = (1 - math.cos(theta)) / 2 if basis == "z" else (1 - math.sin(theta) * math.cos(phi)) / 2
    want = closed_form(clbits, lambda b: (one if b["out[0]"] else 1 - one) / 4)
    assert_close(out.outcomes, want, clbits, EXACT)
    rho = dense(out.state).reshape((2,) * 6)
    reduced = np.einsum("abcabd->cd", rho)
    np.testing.assert_allclose(reduced, teleported(theta, phi, basis), atol=EXACT)
    assert out.branches == 4


@pytest.mark.parametrize("engine", EXACT_ENGINES)
def test_prepare_and_simulate_report_clbits_and_probabilities(engine: str) -> None:
    """``prepare_circuit``/``simulate`` on dyn_teleport.qasm: ``result.clbits`` is the file's
    declaration order, ``result.probabilities`` (save_probabilities=True) the closed form
    (P(out=1) = (1 - sin 1.1 cos 0.4) / 2, m0, m1 uniform) to 1e-10, four branches at most,
    the noiseless TVD 0 (to 1e-10), the counts keyed by bitstrings over the clbits."""
    circuit = read("dyn_teleport.qasm")
    prepared = prepare_circuit(
        circuit,
        simulator=engine,
        simulator_params=EXACT_ENGINES[engine],
        shots=4000,
        seed=5,
        save_probabilities=True,
    )
    result, out = simulate(prepared)
    assert result.backend_used == engine
    assert result.clbits == ["m0[0]", "m1[0]", "out[0]"]
    one = (1 - math.sin(1.1) * math.cos(0.4)) / 2
    want = closed_form(result.clbits, lambda b: (one if b["out[0]"] else 1 - one) / 4)
    assert result.probabilities is not None
    assert_close(np.array(result.probabilities), want, result.clbits, EXACT)
    assert result.branches == 4
    assert result.ideal_tvd is not None and result.ideal_tvd < EXACT
    assert result.counts is not None and sum(result.counts.values()) == 4000
    assert all(len(key) == 3 and set(key) <= {"0", "1"} for key in result.counts)
    counts = np.zeros(8, dtype=np.int64)
    for key, n in result.counts.items():
        counts[int(key, 2)] = n
    assert_sampled(counts, want, result.clbits)


@pytest.mark.parametrize("engine", EXACT_ENGINES)
def test_readout_error_on_a_mid_circuit_measurement_and_ideal_tvd(engine: str) -> None:
    """dyn_active_reset.qasm under a readout error r = 0.1 (``noise.name=readout``), through
    ``prepare_circuit``/``simulate``: against the closed forms, to 1e-10. The readout error
    flips c's record, not the qubit, so the active reset fails exactly when the record is
    wrong: P(c, d, e) = 1/2 P(d = f1 xor f2) P(e = (1 - c) xor f3) with independent flips
    f of probability r. ``ideal_tvd`` is the total variation distance to the noiseless
    circuit's distribution (c uniform, d = 0, e = 1 - c), where no record is flipped."""
    r = 0.1
    circuit = add_noise(
        read("dyn_active_reset.qasm"), build_noise_model("readout", readout_error=r)
    )
    prepared = prepare_circuit(
        circuit,
        simulator=engine,
        simulator_params=EXACT_ENGINES[engine],
        save_probabilities=True,
    )
    result, _ = simulate(prepared)
    assert result.clbits == ["c[0]", "d[0]", "e[0]"]

    def flip(bit: int) -> float:
        return r if bit else 1 - r

    noisy = closed_form(
        result.clbits,
        lambda b: (
            0.5
            * (2 * r * (1 - r) if b["d[0]"] else r**2 + (1 - r) ** 2)
            * flip(b["e[0]"] ^ (1 - b["c[0]"]))
        ),
    )
    ideal = closed_form(
        result.clbits, lambda b: 0.5 * (b["d[0]"] == 0 and b["e[0]"] == 1 - b["c[0]"])
    )
    assert result.probabilities is not None
    assert_close(np.array(result.probabilities), noisy, result.clbits, EXACT)
    assert result.ideal_tvd is not None
    assert abs(result.ideal_tvd - metrics.total_variation(noisy, ideal)) < EXACT, (
        result.ideal_tvd,
        metrics.total_variation(noisy, ideal),
    )


@pytest.mark.parametrize("engine", EXACT_ENGINES)
def test_active_reset_and_conditional_reset(engine: str) -> None:
    """dyn_active_reset.qasm (``measure q[0] -> c[0]; if(c==1) x q[0]`` then measure into d;
    ``if(c==1) reset q[1]`` on a qubit in |1> then measure into e): against the closed form
    c uniform, d = 0 always, e = 1 - c, to 1e-10."""
    circuit = read("dyn_active_reset.qasm")
    clbits = clbits_of(circuit)
    assert clbits == ("c[0]", "d[0]", "e[0]")
    out = run_exact(circuit, engine)
    want = closed_form(clbits, lambda b: 0.5 * (b["d[0]"] == 0 and b["e[0]"] == 1 - b["c[0]"]))
    assert_close(out.outcomes, want, clbits, EXACT)


@pytest.mark.parametrize("engine", EXACT_ENGINES)
def test_reset_after_measurement(engine: str) -> None:
    """dyn_reset_after_measure.qasm (a Bell pair; q[0] measured into c[0], reset, rotated by
    ry(0.8), measured into c[1]; q[1] into d): against the closed form c[0] uniform,
    d = c[0], c[1] = 1 with probability sin^2(0.4) independently, to 1e-10."""
    circuit = read("dyn_reset_after_measure.qasm")
    clbits = clbits_of(circuit)
    assert clbits == ("c[0]", "c[1]", "d[0]")
    out = run_exact(circuit, engine)
    one = math.sin(0.4) ** 2
    want = closed_form(
        clbits,
        lambda b: 0.5 * (b["d[0]"] == b["c[0]"]) * (one if b["c[1]"] else 1 - one),
    )
    assert_close(out.outcomes, want, clbits, EXACT)


@pytest.mark.parametrize("engine", EXACT_ENGINES)
def test_repeat_until_success(engine: str) -> None:
    """dyn_rus.qasm (3 rounds; while c == 0, ry(1.0) on the reset ancilla, cx onto the
    target, measure the ancilla into c[k]): against the closed form with p = sin^2(0.5):
    the first success at round k (c[k-1] the only bit set) has probability (1 - p)^(k-1) p,
    no success (1 - p)^3, the target reads 1 exactly on success; success after round k
    (any of c[0..k-1] set) 1 - (1 - p)^k; to 1e-10."""
    circuit = read("dyn_rus.qasm")
    clbits = clbits_of(circuit)
    assert clbits == ("c[0]", "c[1]", "c[2]", "out[0]")
    out = run_exact(circuit, engine)
    assert out.outcomes is not None
    p = math.sin(0.5) ** 2

    def prob(b: dict[str, int]) -> float:
        rounds = [b["c[0]"], b["c[1]"], b["c[2]"]]
        if not any(rounds):
            return (1 - p) ** 3 * (b["out[0]"] == 0)
        if sum(rounds) != 1 or b["out[0]"] != 1:
            return 0.0
        k = rounds.index(1)
        return (1 - p) ** k * p

    assert_close(out.outcomes, closed_form(clbits, prob), clbits, EXACT)
    for k in (1, 2, 3):
        success = sum(
            out.outcomes[i]
            for i in range(len(out.outcomes))
            if any(bits_of(i, clbits)[f"c[{j}]"] for j in range(k))
        )
        assert abs(success - (1 - (1 - p) ** k)) < EXACT, (k, success)


@pytest.mark.parametrize("engine", EXACT_ENGINES)
def test_bit_measured_twice_and_registers_in_declaration_order(engine: str) -> None:
    """dyn_overwrite.qasm (``creg zb[1]; creg a[2];``: a[1] measured from H|0>, then, after
    x, measured again; ``if(a==3) x q[1]`` reads the first value): against the closed
    form, to 1e-10: the outcome bits are (zb[0], a[0], a[1]) in declaration order; a[0] = 1,
    a[1] keeps its last value (not the first), zb = the first value of a[1]."""
    circuit = read("dyn_overwrite.qasm")
    clbits = clbits_of(circuit)
    assert clbits == ("zb[0]", "a[0]", "a[1]")
    out = run_exact(circuit, engine)
    want = closed_form(clbits, lambda b: 0.5 * (b["a[0]"] == 1 and b["a[1]"] == 1 - b["zb[0]"]))
    assert_close(out.outcomes, want, clbits, EXACT)


@pytest.mark.parametrize("engine", EXACT_ENGINES)
def test_openqasm3_else_and_negated_conditions(engine: str) -> None:
    """dyn_conditions3.qasm (c = two uniform bits; ``if (c != 2) x else ry(0.9)`` into r;
    ``if (!c[0]) x`` into w[0]; ``if (c[1]) ry(0.5) else x`` then ``if (c == 3) x`` into
    w[1]): against the closed form, to 1e-10 (c's value is c[0] + 2 c[1]): r = 1 unless
    c == 2, then P(r=1) = sin^2(0.45); w[0] = 1 - c[0]; w[1] = 1 if c[1] = 0, P(w[1]=1) =
    sin^2(0.25) if c == 2, cos^2(0.25) if c == 3."""
    circuit = read("dyn_conditions3.qasm")
    clbits = clbits_of(circuit)
    assert clbits == ("c[0]", "c[1]", "r", "w[0]", "w[1]")
    out = run_exact(circuit, engine)

    def bernoulli(one: float, bit: int) -> float:
        return one if bit else 1 - one

    def prob(b: dict[str, int]) -> float:
        c = b["c[0]"] + 2 * b["c[1]"]
        r = bernoulli(math.sin(0.45) ** 2 if c == 2 else 1.0, b["r"])
        w0 = float(b["w[0]"] == 1 - b["c[0]"])
        w1_one = {0: 1.0, 1: 1.0, 2: math.sin(0.25) ** 2, 3: math.cos(0.25) ** 2}[c]
        return 0.25 * r * w0 * bernoulli(w1_one, b["w[1]"])

    assert_close(out.outcomes, closed_form(clbits, prob), clbits, EXACT)


@pytest.mark.parametrize("engine", EXACT_ENGINES)
def test_condition_on_a_bit_never_measured_reads_it_as_zero(engine: str) -> None:
    """dyn_unmeasured_bit.qasm (``creg c[2]``, only c[0] measured, ``if(c==1) x q[1]``): an
    OpenQASM bit starts at 0, so the condition holds exactly when c[0] = 1 (Qiskit reads it
    so; :func:`branches.holds` says so too). Against the closed form c[0] uniform, d = c[0],
    to 1e-10 (the outcome bits are the measured ones only)."""
    circuit = read("dyn_unmeasured_bit.qasm")
    out = run_exact(circuit, engine)
    clbits = clbits_of(circuit)
    assert clbits == ("c[0]", "d[0]")
    want = closed_form(clbits, lambda b: 0.5 * (b["d[0]"] == b["c[0]"]))
    assert_close(out.outcomes, want, clbits, EXACT)


def test_a_conditional_measurement_is_refused_with_its_line() -> None:
    """dyn_conditional_measure.qasm (``if(c==0) measure q[0] -> c[1];``; a Cirq circuit cannot
    hold a classically controlled measurement): a CircuitError naming the file, line 11 and
    the statement, never another exception."""
    path = CORPUS / "dyn_conditional_measure.qasm"
    with pytest.raises(CircuitError) as info:
        from_qasm(path=path)
    message = str(info.value)
    assert str(path) in message and "line 11" in message, message
    assert "classically controlled measurement" in message and "measure q[0]" in message


# ---------------------------------------------------------------------------- Qiskit Aer

AER_FILES = [
    "dyn_teleport.qasm",
    "dyn_active_reset.qasm",
    "dyn_reset_after_measure.qasm",
    "dyn_rus.qasm",
    "dyn_overwrite.qasm",
    "dyn_mixed6.qasm",
    "dyn_unmeasured_bit.qasm",
]


@pytest.mark.parametrize("name", AER_FILES)
def test_against_qiskit_aer(name: str) -> None:
    """fdm's exact distribution against Qiskit Aer's counts on the same OpenQASM 2 file
    (``qiskit.qasm2.loads`` with the legacy custom instructions; ``AerSimulator``'s
    statevector method: noiseless, it samples the same distribution as density_matrix,
    which runs dynamic circuits shot by shot ~15x slower), 20 000 shots, seeded: every
    outcome's binomial p-value > 5.7e-7 (5 sigma), no count on an impossible outcome.
    Qiskit's keys are converted: registers last-first, each register's highest bit first,
    to ours (clbits in declaration order, bit 0 first)."""
    text = (CORPUS / name).read_text()
    circuit = read(name)
    clbits = clbits_of(circuit)
    out = run_exact(circuit, "fdm")
    counts = aer_counts(text, clbits, seed=11)
    assert_sampled(counts, out.outcomes, clbits)


def aer_depolarizing_readout(level: float, readout: float) -> Any:
    """Aer's equivalent of the runner's composite depolarizing(level) + readout(readout)
    model at placement=gate: cirq.depolarize(p) is Qiskit's depolarizing_error(4p/3, 1),
    cirq.depolarize(p, n_qubits=2) its depolarizing_error(16p/15, 2), after every gate
    (classically controlled ones only where they act); a readout error flips the record of
    every measurement, mid-circuit ones included."""
    noise = pytest.importorskip("qiskit_aer.noise")
    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(
        noise.depolarizing_error(4 * level / 3, 1), ["h", "x", "z", "rx", "ry", "rz"]
    )
    model.add_all_qubit_quantum_error(noise.depolarizing_error(16 * level / 15, 2), ["cx", "cz"])
    model.add_all_qubit_readout_error(
        noise.ReadoutError([[1 - readout, readout], [readout, 1 - readout]])
    )
    return model


@pytest.mark.parametrize(
    ("name", "method"),
    [("dyn_teleport.qasm", "density_matrix"), ("dyn_mixed6.qasm", "statevector")],
)
def test_noisy_against_qiskit_aer(name: str, method: str) -> None:
    """Under depolarizing noise (0.03, placement=gate, conditional gates' noise conditional)
    and a readout error (0.04, which flips a mid-circuit measurement's record but not the
    qubit): fdm's exact distribution against Aer's counts with the equivalent noise model
    (:func:`aer_depolarizing_readout`; statevector on 6 qubits samples the errors per shot,
    density_matrix would take ~30 s), 20 000 shots: every outcome's binomial p-value >
    5.7e-7 (5 sigma)."""
    text = (CORPUS / name).read_text()
    model = build_noise_model(
        "composite",
        placement="gate",
        components=[
            {"name": "depolarizing", "level": 0.03},
            {"name": "readout", "readout_error": 0.04},
        ],
    )
    noisy = add_noise(read(name), model)
    clbits = clbits_of(noisy)
    out = run_exact(noisy, "fdm")
    counts = aer_counts(
        text, clbits, seed=13, noise_model=aer_depolarizing_readout(0.03, 0.04), method=method
    )
    assert_sampled(counts, out.outcomes, clbits)


# ---------------------------------------------------------------------------- under noise

NOISES = {"depolarizing": 0.03, "amplitude_damping": 0.05}


def noisy(name: str, model: str, placement: str) -> cirq.Circuit:
    return add_noise(read(name), build_noise_model(model, level=NOISES[model], placement=placement))


@pytest.mark.parametrize("placement", ["gate", "moment"])
@pytest.mark.parametrize("model", NOISES)
@pytest.mark.parametrize("name", ["dyn_teleport.qasm", "dyn_mixed6.qasm"])
def test_lret_agrees_with_fdm_under_noise(name: str, model: str, placement: str) -> None:
    """lret at rank_threshold=0 against fdm on the noisy circuit: outcome distributions and
    the summed states (every entry) agree to 1e-12, and both hold the same branches. lret at
    its default (the run.accuracy budget) is within its reported truncation_error of fdm's
    state in trace distance and of fdm's distribution in total variation (plus 1e-12)."""
    circuit = noisy(name, model, placement)
    fdm = run_exact(circuit, "fdm")
    lret = run_exact(circuit, "lret")
    assert fdm.outcomes is not None and lret.outcomes is not None
    assert np.abs(fdm.outcomes - lret.outcomes).max() < AGREE
    reference = dense(fdm.state)
    assert np.abs(reference - dense(lret.state)).max() < AGREE
    assert abs(np.trace(reference).real - 1) < AGREE
    assert fdm.branches == lret.branches
    budget = make_engine("lret").run(circuit)
    assert budget.outcomes is not None
    bound = budget.truncation_error + AGREE
    assert trace_distance(dense(budget.state), reference) <= bound
    assert metrics.total_variation(budget.outcomes, fdm.outcomes) <= bound


@pytest.mark.parametrize(
    ("model", "placement"),
    [("depolarizing", "gate"), ("depolarizing", "moment"), ("amplitude_damping", "moment")],
)
@pytest.mark.parametrize("name", ["dyn_teleport.qasm", "dyn_mixed6.qasm"])
def test_noisy_against_cirq_deferred_measurements(name: str, model: str, placement: str) -> None:
    """fdm and lret (rank_threshold=0) against Cirq alone, exactly: the noisy circuit through
    ``cirq.defer_measurements`` and ``cirq.DensityMatrixSimulator``, marginalised onto the
    bits (:func:`cirq_deferred`), to 1e-10. (Amplitude damping at placement=gate puts a
    classically controlled damping after a conditional gate, which Cirq cannot defer: a
    quantum control of a non-unitary channel; Cirq's sampling covers it below.)"""
    circuit = noisy(name, model, placement)
    clbits = clbits_of(circuit)
    want = cirq_deferred(circuit, clbits)
    for engine in EXACT_ENGINES:
        assert_close(run_exact(circuit, engine).outcomes, want, clbits, EXACT)


def test_noisy_against_cirq_sampling() -> None:
    """fdm's exact distribution against ``cirq.DensityMatrixSimulator.run`` (Cirq samples the
    mid-circuit measurements, applies its own classical control, its confusion maps for
    the mid-circuit readout errors and the runner's noise-tagged channels) on the
    teleportation under amplitude damping (0.05, placement=gate: the damping after each
    conditional gate is conditional too) and a readout error (0.04), 3000 repetitions
    (20 000 would take ~30 s): every outcome's binomial p-value > 5.7e-7 (5 sigma)."""
    model = build_noise_model(
        "composite",
        placement="gate",
        components=[
            {"name": "amplitude_damping", "level": 0.05},
            {"name": "readout", "readout_error": 0.04},
        ],
    )
    circuit = add_noise(read("dyn_teleport.qasm"), model)
    clbits = clbits_of(circuit)
    out = run_exact(circuit, "fdm")
    assert_sampled(cirq_sampled(circuit, clbits, seed=17), out.outcomes, clbits)


# ---------------------------------------------------------------------------- limits


def repeated_measurements(mid: int) -> str:
    """H on one qubit, then ``mid + 1`` measurements of it into c[0..mid]: the first
    ``mid`` are mid-circuit (the qubit is measured again after them), the last terminal.
    At most 2 branches are ever held (the first outcome decides the rest)."""
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', "qreg q[1];", f"creg c[{mid + 1}];"]
    lines += ["h q[0];"] + [f"measure q[0] -> c[{i}];" for i in range(mid + 1)]
    return "\n".join(lines) + "\n"


def test_max_branches_refuses_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A circuit whose mid-circuit measurements write 11 bits (up to 2048 branches) with
    max_branches=1024: prepare_circuit raises a ConfigError naming run.max_branches, and the
    branch driver never runs. With max_branches=2048 it runs: against the closed form
    (all zeros or all ones, 1/2 each, to 1e-10). 10 bits fit 1024 exactly."""
    circuit = from_qasm(path=write(tmp_path, repeated_measurements(11)))

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the branch driver ran")

    with monkeypatch.context() as patch:
        patch.setattr(branches, "run", never)
        for engine in EXACT_ENGINES:
            with pytest.raises(ConfigError, match=r"run\.max_branches=1024") as info:
                prepare_circuit(circuit, simulator=engine, max_branches=1024)
            assert "11 bits" in str(info.value), str(info.value)
    clbits = clbits_of(circuit)
    assert len(clbits) == 12
    want = closed_form(clbits, lambda b: 0.5 * (len(set(b.values())) == 1))
    for engine in EXACT_ENGINES:
        prepared = prepare_circuit(
            circuit,
            simulator=engine,
            simulator_params=EXACT_ENGINES[engine],
            max_branches=2048,
            save_probabilities=True,
        )
        result, _ = simulate(prepared)
        assert result.probabilities is not None
        assert_close(np.array(result.probabilities), want, clbits, EXACT)
        assert result.branches == 2
    ten = from_qasm(path=write(tmp_path, repeated_measurements(10), "ten.qasm"))
    prepare_circuit(ten, simulator="fdm", max_branches=1024)  # no refusal


def test_max_branches_is_validated_and_outcome_bits_are_capped(tmp_path: Path) -> None:
    """run.max_branches=0 is a ConfigError naming run.max_branches; a dynamic circuit whose
    measurements write 25 bits (more than branches.MAX_CLBITS = 24: a distribution of 2^25
    entries) is refused at prepare_circuit with a ConfigError naming the bit count."""
    circuit = read("dyn_teleport.qasm")
    with pytest.raises(ConfigError, match=r"run\.max_branches"):
        prepare_circuit(circuit, simulator="fdm", max_branches=0)
    many = from_qasm(path=write(tmp_path, repeated_measurements(24)))
    assert len(clbits_of(many)) == branches.MAX_CLBITS + 1
    with pytest.raises(ConfigError, match="25 classical bits"):
        prepare_circuit(many, simulator="lret", max_branches=2**30)


def test_trajectories_refuses_naming_the_engines_that_can() -> None:
    """simulator=trajectories refuses a dynamic circuit at prepare_circuit (and at run) with
    a ConfigError naming simulator=fdm, simulator=lret and simulator=cirq."""
    circuit = read("dyn_teleport.qasm")
    with pytest.raises(ConfigError) as info:
        prepare_circuit(circuit, simulator="trajectories")
    message = str(info.value)
    assert "simulator=trajectories" in message, message
    assert all(f"simulator={e}" in message for e in ("fdm", "lret", "cirq")), message
    with pytest.raises(ConfigError):
        make_engine("trajectories").run(circuit)


@pytest.mark.parametrize("placement", ["gate", "moment"])
@pytest.mark.parametrize("name", ["dyn_teleport.qasm", "dyn_mixed6.qasm"])
def test_the_cirq_engine_agrees_with_fdm_through_deferred_measurements(
    name: str, placement: str
) -> None:
    """simulator=cirq runs a dynamic circuit through Cirq's own classical control
    (cirq.defer_measurements, then its density matrix): its outcome distribution and its
    state (the ancillas traced out) equal fdm's branches to 1e-10, under depolarizing noise."""
    circuit = add_noise(
        read(name), build_noise_model("depolarizing", level=0.03, placement=placement)
    )
    prog = compile_circuit(circuit)
    ours = make_engine("fdm").run(prog)
    theirs = make_engine("cirq").run(prog)
    assert theirs.outcomes is not None and ours.outcomes is not None
    np.testing.assert_allclose(theirs.outcomes, ours.outcomes, atol=1e-10)
    np.testing.assert_allclose(theirs.state.matrix, ours.state.matrix, atol=1e-10)


def test_the_cirq_engine_refuses_what_cirq_cannot_defer_before_running() -> None:
    """dyn_rus.qasm reads c[1] (``if(c==0)``) before any measurement writes it (it reads 0):
    fdm and lret run it, Cirq cannot defer it, so simulator=cirq is refused at
    prepare_circuit (before a run is recorded), naming fdm and lret."""
    with pytest.raises(ConfigError, match=r"simulator=cirq cannot run this dynamic.*simulator=fdm"):
        prepare_circuit(read("dyn_rus.qasm"), simulator="cirq")


# ---------------------------------------------------------------------------- auto


def without_dynamics(circuit: cirq.Circuit) -> cirq.Circuit:
    """The circuit with its measurements and classically controlled operations dropped."""
    return cirq.Circuit(
        cirq.Moment(op for op in m if not cirq.is_measurement(op) and not cirq.control_keys(op))
        for m in circuit
    )


@pytest.mark.parametrize("name", ["dyn_teleport.qasm", "dyn_mixed6.qasm"])
def test_auto_picks_an_engine_with_branches(name: str) -> None:
    """simulator=auto on a noisy dynamic circuit picks fdm or lret, and its distribution
    equals fdm's within its truncation_error (in total variation, plus 1e-10)."""
    circuit = noisy(name, "depolarizing", "gate")
    prepared = prepare_circuit(circuit, simulator="auto", save_probabilities=True)
    assert prepared.backend_used in ("fdm", "lret"), prepared.backend_reason
    result, _ = simulate(prepared)
    reference = run_exact(circuit, "fdm").outcomes
    assert result.probabilities is not None and result.truncation_error is not None
    tvd = metrics.total_variation(np.array(result.probabilities), reference)
    assert tvd <= result.truncation_error + EXACT


def test_auto_holds_branches_where_it_would_pick_trajectories(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where auto picks trajectories for a static circuit (a dense matrix does not fit in
    free memory, patched to 0 bytes for auto's choice only, and lret is predicted to exceed
    its time limit), it picks lret for the dynamic one (never trajectories or cirq), whose
    distribution equals fdm's within its truncation_error (in total variation, plus
    1e-10)."""
    import lret_runner.simulators as simulators

    circuit = noisy("dyn_teleport.qasm", "depolarizing", "gate")
    params = {"time_limit_seconds": 1e-9}
    with monkeypatch.context() as patch:
        patch.setattr(simulators, "available_bytes", lambda: 0.0)
        static = prepare_circuit(
            without_dynamics(circuit), simulator="auto", simulator_params=params
        )
        assert static.backend_used == "trajectories", static.backend_reason
        prepared = prepare_circuit(
            circuit, simulator="auto", simulator_params=params, save_probabilities=True
        )
    assert prepared.backend_used == "lret", prepared.backend_reason
    result, _ = simulate(prepared)
    reference = run_exact(circuit, "fdm").outcomes
    assert result.probabilities is not None and result.truncation_error is not None
    tvd = metrics.total_variation(np.array(result.probabilities), reference)
    assert tvd <= result.truncation_error + EXACT


# ---------------------------------------------------------------------------- every file


def _readable() -> list[str]:
    """The corpus files the reader accepts."""
    names = []
    for path in sorted(CORPUS.glob("*.qasm")):
        try:
            from_qasm(path=path)
        except CircuitError:
            continue
        names.append(path.name)
    return names


@pytest.mark.parametrize("name", _readable())
def test_every_file_runs_under_both_placements(name: str) -> None:
    """Every corpus file the reader accepts runs on fdm with depolarizing noise placed after
    every gate and after every moment (terminal measurements are moved last before noise,
    so idle noise never lands on a measured qubit), with the same outcome bits; its
    outcomes form a distribution (sum 1 to 1e-12)."""
    circuit = read(name)
    bits = set()
    for placement in ("gate", "moment"):
        noisy = add_noise(
            circuit, build_noise_model("depolarizing", level=0.01, placement=placement)
        )
        result, _ = simulate(prepare_circuit(noisy, simulator="fdm", save_probabilities=True))
        assert abs(sum(result.probabilities) - 1) < 1e-12
        bits.add(tuple(result.clbits or ()))
    assert len(bits) == 1


@pytest.mark.parametrize("accuracy", [1e-3, 1e-2])
def test_lret_branches_spend_the_accuracy_budget_and_meet_it(accuracy: float) -> None:
    """lret without rank_threshold on a noisy dynamic circuit (dyn_mixed6.qasm, depolarizing
    0.05): each branch spends its weight's share of run.accuracy, so the summed
    truncation_error is within run.accuracy, and the trace distance to fdm's exact ensemble
    (compare_to_exact) is within truncation_error."""
    noisy = add_noise(read("dyn_mixed6.qasm"), build_noise_model("depolarizing", level=0.05))
    prepared = prepare_circuit(noisy, simulator="lret", accuracy=accuracy, compare_to_exact=True)
    result, _ = simulate(prepared)
    assert result.accuracy is not None and result.accuracy["met"]
    assert result.truncation_error is not None and result.truncation_error <= accuracy
    assert result.exact_trace_distance is not None
    assert result.exact_trace_distance <= result.truncation_error + 1e-12
