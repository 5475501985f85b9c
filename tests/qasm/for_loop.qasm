// for_loop.qasm: an OpenQASM 3 for loop: refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
h q[0];
for int i in [0:1] {
  cx q[i], q[i + 1];
}
