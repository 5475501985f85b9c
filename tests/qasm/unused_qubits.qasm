// unused_qubits.qasm: two registers of which only q[1], q[3] and r[0] are used; the others are not in the circuit.
// Written by hand for tests/test_qasm.py; reference: Qiskit's qasm2 reader on the used qubits.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
qreg r[2];
h q[1];
cx q[1], r[0];
ry(0.35) q[3];
cz r[0], q[3];
