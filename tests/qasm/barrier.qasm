// barrier.qasm: barriers on two qubits and on a whole register between gates; no effect on the state.
// Written by hand for tests/test_qasm.py; reference: Qiskit's qasm2 reader on this file.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
h q[0];
ry(0.61) q[2];
barrier q[0], q[1];
cx q[0], q[1];
barrier q;
rz(-0.42) q[2];
cx q[2], q[0];
barrier q[2];
t q[1];
