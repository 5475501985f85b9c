// box.qasm: an OpenQASM 3 box (a timing block): refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
h q[0];
box [100ns] {
  cx q[0], q[1];
}
