"""A GCS emulator for tests: gcp-storage-emulator (in memory) on loopback, in a thread of
this process. The real ``google-cloud-storage`` client reaches it through
``STORAGE_EMULATOR_HOST`` (with anonymous credentials, which it then picks itself)."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"


@dataclass
class Gcs:
    """A running emulator: ``url`` is what ``STORAGE_EMULATOR_HOST`` is set to."""

    url: str
    server: Any

    @property
    def env(self) -> dict[str, str]:
        return {EMULATOR_ENV: self.url}

    def client(self) -> Any:
        """A storage client of the emulator (whatever this process's environment says)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )

    def names(self, bucket: str, prefix: str = "") -> list[str]:
        """The objects' names under ``prefix`` in ``bucket``."""
        return sorted(b.name for b in self.client().list_blobs(bucket, prefix=prefix or None))

    def wipe(self, buckets: Sequence[str] = ()) -> None:
        """Delete everything, then create ``buckets`` again."""
        from gcp_storage_emulator.handlers.buckets import create_bucket

        self.server.wipe()
        for bucket in buckets:
            create_bucket(bucket, self.server._storage)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gcs_emulator(buckets: Sequence[str] = ("b",)) -> Iterator[Gcs]:
    """An in-memory emulator with ``buckets`` created, stopped on exit."""
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    gcs = Gcs(f"http://127.0.0.1:{port}", server)
    gcs.wipe(buckets)
    try:
        yield gcs
    finally:
        server.stop()
