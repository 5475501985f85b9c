// qiskit_export.qasm: Qiskit's OpenQASM 2 export of a 4-qubit circuit of many gate types (with gate definitions).
// Made once by qiskit.qasm2.dumps(qiskit_source_circuit()) (tests/test_qasm.py), Qiskit 2.6.
OPENQASM 2.0;
include "qelib1.inc";
gate rzx(param0) q0,q1 { h q1; cx q0,q1; rz(param0) q1; cx q0,q1; h q1; }
gate ecr q0,q1 { s q0; sx q1; cx q0,q1; x q0; }
gate iswap q0,q1 { s q0; s q1; h q0; cx q0,q1; cx q1,q0; h q1; }
gate ryy(param0) q0,q1 { sxdg q0; sxdg q1; cx q0,q1; rz(param0) q1; cx q0,q1; sx q0; sx q1; }
gate dcx q0,q1 { cx q0,q1; cx q1,q0; }
gate xx_plus_yy(param0,param1) q0,q1 { rz(param1) q0; sdg q1; sx q1; s q1; s q0; cx q1,q0; ry((-0.5)*param0) q1; ry((-0.5)*param0) q0; cx q1,q0; sdg q0; sdg q1; sxdg q1; s q1; rz(-param1) q0; }
qreg q[4];
creg meas[4];
h q[0];
sx q[1];
sxdg q[2];
t q[3];
u(1.104780879345718,-1.794960264581879,-1.197248199877064) q[0];
p(1.8816009792540518) q[1];
rx(3.1152164628603014) q[2];
ry(-2.2479238016086907) q[3];
rz(-2.646945536556531) q[0];
id q[1];
cx q[0],q[1];
cz q[1],q[2];
cy q[2],q[3];
ch q[3],q[0];
swap q[0],q[2];
crx(-2.0054431241815376) q[1],q[3];
cp(-0.8818645879544551) q[2],q[0];
cu(-2.075843476015642,0.5576912272745491,0.7339232546257386,-2.479434899007666) q[3],q[1];
rxx(0.41300037403097) q[0],q[3];
rzz(-3.1125037466513974) q[1],q[2];
ccx q[0],q[1],q[2];
cswap q[3],q[2],q[1];
rzx(-0.219162533777149) q[0],q[1];
ecr q[1],q[2];
iswap q[2],q[3];
ryy(0.552390439672859) q[3],q[0];
dcx q[0],q[2];
xx_plus_yy(-1.794960264581879,-1.197248199877064) q[1],q[3];
barrier q[0],q[1],q[2],q[3];
measure q[0] -> meas[0];
measure q[1] -> meas[1];
measure q[2] -> meas[2];
measure q[3] -> meas[3];
