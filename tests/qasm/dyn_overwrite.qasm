// dyn_overwrite.qasm: a bit measured twice (its last value kept), registers declared out of name order (zb before a), a condition on a whole register.
// Written by hand for tests/test_dynamic.py; references: closed form, Qiskit Aer.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
creg zb[1];
creg a[2];
h q[0];
x q[2];
measure q[2] -> a[0];
measure q[0] -> a[1];
if(a==3) x q[1];
x q[0];
measure q[0] -> a[1];
measure q[1] -> zb[0];
