// cirq_export.qasm: Cirq's OpenQASM 2 export of a 4-qubit circuit (fractional powers, CCZ, two measurement keys).
// Made once by cirq.qasm(cirq_source_circuit()) (tests/test_qasm.py), Cirq 1.7.
// Generated from Cirq v1.7.0

OPENQASM 2.0;
include "qelib1.inc";


// Qubits: [q(0), q(1), q(2), q(3)]
qreg q[4];
creg m_m[2];
creg m_z[1];


h q[0];
rx(pi*0.2501909332) q[1];
ry(pi*0.7944276019) q[2];
rz(pi*0.5513713805) q[3];
rx(pi*-0.1749385362) q[0];
ry(pi*-0.1272180942) q[1];
rz(pi*0.2378115094) q[2];
s q[3];
tdg q[0];
u3(pi*-0.6424568368, pi*-0.4894693909, pi*0.4894693909) q[1];
cx q[0],q[1];

// Gate: CZ**0.5941388575040925
u3(pi*0.5,0,pi*0.4706715516) q[1];
u3(pi*0.5,0,pi*1.9706715516) q[2];
sx q[1];
cx q[1],q[2];
rx(pi*0.2029305712) q[1];
ry(pi*0.5) q[2];
cx q[2],q[1];
sxdg q[2];
s q[2];
cx q[1],q[2];
u3(pi*0.5,pi*0.8263978771,pi*1.0) q[1];
u3(pi*0.5,pi*1.3263978771,pi*1.0) q[2];

swap q[2],q[3];

// Gate: ISWAP**-0.06413009431255845
cx q[3],q[0];
h q[3];
cx q[0],q[3];
rz(pi*-0.0320650472) q[3];
cx q[0],q[3];
rz(pi*0.0320650472) q[3];
h q[3];
cx q[3],q[0];

// Gate: XX**-0.39393514636137295
ry(pi*-0.5) q[0];
ry(pi*-0.5) q[2];
rz(pi*-0.3939351464) q[0];
rz(pi*-0.3939351464) q[2];
u3(pi*0.5,0,0) q[0];
u3(pi*0.5,0,pi*0.5) q[2];
sx q[0];
cx q[0],q[2];
rx(pi*0.1060648536) q[0];
ry(pi*0.5) q[2];
cx q[2],q[0];
sxdg q[2];
s q[2];
cx q[0],q[2];
u3(pi*0.5,pi*1.3939351464,pi*1.0) q[0];
u3(pi*0.5,pi*0.8939351464,pi*1.0) q[2];
ry(pi*0.5) q[0];
ry(pi*0.5) q[2];

// Gate: ZZ**-0.44314877579845335
rz(pi*-0.4431487758) q[1];
rz(pi*-0.4431487758) q[3];
u3(pi*0.5,0,0) q[1];
u3(pi*0.5,0,pi*0.5) q[3];
sx q[1];
cx q[1],q[3];
rx(pi*0.0568512242) q[1];
ry(pi*0.5) q[3];
cx q[3],q[1];
sxdg q[3];
s q[3];
cx q[1],q[3];
u3(pi*0.5,pi*1.4431487758,pi*1.0) q[1];
u3(pi*0.5,pi*0.9431487758,pi*1.0) q[3];

ccx q[0],q[1],q[2];

// Gate: CCZ
h q[3];
ccx q[1],q[2],q[3];
h q[3];

cswap q[3],q[0],q[1];

// Gate: cirq.MeasurementGate(2, cirq.MeasurementKey(name='m'), ())
measure q[0] -> m_m[0];
measure q[2] -> m_m[1];

measure q[3] -> m_z[0];
