// while_loop.qasm: an OpenQASM 3 while loop: refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 3.0;
include "stdgates.inc";
qubit[1] q;
bit c;
h q[0];
while (c) {
  x q[0];
}
