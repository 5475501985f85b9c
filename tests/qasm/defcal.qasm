// defcal.qasm: an OpenQASM 3 defcal (pulse-level calibration): refused.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 3.0;
include "stdgates.inc";
qubit[1] q;
h q[0];
defcal rz(angle[20] theta) $0 { }
rz(0.3) q[0];
