"""What the transport asks of an HTTP library, and what it gets back: one request, one answer read under a size cap,
or one of WireError's four kinds of failure. Two libraries do the job: the standard library's ``http.client``
(stdlib_wire, the default: a hook's run is short, and importing requests costs about what a Go pinner's whole run
does) and requests (requests_wire: proxies, and the ``responses`` mocks of the unit tests). Redirects, retries,
time limits, targets and credentials are the transport's, the same whichever library carries the bytes."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import http.client

# What is kept of a body nobody needs whole (an error's JSON, a redirect's page); the rest is never read.
SMALL_BODY = 64 * 1024


class Headers(Mapping[str, str]):
    """Response headers, looked up without regard to case; a repeated header's values are joined with ", " (as
    RFC 9110 allows for list headers, and as urllib3 does): a 401 may carry two WWW-Authenticate lines."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in items:
            key = name.lower()
            if key in self._items:
                value = f"{self._items[key][1]}, {value}"
            self._items[key] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __repr__(self) -> str:
        return f"Headers({dict(self._items.values())!r})"


class Response:
    """An answer read in full (up to the request's cap); ``truncated`` when the body went past it."""

    __slots__ = ("body", "headers", "read_error", "status_code", "truncated", "url")

    def __init__(self, status_code: int, headers: Headers | None = None, body: bytes = b"", truncated: bool = False,
                 read_error: str | None = None, url: str = "") -> None:
        self.status_code = status_code
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.truncated = truncated
        self.read_error = read_error
        self.url = url

    def __repr__(self) -> str:  # no headers or body: they may carry tokens
        return f"Response({self.status_code}, {len(self.body)} bytes)"


def ca_file_for(hostport: str, ca_dirs: Collection[str], ca_bundle: str | None) -> str | None:
    """The CA file a request to ``hostport`` verifies against (the wires' ``verify``): ``<dir>/<host:port>/ca.crt``
    from the first certs.d directory that has one, else ``ca_bundle``; None leaves it to the wire, which decides as
    requests does (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, then certifi)."""
    for directory in ca_dirs:
        path = os.path.join(directory, hostport, "ca.crt")
        if os.path.isfile(path):
            return path
    return ca_bundle


def cap_for(status: int, limit: int | None) -> int | None:
    """The size cap of a body: the request's ``limit`` for a 200 answer; None (keep SMALL_BODY bytes) otherwise."""
    return limit if limit is not None and status == 200 else None


def declared_over(reply: Response, cap: int | None) -> bool:
    """True when the answer says up front (Content-Length) that its body is over ``cap``: it is not read at all."""
    length = reply.headers.get("Content-Length", "")
    return cap is not None and length.isascii() and length.isdigit() and int(length) > cap  # "²".isdigit() is True


def fill(reply: Response, pieces: Iterable[bytes], cap: int | None) -> bool:
    """Read ``pieces`` into ``reply.body``: whole up to ``cap``, else the first SMALL_BODY bytes (``truncated`` set
    when a capped body went past its cap). True when the body was read to its end. What ``pieces`` raises is the
    caller's to classify."""
    chunks: list[bytes] = []
    size = 0
    whole = True
    try:
        for chunk in pieces:
            size += len(chunk)
            chunks.append(chunk)
            if size > (cap if cap is not None else SMALL_BODY):
                reply.truncated = cap is not None
                whole = False
                break
    finally:
        reply.body = b"".join(chunks)
    return whole


class WireError(Exception):
    """No answer: ``failure`` says what went wrong, with no URL, header or secret in it."""

    def __init__(self, failure: str) -> None:
        super().__init__(failure)
        self.failure = failure


class TLSFailure(WireError):
    """The TLS handshake failed; ``untrusted`` when it got as far as a certificate we do not trust."""

    def __init__(self, failure: str, untrusted: bool) -> None:
        super().__init__(failure)
        self.untrusted = untrusted


class ConnectionFailure(WireError):
    """Worth another try (refused, reset, timed out, a dropped answer); ``lookup`` when the name did not resolve,
    which a retry half a second later will not change."""

    def __init__(self, failure: str, lookup: bool = False) -> None:
        super().__init__(failure)
        self.lookup = lookup


class RequestFailure(WireError):
    """The request itself could not be sent (an invalid URL or header): no retry will help."""


class MalformedResponse(WireError):
    """The server answered with something no HTTP library should act on (an undecodable redirect URL)."""


class Wire(Protocol):
    """Sends one request and reads its answer; thread-safe, keeps connections alive between requests."""

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
             timeout: tuple[float, float], verify: str | None, limit: int | None) -> Response:
        """``timeout`` is (connect, each read); ``verify`` the CA file or directory for this host, None for the
        default trust; ``limit`` caps a 200 answer's body (None: only its first SMALL_BODY bytes are kept).
        Raises WireError."""
        ...

    def adopt(self, scheme: str, hostport: str, connections: list[http.client.HTTPConnection],
              verify: str | None) -> int:
        """Take over idle, connected ``http.client`` connections to ``scheme://hostport`` (opened early, trusting
        ``verify``); returns how many were kept, closing the rest."""
        ...

    def close(self) -> None:
        """Close every idle connection."""
        ...
