// modifier_inv.qasm: an OpenQASM 3 inv @ gate modifier: refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 3.0;
include "stdgates.inc";
qubit[1] q;
h q[0];
inv @ s q[0];
