// dyn_active_reset.qasm: active reset (measure, then if(c==1) x) and a conditional reset (if(c==1) reset) keyed on the same bit.
// Written by hand for tests/test_dynamic.py; references: closed form (c uniform, d always 0, e = 1 - c), Qiskit Aer.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[1];
creg d[1];
creg e[1];
h q[0];
x q[1];
measure q[0] -> c[0];
if(c==1) x q[0];
if(c==1) reset q[1];
measure q[0] -> d[0];
measure q[1] -> e[0];
