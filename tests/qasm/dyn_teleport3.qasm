// dyn_teleport3.qasm: dyn_teleport.qasm in OpenQASM 3: bit[1] registers, c[0] = measure q[0], if (m0[0]) z q[2].
// Written by hand for tests/test_dynamic.py; reference: closed form (the input state's distribution, m0 and m1 uniform).
OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
bit[1] m0;
bit[1] m1;
bit[1] out;
ry(1.1) q[0];
rz(0.4) q[0];
h q[1];
cx q[1], q[2];
cx q[0], q[1];
h q[0];
m0[0] = measure q[0];
m1[0] = measure q[1];
if (m1[0]) x q[2];
if (m0[0]) {
  z q[2];
}
h q[2];
out[0] = measure q[2];
