"""Each PostgreSQL test in a schema of its own (`mw_test_<random>`), dropped afterwards: other
suites use the same server at once. Unreachable server or no psycopg: the test is skipped."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

SERVER = os.environ.get("MILLIWATT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def with_search_path(url: str, schema: str) -> str:
    """`url` whose connections all work in `schema` (libpq's options parameter)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A storage URL into a new, empty schema; the schema and its pool go afterwards."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (the postgres extra)")
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {SERVER} is unreachable: {exc}")
    schema = f"mw_test_{secrets.token_hex(6)}"
    url = with_search_path(SERVER, schema)
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield url
        finally:
            from milliwatt.storage.postgres import close_database

            close_database(url)
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


class TcpRelay:
    """A loopback TCP relay to the PostgreSQL server that a test can cut and restore: what a
    node sees when the database restarts or the network between them fails."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpRelay:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Close the listening socket and every relayed connection."""
        with self._lock:
            sockets, self._open = [*self._open, *filter(None, [self._listener])], []
            self._listener = None
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            server = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
