"""The REST API against a real uvicorn server on a loopback port, through the client.

A server is started as a subprocess (``python -m lret_runner.cli serve``) in a temporary
directory with its own SQLite store; the tests talk to it with
:class:`lret_runner.client.LRETClient` (and raw httpx where the client would hide the
point) and read the store back with MLflow.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from conftest import sqlite_uri
from hypothesis import HealthCheck, given, settings
from mlflow import MlflowClient

from lret_runner.client import APIError, LRETClient

GHZ = {"circuit": {"name": "ghz", "n_qubits": 3}, "run": {"shots": 100}, "session": "api"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``lret-runner serve`` in ``root`` on a free loopback port."""

    def __init__(self, root: Path, env: dict[str, str] | None = None, workers: int = 2) -> None:
        self.root, self.port = root, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "MLFLOW_TRACKING_URI": sqlite_uri(root), **(env or {})}
        if "LRET_API_TOKEN" not in (env or {}):
            self.env.pop("LRET_API_TOKEN", None)  # the user's shell must not set a token
        self.env["OPENBLAS_NUM_THREADS"] = "1"
        self.workers = workers
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> Server:
        cmd = [sys.executable, "-m", "lret_runner.cli", "serve", "--port", str(self.port),
               "--workers", str(self.workers)]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.proc.stdout.read()}")  # type: ignore[union-attr]
            time.sleep(0.2)
        raise RuntimeError("the server did not start within 60 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)  # the server and its worker processes
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("api")
    (root / "mlruns").mkdir()
    shutil.copy(empty_store, root / "mlruns" / "mlflow.db")
    srv = Server(root).start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: Server) -> Iterator[LRETClient]:
    with LRETClient(server.url, token="") as c:
        yield c


def test_health_and_index(client: LRETClient, server: Server) -> None:
    health = client.health()
    assert health["status"] == "ok" and health["tracking_reachable"]
    assert health["tracking_store"] == sqlite_uri(server.root)
    index = httpx.get(server.url + "/").json()
    assert "POST /experiments" in index["endpoints"] and index["docs"] == "/docs"
    assert httpx.get(server.url + "/docs").status_code == 200
    registry = {m["key"]: m for m in client.metrics()}
    assert registry["ideal_fidelity"]["reference"] == "the noiseless circuit"
    assert registry["exact_fidelity"]["reference"] == "the exact state of the same noisy circuit"
    assert "fidelity" not in registry  # no fidelity without its reference


def test_a_run_end_to_end_is_in_mlflow(client: LRETClient, server: Server) -> None:
    run = client.run_experiment(timeout=120, **GHZ, tags={"k": "v"})
    assert run["status"] == "finished", run["error"]
    assert sum(run["counts"].values()) == 100 and set(run["counts"]) <= {"000", "111"}
    assert run["metrics"]["exact_fidelity"] == pytest.approx(1.0, abs=1e-3)
    stored = MlflowClient(sqlite_uri(server.root)).get_run(run["run_id"])
    assert stored.info.status == "FINISHED" and stored.data.tags["k"] == "v"
    assert stored.data.tags["session"] == "api" and stored.data.params["circuit.n_qubits"] == "3"
    listed = client.list_experiments(session="api", status="finished", limit=1)
    assert listed["total"] >= 1 and len(listed["items"]) == 1


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        (
            {"circuit": {"name": "ghz", "n_qubits": 1000}},
            "circuit.n_qubits",
            "more than this server",
        ),
        ({"circuit": {"name": "ghz", "foo": 1}}, "circuit.foo", "not a key of circuit=ghz"),
        ({"circuit": {"name": "ghz", "n_qubits": "abc"}}, "circuit.n_qubits", ""),
        ({"circuit": {"name": "nope"}}, "circuit.name", "must be one of"),
        ({"noise": {"name": "depolarizing", "level": 2}}, "noise.level", "[0, 1]"),
        ({"run": {"shots": -1}}, "run.shots", ""),
        (
            {"circuit": {"name": "ghz", "n_qubits": "${oc.env:HOME}"}},
            "circuit.n_qubits",
            "interpol",
        ),
        ({"hydra": {"run": {"dir": "/tmp"}}}, "hydra", "Extra inputs"),
        ({"circuit": {"name": "qasm", "path": "../../etc/passwd"}}, "circuit.path", "QASM"),
        ({"circuit": {"_target_": "os.system"}}, "circuit._target_", "not a key"),
        ({"experiment": "scaling"}, "experiment", "batches"),
    ],
)
def test_invalid_requests_answer_422_naming_the_field(
    server: Server, body: dict[str, Any], field: str, needle: str
) -> None:
    answer = httpx.post(server.url + "/experiments", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert needle in answer.json()["message"]


def test_unknown_run_is_404_and_errors_are_json(client: LRETClient) -> None:
    with pytest.raises(APIError) as err:
        client.get_experiment("0" * 32)
    assert err.value.status_code == 404 and "does not exist" in err.value.message
    with pytest.raises(APIError) as err:
        client.list_experiments(session="no-such-session")
    assert err.value.status_code == 404


def test_twenty_concurrent_submissions_all_finish(client: LRETClient, server: Server) -> None:
    def one(i: int) -> str:
        with LRETClient(server.url) as c:
            return c.submit_experiment(**{**GHZ, "session": "burst", "run": {"seed": i}})["run_id"]

    with ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(one, range(20)))
    assert len(set(ids)) == 20
    ended = [client.wait(run_id, timeout=300) for run_id in ids]
    assert {r["status"] for r in ended} == {"finished"}
    stored = MlflowClient(sqlite_uri(server.root))
    experiment = stored.get_experiment_by_name("burst")
    runs = stored.search_runs([experiment.experiment_id])
    assert len(runs) == 20 and {r.info.status for r in runs} == {"FINISHED"}


def test_the_token_guards_every_route_but_health(tmp_path: Path, fresh_store: Path) -> None:
    srv = Server(tmp_path, env={"LRET_API_TOKEN": "secret"}, workers=1).start()
    try:
        assert httpx.get(srv.url + "/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "secret"}):
            answer = httpx.post(srv.url + "/experiments", json=GHZ, headers=headers)
            assert answer.status_code == 401 and "token" in answer.json()["message"]
        assert httpx.get(srv.url + "/experiments", headers={}).status_code == 401
        with LRETClient(srv.url, token="secret") as c:
            assert c.list_experiments()["total"] == 0
    finally:
        srv.stop()


def test_a_restart_in_the_middle_of_a_run_ends_it_interrupted(
    tmp_path: Path, fresh_store: Path
) -> None:
    srv = Server(tmp_path, workers=1).start()
    slow = {"circuit": {"name": "random", "n_qubits": 12, "depth": 400},
            "simulator": {"name": "fdm"}, "run": {"shots": 0}}  # fmt: skip
    try:
        with LRETClient(srv.url) as c:
            run_id = c.submit_experiment(**slow)["run_id"]
            queued = c.submit_experiment(**slow)["run_id"]  # waits for the only worker
            deadline = time.monotonic() + 60
            while c.get_experiment(run_id)["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.2)
        srv.stop(signal.SIGKILL)  # nothing is cleaned up by the server itself
        srv.start()
        with LRETClient(srv.url) as c:
            for rid, when in ((run_id, "while running"), (queued, "before it started")):
                run = c.get_experiment(rid)
                assert run["status"] == "failed"
                assert run["error"].startswith(f"interrupted: the API server stopped {when}")
            assert c.run_experiment(timeout=120, **GHZ)["status"] == "finished"  # still serves
    finally:
        srv.stop()


def test_a_sweep_batch_with_a_failing_experiment(client: LRETClient, server: Server) -> None:
    # a batch is checked whole when it is submitted (one invalid experiment: 422); a run
    # that fails while it runs is recorded FAILED and the others finish: here it runs out
    # of run.timeout_seconds
    batch = client.run_batch(
        [
            GHZ,
            {
                **GHZ,
                "circuit": {"name": "random", "n_qubits": 12, "depth": 300},
                "simulator": {"name": "fdm"},
                "run": {"shots": 0, "timeout_seconds": 0.5},
            },
        ],  # fmt: skip
        session="batch-api",
        timeout=300,
    )
    assert (batch["total"], batch["completed"], batch["failed"]) == (2, 1, 1)
    assert batch["status"] == "failed"
    failed = next(r for r in batch["results"] if r["status"] == "failed")
    assert "run.timeout_seconds=0.5 exceeded" in failed["error"]
    parent = MlflowClient(sqlite_uri(server.root)).get_run(batch["batch_id"])
    assert parent.info.status == "FAILED" and parent.data.metrics["failed"] == 1
    children = {r["run_id"] for r in batch["results"]}
    for run_id in children:
        tags = MlflowClient(sqlite_uri(server.root)).get_run(run_id).data.tags
        assert tags["mlflow.parentRunId"] == batch["batch_id"]


def test_a_grid_batch_and_its_cancellation(client: LRETClient) -> None:
    grid = client.run_batch(
        base={"circuit": {"name": "ghz"}, "run": {"shots": 10}},
        sweep={"circuit.n_qubits": [2, 3], "noise.level": [0.0, 0.01]},
        session="grid-api",
    )
    assert grid["total"] == grid["completed"] == 4 and grid["status"] == "finished", [
        (r["status"], r["error"]) for r in grid["results"]
    ]
    pairs = {(r["params"]["circuit.n_qubits"], r["params"]["noise.level"]) for r in grid["results"]}
    assert pairs == {(2, 0.0), (2, 0.01), (3, 0.0), (3, 0.01)}
    slow = {"circuit": {"name": "random", "n_qubits": 12, "depth": 400},
            "simulator": {"name": "fdm"}, "run": {"shots": 0}}  # fmt: skip
    started = client.run_batch([slow] * 4, session="cancel-api", wait=False)
    deadline = time.monotonic() + 60
    while client.get_batch(started["batch_id"])["running"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    client.cancel_batch(started["batch_id"])
    deadline = time.monotonic() + 60
    while (batch := client.get_batch(started["batch_id"]))["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert batch["killed"] == 4 and batch["status"] == "killed"
    assert all("cancelled" in r["error"] for r in batch["results"])


def test_batch_requests_are_checked_whole(server: Server) -> None:
    bad = {"experiments": [GHZ, {"circuit": {"name": "ghz", "n_qubits": 99}}]}
    answer = httpx.post(server.url + "/batches", json=bad)
    assert answer.status_code == 422 and answer.json()["field"] == "experiments[1].circuit.n_qubits"
    too_many = {"base": GHZ, "sweep": {"run.seed": list(range(101))}}
    answer = httpx.post(server.url + "/batches", json=too_many)
    assert (
        answer.status_code == 422
        and "more than this server allows (100" in answer.json()["message"]
    )
    assert httpx.get(server.url + "/batches/" + "0" * 32).status_code == 404


def test_read_side_sessions_lineage_compare_artifacts(client: LRETClient, server: Server) -> None:
    first = client.run_experiment(**{**GHZ, "session": "reads"})
    noisy = {"name": "depolarizing", "level": 0.05}
    second = client.run_experiment(
        **{**GHZ, "session": "reads", "parent": first["run_id"], "noise": noisy}
    )
    url = server.url
    sessions = {s["name"] for s in httpx.get(url + "/sessions").json()}
    assert "reads" in sessions
    assert httpx.get(url + "/sessions/reads").json()["runs"] == 2
    chain = httpx.get(f"{url}/experiments/{second['run_id']}/lineage").json()["chain"]
    assert [s["run_id"] for s in chain] == [first["run_id"], second["run_id"]]
    compared = httpx.get(f"{url}/compare", params={"ids": f"{first['run_id']},{second['run_id']}"})
    assert "noise.level" in compared.json()["params"]
    png = httpx.get(f"{url}/experiments/{first['run_id']}/artifacts/summary.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    for path in ("../../mlflow.db", "%2e%2e/%2e%2e/mlflow.db", "/etc/passwd", "nope.png"):
        answer = httpx.get(f"{url}/experiments/{first['run_id']}/artifacts/{path}")
        assert answer.status_code == 404, path


# ---------------------------------------------------------------- fuzzing the OpenAPI schema
# schemathesis generates requests (valid and invalid) from the server's OpenAPI schema for
# every operation: no answer may be a 500, an invalid request must be a 4xx, and answers
# must match the documented status codes and bodies. Small limits keep the valid requests
# that do run cheap. Not checked: that every schema-valid request is accepted (the OpenAPI
# schema leaves the sections open; the config schemas refuse most generated values, 422).
ACCEPTED_AS_VALID = schemathesis.checks.positive_data_acceptance
FUZZ_LIMITS = {
    "LRET_API_MAX_QUBITS": "6",
    "LRET_API_MAX_DEPTH": "20",
    "LRET_API_MAX_SHOTS": "5000",
    "LRET_API_MAX_BATCH": "3",
}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "mlruns").mkdir()
    shutil.copy(empty_store, root / "mlruns" / "mlflow.db")
    srv = Server(root, env=FUZZ_LIMITS).start()
    yield srv
    srv.stop()


def test_fuzzed_requests_never_crash_the_server(fuzzed: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,  # the same examples every run: CI does not flake
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(base_url=fuzzed.url, excluded_checks=[ACCEPTED_AS_VALID])

        check()


def test_query_maps_plain_english_and_submits(client: LRETClient) -> None:
    dry = client.query("qft on 6 qubits, exact", dry_run=True)
    assert dry["experiment"] == {
        "circuit": {"name": "qft", "n_qubits": 6},
        "simulator": {"name": "fdm"},
    }
    assert dry["submitted"] is None
    one = client.query(
        "run a 3 qubit ghz circuit with 1% depolarizing noise on lret with 100 shots"
    )
    run = client.wait(one["submitted"]["run_id"])
    assert run["status"] == "finished" and sum(run["counts"].values()) == 100
    assert run["params"]["noise.level"] == 0.01 and run["session"] == "api"
    compared = client.query("compare lret and fdm on 3 qubits depth 4", session="nl")
    batch_id = compared["submitted"]["batch_id"]
    deadline = time.monotonic() + 120
    while (state := client.get_batch(batch_id))["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert {r["params"]["simulator.name"] for r in state["results"]} == {"lret", "fdm"}
    with pytest.raises(APIError) as err:
        client.query("make me a sandwich")
    assert err.value.status_code == 422 and "missing" in err.value.message
