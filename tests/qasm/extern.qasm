// extern.qasm: an OpenQASM 3 extern function declaration: refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 3.0;
include "stdgates.inc";
qubit[1] q;
extern get_angle(int[32]) -> angle;
h q[0];
