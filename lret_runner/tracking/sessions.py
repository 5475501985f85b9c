"""Sessions: an MLflow experiment per ``session.name``, its state in the experiment's tags.

A session is open, closed (runs into it are refused until resumed) or expired (open,
with an idle timeout that has passed since the last run or resume).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lret_runner.errors import SessionError
from lret_runner.tracking import vocabulary as V
from lret_runner.tracking.store import store_lock

NAME_MAX_CHARS = 500  # MLflow's limit on an experiment name
# a run into a session without an idle timeout rewrites its last access at most this often
ACCESS_REFRESH_SECONDS = 60.0


@dataclass
class SessionInfo:
    """A session's state."""

    name: str
    id: str  # the MLflow experiment id
    status: str  # open, closed or expired
    description: str
    timeout_hours: float | None  # idle hours before it expires (None: never)
    last_access: str | None  # ISO time of the last run or resume
    created: str | None  # ISO time

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def iso_from_ms(ms: int | None) -> str | None:
    if not ms:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def session_info(exp: Any) -> SessionInfo:
    """Session state from an MLflow experiment's tags (closed wins over expired)."""
    from datetime import UTC, datetime, timedelta

    tags = exp.tags or {}
    status = tags.get(V.SESSION_STATUS, "open")
    timeout = tags.get(V.SESSION_TIMEOUT)
    last = tags.get(V.SESSION_ACCESS)
    if status == "open" and timeout and last:
        if datetime.fromisoformat(last) + timedelta(hours=float(timeout)) < datetime.now(UTC):
            status = "expired"
    return SessionInfo(
        name=exp.name,
        id=str(exp.experiment_id),
        status=status,
        description=tags.get(V.SESSION_DESCRIPTION, ""),
        timeout_hours=float(timeout) if timeout else None,
        last_access=last,
        created=iso_from_ms(exp.creation_time),
    )


def check_name(name: Any) -> str:
    """A usable session name, else a :class:`SessionError` naming ``session.name``.

    Called before anything is written to the session: an empty name or one longer than
    MLflow allows for an experiment would otherwise fail inside MLflow.
    """
    allowed = f"a session name is a non-empty text of at most {NAME_MAX_CHARS} characters"
    if not isinstance(name, str) or not name.strip():
        raise SessionError(
            f"session.name={name!r} is invalid: {allowed}; set session.name=<name> "
            "(the default is 'default')"
        )
    if len(name) > NAME_MAX_CHARS:
        raise SessionError(
            f"session.name={name[:20]!r}... ({len(name)} characters) is invalid: {allowed}; "
            "choose a shorter session.name"
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise SessionError(
            f"session.name={name!r} is invalid: it is not valid text (a lone surrogate); "
            "choose a name of ordinary characters"
        ) from None
    if any(not c.isprintable() for c in name):
        raise SessionError(
            f"session.name={name!r} is invalid: it holds control characters; choose a name "
            "of ordinary characters"
        )
    return name


def _check_artifact_location(location: str | None) -> None:
    """A local artifact location must be a directory this process can make: MLflow stores it
    on the new session, and every later run in it would fail on a location the user no
    longer passes. Remote locations (s3://, gs://, a server's) are the store's to check."""
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    if location is None:
        return
    parts = urlsplit(location)
    if parts.scheme not in ("", "file"):
        return
    path = Path(url2pathname(parts.path) if parts.scheme == "file" else location)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SessionError(
            f"tracking.artifact_location={location!r} cannot be used ({exc.strerror or exc}): "
            "point it at a directory this user can write; the session was not created"
        ) from None


class Sessions:
    """Session operations on one store (``client`` is a :class:`RetryingClient`)."""

    def __init__(self, client: Any, uri: str, artifact_location: str | None) -> None:
        self.client, self.uri, self.artifact_location = client, uri, artifact_location

    def ensure(self, name: str, description: str = "", timeout_hours: float | None = None) -> str:
        """The session's experiment id, creating it (open, with its description) on first use."""
        return str(self._ensure(name, description, timeout_hours)[0].experiment_id)

    def _ensure(
        self, name: str, description: str = "", timeout_hours: float | None = None
    ) -> tuple[Any, bool]:
        """The session's MLflow experiment, and whether this call created it."""
        check_name(name)
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp, False
        # parallel jobs race to create it: a file lock for SQLite, the server's answer else
        with store_lock(self.uri):
            exp = self.client.get_experiment_by_name(name)
            if exp is not None:
                return exp, False
            tags = {
                V.SESSION_DESCRIPTION: description,
                V.SESSION_STATUS: "open",
                V.SESSION_ACCESS: now_iso(),
            }
            if timeout_hours is not None:
                tags[V.SESSION_TIMEOUT] = str(timeout_hours)
            _check_artifact_location(self.artifact_location)  # it is stored with the session
            try:
                experiment_id = self.client.create_experiment(
                    name, artifact_location=self.artifact_location, tags=tags
                )
            except Exception as exc:  # a tracking server: another process made it first
                if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                    raise
                return self.client.get_experiment_by_name(name), False
            return self.client.get_experiment(experiment_id), True

    def create(self, name: str, description: str = "", timeout_hours: float | None = None) -> str:
        if self.client.get_experiment_by_name(check_name(name)) is not None:
            raise SessionError(f"session {name!r} already exists")
        return self.ensure(name, description, timeout_hours)

    def get(self, name: str) -> SessionInfo:
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            raise SessionError(f"session {name!r} does not exist")
        return session_info(exp)

    def all(self, include_all: bool = False) -> list[SessionInfo]:
        """Every session (MLflow experiment), open ones only unless ``include_all``."""
        from mlflow.entities import ViewType

        out, token = [], None
        while True:
            page = self.client.search_experiments(
                view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
            )
            out += [session_info(e) for e in page]
            token = page.token
            if not token:
                break
        return [s for s in out if include_all or s.status == "open"]

    def set_status(self, name: str, status: str) -> SessionInfo:
        """Close a session, or reopen it (``open`` also restarts its idle clock)."""
        info = self.get(name)
        self.client.set_experiment_tag(info.id, V.SESSION_STATUS, status)
        self.client.set_experiment_tag(info.id, V.SESSION_ACCESS, now_iso())
        return self.get(name)

    def open(self, name: str, description: str = "") -> str:
        """The experiment id a run may write to: created if new, refused if closed or expired.

        The last access is written (a store write, ~20 ms on SQLite) unless it is recent
        enough to change nothing: a session without an idle timeout is touched at most every
        :data:`ACCESS_REFRESH_SECONDS` (its last access is only shown), one with a timeout
        on every run (it decides when the session expires).
        """
        exp, created = self._ensure(name, description)
        info = session_info(exp)
        if info.status != "open":
            raise SessionError(
                f"session {name!r} is {info.status}: runs into it are refused. "
                f"Reopen it with `lret-runner sessions resume {name}` "
                "or choose another session.name"
            )
        if not created and _stale(info):
            self.client.set_experiment_tag(info.id, V.SESSION_ACCESS, now_iso())
        return info.id


def _stale(info: SessionInfo) -> bool:
    """Whether a run into the session must write its last access (see :meth:`Sessions.open`)."""
    from datetime import UTC, datetime

    if info.timeout_hours is not None or not info.last_access:
        return True
    try:
        age = (datetime.now(UTC) - datetime.fromisoformat(info.last_access)).total_seconds()
    except (ValueError, TypeError):  # not an ISO time with a zone (edited by hand)
        return True
    return not 0 <= age < ACCESS_REFRESH_SECONDS
