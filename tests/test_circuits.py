"""Circuit builders, checked against Cirq's simulator, numpy and closed forms."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import cirq
import numpy as np
import pytest

from lret_runner.circuits import (
    CIRCUIT_BUILDERS,
    EXAMPLE_QASM,
    CircuitError,
    build_circuit,
    from_qasm,
    ghz,
    grover,
    layered,
    qaoa,
    qft,
    random_circuit,
    vqe,
)


def state(circuit: cirq.Circuit) -> np.ndarray:
    """The final state vector (terminal measurements dropped), qubit 0 most significant."""
    unitary_part = cirq.Circuit(
        op for op in circuit.all_operations() if not cirq.is_measurement(op)
    )
    qubits = sorted(circuit.all_qubits())
    return cirq.final_state_vector(unitary_part, qubit_order=qubits, dtype=np.complex128)


BUILDS = {
    "random": dict(n_qubits=3, depth=4, seed=1),
    "layered": dict(n_qubits=3, layers=2, seed=1),
    "ghz": dict(n_qubits=3),
    "qft": dict(n_qubits=3, input_state=3),
    "qaoa": dict(n_qubits=3, seed=1),
    "vqe": dict(n_qubits=3, seed=1),
    "grover": dict(n_qubits=3, seed=1),
}


def test_registry_names() -> None:
    assert set(CIRCUIT_BUILDERS) == {
        "random",
        "layered",
        "ghz",
        "qft",
        "qaoa",
        "vqe",
        "grover",
        "architecture",
        "qasm",
    }


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_builders_use_all_line_qubits(name: str) -> None:
    circuit = build_circuit(name, **BUILDS[name])
    assert sorted(circuit.all_qubits()) == cirq.LineQubit.range(3)
    assert not circuit.has_measurements()


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_measure_adds_one_final_measurement_of_all_qubits(name: str) -> None:
    plain = build_circuit(name, **BUILDS[name])
    measured = build_circuit(name, **BUILDS[name], measure=True)
    assert len(measured) == len(plain) + 1
    assert measured[:-1] == plain
    (op,) = measured[-1].operations
    assert cirq.is_measurement(op)
    assert op.qubits == tuple(cirq.LineQubit.range(3))
    assert cirq.measurement_key_name(op) == "m"


@pytest.mark.parametrize("n", [1, 2, 5])
def test_ghz_probabilities(n: int) -> None:
    probs = np.abs(state(ghz(n_qubits=n))) ** 2
    expected = np.zeros(2**n)
    expected[0] = expected[-1] = 0.5
    np.testing.assert_allclose(probs, expected, atol=1e-12)


def bit_reverse(k: int, n: int) -> int:
    return int(format(k, f"0{n}b")[::-1], 2)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("final_swaps", [True, False])
def test_qft_of_basis_state_matches_numpy_fft(n: int, final_swaps: bool) -> None:
    dim = 2**n
    for x in range(dim):
        psi = state(qft(n_qubits=n, input_state=x, final_swaps=final_swaps))
        # numpy's ifft uses exp(+2 pi i j k / N) / N: the DFT Cirq's qft implements
        basis = np.zeros(dim)
        basis[x] = 1.0
        expected = np.fft.ifft(basis) * np.sqrt(dim)
        if not final_swaps:  # output index bit-reversed
            expected = expected[[bit_reverse(k, n) for k in range(dim)]]
        np.testing.assert_allclose(np.abs(psi) ** 2, np.full(dim, 1 / dim), atol=1e-12)
        np.testing.assert_allclose(psi, expected, atol=1e-12)


def test_qft_is_decomposed_into_elementary_gates() -> None:
    circuit = qft(n_qubits=4)
    assert all(len(op.qubits) <= 2 for op in circuit.all_operations())
    assert cirq.allclose_up_to_global_phase(
        cirq.unitary(circuit), cirq.unitary(cirq.qft(*cirq.LineQubit.range(4)))
    )


def test_qft_input_state_out_of_range() -> None:
    with pytest.raises(CircuitError, match="input_state=8"):
        qft(n_qubits=3, input_state=8)


@pytest.mark.parametrize("n", [3, 4, 5])
def test_grover_finds_the_marked_bitstring(n: int) -> None:
    for marked in ["0" * n, "1" * n, ("10" * n)[:n]]:
        probs = np.abs(state(grover(n_qubits=n, marked=marked))) ** 2
        assert probs[int(marked, 2)] > 0.9, (marked, probs[int(marked, 2)])


def test_grover_two_qubits_is_exact() -> None:
    probs = np.abs(state(grover(n_qubits=2, marked="01"))) ** 2
    assert probs[1] == pytest.approx(1.0, abs=1e-12)


def test_grover_random_marked_is_seeded() -> None:
    assert grover(n_qubits=4, seed=7) == grover(n_qubits=4, seed=7)
    probs = np.abs(state(grover(n_qubits=4, seed=7))) ** 2
    assert probs.max() > 0.9


@pytest.mark.parametrize("marked", ["10", "1010", "10a"])
def test_grover_invalid_marked(marked: str) -> None:
    with pytest.raises(CircuitError, match=f"circuit.marked='{marked}'"):
        grover(n_qubits=3, marked=marked)


def qaoa_reference(n: int, edges: list[tuple[int, int]], gamma: float, beta: float) -> np.ndarray:
    """p=1 QAOA by hand: |+>^n, exp(-i gamma z_i z_j / 2) per edge, exp(-i beta X) per qubit."""
    dim = 2**n
    bits = (np.arange(dim)[:, None] >> (n - 1 - np.arange(n))) & 1  # qubit 0 = MSB
    z = 1 - 2 * bits
    psi = np.full(dim, 1 / np.sqrt(dim), dtype=complex)
    for i, j in edges:
        psi = psi * np.exp(-1j * gamma * z[:, i] * z[:, j] / 2)
    rx = np.array([[np.cos(beta), -1j * np.sin(beta)], [-1j * np.sin(beta), np.cos(beta)]])
    mixer = rx
    for _ in range(n - 1):
        mixer = np.kron(mixer, rx)
    return mixer @ psi


def expected_cut(psi: np.ndarray, n: int, edges: list[tuple[int, int]]) -> float:
    dim = 2**n
    bits = (np.arange(dim)[:, None] >> (n - 1 - np.arange(n))) & 1
    cut = sum((bits[:, i] != bits[:, j]).astype(float) for i, j in edges)
    return float(np.sum(np.abs(psi) ** 2 * cut))


@pytest.mark.parametrize("gamma, beta", [(0.3, 0.7), (1.1, 0.2), (2.5, 2.9)])
def test_qaoa_matches_statevector_and_closed_form(gamma: float, beta: float) -> None:
    # n=2: one edge (0, 1); p=1 closed form (Wang et al. 2018 with gamma -> -gamma,
    # since the cost here is exp(-i gamma ZZ/2) = exp(+i gamma C) up to a phase)
    psi = state(qaoa(n_qubits=2, gammas=[gamma], betas=[beta]))
    np.testing.assert_allclose(psi, qaoa_reference(2, [(0, 1)], gamma, beta), atol=1e-12)
    closed = 0.5 - 0.5 * np.sin(4 * beta) * np.sin(gamma)
    assert expected_cut(psi, 2, [(0, 1)]) == pytest.approx(closed, abs=1e-12)
    # n=3 ring = triangle: every edge has degrees 2, 2 and one triangle
    ring = [(0, 1), (1, 2), (0, 2)]
    psi = state(qaoa(n_qubits=3, gammas=gamma, betas=beta))
    np.testing.assert_allclose(psi, qaoa_reference(3, ring, gamma, beta), atol=1e-12)
    per_edge = (
        0.5
        - 0.5 * np.sin(4 * beta) * np.sin(gamma) * np.cos(gamma)
        - 0.25 * np.sin(2 * beta) ** 2 * (1 - np.cos(2 * gamma))
    )
    assert expected_cut(psi, 3, ring) == pytest.approx(3 * per_edge, abs=1e-12)


def test_qaoa_random_graph_is_seeded_and_p_layers() -> None:
    a = qaoa(n_qubits=5, p=2, graph="random", seed=3)
    assert a == qaoa(n_qubits=5, p=2, graph="random", seed=3)
    assert a != qaoa(n_qubits=5, p=2, graph="random", seed=4)
    zz = [op for op in a.all_operations() if isinstance(op.gate, cirq.ZZPowGate)]
    assert len(zz) % 2 == 0 and zz  # same edges in both layers
    # no edge drawn: falls back to the ring
    ring = qaoa(n_qubits=4, graph="random", edge_probability=0.0, seed=1)
    pairs = {op.qubits for op in ring.all_operations() if isinstance(op.gate, cirq.ZZPowGate)}
    q = cirq.LineQubit.range(4)
    assert pairs == {(q[0], q[1]), (q[1], q[2]), (q[2], q[3]), (q[0], q[3])}


def test_qaoa_wrong_number_of_angles() -> None:
    with pytest.raises(CircuitError, match="circuit.gammas"):
        qaoa(n_qubits=3, p=2, gammas=[0.1, 0.2, 0.3])


@pytest.mark.parametrize(
    ("builder", "kwargs"),
    [
        (vqe, dict(n_qubits=4, depth=5)),
        (random_circuit, dict(n_qubits=4, depth=5)),
        (layered, dict(n_qubits=4, layers=3)),
    ],
)
def test_seeded_builders_are_deterministic(
    builder: Callable[..., cirq.Circuit], kwargs: dict
) -> None:
    assert builder(**kwargs, seed=11) == builder(**kwargs, seed=11)
    assert builder(**kwargs, seed=11) != builder(**kwargs, seed=12)
    assert not np.allclose(
        state(builder(**kwargs, seed=11)), state(builder(**kwargs, seed=12)), atol=1e-6
    )


def test_vqe_layers() -> None:
    circuit = vqe(n_qubits=3, depth=2, seed=0)
    ops = list(circuit.all_operations())
    assert sum(isinstance(op.gate, cirq.Ry) for op in ops) == 6
    assert sum(isinstance(op.gate, cirq.Rz) for op in ops) == 6
    assert sum(op.gate == cirq.CNOT for op in ops) == 4


@pytest.mark.parametrize("n, depth", [(1, 3), (2, 5), (5, 7), (6, 1)])
def test_random_circuit_shape_and_pool(n: int, depth: int) -> None:
    circuit = random_circuit(
        n_qubits=n, depth=depth, seed=5, single_qubit_gates=["h", "rz"], two_qubit_gates=["cz"]
    )
    assert len(circuit) == depth
    assert sorted(circuit.all_qubits()) == cirq.LineQubit.range(n)
    for index, moment in enumerate(circuit):
        for op in moment:
            if len(op.qubits) == 1:
                assert op.gate == cirq.H or isinstance(op.gate, cirq.Rz)
            else:
                assert op.gate == cirq.CZ and index % 2 == 1
                a, b = op.qubits
                assert b.x == a.x + 1
        if index % 2 == 0 or n == 1:
            assert len(moment) == n  # every qubit gets a single-qubit gate
    if n == 5 and depth >= 4:  # brickwork offsets 0 then 1
        assert {op.qubits[0].x for op in circuit[1]} == {0, 2}
        assert {op.qubits[0].x for op in circuit[3]} == {1, 3}


@pytest.mark.parametrize("n, layers", [(1, 2), (2, 3), (5, 4), (6, 1)])
def test_layered_structure(n: int, layers: int) -> None:
    circuit = layered(n_qubits=n, layers=layers, seed=3)
    assert len(circuit) == 2 * layers
    assert sorted(circuit.all_qubits()) == cirq.LineQubit.range(n)
    for layer in range(layers):
        rotations, cnots = circuit[2 * layer], circuit[2 * layer + 1]
        assert len(rotations) == n
        assert all(isinstance(op.gate, cirq.PhasedXZGate) for op in rotations)
        for op in rotations:
            exponents = (op.gate.x_exponent, op.gate.z_exponent, op.gate.axis_phase_exponent)
            assert all(0.0 <= e < 1.0 for e in exponents)
        assert all(op.gate == cirq.CNOT for op in cnots)
        # the brickwork: pairs (i, i+1) from offset layer % 2, every second pair
        pairs = {(op.qubits[0].x, op.qubits[1].x) for op in cnots}
        assert pairs == {(i, i + 1) for i in range(layer % 2, n - 1, 2)}


def test_layered_draws_new_angles_per_layer_and_qubit() -> None:
    circuit = layered(n_qubits=3, layers=2, seed=0)
    gates = [op.gate for moment in circuit[::2] for op in moment]
    assert len({(g.x_exponent, g.z_exponent, g.axis_phase_exponent) for g in gates}) == 6


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(n_qubits=0, layers=2), "circuit.n_qubits=0 is invalid: must be an integer >= 1"),
        (dict(n_qubits=2, layers=0), "circuit.layers=0 is invalid: must be an integer >= 1"),
        (dict(n_qubits=2, layers=1.5), "circuit.layers=1.5 is invalid: must be an integer"),
        (dict(n_qubits=2, layers=2, seed=-1), "circuit.seed=-1 is invalid"),
        (dict(n_qubits=2), "missing 1 required keyword-only argument: 'layers'"),
        (dict(n_qubits=2, layers=2, depth=3), "does not take depth"),
    ],
)
def test_layered_invalid_parameters(params: dict, message: str) -> None:
    with pytest.raises((CircuitError, TypeError), match=message):
        build_circuit("layered", **params)


def test_layered_gate_cap() -> None:
    with pytest.raises(CircuitError, match=r"circuit\.layers=10000000 is invalid .*1,000,000"):
        layered(n_qubits=4, layers=10**7)
    # 4 rotations and 2 CNOTs per layer
    from lret_runner.circuits import MAX_OPERATIONS

    most = MAX_OPERATIONS // 6
    with pytest.raises(CircuitError, match=rf"circuit\.layers <= {most}"):
        layered(n_qubits=4, layers=most + 1)


def test_layered_composes_through_hydra(compose: Callable) -> None:
    from lret_runner.experiment import prepare

    cfg = compose(["circuit=layered"])
    assert dict(cfg.circuit) == {
        "name": "layered",
        "n_qubits": 8,
        "layers": 20,
        "seed": 0,
        "measure": True,
    }
    prepared = prepare(compose(["circuit=layered", "circuit.n_qubits=3", "circuit.layers=2"]))
    assert prepared.n_qubits == 3
    assert prepared.depth == 4  # two layers of two moments (the measurement excluded)


def test_random_circuit_unknown_gate() -> None:
    with pytest.raises(CircuitError, match="'foo'.*allowed are h, x, y"):
        random_circuit(n_qubits=2, depth=2, single_qubit_gates=["h", "foo"])
    with pytest.raises(ValueError, match="'swap'.*cnot, cz, iswap"):
        random_circuit(n_qubits=2, depth=2, two_qubit_gates=["swap"])


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("ghz", dict(n_qubits=0), "circuit.n_qubits=0 is invalid: must be an integer >= 1"),
        ("random", dict(n_qubits=2, depth=0), "circuit.depth=0 is invalid"),
        ("vqe", dict(n_qubits=2, depth=-1), "circuit.depth=-1 is invalid"),
        ("grover", dict(n_qubits=1), "circuit.n_qubits=1 is invalid: must be an integer >= 2"),
        ("qaoa", dict(n_qubits=1), "circuit.n_qubits=1 is invalid"),
        ("qaoa", dict(n_qubits=3, graph="star"), "circuit.graph='star'"),
        ("ghz", dict(n_qubits=2, depth=3), "does not take depth"),
        ("nope", dict(), "circuit.name='nope' is invalid: must be one of random, layered, ghz"),
    ],
)
def test_invalid_parameters(name: str, params: dict, message: str) -> None:
    with pytest.raises(CircuitError, match=message):
        build_circuit(name, **params)


# --------------------------------------------------------------------------- QASM


def test_example_qasm_loads_and_simulates() -> None:
    circuit = from_qasm(path=EXAMPLE_QASM)
    q = cirq.LineQubit.range(3)
    assert sorted(circuit.all_qubits()) == q
    assert any(op.gate == cirq.CCX for op in circuit.all_operations())
    assert circuit.are_all_measurements_terminal() and circuit.has_measurements()
    expected = cirq.Circuit(
        cirq.H(q[0]),
        cirq.H(q[1]),
        cirq.CNOT(q[0], q[2]),
        cirq.rz(np.pi / 4).on(q[1]),
        cirq.CCX(q[0], q[1], q[2]),
        cirq.H(q[2]),
    )
    np.testing.assert_allclose(state(circuit), state(expected), atol=1e-12)
    # the file measures already: measure=True adds nothing
    assert from_qasm(path=EXAMPLE_QASM, measure=True) == circuit
    assert build_circuit("qasm", path=str(EXAMPLE_QASM)) == circuit


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "c.qasm"
    path.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\n' + body)
    return path


def test_qasm_registers_map_to_line_qubits_in_order(tmp_path: Path) -> None:
    path = write(tmp_path, "qreg a[1];\nqreg b[2];\nx b[1];\nh a[0];\ncx a[0],b[0];\n")
    circuit = from_qasm(path=path)
    assert sorted(circuit.all_qubits()) == cirq.LineQubit.range(3)
    psi = state(circuit)  # a0 = q0 (MSB), b0 = q1, b1 = q2 = 1
    expected = np.zeros(8)
    expected[0b001] = expected[0b111] = 1 / np.sqrt(2)
    np.testing.assert_allclose(psi, expected, atol=1e-12)
    measured = from_qasm(path=path, measure=True)
    assert len(measured) == len(circuit) + 1
    assert cirq.measurement_key_names(measured) == {"m"}


def test_malformed_qasm_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "qreg q[2];\nh q[0];\nfoo q[1];\n")
    with pytest.raises(CircuitError, match="line 5") as info:
        from_qasm(path=path)
    assert str(path) in str(info.value)
    path = write(tmp_path, "qreg q[2];\nh q[0] q;\n")
    with pytest.raises(CircuitError, match="line 4"):
        from_qasm(path=path)
    path = write(tmp_path, "qreg q[2];\nh q[0]\n")  # no semicolon: end of file
    with pytest.raises(CircuitError, match=r"line 4, column 7: `h q\[0\]`: expected ';'"):
        from_qasm(path=path)


def test_missing_qasm_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.qasm"
    with pytest.raises(FileNotFoundError, match="nope.qasm"):
        from_qasm(path=missing)


# --------------------------------------------------------------------------- input faults


@pytest.mark.parametrize("name", ["random", "qaoa", "vqe", "grover"])
def test_a_negative_seed_names_circuit_seed(name: str) -> None:
    with pytest.raises(CircuitError, match=r"circuit\.seed=-1 is invalid: must be an integer >= 0"):
        build_circuit(name, **{**BUILDS[name], "seed": -1})


@pytest.mark.parametrize(
    ("name", "params", "key"),
    [
        ("random", dict(n_qubits=4, depth=10**7), "circuit.depth=10000000"),
        ("vqe", dict(n_qubits=4, depth=10**7), "circuit.depth=10000000"),
        ("qaoa", dict(n_qubits=4, p=10**7), "circuit.p=10000000"),
        ("grover", dict(n_qubits=4, iterations=10**7), "circuit.iterations=10000000"),
        ("grover", dict(n_qubits=30), r"circuit.iterations=null \(the optimum, 25735\)"),
    ],
)
def test_a_circuit_of_too_many_gates_is_refused_before_building(
    name: str, params: dict, key: str
) -> None:
    import time

    start = time.perf_counter()
    with pytest.raises(CircuitError, match=key + r" is invalid .*1,000,000") as info:
        build_circuit(name, **params)
    assert time.perf_counter() - start < 1.0  # nothing was built
    assert "<=" in str(info.value)  # says what would be accepted


def test_the_gate_cap_accepts_what_it_says() -> None:
    from lret_runner.circuits import MAX_OPERATIONS

    most = MAX_OPERATIONS // 4
    with pytest.raises(CircuitError, match=rf"circuit.depth <= {most}"):
        random_circuit(n_qubits=4, depth=most + 1)
    assert len(random_circuit(n_qubits=4, depth=8)) == 8


def qasm_file(tmp_path: Path, text: str | bytes, name: str = "c.qasm") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_a_directory_as_qasm_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(CircuitError, match=r"circuit\.path='.*' is a directory") as info:
        from_qasm(path=tmp_path)
    assert str(tmp_path) in str(info.value)
    assert not isinstance(info.value, FileNotFoundError)


def test_a_pipe_as_qasm_path_is_refused_without_reading(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo.qasm"
    os.mkfifo(fifo)  # reading it would block
    with pytest.raises(CircuitError, match=r"circuit\.path=.*fifo\.qasm.* not a regular file"):
        from_qasm(path=fifo)


def test_an_unreadable_qasm_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "qreg q[1];\nh q[0];\n")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)  # tests run as root: chmod 000 reads
    with pytest.raises(CircuitError, match=r"circuit\.path=.*c\.qasm.*permission denied") as info:
        from_qasm(path=path)
    assert "readable" in str(info.value)


def test_a_non_utf8_qasm_file_is_named(tmp_path: Path) -> None:
    path = qasm_file(tmp_path, b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\n// caf\xe9\n')
    with pytest.raises(CircuitError, match=r"circuit\.path=.*c\.qasm.*not UTF-8.*0xe9 at line 4"):
        from_qasm(path=path)


def test_a_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    text = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\nx q[0];\n'
    path = qasm_file(tmp_path, b"\xef\xbb\xbf" + text.encode())
    assert len(from_qasm(path=path)) == 1


@pytest.mark.parametrize(
    "body",
    ["", "qreg q[3];\ncreg c[3];\n", "qreg q[0];\n"],
    ids=["no-register", "declared-unused", "empty-register"],
)
def test_a_qasm_file_without_qubits_is_refused(tmp_path: Path, body: str) -> None:
    path = write(tmp_path, body)
    # (Cirq itself refuses a zero-length register)
    no_qubit = r"circuit\.path=.*c\.qasm.*(acts on no qubit|register 'q' has size 0)"
    with pytest.raises(CircuitError, match=no_qubit):
        from_qasm(path=path)


def test_an_expression_error_in_qasm_is_a_circuit_error(tmp_path: Path) -> None:
    path = write(tmp_path, "qreg q[1];\nrz(1/0) q[0];\n")
    with pytest.raises(CircuitError, match=r"circuit\.path=.*line 4, column 5.*division by zero"):
        from_qasm(path=path)


def test_too_large_or_too_long_qasm_files_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lret_runner import circuits

    path = write(tmp_path, "qreg q[2];\n" + "h q[0];\n" * 20)
    monkeypatch.setattr(circuits, "MAX_OPERATIONS", 10)
    with pytest.raises(CircuitError, match=r"circuit\.path=.*more than 10 operations"):
        from_qasm(path=path)
    monkeypatch.setattr(circuits, "QASM_MAX_BYTES", 100)
    with pytest.raises(CircuitError, match=r"circuit\.path=.*MiB, more than"):
        from_qasm(path=path)


# the same program as OpenQASM 2 and OpenQASM 3, with registers declared out of name order
QASM2_PROGRAM = """OPENQASM 2.0;
include "qelib1.inc";
qreg b[2];
qreg a[1];
qreg c[1];
creg m[4];
h b[0];
cx b[0], a[0];
x c[0];
ry(0.3) b[1];
ccx b[0], b[1], c[0];
cz a[0], b[1];
measure b[0] -> m[0];
measure b[1] -> m[1];
measure a[0] -> m[2];
measure c[0] -> m[3];
"""
QASM3_PROGRAM = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] b;
qubit[1] a;
qubit c;
bit[4] m;
h b[0];
cx b[0], a[0];
x c;
ry(0.3) b[1];
ccx b[0], b[1], c;
cz a[0], b[1];
m[0] = measure b[0];
m[1] = measure b[1];
m[2] = measure a[0];
m[3] = measure c;
"""


@pytest.mark.parametrize("header", ["OPENQASM 3.0;", "OPENQASM 3;"])
def test_openqasm3_maps_registers_like_openqasm2(tmp_path: Path, header: str) -> None:
    v2 = from_qasm(path=qasm_file(tmp_path, QASM2_PROGRAM, "v2.qasm"))
    v3 = from_qasm(path=qasm_file(tmp_path, QASM3_PROGRAM.replace("OPENQASM 3.0;", header)))
    q = cirq.LineQubit.range(4)  # declaration order: b[0], b[1], a[0], c
    assert sorted(v3.all_qubits()) == sorted(v2.all_qubits()) == q
    expected = cirq.Circuit(
        cirq.H(q[0]),
        cirq.CNOT(q[0], q[2]),
        cirq.X(q[3]),
        cirq.ry(0.3).on(q[1]),
        cirq.CCX(q[0], q[1], q[3]),
        cirq.CZ(q[2], q[1]),
    )
    np.testing.assert_allclose(state(v3), state(expected), atol=1e-12)
    np.testing.assert_allclose(state(v2), state(expected), atol=1e-12)
    # the measurements keep their classical bits, qubit for qubit
    keys = {op.gate.key: op.qubits for op in v3.all_operations() if cirq.is_measurement(op)}
    assert keys == {"m[0]": (q[0],), "m[1]": (q[1],), "m[2]": (q[2],), "m[3]": (q[3],)}
    assert keys == {op.gate.key: op.qubits for op in v2.all_operations() if cirq.is_measurement(op)}


def test_openqasm3_counts_match_openqasm2(tmp_path: Path) -> None:
    """Same program, same bitstrings: both versions sample the same counts for a seed."""
    from lret_runner.experiment import prepare_circuit, simulate

    counts = []
    for name, text in (("v2.qasm", QASM2_PROGRAM), ("v3.qasm", QASM3_PROGRAM)):
        circuit = from_qasm(path=qasm_file(tmp_path, text, name))
        result, _ = simulate(prepare_circuit(circuit, shots=500, seed=3))
        counts.append(result.counts)
    assert counts[0] == counts[1]
    assert all(len(bits) == 4 for bits in counts[0])


@pytest.mark.parametrize(
    ("build", "needle"),
    [
        (lambda: vqe(n_qubits=1, depth=1, angles=[float("inf"), 0.0]), "circuit.angles[0]=inf"),
        (lambda: vqe(n_qubits=1, depth=1, angles=[0.0, "nan"]), "circuit.angles[1]=nan"),
        (lambda: qaoa(n_qubits=3, gammas=[float("nan")]), "circuit.gammas[0]=nan"),
        (lambda: qaoa(n_qubits=3, betas=float("-inf")), "circuit.betas=-inf"),
        (
            lambda: build_circuit("architecture", n_qubits=1, slots=["rx_0"], angles=[1e309]),
            "circuit.angles[0]=inf",
        ),
    ],
)
def test_a_non_finite_angle_is_refused_naming_it(build: Callable[[], object], needle: str) -> None:
    """A library call's angles are checked as the config's are: a CircuitError naming the
    angle, not a ZeroDivisionError from Cirq or a circuit of nan rotations."""
    with pytest.raises(CircuitError, match=re.escape(needle) + ".*finite"):
        build()


def test_numeric_angle_strings_are_still_read() -> None:
    a = vqe(n_qubits=1, depth=1, angles=["0.5", 1])
    b = vqe(n_qubits=1, depth=1, angles=[0.5, 1.0])
    np.testing.assert_allclose(state(a), state(b), atol=1e-12)


def test_a_nul_byte_in_a_qasm_path_is_named(tmp_path: Path) -> None:
    """A NUL in the path (a 500 through the API before): a CircuitError naming circuit.path."""
    with pytest.raises(CircuitError, match=r"circuit\.path=.* holds a NUL character"):
        from_qasm(path=str(tmp_path / "a\x00b.qasm"))
