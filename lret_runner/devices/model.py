"""The ``cirq.NoiseModel`` of a device: Qiskit Aer's ``NoiseModel.from_backend`` recipe.

For every gate, on the device qubits the layout puts it on:

1. a depolarizing channel on the gate's qubits whose parameter brings the gate's total
   error (1 - average gate fidelity of depolarizing then relaxation) to the calibrated
   ``gate_error``; Aer's ``_device_depolarizing_error``: with F the average gate fidelity
   of the relaxation channel, d = 2^n, nothing when ``gate_error`` is 0 or not above
   1 - F, else ``lambda = d (e - (1 - F)) / (d F - 1)`` with ``e`` clipped to d/(d+1) and
   ``lambda`` to 4^n/(4^n - 1). Aer's ``depolarizing_error(lambda, n)`` is Cirq's
   ``depolarize(p, n)`` with ``p = lambda (4^n - 1) / 4^n``;
2. then thermal relaxation (T1, T2, zero temperature, T2 clipped to 2 T1 by the file's
   validation) for the gate's duration on each of its qubits (Aer composes
   ``depolarizing.compose(relaxation)``: depolarizing first).

One-qubit gates take their qubit's calibration, two-qubit gates their pair's; with
``virtual_z`` (the default, as IBM devices calibrate ``rz`` with zero error and
duration) one-qubit gates with a diagonal unitary other than the identity (rz, z, s, t,
their inverses, p/u1) are noiseless and take no time. Gates on three or more qubits are
refused. With ``idle``, every circuit qubit relaxes for the whole moment: the moment
lasts as long as its longest gate, an untouched qubit relaxes that long, a qubit whose
gate is shorter relaxes for the rest of it too (relaxation for a then b is relaxation
for a + b: Aer with ``delay`` instructions of that length on those qubits is the same).

Measurement noise: an asymmetric confusion channel (:class:`ReadoutConfusionChannel`)
on each measured qubit in a moment just before the measurement moment, so that sampled
counts follow P(0|1) = ``prob_meas0_prep1`` and P(1|0) = ``prob_meas1_prep0``.

The conventions of :class:`lret_runner.noise.LretNoiseModel` hold: noise operations are
tagged :data:`~lret_runner.noise.NOISE_TAG` and sit in moments of their own (the
depolarizing channels of a moment, then its relaxation channels), measurement moments are
split off, nothing follows a measurement, zero-strength channels are never emitted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cirq
import numpy as np

from lret_runner.devices import Device
from lret_runner.errors import NoiseError, check_range
from lret_runner.noise import NOISE_TAG, SplitNoiseModel, relaxation, thermal_channel


@cirq.value_equality(approximate=True)
class ReadoutConfusionChannel(cirq.Gate):
    """A measured qubit's readout error as a channel just before the measurement.

    Kraus operators ``diag(sqrt(1 - p10), sqrt(1 - p01))``, ``sqrt(p10) |1><0|`` and
    ``sqrt(p01) |0><1|`` (the last two left out when 0): P(read 1 | 0) = ``p10``
    (``prob_meas1_prep0``) and P(read 0 | 1) = ``p01`` (``prob_meas0_prep1``), so the
    diagonal the counts are sampled from is the confusion matrix applied to it.
    """

    def __init__(self, p10: float, p01: float) -> None:
        for field, value in (("p10", p10), ("p01", p01)):
            if not 0.0 <= value <= 1.0:
                raise NoiseError(f"{field}={value} is invalid: a probability must be in [0, 1]")
        self.p10 = float(p10)
        self.p01 = float(p01)

    def _num_qubits_(self) -> int:
        return 1

    def _has_kraus_(self) -> bool:
        return True

    def _kraus_(self) -> tuple[np.ndarray, ...]:
        ops = [np.diag([math.sqrt(1 - self.p10), math.sqrt(1 - self.p01)])]
        if self.p10 > 0:
            ops.append(np.array([[0.0, 0.0], [math.sqrt(self.p10), 0.0]]))
        if self.p01 > 0:
            ops.append(np.array([[0.0, math.sqrt(self.p01)], [0.0, 0.0]]))
        return tuple(ops)

    def _value_equality_values_(self) -> tuple[float, float]:
        return self.p10, self.p01

    def _circuit_diagram_info_(self, args: cirq.CircuitDiagramInfoArgs) -> str:
        return f"RO(p10={self.p10:.3g},p01={self.p01:.3g})"

    def __repr__(self) -> str:
        return (
            f"lret_runner.devices.model.ReadoutConfusionChannel(p10={self.p10!r}, p01={self.p01!r})"
        )


def is_virtual_z(gate: cirq.Gate | None) -> bool:
    """True for a one-qubit gate whose unitary is diagonal and not the identity: a frame
    change on IBM-style devices (rz, z, s, t, their inverses, p/u1)."""
    if gate is None or isinstance(gate, cirq.IdentityGate) or cirq.num_qubits(gate) != 1:
        return False
    if isinstance(gate, cirq.ZPowGate):
        return True
    if not cirq.has_unitary(gate):
        return False
    u = cirq.unitary(gate)
    return abs(u[0, 1]) < 1e-12 and abs(u[1, 0]) < 1e-12


def depolarizing_parameter(error: float, relax_fidelity: float, n_qubits: int) -> float:
    """Aer's depolarizing parameter lambda of an n-qubit gate with calibrated error ``error``
    whose relaxation channel has average gate fidelity ``relax_fidelity`` (0: none)."""
    relax_infid = 1 - relax_fidelity
    if not error or error <= relax_infid:
        return 0.0
    dim = 2**n_qubits
    error = min(error, dim / (dim + 1))
    top = 4**n_qubits / (4**n_qubits - 1)
    denominator = dim * relax_fidelity - 1
    if denominator <= 0:  # a completely relaxing gate: Aer's parameter grows past its bound
        return top
    return min(dim * (error - relax_infid) / denominator, top)


def relaxation_fidelity(device: Device, qubits: Sequence[int], duration: float) -> float:
    """Average gate fidelity of thermal relaxation for ``duration`` on device ``qubits``.

    One qubit's process fidelity is ``(1 + 2 exp(-t/T2) + exp(-t/T1)) / 4``; the tensor
    product's is the product; average = (d F_pro + 1) / (d + 1).
    """
    process = 1.0
    for q in qubits:
        cal = device.qubits[q]
        process *= (1 + 2 * math.exp(-duration / cal.t2) + math.exp(-duration / cal.t1)) / 4
    dim = 2 ** len(qubits)
    return (dim * process + 1) / (dim + 1)


class DeviceNoiseModel(SplitNoiseModel):
    """The noise of :class:`~lret_runner.devices.Device` ``device`` (see the module docstring).

    ``scale`` multiplies every error rate (gate and readout) and divides T1 and T2 (0:
    noiseless); ``layout[i]`` is the device qubit of circuit qubit i, the i-th of the
    circuit's qubits in sorted order (None: device qubit i); ``idle`` adds the idle
    qubits' relaxation. ``key`` is where the settings are in the config (for messages).
    """

    name = "device"

    def __init__(
        self,
        device: Device,
        *,
        scale: float = 1.0,
        layout: Sequence[int] | None = None,
        idle: bool = True,
        key: str = "noise",
    ) -> None:
        self.key = key
        self.device = device
        self.scale = float(check_range(f"{key}.scale", scale, 0, None, NoiseError))
        if not isinstance(idle, bool):
            raise NoiseError(f"{key}.idle={idle!r} is invalid: must be true or false")
        self.idle = idle
        self.layout = None if layout is None else self._check_layout(layout)
        self.calibration = device.scaled(self.scale)
        self._check_scaled_readout()
        self._gates: dict[tuple[Any, ...], tuple[cirq.Gate | None, float]] = {}
        self._relax: dict[tuple[int, float], cirq.Gate | None] = {}
        self._readout: dict[int, cirq.Gate | None] = {}
        self._virtual: dict[cirq.Gate | None, bool] = {}
        self._mappings: dict[tuple[cirq.Qid, ...], dict[cirq.Qid, int]] = {}

    def __repr__(self) -> str:
        return (
            f"DeviceNoiseModel(device={self.device.name!r}, scale={self.scale!r}, "
            f"layout={None if self.layout is None else list(self.layout)!r}, idle={self.idle!r})"
        )

    @property
    def is_noiseless(self) -> bool:
        """True when the model adds nothing to any circuit (scale 0)."""
        return self.scale == 0

    # ------------------------------------------------------------ checks

    def _layout_text(self) -> str:
        if self.layout is None:
            return f"{self.key}.layout=null (circuit qubit i on device qubit i)"
        return f"{self.key}.layout={list(self.layout)}"

    def _check_layout(self, layout: Any) -> tuple[int, ...]:
        field = f"{self.key}.layout"
        if isinstance(layout, str | bytes) or not isinstance(layout, Sequence):
            raise NoiseError(f"{field}={layout!r} is invalid: must be a list of device qubits")
        n = self.device.n_qubits
        seen: set[int] = set()
        for q in layout:
            if isinstance(q, bool) or not isinstance(q, int | np.integer):
                raise NoiseError(
                    f"{field}={list(layout)} is invalid: {q!r} is not a device qubit (an integer)"
                )
            if not 0 <= q < n:
                raise NoiseError(
                    f"{field}={list(layout)} is invalid: device qubit {q} does not exist "
                    f"({self.device.name} has qubits 0..{n - 1})"
                )
            if q in seen:
                raise NoiseError(
                    f"{field}={list(layout)} is invalid: device qubit {q} is repeated "
                    "(each circuit qubit needs its own device qubit)"
                )
            seen.add(int(q))
        return tuple(int(q) for q in layout)

    def _check_scaled_readout(self) -> None:
        if self.scale <= 1:
            return
        for i, q in enumerate(self.calibration.qubits):
            for field in ("prob_meas0_prep1", "prob_meas1_prep0"):
                if getattr(q, field) > 1:
                    worst = max(
                        max(c.prob_meas0_prep1, c.prob_meas1_prep0) for c in self.device.qubits
                    )
                    raise NoiseError(
                        f"{self.key}.scale={self.scale:g} is invalid for {self.device.name}: "
                        f"qubit {i}'s {field} {getattr(self.device.qubits[i], field):g} x "
                        f"{self.scale:g} = {getattr(q, field):g} is more than 1 (a readout "
                        f"error is a probability): the largest scale is {1 / worst:g}"
                    )

    def _mapping(self, system_qubits: Sequence[cirq.Qid]) -> dict[cirq.Qid, int]:
        """Circuit qubit -> device qubit (circuit qubit i is the i-th in sorted order)."""
        key = tuple(system_qubits)
        found = self._mappings.get(key)
        if found is not None:
            return found
        qubits = sorted(system_qubits)
        n, size = len(qubits), self.device.n_qubits
        if self.layout is None:
            if n > size:
                raise NoiseError(
                    f"{self._layout_text()} is invalid for a circuit of {n} qubits: "
                    f"{self.device.name} has {size}: use a smaller circuit or a larger device"
                )
            devices: Sequence[int] = range(n)
        else:
            if len(self.layout) < n:
                raise NoiseError(
                    f"{self._layout_text()} is invalid for a circuit of {n} qubits: it places "
                    f"{len(self.layout)}: give one device qubit per circuit qubit"
                )
            devices = self.layout[:n]
        mapping = dict(zip(qubits, devices, strict=True))
        self._mappings[key] = mapping
        return mapping

    def start(self, circuit: cirq.Circuit) -> None:
        """Refuse, before anything runs, what the device cannot run: a layout that does not
        fit the circuit, a gate on three or more qubits, a two-qubit gate on device qubits
        the device does not couple, and readout errors on a circuit that measures nothing."""
        qubits = sorted(circuit.all_qubits())
        mapping = self._mapping(qubits)
        for op in circuit.all_operations():
            if not cirq.is_measurement(op) and NOISE_TAG not in op.tags:
                self._gate(op, mapping, qubits)
        if circuit.has_measurements() or self.scale == 0:
            return
        cal = self.calibration.qubits
        worst = max(
            (max(cal[d].prob_meas0_prep1, cal[d].prob_meas1_prep0) for d in mapping.values()),
            default=0.0,
        )
        if worst > 0:
            raise NoiseError(
                f"{self.key}=device ({self.device.name}) has readout errors (up to {worst:g} on "
                "the circuit's qubits), invalid for a circuit that measures nothing "
                "(circuit.measure=false): they would be dropped while counts are still sampled "
                "from the unmeasured state. Set circuit.measure=true"
            )

    # ------------------------------------------------------------ channels

    def _gate(
        self,
        op: cirq.Operation,
        mapping: dict[cirq.Qid, int],
        system_qubits: Sequence[cirq.Qid] = (),
    ) -> tuple[cirq.Gate | None, float]:
        """The depolarizing channel after ``op`` (None: none) and its duration."""
        n = len(op.qubits)
        if n == 0:
            return None, 0.0
        if n >= 3:
            raise NoiseError(
                f"{self.key}=device: the circuit's gate {op} acts on {n} qubits; a device "
                "calibrates one- and two-qubit gates only: decompose it into them"
            )
        devices = tuple(mapping[q] for q in op.qubits)
        virtual = n == 1 and self.calibration.virtual_z and self._is_virtual(op.gate)
        key = (devices, virtual)
        found = self._gates.get(key)
        if found is not None:
            return found
        if virtual:
            found = (None, 0.0)
        elif n == 1:
            cal = self.calibration.qubits[devices[0]]
            found = self._depolarizing(devices, cal.gate_error, cal.gate_duration)
        else:
            pair = self.calibration.pair(*devices)
            if pair is None:
                order = sorted(system_qubits or mapping)
                where = tuple(order.index(q) for q in op.qubits)
                couplings = ", ".join(f"{a}-{b}" for a, b in self.device.couplings()) or "none"
                raise NoiseError(
                    f"{self._layout_text()}: the circuit's {op} on circuit qubits {where} runs "
                    f"on device qubits {devices}, which {self.device.name} does not couple "
                    f"(its coupled pairs: {couplings}): choose a layout that puts every "
                    "two-qubit gate on a coupled pair (circuits are not routed)"
                )
            found = self._depolarizing(devices, pair.gate_error, pair.gate_duration)
        self._gates[key] = found
        return found

    def _is_virtual(self, gate: cirq.Gate | None) -> bool:
        try:
            return self._virtual[gate]
        except KeyError:
            found = self._virtual[gate] = is_virtual_z(gate)
            return found
        except TypeError:  # an unhashable gate
            return is_virtual_z(gate)

    def _depolarizing(
        self, devices: tuple[int, ...], error: float, duration: float
    ) -> tuple[cirq.Gate | None, float]:
        n = len(devices)
        fidelity = relaxation_fidelity(self.calibration, devices, duration)
        lam = depolarizing_parameter(error, fidelity, n)
        p = lam * (4**n - 1) / 4**n
        return (cirq.depolarize(min(p, 1.0), n_qubits=n) if p > 0 else None), duration

    def _relaxation(self, device_qubit: int, duration: float) -> cirq.Gate | None:
        key = (device_qubit, duration)
        if key not in self._relax:
            cal = self.calibration.qubits[device_qubit]
            self._relax[key] = (
                thermal_channel(*relaxation(cal.t1, cal.t2, duration)) if duration > 0 else None
            )
        return self._relax[key]

    def _readout_channel(self, device_qubit: int) -> cirq.Gate | None:
        if device_qubit not in self._readout:
            cal = self.calibration.qubits[device_qubit]
            p10, p01 = cal.prob_meas1_prep0, cal.prob_meas0_prep1
            self._readout[device_qubit] = (
                ReadoutConfusionChannel(p10, p01) if p10 > 0 or p01 > 0 else None
            )
        return self._readout[device_qubit]

    # ------------------------------------------------------------ cirq.NoiseModel

    def _readout_moments(
        self, measured: Sequence[cirq.Qid], system_qubits: Sequence[cirq.Qid]
    ) -> list[cirq.Moment]:
        """The readout confusion of each measured qubit's device qubit, one moment."""
        mapping = self._mapping(system_qubits)
        ops = [
            channel.on(q).with_tags(NOISE_TAG)
            for q in measured
            if (channel := self._readout_channel(mapping[q])) is not None
        ]
        return [cirq.Moment(ops)] if ops else []

    def _noise_after(
        self, moment: cirq.Moment, system_qubits: Sequence[cirq.Qid]
    ) -> list[cirq.Moment]:
        """The moment's depolarizing moment, then its relaxation moment."""
        mapping = self._mapping(system_qubits)
        depolarizing: list[cirq.Operation] = []
        busy: dict[cirq.Qid, float] = {}
        for op in moment:
            if NOISE_TAG in op.tags or not op.qubits:
                continue
            channel, duration = self._gate(op, mapping, system_qubits)
            if channel is not None:
                depolarizing.append(channel.on(*op.qubits))
            for q in op.qubits:
                busy[q] = duration
        longest = max(busy.values(), default=0.0)
        relaxing: list[cirq.Operation] = []
        for q in sorted(system_qubits) if self.idle else sorted(busy):
            channel = self._relaxation(mapping[q], longest if self.idle else busy[q])
            if channel is not None:
                relaxing.append(channel.on(q))
        return [
            cirq.Moment(op.with_tags(NOISE_TAG) for op in ops)
            for ops in (depolarizing, relaxing)
            if ops
        ]
