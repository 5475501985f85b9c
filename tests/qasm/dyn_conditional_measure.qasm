// dyn_conditional_measure.qasm: a classically controlled measurement, if(c==0) measure q[0] -> c[1] (a retry measured only after a failure).
// Written by hand for tests/test_dynamic.py; references: closed form, Qiskit Aer; or a refusal naming line 11.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[1];
creg c[2];
ry(1.0) q[0];
measure q[0] -> c[0];
reset q[0];
ry(1.0) q[0];
if(c==0) measure q[0] -> c[1];
