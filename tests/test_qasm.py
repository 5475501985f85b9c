"""The OpenQASM reader (``from_qasm``) against independent references.

- Every standard gate (Qiskit's legacy ``qelib1.inc``, the builtins ``U``/``CX`` and
  OpenQASM 3's ``stdgates.inc``), one small file each, against Qiskit's matrix of the
  gate of the same name (Qiskit's own qasm2 reader on the same text), global phase
  included: Qiskit's matrices are the convention.
- The corpus in ``tests/qasm/`` (one small file per feature; each file's first two lines
  say what it is and how it was made) against Qiskit's qasm2/qasm3 readers on the same
  file, a closed form, or the circuit the file was exported from.
- The refusal files against the error contract: a :class:`CircuitError` naming
  ``circuit.path='<path>'``, ``line L, column C``, the statement as written, without a
  control character (but newlines) and without a Cirq repr.

Cirq's qubit order throughout: ``LineQubit(0)`` (the first qubit declared) is the most
significant bit; a Qiskit circuit is compared through ``reverse_bits()``.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

import cirq
import numpy as np
import pytest

from lret_runner.circuits import from_qasm
from lret_runner.errors import CircuitError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

CORPUS = Path(__file__).with_name("qasm")
ATOL = 1e-10

# ---------------------------------------------------------------------------- helpers


def read(path: Path) -> cirq.Circuit:
    """The reader's circuit of ``path`` (given as the string a config would hold)."""
    return from_qasm(path=str(path))


def write(tmp_path: Path, text: str, name: str = "c.qasm") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def line_qubits(n: int) -> list[cirq.LineQubit]:
    return cirq.LineQubit.range(n)


def cirq_unitary(circuit: cirq.Circuit, n: int) -> np.ndarray:
    """The unitary of ``circuit`` without its terminal measurements on LineQubit(0..n-1)
    (qubit 0 most significant); a qubit the circuit does not touch is an identity."""
    return cirq.drop_terminal_measurements(circuit).unitary(
        qubit_order=line_qubits(n), dtype=np.complex128
    )


def cirq_density(circuit: cirq.Circuit, n: int) -> np.ndarray:
    """The final density matrix of ``circuit`` from |0...0> with its terminal measurements
    dropped, on LineQubit(0..n-1)."""
    return cirq.final_density_matrix(
        cirq.drop_terminal_measurements(circuit), qubit_order=line_qubits(n), dtype=np.complex128
    )


def qiskit_qasm2(text: str) -> QuantumCircuit:
    """Qiskit's reading of an OpenQASM 2 program, with the gates of its legacy qelib1.inc."""
    qasm2 = pytest.importorskip("qiskit.qasm2")
    return qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)


def qiskit_qasm3(text: str) -> QuantumCircuit:
    """Qiskit's reading of an OpenQASM 3 program (the qiskit-qasm3-import package)."""
    pytest.importorskip("qiskit_qasm3_import")
    from qiskit import qasm3

    return qasm3.loads(text)


def qiskit_unitary(qc: QuantumCircuit) -> np.ndarray:
    """Qiskit's unitary of ``qc`` without its final measurements, in Cirq's qubit order."""
    from qiskit.quantum_info import Operator

    return Operator(qc.remove_final_measurements(inplace=False).reverse_bits()).data


def qiskit_density(qc: QuantumCircuit) -> np.ndarray:
    """Qiskit's final density matrix of ``qc`` from |0...0> without its final measurements,
    in Cirq's qubit order."""
    from qiskit.quantum_info import DensityMatrix

    return DensityMatrix(qc.remove_final_measurements(inplace=False).reverse_bits()).data


def assert_matches_qiskit(circuit: cirq.Circuit, qc: QuantumCircuit) -> None:
    """``circuit`` acts on exactly Qiskit's qubits (every one used) and has Qiskit's unitary
    (global phase included) and final density matrix, to :data:`ATOL`."""
    n = qc.num_qubits
    assert sorted(circuit.all_qubits()) == line_qubits(n)
    np.testing.assert_allclose(cirq_unitary(circuit, n), qiskit_unitary(qc), atol=ATOL)
    np.testing.assert_allclose(cirq_density(circuit, n), qiskit_density(qc), atol=ATOL)


def measurements(circuit: cirq.Circuit) -> dict[str, tuple[cirq.Qid, ...]]:
    """The measurement key of each measurement of ``circuit`` and the qubits it measures;
    a key measured twice fails."""
    found: dict[str, tuple[cirq.Qid, ...]] = {}
    for op in circuit.all_operations():
        if cirq.is_measurement(op):
            key = cirq.measurement_key_name(op)
            assert key not in found, f"{key} is measured twice"
            found[key] = op.qubits
    return found


# ---------------------------------------------------------------------------- standard gates

# distinct, non-trivial parameters (a swapped or negated parameter changes the matrix)
PARAMETERS = (0.37, -1.23, 2.41, 0.58)
# the operand order of an n-qubit gate in its file: not 0, 1, ... so that a reader that
# reorders operands (or confuses control and target) is caught
OPERANDS = {1: (0,), 2: (1, 0), 3: (2, 0, 1), 4: (3, 1, 0, 2), 5: (4, 2, 0, 3, 1)}

# name: (parameters, qubits) of every gate of Qiskit's legacy qelib1.inc
# (qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS but delay) and the OpenQASM 2 builtins U, CX
QELIB1_GATES: dict[str, tuple[int, int]] = {
    "u3": (3, 1),
    "u2": (2, 1),
    "u1": (1, 1),
    "cx": (0, 2),
    "id": (0, 1),
    "u0": (1, 1),
    "u": (3, 1),
    "p": (1, 1),
    "x": (0, 1),
    "y": (0, 1),
    "z": (0, 1),
    "h": (0, 1),
    "s": (0, 1),
    "sdg": (0, 1),
    "t": (0, 1),
    "tdg": (0, 1),
    "rx": (1, 1),
    "ry": (1, 1),
    "rz": (1, 1),
    "sx": (0, 1),
    "sxdg": (0, 1),
    "cz": (0, 2),
    "cy": (0, 2),
    "swap": (0, 2),
    "ch": (0, 2),
    "ccx": (0, 3),
    "cswap": (0, 3),
    "crx": (1, 2),
    "cry": (1, 2),
    "crz": (1, 2),
    "cu1": (1, 2),
    "cp": (1, 2),
    "cu3": (3, 2),
    "csx": (0, 2),
    "cu": (4, 2),
    "rxx": (1, 2),
    "rzz": (1, 2),
    "rccx": (0, 3),
    "rc3x": (0, 4),
    "c3x": (0, 4),
    "c3sqrtx": (0, 4),
    "c4x": (0, 5),
    "U": (3, 1),
    "CX": (0, 2),
}

# name: (parameters, qubits) of the gates of OpenQASM 3's stdgates.inc and the builtin U
# (gphase, which has no qubit, is tested with a file of its own)
STDGATES: dict[str, tuple[int, int]] = {
    **{
        name: QELIB1_GATES[name]
        for name in """
        p x y z h s sdg t tdg sx rx ry rz cx cy cz cp crx cry crz ch swap ccx cswap cu CX
        id u1 u2 u3 U
    """.split()
    },
    "phase": (1, 1),
    "cphase": (1, 2),
}
# the OpenQASM 2 (qelib1.inc) gate whose matrix an OpenQASM 3-only name has
QASM3_AS_QASM2 = {"phase": "p", "cphase": "cp"}


def gate_call(name: str, n_params: int, n_qubits: int) -> str:
    """One call of ``name`` with :data:`PARAMETERS` on ``q`` in :data:`OPERANDS` order."""
    # Qiskit reads u0's parameter as a count of idle lengths, which must be an integer
    args = "2" if name == "u0" else ", ".join(repr(p) for p in PARAMETERS[:n_params])
    params = f"({args})" if n_params else ""
    operands = ", ".join(f"q[{i}]" for i in OPERANDS[n_qubits])
    return f"{name}{params} {operands};\n"


def qasm2_gate_file(name: str, n_params: int, n_qubits: int) -> str:
    """A file applying one ``name`` to every qubit of ``qreg q[n_qubits]``."""
    header = f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{n_qubits}];\n'
    return header + gate_call(name, n_params, n_qubits)


def test_the_gate_table_is_qiskits_legacy_qelib1() -> None:
    """:data:`QELIB1_GATES` lists exactly Qiskit's legacy qelib1 instructions (but
    ``delay``, no gate) and the builtins, with Qiskit's parameter and qubit counts."""
    qasm2 = pytest.importorskip("qiskit.qasm2")
    qiskit = {
        i.name: (i.num_params, i.num_qubits)
        for i in qasm2.LEGACY_CUSTOM_INSTRUCTIONS
        if i.name != "delay"
    }
    assert QELIB1_GATES == {**qiskit, "U": (3, 1), "CX": (0, 2)}


@pytest.mark.parametrize("name", sorted(QELIB1_GATES))
def test_qelib1_gate_is_qiskits_matrix(tmp_path: Path, name: str) -> None:
    """``name`` (OpenQASM 2, non-trivial parameters, operands out of order) has the
    unitary of Qiskit's gate of the same name, global phase included; ``id`` is kept as
    an identity operation on its qubit."""
    n_params, n_qubits = QELIB1_GATES[name]
    text = qasm2_gate_file(name, n_params, n_qubits)
    circuit = read(write(tmp_path, text))
    assert sorted(circuit.all_qubits()) == line_qubits(n_qubits)
    assert not any(
        isinstance(op.untagged, cirq.CircuitOperation) for op in circuit.all_operations()
    )
    np.testing.assert_allclose(
        cirq_unitary(circuit, n_qubits), qiskit_unitary(qiskit_qasm2(text)), atol=ATOL
    )


@pytest.mark.parametrize("name", sorted(STDGATES))
def test_stdgates_gate_is_qiskits_matrix(tmp_path: Path, name: str) -> None:
    """``name`` in an ``OPENQASM 3;`` file (stdgates.inc) has the unitary of Qiskit's
    gate of the same name (``phase``/``cphase``: of ``p``/``cp``), global phase included.

    Note ``u2``/``u3``: stdgates.inc defines them with an extra ``gphase(-(phi+lambda)/2)``;
    the contract is Qiskit's matrices (its U2Gate/U3Gate), which this checks."""
    n_params, n_qubits = STDGATES[name]
    header = f'OPENQASM 3;\ninclude "stdgates.inc";\nqubit[{n_qubits}] q;\n'
    text = header + gate_call(name, n_params, n_qubits)
    circuit = read(write(tmp_path, text))
    assert sorted(circuit.all_qubits()) == line_qubits(n_qubits)
    reference = qasm2_gate_file(QASM3_AS_QASM2.get(name, name), n_params, n_qubits)
    np.testing.assert_allclose(
        cirq_unitary(circuit, n_qubits), qiskit_unitary(qiskit_qasm2(reference)), atol=ATOL
    )


def test_id_is_kept_as_an_identity_operation(tmp_path: Path) -> None:
    """``id`` is an idle gate (noise may act after it): the circuit keeps one operation
    per ``id``, each an identity on its qubit."""
    text = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nid q[0];\nh q[1];\nid q[1];\n'
    circuit = read(write(tmp_path, text))
    ops = list(circuit.all_operations())
    assert len(ops) == 3
    idles = [op for op in ops if np.allclose(cirq.unitary(op), np.eye(2), atol=ATOL)]
    assert [op.qubits for op in idles] == [(cirq.LineQubit(0),), (cirq.LineQubit(1),)]


# ---------------------------------------------------------------------------- the corpus

# corpus files Qiskit's qasm2 reader reads as they are: the reader must agree with it exactly
QASM2_CORPUS = (
    "barrier.qasm",
    "broadcast.qasm",
    "builtins.qasm",
    "cirq_export.qasm",
    "cu4.qasm",
    "custom_gates.qasm",
    "custom_inlined.qasm",
    "no_header.qasm",
    "qiskit_export.qasm",
    "registers_odd_order.qasm",
)
# corpus files in OpenQASM 3 that Qiskit's qasm3 importer reads (qiskit_export3.qasm too, but
# it redefines sxdg: see test_a_definition_of_a_name_outside_stdgates_is_used)
QASM3_CORPUS = ("openqasm3.qasm",)


@pytest.mark.parametrize("name", QASM2_CORPUS)
def test_qasm2_corpus_file_matches_qiskit(name: str) -> None:
    """The circuit of an OpenQASM 2 corpus file has the unitary (global phase included)
    and final density matrix of Qiskit's qasm2 reading of the same file, measurements
    removed."""
    path = CORPUS / name
    assert_matches_qiskit(read(path), qiskit_qasm2(path.read_text()))


@pytest.mark.parametrize("name", QASM3_CORPUS)
def test_qasm3_corpus_file_matches_qiskit(name: str) -> None:
    """The circuit of an OpenQASM 3 corpus file has the unitary (global phase included)
    and final density matrix of Qiskit's qasm3 importer on the same file, measurements
    removed."""
    path = CORPUS / name
    assert_matches_qiskit(read(path), qiskit_qasm3(path.read_text()))


def test_cu4_is_the_closed_form() -> None:
    """cu4.qasm: Qiskit's 4-parameter ``cu(theta, phi, lambda, gamma)`` is
    ``|0><0| x I + e^{i gamma} |1><1| x U(theta, phi, lambda)`` (control first), written
    here from its definition rather than taken from Qiskit."""

    def u(theta: float, phi: float, lam: float) -> np.ndarray:
        c, s = np.cos(theta / 2), np.sin(theta / 2)
        return np.array(
            [[c, -np.exp(1j * lam) * s], [np.exp(1j * phi) * s, np.exp(1j * (phi + lam)) * c]]
        )

    def cu(theta: float, phi: float, lam: float, gamma: float) -> np.ndarray:
        """Control on the first (most significant) qubit."""
        m = np.eye(4, dtype=complex)
        m[2:, 2:] = np.exp(1j * gamma) * u(theta, phi, lam)
        return m

    swap = cirq.unitary(cirq.SWAP)
    h = cirq.unitary(cirq.H)
    expected = (
        (swap @ cu(-2.05, 0.56, 0.71, -2.48) @ swap)  # cu(...) q[1], q[0]
        @ cu(0.73, -1.19, 2.31, 0.47)  # cu(...) q[0], q[1]
        @ np.kron(h, u(0.9, 0, 0))  # h q[0]; ry(0.9) q[1]
    )
    circuit = read(CORPUS / "cu4.qasm")
    assert sorted(circuit.all_qubits()) == line_qubits(2)
    np.testing.assert_allclose(cirq_unitary(circuit, 2), expected, atol=ATOL)


USER_GATES = ("majority", "unmaj", "add2", "prep")


def test_custom_gates_are_inlined_into_standard_gates() -> None:
    """custom_gates.qasm (a Cuccaro adder from user gates nested one level, one with
    parameters in expressions) has the unitary of custom_inlined.qasm (the same circuit
    inlined by hand) to 1e-12, as many operations, and no operation that is not a
    standard gate (no subcircuit, nothing named after a user gate, at most 3 qubits)."""
    custom = read(CORPUS / "custom_gates.qasm")
    inlined = read(CORPUS / "custom_inlined.qasm")
    assert sorted(custom.all_qubits()) == sorted(inlined.all_qubits()) == line_qubits(6)
    np.testing.assert_allclose(cirq_unitary(custom, 6), cirq_unitary(inlined, 6), atol=1e-12)
    ops = list(custom.all_operations())
    assert len(ops) == len(list(inlined.all_operations())) == 18
    for op in ops:
        assert not isinstance(op.untagged, cirq.CircuitOperation), op
        assert len(op.qubits) <= 3, op
        assert not any(name in str(op) for name in USER_GATES), op


def test_custom_gates_adder_adds() -> None:
    """custom_gates.qasm's adder, checked without Qiskit: a = 1 + 2*a1 with a1 in
    cos(0.2)|0> + e^{...} sin(0.2)|1>, b = 3, cin = 0: the a1 = 0 branch gives b = 0 with
    carry 1 (1 + 3 = 4), the a1 = 1 branch b = 2 with carry 1 (3 + 3 = 6); a is restored."""
    psi = cirq.final_state_vector(
        read(CORPUS / "custom_gates.qasm"), qubit_order=line_qubits(6), dtype=np.complex128
    )
    probabilities = np.abs(psi) ** 2

    def index(cin: int, a0: int, a1: int, b0: int, b1: int, cout: int) -> int:
        return int(f"{cin}{a0}{a1}{b0}{b1}{cout}", 2)

    expected = np.zeros(64)
    expected[index(0, 1, 0, 0, 0, 1)] = np.cos(0.2) ** 2
    expected[index(0, 1, 1, 0, 1, 1)] = np.sin(0.2) ** 2
    np.testing.assert_allclose(probabilities, expected, atol=ATOL)


def test_registers_in_odd_order_map_and_measure_by_bit() -> None:
    """registers_odd_order.qasm: qubits are numbered in declaration order (zeta[0..1],
    alpha[0], mid[0..1] -> LineQubit 0..4) and every classical bit gets one measurement
    keyed ``creg[i]`` on the qubit measured into it; all of them terminal."""
    circuit = read(CORPUS / "registers_odd_order.qasm")
    q = line_qubits(5)
    assert measurements(circuit) == {
        "bits[0]": (q[4],),
        "out[2]": (q[1],),
        "out[0]": (q[2],),
        "bits[1]": (q[3],),
        "out[1]": (q[0],),
    }
    assert circuit.are_all_measurements_terminal()


def test_broadcast_measures_each_bit() -> None:
    """broadcast.qasm: ``measure r -> c;`` is one measurement per bit, ``c[i]`` on r[i]
    (LineQubit 3 + i)."""
    circuit = read(CORPUS / "broadcast.qasm")
    assert measurements(circuit) == {f"c[{i}]": (cirq.LineQubit(3 + i),) for i in range(3)}


def test_unused_qubits_are_not_in_the_circuit() -> None:
    """unused_qubits.qasm: only q[1], q[3], r[0] (LineQubit 1, 3, 4) are used; the others
    are not in the circuit, and on all six qubits the unitary is Qiskit's."""
    path = CORPUS / "unused_qubits.qasm"
    circuit = read(path)
    assert sorted(circuit.all_qubits()) == [cirq.LineQubit(i) for i in (1, 3, 4)]
    qc = qiskit_qasm2(path.read_text())
    np.testing.assert_allclose(cirq_unitary(circuit, 6), qiskit_unitary(qc), atol=ATOL)


def test_crlf_file_reads_as_its_lf_version(tmp_path: Path) -> None:
    """crlf.qasm (CRLF bytes, tabs, comments) gives the same circuit as the same text with
    LF line endings, and that is Qiskit's reading of the LF text."""
    data = (CORPUS / "crlf.qasm").read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n") > 10  # the file really is CRLF
    lf = data.replace(b"\r\n", b"\n").decode()
    circuit = read(CORPUS / "crlf.qasm")
    assert circuit == read(write(tmp_path, lf, "lf.qasm"))
    assert_matches_qiskit(circuit, qiskit_qasm2(lf))
    assert measurements(circuit) == {"c[2]": (cirq.LineQubit(2),)}


def test_whitespace_and_comments_anywhere() -> None:
    """whitespace.qasm (form feeds, tabs, ``/* */`` comments inside statements and over
    lines, a statement over two lines, no final newline) is Qiskit's reading of the same
    text with the block comments and form feeds replaced by spaces (Qiskit's qasm2 reader
    knows neither)."""
    text = (CORPUS / "whitespace.qasm").read_text()
    assert "\f" in text and "/*" in text and not text.endswith("\n")
    plain = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL).replace("\f", " ")
    assert_matches_qiskit(read(CORPUS / "whitespace.qasm"), qiskit_qasm2(plain))


def delay_free_circuit() -> cirq.Circuit:
    """delay.qasm and delay3.qasm without their delays: h q[0]; cx q[0], q[1]; rx(0.5) q[1]
    (Cirq's rx is Qiskit's RX exactly)."""
    q = line_qubits(2)
    return cirq.Circuit(cirq.H(q[0]), cirq.CNOT(q[0], q[1]), cirq.rx(0.5).on(q[1]))


@pytest.mark.parametrize("name", ["delay.qasm", "delay3.qasm"])
def test_delay_has_no_effect(name: str) -> None:
    """``delay(...)`` (OpenQASM 2) and ``delay[...]`` (OpenQASM 3, ns and dt, on a qubit and a
    register) leave the unitary of the circuit without them, global phase included."""
    circuit = read(CORPUS / name)
    assert sorted(circuit.all_qubits()) == line_qubits(2)
    np.testing.assert_allclose(
        cirq_unitary(circuit, 2), cirq.unitary(delay_free_circuit()), atol=ATOL
    )


def test_gphase_has_no_effect_on_the_state() -> None:
    """gphase3.qasm (``gphase`` at top level and inside a gate): the circuit is the one
    without gphase up to a global phase (whether the reader keeps the phase or drops it),
    so the same density matrix; no qubit is added for it."""
    circuit = read(CORPUS / "gphase3.qasm")
    assert sorted(circuit.all_qubits()) == line_qubits(2)
    q = line_qubits(2)
    without = cirq.Circuit(cirq.H(q[0]), cirq.CNOT(q[0], q[1]), cirq.ry(0.8).on(q[1]))
    assert cirq.allclose_up_to_global_phase(
        cirq_unitary(circuit, 2), cirq.unitary(without), atol=ATOL
    )
    np.testing.assert_allclose(cirq_density(circuit, 2), cirq_density(without, 2), atol=ATOL)


def test_openqasm3_declarations_and_measurements() -> None:
    """openqasm3.qasm: ``qubit[2] q; qubit anc; qubit[1] r;`` are LineQubit 0-1, 2, 3;
    ``c = measure q;`` measures each bit, ``bit d;`` is keyed ``d``, ``bit[1] e`` ``e[0]``."""
    circuit = read(CORPUS / "openqasm3.qasm")
    q = line_qubits(4)
    assert measurements(circuit) == {
        "c[0]": (q[0],),
        "c[1]": (q[1],),
        "d": (q[2],),
        "e[0]": (q[3],),
    }
    assert circuit.are_all_measurements_terminal()


def test_a_definition_of_a_name_outside_stdgates_is_used(tmp_path: Path) -> None:
    """In OpenQASM 3, ``sxdg`` is not in stdgates.inc, so a file's ``gate sxdg`` defines it
    and a call expands into that body, exactly: ``s; h; s`` is ``e^{i pi/4}`` times
    Qiskit's SXdgGate. Qiskit's qasm3 importer (the reference) does so; Qiskit's own
    OpenQASM 3 exporter writes such definitions (qiskit_export3.qasm: sxdg, rxx, rzz)."""
    text = (
        'OPENQASM 3.0;\ninclude "stdgates.inc";\ngate sxdg a { s a; h a; s a; }\n'
        "qubit[2] q;\nsxdg q[0];\ncx q[0], q[1];\n"
    )
    circuit = read(write(tmp_path, text))
    qc = qiskit_qasm3(text)
    assert_matches_qiskit(circuit, qc)
    s, h = cirq.unitary(cirq.S), cirq.unitary(cirq.H)
    np.testing.assert_allclose(
        cirq_unitary(circuit, 2), cirq.unitary(cirq.CNOT) @ np.kron(s @ h @ s, np.eye(2)), atol=ATOL
    )


# ---------------------------------------------------------------------------- exporters


def qiskit_source_circuit() -> QuantumCircuit:
    """The circuit qiskit_export.qasm (``qiskit.qasm2.dumps``) and qiskit_export3.qasm
    (``qiskit.qasm3.dumps``) were made from: 4 qubits, qelib1 gates and gates outside it
    (rzx, ecr, iswap, ryy, dcx, xx_plus_yy: the exporters write their definitions), angles
    from a fixed seed, measure_all."""
    from qiskit import QuantumCircuit
    from qiskit.circuit.library import XXPlusYYGate

    rng = np.random.default_rng(2024)
    a = [float(x) for x in rng.uniform(-np.pi, np.pi, 16)]
    qc = QuantumCircuit(4)
    qc.h(0)
    qc.sx(1)
    qc.sxdg(2)
    qc.t(3)
    qc.u(a[0], a[1], a[2], 0)
    qc.p(a[3], 1)
    qc.rx(a[4], 2)
    qc.ry(a[5], 3)
    qc.rz(a[6], 0)
    qc.id(1)
    qc.cx(0, 1)
    qc.cz(1, 2)
    qc.cy(2, 3)
    qc.ch(3, 0)
    qc.swap(0, 2)
    qc.crx(a[7], 1, 3)
    qc.cp(a[8], 2, 0)
    qc.cu(a[9], a[10], a[11], a[12], 3, 1)
    qc.rxx(a[13], 0, 3)
    qc.rzz(a[14], 1, 2)
    qc.ccx(0, 1, 2)
    qc.cswap(3, 2, 1)
    qc.rzx(a[15], 0, 1)
    qc.ecr(1, 2)
    qc.iswap(2, 3)
    qc.ryy(a[0] / 2, 3, 0)
    qc.dcx(0, 2)
    qc.append(XXPlusYYGate(a[1], a[2]), [1, 3])
    qc.measure_all()
    return qc


def cirq_source_circuit() -> cirq.Circuit:
    """The circuit cirq_export.qasm (``cirq.qasm(circuit)``) and cirq_export3.qasm
    (``cirq.qasm(circuit, args=cirq.QasmArgs(version="3.0"))``) were made from: 4 qubits,
    Cirq gates with fractional exponents (decomposed by the exporter), angles from a fixed
    seed, two measurement keys."""
    rng = np.random.default_rng(7)
    a = [float(x) for x in rng.uniform(-1, 1, 12)]
    q = line_qubits(4)
    return cirq.Circuit(
        cirq.H(q[0]),
        cirq.X(q[1]) ** a[0],
        cirq.Y(q[2]) ** a[1],
        cirq.Z(q[3]) ** a[2],
        cirq.rx(a[3]).on(q[0]),
        cirq.ry(a[4]).on(q[1]),
        cirq.rz(a[5]).on(q[2]),
        cirq.S(q[3]),
        cirq.T(q[0]) ** -1,
        cirq.PhasedXPowGate(phase_exponent=a[6], exponent=a[7]).on(q[1]),
        cirq.CNOT(q[0], q[1]),
        cirq.CZ(q[1], q[2]) ** a[8],
        cirq.SWAP(q[2], q[3]),
        cirq.ISWAP(q[3], q[0]) ** a[9],
        cirq.XX(q[0], q[2]) ** a[10],
        cirq.ZZ(q[1], q[3]) ** a[11],
        cirq.CCX(q[0], q[1], q[2]),
        cirq.CCZ(q[1], q[2], q[3]),
        cirq.CSWAP(q[3], q[0], q[1]),
        cirq.measure(q[0], q[2], key="m"),
        cirq.measure(q[3], key="z"),
    )


@pytest.mark.parametrize("name", ["qiskit_export.qasm", "qiskit_export3.qasm"])
def test_qiskit_export_is_its_source_circuit(name: str) -> None:
    """Qiskit's OpenQASM 2 and 3 exports (with definitions of the gates outside the
    standard libraries) read as the circuit they were made from, up to a global phase
    (the exporters drop the phases of their gate definitions; the exact comparison is
    Qiskit's reader on the file, above); measured into ``meas[i]`` from ``q[i]``."""
    pytest.importorskip("qiskit")
    text = (CORPUS / name).read_text()
    assert all(f"gate {g}" in text for g in ("rzx", "ecr", "iswap", "ryy", "dcx", "xx_plus_yy"))
    circuit = read(CORPUS / name)
    assert sorted(circuit.all_qubits()) == line_qubits(4)
    assert cirq.allclose_up_to_global_phase(
        cirq_unitary(circuit, 4), qiskit_unitary(qiskit_source_circuit()), atol=ATOL
    )
    assert measurements(circuit) == {f"meas[{i}]": (cirq.LineQubit(i),) for i in range(4)}
    for op in circuit.all_operations():
        assert not isinstance(op.untagged, cirq.CircuitOperation), op
        assert not any(g in str(op) for g in ("rzx", "ecr", "iswap", "ryy", "dcx", "xx_plus")), op


@pytest.mark.parametrize("name", ["cirq_export.qasm", "cirq_export3.qasm"])
def test_cirq_export_is_its_source_circuit(name: str) -> None:
    """Cirq's OpenQASM 2 and 3 exports read as the circuit they were made from, up to a
    global phase (Cirq's decompositions drop it) and to 1e-8 (Cirq writes angles with 10
    digits); its measurement keys become ``m_<key>[i]`` on the measured qubits."""
    circuit = read(CORPUS / name)
    assert sorted(circuit.all_qubits()) == line_qubits(4)
    assert cirq.allclose_up_to_global_phase(
        cirq_unitary(circuit, 4), cirq.unitary(cirq_source_circuit()), atol=1e-8
    )
    q = line_qubits(4)
    assert measurements(circuit) == {"m_m[0]": (q[0],), "m_m[1]": (q[2],), "m_z[0]": (q[3],)}


def test_cirq_export3_is_exactly_the_cirq_export() -> None:
    """cirq_export3.qasm has the same gate lines as cirq_export.qasm, so the same unitary
    as Qiskit's qasm2 reading of cirq_export.qasm, global phase included (Qiskit's qasm3
    importer refuses Cirq's 3.0 output: it uses ``sxdg``, which stdgates.inc lacks)."""
    circuit = read(CORPUS / "cirq_export3.qasm")
    qc = qiskit_qasm2((CORPUS / "cirq_export.qasm").read_text())
    assert_matches_qiskit(circuit, qc)


# ---------------------------------------------------------------------------- refusals

# file, line of the offending statement, the columns accepted (the statement's first
# character, or that of the offending token or index), text of the statement the message quotes
REFUSALS: list[tuple[str, int, tuple[int, ...], str]] = [
    ("opaque.qasm", 7, (1,), "opaque magic"),
    ("unknown_gate.qasm", 7, (3,), "foo q[0], q[1]"),
    ("unknown_gate_crlf.qasm", 7, (1,), "bar(0.5) q[1]"),
    ("param_count.qasm", 7, (1, 3), "rx(0.1, 0.2) q[0]"),
    ("qubit_count.qasm", 7, (1, 4), "cx q[0]"),
    ("out_of_range.qasm", 7, (1, 10, 12), "q[6]"),
    ("include_other.qasm", 5, (1, 9), 'include "mylib.inc"'),
    ("defcal.qasm", 7, (1,), "defcal rz"),
    ("cal.qasm", 7, (1,), "cal {"),
    ("extern.qasm", 6, (1,), "extern get_angle"),
    ("def.qasm", 7, (1,), "def flip"),
    ("for_loop.qasm", 7, (1,), "for int i in [0:1]"),
    ("while_loop.qasm", 8, (1,), "while (c)"),
    ("box.qasm", 7, (1,), "box [100ns]"),
    ("modifier.qasm", 7, (1,), "ctrl @ x q[0], q[1]"),
    ("modifier_inv.qasm", 7, (1,), "inv @ s q[0]"),
    ("modifier_pow.qasm", 7, (1,), "pow(0.5) @ x q[0]"),
    ("modifier_negctrl.qasm", 7, (1,), "negctrl @ x q[0], q[1]"),
]


def test_every_refusal_file_is_tested() -> None:
    """Every corpus file is either read by a test above or listed in :data:`REFUSALS`."""
    read_ok = {
        *QASM2_CORPUS,
        *QASM3_CORPUS,
        "qiskit_export3.qasm",
        "crlf.qasm",
        "whitespace.qasm",
        "unused_qubits.qasm",
        "delay.qasm",
        "delay3.qasm",
        "gphase3.qasm",
        "cirq_export3.qasm",
        *(p.name for p in CORPUS.glob("dyn_*.qasm")),  # tests/test_dynamic.py
    }
    refused = {name for name, *_ in REFUSALS}
    assert {p.name for p in CORPUS.glob("*.qasm")} == read_ok | refused


@pytest.mark.parametrize(("name", "line", "columns", "statement"), REFUSALS)
def test_refusal_names_file_position_and_statement(
    name: str, line: int, columns: tuple[int, ...], statement: str
) -> None:
    """A refused file raises :class:`CircuitError` whose message names
    ``circuit.path='<path>'``, ``line L, column C`` (1-based) of the offending statement,
    quotes the statement (qubits as the file names them), and holds no carriage return or
    other control character (but newlines) and no Cirq repr."""
    path = CORPUS / name
    with pytest.raises(CircuitError) as info:
        read(path)
    message = str(info.value)
    assert f"circuit.path={str(path)!r}" in message
    position = re.search(r"line (\d+), column (\d+)", message)
    assert position, message
    assert int(position.group(1)) == line, message
    assert int(position.group(2)) in columns, message
    assert statement in message.replace(str(path), ""), message
    controls = [c for c in message if unicodedata.category(c) == "Cc" and c != "\n"]
    assert not controls, (controls, message)
    assert "cirq." not in message and "LineQubit(" not in message, message
