"""``lret-runner ask "REQUEST"``: a request in plain words, mapped to the runner's command.

Prints what was understood and the ``python -m lret_runner [-m] OVERRIDES`` command that
runs it (``-m`` for a sweep); ``--run`` runs that command, into the store of
``--tracking-uri``. A request that cannot be mapped
prints what is missing and exits 2. The parsing is :mod:`lret_runner.api.nl`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from lret_runner.api.nl import Parsed, parse, to_overrides
from lret_runner.cli._output import Context, add_command
from lret_runner.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console


def command(parsed: Parsed) -> list[str]:
    """The runner's command line for ``parsed`` (``python -m lret_runner [-m] OVERRIDES``)."""
    return ["python", "-m", "lret_runner", *(["-m"] if parsed.sweep else []), *to_overrides(parsed)]


def ask(ctx: Context, args: argparse.Namespace) -> int:
    parsed = parse(" ".join(args.request))
    argv = command(parsed) if parsed.ok else None
    ctx.emit(parsed.to_dict() | {"command": argv}, lambda console: _show(console, parsed, argv))
    if argv is None:
        raise UserError(f"cannot run this request: missing {'; '.join(parsed.missing)}")
    if not args.run:
        return 0
    env = os.environ | {"MLFLOW_TRACKING_URI": ctx.uri}  # the store --tracking-uri names
    return subprocess.run([sys.executable, *argv[1:]], env=env, check=False).returncode


def _show(console: Console, parsed: Parsed, argv: list[str] | None) -> None:
    lines = ["understood:", *(f"  {note}" for note in parsed.understood or ["nothing"])]
    if argv:
        lines += ["command:", f"  {shlex.join(argv)}"]
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    p = add_command(
        commands,
        "ask",
        ask,
        common,
        help="a request in plain words, as the command that runs it",
        description="Map a request in plain words (circuit, qubits, depth, noise, simulator, "
        "shots, seed, sweeps and comparisons) to the `python -m lret_runner` command that "
        "runs it, without a model or a network. Exits 2 with what is missing if it cannot.",
        epilog='example: lret-runner ask "run a 10 qubit ghz circuit with 1% depolarizing '
        'noise on lret with 1000 shots"',
    )
    p.add_argument("request", nargs="+", metavar="REQUEST", help="the request, e.g. in quotes")
    p.add_argument("--run", action="store_true", help="run the command (output goes through)")
