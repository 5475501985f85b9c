// dyn_rus.qasm: repeat-until-success unrolled to 3 rounds: each round, while c == 0, ry(1.0) on the ancilla flags success and flips the target.
// Written by hand for tests/test_dynamic.py; references: closed form (success after round k: 1 - (1 - sin^2 0.5)^k), Qiskit Aer.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[3];
creg out[1];
// round 1
if(c==0) ry(1.0) q[0];
if(c==0) cx q[0],q[1];
measure q[0] -> c[0];
// round 2
reset q[0];
if(c==0) ry(1.0) q[0];
if(c==0) cx q[0],q[1];
measure q[0] -> c[1];
// round 3
reset q[0];
if(c==0) ry(1.0) q[0];
if(c==0) cx q[0],q[1];
measure q[0] -> c[2];
measure q[1] -> out[0];
