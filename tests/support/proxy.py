"""A counting, latency-adding HTTP/1.1 reverse proxy on 127.0.0.1 in front of a registry or token server."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Callable
from urllib.parse import urlsplit

from .loopback import LoopbackServer

# Hop-by-hop headers (RFC 9110 section 7.6.1) are per connection and never forwarded.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade",
})
_REWRITTEN = ("location", "www-authenticate", "content-location")


@dataclass(frozen=True)
class ProxiedRequest:
    """One request that went through the proxy."""

    method: str
    path: str
    query: str
    status: int  # 502 when the upstream could not be reached
    authorization: bool  # whether the client sent an Authorization header
    auth_scheme: str | None  # "Basic", "Bearer", ... as sent


class LatencyProxy(LoopbackServer):
    """Forward every request to ``upstream`` after sleeping ``latency`` seconds, and record it.

    Absolute URLs in ``Location``/``Content-Location``/``WWW-Authenticate`` that start with ``upstream`` are rewritten
    to the proxy's URL so clients stay on the proxy (distribution's upload ``Location`` is absolute); ``rewrites``
    adds more prefix mappings, e.g. a token realm to a second proxy in front of the token server.
    Client and upstream connections are kept alive (one upstream connection per client connection).
    """

    name = "latency-proxy"

    def __init__(
        self,
        upstream: str,
        *,
        latency: float = 0.0,
        ca_path: str | None = None,
        rewrites: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__()
        parts = urlsplit(upstream.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http(s) URL, got {upstream!r}")
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        self._upstream_parts = parts
        self.latency = latency
        self.ca_path = ca_path
        self.extra_rewrites = dict(rewrites or {})
        self.timeout = timeout
        self._lock = threading.Lock()
        self._records: list[ProxiedRequest] = []
        self._connections: set[socket.socket] = set()

    # -- lifecycle -------------------------------------------------------------------------------------------
    def _before_join(self) -> None:
        with self._lock:
            conns = list(self._connections)
        for conn in conns:  # wake handler threads blocked on idle keep-alive connections
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # -- records ---------------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[ProxiedRequest]:
        """A snapshot of every request so far, in completion order."""
        with self._lock:
            return list(self._records)

    def count(
        self,
        method: str | None = None,
        *,
        path_contains: str | None = None,
        status: int | None = None,
        where: Callable[[ProxiedRequest], bool] | None = None,
    ) -> int:
        """How many recorded requests match every given filter."""
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method)
            and (path_contains is None or path_contains in r.path)
            and (status is None or r.status == status)
            and (where is None or where(r))
        )

    def reset(self) -> None:
        with self._lock:
            self._records.clear()

    def _record(self, record: ProxiedRequest) -> None:
        with self._lock:
            self._records.append(record)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    # -- forwarding ------------------------------------------------------------------------------------------
    def _new_upstream(self) -> http.client.HTTPConnection:
        parts = self._upstream_parts
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=self.ca_path)
            return http.client.HTTPSConnection(parts.hostname or "", parts.port or 443, timeout=self.timeout,
                                               context=context)
        return http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=self.timeout)

    def rewrite(self, value: str) -> str:
        for old, new in [(self.upstream, self.url), *self.extra_rewrites.items()]:
            value = value.replace(old, new)
        return value


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_obj: LatencyProxy
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: object) -> None:  # silence stderr
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server_obj.timeout)
        self.server_obj._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server_obj._track(self.connection, False)
            if self._upstream is not None:
                self._upstream.close()

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        return self.rfile.read(int(length)) if length else None

    def _forward(self) -> None:
        proxy = self.server_obj
        body = self._read_body()
        if proxy.latency:
            time.sleep(proxy.latency)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "host"}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        parts = urlsplit(self.path)
        authz = self.headers.get("Authorization")
        status, resp_headers, data = 502, [("Content-Type", "text/plain")], b"upstream unreachable\n"
        for attempt in range(2):  # an idle upstream keep-alive connection may have been closed: retry once
            if self._upstream is None:
                self._upstream = proxy._new_upstream()
            try:
                self._upstream.request(self.command, self.path, body=body, headers=headers)
                resp = self._upstream.getresponse()
                data = resp.read()
                status, resp_headers = resp.status, resp.getheaders()
                if resp.will_close:
                    self._upstream.close()
                    self._upstream = None
                break
            except (OSError, http.client.HTTPException) as exc:
                self._upstream.close()
                self._upstream = None
                data = f"upstream error: {exc}\n".encode()
                if attempt:
                    break
        # Record before answering, so a client that has its response always sees its request counted.
        proxy._record(ProxiedRequest(self.command, parts.path, parts.query, status, authz is not None,
                                     authz.split(" ", 1)[0] if authz else None))
        self.send_response_only(status)  # upstream's Date/Server are forwarded, not added twice
        has_length = False
        for key, value in resp_headers:
            lower = key.lower()
            if lower in _HOP_BY_HOP:
                continue
            if lower == "content-length":
                has_length = True
                if self.command != "HEAD":
                    value = str(len(data))
            elif lower in _REWRITTEN:
                value = proxy.rewrite(value)
            self.send_header(key, value)
        if not has_length and self.command != "HEAD" and status not in (204, 304):
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(data)
        self.wfile.flush()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _forward


LatencyProxy.handler_class = _ProxyHandler
