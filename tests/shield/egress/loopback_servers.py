"""Real HTTP and HTTPS servers on 127.0.0.1 for the egress client tests."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Seen:
    """What the server observed: (path, Host header) and the client's address, per request."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    peers: list[tuple[str, int]] = field(default_factory=list)  # client address per request


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.requests.append((self.path, self.headers.get("Host", "")))
        self.server.seen.peers.append(self.client_address)
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/redirect":
            self._send(int(query.get("status", "302")), b"", {"Location": query["to"]})
        elif url.path == "/loop":
            self._send(302, b"", {"Location": "/loop"})
        elif url.path == "/host":
            self._send(200, self.headers.get("Host", "").encode(), {"Content-Type": "text/plain"})
        elif url.path == "/bytes":
            self._send(200, b"x" * int(query["n"]), {"Content-Type": "text/plain"})
        elif url.path == "/drip":
            self._drip(float(query.get("every", "0.2")))
        else:
            self._send(200, b"hello from loopback", {"Content-Type": "text/plain"})

    def do_POST(self) -> None:
        self.server.seen.requests.append((self.path, self.headers.get("Host", "")))
        self.server.seen.peers.append(self.client_address)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._send(200, b"POST " + body, {"Content-Type": "text/plain"})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self, every: float) -> None:
        """Headers at once, then one byte at a time: each read is quick, the whole is slow."""
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(every)
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    seen: Seen


class _Server6(_Server):
    address_family = socket.AF_INET6


@contextmanager
def http_server(
    tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> Iterator[tuple[int, Seen]]:
    server = (_Server6 if ":" in host else _Server)((host, 0), _Handler)
    server.seen = Seen()
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server.seen
    finally:
        server.shutdown()
        server.server_close()


def self_signed(name: str, directory: Path) -> tuple[Path, Path]:
    """A certificate for `name` and its key, as PEM files in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def tls_server_context(cert: Path, key: Path, seen_sni: list[str | None]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def remember(_sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        seen_sni.append(server_name)

    context.sni_callback = remember  # type: ignore[assignment]
    return context
