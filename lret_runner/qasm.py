"""The OpenQASM reader: OpenQASM 2.0 and an OpenQASM 3 subset, as common tools write them,
into a ``cirq.Circuit``.

What it reads:

- OpenQASM 2.0 (the header may be missing) and OpenQASM 3 (``OPENQASM 3;`` or ``3.0;``):
  ``qreg``/``creg``, ``qubit[n]``/``qubit``, ``bit[n]``/``bit``, physical qubits ``$n``.
- The standard gates: Qiskit's ``qelib1.inc`` (every gate its exporter writes without a
  definition, the 4-parameter ``cu`` among them), OpenQASM 3's ``stdgates.inc``, the
  builtins ``U``, ``CX`` and ``gphase``. Each is one operation whose unitary is Qiskit's,
  global phase included.
- User-defined ``gate``\\ s, expanded into their bodies where they are called: the circuit
  holds standard gates only, so noise acts after each gate of the body, as if the file
  had inlined them.
- ``measure`` (``measure q -> c;``, ``c = measure q;``), one ``cirq.measure`` per classical
  bit, keyed by the bit as the file names it (``c[0]``; ``c`` for a one-bit ``bit c;``);
  ``reset``; ``if (c == k)`` and OpenQASM 3's ``if (c[i])``/``else`` on bits and registers
  (classically controlled operations).
- ``barrier`` (no effect on the state; it ends a moment for the qubits it names),
  ``delay`` and ``gphase`` (no effect), comments, any whitespace and line endings.

Qubits become ``LineQubit``\\ s in declaration order (``$n`` is ``LineQubit(n)``).
Operations are scheduled as early as the qubits (and the classical bits they read or
write) allow, never across a barrier.

Everything else (``opaque`` gates, pulse-level statements, externs, subroutines, loops,
classical variables, gate modifiers, other include files, nested ``if``, a classically
controlled measurement) is refused with a
:class:`CircuitError` naming the setting, the line and column, the statement as written
and what to do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import cirq
import numpy as np
import sympy

from lret_runner.errors import CircuitError

# the most qubits (or bits) one register may declare
MAX_REGISTER = 4096

# ---------------------------------------------------------------------------- standard gates


def _u3(theta: float, phi: float, lam: float) -> np.ndarray:
    """Qiskit's U / u3 matrix (OpenQASM's U up to Qiskit's global phase convention)."""
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array(
        [
            [c, -np.exp(1j * lam) * s],
            [np.exp(1j * phi) * s, np.exp(1j * (phi + lam)) * c],
        ]
    )


def _matrix(m: np.ndarray, name: str) -> cirq.Gate:
    return cirq.MatrixGate(m, name=name)


def _phase(lam: float) -> cirq.Gate:
    return cirq.ZPowGate(exponent=lam / math.pi)


def _from_ops(n: int, body: Callable[[Sequence[cirq.Qid]], cirq.OP_TREE], name: str) -> cirq.Gate:
    """A gate on ``n`` qubits whose matrix is that of ``body`` (a fixed sequence)."""
    q = cirq.LineQubit.range(n)
    return _matrix(cirq.unitary(cirq.Circuit(body(q))), name)


def _rccx(q: Sequence[cirq.Qid]) -> cirq.OP_TREE:
    """Qiskit's relative-phase Toffoli (its qelib1.inc definition)."""
    a, b, c = q
    h = _matrix(_u3(math.pi / 2, 0, math.pi), "u2")
    t, tdg = _phase(math.pi / 4), _phase(-math.pi / 4)
    return [h(c), t(c), cirq.CNOT(b, c), tdg(c), cirq.CNOT(a, c), t(c), cirq.CNOT(b, c)] + [
        tdg(c),
        h(c),
    ]


def _rc3x(q: Sequence[cirq.Qid]) -> cirq.OP_TREE:
    """Qiskit's relative-phase 3-controlled X (its qelib1.inc definition)."""
    a, b, c, d = q
    h = _matrix(_u3(math.pi / 2, 0, math.pi), "u2")
    t, tdg = _phase(math.pi / 4), _phase(-math.pi / 4)
    return [
        h(d), t(d), cirq.CNOT(c, d), tdg(d), h(d),
        cirq.CNOT(a, d), t(d), cirq.CNOT(b, d), tdg(d), cirq.CNOT(a, d), t(d),
        cirq.CNOT(b, d), tdg(d),
        h(d), t(d), cirq.CNOT(c, d), tdg(d), h(d),
    ]  # fmt: skip


@dataclass(frozen=True)
class _Std:
    params: int
    qubits: int
    make: Callable[..., cirq.Gate | None]  # None: no operation (an identity with no role)


def _controlled(gate: cirq.Gate, controls: int = 1) -> cirq.Gate:
    return cirq.ControlledGate(gate, num_controls=controls)


_FIXED = {
    "x": cirq.X, "y": cirq.Y, "z": cirq.Z, "h": cirq.H, "s": cirq.S, "sdg": cirq.S**-1,
    "t": cirq.T, "tdg": cirq.T**-1, "sx": cirq.X**0.5, "sxdg": cirq.X**-0.5, "id": cirq.I,
    "cx": cirq.CNOT, "CX": cirq.CNOT, "cy": _controlled(cirq.Y), "cz": cirq.CZ,
    "ch": _controlled(cirq.H), "swap": cirq.SWAP, "csx": _controlled(cirq.X**0.5),
    "ccx": cirq.CCX, "cswap": cirq.CSWAP, "c3x": _controlled(cirq.X, 3),
    "c3sqrtx": _controlled(cirq.X**0.5, 3), "c4x": _controlled(cirq.X, 4),
}  # fmt: skip

STANDARD: dict[str, _Std] = {
    **{name: _Std(0, cirq.num_qubits(g), lambda g=g: g) for name, g in _FIXED.items()},
    "rccx": _Std(0, 3, lambda: _from_ops(3, _rccx, "rccx")),
    "rc3x": _Std(0, 4, lambda: _from_ops(4, _rc3x, "rc3x")),
    "U": _Std(3, 1, lambda t, p, lam: _matrix(_u3(t, p, lam), "U")),
    "u3": _Std(3, 1, lambda t, p, lam: _matrix(_u3(t, p, lam), "u3")),
    "u": _Std(3, 1, lambda t, p, lam: _matrix(_u3(t, p, lam), "u")),
    "u2": _Std(2, 1, lambda p, lam: _matrix(_u3(math.pi / 2, p, lam), "u2")),
    "u1": _Std(1, 1, _phase),
    "p": _Std(1, 1, _phase),
    "phase": _Std(1, 1, _phase),
    "u0": _Std(1, 1, lambda _gamma: cirq.I),  # Qiskit's u0: an identity (an idle of gamma)
    "rx": _Std(1, 1, cirq.rx),
    "ry": _Std(1, 1, cirq.ry),
    "rz": _Std(1, 1, cirq.rz),
    "crx": _Std(1, 2, lambda t: _controlled(cirq.rx(t))),
    "cry": _Std(1, 2, lambda t: _controlled(cirq.ry(t))),
    "crz": _Std(1, 2, lambda t: _controlled(cirq.rz(t))),
    "cu1": _Std(1, 2, lambda lam: cirq.CZPowGate(exponent=lam / math.pi)),
    "cp": _Std(1, 2, lambda lam: cirq.CZPowGate(exponent=lam / math.pi)),
    "cphase": _Std(1, 2, lambda lam: cirq.CZPowGate(exponent=lam / math.pi)),
    "cu3": _Std(3, 2, lambda t, p, lam: _controlled(_matrix(_u3(t, p, lam), "u3"))),
    "cu": _Std(
        4, 2, lambda t, p, lam, g: _controlled(_matrix(np.exp(1j * g) * _u3(t, p, lam), "u"))
    ),
    "rxx": _Std(1, 2, lambda t: cirq.XXPowGate(exponent=t / math.pi, global_shift=-0.5)),
    "rzz": _Std(1, 2, lambda t: cirq.ZZPowGate(exponent=t / math.pi, global_shift=-0.5)),
    "gphase": _Std(1, 0, lambda _gamma: None),  # a global phase: no effect on the state
}

# OpenQASM 3's stdgates.inc and builtins (the other names of STANDARD are qelib1.inc's: an
# OpenQASM 3 file may define them itself)
STDGATES = frozenset(
    "p x y z h s sdg t tdg sx rx ry rz cx cy cz cp crx cry crz ch swap ccx cswap cu CX phase "
    "cphase id u1 u2 u3 U gphase".split()
)
# the include files whose gates are built in
INCLUDES = ("qelib1.inc", "stdgates.inc")

# OpenQASM 3 statements outside the subset, and what they are
_REFUSED_WORDS = {
    "opaque": "an opaque gate has no definition to simulate",
    "defcal": "pulse-level calibrations cannot be simulated",
    "cal": "pulse-level calibrations cannot be simulated",
    "defcalgrammar": "pulse-level calibrations cannot be simulated",
    "extern": "an extern function has no definition to simulate",
    "def": "subroutines are not in the OpenQASM subset lret_runner reads",
    "for": "loops are not in the OpenQASM subset lret_runner reads",
    "while": "loops are not in the OpenQASM subset lret_runner reads",
    "switch": "switch statements are not in the OpenQASM subset lret_runner reads",
    "box": "boxes (timing) are not in the OpenQASM subset lret_runner reads",
    "input": "program inputs are not in the OpenQASM subset lret_runner reads",
    "output": "program outputs are not in the OpenQASM subset lret_runner reads",
    "let": "aliases are not in the OpenQASM subset lret_runner reads",
    "return": "subroutines are not in the OpenQASM subset lret_runner reads",
    "break": "loops are not in the OpenQASM subset lret_runner reads",
    "continue": "loops are not in the OpenQASM subset lret_runner reads",
    "pragma": "pragmas are not in the OpenQASM subset lret_runner reads",
    **{
        word: "classical variables are not in the OpenQASM subset lret_runner reads"
        for word in (
            "int",
            "uint",
            "float",
            "angle",
            "bool",
            "complex",
            "duration",
            "stretch",
            "const",
            "array",
        )
    },  # fmt: skip
    "ctrl": "gate modifiers (ctrl @, negctrl @, inv @, pow(k) @) are not supported",
    "negctrl": "gate modifiers (ctrl @, negctrl @, inv @, pow(k) @) are not supported",
    "inv": "gate modifiers (ctrl @, negctrl @, inv @, pow(k) @) are not supported",
    "pow": "gate modifiers (ctrl @, negctrl @, inv @, pow(k) @) are not supported",
}
_INSTEAD = (
    "write the circuit with gates, measure, reset, barrier and if only (Qiskit: "
    "qiskit.qasm2.dumps(transpile(circuit, basis_gates=[...])) writes such a file)"
)

_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "ln": math.log,
    "log": math.log, "sqrt": math.sqrt, "asin": math.asin, "acos": math.acos,
    "atan": math.atan, "arcsin": math.asin, "arccos": math.acos, "arctan": math.atan,
}  # fmt: skip
_CONSTANTS = {
    "pi": math.pi, "π": math.pi, "tau": math.tau, "τ": math.tau, "euler": math.e, "ℇ": math.e,
}  # fmt: skip

# ---------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n\f\v]+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<number>(?:\d[\d_]*\.[\d_]*|\.\d[\d_]*|\d[\d_]*)(?:[eE][+-]?\d+)?)
  | (?P<string>"[^"\n]*"|'[^'\n]*')
  | (?P<id>[A-Za-z_πτℇ][A-Za-z0-9_]*|\$\d+)
  | (?P<op>->|==|!=|\*\*|&&|\|\||<=|>=|<<|>>|\+\+|[\[\](){};,=+\-*/^@<>!~%&|:\#])
  | (?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)


class Token(NamedTuple):
    kind: str  # number, string, id, op, end
    text: str
    offset: int


def _tokens(text: str, fail: Callable[[int, str, str], Exception]) -> list[Token]:
    """The file's tokens (whitespace and comments dropped), then an ``end`` token."""
    out: list[Token] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "bad":
            pos = match.start()
            if text.startswith("/*", pos):
                raise fail(pos, "a /* comment is never closed", "close it with */")
            char = text[pos]
            shown = repr(char) if not char.isprintable() else f"'{char}'"
            raise fail(pos, f"unexpected character {shown}", "remove it or fix the statement")
        if kind not in ("space", "comment"):
            out.append(Token(kind or "", match.group(), match.start()))
    out.append(Token("end", "", len(text)))
    return out


# ---------------------------------------------------------------------------- expressions

Expr = Callable[[dict[str, float]], float]


@dataclass
class GateDef:
    """A user-defined gate: parameter names, qubit names, body (each call's gate name,
    parameter expressions and qubit names)."""

    name: str
    params: list[str]
    qubits: list[str]
    body: list[tuple[str, list[Expr], list[str]]] = field(default_factory=list)


@dataclass(frozen=True)
class Register:
    name: str
    start: int  # index of its first qubit (or bit) in declaration order
    size: int
    single: bool  # an OpenQASM 3 ``qubit q;`` / ``bit c;``: no index

    def label(self, i: int) -> str:
        return self.name if self.single else f"{self.name}[{i}]"


class Parser:
    """One file's reader; :func:`parse` is its entry point."""

    def __init__(self, text: str, where: str, max_operations: int) -> None:
        self.text = text
        self.where = where
        self.max_operations = max_operations
        self.version = 2
        self.qregs: dict[str, Register] = {}
        self.cregs: dict[str, Register] = {}
        self.gates: dict[str, GateDef] = {}
        self.n_qubits = 0
        self.n_bits = 0
        self.physical: set[int] = set()
        self.statement = 0  # offset where the current statement starts
        # the schedule: per-qubit next free moment; per-bit last write and last read
        self.moments: list[list[cirq.Operation]] = []
        self.free: dict[int, int] = {}
        self.written: dict[int, int] = {}
        self.read: dict[int, int] = {}
        self.count = 0
        self.tokens = _tokens(text, self._error_at)
        self.last = len(self.tokens) - 1  # the end token
        self.pos = 0

    # ------------------------------------------------------------------ errors

    def _error_at(self, offset: int, what: str, todo: str) -> CircuitError:
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        line_start = self.text.rfind("\n", 0, offset) + 1
        start = max(self.statement, line_start) if self.statement <= offset else line_start
        end = self.text.find("\n", offset)
        statement = self.text[start : len(self.text) if end < 0 else end]
        statement = " ".join("".join(c if c.isprintable() else " " for c in statement).split())
        if len(statement) > 100:
            statement = statement[:97] + "..."
        shown = f": `{statement}`" if statement else " (end of file)"
        todo = todo[:1].upper() + todo[1:]
        return CircuitError(f"{self.where}: line {line}, column {column}{shown}: {what}. {todo}")

    def fail(self, token: Token, what: str, todo: str = "fix the file") -> CircuitError:
        """The error at ``token`` (at the end of the last statement for the end of file)."""
        if token.kind == "end" and len(self.tokens) > 1:
            last = self.tokens[-2]
            return self._error_at(last.offset + len(last.text), what, todo)
        return self._error_at(token.offset, what, todo)

    # ------------------------------------------------------------------ token helpers

    def peek(self, ahead: int = 0) -> Token:
        i = self.pos + ahead
        return self.tokens[i] if i < self.last else self.tokens[self.last]

    def next(self) -> Token:
        token = self.peek()
        self.pos += 1
        return token

    def accept(self, text: str) -> Token | None:
        if self.peek().text == text and self.peek().kind in ("op", "id"):
            return self.next()
        return None

    def expect(self, text: str, what: str | None = None) -> Token:
        token = self.peek()
        if token.text != text or token.kind not in ("op", "id"):
            found = "the end of the file" if token.kind == "end" else f"'{token.text}'"
            raise self.fail(token, f"expected '{text}'{what or ''}, found {found}")
        return self.next()

    def identifier(self, what: str) -> Token:
        token = self.peek()
        if token.kind != "id":
            found = "the end of the file" if token.kind == "end" else f"'{token.text}'"
            raise self.fail(token, f"expected {what}, found {found}")
        return self.next()

    def integer(self, what: str) -> int:
        token = self.peek()
        if token.kind != "number" or not token.text.replace("_", "").isdigit():
            raise self.fail(token, f"expected {what} (a whole number), found '{token.text}'")
        self.next()
        return int(token.text.replace("_", ""))

    # ------------------------------------------------------------------ program

    def parse(self) -> cirq.Circuit:
        if self.peek().text == "OPENQASM":
            self.statement = self.peek().offset
            self.next()
            version = self.next()
            if version.kind != "number" or version.text not in ("2.0", "2", "3", "3.0"):
                raise self.fail(
                    version,
                    f"OpenQASM version '{version.text}' is not supported",
                    "lret_runner reads OpenQASM 2.0 and an OpenQASM 3 subset",
                )
            self.version = 3 if version.text.startswith("3") else 2
            self.expect(";")
        while self.peek().kind != "end":
            self.statement = self.peek().offset
            self.statement_()
        return cirq.Circuit(cirq.Moment(ops) for ops in self.moments)

    def statement_(self) -> None:
        token = self.peek()
        word = token.text if token.kind in ("id", "op") else ""
        if word == "#":
            word = "pragma"
        # OpenQASM 3's keywords are ordinary names in OpenQASM 2 (but for opaque)
        if word in _REFUSED_WORDS and (self.version == 3 or word == "opaque"):
            raise self.fail(token, f"'{token.text}': {_REFUSED_WORDS[word]}", _INSTEAD)
        handler = {
            "include": self.include,
            "qreg": self.qreg,
            "creg": self.creg,
            "qubit": self.qubit,
            "bit": self.bit,
            "gate": self.gate_definition,
            "barrier": self.barrier,
            "reset": self.reset,
            "measure": self.measure,
            "if": self.if_,
            "delay": self.delay,
            "OPENQASM": lambda: self._misplaced_header(),
        }.get(word)
        if handler is not None:
            handler()
            return
        if token.kind == "id" and self.peek(1).text in ("=", "["):
            self.assignment()
            return
        if token.kind == "id":
            self.gate_call()
            return
        raise self.fail(token, f"unexpected '{token.text}' at the start of a statement")

    def _misplaced_header(self) -> None:
        raise self.fail(self.peek(), "the OPENQASM header must be the first statement")

    # ------------------------------------------------------------------ declarations

    def include(self) -> None:
        self.next()
        token = self.next()
        if token.kind != "string":
            raise self.fail(token, "include needs a file name in quotes")
        name = token.text[1:-1]
        if name not in INCLUDES:
            raise self.fail(
                token,
                f"include '{name}': only qelib1.inc and stdgates.inc are known",
                "paste the gate definitions of that file into this one",
            )
        self.expect(";")

    def _declare(self, quantum: bool) -> None:
        """``qreg q[n];`` / ``creg c[n];`` (OpenQASM 2)."""
        self.next()
        name = self.identifier("a register name")
        self.expect("[")
        size = self.integer("the register size")
        self.expect("]")
        self._register(name, size, quantum, False)
        self.expect(";")

    def _register(self, token: Token, size: int, quantum: bool, single: bool) -> None:
        name = token.text
        if name in self.qregs or name in self.cregs or name in self.gates or name in STANDARD:
            raise self.fail(token, f"the name '{name}' is already used", "rename the register")
        if size < 1 or size > MAX_REGISTER:
            raise self.fail(
                token,
                f"register '{name}' has size {size}: a register holds 1 to {MAX_REGISTER}",
                "declare a register of that size or less",
            )
        if quantum and self.physical:
            raise self.fail(token, "a file uses either declared qubits or physical qubits ($n)")
        if quantum:
            self.qregs[name] = Register(name, self.n_qubits, size, single)
            self.n_qubits += size
        else:
            self.cregs[name] = Register(name, self.n_bits, size, single)
            self.n_bits += size

    def qreg(self) -> None:
        self._declare(True)

    def creg(self) -> None:
        self._declare(False)

    def _v3_declaration(self, quantum: bool) -> None:
        keyword = self.next()
        size, single = 1, True
        if self.accept("["):
            size, single = self.integer("the register size"), False
            self.expect("]")
        name = self.identifier("a register name")
        self._register(name, size, quantum, single)
        if not quantum and self.peek().text == "=":
            raise self.fail(
                self.peek(),
                f"'{keyword.text} {name.text} = ...': classical assignments are not in the "
                "OpenQASM subset lret_runner reads",
                _INSTEAD,
            )
        self.expect(";")

    def qubit(self) -> None:
        self._v3_declaration(True)

    def bit(self) -> None:
        self._v3_declaration(False)

    def gate_definition(self) -> None:
        self.next()
        name = self.identifier("a gate name")
        builtin = STDGATES if self.version == 3 else STANDARD
        if name.text in builtin or name.text in self.gates:
            # a file may restate a gate of its include file (Qiskit writes some): the
            # built-in one is used; OpenQASM 3 defines the qelib1.inc names it lacks
            self._skip_body()
            return
        params: list[str] = []
        if self.accept("("):
            if not self.accept(")"):
                params.append(self.identifier("a parameter name").text)
                while self.accept(","):
                    params.append(self.identifier("a parameter name").text)
                self.expect(")")
        qubits = [self.identifier("a qubit argument").text]
        while self.accept(","):
            qubits.append(self.identifier("a qubit argument").text)
        for names, what in ((params, "parameter"), (qubits, "qubit argument")):
            if len(set(names)) != len(names):
                raise self.fail(name, f"gate '{name.text}' repeats a {what} name")
        definition = GateDef(name.text, params, qubits)
        self.expect("{")
        while not self.accept("}"):
            token = self.peek()
            if token.kind == "end":
                raise self.fail(token, f"the body of gate '{name.text}' is not closed with '}}'")
            if token.text in _REFUSED_WORDS and self.version == 3:
                raise self.fail(token, f"'{token.text}': {_REFUSED_WORDS[token.text]}", _INSTEAD)
            if token.text == "barrier":  # no effect inside a gate
                while not self.accept(";"):
                    if self.next().kind == "end":
                        raise self.fail(token, "expected ';'")
                continue
            call = self.identifier("a gate")
            if self.peek().text == "@":
                raise self.fail(call, f"'{call.text} @': {_REFUSED_WORDS['ctrl']}", _INSTEAD)
            exprs = self.parameters(set(params))
            args = []
            if self.peek().text != ";":
                args.append(self.identifier("a qubit argument"))
                while self.accept(","):
                    args.append(self.identifier("a qubit argument"))
            self.expect(";")
            for arg in args:
                if arg.text not in qubits:
                    raise self.fail(arg, f"'{arg.text}' is not a qubit argument of '{name.text}'")
            self._check_signature(call, len(exprs), len(args))
            definition.body.append((call.text, exprs, [a.text for a in args]))
        self.gates[name.text] = definition

    def _skip_body(self) -> None:
        while not self.accept("{"):
            if self.next().kind == "end":
                raise self.fail(self.peek(), "a gate definition needs a body in braces")
        depth = 1
        while depth:
            token = self.next()
            if token.kind == "end":
                raise self.fail(token, "a gate body is not closed with '}'")
            depth += {"{": 1, "}": -1}.get(token.text, 0)

    def _check_signature(self, call: Token, n_params: int, n_qubits: int) -> None:
        known = self.gates.get(call.text)
        std = None if known else STANDARD.get(call.text)
        if std is None and known is None:
            raise self.fail(
                call,
                f"unknown gate '{call.text}'",
                "define it with a gate statement before its first use, or use a gate of "
                "qelib1.inc / stdgates.inc",
            )
        want_p = std.params if std else len(known.params)  # type: ignore[union-attr]
        want_q = std.qubits if std else len(known.qubits)  # type: ignore[union-attr]
        if n_params != want_p:
            raise self.fail(call, f"'{call.text}' takes {want_p} parameter(s), got {n_params}")
        if n_qubits != want_q and not (call.text == "gphase" and n_qubits == 0):
            raise self.fail(call, f"'{call.text}' acts on {want_q} qubit(s), got {n_qubits}")

    # ------------------------------------------------------------------ expressions

    def parameters(self, names: set[str]) -> list[Expr]:
        if not self.accept("("):
            return []
        if self.accept(")"):
            return []
        out = [self.expression(names)]
        while self.accept(","):
            out.append(self.expression(names))
        self.expect(")")
        return out

    def expression(self, names: set[str]) -> Expr:
        left = self.term(names)
        while self.peek().text in ("+", "-") and self.peek().kind == "op":
            op = self.next().text
            right = self.term(names)
            left = (
                (lambda a, b: lambda e: a(e) + b(e))(left, right)
                if op == "+"
                else (lambda a, b: lambda e: a(e) - b(e))(left, right)
            )
        return left

    def term(self, names: set[str]) -> Expr:
        left = self.unary(names)
        while self.peek().text in ("*", "/") and self.peek().kind == "op":
            op = self.next()
            right = self.unary(names)
            if op.text == "*":
                left = (lambda a, b: lambda e: a(e) * b(e))(left, right)
            else:
                left = (lambda a, b, t: lambda e: self._divide(a(e), b(e), t))(left, right, op)
        return left

    def _values(self, exprs: list[Expr], env: dict[str, float], token: Token) -> list[float]:
        """The parameters' values; an overflow or a value that is not a finite real number
        is an error at ``token``."""
        out = []
        for expr in exprs:
            try:
                value = expr(env)
            except (ArithmeticError, TypeError) as exc:
                raise self.fail(token, f"a parameter cannot be computed ({exc})") from None
            if not math.isfinite(value):
                raise self.fail(token, f"a parameter is {value}, not a finite number")
            out.append(value)
        return out

    def _divide(self, a: float, b: float, token: Token) -> float:
        if b == 0:
            raise self.fail(token, "division by zero in a parameter")
        return a / b

    def unary(self, names: set[str]) -> Expr:
        """A sign binds less tightly than a power: ``-x^2`` is ``-(x^2)``."""
        if self.accept("-"):
            inner = self.unary(names)
            return lambda e: -inner(e)
        if self.accept("+"):
            return self.unary(names)
        return self.power(names)

    def power(self, names: set[str]) -> Expr:
        base = self.atom(names)
        if self.peek().text in ("^", "**"):
            self.next()
            exponent = self.unary(names)  # right-associative, may carry a sign: 2^-1
            return lambda e: float(base(e) ** exponent(e))
        return base

    def atom(self, names: set[str]) -> Expr:
        token = self.next()
        if token.kind == "number":
            value = float(token.text.replace("_", ""))
            return lambda e: value
        if token.text == "(":
            inner = self.expression(names)
            self.expect(")")
            return inner
        if token.kind == "id":
            if token.text in _CONSTANTS:
                value = _CONSTANTS[token.text]
                return lambda e: value
            if token.text in _FUNCTIONS:
                function = _FUNCTIONS[token.text]
                self.expect("(", f" after '{token.text}'")
                inner = self.expression(names)
                self.expect(")")
                return lambda e: self._apply(function, inner(e), token)
            if token.text in names:
                name = token.text
                return lambda e: e[name]
            raise self.fail(token, f"unknown name '{token.text}' in a parameter expression")
        found = "the end of the file" if token.kind == "end" else f"'{token.text}'"
        raise self.fail(token, f"expected a parameter expression, found {found}")

    def _apply(self, function: Callable[[float], float], x: float, token: Token) -> float:
        try:
            return function(x)
        except (ValueError, OverflowError) as exc:
            raise self.fail(token, f"{token.text}({x:g}) is undefined ({exc})") from None

    # ------------------------------------------------------------------ operands

    def operand(self) -> tuple[Token, list[int]]:
        """A qubit operand: ``q[i]``, ``q`` (the whole register) or ``$n``."""
        token = self.identifier("a qubit")
        if token.text.startswith("$"):
            if self.qregs:
                raise self.fail(token, "a file uses either declared qubits or physical qubits ($n)")
            index = int(token.text[1:])
            if index >= MAX_REGISTER:
                raise self.fail(token, f"physical qubit {token.text} is beyond ${MAX_REGISTER - 1}")
            self.physical.add(index)
            return token, [-1 - index]  # resolved to LineQubit(index) (see qubit())
        register = self.qregs.get(token.text)
        if register is None:
            what = "a classical register" if token.text in self.cregs else "not declared"
            raise self.fail(token, f"'{token.text}' is {what}: expected a qubit")
        return token, self._indices(token, register)

    def bits(self) -> tuple[Token, list[int]]:
        token = self.identifier("a classical bit")
        register = self.cregs.get(token.text)
        if register is None:
            what = "a quantum register" if token.text in self.qregs else "not declared"
            raise self.fail(token, f"'{token.text}' is {what}: expected a classical bit")
        return token, self._indices(token, register)

    def _indices(self, token: Token, register: Register) -> list[int]:
        if not self.accept("["):
            return [register.start + i for i in range(register.size)]
        index_token = self.peek()
        index = self.integer("an index")
        self.expect("]")
        if register.single or index >= register.size:
            size = "a single (qu)bit" if register.single else f"size {register.size}"
            raise self.fail(
                index_token,
                f"index {index} is out of range for '{register.name}' ({size})",
                f"use an index from 0 to {register.size - 1}"
                if not register.single
                else f"write '{register.name}' without an index",
            )
        return [register.start + index]

    def qubit_of(self, index: int) -> cirq.LineQubit:
        return cirq.LineQubit(-1 - index if index < 0 else index)

    def qubit_label(self, index: int) -> str:
        if index < 0:
            return f"${-1 - index}"
        for register in self.qregs.values():
            if register.start <= index < register.start + register.size:
                return register.label(index - register.start)
        return f"q{index}"  # pragma: no cover (every index comes from a register)

    def bit_key(self, index: int) -> str:
        for register in self.cregs.values():
            if register.start <= index < register.start + register.size:
                return register.label(index - register.start)
        raise AssertionError(index)  # pragma: no cover

    def _broadcast(self, operands: list[tuple[Token, list[int]]]) -> list[list[int]]:
        """Each application's qubits: registers of one size broadcast together."""
        sizes = {len(q) for _, q in operands if len(q) > 1}
        if len(sizes) > 1:
            token = next(t for t, q in operands if len(q) > 1)
            raise self.fail(token, f"registers of different sizes {sorted(sizes)} in one statement")
        n = sizes.pop() if sizes else 1
        return [[q[i] if len(q) > 1 else q[0] for _, q in operands] for i in range(n)]

    # ------------------------------------------------------------------ schedule

    def place(
        self,
        op: cirq.Operation,
        qubits: Sequence[int],
        token: Token,
        reads: Sequence[int] = (),
        writes: Sequence[int] = (),
    ) -> None:
        """Put ``op`` in the earliest moment its qubits and classical bits allow."""
        at = max((self.free.get(q, 0) for q in qubits), default=0)
        at = max([at] + [self.written[b] + 1 for b in reads if b in self.written])
        at = max([at] + [self.read[b] + 1 for b in writes if b in self.read])
        at = max([at] + [self.written[b] + 1 for b in writes if b in self.written])
        while len(self.moments) <= at:
            self.moments.append([])
        self.moments[at].append(op)
        for q in qubits:
            self.free[q] = at + 1
        for b in reads:
            self.read[b] = max(self.read.get(b, 0), at)
        for b in writes:
            self.written[b] = at

    def barrier(self) -> None:
        self.next()
        qubits: list[int] = []
        if self.peek().text != ";":
            qubits += self.operand()[1]
            while self.accept(","):
                qubits += self.operand()[1]
        else:  # a barrier on no operand is a barrier on every qubit
            qubits = list(range(self.n_qubits)) + [-1 - i for i in self.physical]
        self.expect(";")
        line = max((self.free.get(q, 0) for q in qubits), default=0)
        for q in qubits:
            self.free[q] = line

    def delay(self) -> None:
        self.next()
        if self.accept("["):  # OpenQASM 3: delay[duration]
            while not self.accept("]"):
                if self.next().kind == "end":
                    raise self.fail(self.peek(), "expected ']'")
        else:
            self.parameters(set())
        self.operand()
        while self.accept(","):
            self.operand()
        self.expect(";")

    # ------------------------------------------------------------------ operations

    def gate_call(self, condition: _Condition | None = None) -> None:
        call = self.identifier("a gate")
        if self.peek().text == "@":
            raise self.fail(call, f"'{call.text} @': {_REFUSED_WORDS['ctrl']}", _INSTEAD)
        exprs = self.parameters(set())
        operands: list[tuple[Token, list[int]]] = []
        if self.peek().text != ";":
            operands.append(self.operand())
            while self.accept(","):
                operands.append(self.operand())
        self.expect(";")
        self._check_signature(call, len(exprs), len(operands))
        values = self._values(exprs, {}, call)
        for qubits in self._broadcast(operands) if operands else [[]]:
            if len(set(qubits)) != len(qubits):
                labels = ", ".join(self.qubit_label(q) for q in qubits)
                raise self.fail(call, f"'{call.text}' is applied to one qubit twice ({labels})")
            self.apply(call.text, values, qubits, call, condition)

    def apply(
        self,
        name: str,
        values: list[float],
        qubits: list[int],
        token: Token,
        condition: _Condition | None,
    ) -> None:
        self.count += 1
        if self.count > self.max_operations:
            raise self.fail(
                token,
                f"the circuit has more than {self.max_operations:,} operations (custom gates "
                "expanded)",
                "shorten the circuit",
            )
        std = None if name in self.gates else STANDARD.get(name)
        if std is not None:
            gate = std.make(*values)
            if gate is None:
                return
            op = gate.on(*(self.qubit_of(q) for q in qubits))
            if condition is not None:
                op = op.with_classical_controls(condition.cirq)
            self.place(op, qubits, token, reads=condition.bits if condition else ())
            return
        definition = self.gates[name]
        env = dict(zip(definition.params, values, strict=True))
        where = dict(zip(definition.qubits, qubits, strict=True))
        for call, exprs, args in definition.body:
            inner = self._values(exprs, env, token)
            self.apply(call, inner, [where[a] for a in args], token, condition)

    def reset(self, condition: _Condition | None = None) -> None:
        keyword = self.next()
        operands = [self.operand()]
        self.expect(";")
        for [q] in self._broadcast(operands):
            op = cirq.ResetChannel().on(self.qubit_of(q))
            if condition is not None:
                op = op.with_classical_controls(condition.cirq)
            self.place(op, [q], keyword, reads=condition.bits if condition else ())

    def measure(self) -> None:
        keyword = self.next()
        source = self.operand()
        if not self.accept("->"):
            raise self.fail(
                self.peek(),
                "a measurement needs a classical bit to record its result "
                "('measure q[0] -> c[0];' or 'c[0] = measure q[0];')",
            )
        target = self.bits()
        self.expect(";")
        self._measure(keyword, source, target)

    def assignment(self) -> None:
        """``c[i] = measure q[j];`` / ``c = measure q;`` (OpenQASM 3)."""
        first = self.peek()
        if first.text not in self.cregs:
            if first.text in self.qregs or first.text in self.gates or first.text in STANDARD:
                self.gate_call()
                return
            raise self.fail(first, f"'{first.text}' is not declared")
        target = self.bits()
        self.expect("=")
        keyword = self.peek()
        if keyword.text != "measure":
            raise self.fail(
                keyword,
                "classical assignments other than '= measure' are not in the OpenQASM subset "
                "lret_runner reads",
                _INSTEAD,
            )
        self.next()
        source = self.operand()
        self.expect(";")
        self._measure(keyword, source, target)

    def _measure(
        self,
        keyword: Token,
        source: tuple[Token, list[int]],
        target: tuple[Token, list[int]],
    ) -> None:
        if len(source[1]) != len(target[1]):
            raise self.fail(
                keyword,
                f"measures {len(source[1])} qubit(s) into {len(target[1])} bit(s)",
                "measure a register into a classical register of the same size",
            )
        for q, b in zip(source[1], target[1], strict=True):
            op = cirq.measure(self.qubit_of(q), key=self.bit_key(b)).with_tags(ClassicalBit(b))
            self.place(op, [q], keyword, writes=[b])

    # ------------------------------------------------------------------ classical control

    def if_(self) -> None:
        self.next()
        self.expect("(")
        condition = self.condition()
        self.expect(")")
        if self.version == 2:
            self._controlled(condition)
            return
        self._block(condition)
        if self.accept("else"):
            self._block(condition.negated())

    def _block(self, condition: _Condition) -> None:
        if self.accept("{"):
            while not self.accept("}"):
                if self.peek().kind == "end":
                    raise self.fail(self.peek(), "the if block is not closed with '}'")
                self._controlled(condition)
        else:
            self._controlled(condition)

    def _controlled(self, condition: _Condition) -> None:
        token = self.peek()
        if token.text == "measure" or (token.text in self.cregs and self.peek(1).text in "=["):
            raise self.fail(
                token,
                "a classically controlled measurement is not supported",
                "measure unconditionally (the if can control the gates after it)",
            )
        if token.text == "reset":
            self.reset(condition)
        elif token.text == "if":
            raise self.fail(
                token, "nested if statements are not supported", "combine the conditions"
            )
        elif token.text == "barrier":
            self.barrier()
        elif token.kind == "id" and (self.version == 2 or token.text not in _REFUSED_WORDS):
            self.gate_call(condition)
        else:
            raise self.fail(
                token,
                f"'{token.text}' cannot be classically controlled",
                "an if statement controls gates, measure and reset",
            )

    def condition(self) -> _Condition:
        negate = bool(self.accept("!"))
        token, bits = self.bits()
        if negate or self.peek().text not in ("==", "!="):
            if len(bits) != 1:
                raise self.fail(token, f"'{token.text}' needs a comparison ('{token.text} == k')")
            value, equal = 1, not negate
        else:
            equal = self.next().text == "=="
            value = self.integer("the value to compare with")
        if value >= 2 ** len(bits) or value < 0:
            raise self.fail(
                token,
                f"'{token.text}' has {len(bits)} bit(s): it never equals {value}",
                f"compare with 0 to {2 ** len(bits) - 1}",
            )
        return _Condition(tuple(bits), value, equal, tuple(self.bit_key(b) for b in bits))


@dataclass(frozen=True)
class ClassicalBit:
    """The tag of a measurement: the position of the bit it writes in the file's declaration
    order (the order of the run's outcome bits, whatever the order of operations after noise
    is added)."""

    index: int

    def __str__(self) -> str:
        return f"bit {self.index}"


@dataclass(frozen=True)
class _Condition:
    """Bits read as an integer (bit ``i`` of the tuple is worth 2^i) compared with a value."""

    bits: tuple[int, ...]
    value: int
    equal: bool
    keys: tuple[str, ...]

    def negated(self) -> _Condition:
        return _Condition(self.bits, self.value, not self.equal, self.keys)

    @property
    def cirq(self) -> cirq.Condition:
        symbols = [sympy.Symbol(key) for key in self.keys]
        total = sum((2**i * s for i, s in enumerate(symbols)), sympy.Integer(0))
        relation = sympy.Eq if self.equal else sympy.Ne
        return cirq.SympyCondition(relation(total, self.value))


def parse(text: str, where: str, max_operations: int) -> cirq.Circuit:
    """The circuit of an OpenQASM program; ``where`` (``circuit.path='...'``) starts every
    error message."""
    return Parser(text, where, max_operations).parse()
