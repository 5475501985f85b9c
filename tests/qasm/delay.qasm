// delay.qasm: OpenQASM 2 delay(...) (an instruction Qiskit's exporters write) between gates; no effect on the state.
// Written by hand for tests/test_qasm.py; reference: the same circuit without the delays, built in the test.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
h q[0];
delay(100) q[0];
cx q[0], q[1];
delay(20) q[1];
rx(0.5) q[1];
