"""Open a registry's first connections while the run is still starting, so its round trips overlap the start-up.

A hook's run is short: the interpreter, imports (``requests`` alone is most of them) and a few round trips. As soon as
a reference needs a registry, a thread opens connections to it (TCP and TLS handshakes) and sends the one
``GET /v2/`` of the run over the first, with nothing but the standard library; the transport later adopts the
connections (:func:`adopt`) and the authenticator the answer. Only an optimisation: behind a proxy, with a mirror,
or after any failure the normal path does the same work itself.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from .hosts import api_host, host_of, is_loopback, split_host_port

if TYPE_CHECKING:  # only for annotations: the warm-up imports http.client and ssl when it runs
    import http.client
    import socket
    import ssl

_PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy")
# A silent server must not hold the run: the normal path, with its own limits, takes over after this.
_MAX_WAIT = 5.0
# How long the client waits for a warm-up still at work (a hung name lookup cannot be interrupted): past this it
# goes on without it, at the cost of one more GET /v2/, rather than adding to a hang.
_MAX_TAKE_WAIT = 2.0


class _Untrusted(Exception):
    """The server speaks TLS with a certificate we do not trust."""


@dataclass(frozen=True)
class Ping:
    """The answer to ``GET /v2/``: what the authenticator needs to know about the endpoint."""

    status: int
    www_authenticate: str


@dataclass
class Warm:
    """One registry's early connections: where they go, the ping's answer, and the idle connections."""

    scheme: str
    hostport: str
    ping: Ping | None = None
    # Idle http.client connections, the ping done on the first.
    connections: list[http.client.HTTPConnection] = field(default_factory=list)


def ca_file_for(hostport: str, ca_dirs: Collection[str], ca_bundle: str | None) -> str | None:
    """The CA file requests is given for ``hostport``: ``<dir>/<host:port>/ca.crt`` from the first certs.d directory
    that has one, else ``ca_bundle``; None lets requests decide (its environment variables, then certifi)."""
    for directory in ca_dirs:
        path = os.path.join(directory, hostport, "ca.crt")
        if os.path.isfile(path):
            return path
    return ca_bundle


def proxy_configured(env: Mapping[str, str]) -> bool:
    """True if any proxy variable is set: requests would go through the proxy, so nothing is opened early."""
    return any(env.get(name) or env.get(name.upper()) for name in _PROXY_VARIABLES)


class Warmup:
    """Starts, per registry, one thread that opens ``connections`` connections and pings over the first."""

    def __init__(
        self,
        *,
        ca_file: Callable[[str], str | None],
        env: Mapping[str, str],
        timeout: float,
        user_agent: str,
        insecure: Collection[str] = (),
        mirrored: Collection[str] = (),
        connections: int = 2,
        max_registries: int = 8,
    ) -> None:
        self._ca_file = ca_file
        self._env = env
        self._timeout = min(timeout, _MAX_WAIT)
        self._user_agent = user_agent
        self._insecure = frozenset(h.lower() for h in insecure)
        self._mirrored = frozenset(r.lower() for r in mirrored)
        self._connections = max(1, connections)
        self._lock = threading.Lock()
        self._started: dict[str, tuple[threading.Thread, list[Warm]]] = {}
        # A hook run names a registry or two; a tree naming dozens must not open two connections to each at once.
        self._left = max_registries

    def start(self, registry: str) -> None:
        """Begin warming ``registry`` (once); returns at once."""
        registry = registry.lower()
        if registry in self._mirrored or proxy_configured(self._env):
            return
        with self._lock:
            if registry in self._started or self._left <= 0:
                return
            self._left -= 1
            box: list[Warm] = []
            thread = threading.Thread(target=self._warm, args=(registry, box), name=f"warmup {registry}", daemon=True)
            self._started[registry] = (thread, box)
        thread.start()

    def take(self, registry: str) -> Warm | None:
        """The warmed connections of ``registry``, waiting for its thread if it is still at work; None if none."""
        with self._lock:
            started = self._started.pop(registry.lower(), None)
        if started is None:
            return None
        thread, box = started
        thread.join(min(self._timeout, _MAX_TAKE_WAIT))
        return box[0] if box and not thread.is_alive() else None

    def discard(self, warm: Warm) -> None:
        """Close the connections of a warm-up nobody can use."""
        self._closed(warm)

    def close(self) -> None:
        """Close the connections nobody took; a thread still at work is left to end with the process."""
        with self._lock:
            started, self._started = list(self._started.values()), {}
        for thread, box in started:
            if not thread.is_alive():
                for warm in box:
                    self._closed(warm)

    # ------------------------------------------------------------------------------------------------- the thread

    def _warm(self, registry: str, box: list[Warm]) -> None:
        try:
            warm = self._connect_all(api_host(registry))
        except Exception:  # an optimisation only: the normal path meets (and reports) the same problem
            return
        if warm is not None:
            box.append(warm)

    def _connect_all(self, hostport: str) -> Warm | None:
        import http.client  # ~10 ms, and requests (being imported meanwhile) needs it anyway

        if hostport.lower() in self._insecure or host_of(hostport) in self._insecure:
            schemes = ["http"]
        elif is_loopback(hostport):
            schemes = ["https", "http"]  # a registry on this machine may serve either; like docker, try TLS first
        else:
            schemes = ["https"]
        for scheme in schemes:
            try:
                conn = self._open(scheme, hostport)
            except _Untrusted:
                return None  # TLS it is, but unverified: the normal path says how to trust the CA
            if conn is None:
                continue
            warm = Warm(scheme, hostport)
            # The other connections open while the first one pings.
            extra: list[http.client.HTTPConnection] = []
            openers = [
                threading.Thread(target=self._open_idle, args=(scheme, hostport, extra), daemon=True)
                for _ in range(self._connections - 1)
            ]
            for t in openers:
                t.start()
            try:
                conn.request("GET", "/v2/", headers={"User-Agent": self._user_agent})
                resp = conn.getresponse()
                resp.read(64 * 1024)
                warm.ping = Ping(resp.status, resp.getheader("WWW-Authenticate") or "")
                if not resp.will_close and resp.isclosed():
                    warm.connections.append(conn)
                else:
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
            for t in openers:
                t.join()
            warm.connections.extend(extra)
            return warm if warm.ping is not None else self._closed(warm)
        return None

    @staticmethod
    def _closed(warm: Warm) -> None:
        for conn in warm.connections:
            conn.close()
        return None

    def _open_idle(self, scheme: str, hostport: str, out: list[http.client.HTTPConnection]) -> None:
        """Open one more connection and, for TLS, wait (briefly) for what a TLS 1.3 server sends after the handshake:
        its session tickets. Left unread, urllib3 would take them for a closed connection and open another."""
        import select

        started = time.monotonic()
        try:
            conn = self._open(scheme, hostport)
        except _Untrusted:
            return
        if conn is None:
            return
        if scheme == "https":
            sock = conn.sock
            wait = min(max(0.01, time.monotonic() - started), 0.25)  # about a round trip or two
            try:
                while select.select([sock], [], [], wait)[0]:
                    if not _idle(sock):
                        conn.close()
                        return
                    wait = 0.02  # a second ticket follows the first at once, unless the server is busy
            except (OSError, ValueError):
                conn.close()
                return
        out.append(conn)

    def _open(self, scheme: str, hostport: str) -> http.client.HTTPConnection | None:
        """A connected http.client connection; None if the scheme does not work here."""
        import http.client
        import ssl

        host, port = split_host_port(hostport)
        if scheme == "http":
            conn: http.client.HTTPConnection = http.client.HTTPConnection(
                host, int(port) if port else 80, timeout=self._timeout
            )
        else:
            conn = http.client.HTTPSConnection(
                host, int(port) if port else 443, timeout=self._timeout, context=self._context(hostport)
            )
        try:
            conn.connect()
        except ssl.SSLCertVerificationError:
            conn.close()
            raise _Untrusted from None
        except OSError:  # other TLS errors included: a plain http server, a refusal, a timeout
            conn.close()
            return None
        return conn

    def _context(self, hostport: str) -> ssl.SSLContext:
        """A TLS context trusting what requests would trust for this host: certs.d or the configured bundle, else
        REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, else certifi's bundle; hostname checked; TLS 1.2 or later."""
        import ssl

        where = self._ca_file(hostport) or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if not where:
            import certifi

            where = certifi.where()
        if os.path.isdir(where):
            context = ssl.create_default_context(capath=where)
        else:
            context = ssl.create_default_context(cafile=where)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        return context


def _idle(sock: socket.socket) -> bool:
    """True if the connection is open with nothing to read. Reading also consumes what a TLS 1.3 server sends after
    the handshake (session tickets), which urllib3 would otherwise take for a dropped connection."""
    import ssl

    assert hasattr(sock, "recv")
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


def adopt(session: object, warm: Warm, verify: str | None) -> int:
    """Hand ``warm``'s idle connections to ``session``'s connection pool for their origin; returns how many.

    ``verify`` is what the transport passes requests for this host. The pool is the one requests will pick for a
    request to this origin; connections it would not pick (a proxy applies) are closed instead.
    """
    import requests

    assert isinstance(session, requests.Session)
    url = f"{warm.scheme}://{warm.hostport}/v2/"
    settings = session.merge_environment_settings(url, {}, None, verify, None)
    taken = 0
    if settings["proxies"]:
        for conn in warm.connections:
            conn.close()
        return 0
    adapter = cast("requests.adapters.HTTPAdapter", session.get_adapter(url))
    prepared = requests.Request("GET", url).prepare()
    # Typed loosely on purpose: what follows uses the pool's internals (its queue and _new_conn).
    pool: Any = adapter.get_connection_with_tls_context(prepared, settings["verify"], proxies=None, cert=None)
    # The pool holds a placeholder (None) for each connection it may still open: trade placeholders for ours.
    # Done before the first request, while nothing else uses the pool.
    held: list[object] = []
    with contextlib.suppress(queue.Empty):
        while True:
            held.append(pool.pool.get(block=False))
    free = held.count(None)
    kept: list[object] = []
    for old in warm.connections:
        if taken == free or not _idle(old.sock):
            old.close()
            continue
        conn = pool._new_conn()  # configured exactly as the pool would configure its own
        conn.sock, old.sock = old.sock, None
        if warm.scheme == "https":
            conn.is_verified = True  # the handshake verified the same CA bundle and hostname
        kept.append(conn)
        taken += 1
    for item in [None] * (free - taken) + [c for c in held if c is not None] + kept:
        pool.pool.put(item)  # a LIFO queue: ours are used first
    return taken
