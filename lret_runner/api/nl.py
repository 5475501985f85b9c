"""A deterministic natural-language front door: a request in plain words to an experiment.

``parse("run a 10 qubit ghz circuit with 1% depolarizing noise on lret with 1000 shots")``
gives the body of ``POST /experiments`` (one section per config group, holding only what
the sentence says), the config keys to sweep, notes of what was understood and what is
missing; :func:`to_overrides` gives the ``python -m lret_runner`` overrides that run it.

No model and no network: a few regular expressions and tables of synonyms. The request is
read in passes, each blanking out what it mapped so that no word or number is read twice:

1. named values: a session (``session NAME``), a QASM file (``FILE.qasm``);
2. phrases with a fixed meaning: the exact comparison on or off, the noise placement;
3. names of options (:data:`OPTIONS`): circuit families, noise models, simulators. Two
   simulators are a comparison, a sweep over ``simulator.name``;
4. numbers, alone, as lists (``8, 10 and 12``) or ranges (``from 4 to 10 step 2``), by the
   most specific rule (:data:`QUANTITIES`): a number followed by a unit (``10 qubits``,
   ``1000 shots``, ``20 layers``) is that quantity; else one after a keyword (``depth 20``,
   ``seed 3``, ``noise levels 0.001, 0.01``); else a probability (``1%``, ``0.01``) is the
   noise level. Several values of one quantity are a sweep.

Generic settings (``depth``, ``level``) become the chosen option's own key: ``depth`` is
``layers`` for the layered circuit and ``p`` for QAOA, ``level`` is ``readout_error`` for
readout noise. A depth with no circuit family named means the random circuit. Nothing
raises on user text: what cannot be mapped is listed in :attr:`Parsed.missing`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

GROUPS = ("circuit", "noise", "simulator")  # the config groups a request chooses from
SWEPT_GROUPS = ("simulator",)  # naming several of these is a comparison (a sweep)


class Option(NamedTuple):
    """An option of a config group: the words naming it (a regular expression) and the
    generic settings it takes, mapped to its own keys."""

    words: str
    keys: dict[str, str]


_SIZED = {"n_qubits": "n_qubits"}
_SEEDED = {"n_qubits": "n_qubits", "seed": "seed"}
_CHANNEL = {"level": "level", "placement": "placement"}

OPTIONS: dict[str, dict[str, Option]] = {
    "circuit": {
        "ghz": Option(r"ghz", _SIZED),
        "qft": Option(r"qft|(?:quantum\s+)?fourier(?:\s+transform)?", _SIZED),
        "qaoa": Option(r"qaoa|max[-\s]?cut", {**_SEEDED, "depth": "p"}),
        "vqe": Option(r"vqe|ansatz", {**_SEEDED, "depth": "depth"}),
        "random": Option(r"random(?!\s+seeds?\b)|brickwork", {**_SEEDED, "depth": "depth"}),
        "layered": Option(r"layered", {**_SEEDED, "depth": "layers"}),
        "grover": Option(r"grover(?:'?s)?", _SEEDED),
        "qasm": Option(r"(?:open)?qasm", {"path": "path"}),
        "architecture": Option(r"architecture", _SIZED),
    },
    "noise": {
        "none": Option(
            r"noiseless|noise[-\s]?free|no\s+noise|without\s+(?:any\s+)?noise|ideal", {}
        ),
        "depolarizing": Option(r"depolari[sz](?:ing|ation)|depol", _CHANNEL),
        "amplitude_damping": Option(r"amplitude[-_\s]?damping|t1\s+decay", _CHANNEL),
        "phase_damping": Option(r"phase[-_\s]?damping|dephasing", _CHANNEL),
        "bit_flip": Option(r"bit[-_\s]?flips?", _CHANNEL),
        "phase_flip": Option(r"phase[-_\s]?flips?", _CHANNEL),
        "thermal": Option(r"thermal(?:\s+relaxation)?", {"placement": "placement"}),
        "readout": Option(
            r"readout(?:\s+errors?)?|measurement\s+errors?", {"level": "readout_error"}
        ),
        # a real device's calibrated noise (noise.device: the default snapshot)
        "device": Option(r"(?:real(?:istic)?\s+)?device", {}),
    },
    "simulator": {
        "lret": Option(r"lret|low[-\s]?rank", {}),
        "fdm": Option(r"fdm|exact|(?:full\s+)?density[-\s]matrix|dense", {}),
        "cirq": Option(r"cirq", {}),
        "auto": Option(r"auto", {}),
    },
}

KINDS = {"circuit": "circuit family", "noise": "noise model", "simulator": "simulator"}
EXAMPLES = {  # what to suggest when a group's option is needed and not named
    "circuit": "ghz, qft, random, layered, qaoa, vqe, grover, qasm, ...",
    "noise": "depolarizing, amplitude damping, phase damping, bit flip, ...",
}

# named values: a dotted key and a pattern whose group "value" is the value
CAPTURES = (
    (
        "session",
        r"\bsession\s*(?:[=:]|named|called)?\s*[\"']?"
        r"(?!(?:with|and|on|for|at|of|in|to)\b)(?P<value>[A-Za-z0-9][A-Za-z0-9_.-]*)[\"']?",
    ),
    ("circuit.path", r"(?<![\w./~-])(?P<value>[\w./~-]*\w\.qasm)\b"),
)

# phrases with a fixed meaning: (dotted key, pattern, value), read in this order
PHRASES: tuple[tuple[str, str, Any], ...] = (
    (
        "run.compare_to_exact",
        r"\b(?:no|without|skip(?:ping)?(?:\s+the)?)\s+(?:exact\s+comparison|exact\s+fidelity)\b",
        False,
    ),
    (
        "run.compare_to_exact",
        r"\bcompare_to_exact\b|\b(?:compared?|comparison)\s+(?:to|with|against)\s+(?:the\s+)?"
        r"exact\b|\bexact\s+comparison\b|\bexact\s+fidelity\b",
        True,
    ),
    (
        "noise.placement",
        r"\b(?:(?:after|on|at|per)\s+(?:every|each)\s+moment|per[-\s]moment|placement\s*[=:]?"
        r"\s*moment|idle(?:\s+(?:noise|qubits?))?)\b",
        "moment",
    ),
    (
        "noise.placement",
        r"\b(?:(?:after|on|at|per)\s+(?:every|each)\s+gate|per[-\s]gate|placement\s*[=:]?\s*gate)\b",
        "gate",
    ),
)

WHOLE, PROBABILITY = "a whole number", "a probability between 0 and 1"


class Quantity(NamedTuple):
    """A number the request may give: its dotted key (``circuit.depth`` and ``noise.level``
    are generic, resolved by the chosen option), the keywords that may come before it, the
    units that may follow it, and its kind."""

    key: str
    before: str
    after: str | None
    kind: str


# in order of preference when a keyword could mean several (``p 2`` vs ``p 0.01``)
QUANTITIES = (
    Quantity("circuit.n_qubits", r"n_qubits|qubits?|n|width", r"qubits?|q", WHOLE),
    Quantity("run.shots", r"shots|samples", r"shots?|samples?", WHOLE),
    Quantity(
        "circuit.depth", r"depths?|layers|moments|rounds|p", r"layers?|moments?|rounds?", WHOLE
    ),
    Quantity("circuit.seed", r"circuit\s+seeds?", None, WHOLE),
    Quantity("run.seed", r"seeds?", None, WHOLE),
    Quantity("noise.level", r"levels?|rates?|strengths?|probabilit(?:y|ies)|p", None, PROBABILITY),
)
_LEVEL = QUANTITIES[-1]  # what a probability with no keyword is

# a number: 1,000 | 10 | 0.5% | 1e-3 | .5
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?(?:e-?\d{1,3})?%?|\.\d+%?)"
_SEP = r"(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+)"
_RANGE = (
    rf"(?:from\s+)?(?P<start>{_NUM})\s*(?:to|\.\.|-)\s*(?P<stop>{_NUM})"
    rf"(?:\s*,?\s*(?:in\s+)?(?:steps?|by)\s*(?:of\s+)?(?P<step>{_NUM}))?"
)
NUMBERS = re.compile(rf"(?<![\w.])(?:{_RANGE}|{_NUM}(?:{_SEP}(?:{_NUM}))*)(?!\.?\d)", re.I)
_CONNECTOR = r"\s*(?:[=:]|\b(?:of|is|to|equals?)\b)?\s*$"  # between a keyword and its numbers
_MAX_VALUES = 1000  # the longest range
_WINDOW = 40  # how far before its numbers a keyword is looked for
_BLANK = "\0"  # what replaces the text already mapped


@dataclass
class Parsed:
    """A parsed request: the experiment body, the sweep, and notes for the user."""

    experiment: dict[str, Any] = field(default_factory=dict)  # the body of POST /experiments
    sweep: dict[str, list[Any]] = field(default_factory=dict)  # dotted key -> values
    understood: list[str] = field(default_factory=list)  # what was mapped, one note each
    missing: list[str] = field(default_factory=list)  # what is needed or could not be mapped

    @property
    def ok(self) -> bool:
        """Nothing is missing: the request can run."""
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


class _Request:
    """The request being read: its text with what was mapped blanked out, the settings found
    (dotted key -> values, in order) and what could not be mapped."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.settings: dict[str, list[Any]] = {}
        self.missing: list[str] = []

    def take(self, pattern: str) -> list[re.Match[str]]:
        """The matches of ``pattern`` (case-insensitive), then blanked out."""
        found: list[re.Match[str]] = []

        def blank(m: re.Match[str]) -> str:
            found.append(m)
            return _BLANK * len(m[0])

        self.text = re.sub(pattern, blank, self.text, flags=re.IGNORECASE)
        return found

    def _blank(self, start: int, end: int) -> None:
        self.text = self.text[:start] + _BLANK * (end - start) + self.text[end:]

    def add(self, key: str, values: Iterable[Any]) -> None:
        self.settings.setdefault(key, []).extend(values)

    def names(self, options: dict[str, Option]) -> list[str]:
        """The options of a group the request names, in the order it names them."""
        found = [
            (m.start(), name)
            for name, option in options.items()
            for m in self.take(rf"\b(?:{option.words})\b")
        ]
        return list(dict.fromkeys(name for _, name in sorted(found)))

    def read_numbers(self) -> None:
        """Every run of numbers (a number, a list, a range) to the quantity it gives: a unit
        after it, else a keyword before it, else (a probability) the noise level."""
        for m in list(NUMBERS.finditer(self.text)):  # blanking keeps the positions
            values, text = _values(m), m[0]
            if not values:
                self.missing.append(
                    f"a range of whole numbers that counts up to at most {_MAX_VALUES} values, "
                    f"not {text!r}"
                )
                continue
            window = max(0, m.start() - _WINDOW)
            before = [
                q
                for q in QUANTITIES
                if re.search(rf"\b(?:{q.before}){_CONNECTOR}", self.text[window : m.start()], re.I)
            ]
            unit = self._unit(m.end(), keyworded=bool(before))
            if unit and before and len(values) > 1:  # "depth 20, 1000 shots"
                self._assign(values[:-1], text, before)
                values, before = values[-1:], []
            if all(isinstance(v, float) for v in values) and not before:
                before = [_LEVEL]
            candidates = [unit] if unit else before
            if candidates:
                self._assign(values, text, candidates)
            else:
                self.missing.append(f"what {text!r} is (say e.g. '{text} qubits', 'depth {text}')")

    def _unit(self, end: int, keyworded: bool) -> Quantity | None:
        """The quantity whose unit follows position ``end`` (the unit is then blanked: it
        names no other number), unless numbers with a keyword are followed by the keyword of
        the next ones (``qubits 10 shots 100``)."""
        for q in QUANTITIES:
            if q.after is None:
                continue
            pattern = rf"\s*-?\s*(?P<unit>{q.after})\b(?P<next>\s*[=:]?\s*\d)?"
            found = re.compile(pattern, re.I).match(self.text, end)
            if found and not (keyworded and found["next"]):
                self._blank(*found.span("unit"))
                return q
        return None

    def _assign(self, values: list[int | float], text: str, candidates: list[Quantity]) -> None:
        """``values`` to the first candidate quantity they all fit."""
        for q in candidates:
            if all(_fits(q.kind, v) for v in values):
                self.add(q.key, values if q.kind == WHOLE else [float(v) for v in values])
                return
        q = candidates[0]
        self.missing.append(f"{q.key.split('.')[-1]} as {q.kind}, not {text!r}")


def parse(text: str) -> Parsed:
    """The experiment ``text`` asks for (see the module docstring); never raises on it."""
    request = _Request(text)
    for key, pattern in CAPTURES:
        request.add(key, (m["value"] for m in request.take(pattern)))
    for key, pattern, value in PHRASES:
        request.add(key, (value for _ in request.take(pattern)))
    names = {group: request.names(options) for group, options in OPTIONS.items()}
    if request.settings["circuit.path"]:
        names["circuit"] = list(dict.fromkeys(["qasm", *names["circuit"]]))
    request.read_numbers()

    parsed = Parsed(missing=request.missing)
    settings = {k: list(dict.fromkeys(v)) for k, v in request.settings.items() if v}
    sessions = settings.pop("session", [])
    chosen = {group: _choose(group, names[group], settings, parsed) for group in GROUPS}
    for key, values in settings.items():
        _set(key, values, chosen, parsed)
    if len(sessions) > 1:
        parsed.missing.append(f"one session, not {_listing(sessions, ' and ')}")
    elif sessions:
        parsed.experiment["session"] = sessions[0]
        parsed.understood.append(f"session: {sessions[0]}")
    parsed.missing[:] = dict.fromkeys(parsed.missing)
    return parsed


def _fits(kind: str, value: int | float) -> bool:
    return isinstance(value, int) if kind == WHOLE else 0 <= value <= 1


def _values(m: re.Match[str]) -> list[int | float]:
    """The numbers of a match of :data:`NUMBERS` (none for a range that is not whole, does
    not count up or is too long)."""
    if m["start"] is None:
        return [_number(n) for n in re.findall(_NUM, m[0])]
    start, stop, step = (_number(m[k] or "1") for k in ("start", "stop", "step"))
    if not (isinstance(start, int) and isinstance(stop, int) and isinstance(step, int)):
        return []
    count = (stop - start) // step + 1 if step > 0 else 0
    return list(range(start, stop + 1, step)) if 0 < count <= _MAX_VALUES else []


def _number(text: str) -> int | float:
    """``10`` -> 10, ``1,000`` -> 1000, ``0.01`` -> 0.01, ``1%`` -> 0.01 (exact decimals)."""
    text = text.replace(",", "")
    if text.endswith("%"):
        return float(Decimal(text[:-1]) / 100)
    return int(text) if text.isdigit() and len(text) < 19 else float(text)  # 1e400 is inf


def _choose(
    group: str, names: list[str], settings: dict[str, list[Any]], parsed: Parsed
) -> str | None:
    """The option of ``group`` (None: none, or several swept), noted in ``parsed``."""
    if len(names) > 1 and group in SWEPT_GROUPS:
        parsed.sweep[f"{group}.name"] = names
        parsed.understood.append(f"compare {group}s: {_listing(names, ', ')}")
        return None
    if len(names) > 1:
        parsed.missing.append(f"one {KINDS[group]}, not {_listing(names, ' and ')}")
        return None
    if names:
        parsed.experiment[group] = {"name": names[0]}
        parsed.understood.append(f"{group}: {names[0]}")
        return names[0]
    if group == "circuit" and "circuit.depth" in settings:
        parsed.experiment[group] = {"name": "random"}
        parsed.understood.append("circuit: random (a depth is given and no circuit family)")
        return "random"
    if group == "circuit" or any(k.startswith(f"{group}.") for k in settings):
        parsed.missing.append(f"a {KINDS[group]} ({EXAMPLES[group]})")
    return None


def _set(key: str, values: list[Any], chosen: dict[str, str | None], parsed: Parsed) -> None:
    """One setting, by the chosen option's own key, into the experiment (one value) or the
    sweep (several); only noted when its group's option is missing."""
    section, generic = key.split(".", 1)
    option = chosen.get(section)  # None for run, and for a group whose option is missing
    actual = OPTIONS[section][option].keys.get(generic) if option else generic
    if actual is None:
        parsed.missing.append(f"{generic} is not a setting of {section} {option}")
        return
    dotted = f"{section}.{actual}"
    several = len(values) > 1
    parsed.understood.append(
        f"sweep {dotted}: {_listing(values, ', ')}" if several else f"{dotted}: {_text(values[0])}"
    )
    if section in chosen and option is None:
        return
    if several:
        parsed.sweep[dotted] = values
    else:
        parsed.experiment.setdefault(section, {})[actual] = values[0]


def to_overrides(parsed: Parsed) -> list[str]:
    """The Hydra overrides of ``python -m lret_runner`` that run ``parsed``: per group its
    choice (``circuit=ghz``), then its keys (``circuit.n_qubits=10``); swept values as comma
    lists (``circuit.n_qubits=8,10,12``, ``simulator=lret,cirq``), for ``-m``."""
    overrides = []
    for section in (*GROUPS, "run"):
        body = dict(parsed.experiment.get(section, {}))
        swept = {
            k.split(".", 1)[1]: v for k, v in parsed.sweep.items() if k.startswith(f"{section}.")
        }
        if "name" in body:
            overrides.append(f"{section}={_text(body.pop('name'))}")
        elif "name" in swept:
            overrides.append(f"{section}={_listing(swept.pop('name'), ',')}")
        overrides += [f"{section}.{k}={_text(v)}" for k, v in body.items()]
        overrides += [f"{section}.{k}={_listing(v, ',')}" for k, v in swept.items()]
    if "session" in parsed.experiment:
        overrides.append(f"session.name={parsed.experiment['session']}")
    return overrides


def _text(value: Any) -> str:
    """A value as an override writes it (booleans lower-case)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _listing(values: Sequence[Any], sep: str) -> str:
    return sep.join(_text(v) for v in values)
