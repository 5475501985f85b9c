// unknown_gate.qasm: a call of a gate that is neither standard nor defined in the file: refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
h q[0];
  foo q[0], q[1];
