"""``lret-runner serve``: the REST API on uvicorn (OpenAPI docs at ``/docs``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lret_runner.cli._output import Context, add_command, positive_int


def serve(ctx: Context, args: argparse.Namespace) -> int:
    from lret_runner.api.service import LIMIT_ENV, env_settings  # light: checks come first
    from lret_runner.tracking.store import redact

    given = {key: getattr(args, key) for key in LIMIT_ENV}
    settings = env_settings(
        root=Path.cwd(), tracking_uri=ctx.uri, qasm_dir=args.qasm_dir, **given
    )  # checked before anything starts
    import uvicorn

    from lret_runner.api.app import create_app

    ctx.text(
        f"lret_runner API on http://{args.host}:{args.port} (docs: /docs), store {settings.root}"
        f" -> {redact(ctx.uri)}, {settings.workers} worker(s)"
        + (", bearer token required" if settings.token else "")
    )
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


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
