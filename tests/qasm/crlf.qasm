// crlf.qasm: Windows line endings (CRLF bytes) with // comments, tabs and blank lines.
// Written by hand (saved with CRLF) for tests/test_qasm.py; it must read as its LF version does.
OPENQASM 2.0;
include "qelib1.inc";

qreg q[3];	// three qubits
creg c[3];
h q[0];		// superpose
	cx q[0], q[1];
rz(0.25) q[1];
// a comment line between gates
ccx q[0], q[1], q[2];
u3(0.1, 0.2, 0.3) q[2];
measure q[2] -> c[2];
