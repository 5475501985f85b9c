// include_other.qasm: an include of another file than qelib1.inc / stdgates.inc: refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 2.0;
include "qelib1.inc";
include "mylib.inc";
qreg q[1];
h q[0];
