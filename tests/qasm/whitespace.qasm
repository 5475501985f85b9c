// whitespace.qasm: tabs, form feeds, /* */ block comments (inside statements, across lines) and // comments.
// Written by hand for tests/test_qasm.py; reference: Qiskit's qasm2 reader once the block comments and form feeds are removed.
OPENQASM 2.0;
include "qelib1.inc";
/* a block comment
   over two lines */ qreg q[2];

h	q[0]; /* two */ rx( 0.3 /* inside the parameters */ ) q[1];	// trailing comment
cx /* between the operands */ q[0],
		q[1];
cp(-0.7)q[1],q[0]; // no space after the comma
ry(1.1) q[0];