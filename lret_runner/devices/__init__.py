"""Device descriptions: calibration data of a real device, as data, for ``noise=device``.

A device file (YAML or JSON) holds a device's calibration snapshot::

    name: fake_manila                # required: what messages and `device list` call it
    source: "..."                    # optional: where the numbers come from
    licence: Apache-2.0              # optional: the licence of the numbers
    n_qubits: 5                      # required: device qubits 0..n_qubits-1
    one_qubit_gate: sx               # optional (sx): the calibrated one-qubit gate
    two_qubit_gate: cx               # optional (cx): the calibrated two-qubit gate
    virtual_z: true                  # optional (true): rz, z, s, t... are frame changes
    qubits:                          # required: exactly n_qubits entries, qubit i is entry i
      - {t1: 1.3e-4, t2: 1.0e-4, prob_meas0_prep1: 0.055, prob_meas1_prep0: 0.016,
         gate_error: 1.6e-4, gate_duration: 3.6e-8}
    pairs:                           # required (may be empty): the coupling map
      - {qubits: [0, 1], gate_error: 8.8e-3, gate_duration: 2.8e-7}

Times are in seconds, rates are probabilities in [0, 1]; ``prob_meas0_prep1`` is P(read 0 |
prepared 1) and ``prob_meas1_prep0`` P(read 1 | prepared 0). A pair is **directed**:
``qubits: [a, b]`` calibrates a two-qubit gate whose first qubit (a CNOT's control) is
device qubit ``a``, as Qiskit lists ``cx (0, 1)`` and ``cx (1, 0)`` with their own
durations. A gate on ``(a, b)`` takes the ``[a, b]`` entry, else the ``[b, a]`` one; the
device couples ``a`` and ``b`` when either is listed.

:func:`load_device` reads and validates a file (a shipped snapshot by name, see
:func:`shipped`); every fault is a :class:`NoiseError` naming the file, the field and the
value. :func:`noise_model` builds the ``cirq.NoiseModel`` (:mod:`lret_runner.devices.model`,
which imports Cirq; this module does not, so ``lret-runner device list`` stays fast).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lret_runner.errors import NoiseError

if TYPE_CHECKING:
    from lret_runner.devices.model import DeviceNoiseModel

DATA_DIR = Path(__file__).resolve().parent / "data"
SUFFIXES = (".yaml", ".yml", ".json")
# the largest device file read (a 1000-qubit device is a few hundred kB)
MAX_FILE_BYTES = 16 * 2**20

QUBIT_KEYS = (
    "t1",  # energy relaxation time T1 (s)
    "t2",  # dephasing time T2 (s), <= 2 T1
    "prob_meas0_prep1",  # P(read 0 | prepared 1)
    "prob_meas1_prep0",  # P(read 1 | prepared 0)
    "gate_error",  # error of the one-qubit gate: 1 - average gate fidelity
    "gate_duration",  # duration of the one-qubit gate (s)
)
PAIR_KEYS = ("qubits", "gate_error", "gate_duration")
KEYS = (
    "name",
    "source",
    "licence",
    "n_qubits",
    "one_qubit_gate",
    "two_qubit_gate",
    "virtual_z",
    "qubits",
    "pairs",
)
REQUIRED = ("name", "n_qubits", "qubits", "pairs")
# the calibrated gates a file may name (Qiskit's names)
ONE_QUBIT_GATES = ("sx", "x", "rx", "u", "u2", "u3", "id")
TWO_QUBIT_GATES = ("cx", "cz", "ecr", "iswap", "rzz")


@dataclass(frozen=True)
class Qubit:
    """One device qubit's calibration (times in seconds)."""

    t1: float
    t2: float
    prob_meas0_prep1: float
    prob_meas1_prep0: float
    gate_error: float
    gate_duration: float


@dataclass(frozen=True)
class Pair:
    """A directed coupling: the two-qubit gate calibrated with its first qubit on ``qubits[0]``."""

    qubits: tuple[int, int]
    gate_error: float
    gate_duration: float


@dataclass(frozen=True)
class Device:
    """A validated device description (see the module docstring for the file format)."""

    name: str
    qubits: tuple[Qubit, ...]
    pairs: tuple[Pair, ...]
    one_qubit_gate: str = "sx"
    two_qubit_gate: str = "cx"
    virtual_z: bool = True
    source: str | None = None
    licence: str | None = None
    origin: str = field(default="<memory>", compare=False)  # the file it was read from

    @property
    def n_qubits(self) -> int:
        return len(self.qubits)

    @cached_property
    def _pairs(self) -> dict[tuple[int, int], Pair]:
        return {p.qubits: p for p in self.pairs}

    def pair(self, a: int, b: int) -> Pair | None:
        """The calibration of a two-qubit gate on device qubits ``(a, b)``: the ``[a, b]``
        entry, else the ``[b, a]`` one, else None (the device does not couple them)."""
        return self._pairs.get((a, b)) or self._pairs.get((b, a))

    def couplings(self) -> list[tuple[int, int]]:
        """The coupled device qubits, each pair once (smaller qubit first), sorted."""
        return sorted({(min(p.qubits), max(p.qubits)) for p in self.pairs})

    def scaled(self, scale: float) -> Device:
        """Every error rate (gate and readout) times ``scale``, T1 and T2 divided by it
        (infinite at scale 0: no relaxation). Rates are not clipped here."""
        if scale == 1:
            return self

        def time(t: float) -> float:
            return math.inf if scale == 0 else t / scale

        qubits = tuple(
            Qubit(
                t1=time(q.t1),
                t2=time(q.t2),
                prob_meas0_prep1=q.prob_meas0_prep1 * scale,
                prob_meas1_prep0=q.prob_meas1_prep0 * scale,
                gate_error=q.gate_error * scale,
                gate_duration=q.gate_duration,
            )
            for q in self.qubits
        )
        pairs = tuple(Pair(p.qubits, p.gate_error * scale, p.gate_duration) for p in self.pairs)
        return Device(
            self.name,
            qubits,
            pairs,
            self.one_qubit_gate,
            self.two_qubit_gate,
            self.virtual_z,
            self.source,
            self.licence,
            self.origin,
        )

    def to_dict(self) -> dict[str, Any]:
        """The file format (keys in the documented order; unset optional keys left out)."""
        out: dict[str, Any] = {"name": self.name}
        if self.source is not None:
            out["source"] = self.source
        if self.licence is not None:
            out["licence"] = self.licence
        out.update(
            n_qubits=self.n_qubits,
            one_qubit_gate=self.one_qubit_gate,
            two_qubit_gate=self.two_qubit_gate,
            virtual_z=self.virtual_z,
            qubits=[{k: getattr(q, k) for k in QUBIT_KEYS} for q in self.qubits],
            pairs=[
                {
                    "qubits": list(p.qubits),
                    "gate_error": p.gate_error,
                    "gate_duration": p.gate_duration,
                }
                for p in self.pairs
            ],
        )
        return out

    def summary(self) -> dict[str, Any]:
        """What ``lret-runner device list`` shows of it."""
        return {
            "name": self.name,
            "n_qubits": self.n_qubits,
            "couplings": len(self.couplings()),
            "two_qubit_gate": self.two_qubit_gate,
            "source": self.source,
            "licence": self.licence,
            "file": self.origin,
        }


# ---------------------------------------------------------------- reading


def shipped() -> dict[str, Path]:
    """The device snapshots shipped in ``lret_runner/devices/data``: name -> file."""
    return {p.stem: p for p in sorted(DATA_DIR.glob("*.yaml"))}


def is_shipped(spec: Any) -> bool:
    """True when ``spec`` is the name of a shipped snapshot (then it is not a path)."""
    return isinstance(spec, str) and spec in shipped()


def resolve(spec: str | Path, key: str = "noise.device") -> Path:
    """The file ``spec`` names: a shipped snapshot's name, else a path (relative to the
    current directory), which must exist."""
    if is_shipped(spec):
        return shipped()[str(spec)]
    path = Path(spec).expanduser()
    if not path.exists():
        names = ", ".join(shipped()) or "none"
        raise NoiseError(
            f"{key}={str(spec)!r} is invalid: it is neither a shipped device ({names}) nor an "
            "existing file: name one of them or give the path of a device file (YAML or JSON)"
        )
    return path


def load_device(spec: str | Path | Mapping[str, Any] | Device, key: str = "noise.device") -> Device:
    """A validated :class:`Device` from a shipped name, a file, a mapping (the file's
    content) or a :class:`Device` (returned as it is)."""
    if isinstance(spec, Device):
        return spec
    if isinstance(spec, Mapping):
        return parse_device(spec, "<mapping>")
    if not isinstance(spec, str | Path) or not str(spec):
        raise NoiseError(
            f"{key}={spec!r} is invalid: name a shipped device ({', '.join(shipped())}) or "
            "give the path of a device file"
        )
    path = resolve(spec, key)
    return parse_device(read_file(path), str(path))


def read_file(path: Path) -> Any:
    """The parsed content of a device file (JSON for ``.json``, else YAML)."""
    where = str(path)
    try:
        if path.is_dir():
            raise NoiseError(f"{where} is a directory, not a device file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise NoiseError(
                f"{where} is {path.stat().st_size} bytes, larger than a device file may be "
                f"({MAX_FILE_BYTES} bytes)"
            )
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NoiseError(f"{where} cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise NoiseError(f"{where} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise NoiseError(
                f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            ) from None
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise NoiseError(f"{where} is not valid YAML: {problem}{at}") from None


@functools.cache
def _yaml_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that also reads ``1e-4`` (no dot) as a float, as OmegaConf does."""

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
            |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
            |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
            re.X,
        ),
        list("-+0123456789."),
    )
    return Loader


# ---------------------------------------------------------------- validation


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _fail(where: str, key: str, value: Any, why: str) -> NoiseError:
    return NoiseError(f"{where}: {key}={_show(value)} is invalid: {why}")


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, key, value, "must be a number")
    if not math.isfinite(value):
        raise _fail(where, key, value, "must be finite")
    return float(value)


def _rate(where: str, key: str, value: Any) -> float:
    number = _number(where, key, value)
    if not 0 <= number <= 1:
        raise _fail(where, key, value, "a rate must be in [0, 1]")
    return number


def _time(where: str, key: str, value: Any) -> float:
    number = _number(where, key, value)
    if number <= 0:
        raise _fail(where, key, value, "a time must be > 0 seconds")
    return number


def _keys(where: str, prefix: str, data: Mapping[Any, Any], allowed: Sequence[str]) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise NoiseError(
            f"{where}: {prefix}{unknown[0]} is not a key of a device file"
            f"{' ' + prefix.rstrip('.') + ' entry' if prefix else ''}: allowed are "
            f"{', '.join(allowed)}"
        )


def parse_device(data: Any, where: str) -> Device:
    """A :class:`Device` from a file's parsed content; ``where`` (the file) starts every
    error message, which names the field and the value."""
    if not isinstance(data, Mapping):
        raise NoiseError(
            f"{where}: the file holds {type(data).__name__ if data is not None else 'nothing'}"
            f", not a mapping with the keys {', '.join(REQUIRED)}"
        )
    _keys(where, "", data, KEYS)
    for key in REQUIRED:
        if key not in data:
            raise NoiseError(f"{where}: {key} is missing (required: {', '.join(REQUIRED)})")
    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise _fail(where, "name", name, "must be a non-empty string")
    for key in ("source", "licence"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise _fail(where, key, data[key], "must be a string")
    n = data["n_qubits"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise _fail(where, "n_qubits", n, "must be an integer >= 1")
    one = data.get("one_qubit_gate", "sx")
    if one not in ONE_QUBIT_GATES:
        raise _fail(where, "one_qubit_gate", one, f"must be one of {', '.join(ONE_QUBIT_GATES)}")
    two = data.get("two_qubit_gate", "cx")
    if two not in TWO_QUBIT_GATES:
        raise _fail(where, "two_qubit_gate", two, f"must be one of {', '.join(TWO_QUBIT_GATES)}")
    virtual_z = data.get("virtual_z", True)
    if not isinstance(virtual_z, bool):
        raise _fail(where, "virtual_z", virtual_z, "must be true or false")
    qubits = _qubits(where, data["qubits"], n)
    pairs = _pairs(where, data["pairs"], n)
    return Device(
        name=name,
        qubits=qubits,
        pairs=pairs,
        one_qubit_gate=one,
        two_qubit_gate=two,
        virtual_z=virtual_z,
        source=data.get("source"),
        licence=data.get("licence"),
        origin=where,
    )


def _qubits(where: str, entries: Any, n: int) -> tuple[Qubit, ...]:
    if not isinstance(entries, list):
        raise _fail(where, "qubits", entries, f"must be a list of {n} qubit entries")
    if len(entries) < n:
        raise NoiseError(
            f"{where}: qubits has {len(entries)} entries but n_qubits={n}: the entry of qubit "
            f"{len(entries)} is missing (one entry per device qubit, in order)"
        )
    if len(entries) > n:
        raise NoiseError(
            f"{where}: qubits has {len(entries)} entries but n_qubits={n}: qubit {n} does not "
            "exist (one entry per device qubit, in order)"
        )
    out = []
    for i, entry in enumerate(entries):
        prefix = f"qubits[{i}]"
        _entry(where, prefix, entry, QUBIT_KEYS, f" (qubit {i})")
        t1 = _time(where, f"{prefix}.t1", entry["t1"])
        t2 = _time(where, f"{prefix}.t2", entry["t2"])
        if t2 > 2 * t1:
            raise _fail(
                where,
                f"{prefix}.t2",
                entry["t2"],
                f"T2 must be <= 2*T1 = {2 * t1} ({prefix}.t1={t1})",
            )
        out.append(
            Qubit(
                t1=t1,
                t2=t2,
                prob_meas0_prep1=_rate(
                    where, f"{prefix}.prob_meas0_prep1", entry["prob_meas0_prep1"]
                ),
                prob_meas1_prep0=_rate(
                    where, f"{prefix}.prob_meas1_prep0", entry["prob_meas1_prep0"]
                ),
                gate_error=_rate(where, f"{prefix}.gate_error", entry["gate_error"]),
                gate_duration=_time(where, f"{prefix}.gate_duration", entry["gate_duration"]),
            )
        )
    return tuple(out)


def _entry(where: str, prefix: str, entry: Any, keys: Sequence[str], which: str = "") -> None:
    """An entry of ``qubits`` or ``pairs``: a mapping with exactly ``keys``."""
    if not isinstance(entry, Mapping):
        raise _fail(where, prefix, entry, f"must be a mapping of {', '.join(keys)}")
    _keys(where, f"{prefix}.", entry, keys)
    for key in keys:
        if key not in entry:
            raise NoiseError(f"{where}: {prefix}.{key} is missing{which}")


def _pairs(where: str, entries: Any, n: int) -> tuple[Pair, ...]:
    if not isinstance(entries, list):
        raise _fail(
            where, "pairs", entries, "must be a list of {qubits, gate_error, gate_duration}"
        )
    out: list[Pair] = []
    seen: set[tuple[int, int]] = set()
    for i, entry in enumerate(entries):
        prefix = f"pairs[{i}]"
        _entry(where, prefix, entry, PAIR_KEYS)
        qubits = entry["qubits"]
        if (
            not isinstance(qubits, list)
            or len(qubits) != 2
            or any(isinstance(q, bool) or not isinstance(q, int) for q in qubits)
        ):
            raise _fail(where, f"{prefix}.qubits", qubits, "must be two device qubits [a, b]")
        for q in qubits:
            if not 0 <= q < n:
                raise _fail(
                    where,
                    f"{prefix}.qubits",
                    qubits,
                    f"device qubit {q} does not exist (n_qubits={n}: qubits 0..{n - 1})",
                )
        if qubits[0] == qubits[1]:
            raise _fail(where, f"{prefix}.qubits", qubits, "a pair needs two different qubits")
        key = (qubits[0], qubits[1])
        if key in seen:
            raise _fail(where, f"{prefix}.qubits", qubits, "this pair is listed twice")
        seen.add(key)
        out.append(
            Pair(
                key,
                _rate(where, f"{prefix}.gate_error", entry["gate_error"]),
                _time(where, f"{prefix}.gate_duration", entry["gate_duration"]),
            )
        )
    return tuple(out)


# ---------------------------------------------------------------- writing


def dump_device(device: Device, fmt: str = "yaml") -> str:
    """The file text of ``device`` (``yaml``: one flow mapping per qubit and pair; ``json``)."""
    data = device.to_dict()
    if fmt == "json":
        return json.dumps(data, indent=1) + "\n"
    lines = ["# lret_runner device file (noise=device): see the README, section Device noise"]
    for key, value in data.items():
        if key in ("qubits", "pairs"):
            lines.append(f"{key}:" if value else f"{key}: []")
            lines.extend(f"  - {_flow(entry)}" for entry in value)
        else:
            lines.append(f"{key}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        # YAML 1.1 (PyYAML) reads 1e-05 as a string: give the mantissa a dot
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a quoted string YAML reads back as the same string


def _flow(entry: Mapping[str, Any]) -> str:
    parts = []
    for key, value in entry.items():
        shown = (
            "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else _scalar(value)
        )
        parts.append(f"{key}: {shown}")
    return "{" + ", ".join(parts) + "}"


def write_device(device: Device, path: Path) -> Path:
    """Write ``device`` to ``path`` (JSON for ``.json``, else YAML); returns the path."""
    fmt = "json" if path.suffix.lower() == ".json" else "yaml"
    path.write_text(dump_device(device, fmt), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the noise model


def noise_model(
    device: str | Path | Mapping[str, Any] | Device,
    *,
    scale: float = 1.0,
    layout: Sequence[int] | None = None,
    idle: bool = True,
    key: str = "noise",
) -> DeviceNoiseModel:
    """The ``cirq.NoiseModel`` of ``device``: a
    :class:`~lret_runner.devices.model.DeviceNoiseModel` (Cirq is imported here)."""
    from lret_runner.devices.model import DeviceNoiseModel

    return DeviceNoiseModel(
        load_device(device, f"{key}.device"), scale=scale, layout=layout, idle=idle, key=key
    )
