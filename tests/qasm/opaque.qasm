// opaque.qasm: an opaque gate declaration (a gate without a body): refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
h q[0];
opaque magic(theta) a, b;
magic(0.5) q[0], q[1];
