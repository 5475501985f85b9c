"""``lret-runner``: sessions, runs, lineage and comparisons from the MLflow store.

::

    lret-runner sessions create NAME [--description D] [--timeout-hours H]
    lret-runner sessions list [--all]
    lret-runner sessions show NAME [--limit N]
    lret-runner sessions close NAME | sessions resume NAME
    lret-runner runs list [--session S] [--tag K=V ...] [--status STATUS] [--limit N]
    lret-runner runs show RUN_ID
    lret-runner runs tag RUN_ID KEY=VALUE|KEY ...
    lret-runner lineage RUN_ID
    lret-runner compare RUN_ID RUN_ID [...] [--plot FILE]
    lret-runner serve [--host H] [--port P] [--workers N] [--max-qubits N] ...
    lret-runner ask "REQUEST IN PLAIN WORDS" [--run]
    lret-runner cloud k8s list | logs BATCH [--index I] | delete BATCH
    lret-runner device list | show NAME_OR_PATH | import PROPERTIES_JSON|--backend NAME

Every subcommand takes ``--json`` (machine-readable output instead of tables) and
``--tracking-uri`` (default: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlruns/mlflow.db``).
A run id may be abbreviated to any unique prefix (``runs list`` shows 8 characters).
User errors (unknown session or run, bad arguments) print one line on stderr and exit 2.

Each command module reads through :mod:`lret_runner.tracking.queries` and renders the
records. Only argparse and the standard library are imported at module load; MLflow,
rich and matplotlib are imported by the commands that need them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from lret_runner.cli import ask, cloud, compare, device, lineage, runs, serve, sessions
from lret_runner.cli._output import Context
from lret_runner.errors import UserError

PROG = "lret-runner"


class _Parser(argparse.ArgumentParser):
    """Argument errors raise :class:`UserError` (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UserError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    """The ``lret-runner`` argument parser (every subcommand has ``--help`` and ``--json``)."""
    # the shared options, on the top parser and on every subcommand: given before or after it
    common = _Parser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print machine-readable JSON instead of tables",
    )
    common.add_argument(
        "--tracking-uri",
        default=argparse.SUPPRESS,
        metavar="URI",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///<cwd>/mlruns/mlflow.db)",
    )
    parser = _Parser(
        prog=PROG,
        parents=[common],
        description="Sessions, runs, lineage and comparisons of lret_runner experiments in MLflow.",
        epilog="Run experiments with `python -m lret_runner +experiment=NAME`; "
        "`lret-runner COMMAND --help` for details.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (sessions, runs, lineage, compare, serve, ask, cloud, device):
        module.register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lret-runner`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        args = build_parser().parse_args(argv)
        from lret_runner.tracking.queries import store_errors

        with store_errors():
            return int(args.func(Context(args), args))
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
