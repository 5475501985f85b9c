// delay3.qasm: OpenQASM 3 delay[...] with durations in ns and dt, on a qubit and a register; no effect on the state.
// Written by hand for tests/test_qasm.py; reference: the same circuit without the delays, built in the test.
OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
h q[0];
delay[100ns] q[0];
cx q[0], q[1];
delay[20dt] q;
rx(0.5) q[1];
