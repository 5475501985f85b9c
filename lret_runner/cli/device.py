"""``lret-runner device list|show|import``: device descriptions for ``noise=device``.

::

    lret-runner device list
    lret-runner device show NAME_OR_PATH
    lret-runner device import PROPERTIES_JSON [--configuration CONF_JSON] -o FILE
    lret-runner device import --backend FakeManilaV2 -o FILE     (needs lret_runner[qiskit])

Thin over :mod:`lret_runner.devices` (the loader) and :mod:`lret_runner.devices.importer`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lret_runner.cli._output import Context, add_command, plural

if TYPE_CHECKING:
    from rich.console import Console

    from lret_runner.devices import Device

LIST_COLUMNS = ("name", "qubits", "coupled pairs", "2q gate", "source")


def list_(ctx: Context, args: argparse.Namespace) -> int:
    from lret_runner.devices import load_device, shipped

    devices = [load_device(name) for name in shipped()]
    return ctx.emit([d.summary() for d in devices], lambda console: _show_list(console, devices))


def _show_list(console: Console, devices: list[Device]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=f"shipped device snapshots: {plural(len(devices), 'device')} "
        "(noise=device noise.device=NAME)"
    )
    for col in LIST_COLUMNS:
        table.add_column(col, no_wrap=col != "source")
    for d in devices:
        table.add_row(
            d.name,
            str(d.n_qubits),
            str(len(d.couplings())),
            d.two_qubit_gate,
            Text(d.source or "-"),
        )
    console.print(table)


def show(ctx: Context, args: argparse.Namespace) -> int:
    from lret_runner.devices import load_device

    device = load_device(args.device, "device")
    return ctx.emit(
        {**device.to_dict(), "file": device.origin}, lambda console: _show_device(console, device)
    )


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.4g}"


def _ns(seconds: float) -> str:
    return f"{seconds * 1e9:.4g}"


def _show_device(console: Console, device: Device) -> None:
    from rich.table import Table
    from rich.text import Text

    from lret_runner.cli._output import kv_table

    console.print(
        kv_table(
            [
                ("name", device.name),
                ("file", device.origin),
                ("source", device.source),
                ("licence", device.licence),
                ("qubits", device.n_qubits),
                (
                    "gates",
                    f"{device.one_qubit_gate} (one-qubit), {device.two_qubit_gate} "
                    f"(two-qubit){', virtual rz' if device.virtual_z else ''}",
                ),
                ("coupled pairs", ", ".join(f"{a}-{b}" for a, b in device.couplings()) or "none"),
            ]
        )
    )
    qubits = Table(title="qubits")
    for col in ("qubit", "T1 (us)", "T2 (us)", "P(0|1)", "P(1|0)", "1q error", "1q time (ns)"):
        qubits.add_column(col, justify="right")
    for i, q in enumerate(device.qubits):
        qubits.add_row(
            str(i),
            _us(q.t1),
            _us(q.t2),
            f"{q.prob_meas0_prep1:.4g}",
            f"{q.prob_meas1_prep0:.4g}",
            f"{q.gate_error:.3g}",
            _ns(q.gate_duration),
        )
    console.print(qubits)
    pairs = Table(title=f"{device.two_qubit_gate} pairs (directed)")
    for col in ("pair", "error", "time (ns)"):
        pairs.add_column(col, justify="right")
    for p in device.pairs:
        pairs.add_row(
            Text(f"{p.qubits[0]} -> {p.qubits[1]}"), f"{p.gate_error:.3g}", _ns(p.gate_duration)
        )
    console.print(pairs)


def import_(ctx: Context, args: argparse.Namespace) -> int:
    from lret_runner.devices import write_device
    from lret_runner.devices.importer import from_backend, from_properties_file
    from lret_runner.errors import UserError

    if (args.properties is None) == (args.backend is None):
        raise UserError(
            "device import needs a properties JSON file or --backend NAME (one of them)"
        )
    if args.backend is not None and args.configuration is not None:
        raise UserError("--configuration goes with a properties file, not with --backend")
    if args.backend is not None:
        device = from_backend(args.backend, device_name=args.name)
    else:
        device = from_properties_file(args.properties, args.configuration, name=args.name)
    out = args.output or Path(f"{device.name}.yaml")
    if out.exists() and not args.force:
        raise UserError(f"{out} exists: choose another --output or add --force to replace it")
    try:
        write_device(device, out)
    except OSError as exc:
        raise UserError(f"cannot write {out} ({exc.strerror or exc})") from None
    summary = {**device.summary(), "file": str(out)}
    return ctx.emit(
        summary,
        lambda console: ctx.text(
            f"wrote {out}: {device.name}, {plural(device.n_qubits, 'qubit')}, "
            f"{plural(len(device.couplings()), 'coupled pair')} "
            f"(use it with noise=device noise.device={out})"
        ),
    )


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    device = commands.add_parser(
        "device",
        help="device descriptions for noise=device: list, show, import",
        description="Device descriptions (calibration snapshots) for noise=device.",
    )
    actions = device.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_command(actions, "list", list_, common, help="the shipped device snapshots")
    p = add_command(
        actions, "show", show, common, help="a device's calibrations (a shipped name or a file)"
    )
    p.add_argument("device", metavar="NAME_OR_PATH", help="a shipped snapshot or a device file")
    p = add_command(
        actions,
        "import",
        import_,
        common,
        help="write a device file from Qiskit calibration data",
        description="Write a device file (YAML, or JSON for a .json output) from a Qiskit "
        "backend properties JSON file (plain JSON, no Qiskit needed; --configuration adds "
        "the coupling map of a configuration JSON file), or from a fake backend of "
        "qiskit-ibm-runtime with --backend (pip install 'lret_runner[qiskit]').",
    )
    p.add_argument(
        "properties",
        nargs="?",
        type=Path,
        metavar="PROPERTIES_JSON",
        help="a Qiskit BackendProperties JSON file (props_*.json)",
    )
    p.add_argument(
        "--configuration",
        type=Path,
        default=None,
        metavar="CONF_JSON",
        help="a Qiskit backend configuration JSON file (conf_*.json): its coupling_map",
    )
    p.add_argument(
        "--backend",
        default=None,
        metavar="NAME",
        help="a qiskit-ibm-runtime fake backend: FakeManilaV2 or fake_manila",
    )
    p.add_argument("--name", default=None, help="the device's name (default: the backend's)")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="where to write it (default: NAME.yaml in the current directory)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing output file")
