// no_header.qasm: an OpenQASM 2 program without the OPENQASM line (the version is optional).
// Written by hand for tests/test_qasm.py; reference: Qiskit's qasm2 reader on this file.
include "qelib1.inc";
qreg q[2];
h q[0];
cx q[0], q[1];
u2(0.25, -0.5) q[1];
