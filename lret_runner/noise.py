"""Named noise models built from Cirq channels, and :func:`add_noise` to apply them.

``build_noise_model(name, ...)`` validates its parameters (a :class:`NoiseError` names
the field and the value) and returns an :class:`LretNoiseModel`, a ``cirq.NoiseModel``
whose noise moments hold channel operations only, each tagged with :data:`NOISE_TAG`.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cirq
import numpy as np

from lret_runner.errors import (
    NoiseError,
    check_choice,
    check_number,
    check_probability,
    check_range,
)

if TYPE_CHECKING:
    from lret_runner.devices import Device
    from lret_runner.devices.model import DeviceNoiseModel

PLACEMENTS = ("gate", "moment")
NOISE_MODELS = (
    "none",
    "depolarizing",
    "amplitude_damping",
    "phase_damping",
    "bit_flip",
    "phase_flip",
    "thermal",
    "readout",
    "composite",
    "device",
    "sparse",
)
# every noise operation carries this tag, so noise moments (and the noiseless circuit under
# them: simulators.base.compile_circuit marks their instructions) are identifiable
NOISE_TAG = "lret_noise"

# (one-qubit channel, the joint channel of a gate on n >= 2 qubits as a function of n);
# None where the source adds nothing (no joint channel: the one-qubit channel on each qubit)
ChannelPair = tuple[cirq.Gate | None, Callable[[int], cirq.Gate] | None]
# the channels to apply after an operation (or a moment) lasting ``duration`` seconds
ChannelFactory = Callable[[float], ChannelPair]


@dataclass(frozen=True)
class NoiseComponent:
    """One named noise source: gate/idle channels from a duration, and a readout error."""

    name: str
    channels: ChannelFactory  # duration (s) -> (one-qubit channel, two-qubit channel)
    readout_error: float = 0.0  # bit-flip probability just before each measurement
    key: str = "noise"  # where its parameters are in the config (for messages)


class SplitNoiseModel(cirq.NoiseModel):
    """What every noise model here shares: noise moments after each gate moment (from
    :meth:`_noise_after`), a moment mixing gates and measurements split (the gates and
    their noise first), readout noise in moments just before the measurement moment (from
    :meth:`_readout_moments`), nothing after a measurement, noise moments passed through."""

    def noisy_moments(
        self, moments: Iterable[cirq.Moment], system_qubits: Sequence[cirq.Qid]
    ) -> Sequence[cirq.OP_TREE]:
        """Every moment followed by its noise moments; measurements before the last moment are
        mid-circuit (:func:`add_noise` moves the terminal ones last)."""
        moments = list(moments)
        last = len(moments) - 1
        return [self._noisy(m, system_qubits, i < last) for i, m in enumerate(moments)]

    def noisy_moment(self, moment: cirq.Moment, system_qubits: Sequence[cirq.Qid]) -> cirq.OP_TREE:
        """The moment followed by its noise moments (readout noise goes before measurements)."""
        return self._noisy(moment, system_qubits, False)

    def _noisy(
        self, moment: cirq.Moment, system_qubits: Sequence[cirq.Qid], mid: bool
    ) -> list[cirq.Moment]:
        """A terminal measurement's readout error is a channel before it (the same outcome
        distribution); a mid-circuit one's flips only its record (Cirq's confusion map), the
        qubit keeps the outcome it collapsed to."""
        if is_noise_moment(moment):
            return [moment]
        measurements = [op for op in moment if cirq.is_measurement(op)]
        if not measurements:
            return [moment, *self._noise_after(moment, system_qubits)]
        gates = [op for op in moment if not cirq.is_measurement(op)]
        out: list[cirq.Moment] = []
        if gates:
            gate_moment = cirq.Moment(gates)
            out += [gate_moment, *self._noise_after(gate_moment, system_qubits)]
        measured = sorted({q for op in measurements for q in op.qubits})
        readout = self._readout_moments(measured, system_qubits)
        if mid and readout:
            measurements = [_with_confusion(op, readout) for op in measurements]
        else:
            out += readout
        out.append(cirq.Moment(measurements))
        return out

    def start(self, circuit: cirq.Circuit) -> None:  # noqa: B027 (a no-op by default)
        """Called by :func:`add_noise` before the circuit's moments are passed in order: check
        what the model cannot apply, reset what it draws per circuit."""

    @abc.abstractmethod
    def _noise_after(
        self, moment: cirq.Moment, system_qubits: Sequence[cirq.Qid]
    ) -> list[cirq.Moment]:
        """The noise moments that follow a moment of gates."""

    @abc.abstractmethod
    def _readout_moments(
        self, measured: Sequence[cirq.Qid], system_qubits: Sequence[cirq.Qid]
    ) -> list[cirq.Moment]:
        """The readout-noise moments just before a measurement of ``measured``."""


class LretNoiseModel(SplitNoiseModel):
    """A stack of :class:`NoiseComponent` s applied with one placement.

    Placements:

    - ``gate``: after every gate, each component's noise on every qubit the gate
      touched: a gate on n >= 2 qubits gets the component's joint n-qubit channel if it
      has one (depolarizing: ``cirq.depolarize(p, n_qubits=n)``), else the one-qubit
      channel on each of its qubits.
      Durations (thermal): ``gate_time_1q`` after one-qubit gates, else ``gate_time_2q``.
    - ``moment``: after every moment (an empty one too), each component's one-qubit
      channel on every system qubit, touched or idle, for the moment's longest gate
      duration (``gate_time_1q`` when it holds only one-qubit gates or none).

    Measurements never get noise after them. A moment mixing gates and measurements
    is split: the gates (and their noise) first, then the measurements. A component
    with a readout error puts ``cirq.bit_flip(p)`` on each measured qubit in a moment
    just before the measurement moment (:func:`add_noise` refuses readout noise on a
    circuit without measurements, where it would be dropped). Each component's noise
    is its own moment (channels of different components act on the same qubits);
    empty noise moments and zero-strength channels are never emitted, so a noiseless
    model returns the circuit unchanged. Moments made only of :data:`NOISE_TAG`-tagged
    operations are passed through untouched.
    """

    def __init__(
        self,
        components: Sequence[NoiseComponent],
        *,
        placement: str = "gate",
        gate_time_1q: float = 25e-9,
        gate_time_2q: float = 50e-9,
        name: str = "custom",
    ) -> None:
        self.name = name
        self.placement = check_choice("noise.placement", placement, PLACEMENTS, NoiseError)
        self.gate_time_1q = float(
            check_range(
                "noise.gate_time_1q", gate_time_1q, 0, None, NoiseError, what="a time must be"
            )
        )
        self.gate_time_2q = float(
            check_range(
                "noise.gate_time_2q", gate_time_2q, 0, None, NoiseError, what="a time must be"
            )
        )
        self.components = tuple(components)
        # channels for one-qubit (key 1) and longer (key 2) durations, per component
        self._channels = [
            {1: c.channels(self.gate_time_1q), 2: c.channels(self.gate_time_2q)}
            for c in self.components
        ]

    def __repr__(self) -> str:
        names = ", ".join(c.name for c in self.components)
        return (
            f"LretNoiseModel(name={self.name!r}, placement={self.placement!r}, "
            f"components=[{names}])"
        )

    @property
    def is_noiseless(self) -> bool:
        """True when the model adds nothing to any circuit."""
        return not any(c.readout_error > 0 for c in self.components) and all(
            pair == (None, None) for table in self._channels for pair in table.values()
        )

    def _readout_moments(
        self, measured: Sequence[cirq.Qid], system_qubits: Sequence[cirq.Qid]
    ) -> list[cirq.Moment]:
        """A bit flip on each measured qubit per component with a readout error."""
        return [
            cirq.Moment(cirq.bit_flip(c.readout_error).on(q).with_tags(NOISE_TAG) for q in measured)
            for c in self.components
            if c.readout_error > 0
        ]

    def _noise_after(
        self, moment: cirq.Moment, system_qubits: Sequence[cirq.Qid]
    ) -> list[cirq.Moment]:
        """One noise moment per component that adds something after ``moment``."""
        layers = []
        for table in self._channels:
            if self.placement == "gate":
                ops = _gate_noise(moment, table)
            else:
                longest = 2 if any(len(op.qubits) >= 2 for op in moment) else 1
                one = table[longest][0]
                ops = [] if one is None else [one.on(q) for q in system_qubits]
            if ops:
                layers.append(cirq.Moment(op.with_tags(NOISE_TAG) for op in ops))
        return layers


# the channels the sparse model draws from, by name
SPARSE_CHANNELS: dict[str, Callable[[float], cirq.Gate]] = {
    "depolarizing": cirq.depolarize,
    "amplitude_damping": cirq.amplitude_damp,
    "phase_damping": cirq.phase_damp,
    "bit_flip": cirq.bit_flip,
    "phase_flip": cirq.phase_flip,
}


class SparseNoiseModel(SplitNoiseModel):
    """Noise at a few random locations: each location (``moment``: every qubit after every
    moment; ``gate``: each qubit a gate touched, after the gate) gets, with probability
    ``level``, one channel drawn uniformly from ``channels``, of strength ``level`` x U(0, 1).

    A circuit of L locations carries about ``level`` x L channels, each weak: the regime of
    hardware where errors are rare events, and where a low-rank state stays low-rank. The
    draws are seeded (``seed``) and restart with every circuit (:meth:`start`), so the same
    circuit and seed give the same noisy circuit."""

    def __init__(
        self,
        level: float,
        *,
        channels: Sequence[str] = tuple(SPARSE_CHANNELS)[:3],
        placement: str = "moment",
        seed: int = 0,
    ) -> None:
        self.name = "sparse"
        self.level = check_probability("noise.level", level, NoiseError)
        if not channels:
            raise NoiseError(
                f"noise.channels is empty: choose one or more of {', '.join(SPARSE_CHANNELS)}"
            )
        self.channels = tuple(
            check_choice(f"noise.channels[{i}]", c, tuple(SPARSE_CHANNELS), NoiseError)
            for i, c in enumerate(channels)
        )
        self.placement = check_choice("noise.placement", placement, PLACEMENTS, NoiseError)
        self.seed = check_range("noise.seed", seed, 0, None, NoiseError, integer=True)
        self._rng = np.random.default_rng(self.seed)

    def __repr__(self) -> str:
        return (
            f"SparseNoiseModel(level={self.level:g}, channels={list(self.channels)}, "
            f"placement={self.placement!r}, seed={self.seed})"
        )

    @property
    def is_noiseless(self) -> bool:
        return self.level == 0

    def start(self, circuit: cirq.Circuit) -> None:
        self._rng = np.random.default_rng(self.seed)

    def _readout_moments(
        self, measured: Sequence[cirq.Qid], system_qubits: Sequence[cirq.Qid]
    ) -> list[cirq.Moment]:
        return []

    def _noise_after(
        self, moment: cirq.Moment, system_qubits: Sequence[cirq.Qid]
    ) -> list[cirq.Moment]:
        if self.placement == "moment":
            locations = list(system_qubits)
        else:
            locations = sorted({q for op in moment for q in op.qubits})
        ops = []
        for q in locations:  # three draws per location, hit or not: a stable sequence
            hit, kind, strength = self._rng.random(3)
            if hit < self.level:
                make = SPARSE_CHANNELS[self.channels[int(kind * len(self.channels))]]
                ops.append(make(self.level * strength).on(q).with_tags(NOISE_TAG))
        return [cirq.Moment(ops)] if ops else []


def _gate_noise(moment: cirq.Moment, table: dict[int, ChannelPair]) -> list[cirq.Operation]:
    """A component's noise after each gate of ``moment`` (gate placement); after a
    classically controlled gate, under the same conditions (where the gate acts)."""
    ops: list[cirq.Operation] = []
    for op in moment:
        n = len(op.qubits)
        if n == 0:
            continue
        one, joint = table[1 if n == 1 else 2]
        if n >= 2 and joint is not None:
            noise = [joint(n).on(*op.qubits)]
        elif one is not None:
            noise = [one.on(q) for q in op.qubits]
        else:
            noise = []
        conditions = op.classical_controls
        ops += [e.with_classical_controls(*conditions) for e in noise] if conditions else noise
    return ops


def _with_confusion(op: cirq.Operation, readout: Sequence[cirq.Moment]) -> cirq.Operation:
    """A mid-circuit measurement whose record the ``readout`` channels flip: the confusion
    matrix M[i][j] = P(record j | outcome i) = sum_k |K_k[j, i]|^2, composed in order."""
    gate = op.gate
    if not isinstance(gate, cirq.MeasurementGate) or op.classical_controls:
        return op
    maps = {}
    for i, q in enumerate(op.qubits):
        confusion = np.eye(2)
        for moment in readout:
            for channel in moment:
                if channel.qubits == (q,):
                    kraus = cirq.kraus(channel)
                    step = np.array(
                        [[sum(abs(k[j, a]) ** 2 for k in kraus) for j in (0, 1)] for a in (0, 1)]
                    )
                    confusion = confusion @ step
        if not np.allclose(confusion, np.eye(2)):
            maps[(i,)] = confusion
    if not maps:
        return op
    new = cirq.MeasurementGate(
        len(op.qubits), key=gate.mkey, invert_mask=gate.invert_mask, confusion_map=maps
    )
    return new.on(*op.qubits).with_tags(*op.tags)


def is_noise_moment(moment: cirq.Moment) -> bool:
    """True for a non-empty moment made only of operations tagged :data:`NOISE_TAG`."""
    return len(moment) > 0 and all(NOISE_TAG in op.tags for op in moment)


def add_noise(circuit: cirq.Circuit, model: SplitNoiseModel) -> cirq.Circuit:
    """The noisy circuit: ``circuit.with_noise(model)``, once every terminal measurement is
    moved to the last moment (where a file measured some qubits early, idle noise would
    otherwise act on them after their measurement).

    Readout noise flips measured bits; on a circuit that measures nothing it would be
    dropped while counts are still sampled from the final state, so it is refused
    (a :class:`NoiseError` naming the readout error and ``circuit.measure``). A device
    model first checks the whole circuit (``DeviceNoiseModel.start``): the
    layout, gates on three or more qubits, two-qubit gates on uncoupled device qubits
    and its readout errors are refused here, before anything runs.
    """
    from lret_runner.circuits import terminal_measurements_last

    circuit = terminal_measurements_last(circuit)
    model.start(circuit)
    if not circuit.has_measurements():
        for component in getattr(model, "components", ()):
            if component.readout_error > 0:
                raise NoiseError(
                    f"{component.key}.readout_error={component.readout_error:g} is invalid for "
                    "a circuit that measures nothing (circuit.measure=false): readout noise "
                    "flips measured bits, so it would be dropped while counts are still "
                    "sampled from the unmeasured state. Set circuit.measure=true, or choose a "
                    "noise model without readout"
                )
    # every terminal measurement in the last moment: idle noise (placement=moment) never
    # lands on a qubit after its measurement
    return circuit.with_noise(model)


# --------------------------------------------------------------------------- channels


@cirq.value_equality(approximate=True)
class ThermalRelaxationChannel(cirq.Gate):
    """Amplitude damping ``gamma`` followed by phase damping ``lam``, as one channel.

    Kraus operators ``diag(1, sqrt((1-gamma)(1-lam)))``, ``sqrt(gamma)|0><1|`` and
    ``diag(0, sqrt((1-gamma) lam))``: P(1) is scaled by ``1-gamma`` and the coherence
    by ``sqrt((1-gamma)(1-lam))`` (Cirq's ``amplitude_damp`` and ``phase_damp``).
    """

    def __init__(self, gamma: float, lam: float) -> None:
        for field, value in (("gamma", gamma), ("lam", lam)):
            if not 0.0 <= value <= 1.0:
                raise NoiseError(f"{field}={value} is invalid: a probability must be in [0, 1]")
        self.gamma = float(gamma)
        self.lam = float(lam)

    def _num_qubits_(self) -> int:
        return 1

    def _has_kraus_(self) -> bool:
        return True

    def _kraus_(self) -> tuple[np.ndarray, ...]:
        g, lam = self.gamma, self.lam
        return (
            np.diag([1.0, math.sqrt((1 - g) * (1 - lam))]),
            np.array([[0.0, math.sqrt(g)], [0.0, 0.0]]),
            np.diag([0.0, math.sqrt((1 - g) * lam)]),
        )

    def _value_equality_values_(self) -> tuple[float, float]:
        return self.gamma, self.lam

    def _circuit_diagram_info_(self, args: cirq.CircuitDiagramInfoArgs) -> str:
        return f"TR(γ={self.gamma:.3g},λ={self.lam:.3g})"

    def __repr__(self) -> str:
        return f"lret_runner.noise.ThermalRelaxationChannel(gamma={self.gamma!r}, lam={self.lam!r})"


def thermal_channel(gamma: float, lam: float) -> cirq.Gate | None:
    """Amplitude damping ``gamma`` then phase damping ``lam``; None when both are 0.

    The plain Cirq channel when one of them is 0, else a :class:`ThermalRelaxationChannel`.
    """
    if lam == 0:
        return cirq.amplitude_damp(gamma) if gamma > 0 else None
    if gamma == 0:
        return cirq.phase_damp(lam)
    return ThermalRelaxationChannel(gamma, lam)


def _thermal(t1: float, t2: float) -> ChannelFactory:
    """T1/T2 relaxation for a duration t: gamma = 1 - exp(-t/T1), lam = 1 - exp(-2t/T_phi).

    ``1/T_phi = 1/T2 - 1/(2 T1)`` (no dephasing when T2 = 2 T1), so that populations
    relax as exp(-t/T1) and coherences decay as exp(-t/T2).
    """

    def channels(duration: float) -> ChannelPair:
        return thermal_channel(*relaxation(t1, t2, duration)), None

    return channels


def relaxation(t1: float, t2: float, duration: float) -> tuple[float, float]:
    """``(gamma, lam)`` of T1/T2 relaxation for ``duration`` seconds (see :func:`_thermal`).

    ``gamma = 1 - exp(-t/T1)``, ``lam = 1 - exp(-2t/T_phi)`` with ``1/T_phi = 1/T2 - 1/(2 T1)``
    (0 when T2 = 2 T1); infinite T1 and T2 give no relaxation. Populations then relax as
    exp(-t/T1) and coherences as exp(-t/T2): Qiskit Aer's ``thermal_relaxation_error``
    at zero temperature is the same channel.
    """
    rate_phi = max(0.0, 1 / t2 - 1 / (2 * t1))
    return -math.expm1(-duration / t1), -math.expm1(-2 * duration * rate_phi)


def _constant(
    one: cirq.Gate | None, joint: Callable[[int], cirq.Gate] | None = None
) -> ChannelFactory:
    return lambda _duration: (one, joint)


def _if_positive(make: Callable[[float], cirq.Gate], p: float) -> cirq.Gate | None:
    return make(p) if p > 0 else None


@dataclass(frozen=True)
class _Params:
    """The validated parameters a model's channels are made from."""

    key: str  # where they are in the config: "noise" or "noise.components[i]"
    level: float
    t1: float
    t2: float
    readout_error: float


# model name -> its component
_MODELS: dict[str, Callable[[_Params], NoiseComponent]] = {
    "none": lambda p: NoiseComponent("none", _constant(None), key=p.key),
    "depolarizing": lambda p: NoiseComponent(
        "depolarizing",
        _constant(
            _if_positive(cirq.depolarize, p.level),
            (lambda n: cirq.depolarize(p.level, n_qubits=n)) if p.level > 0 else None,
        ),
        key=p.key,
    ),
    "amplitude_damping": lambda p: NoiseComponent(
        "amplitude_damping", _constant(_if_positive(cirq.amplitude_damp, p.level)), key=p.key
    ),
    "phase_damping": lambda p: NoiseComponent(
        "phase_damping", _constant(_if_positive(cirq.phase_damp, p.level)), key=p.key
    ),
    "bit_flip": lambda p: NoiseComponent(
        "bit_flip", _constant(_if_positive(cirq.bit_flip, p.level)), key=p.key
    ),
    "phase_flip": lambda p: NoiseComponent(
        "phase_flip", _constant(_if_positive(cirq.phase_flip, p.level)), key=p.key
    ),
    "thermal": lambda p: NoiseComponent("thermal", _thermal(p.t1, p.t2), key=p.key),
    "readout": lambda p: NoiseComponent("readout", _constant(None), p.readout_error, key=p.key),
}

# The strength keys each model uses: one knob means one thing, so a key the chosen model
# does not use (``level`` on readout or thermal, ``t1`` on depolarizing, ...) is refused.
MODEL_KEYS: dict[str, tuple[str, ...]] = {
    "none": (),
    "depolarizing": ("level",),
    "amplitude_damping": ("level",),
    "phase_damping": ("level",),
    "bit_flip": ("level",),
    "phase_flip": ("level",),
    "thermal": ("t1", "t2"),
    "readout": ("readout_error",),
    "device": (),  # the device file's calibrations; its keys: device, scale, layout, idle
    "sparse": ("level",),  # also: channels, seed (its own keys)
}
_STRENGTH_KEYS = ("level", "t1", "t2", "readout_error")
# keys a composite's component may set (placement and gate times belong to the composite)
_COMPONENT_KEYS = ("name", *_STRENGTH_KEYS)
# the models a composite may stack
_COMPONENT_MODELS = tuple(m for m in NOISE_MODELS if m not in ("composite", "device", "sparse"))
# the keys of the device model (lret_runner.devices), None: unset
_DEVICE_KEYS = ("device", "scale", "layout", "idle")


# --------------------------------------------------------------------------- building


def build_noise_model(
    name: str,
    *,
    level: float | None = None,
    placement: str = "gate",
    t1: float | None = None,
    t2: float | None = None,
    gate_time_1q: float = 25e-9,
    gate_time_2q: float = 50e-9,
    readout_error: float | None = None,
    components: Sequence[Mapping[str, Any]] | None = None,
    device: str | Path | Mapping[str, Any] | Device | None = None,
    scale: float | None = None,
    layout: Sequence[int] | None = None,
    idle: bool | None = None,
    channels: Sequence[str] | None = None,
    seed: int | None = None,
) -> LretNoiseModel | DeviceNoiseModel | SparseNoiseModel:
    """The noise model ``name`` (one of :data:`NOISE_MODELS`) with validated parameters.

    Each model uses its own strength keys (:data:`MODEL_KEYS`): ``level`` is the
    probability of depolarizing, damping and flip models (default 0); ``thermal`` uses
    ``t1``, ``t2`` (seconds, default 50 and 70 us) and the gate times; ``readout`` flips
    measured bits with ``readout_error`` (default 0). A strength key the model does not
    use is a :class:`NoiseError` naming it. ``composite`` stacks ``components``, dicts
    ``{"name": ..., **keys}`` that may set only their own model's keys; unset keys take
    the composite's ``level``, ``t1``, ``t2`` and ``readout_error`` (a readout component
    with no readout error from either is refused).

    ``device`` is a real device's calibrated noise (:mod:`lret_runner.devices`): ``device``
    (a shipped snapshot's name, a device file, its content as a mapping, or a
    :class:`~lret_runner.devices.Device`), ``scale`` (default 1), ``layout`` (default None:
    circuit qubit i on device qubit i) and ``idle`` (default true); it takes no other key,
    and the other models do not take these.

    ``sparse`` (:class:`SparseNoiseModel`) takes ``level``, ``placement``, ``channels`` (the
    channels it draws from) and ``seed``; only it takes the last two.
    """
    name = check_choice("noise.name", name, NOISE_MODELS, NoiseError)
    given = {"level": level, "t1": t1, "t2": t2, "readout_error": readout_error}
    # keys one model owns: any other model refuses them, naming the owner
    owned = {
        "device": {"device": device, "scale": scale, "layout": layout, "idle": idle},
        "sparse": {"channels": channels, "seed": seed},
    }
    for owner, keys in owned.items():
        for key, value in keys.items():
            if value is not None and name != owner:
                raise NoiseError(
                    f"noise.{key}={value!r} is invalid: only the {owner} model takes {key}, "
                    f"not {name!r}"
                )
    if name == "device":
        return _device_model(
            owned["device"],
            {
                **given,
                "components": components or None,
                "placement": None if placement == "gate" else placement,
                "gate_time_1q": None if gate_time_1q == 25e-9 else gate_time_1q,
                "gate_time_2q": None if gate_time_2q == 50e-9 else gate_time_2q,
            },
        )
    if name == "sparse":
        _refuse_unused("noise", name, {k: v for k, v in given.items() if v is not None})
        if components:
            raise NoiseError("noise.components is only for the composite model, not 'sparse'")
        return SparseNoiseModel(
            0.0 if level is None else level,
            placement=placement,
            seed=0 if seed is None else seed,
            **({} if channels is None else {"channels": list(channels)}),
        )
    if name == "composite":
        if not components:
            raise NoiseError("noise.components is empty: the composite model needs components")
        defaults = _params("noise", level, t1, t2, readout_error)
        built = [
            _component(f"noise.components[{i}]", c, defaults, readout_error is not None)
            for i, c in enumerate(components)
        ]
    else:
        if components:
            raise NoiseError(f"noise.components is only for the composite model, not {name!r}")
        _refuse_unused("noise", name, {k: v for k, v in given.items() if v is not None})
        built = [_MODELS[name](_params("noise", level, t1, t2, readout_error))]
    return LretNoiseModel(
        built,
        placement=placement,
        gate_time_1q=gate_time_1q,
        gate_time_2q=gate_time_2q,
        name=name,
    )


def _device_model(keys: Mapping[str, Any], others: Mapping[str, Any]) -> DeviceNoiseModel:
    """The device model from its keys; a key of another model is refused, naming it."""
    for key, value in others.items():
        if value is not None:
            raise NoiseError(
                f"noise.{key}={value!r} is invalid: the device model does not use {key} (it "
                f"takes {', '.join(_DEVICE_KEYS)}: the device file's calibrations give every "
                "rate and duration; noise.scale scales them)"
            )
    if keys["device"] is None:
        from lret_runner.devices import shipped

        raise NoiseError(
            "noise.device is missing: name a shipped device "
            f"({', '.join(shipped())}) or give the path of a device file"
        )
    from lret_runner.devices import noise_model

    return noise_model(
        keys["device"],
        scale=1.0 if keys["scale"] is None else keys["scale"],
        layout=keys["layout"],
        idle=True if keys["idle"] is None else keys["idle"],
    )


def _refuse_unused(field: str, name: str, keys: Mapping[str, Any]) -> None:
    """A strength key the model ``name`` does not use is refused, naming it."""
    for key, value in keys.items():
        if key in _STRENGTH_KEYS and key not in MODEL_KEYS[name]:
            uses = ", ".join(MODEL_KEYS[name]) or "no strength key"
            raise NoiseError(
                f"{field}.{key}={value} is invalid: the {name} model does not use {key} "
                f"(it takes {uses}); remove it"
                + (" or set readout_error for a readout error" if name == "readout" else "")
            )


def _component(
    field: str, spec: Mapping[str, Any], defaults: _Params, readout_default: bool
) -> NoiseComponent:
    """One component of a composite model, validated under ``field``."""
    if not isinstance(spec, Mapping):
        raise NoiseError(f"{field}={spec!r} is invalid: must be a mapping with a 'name'")
    spec = {k: v for k, v in spec.items() if v is not None}  # unset: the composite's value
    unknown = sorted(set(spec) - set(_COMPONENT_KEYS))
    if unknown:
        raise NoiseError(
            f"{field} has unknown keys {', '.join(map(str, unknown))}: "
            f"allowed are {', '.join(_COMPONENT_KEYS)}"
        )
    name = check_choice(f"{field}.name", spec.get("name"), _COMPONENT_MODELS, NoiseError)
    _refuse_unused(field, name, spec)
    if name == "readout" and "readout_error" not in spec and not readout_default:
        raise NoiseError(
            f"{field} (readout) has no readout_error and noise.readout_error is null: "
            f"set {field}.readout_error (or noise.readout_error for every readout component)"
        )
    params = _params(
        field,
        spec.get("level", defaults.level),
        spec.get("t1", defaults.t1),
        spec.get("t2", defaults.t2),
        spec.get("readout_error", defaults.readout_error),
    )
    return _MODELS[name](params)


def _params(field: str, level: Any, t1: Any, t2: Any, readout_error: Any) -> _Params:
    """Validated strengths; unset (None) ones take their defaults (0, 50 us, 70 us, 0)."""
    level = check_probability(f"{field}.level", 0.0 if level is None else level, NoiseError)
    t1 = check_number(f"{field}.t1", 50e-6 if t1 is None else t1, NoiseError)
    t2 = check_number(f"{field}.t2", 70e-6 if t2 is None else t2, NoiseError)
    if t1 <= 0:
        raise NoiseError(f"{field}.t1={t1} is invalid: T1 must be > 0 seconds")
    if t2 <= 0:
        raise NoiseError(f"{field}.t2={t2} is invalid: T2 must be > 0 seconds")
    if t2 > 2 * t1:
        raise NoiseError(
            f"{field}.t2={t2} is invalid: T2 must be <= 2*T1 = {2 * t1} ({field}.t1={t1})"
        )
    readout_error = check_probability(
        f"{field}.readout_error", 0.0 if readout_error is None else readout_error, NoiseError
    )
    return _Params(field, level, t1, t2, readout_error)
