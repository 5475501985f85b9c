"""Device files from Qiskit calibration data (``lret-runner device import``).

:func:`from_properties` converts a Qiskit ``BackendProperties`` dictionary (the
``props_*.json`` files of qiskit-ibm-runtime's fake backends, or what
``backend.properties().to_dict()`` returns) with plain JSON parsing, no Qiskit needed;
a configuration dictionary (``conf_*.json``) optionally gives the coupling map.
:func:`from_backend` does the same for a fake backend of ``qiskit-ibm-runtime``'s fake
provider (the optional extra ``lret_runner[qiskit]``).

What is taken, per qubit: T1, T2 (clipped to 2 T1, as Qiskit Aer does), the readout
confusion ``prob_meas0_prep1``/``prob_meas1_prep0`` (``readout_error`` for both when
they are absent), and the error and length of the one-qubit gate (``sx``, else ``x``,
``u2``, ``u3``, ``rx``, ``u``, ``id``); per directed pair, the error and length of the
two-qubit gate (``cx``, else ``ecr``, ``cz``, ``iswap``, ``rzz``). ``virtual_z`` is true
unless an ``rz`` (or ``u1``) calibration has a non-zero error or length: Aer adds no
noise to a gate calibrated with zero error and zero duration.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lret_runner.devices import (
    ONE_QUBIT_GATES,
    TWO_QUBIT_GATES,
    Device,
    parse_device,
)
from lret_runner.errors import NoiseError, UserError

TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "ps": 1e-12}
EXTRA = "qiskit"  # the optional extra that brings qiskit-ibm-runtime


def _value(item: Any, where: str, what: str) -> tuple[float, str]:
    if not isinstance(item, Mapping) or "value" not in item:
        raise NoiseError(f"{where}: {what} has no value")
    value = item["value"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise NoiseError(f"{where}: {what}={value!r} is invalid: must be a finite number")
    return float(value), str(item.get("unit") or "")


def _seconds(item: Any, where: str, what: str) -> float:
    value, unit = _value(item, where, what)
    if unit not in TIME_UNITS:
        raise NoiseError(
            f"{where}: {what} has the unit {unit!r}: expected one of {', '.join(TIME_UNITS)}"
        )
    return value * TIME_UNITS[unit]


def _nduv(items: Any, where: str, what: str) -> dict[str, Any]:
    if not isinstance(items, list):
        raise NoiseError(f"{where}: {what} is not a list of {{name, unit, value}}")
    return {str(i.get("name")): i for i in items if isinstance(i, Mapping)}


def from_properties(
    properties: Mapping[str, Any],
    configuration: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    source: str | None = None,
    licence: str | None = None,
    where: str = "<properties>",
) -> Device:
    """A validated :class:`Device` from Qiskit backend properties (see the module docstring).

    ``configuration``'s ``coupling_map`` (when given) lists the pairs, each of which needs
    a two-qubit calibration; without it, every calibrated pair is one. ``where`` names the
    properties in error messages.
    """
    if not isinstance(properties, Mapping) or not isinstance(properties.get("qubits"), list):
        raise NoiseError(f"{where}: not Qiskit backend properties (no 'qubits' list)")
    gates = properties.get("gates")
    if not isinstance(gates, list):
        raise NoiseError(f"{where}: not Qiskit backend properties (no 'gates' list)")
    n = len(properties["qubits"])
    if configuration is not None and configuration.get("n_qubits") not in (None, n):
        raise NoiseError(
            f"{where}: the configuration's n_qubits={configuration.get('n_qubits')} does not "
            f"match the {n} qubits of the properties"
        )
    # gate name -> qubits -> {gate_error, gate_length}
    calibrations: dict[str, dict[tuple[int, ...], dict[str, Any]]] = {}
    for i, gate in enumerate(gates):
        if not isinstance(gate, Mapping) or "gate" not in gate or "qubits" not in gate:
            raise NoiseError(f"{where}: gates[{i}] is not a {{gate, qubits, parameters}} entry")
        params = _nduv(gate.get("parameters"), where, f"gates[{i}].parameters")
        calibrations.setdefault(str(gate["gate"]), {})[tuple(gate["qubits"])] = params
    one = next((g for g in ONE_QUBIT_GATES if g in calibrations), None)
    two = next((g for g in TWO_QUBIT_GATES if g in calibrations), None)
    if one is None:
        raise NoiseError(
            f"{where}: no one-qubit gate calibration ({', '.join(ONE_QUBIT_GATES)}) in 'gates'"
        )
    clipped = []
    qubits = []
    for q, items in enumerate(properties["qubits"]):
        nduv = _nduv(items, where, f"qubits[{q}]")
        for needed in ("T1", "T2"):
            if needed not in nduv:
                raise NoiseError(f"{where}: qubits[{q}] has no {needed}")
        t1 = _seconds(nduv["T1"], where, f"qubits[{q}].T1")
        t2 = _seconds(nduv["T2"], where, f"qubits[{q}].T2")
        if t2 > 2 * t1:
            clipped.append(q)
            t2 = 2 * t1
        if "prob_meas0_prep1" in nduv and "prob_meas1_prep0" in nduv:
            p01 = _value(nduv["prob_meas0_prep1"], where, f"qubits[{q}].prob_meas0_prep1")[0]
            p10 = _value(nduv["prob_meas1_prep0"], where, f"qubits[{q}].prob_meas1_prep0")[0]
        elif "readout_error" in nduv:
            p01 = p10 = _value(nduv["readout_error"], where, f"qubits[{q}].readout_error")[0]
        else:
            raise NoiseError(f"{where}: qubits[{q}] has no readout error")
        gate = calibrations[one].get((q,))
        if gate is None:
            raise NoiseError(f"{where}: qubit {q} has no {one} calibration in 'gates'")
        error, length = _gate(gate, where, f"{one} on qubit {q}")
        qubits.append(
            {
                "t1": t1,
                "t2": t2,
                "prob_meas0_prep1": p01,
                "prob_meas1_prep0": p10,
                "gate_error": error,
                "gate_duration": length,
            }
        )
    pair_cals = calibrations.get(two or "", {})
    if configuration is not None and configuration.get("coupling_map") is not None:
        wanted = [tuple(p) for p in configuration["coupling_map"]]
        for p in wanted:
            if p not in pair_cals:
                raise NoiseError(
                    f"{where}: the configuration couples {list(p)} but the properties have no "
                    f"{two or 'two-qubit gate'} calibration for it"
                )
    else:
        wanted = [p for p in pair_cals if len(p) == 2]
    pairs = []
    for p in wanted:
        error, length = _gate(pair_cals[p], where, f"{two} on qubits {list(p)}")
        pairs.append({"qubits": list(p), "gate_error": error, "gate_duration": length})
    # Aer adds nothing to a gate calibrated with zero error and zero length
    virtual = all(
        not _raw(cal, "gate_error") and not _raw(cal, "gate_length")
        for zname in ("rz", "u1")
        for cal in calibrations.get(zname, {}).values()
    )
    backend = properties.get("backend_name")
    note = f"; T2 clipped to 2 T1 on qubits {clipped}" if clipped else ""
    date = properties.get("last_update_date")
    date = date.isoformat() if hasattr(date, "isoformat") else date
    data = {
        "name": name or str(backend or "device"),
        "source": (source or f"Qiskit backend properties of {backend or 'a backend'}")
        + (f", calibration of {date}" if date else "")
        + note,
        **({"licence": licence} if licence else {}),
        "n_qubits": n,
        "one_qubit_gate": one,
        "two_qubit_gate": two or "cx",
        "virtual_z": virtual,
        "qubits": qubits,
        "pairs": pairs,
    }
    return parse_device(data, f"{where} (converted)")


def _gate(params: Mapping[str, Any], where: str, what: str) -> tuple[float, float]:
    """(gate_error, gate_length in seconds) of a gate's calibration."""
    for needed in ("gate_error", "gate_length"):
        if needed not in params:
            raise NoiseError(f"{where}: the {what} calibration has no {needed}")
    error = _value(params["gate_error"], where, f"{what} gate_error")[0]
    return error, _seconds(params["gate_length"], where, f"{what} gate_length")


def _raw(params: Mapping[str, Any], key: str) -> Any:
    item = params.get(key)
    return item.get("value") if isinstance(item, Mapping) else None


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{what} {path} is not valid JSON ({exc})") from None


def from_properties_file(
    properties: Path, configuration: Path | None = None, *, name: str | None = None
) -> Device:
    """A device from a properties JSON file (and a configuration JSON file)."""
    props = read_json(properties, "the properties file")
    conf = None if configuration is None else read_json(configuration, "the configuration file")
    if conf is not None and not isinstance(conf, Mapping):
        raise UserError(f"the configuration file {configuration} does not hold a JSON object")
    return from_properties(
        props,
        conf,
        name=name,
        source=f"Qiskit backend properties {properties.name}"
        + (f" and configuration {configuration.name}" if configuration else "")
        + (f" of {props.get('backend_name')}" if isinstance(props, Mapping) else ""),
        where=str(properties),
    )


def fake_backend(name: str) -> Any:
    """A fake backend of ``qiskit_ibm_runtime.fake_provider`` by class name (``FakeManilaV2``)
    or backend name (``fake_manila``); a :class:`UserError` naming the extra to install when
    qiskit-ibm-runtime is missing."""
    try:
        from qiskit_ibm_runtime import fake_provider
    except ImportError:
        raise UserError(
            f"--backend {name} needs qiskit-ibm-runtime, which is not installed: "
            f"pip install 'lret_runner[{EXTRA}]' (or import a properties JSON file instead)"
        ) from None
    candidates = [name]
    if name.startswith("fake_"):
        stem = "".join(part.capitalize() for part in name[5:].split("_"))
        candidates += [f"Fake{stem}V2", f"Fake{stem}"]
    for candidate in candidates:
        cls = getattr(fake_provider, candidate, None)
        if isinstance(cls, type) and candidate.startswith("Fake") and "Provider" not in candidate:
            return cls()
    raise UserError(
        f"--backend {name}: qiskit_ibm_runtime.fake_provider has no such fake backend "
        "(give a class name such as FakeManilaV2 or a backend name such as fake_manila)"
    )


def from_backend(name: str, *, device_name: str | None = None) -> Device:
    """A device from a fake backend of qiskit-ibm-runtime (its properties and coupling map)."""
    backend = fake_backend(name)  # a UserError naming the extra without qiskit-ibm-runtime
    import qiskit_ibm_runtime

    properties = backend.properties()
    if properties is None:
        raise UserError(f"--backend {name}: the backend has no calibration properties")
    props = properties.to_dict()
    edges: Sequence[Any] = list(backend.coupling_map.get_edges()) if backend.coupling_map else []
    conf = {"n_qubits": backend.num_qubits, "coupling_map": [list(e) for e in edges]}
    return from_properties(
        props,
        conf,
        name=device_name or str(getattr(backend, "name", name)),
        source=(
            f"qiskit-ibm-runtime {qiskit_ibm_runtime.__version__}, "
            f"qiskit_ibm_runtime.fake_provider.{type(backend).__name__} "
            f"(backend properties of {props.get('backend_name')})"
        ),
        licence="Apache-2.0",
        where=f"--backend {name}",
    )
