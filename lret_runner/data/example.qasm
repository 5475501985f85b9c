// Example OpenQASM 2.0 circuit for lret_runner (3 qubits: h, cx, ccx, rz, measure).
OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
creg c[3];
h q[0];
h q[1];
cx q[0],q[2];
rz(pi/4) q[1];
ccx q[0],q[1],q[2];
h q[2];
measure q -> c;
