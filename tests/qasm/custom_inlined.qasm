// custom_inlined.qasm: custom_gates.qasm (a 2-bit Cuccaro adder) with every user gate inlined by hand.
// Written by hand for tests/test_qasm.py; it must give the same circuit as custom_gates.qasm.
OPENQASM 2.0;
include "qelib1.inc";
qreg cin[1];
qreg a[2];
qreg b[2];
qreg cout[1];
x a[0];
ry(0.4) a[1];
rz(-1.1) a[1];
x b[0];
x b[1];
// majority cin, b0, a0
cx a[0], b[0];
cx a[0], cin[0];
ccx cin[0], b[0], a[0];
// majority a0, b1, a1
cx a[1], b[1];
cx a[1], a[0];
ccx a[0], b[1], a[1];
cx a[1], cout[0];
// unmaj a0, b1, a1
ccx a[0], b[1], a[1];
cx a[1], a[0];
cx a[0], b[1];
// unmaj cin, b0, a0
ccx cin[0], b[0], a[0];
cx a[0], cin[0];
cx cin[0], b[0];
