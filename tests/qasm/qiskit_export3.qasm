// qiskit_export3.qasm: Qiskit's OpenQASM 3 export of a 4-qubit circuit of many gate types (with gate definitions).
// Made once by qiskit.qasm3.dumps(qiskit_source_circuit()) (tests/test_qasm.py), Qiskit 2.6.
OPENQASM 3.0;
include "stdgates.inc";
gate sxdg _gate_q_0 {
  s _gate_q_0;
  h _gate_q_0;
  s _gate_q_0;
}
gate rxx(p0) _gate_q_0, _gate_q_1 {
  h _gate_q_0;
  h _gate_q_1;
  cx _gate_q_0, _gate_q_1;
  rz(p0) _gate_q_1;
  cx _gate_q_0, _gate_q_1;
  h _gate_q_1;
  h _gate_q_0;
}
gate rzz(p0) _gate_q_0, _gate_q_1 {
  cx _gate_q_0, _gate_q_1;
  rz(p0) _gate_q_1;
  cx _gate_q_0, _gate_q_1;
}
gate rzx(p0) _gate_q_0, _gate_q_1 {
  h _gate_q_1;
  cx _gate_q_0, _gate_q_1;
  rz(p0) _gate_q_1;
  cx _gate_q_0, _gate_q_1;
  h _gate_q_1;
}
gate ecr _gate_q_0, _gate_q_1 {
  s _gate_q_0;
  sx _gate_q_1;
  cx _gate_q_0, _gate_q_1;
  x _gate_q_0;
}
gate iswap _gate_q_0, _gate_q_1 {
  s _gate_q_0;
  s _gate_q_1;
  h _gate_q_0;
  cx _gate_q_0, _gate_q_1;
  cx _gate_q_1, _gate_q_0;
  h _gate_q_1;
}
gate ryy(p0) _gate_q_0, _gate_q_1 {
  sxdg _gate_q_0;
  sxdg _gate_q_1;
  cx _gate_q_0, _gate_q_1;
  rz(p0) _gate_q_1;
  cx _gate_q_0, _gate_q_1;
  sx _gate_q_0;
  sx _gate_q_1;
}
gate dcx _gate_q_0, _gate_q_1 {
  cx _gate_q_0, _gate_q_1;
  cx _gate_q_1, _gate_q_0;
}
gate xx_plus_yy(p0, p1) _gate_q_0, _gate_q_1 {
  rz(p1) _gate_q_0;
  sdg _gate_q_1;
  sx _gate_q_1;
  s _gate_q_1;
  s _gate_q_0;
  cx _gate_q_1, _gate_q_0;
  ry((-0.5)*p0) _gate_q_1;
  ry((-0.5)*p0) _gate_q_0;
  cx _gate_q_1, _gate_q_0;
  sdg _gate_q_0;
  sdg _gate_q_1;
  sxdg _gate_q_1;
  s _gate_q_1;
  rz(-p1) _gate_q_0;
}
bit[4] meas;
qubit[4] q;
h q[0];
sx q[1];
sxdg q[2];
t q[3];
U(1.104780879345718, -1.794960264581879, -1.197248199877064) q[0];
p(1.8816009792540518) q[1];
rx(3.1152164628603014) q[2];
ry(-2.2479238016086907) q[3];
rz(-2.646945536556531) q[0];
id q[1];
cx q[0], q[1];
cz q[1], q[2];
cy q[2], q[3];
ch q[3], q[0];
swap q[0], q[2];
crx(-2.0054431241815376) q[1], q[3];
cp(-0.8818645879544551) q[2], q[0];
cu(-2.075843476015642, 0.5576912272745491, 0.7339232546257386, -2.479434899007666) q[3], q[1];
rxx(0.41300037403097) q[0], q[3];
rzz(-3.1125037466513974) q[1], q[2];
ccx q[0], q[1], q[2];
cswap q[3], q[2], q[1];
rzx(-0.219162533777149) q[0], q[1];
ecr q[1], q[2];
iswap q[2], q[3];
ryy(0.552390439672859) q[3], q[0];
dcx q[0], q[2];
xx_plus_yy(-1.794960264581879, -1.197248199877064) q[1], q[3];
barrier q[0], q[1], q[2], q[3];
meas[0] = measure q[0];
meas[1] = measure q[1];
meas[2] = measure q[2];
meas[3] = measure q[3];
