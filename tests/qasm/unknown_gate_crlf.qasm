// unknown_gate_crlf.qasm: an unknown gate in a file with CRLF line endings: refused, no carriage return in the message.
// Written by hand for tests/test_qasm.py (a refusal case; see REFUSALS there).
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
h q[0];
bar(0.5) q[1];
cx q[0], q[1];
