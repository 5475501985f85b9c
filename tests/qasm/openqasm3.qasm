// openqasm3.qasm: the OpenQASM 3 subset: OPENQASM 3; qubit[n]/qubit, bit[n]/bit, gate definitions, phase/cphase/CX/U, c = measure q.
// Written by hand for tests/test_qasm.py; reference: Qiskit's qasm3 importer (final measurements removed).
OPENQASM 3;
include "stdgates.inc";
qubit[2] q;
qubit anc;
qubit[1] r;
bit[2] c;
bit d;
bit[1] e;
gate entangle(theta) a, b {
  U(theta, 0.1, -0.2) a;
  CX a, b;
  phase(theta / 3) b;
}
h q[0];
entangle(0.9) q[0], anc;
cphase(-0.6) anc, r[0];
sx q[1];
u3(0.3, 1.2, -0.7) r[0];
cswap anc, q[1], r[0];
c = measure q;
d = measure anc;
e[0] = measure r[0];
