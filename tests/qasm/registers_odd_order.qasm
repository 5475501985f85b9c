// registers_odd_order.qasm: registers declared out of name order, bits measured out of order into two cregs.
// Written by hand for tests/test_qasm.py; reference: Qiskit's qasm2 reader (final measurements removed).
OPENQASM 2.0;
include "qelib1.inc";
qreg zeta[2];
qreg alpha[1];
qreg mid[2];
creg out[3];
creg bits[2];
x zeta[1];
h alpha[0];
cx alpha[0], mid[1];
ry(0.7) mid[0];
crz(1.3) mid[0], zeta[0];
h zeta[0];
measure mid[1] -> bits[0];
measure zeta[1] -> out[2];
measure alpha[0] -> out[0];
measure mid[0] -> bits[1];
measure zeta[0] -> out[1];
