"""The default wire: HTTP/1.1 over the standard library's ``http.client``, with a keep-alive pool per origin and
TLS that trusts what requests would trust (the CA file given for the host, else REQUESTS_CA_BUNDLE or
CURL_CA_BUNDLE, else certifi's bundle), hostnames checked, TLS 1.2 or later. No proxy support: the run uses
requests_wire when a proxy variable is set."""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import socket
import ssl
import threading
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from .hosts import DEFAULT_PORTS, address
from .wire import (
    ConnectionFailure,
    Headers,
    RequestFailure,
    Response,
    TLSFailure,
    WireError,
    cap_for,
    declared_over,
    fill,
)

# Idle connections kept per origin: the plan runs at most this many lookups per registry at once.
_MAX_IDLE = 32
# What a request target may hold as is: RFC 3986's reserved and unreserved characters and '%'. Anything else (a
# space, a non-ASCII letter in a hostile Location) is percent-encoded, as requests does; http.client would refuse it.
_SAFE = "!#$%&'()*+,/:;=?@[]~-._"
_Key = tuple[str, str, int, "str | None"]


def trust(verify: str | None, env: Mapping[str, str]) -> str:
    """The CA file or directory a TLS connection verifies against, chosen as requests chooses it."""
    where = verify or env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")
    if where:
        return where
    return _certifi_bundle()


@functools.lru_cache(maxsize=1)
def _certifi_bundle() -> str:
    """certifi's bundle, as certifi.where() names it. Importing certifi costs ~35 ms (it imports importlib.resources)
    where the file sits beside its package in every ordinary install: look there first."""
    import importlib.util

    spec = importlib.util.find_spec("certifi")
    if spec is not None and spec.origin:
        beside = os.path.join(os.path.dirname(spec.origin), "cacert.pem")
        if os.path.isfile(beside):
            return beside
    import certifi  # a zipped install: certifi knows where it extracted the file

    return str(certifi.where())


_CONTEXTS: dict[str, ssl.SSLContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def tls_context(where: str) -> ssl.SSLContext:
    """One context per CA source, shared by every connection that trusts it. Loading a public bundle costs ~40 ms
    of CPU (the GIL released meanwhile): connections opened at once wait for the first to build it."""
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get(where)
        if context is None:
            if os.path.isdir(where):
                context = ssl.create_default_context(capath=where)
            else:
                context = ssl.create_default_context(cafile=where)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.set_alpn_protocols(["http/1.1"])
            _CONTEXTS[where] = context
        return context


def open_connection(scheme: str, host: str, port: int, where: str | None, timeout: float,
                    sock: socket.socket | None = None) -> http.client.HTTPConnection:
    """A connected ``http.client`` connection (TCP, and TLS verified against ``where`` for https), over ``sock``
    when the TCP connection is already made; raises OSError (ssl.SSLError included) when it cannot be opened."""
    if scheme == "https":
        assert where is not None
        context = tls_context(where)
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if sock is None:
            conn.connect()
        else:
            # What HTTP(S)Connection.connect does after its own TCP connect: no Nagle delay, then TLS.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(timeout)
            conn.sock = context.wrap_socket(sock, server_hostname=host) if scheme == "https" else sock
    except BaseException:
        conn.close()
        if sock is not None:
            sock.close()
        raise
    return conn


def is_idle(sock: socket.socket | None) -> bool:
    """True if the connection is open with nothing to read. Reading also consumes what a TLS 1.3 server sends after
    the handshake (its session tickets), which would otherwise look like an answer nobody asked for."""
    if sock is None:
        return False
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(1)
    except (ssl.SSLWantReadError, BlockingIOError):
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)
    return False  # end of stream, or bytes nobody asked for


def _failure(exc: BaseException, connecting: bool) -> WireError:
    """What went wrong, without the URL, headers or anything a server sent."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TLSFailure("TLS certificate verification failed", untrusted=True)
    if isinstance(exc, ssl.SSLError):
        if connecting:
            return TLSFailure("TLS handshake failed", untrusted=False)
        return ConnectionFailure("connection failed (TLS error)")
    if isinstance(exc, socket.gaierror):
        return ConnectionFailure("host name lookup failed", lookup=True)
    if isinstance(exc, TimeoutError):
        return ConnectionFailure("connection timed out" if connecting else "timed out waiting for a response")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionFailure("connection refused")
    if isinstance(exc, (OSError, http.client.HTTPException)):
        return ConnectionFailure("connection failed")
    return RequestFailure(f"request failed ({exc.__class__.__name__})")


class StdlibWire:
    """See the module docstring; thread-safe."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(os.environ if env is None else env)
        self._lock = threading.Lock()
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._closed = False

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
             timeout: tuple[float, float], verify: str | None, limit: int | None) -> Response:
        key, target = self._where(url, verify)
        for fresh in (False, True):
            conn, reused = self._checkout(key, timeout, fresh)
            try:
                conn.request(method, target, body=body, headers=dict(headers))
                raw = conn.getresponse()
            except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, http.client.BadStatusLine):
                conn.close()
                if reused:
                    continue  # the server closed an idle connection as we reused it: once more, on a new one
                raise ConnectionFailure("connection failed") from None
            except (ValueError, UnicodeError, http.client.InvalidURL) as exc:
                conn.close()
                raise RequestFailure(f"request failed ({exc.__class__.__name__})") from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise _failure(exc, connecting=False) from None
            return self._read(key, conn, raw, method, url, limit)
        raise AssertionError("unreachable")  # pragma: no cover

    def adopt(self, scheme: str, hostport: str, connections: list[http.client.HTTPConnection],
              verify: str | None) -> int:
        key = self._key(scheme, *address(scheme, hostport), verify)
        kept = 0
        for conn in connections:
            if not is_idle(conn.sock):
                conn.close()  # closed by the server meanwhile, or sent what nobody asked for
            elif self._checkin(key, conn):
                kept += 1
        return kept

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    # ------------------------------------------------------------------------------------------------- internals

    def _key(self, scheme: str, host: str, port: int, verify: str | None) -> _Key:
        # A connection verified against one CA source never serves a request that asks for another.
        return scheme, host.lower(), port, trust(verify, self._env) if scheme == "https" else None

    def _where(self, url: str, verify: str | None) -> tuple[_Key, str]:
        """The pool key and the request target (path and query) of ``url``."""
        try:
            parts = urlsplit(url)
            scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
        except ValueError:  # a bad port, an unclosed "[": a hostile Location must not crash the run
            raise RequestFailure("request failed (invalid URL)") from None
        if scheme not in ("http", "https") or not host:
            raise RequestFailure("request failed (invalid URL)")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if not all(0x20 < ord(ch) < 0x7F for ch in target):
            target = quote(target, safe=_SAFE)
        return self._key(scheme, host, port or DEFAULT_PORTS[scheme], verify), target

    def _checkout(self, key: _Key, timeout: tuple[float, float], fresh: bool) -> tuple[http.client.HTTPConnection,
                                                                                         bool]:
        """An idle connection of ``key``'s pool that is still open, else a new one; True when reused."""
        connect, read = timeout
        while not fresh:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                break
            if is_idle(conn.sock):
                assert conn.sock is not None
                conn.sock.settimeout(read)
                return conn, True
            conn.close()
        scheme, host, port, where = key
        try:
            conn = open_connection(scheme, host, port, where, connect)
        except (OSError, http.client.HTTPException) as exc:
            raise _failure(exc, connecting=True) from None
        except (ValueError, UnicodeError) as exc:  # e.g. a host name that is not valid IDNA
            raise RequestFailure(f"request failed ({exc.__class__.__name__})") from None
        assert conn.sock is not None
        conn.sock.settimeout(read)
        return conn, False

    def _checkin(self, key: _Key, conn: http.client.HTTPConnection) -> bool:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if not self._closed and len(idle) < _MAX_IDLE:
                idle.append(conn)
                return True
        conn.close()
        return False

    def _read(self, key: _Key, conn: http.client.HTTPConnection, raw: http.client.HTTPResponse, method: str,
              url: str, limit: int | None) -> Response:
        """Read ``raw`` into a Response: whole up to ``limit`` (a 200 answer), else the first SMALL_BODY bytes; the
        connection goes back to the pool only when its answer was read to the end."""
        reply = Response(raw.status, Headers(raw.getheaders()), url=url)
        cap = cap_for(raw.status, limit) if method != "HEAD" else None
        if declared_over(reply, cap):  # a HEAD's Content-Length is the GET's: it has no body to cap
            reply.truncated = True
            conn.close()
            return reply
        whole = False
        try:
            whole = fill(reply, iter(lambda: raw.read(16 * 1024), b""), cap)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            reply.read_error = f"connection failed ({exc.__class__.__name__})"
        if whole and raw.isclosed() and not raw.will_close:
            self._checkin(key, conn)
        else:
            conn.close()
        return reply
