// modifier_negctrl.qasm: an OpenQASM 3 negctrl @ gate modifier: refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
h q[0];
negctrl @ x q[0], q[1];
