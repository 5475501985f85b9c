// dyn_unmeasured_bit.qasm: if(c==1) on a two-bit register whose c[1] is never measured (OpenQASM: a bit starts at 0).
// Written by hand for tests/test_dynamic.py; references: closed form (d = c[0]), Qiskit Aer.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
creg d[1];
h q[0];
measure q[0] -> c[0];
if(c==1) x q[1];
measure q[1] -> d[0];
