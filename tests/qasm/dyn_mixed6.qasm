// dyn_mixed6.qasm: 6 qubits, two mid-circuit measurements into one register, gates conditioned on each of its values, measured qubits reused.
// Written by hand for tests/test_dynamic.py; references: Qiskit Aer (noiseless and noisy), Cirq (deferred measurements), fdm against lret.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[6];
creg m[2];
creg r[4];
h q[0];
cx q[0],q[1];
ry(0.7) q[2];
cx q[2],q[3];
rx(1.3) q[4];
cz q[4],q[5];
h q[5];
measure q[1] -> m[0];
measure q[3] -> m[1];
if(m==1) x q[4];
if(m==2) ry(0.9) q[5];
if(m==3) cx q[0],q[2];
cx q[4],q[5];
h q[1];
cx q[1],q[0];
rz(0.3) q[3];
h q[3];
cx q[3],q[2];
measure q[0] -> r[0];
measure q[2] -> r[1];
measure q[4] -> r[2];
measure q[5] -> r[3];
