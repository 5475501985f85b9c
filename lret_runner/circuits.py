"""Circuit builders: each returns a ``cirq.Circuit`` on ``cirq.LineQubit.range(n_qubits)``.

Every builder is keyword-only, deterministic for a given ``seed`` (through
``numpy.random.default_rng``), uses all of its qubits, and takes ``measure`` which
appends one final moment ``cirq.measure(*qubits, key="m")``. Qubit order is Cirq's:
qubit 0 is the most significant bit of a basis index and the first character of a
bitstring. ``build_circuit(name, **params)`` dispatches on the names of
``CIRCUIT_BUILDERS``; invalid parameters raise :class:`CircuitError` naming the field.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import cirq
import numpy as np

from lret_runner.errors import CircuitError, CircuitFileNotFound, check_number, check_range

# bundled example: 3 qubits with h, cx, ccx, rz and a final measurement
EXAMPLE_QASM = Path(__file__).with_name("data") / "example.qasm"

# Building a circuit, adding its noise and compiling it take about a minute per million
# gates (measured: 687,500 gates and their noise in 43 s): a circuit of more gates is
# refused before it is built (circuit.depth=10**7 at 4 qubits: about 40 minutes).
MAX_OPERATIONS = 1_000_000
# an OpenQASM file larger than this is refused before it is read (a circuit of
# MAX_OPERATIONS gates is about 20 MB of OpenQASM)
QASM_MAX_BYTES = 64 * 2**20

SINGLE_QUBIT_GATES = ("h", "x", "y", "z", "s", "t", "rx", "ry", "rz")
TWO_QUBIT_GATES = ("cnot", "cz", "iswap")
QAOA_GRAPHS = ("ring", "random")

_FIXED_1Q: dict[str, cirq.Gate] = {
    "h": cirq.H,
    "x": cirq.X,
    "y": cirq.Y,
    "z": cirq.Z,
    "s": cirq.S,
    "t": cirq.T,
}
_ROTATIONS: dict[str, Callable[[float], cirq.Gate]] = {"rx": cirq.rx, "ry": cirq.ry, "rz": cirq.rz}
_FIXED_2Q: dict[str, cirq.Gate] = {"cnot": cirq.CNOT, "cz": cirq.CZ, "iswap": cirq.ISWAP}
# the elementary gates ``cirq.qft`` is decomposed into
_QFT_GATES = (cirq.HPowGate, cirq.CZPowGate, cirq.SwapPowGate)


# --------------------------------------------------------------------------- validation


def _check_int(field: str, value: Any, minimum: int) -> int:
    """``value`` as an int, or a :class:`CircuitError` naming ``circuit.<field>``."""
    return int(
        check_range(
            f"circuit.{field}",
            value,
            minimum,
            None,
            CircuitError,
            integer=True,
            what="must be an integer",
        )
    )


def _check_seed(seed: Any) -> int | None:
    """A seed is null or a non-negative integer (numpy's generators refuse negative seeds)."""
    return None if seed is None else _check_int("seed", seed, 0)


def _check_angles(field: str, values: Iterable[Any]) -> list[float]:
    """Angles as floats, each a finite number, else a :class:`CircuitError` naming
    ``circuit.<field>[i]`` (the config's are checked before building; a library call's here)."""
    out = []
    for i, value in enumerate(values):
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            number = value
        out.append(check_number(f"circuit.{field}[{i}]", number, CircuitError))
    return out


def _check_size(
    field: str, value: int, gates_per_unit: int, n_qubits: int, shown: str | None = None
) -> None:
    """Refuse, before building, a circuit of more than :data:`MAX_OPERATIONS` gates:
    ``value`` units of ``circuit.<field>`` (moments, layers, iterations) of at most
    ``gates_per_unit`` gates each (``shown``: how to show the value, if not as given)."""
    total = value * gates_per_unit
    if total > MAX_OPERATIONS:
        most = max(1, MAX_OPERATIONS // gates_per_unit)
        raise CircuitError(
            f"circuit.{field}={shown or value} is invalid for circuit.n_qubits={n_qubits}: "
            "the circuit "
            f"would have about {total:,} gates, more than the {MAX_OPERATIONS:,} a circuit may "
            f"have (preparing a million gates takes about a minute); "
            f"use circuit.{field} <= {most} at this n_qubits"
        )


def _check_gate_pool(field: str, names: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    """The gate names of a pool, lower-cased; unknown or no names are a :class:`CircuitError`."""
    if isinstance(names, str):
        names = (names,)
    pool = tuple(str(name).lower() for name in names)
    if not pool:
        raise CircuitError(f"circuit.{field}=() is invalid: the gate pool is empty")
    for name in pool:
        if name not in allowed:
            raise CircuitError(
                f"circuit.{field} has an unknown gate {name!r}: allowed are {', '.join(allowed)}"
            )
    return pool


def _finish(circuit: cirq.Circuit, qubits: Sequence[cirq.Qid], measure: bool) -> cirq.Circuit:
    """Append the final measurement moment (key ``m``) when ``measure`` is set."""
    if measure:
        circuit.append(cirq.Moment(cirq.measure(*qubits, key="m")))
    return circuit


# --------------------------------------------------------------------------- builders


def random_circuit(
    *,
    n_qubits: int,
    depth: int,
    seed: int | None = None,
    single_qubit_gates: Sequence[str] = SINGLE_QUBIT_GATES,
    two_qubit_gates: Sequence[str] = TWO_QUBIT_GATES,
    measure: bool = False,
) -> cirq.Circuit:
    """A random brickwork circuit of exactly ``depth`` moments (plus the measurement).

    Even moments (0, 2, ...) put a random gate from ``single_qubit_gates`` on every
    qubit (rotation angles uniform in [0, 2pi)). Odd moments put random gates from
    ``two_qubit_gates`` on pairs (i, i+1) starting at offset 0, 1, 0, 1, ... (always 0
    for two qubits); with one qubit, odd moments are single-qubit moments too.
    """
    n = _check_int("n_qubits", n_qubits, 1)
    depth = _check_int("depth", depth, 1)
    seed = _check_seed(seed)
    _check_size("depth", depth, n, n)
    pool_1q = _check_gate_pool("single_qubit_gates", single_qubit_gates, SINGLE_QUBIT_GATES)
    pool_2q = _check_gate_pool("two_qubit_gates", two_qubit_gates, TWO_QUBIT_GATES)
    rng = np.random.default_rng(seed)
    qubits = cirq.LineQubit.range(n)

    def one_qubit_gate() -> cirq.Gate:
        name = pool_1q[rng.integers(len(pool_1q))]
        if name in _ROTATIONS:
            return _ROTATIONS[name](float(rng.uniform(0.0, 2 * np.pi)))
        return _FIXED_1Q[name]

    moments = []
    for index in range(depth):
        if index % 2 == 0 or n == 1:
            moments.append(cirq.Moment(one_qubit_gate().on(q) for q in qubits))
        else:
            offset = (index // 2) % 2 if n > 2 else 0
            pairs = [(qubits[i], qubits[i + 1]) for i in range(offset, n - 1, 2)]
            gates = [_FIXED_2Q[pool_2q[rng.integers(len(pool_2q))]] for _ in pairs]
            moments.append(cirq.Moment(g.on(a, b) for g, (a, b) in zip(gates, pairs, strict=True)))
    return _finish(cirq.Circuit(moments), qubits, measure)


def layered(
    *, n_qubits: int, layers: int, seed: int | None = None, measure: bool = False
) -> cirq.Circuit:
    """A layered random circuit of ``layers`` layers, ``2 * layers`` moments (plus the
    measurement).

    Each layer is one moment with a random single-qubit rotation on every qubit
    (``cirq.PhasedXZGate`` with x, z and axis-phase exponents seeded uniform in [0, 1)),
    then one moment of CNOTs on pairs (i, i+1) starting at offset ``layer % 2`` (the
    second moment is empty for one qubit, and for two qubits on odd layers).
    """
    n = _check_int("n_qubits", n_qubits, 1)
    layers = _check_int("layers", layers, 1)
    seed = _check_seed(seed)
    _check_size("layers", layers, n + n // 2, n)  # n rotations, at most n/2 CNOTs
    rng = np.random.default_rng(seed)
    qubits = cirq.LineQubit.range(n)
    moments = []
    for layer in range(layers):
        x, z, a = rng.uniform(0.0, 1.0, size=(3, n))
        moments.append(
            cirq.Moment(
                cirq.PhasedXZGate(
                    x_exponent=float(x[i]), z_exponent=float(z[i]), axis_phase_exponent=float(a[i])
                ).on(q)
                for i, q in enumerate(qubits)
            )
        )
        pairs = range(layer % 2, n - 1, 2)
        moments.append(cirq.Moment(cirq.CNOT(qubits[i], qubits[i + 1]) for i in pairs))
    return _finish(cirq.Circuit(moments), qubits, measure)


def ghz(*, n_qubits: int, measure: bool = False) -> cirq.Circuit:
    """The GHZ state (|0...0> + |1...1>)/sqrt(2): H on qubit 0, then a CNOT chain."""
    n = _check_int("n_qubits", n_qubits, 1)
    qubits = cirq.LineQubit.range(n)
    circuit = cirq.Circuit(cirq.H(qubits[0]))
    circuit.append(cirq.CNOT(a, b) for a, b in zip(qubits, qubits[1:], strict=False))
    return _finish(circuit, qubits, measure)


def qft(
    *, n_qubits: int, final_swaps: bool = True, input_state: int = 0, measure: bool = False
) -> cirq.Circuit:
    """The quantum Fourier transform of the basis state ``|input_state>``.

    ``input_state`` is prepared with X gates (qubit 0 is the most significant bit).
    With ``final_swaps`` the result is the DFT ``sum_k exp(2 pi i x k / 2^n) |k> /
    sqrt(2^n)``; without them the output index ``k`` is bit-reversed. ``cirq.qft`` is
    decomposed into H, controlled-phase (CZ**t) and SWAP gates.
    """
    n = _check_int("n_qubits", n_qubits, 1)
    if isinstance(input_state, bool) or not isinstance(input_state, int | np.integer):
        raise CircuitError(f"circuit.input_state={input_state!r} is invalid: must be an integer")
    if not 0 <= input_state < 2**n:
        raise CircuitError(
            f"circuit.input_state={input_state} is invalid: must be in [0, {2**n - 1}] "
            f"for n_qubits={n}"
        )
    qubits = cirq.LineQubit.range(n)
    bits = format(int(input_state), f"0{n}b")
    circuit = cirq.Circuit(cirq.X(q) for q, bit in zip(qubits, bits, strict=True) if bit == "1")
    op = cirq.qft(*qubits, without_reverse=not final_swaps)
    circuit.append(cirq.decompose(op, keep=lambda o: isinstance(o.gate, _QFT_GATES)))
    return _finish(circuit, qubits, measure)


def _angles(
    field: str, values: float | Sequence[float] | None, p: int, rng: np.random.Generator
) -> list[float]:
    """``p`` QAOA angles: as given (p values, or one broadcast) or seeded uniform in [0, pi)."""
    if values is None:
        return [float(x) for x in rng.uniform(0.0, np.pi, size=p)]
    if isinstance(values, int | float | np.floating | np.integer):
        return [check_number(f"circuit.{field}", values, CircuitError)] * p
    angles = _check_angles(field, values)
    if len(angles) != p:
        raise CircuitError(f"circuit.{field}={angles} is invalid: needs p={p} values")
    return angles


def qaoa_edges(
    n_qubits: int, graph: str = "ring", edge_probability: float = 0.5, seed: int | None = None
) -> list[tuple[int, int]]:
    """The MaxCut graph of :func:`qaoa` as a list of edges (i, j) with i < j."""
    n = _check_int("n_qubits", n_qubits, 2)
    seed = _check_seed(seed)
    if graph not in QAOA_GRAPHS:
        raise CircuitError(
            f"circuit.graph={graph!r} is invalid: must be one of {', '.join(QAOA_GRAPHS)}"
        )
    if not 0.0 <= edge_probability <= 1.0:
        raise CircuitError(
            f"circuit.edge_probability={edge_probability} is invalid: "
            "a probability must be in [0, 1]"
        )
    ring = sorted({tuple(sorted((i, (i + 1) % n))) for i in range(n)})
    if graph == "ring":
        return [(a, b) for a, b in ring]
    rng = np.random.default_rng(seed)
    edges = [(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < edge_probability]
    return edges or [(a, b) for a, b in ring]


def qaoa(
    *,
    n_qubits: int,
    p: int = 1,
    graph: str = "ring",
    edge_probability: float = 0.5,
    gammas: float | Sequence[float] | None = None,
    betas: float | Sequence[float] | None = None,
    seed: int | None = None,
    measure: bool = False,
) -> cirq.Circuit:
    """A depth-``p`` MaxCut QAOA state on a ring or a seeded random graph.

    H on every qubit, then per layer: the cost ``exp(-i gamma Z_i Z_j / 2)`` on every
    edge (``cirq.ZZPowGate(exponent=gamma/pi, global_shift=-0.5)``, exact, no global
    phase; this equals ``exp(+i gamma C)`` up to a phase for the cut size
    ``C = sum (1 - Z_i Z_j)/2``) and the mixer ``rx(2 beta) = exp(-i beta X)`` on every
    qubit. Default angles are seeded uniform in [0, pi). A random graph (each pair an
    edge with ``edge_probability``) without edges falls back to the ring.
    """
    n = _check_int("n_qubits", n_qubits, 2)
    p = _check_int("p", p, 1)
    seed = _check_seed(seed)
    edges = qaoa_edges(n, graph, edge_probability, seed)
    _check_size("p", p, len(edges) + n, n)
    rng = np.random.default_rng(None if seed is None else [seed, 1])
    gamma_list = _angles("gammas", gammas, p, rng)
    beta_list = _angles("betas", betas, p, rng)
    qubits = cirq.LineQubit.range(n)
    circuit = cirq.Circuit(cirq.H.on_each(*qubits))
    for gamma, beta in zip(gamma_list, beta_list, strict=True):
        cost = cirq.ZZPowGate(exponent=gamma / np.pi, global_shift=-0.5)
        circuit.append(cost.on(qubits[i], qubits[j]) for i, j in edges)
        circuit.append(cirq.rx(2 * beta).on_each(*qubits))
    return _finish(circuit, qubits, measure)


def vqe(
    *,
    n_qubits: int,
    depth: int = 2,
    seed: int | None = None,
    rotations: Sequence[str] = ("ry", "rz"),
    angles: Sequence[float] | None = None,
    measure: bool = False,
) -> cirq.Circuit:
    """A hardware-efficient ansatz of ``depth`` layers.

    Each layer: every rotation of ``rotations`` (``ry``, ``rz``, ``rx``, in order) on every
    qubit, then a CNOT chain q0 -> q1 -> ... -> q(n-1). ``angles`` gives the
    ``depth * len(rotations) * n_qubits`` angles in that order (layer, rotation, qubit);
    null: seeded uniform in [0, 2pi). See :func:`vqe_angle_count`.
    """
    n = _check_int("n_qubits", n_qubits, 1)
    depth = _check_int("depth", depth, 1)
    seed = _check_seed(seed)
    pool = _check_gate_pool("rotations", rotations, tuple(_ROTATIONS))
    _check_size("depth", depth, (len(pool) + 1) * n, n)  # rotations on every qubit, n - 1 CNOTs
    count = vqe_angle_count(n, depth, pool)
    if angles is None:
        values = [float(a) for a in np.random.default_rng(seed).uniform(0, 2 * np.pi, count)]
    else:
        values = _check_angles("angles", angles)
        if len(values) != count:
            raise CircuitError(
                f"circuit.angles has {len(values)} values: the ansatz needs {count} "
                f"(depth {depth} x {len(pool)} rotations x {n} qubits), or null for seeded angles"
            )
    qubits = cirq.LineQubit.range(n)
    circuit = cirq.Circuit()
    it = iter(values)
    for _ in range(depth):
        for name in pool:
            circuit.append(_ROTATIONS[name](next(it)).on(q) for q in qubits)
        circuit.append(cirq.CNOT(a, b) for a, b in zip(qubits, qubits[1:], strict=False))
    return _finish(circuit, qubits, measure)


def vqe_angle_count(n_qubits: int, depth: int, rotations: Sequence[str]) -> int:
    """How many angles :func:`vqe` takes: one per rotation, qubit and layer."""
    return depth * len(rotations) * n_qubits


def grover(
    *,
    n_qubits: int,
    marked: str | None = None,
    iterations: int | None = None,
    seed: int | None = None,
    measure: bool = False,
) -> cirq.Circuit:
    """Grover search for the bitstring ``marked`` (qubit 0 first; seeded random if None).

    ``iterations`` defaults to the optimum ``floor(pi/4 * sqrt(2^n))`` (at least 1).
    The oracle is a multi-controlled Z conjugated by X on the qubits whose bit is 0;
    the diffuser is H X (multi-controlled Z) X H on all qubits.
    """
    n = _check_int("n_qubits", n_qubits, 2)
    seed = _check_seed(seed)
    if marked is None:
        marked = "".join(str(b) for b in np.random.default_rng(seed).integers(0, 2, size=n))
    marked = str(marked)
    if len(marked) != n or set(marked) - {"0", "1"}:
        raise CircuitError(
            f"circuit.marked={marked!r} is invalid: must be a bitstring of {n} characters 0/1"
        )
    shown = None
    if iterations is None:
        iterations = max(1, math.floor(math.pi / 4 * math.sqrt(2**n)))
        shown = f"null (the optimum, {iterations})"
    iterations = _check_int("iterations", iterations, 1)
    _check_size("iterations", iterations, 6 * n + 2, n, shown)  # oracle and diffuser
    qubits = cirq.LineQubit.range(n)
    zeros = [q for q, bit in zip(qubits, marked, strict=True) if bit == "0"]
    mcz = cirq.Z.controlled(n - 1).on(*qubits)
    circuit = cirq.Circuit(cirq.H.on_each(*qubits))
    for _ in range(iterations):
        circuit.append([cirq.X.on_each(*zeros), mcz, cirq.X.on_each(*zeros)])  # oracle
        circuit.append([cirq.H.on_each(*qubits), cirq.X.on_each(*qubits), mcz])  # diffuser
        circuit.append([cirq.X.on_each(*qubits), cirq.H.on_each(*qubits)])
    return _finish(circuit, qubits, measure)


ARCHITECTURE_GATES = SINGLE_QUBIT_GATES + ("cnot", "cz")  # the architecture search's pool
CONNECTIVITIES = ("all", "linear")


def architecture(
    *,
    n_qubits: int,
    slots: Sequence[str],
    angles: Sequence[float] | None = None,
    measure: bool = False,
) -> cirq.Circuit:
    """A circuit given as a list of slots, each one gate on chosen qubits, in order.

    A slot is ``none`` (no gate), ``GATE_Q`` for a one-qubit gate (``h_0``, ``ry_2``) or
    ``GATE_A_B`` for a two-qubit gate (``cnot_0_1``: control 0, target 1; ``cz_1_2``).
    Gates: h x y z s t rx ry rz cnot cz. A rotation in slot i turns by ``angles[i]``
    (null: pi/2 for every rotation). This is the circuit family the architecture search
    (``+optimize=circuit_automl``) explores: its slots are the search space.
    """
    n = _check_int("n_qubits", n_qubits, 1)
    if isinstance(slots, str):
        slots = [slots]
    _check_size("slots", len(slots), 1, n, shown=f"[{len(slots)} slots]")
    if angles is not None:
        angles = _check_angles("angles", angles)
    if angles is not None and len(angles) != len(slots):
        raise CircuitError(
            f"circuit.angles has {len(angles)} values for {len(slots)} slots: give one angle per "
            "slot (used by rotations) or null for pi/2"
        )
    qubits = cirq.LineQubit.range(n)
    circuit = cirq.Circuit()
    for i, slot in enumerate(slots):
        gate = parse_slot(slot, n, f"circuit.slots[{i}]")
        if gate is None:
            continue
        name, targets = gate
        on = [qubits[q] for q in targets]
        if name in _ROTATIONS:
            circuit.append(_ROTATIONS[name](np.pi / 2 if angles is None else float(angles[i]))(*on))
        else:
            circuit.append({**_FIXED_1Q, **_FIXED_2Q}[name](*on))
    return _finish(circuit, qubits, measure)


def parse_slot(slot: str, n_qubits: int, key: str) -> tuple[str, tuple[int, ...]] | None:
    """``cnot_0_1`` -> ("cnot", (0, 1)); ``none`` -> None; a bad slot is a CircuitError."""
    text = str(slot).strip().lower()
    if text == "none":
        return None
    name, *rest = text.split("_")
    arity = 2 if name in ("cnot", "cz") else 1 if name in SINGLE_QUBIT_GATES else 0
    try:
        targets = tuple(int(q) for q in rest)
    except ValueError:
        targets = ()
    if (
        arity == 0
        or len(targets) != arity
        or len(set(targets)) != arity
        or not all(0 <= q < n_qubits for q in targets)
    ):
        raise CircuitError(
            f"{key}={slot!r} is invalid: a slot is none, GATE_Q (h x y z s t rx ry rz) or "
            f"GATE_A_B (cnot cz) on distinct qubits in [0, {n_qubits - 1}], e.g. h_0, cnot_0_1"
        )
    return name, targets


def architecture_slots(
    n_qubits: int, gates: Sequence[str] = ARCHITECTURE_GATES, connectivity: str = "all"
) -> list[str]:
    """Every value a slot can take with this gate pool: ``none`` first, then each gate on
    each qubit (two-qubit gates on every ordered pair for cnot, every pair for cz; with
    ``linear`` connectivity only neighbours)."""
    pool = _check_gate_pool("gates", gates, ARCHITECTURE_GATES)
    if connectivity not in CONNECTIVITIES:
        raise CircuitError(
            f"connectivity={connectivity!r} is invalid: must be one of {', '.join(CONNECTIVITIES)}"
        )
    n = n_qubits
    pairs = [(a, b) for a in range(n) for b in range(n) if a != b]
    if connectivity == "linear":
        pairs = [(a, b) for a, b in pairs if abs(a - b) == 1]
    out = ["none"]
    for name in pool:
        if name in SINGLE_QUBIT_GATES:
            out += [f"{name}_{q}" for q in range(n)]
        else:
            out += [f"{name}_{a}_{b}" for a, b in pairs if name == "cnot" or a < b]
    return out


def target_state(target: str, n_qubits: int) -> np.ndarray:
    """The pure state ``target`` names, as a 2^n vector in Cirq's order: ``ghz``, ``w``, a
    bitstring (``0101``: a basis state, qubit 0 first), or the path of an OpenQASM file
    whose noiseless output state (on ``n_qubits`` qubits) is the target."""
    n = n_qubits
    text = str(target).strip()
    vector = np.zeros(2**n, dtype=np.complex128)
    if text.lower() == "ghz":
        vector[0] = vector[-1] = 1 / np.sqrt(2)
    elif text.lower() == "w":
        if n < 2:
            raise CircuitError("optimize.target=w needs at least 2 qubits")
        for q in range(n):
            vector[1 << (n - 1 - q)] = 1 / np.sqrt(n)
    elif text and set(text) <= {"0", "1"}:
        if len(text) != n:
            raise CircuitError(
                f"optimize.target={text!r} is a basis state of {len(text)} qubits: "
                f"the circuit has {n}"
            )
        vector[int(text, 2)] = 1.0
    else:
        path = Path(text)
        if path.suffix.lower() != ".qasm" and not path.exists():
            raise CircuitError(
                f"optimize.target={text!r} is invalid: must be ghz, w, a bitstring of {n} "
                "bits (a basis state) or the path of an OpenQASM file"
            )
        circuit = cirq.drop_terminal_measurements(read_qasm(path, "optimize.target"))
        qubits = sorted(circuit.all_qubits())
        if len(qubits) > n:
            raise CircuitError(
                f"optimize.target={text!r}: the file's circuit acts on {len(qubits)} qubits, "
                f"the circuit has {n}"
            )
        order = qubits + [q for q in cirq.LineQubit.range(n) if q not in qubits][: n - len(qubits)]
        vector = cirq.final_state_vector(circuit, qubit_order=order, dtype=np.complex128)
    return vector


def from_qasm(*, path: str | Path, measure: bool = False) -> cirq.Circuit:
    """Read an OpenQASM 2.0 or 3.0 file; its qubits become ``LineQubit``s in register order.

    Registers are numbered in the order of their declarations (``qreg q[2];`` in
    OpenQASM 2, ``qubit[2] q;`` or ``qubit q;`` in OpenQASM 3, mixed as they come):
    ``q[0]`` of the first register is ``LineQubit(0)``, so the same program in either
    version has the same qubit order and bitstrings (:mod:`lret_runner.qasm` says what
    is read and what is refused, with its line and column). Declared but unused qubits
    are not part of the circuit (a file whose circuit acts on no qubit is refused).
    Measurements in the file are kept, one per classical bit, keyed by the bit as the file
    names it (``c[0]``); ``measure`` adds the final measurement (key ``m``) only if the
    file has none.

    A missing file raises :class:`CircuitFileNotFound` (a ``FileNotFoundError``);
    anything else that makes the file unusable (a directory, unreadable, not UTF-8,
    too large, malformed, no qubits, more than :data:`MAX_OPERATIONS` gates) a
    :class:`CircuitError` naming ``circuit.path``, the file and what to do.
    """
    circuit = read_qasm(Path(path), "circuit.path")
    return _finish(
        circuit, sorted(circuit.all_qubits()), measure and not circuit.has_measurements()
    )


def read_qasm(path: Path, setting: str) -> cirq.Circuit:
    """The circuit of an OpenQASM file (see :func:`from_qasm` and :mod:`lret_runner.qasm`);
    errors name ``setting``."""
    from lret_runner import qasm

    key = f"{setting}={str(path)!r}"
    circuit = qasm.parse(_read_qasm(path, key), key, MAX_OPERATIONS)
    if not circuit.all_qubits():
        raise CircuitError(
            f"{key}: the file's circuit acts on no qubit (none is used by a gate or a "
            f"measurement): a circuit needs at least one qubit; point {setting} at a file "
            "with gates"
        )
    return circuit


def _read_qasm(path: Path, key: str) -> str:
    """The text of an OpenQASM file, or the error that says why it cannot be used
    (``key`` is ``SETTING=PATH``)."""
    setting = key.split("=", 1)[0]
    if "\x00" in str(path):
        raise CircuitError(f"{key} holds a NUL character: a path cannot; fix {setting}")
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CircuitFileNotFound(f"{key}: QASM file not found") from None
    except OSError as exc:
        raise CircuitError(
            f"{key}: cannot read the QASM file ({exc.strerror or exc}): check the path and "
            "its permissions"
        ) from None
    if path.is_dir():
        raise CircuitError(
            f"{key} is a directory, not an OpenQASM file: point {setting} at a .qasm file"
        )
    if not path.is_file():
        raise CircuitError(
            f"{key} is not a regular file (a device, a pipe or a socket): point {setting} "
            "at a .qasm file"
        )
    if info.st_size > QASM_MAX_BYTES:
        raise CircuitError(
            f"{key}: the file is {info.st_size / 2**20:.0f} MiB, more than the "
            f"{QASM_MAX_BYTES // 2**20} MiB an OpenQASM file may have (a circuit has at most "
            f"{MAX_OPERATIONS:,} gates): shorten the circuit"
        )
    try:
        data = path.read_bytes()
    except PermissionError:
        raise CircuitError(
            f"{key}: permission denied reading the QASM file: make it readable by this user "
            f"(chmod a+r {str(path)!r}) or point {setting} at a copy"
        ) from None
    except OSError as exc:
        raise CircuitError(
            f"{key}: cannot read the QASM file ({exc.strerror or exc}): check the file"
        ) from None
    try:
        return data.decode("utf-8-sig")  # a byte-order mark is tolerated
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CircuitError(
            f"{key}: the file is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}, "
            f"offset {exc.start}): an OpenQASM file is text; save it as UTF-8 or ASCII"
        ) from None


# --------------------------------------------------------------------------- measurements


def measured_bits(op: cirq.Operation) -> list[str]:
    """The classical bits a measurement writes: its key, or ``key[i]`` per qubit of several."""
    key = cirq.measurement_key_name(op)
    return [key] if len(op.qubits) == 1 else [f"{key}[{i}]" for i in range(len(op.qubits))]


def terminal_measurements(circuit: cirq.Circuit) -> set[tuple[int, cirq.Operation]]:
    """The measurements (moment index, operation) after which nothing acts on their qubits
    and nothing reads or rewrites their bits: they can all move to the end."""
    terminal: set[tuple[int, cirq.Operation]] = set()
    later_qubits: set[cirq.Qid] = set()
    later_keys: set[str] = set()  # read or written after the moment being looked at
    for m_index in range(len(circuit) - 1, -1, -1):
        moment = circuit[m_index]
        for op in moment:
            if cirq.is_measurement(op) and not (
                set(op.qubits) & later_qubits or set(measured_bits(op)) & later_keys
            ):
                terminal.add((m_index, op))
        for op in moment:
            later_qubits.update(op.qubits)
            later_keys.update(str(k) for k in cirq.control_keys(op))
            if cirq.is_measurement(op):
                later_keys.update(measured_bits(op))
    return terminal


def terminal_measurements_last(circuit: cirq.Circuit) -> cirq.Circuit:
    """The circuit with its terminal measurements in one last moment (moments left empty
    are dropped): idle noise added per moment then never acts on a measured qubit."""
    terminal = terminal_measurements(circuit)
    if not terminal:
        return circuit
    moments = [
        cirq.Moment(op for op in moment if not (cirq.is_measurement(op) and (i, op) in terminal))
        for i, moment in enumerate(circuit)
    ]
    last = cirq.Moment(op for _, op in sorted(terminal, key=lambda t: t[0]))
    return cirq.Circuit([m for m in moments if len(m)] + [last])


# --------------------------------------------------------------------------- registry

CIRCUIT_BUILDERS: dict[str, Callable[..., cirq.Circuit]] = {
    "random": random_circuit,
    "layered": layered,
    "ghz": ghz,
    "qft": qft,
    "qaoa": qaoa,
    "vqe": vqe,
    "grover": grover,
    "architecture": architecture,
    "qasm": from_qasm,
}


def build_circuit(name: str, **params: Any) -> cirq.Circuit:
    """Build the circuit ``name`` (a key of ``CIRCUIT_BUILDERS``) from its keyword parameters.

    An unknown name or a parameter the builder does not take is a :class:`CircuitError`.
    """
    builder = CIRCUIT_BUILDERS.get(name)
    if builder is None:
        raise CircuitError(
            f"circuit.name={name!r} is invalid: must be one of {', '.join(CIRCUIT_BUILDERS)}"
        )
    accepted = inspect.signature(builder).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise CircuitError(
            f"circuit {name!r} does not take {', '.join(unknown)}: it takes {', '.join(accepted)}"
        )
    return builder(**params)
