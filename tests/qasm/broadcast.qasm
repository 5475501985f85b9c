// broadcast.qasm: gates and a measurement applied to whole registers (OpenQASM 2 broadcasting).
// Written by hand for tests/test_qasm.py; reference: Qiskit's qasm2 reader (final measurements removed).
OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
qreg r[3];
creg c[3];
h q;
rx(0.3) r;
cx q, r;
cu1(0.9) q[0], r;
measure r -> c;
