// dyn_teleport.qasm: teleportation of ry(1.1) rz(0.4)|0> with mid-circuit measurements and if(m==1) corrections, read out in the X basis.
// Written by hand for tests/test_dynamic.py; references: closed form (the input state's distribution, m0 and m1 uniform), Qiskit Aer, Cirq.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
creg m0[1];
creg m1[1];
creg out[1];
ry(1.1) q[0];
rz(0.4) q[0];
h q[1];
cx q[1],q[2];
cx q[0],q[1];
h q[0];
measure q[0] -> m0[0];
measure q[1] -> m1[0];
if(m1==1) x q[2];
if(m0==1) z q[2];
h q[2];
measure q[2] -> out[0];
