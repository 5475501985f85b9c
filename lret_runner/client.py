"""``LRETClient``: the REST API from Python (httpx).

::

    from lret_runner.client import LRETClient

    client = LRETClient("http://127.0.0.1:8000")          # or $LRET_API_URL, $LRET_API_TOKEN
    run = client.run_experiment(circuit={"name": "ghz", "n_qubits": 3}, run={"shots": 100})
    run["status"], run["counts"]

Every call returns the API's JSON as a dict. An HTTP error raises :class:`APIError`
(``status_code``, ``message``, ``field``); :meth:`LRETClient.run_experiment` raises
:class:`APITimeout` when the run has not ended within ``timeout`` seconds.
"""

from __future__ import annotations

import os
import time
from typing import Any

DONE = ("finished", "failed", "killed")


class APIError(Exception):
    """The API answered with an error status."""

    def __init__(self, status_code: int, message: str, field: str | None = None) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code, self.message, self.field = status_code, message, field


UNREACHABLE = 503  # the status an APIError carries when the server gave no HTTP answer


class APITimeout(APIError):
    """A run did not end within the time given (it may still end later)."""

    def __init__(self, run_id: str, timeout: float, status: str) -> None:
        super().__init__(408, f"run {run_id} still {status} after {timeout:g} s")
        self.run_id = run_id


class LRETClient:
    """A client of one server (``base_url``: argument, else ``$LRET_API_URL``, else
    ``http://127.0.0.1:8000``; ``token``: argument, else ``$LRET_API_TOKEN``)."""

    def __init__(
        self, base_url: str | None = None, token: str | None = None, timeout: float = 30.0
    ) -> None:
        import httpx

        url = base_url or os.environ.get("LRET_API_URL") or "http://127.0.0.1:8000"
        token = token if token is not None else os.environ.get("LRET_API_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LRETClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:  # refused, reset, timed out: no HTTP answer
            raise APIError(
                UNREACHABLE, f"the server {self._http.base_url} did not answer: {exc}"
            ) from exc
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"message": response.text}
            raise APIError(response.status_code, str(body.get("message")), body.get("field"))
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def metrics(self) -> list[dict[str, Any]]:
        """The figures a run reports, each with what it is measured against."""
        return self._call("GET", "/metrics")

    def submit_experiment(self, **request: Any) -> dict[str, Any]:
        """Queue one experiment (the keys of ``POST /experiments``); ``{run_id, status}``."""
        return self._call("POST", "/experiments", json=request)

    def get_experiment(self, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/experiments/{run_id}")

    def list_experiments(
        self,
        limit: int = 50,
        status: str | None = None,
        session: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        if session is not None:
            params["session"] = session
        if tags:
            params["tag"] = [f"{k}={v}" for k, v in tags.items()]
        return self._call("GET", "/experiments", params=params)

    def wait(self, run_id: str, timeout: float = 300.0, poll: float = 0.2) -> dict[str, Any]:
        """Poll a run until it is finished, failed or killed (:class:`APITimeout` after
        ``timeout`` seconds); the run."""
        return _until(lambda: self.get_experiment(run_id), run_id, timeout, poll)

    def run_experiment(self, timeout: float = 300.0, **request: Any) -> dict[str, Any]:
        """Submit and wait: the ended run (its status may be failed: check it)."""
        return self.wait(self.submit_experiment(**request)["run_id"], timeout)

    def run_batch(
        self,
        experiments: list[dict[str, Any]] | None = None,
        *,
        base: dict[str, Any] | None = None,
        sweep: dict[str, list[Any]] | None = None,
        session: str | None = None,
        wait: bool = True,
        timeout: float = 600.0,
    ) -> dict[str, Any]:
        """Submit a batch (a list of experiments, or ``base`` with a ``sweep`` grid); with
        ``wait``, poll until every run has ended and return the batch."""
        body: dict[str, Any] = {"experiments": experiments, "base": base, "sweep": sweep}
        body = {k: v for k, v in {**body, "session": session}.items() if v is not None}
        batch_id = self._call("POST", "/batches", json=body)["batch_id"]
        if not wait:
            return self.get_batch(batch_id)
        return _until(lambda: self.get_batch(batch_id), batch_id, timeout)

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        return self._call("GET", f"/batches/{batch_id}")

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/batches/{batch_id}")

    def query(self, text: str, dry_run: bool = False, session: str | None = None) -> dict[str, Any]:
        """A request in plain English: what it was understood as and, unless ``dry_run``,
        what was submitted (``submitted``: a run id, or a batch for a sweep). A request it
        cannot map raises :class:`APIError` (422) saying what is missing."""
        body: dict[str, Any] = {"text": text, "dry_run": dry_run}
        if session is not None:
            body["session"] = session
        return self._call("POST", "/query", json=body)


def _until(fetch: Any, ident: str, timeout: float, poll: float = 0.2) -> dict[str, Any]:
    """Poll ``fetch()`` (a run or a batch) until its status is finished, failed or killed
    (a batch ends once its last run has); :class:`APITimeout` after ``timeout`` seconds. A
    server that does not answer or answers 5xx (restarting) is asked again, backing off up
    to 5 s between tries; a 4xx answer is raised at once."""
    deadline = time.monotonic() + timeout
    pause = poll
    while True:
        try:
            state = fetch()
            status, pause = state["status"], poll
        except APIError as exc:  # a server restarting, or briefly overloaded: try again
            if exc.status_code < 500:
                raise
            state, status, pause = None, f"unknown ({exc.message})", min(2 * pause, 5.0)
        if state is not None and status in DONE:
            return state
        if time.monotonic() >= deadline:
            raise APITimeout(ident, timeout, status)
        time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
