"""REST API latency and throughput on a store of ``--runs`` (1,000) finished runs.

1. The store: ``--runs`` tiny runs (ghz, 3 qubits, 100 shots) recorded in process by
   ``experiment.run`` into a temporary SQLite store, as the CLI records them.
2. ``lret-runner serve`` on that store (a subprocess on a loopback port, ``--workers 2``).
3. Latency, ``--requests`` sequential requests each (after 10 warm-up requests): median
   and 95th percentile of ``GET /experiments/{id}`` (random ids of the store) and of
   ``GET /experiments?limit=50``.
4. Submissions: ``--submit`` tiny experiments posted one after the other, as fast as the
   server answers 202 (submissions per second), then the time until all have finished
   (runs finished per second with two workers).

    python benchmarks/bench_api.py
    python benchmarks/bench_api.py --runs 200 --requests 50
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TINY = {"circuit": {"name": "ghz", "n_qubits": 3}, "run": {"shots": 100}, "session": "bench"}


def fill_store(root: Path, runs: int) -> list[str]:
    """``runs`` finished runs recorded by the library call; their ids."""
    from hydra import compose, initialize_config_module

    from lret_runner.config import CONF_PACKAGE, register_configs
    from lret_runner.experiment import prepare, run
    from lret_runner.tracking import MlflowTracker

    register_configs()
    uri = f"sqlite:///{root}/mlruns/mlflow.db"
    overrides = ["circuit=ghz", "circuit.n_qubits=3", "run.shots=100", "session.name=bench",
                 "tracking.log_plots=false", f"tracking.tracking_uri={uri}"]  # fmt: skip
    with initialize_config_module(config_module=CONF_PACKAGE):
        cfg = compose(config_name="config", overrides=overrides)
    tracker = MlflowTracker(uri, None, 10.0)
    prepared = prepare(cfg)
    return [
        run(prepared, tracker, output_dir=root / "outputs" / str(i)).run_id or ""
        for i in range(runs)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(client: object, method: str, url: str, n: int, **kwargs: object) -> list[float]:
    out = []
    for i in range(n + 10):
        start = time.perf_counter()
        response = client.request(method, url() if callable(url) else url, **kwargs)  # type: ignore[attr-defined]
        elapsed = time.perf_counter() - start
        response.raise_for_status()
        if i >= 10:
            out.append(elapsed * 1000)
    return out


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--submit", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        ids = fill_store(root, args.runs)
        filled = time.perf_counter() - start
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlruns/mlflow.db"}
        env.pop("LRET_API_TOKEN", None)
        server = subprocess.Popen(
            [sys.executable, "-m", "lret_runner.cli", "serve", "--port", str(port),
             "--workers", "2"],
            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                for _ in range(300):
                    try:
                        if client.get("/health").status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.2)
                one = timed(
                    client, "GET", lambda: f"/experiments/{random.choice(ids)}", args.requests
                )
                page = timed(client, "GET", "/experiments?limit=50", args.requests)
                start = time.perf_counter()
                submitted = [
                    client.post("/experiments", json=TINY).json()["run_id"]
                    for _ in range(args.submit)
                ]
                posting = time.perf_counter() - start
                while any(
                    client.get(f"/experiments/{r}").json()["status"] in ("pending", "running")
                    for r in submitted
                ):
                    time.sleep(0.2)
                finishing = time.perf_counter() - start
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    print(f"### REST API on a store of {args.runs} finished runs (filled in {filled:.0f} s)\n")
    print("| request | median | 95th percentile |")
    print("|---|---|---|")
    for name, values in (("GET /experiments/{id}", one), ("GET /experiments?limit=50", page)):
        med, p95 = statistics.median(values), percentile(values, 0.95)
        print(f"| `{name}` ({len(values)} requests) | {med:.1f} ms | {p95:.1f} ms |")
    print(
        f"\n{args.submit} tiny submissions: {args.submit / posting:.1f} per second accepted "
        f"(202), all finished after {finishing:.1f} s ({args.submit / finishing:.2f} runs per "
        "second with 2 workers)."
    )


if __name__ == "__main__":
    main()
