"""What every command shares: the context (store, output mode, console) and table helpers.

Standard library only at import; the tracking package and rich are imported when used.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from lret_runner.tracking.queries import Queries, RunSummary
    from lret_runner.tracking.sessions import SessionInfo, Sessions


class Context:
    """What a command needs: the store, the output mode and a console."""

    def __init__(self, args: argparse.Namespace) -> None:
        from lret_runner.tracking.store import default_uri

        self.uri: str = getattr(args, "tracking_uri", None) or default_uri()
        self.as_json: bool = getattr(args, "json", False)
        self._client: Any = None

    def client(self, create: bool = False) -> Any:
        """The store's client; a missing SQLite store is an error unless ``create``."""
        if self._client is None:
            from lret_runner.tracking.store import connect

            self._client = connect(self.uri, create=create)
        return self._client

    @cached_property
    def queries(self) -> Queries:
        from lret_runner.tracking.queries import Queries

        return Queries(self.client(), self.uri)

    def sessions(self, create: bool = False) -> Sessions:
        from lret_runner.tracking.sessions import Sessions
        from lret_runner.tracking.store import default_artifact_location

        return Sessions(self.client(create), self.uri, default_artifact_location(self.uri))

    @cached_property
    def console(self) -> Console:
        from rich.console import Console

        width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
        return Console(highlight=False, width=width)

    def emit(self, data: Any, show: Callable[[Console], None]) -> int:
        """``data`` as JSON with ``--json``, else ``show(console)``."""
        if self.as_json:
            print(json.dumps(_jsonable(data), indent=2, default=str, allow_nan=False))
        else:
            show(self.console)
        return 0

    def text(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)


def _jsonable(value: Any) -> Any:
    """``value`` with NaN/inf floats as null (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------- the parser


def add_command(
    sub: Any, name: str, func: Callable[..., int], common: argparse.ArgumentParser, **kwargs: Any
) -> argparse.ArgumentParser:
    """A subcommand (with the shared ``--json`` and ``--tracking-uri``) that runs ``func``."""
    parser = sub.add_parser(name, parents=[common], **kwargs)
    parser.set_defaults(func=func)
    return parser


def _positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` that is > 0 and finite."""
    what = "an integer" if kind is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not 0 < value < math.inf:
            raise argparse.ArgumentTypeError(f"{value} is invalid: must be > 0 and finite")
        return value

    return parse


positive_int = _positive(int)
positive_float = _positive(float)


# ---------------------------------------------------------------- rendering


def when(iso: str | None) -> str | None:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS`` (UTC) for tables."""
    if not iso:
        return None
    from datetime import UTC, datetime

    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def short(run_id: str) -> str:
    return run_id[:8]


def escape(value: Any) -> Any:
    """Free text for rich cells (``[x]`` is not markup)."""
    if isinstance(value, str):
        from rich.markup import escape

        return escape(value)
    return value


def param_text(value: Any) -> str:
    """A typed param shown as it was logged (``str``), ``-`` for none."""
    return "-" if value is None else str(value)


def visible_tags(tags: Mapping[str, str], *hidden: str) -> dict[str, str]:
    """The tags worth showing, sorted: not MLflow's own, not the config JSON, not ``hidden``."""
    from lret_runner.tracking import vocabulary as V

    return {
        k: v
        for k, v in sorted(tags.items())
        if not k.startswith(("mlflow.", f"{V.CONFIG}.")) and k not in hidden
    }


def kv_table(pairs: Iterable[tuple[str, Any]], title: str | None = None) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in pairs:
        table.add_row(Text(key), Text("-" if value is None else str(value)))
    return table


def session_table(info: SessionInfo, extra: Iterable[tuple[str, Any]] = ()) -> Any:
    timeout = info.timeout_hours
    return kv_table(
        [
            ("name", info.name),
            ("status", info.status),
            ("description", info.description),
            ("experiment id", info.id),
            ("created", when(info.created)),
            ("last access", when(info.last_access)),
            ("idle timeout", f"{timeout:g} h" if timeout else "never"),
            *extra,
        ]
    )


RUN_COLUMNS = (
    "run id",
    "session",
    "status",
    "circuit",
    "n",
    "backend_used",
    "time (s)",
    "F noiseless",  # fidelity to the noiseless circuit's state
    "F exact",  # fidelity to the exact state of the same noisy circuit (the engine's accuracy)
    "final rank",
    "accuracy",  # whether the run met run.accuracy
    "started",
)


def _met(accuracy: dict[str, Any] | None) -> str | None:
    if accuracy is None:
        return None
    return "met" if accuracy["met"] else "NOT MET"


def runs_table(runs: Sequence[RunSummary], title: str | None = None) -> Any:
    from lret_runner import tables

    rows = []
    for r in runs:
        rank = r.metrics.get("final_rank")
        rows.append(
            dict(
                zip(
                    RUN_COLUMNS,
                    (
                        short(r.run_id),
                        escape(r.session),
                        r.status,
                        escape(r.circuit),
                        r.n_qubits,
                        r.backend_used,
                        r.metrics.get("simulation_time_seconds"),
                        r.metrics.get("ideal_fidelity"),
                        r.metrics.get("exact_fidelity"),
                        None if rank is None else int(rank),
                        _met(r.accuracy),
                        when(r.started),
                    ),
                    strict=True,
                )
            )
        )
    return tables.rows_table(rows, RUN_COLUMNS, title=title)
