// out_of_range.qasm: q[6] of a 6-qubit register (indices 0..5), a tab inside the statement: refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 2.0;
include "qelib1.inc";
qreg q[6];
h q[0];
cx q[0],	q[6];
