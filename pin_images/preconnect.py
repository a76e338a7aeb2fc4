"""Open a registry's first connections while the run is still starting, so its round trips overlap the start-up.

A hook's run is short: the interpreter, imports (``requests`` alone is most of them) and a few round trips. As soon as
a reference needs a registry, a thread opens connections to it (TCP and TLS handshakes) and sends the one
``GET /v2/`` of the run over the first, with nothing but the standard library; the transport's wire later adopts
the connections and the authenticator the answer. Only an optimisation: behind a proxy, with a mirror,
or after any failure the normal path does the same work itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

from .hosts import address, api_host, host_of, is_loopback
from .pingcache import Ping

if TYPE_CHECKING:  # only for annotations: the warm-up imports http.client and ssl when it runs
    import http.client

_PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy")
# A silent server must not hold the run: the normal path, with its own limits, takes over after this.
_MAX_WAIT = 5.0
# How long the client waits for a warm-up still at work (a hung name lookup cannot be interrupted): past this it
# goes on without it, at the cost of one more GET /v2/, rather than adding to a hang.
_MAX_TAKE_WAIT = 2.0


class _Untrusted:
    """Marks a server that speaks TLS with a certificate we do not trust."""


class Warm:
    """One registry's early connections: where they go, the ping's answer, and the idle connections."""

    def __init__(self, scheme: str, hostport: str) -> None:
        self.scheme = scheme
        self.hostport = hostport
        self.ping: Ping | None = None
        # The ping's answer came from an earlier run (pingcache), not from this run's GET /v2/.
        self.remembered = False
        # Idle http.client connections, the ping done on the first.
        self.connections: list[http.client.HTTPConnection] = []
        # Idle connections to other origins the run will need: (scheme, host[:port], connection); the token service.
        self.elsewhere: list[tuple[str, str, http.client.HTTPConnection]] = []


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
        known: Mapping[str, Ping] | None = None,
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
        # Earlier runs' answers to GET /v2/ by endpoint base URL: where one is known, no ping is sent.
        self._known = dict(known or {})

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
        if hostport.lower() in self._insecure or host_of(hostport) in self._insecure:
            schemes = ["http"]
        elif is_loopback(hostport):
            schemes = ["https", "http"]  # a registry on this machine may serve either; like docker, try TLS first
        else:
            schemes = ["https"]
        # A registry on this machine that spoke plain http last time is asked over http first (no TLS context to
        # build), but pinged all the same: it may have turned to TLS since.
        guessing = len(schemes) == 2
        if guessing and f"http://{hostport}" in self._known and f"https://{hostport}" not in self._known:
            schemes.reverse()
        for scheme in schemes:
            # Every connection opens at once, each in its own thread, their TCP handshakes under way while this
            # thread imports what TLS and HTTP need (tens of milliseconds, about a round trip).
            opened: list[http.client.HTTPConnection | _Untrusted | None] = [None] * self._connections
            openers = [
                threading.Thread(target=self._open_into, args=(scheme, hostport, opened, i), daemon=True)
                for i in range(self._connections)
            ]
            # A remembered Bearer challenge names the token service: its connection opens now too.
            known = self._known.get(f"{scheme}://{hostport}")
            realm = _realm_origin(f"{scheme}://{hostport}", known) if known is not None else None
            realm_opened: list[http.client.HTTPConnection | _Untrusted | None] = [None]
            if realm is not None:
                openers.append(threading.Thread(target=self._open_into, args=(*realm, realm_opened, 0), daemon=True))
            for t in openers:
                t.start()
            from . import stdlib_wire  # noqa: F401  (the openers wait on this import, then shake hands)

            openers[0].join()
            warm = Warm(scheme, hostport)
            first = opened[0]
            if isinstance(first, _Untrusted):
                schemes = []  # TLS it is, but unverified: the normal path says how to trust the CA
            elif first is not None and known is not None and not (guessing and scheme == "http"):
                warm.ping, warm.remembered = known, True
                warm.connections.append(first)
            elif first is not None:
                warm.ping, kept = self._ping(first)
                if kept:
                    warm.connections.append(first)
                if guessing and scheme == "http" and warm.ping is not None and warm.ping.status not in (200, 401):
                    warm.ping = None  # not a registry over plain http (a TLS server answers such a request 400)
            for t in openers[1:]:
                t.join()
            warm.connections.extend(c for c in opened[1:] if c is not None and not isinstance(c, _Untrusted))
            token_service = realm_opened[0]
            if realm is not None and token_service is not None and not isinstance(token_service, _Untrusted):
                warm.elsewhere.append((*realm, token_service))
            if warm.ping is not None:
                return warm
            self._closed(warm)
            if not schemes:
                return None
        return None

    def _ping(self, conn: http.client.HTTPConnection) -> tuple[Ping | None, bool]:
        """``GET /v2/`` over ``conn``: its answer (None without one) and whether ``conn`` can be used again (if not,
        it is closed)."""
        import http.client

        try:
            conn.request("GET", "/v2/", headers={"User-Agent": self._user_agent})
            resp = conn.getresponse()
            resp.read(64 * 1024)
        except (OSError, http.client.HTTPException):
            conn.close()
            return None, False
        # Every WWW-Authenticate line, joined as the transport's headers join them.
        ping = Ping(resp.status, ", ".join(resp.headers.get_all("WWW-Authenticate") or []))
        if resp.will_close or not resp.isclosed():
            conn.close()
            return ping, False
        return ping, True

    @staticmethod
    def _closed(warm: Warm) -> None:
        for conn in warm.connections + [c for _, _, c in warm.elsewhere]:
            conn.close()
        return None

    def _open_into(self, scheme: str, hostport: str, out: list[http.client.HTTPConnection | _Untrusted | None],
                   index: int) -> None:
        """Open one connection (TCP, then TLS for https) into ``out[index]``: None if the scheme does not work
        here, _Untrusted for a certificate we do not trust. TLS 1.3 session tickets that arrive later are read
        by the wire's idle check."""
        import socket

        try:
            host, number = address(scheme, hostport)
            sock = socket.create_connection((host, number), timeout=self._timeout)
        except (OSError, ValueError):  # refused, timed out, no such name, a port that is no number
            return
        import ssl

        from .stdlib_wire import open_connection, trust

        where = trust(self._ca_file(hostport), self._env) if scheme == "https" else None
        try:
            out[index] = open_connection(scheme, host, number, where, self._timeout, sock=sock)
        except ssl.SSLCertVerificationError:
            out[index] = _Untrusted()
        except (OSError, ValueError):  # other TLS errors included: a plain http server
            pass


def _realm_origin(registry: str, ping: Ping) -> tuple[str, str] | None:
    """(scheme, host[:port]) of the token service a remembered Bearer challenge names, if the transport would send
    a request there (the same rules as for a realm it learns this run) and it is not the registry itself."""
    from urllib.parse import urlsplit

    from .challenge import parse_challenges
    from .errors import BadResponseError
    from .hosts import netloc, origin
    from .targets import Targets

    bearer = next((c for c in parse_challenges(ping.www_authenticate) if c.scheme == "bearer"), None)
    realm = bearer.get("realm") if bearer is not None else None
    if not realm:
        return None
    try:
        scheme = urlsplit(realm).scheme.lower()
        Targets().check(registry, realm, "realm")
    except (ValueError, BadResponseError):
        return None
    if scheme not in ("http", "https") or origin(realm) == origin(registry):
        return None
    return scheme, netloc(realm)
