// cal.qasm: an OpenQASM 3 cal block (pulse-level): refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 3.0;
include "stdgates.inc";
qubit[1] q;
h q[0];
cal {
  extern port d0;
}
