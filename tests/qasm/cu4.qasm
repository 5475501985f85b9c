// cu4.qasm: Qiskit's 4-parameter cu(theta, phi, lambda, gamma) (gamma a phase on the control), both ways round.
// Written by hand for tests/test_qasm.py; references: Qiskit's qasm2 reader and the closed form.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
h q[0];
ry(0.9) q[1];
cu(0.73, -1.19, 2.31, 0.47) q[0], q[1];
cu(-2.05, 0.56, 0.71, -2.48) q[1], q[0];
