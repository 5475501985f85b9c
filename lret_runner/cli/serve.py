"""``lret-runner serve``: the REST API on uvicorn (OpenAPI docs at ``/docs``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from lret_runner.cli._output import Context, add_command, positive_int
from lret_runner.errors import ConfigError

# the integer settings: option -> the environment variable read when it is not given
LIMITS = {
    "workers": "LRET_API_WORKERS",
    "max_qubits": "LRET_API_MAX_QUBITS",
    "max_depth": "LRET_API_MAX_DEPTH",
    "max_shots": "LRET_API_MAX_SHOTS",
    "max_batch": "LRET_API_MAX_BATCH",
}
QASM_DIR_ENV = "LRET_API_QASM_DIR"


def serve(ctx: Context, args: argparse.Namespace) -> int:
    given = server_settings(args)  # checked before anything starts
    import uvicorn

    from lret_runner.api.app import create_app
    from lret_runner.api.service import env_settings
    from lret_runner.tracking.store import redact

    settings = env_settings(root=Path.cwd(), tracking_uri=ctx.uri, **given)
    ctx.text(
        f"lret_runner API on http://{args.host}:{args.port} (docs: /docs), store {settings.root}"
        f" -> {redact(ctx.uri)}, {settings.workers} worker(s)"
        + (", bearer token required" if settings.token else "")
    )
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


def server_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The limits and the QASM folder from the options, else from ``LRET_API_*``, each
    checked: a :class:`ConfigError` names the option or variable, its value and what is
    allowed (a positive integer; an existing directory). Unset ones are left out (the
    server's defaults)."""
    out: dict[str, Any] = {}
    for key, var in LIMITS.items():
        value = getattr(args, key, None)
        if value is None and os.environ.get(var):
            value = _positive_env(var, os.environ[var])
        if value is not None:
            out[key] = value
    qasm_dir, setting = getattr(args, "qasm_dir", None), "--qasm-dir"
    if qasm_dir is None and os.environ.get(QASM_DIR_ENV):
        qasm_dir, setting = Path(os.environ[QASM_DIR_ENV]), QASM_DIR_ENV
    if qasm_dir is not None:
        if not qasm_dir.is_dir():
            what = "is not a directory" if qasm_dir.exists() else "does not exist"
            raise ConfigError(
                f"{setting}={qasm_dir} {what}: name the folder of the QASM files requests may use"
            )
        out["qasm_dir"] = qasm_dir
    return out


def _positive_env(var: str, text: str) -> int:
    try:
        value: int | None = int(text.strip())
    except ValueError:
        value = None
    if value is None or value < 1:
        raise ConfigError(f"{var}={text!r} is invalid: must be an integer >= 1")
    return value


def port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is invalid: a port must be in [1, 65535]")
    return value


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    p = add_command(
        commands,
        "serve",
        serve,
        common,
        help="serve the REST API",
        description="Serve the REST API over this store with uvicorn (loopback by default). "
        "With LRET_API_TOKEN set, every route but /health needs 'Authorization: Bearer TOKEN'. "
        "Limits also come from LRET_API_MAX_QUBITS, LRET_API_MAX_DEPTH, LRET_API_MAX_SHOTS, "
        "LRET_API_MAX_BATCH, LRET_API_WORKERS and LRET_API_QASM_DIR.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=port, default=8000, help="TCP port, 1 to 65535 (8000)")
    p.add_argument("--workers", type=positive_int, default=None, help="experiment processes (1)")
    p.add_argument("--max-qubits", type=positive_int, default=None, help="largest n_qubits (20)")
    p.add_argument("--max-depth", type=positive_int, default=None, help="largest depth (1000)")
    p.add_argument("--max-shots", type=positive_int, default=None, help="most shots (1000000)")
    p.add_argument("--max-batch", type=positive_int, default=None, help="largest batch (100)")
    p.add_argument("--qasm-dir", type=Path, default=None, help="QASM files requests may name")
