// dyn_conditions3.qasm: OpenQASM 3 conditions: if/else blocks, c != 2, !c[0], c[1], c == 3, a one-bit register (bit r), both measure forms.
// Written by hand for tests/test_dynamic.py; reference: closed form.
OPENQASM 3.0;
include "stdgates.inc";
qubit[5] q;
bit[2] c;
bit r;
bit[2] w;
h q[0];
h q[1];
c[0] = measure q[0];
c[1] = measure q[1];
if (c != 2) {
  x q[2];
} else {
  ry(0.9) q[2];
}
if (!c[0]) x q[3];
if (c[1]) {
  ry(0.5) q[4];
} else {
  x q[4];
}
if (c == 3) x q[4];
r = measure q[2];
measure q[3] -> w[0];
w[1] = measure q[4];
