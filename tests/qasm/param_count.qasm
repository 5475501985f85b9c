// param_count.qasm: rx called with two parameters instead of one: refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 2.0;
include "qelib1.inc";
qreg q[1];
h q[0];
rx(0.1, 0.2) q[0];
