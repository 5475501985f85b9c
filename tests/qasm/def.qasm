// def.qasm: an OpenQASM 3 subroutine definition (def): refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
h q[0];
def flip(qubit a) {
  x a;
}
flip(q[1]);
