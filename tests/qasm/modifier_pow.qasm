// modifier_pow.qasm: an OpenQASM 3 pow(...) @ gate modifier: refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 3.0;
include "stdgates.inc";
qubit[1] q;
h q[0];
pow(0.5) @ x q[0];
