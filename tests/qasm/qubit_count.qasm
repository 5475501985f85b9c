// qubit_count.qasm: cx called on one qubit instead of two: refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
h q[0];
cx q[0];
