"""The wire over requests: used when a proxy variable is set (requests honours HTTPS_PROXY, NO_PROXY and the rest)
and by the unit tests, whose ``responses`` mocks intercept requests. Imported only then: requests is the largest
import a run could make."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import requests

from .wire import (
    ConnectionFailure,
    Headers,
    MalformedResponse,
    RequestFailure,
    Response,
    TLSFailure,
    WireError,
    cap_for,
    declared_over,
    fill,
)

if TYPE_CHECKING:
    import http.client


class _NoAuth(requests.auth.AuthBase):
    """Stops requests from adding ~/.netrc credentials behind our back; we set Authorization ourselves."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


_NO_AUTH = _NoAuth()


def default_session() -> requests.Session:
    """A session whose connection pool fits the plan's concurrency."""
    session = requests.Session()
    # The plan runs several lookups per host at once; the default pool of 10 would drop keep-alives.
    adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=32)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def describe_exception(exc: BaseException) -> str:
    """A short, secret-free description; requests' own messages can quote URLs and header values."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out waiting for a response"
    if isinstance(exc, requests.exceptions.ProxyError):
        return "proxy connection failed"
    if "refused" in text.lower():
        return "connection refused"
    if any(s in text for s in ("Name or service not known", "nodename nor servname", "getaddrinfo failed",
                               "Temporary failure in name resolution", "No address associated")):
        return "host name lookup failed"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection failed"
    return f"request failed ({exc.__class__.__name__})"


def _failure(exc: BaseException) -> WireError:
    if isinstance(exc, requests.exceptions.SSLError):
        return TLSFailure("TLS handshake failed", untrusted="CERTIFICATE_VERIFY_FAILED" in str(exc))
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        failure = describe_exception(exc)
        return ConnectionFailure(failure, lookup=failure == "host name lookup failed")
    return RequestFailure(describe_exception(exc))


class RequestsWire:
    """See the module docstring; ``session`` is the caller's (tests record what it is asked)."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self.session = session if session is not None else default_session()

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
             timeout: tuple[float, float], verify: str | None, limit: int | None) -> Response:
        try:
            raw = self.session.request(
                method, url, headers=dict(headers), data=body, timeout=timeout, allow_redirects=False, stream=True,
                verify=verify, auth=_NO_AUTH,
            )
            headers_in = Headers(raw.headers.items())
            if method == "HEAD":
                # There is no body; reading it hands the connection back to the pool, where close() would drop it.
                _ = raw.content
                return Response(raw.status_code, headers_in, url=raw.url)
        except requests.exceptions.RequestException as exc:
            raise _failure(exc) from None
        except (UnicodeError, ValueError) as exc:
            # requests decodes a 3xx Location as UTF-8 even with allow_redirects=False; latin-1 bytes raise.
            raise MalformedResponse(f"malformed response ({exc.__class__.__name__})") from None
        return _read_body(raw, headers_in, limit)

    def adopt(self, scheme: str, hostport: str, connections: list[http.client.HTTPConnection],
              verify: str | None) -> int:
        """Closes them: requests carries a run only behind a proxy, where nothing is opened early, and its pool
        would take a connection opened elsewhere for a dropped one."""
        for conn in connections:
            conn.close()
        return 0

    def close(self) -> None:
        self.session.close()


def _read_body(raw: requests.Response, headers: Headers, limit: int | None) -> Response:
    """Read ``raw`` into a Response: whole up to ``limit`` (a 200 answer), else the first SMALL_BODY bytes."""
    reply = Response(raw.status_code, headers, url=raw.url)
    cap = cap_for(raw.status_code, limit)
    if declared_over(reply, cap):
        reply.truncated = True
        raw.close()
        return reply
    try:
        fill(reply, raw.iter_content(16 * 1024), cap)
    except requests.exceptions.RequestException as exc:
        reply.read_error = describe_exception(exc)
    except OSError as exc:
        reply.read_error = f"connection failed ({exc.__class__.__name__})"
    finally:
        raw.close()
    return reply
