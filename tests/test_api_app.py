"""The API's HTTP layer in process (FastAPI's TestClient, the service started with it):
authentication and request parsing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lret_runner.api.app import create_app
from lret_runner.api.service import Settings
from lret_runner.errors import UserError


@pytest.fixture
def client(tmp_path: Path, fresh_store: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(root=tmp_path, token="secret"))) as c:
        yield c


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_auth_scheme_is_case_insensitive(client: TestClient, scheme: str) -> None:
    """RFC 9110: the scheme's case does not matter; the token still does."""
    assert (
        client.get("/experiments", headers={"Authorization": f"{scheme} secret"}).status_code == 200
    )
    assert (
        client.get("/experiments", headers={"Authorization": f"{scheme} wrong"}).status_code == 401
    )


@pytest.mark.parametrize("value", [0, 1, "false", "yes"])
def test_query_dry_run_takes_only_a_boolean(client: TestClient, value: object) -> None:
    """``"dry_run": 0`` was coerced to false and the request submitted: only true or false
    are accepted (422 naming dry_run), nothing is submitted."""
    answer = client.post(
        "/query",
        json={"text": "ghz on 2 qubits", "dry_run": value},
        headers={"Authorization": "Bearer secret"},
    )
    assert answer.status_code == 422, answer.text
    assert "dry_run" in answer.text
    listed = client.get("/experiments", headers={"Authorization": "Bearer secret"}).json()
    assert listed["total"] == 0


def test_the_tracking_uri_password_is_never_shown(tmp_path: Path) -> None:
    """A tracking URI with credentials (http://alice:hunter2@...): /health, which needs no
    token, shows it as alice:***@..., and an error message quoting it is scrubbed."""
    from lret_runner.api.service import Service
    from lret_runner.tracking.store import redact

    uri = "http://alice:hunter2@127.0.0.1:9/"
    assert redact(uri) == "http://alice:***@127.0.0.1:9/"
    assert redact("sqlite:////tmp/x/mlflow.db") == "sqlite:////tmp/x/mlflow.db"
    with pytest.raises(UserError) as err:  # the store is unreachable: its message too
        Service(Settings(root=tmp_path, tracking_uri=uri))
    assert "hunter2" not in str(err.value) and "alice:***@127.0.0.1:9" in str(err.value)
    service = Service.__new__(Service)  # what a running server answers with that URI
    service.uri = uri
    assert service.scrub(f"cannot reach {uri} (hunter2)") == (
        "cannot reach http://alice:***@127.0.0.1:9/ (***)"
    )


def test_the_client_raises_only_its_own_errors_when_the_server_is_gone() -> None:
    """No server on the port (a restart in progress): a call raises APIError 503 naming the
    server, and wait() keeps asking with back-off until its timeout, then APITimeout; never
    a raw httpx error."""
    import socket
    import time

    from lret_runner.client import APIError, APITimeout, LRETClient

    with socket.socket() as s:  # a free loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with LRETClient(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(APIError) as err:
            client.get_experiment("0" * 32)
        assert err.value.status_code == 503 and f"127.0.0.1:{port}" in err.value.message
        start = time.monotonic()
        with pytest.raises(APITimeout) as timeout:
            client.wait("0" * 32, timeout=1.0, poll=0.05)
        assert 1.0 <= time.monotonic() - start < 3.0
        assert "unknown" in timeout.value.message


def test_a_405_lists_every_method_the_path_takes(client: TestClient) -> None:
    """/experiments takes GET and POST (two routes): PUT answers 405 with both in Allow."""
    answer = client.put("/experiments", headers={"Authorization": "Bearer secret"})
    assert answer.status_code == 405
    allowed = {m.strip() for m in answer.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed
