// gphase3.qasm: OpenQASM 3 gphase at top level and inside a gate definition; no effect on the state.
// Written by hand for tests/test_qasm.py; reference: the same circuit without gphase (up to a global phase).
OPENQASM 3;
include "stdgates.inc";
qubit[2] q;
gate hphase a { gphase(-0.25); h a; }
gphase(0.4);
hphase q[0];
cx q[0], q[1];
ry(0.8) q[1];
