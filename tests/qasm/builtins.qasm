// builtins.qasm: only the OpenQASM 2 builtins U and CX, without include "qelib1.inc".
// Written by hand for tests/test_qasm.py; reference: Qiskit's qasm2 reader on this file.
OPENQASM 2.0;
qreg q[2];
U(0.3, -0.8, 1.9) q[0];
U(pi / 2, 0, pi) q[1];
CX q[1], q[0];
U(-1.2, 0.4, 0.1) q[1];
