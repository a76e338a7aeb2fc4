"""Where a registry may send us: its Bearer realm and its redirect targets are the server's choice, so each is
checked before anything is sent there (the rules go-containerregistry applies to realms, and more)."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit

from .errors import BadResponseError
from .hosts import address_class, host_of, origin


def shown(url: str) -> str:
    """A URL for a message: scheme, host and path; the query (signatures, tokens) left out."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "a malformed URL"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


class Targets:
    """Checks realm and redirect targets; remembers what each name resolved to for the run. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._addresses: dict[str, frozenset[str]] = {}

    def check(self, registry: str, target: str, what: str, *, current: str | None = None) -> None:
        """Refuse ``target``, chosen by the server at ``registry`` (a base URL) as a ``what`` ("realm" or
        "redirect", from ``current``), unless: it is https, or the registry itself is plain http; it is not an
        https -> http redirect; and it is not on a loopback, private, link-local or unspecified address, unless the
        registry is on the same host or on such an address itself."""
        reg_scheme, reg_netloc = origin(registry)
        scheme, where = origin(target)
        refused = ""
        if scheme != "https" and (reg_scheme == "https" or (current or "").lower().startswith("https:")):
            refused = "not https" if current is None else "an https to http redirect"
        elif host_of(where) != host_of(reg_netloc):
            inside = self._classes(where) - self._classes(reg_netloc)
            if inside:
                refused = f"{host_of(where)} is {sorted(inside)[0]}"
        if refused:
            label = "Bearer realm" if what == "realm" else "a redirect"
            raise BadResponseError(
                f"bad registry response from {reg_netloc}: refused {label} to {shown(target)}: {refused}, which a "
                f"registry on {reg_scheme}://{reg_netloc} may not send us to",
                reg_netloc,
            )

    def _classes(self, hostport: str) -> frozenset[str]:
        """The internal address classes ``hostport`` is on (an IP literal, or every address its name has)."""
        host = host_of(hostport)
        known = address_class(host)
        if known is not None:
            return frozenset({known})
        with self._lock:
            cached = self._addresses.get(host)
        if cached is not None:
            return cached
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
        except (OSError, UnicodeError):
            addresses = set()  # the request itself will fail on the lookup and say so
        classes = frozenset(c for c in (address_class(str(a)) for a in addresses) if c is not None)
        with self._lock:
            self._addresses[host] = classes
        return classes
