// custom_gates.qasm: a 2-bit Cuccaro ripple-carry adder (b += a, carry out) from user gates nested one level.
// Written by hand for tests/test_qasm.py; custom_inlined.qasm is the same circuit with the gates inlined.
OPENQASM 2.0;
include "qelib1.inc";
gate majority a, b, c { cx c, b; cx c, a; ccx a, b, c; }
gate unmaj a, b, c { ccx a, b, c; cx c, a; cx a, b; }
gate add2 cin, a0, a1, b0, b1, cout {
  majority cin, b0, a0;
  majority a0, b1, a1;
  cx a1, cout;
  unmaj a0, b1, a1;
  unmaj cin, b0, a0;
}
gate prep(theta, phi) t { ry(theta / 2) t; rz(-phi) t; }
qreg cin[1];
qreg a[2];
qreg b[2];
qreg cout[1];
x a[0];
prep(0.8, 1.1) a[1];
x b[0];
x b[1];
add2 cin[0], a[0], a[1], b[0], b[1], cout[0];
