// dyn_reset_after_measure.qasm: reset of a measured qubit (entangled with another), then reused with ry(0.8).
// Written by hand for tests/test_dynamic.py; references: closed form (c[0] uniform, d = c[0], c[1] ~ Bernoulli(sin^2 0.4)), Qiskit Aer.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
creg d[1];
h q[0];
cx q[0],q[1];
measure q[0] -> c[0];
reset q[0];
ry(0.8) q[0];
measure q[0] -> c[1];
measure q[1] -> d[0];
