"""A scriptable loopback HTTP(S) server playing a hostile or broken registry, token server or redirect target.

Each test sets ``server.handler``: a function from the recorded request to a :class:`Reply` (a status, headers and
body; a hang; or raw bytes written verbatim, for header lines no HTTP library would produce).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Callable
from urllib.parse import urlsplit

from .loopback import LoopbackServer, QuietHTTPServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Seen:
    """One request as the server received it; header names lower-cased."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""
    peer: int = 0  # the client's port: one per connection

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass(frozen=True)
class Reply:
    """What to answer. ``hang`` never answers (until the server stops); ``raw`` is sent instead of a response.

    ``length=False`` omits Content-Length and ends the body by closing the connection. ``drip`` sends ``raw`` in
    ``drips`` (e.g. one header line or one byte each) with that many seconds between them: a trickling server.
    """

    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    length: bool = True
    hang: bool = False
    raw: bytes | None = None
    drip: float = 0.0
    drips: Sequence[bytes] = ()


Handler = Callable[[Seen], Reply]


def manifest(salt: str = "") -> tuple[bytes, str]:
    """A valid OCI image manifest (config digest made up; HEAD/GET never fetch it) and its digest."""
    config = "sha256:" + hashlib.sha256(f"config {salt}".encode()).hexdigest()
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [],
        }
    ).encode()
    return body, "sha256:" + hashlib.sha256(body).hexdigest()


def serve_manifest(body: bytes, digest: str | None = None, media_type: str = OCI_MANIFEST) -> Reply:
    headers = [("Content-Type", media_type)]
    if digest is not None:
        headers.append(("Docker-Content-Digest", digest))
    return Reply(200, headers, body)


def not_found(seen: Seen) -> Reply:
    return Reply(404, [("Content-Type", "application/json")], b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')


class HostileServer(LoopbackServer):
    """A threaded server on 127.0.0.1 (https when given an ``ssl_context``) answering with ``handler``."""

    name = "hostile-server"
    poll_interval = 0.02

    def __init__(self, handler: Handler = not_found, *, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.handler = handler
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._stopping = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------------------
    def _wrap(self, httpd: QuietHTTPServer) -> None:
        if self._ssl_context is not None:
            httpd.socket = self._ssl_context.wrap_socket(httpd.socket, server_side=True)

    def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers
        super().stop()

    # -- addresses -------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{self.host}"

    # -- records ---------------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def count(self, path_contains: str = "", method: str | None = None) -> int:
        return sum(1 for s in self.requests if path_contains in s.path and method in (None, s.method))

    def reset(self, handler: Handler | None = None) -> None:
        with self._lock:
            self._seen.clear()
        if handler is not None:
            self.handler = handler

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)


class _HostileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_obj: HostileServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        length = self.headers.get("Content-Length")
        body = self.rfile.read(int(length)) if length and length.isdigit() else b""
        parts = urlsplit(self.path)
        seen = Seen(self.command, parts.path, parts.query, {k.lower(): v for k, v in self.headers.items()}, body,
                    self.client_address[1])
        owner = self.server_obj
        owner._record(seen)
        reply = owner.handler(seen)
        if reply.hang:
            owner._stopping.wait(30)
            self.close_connection = True
            return
        if reply.drips:
            with contextlib.suppress(OSError):
                for piece in reply.drips:
                    self.wfile.write(piece)
                    self.wfile.flush()
                    if owner._stopping.wait(reply.drip):
                        break
            self.close_connection = True
            return
        if reply.raw is not None:
            self.wfile.write(reply.raw)
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(reply.status)
        names = {k.lower() for k, _ in reply.headers}
        for key, value in reply.headers:
            self.send_header(key, value)
        if reply.length and "content-length" not in names:
            self.send_header("Content-Length", str(len(reply.body)))
        if not reply.length:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(OSError):
                self.wfile.write(reply.body)
        self.wfile.flush()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FakeDNS:
    """A ``socket.getaddrinfo`` replacement: ``*.test`` names go to 127.0.0.1, ``*.invalid`` fail as NXDOMAIN,
    loopback names pass through; anything else is refused and recorded, so no test ever looks up a real name."""

    real: Callable[..., list[tuple[object, ...]]]
    looked_up: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def __call__(self, host: object, port: object, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.looked_up.append(name)
        lower = name.lower().rstrip(".")
        if lower.endswith(".test"):
            return self.real("127.0.0.1", port, *args, **kwargs)
        if lower in ("localhost", "127.0.0.1", "::1") or lower.startswith("127."):
            return self.real(name, port, *args, **kwargs)
        if not lower.endswith(".invalid"):
            self.refused.append(name)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


HostileServer.handler_class = _HostileHandler
