"""One HTTP exchange with a registry or token server: redirects followed by hand, retries with backoff and
Retry-After, a per-host pause after 429, TLS verification from certs.d, and capped body reads."""

from __future__ import annotations

import enum
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Callable
from urllib.parse import urljoin, urlsplit

import requests

from .errors import BadResponseError, RegistryConnectionError
from .hosts import netloc, origin

if TYPE_CHECKING:
    from .preconnect import Warm

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# 501/505 say "never", not "not now": retrying them only wastes the budget.
_NOT_RETRIED_5XX = frozenset({501, 505})


class Purpose(enum.Enum):
    """What a request is for; its value names the RequestStats counter it adds to."""

    MANIFEST_HEAD = "manifest_head"
    MANIFEST_GET = "manifest_get"
    BLOB_GET = "blob_get"
    TOKEN = "token"
    PING = "ping"


@dataclass
class RequestStats:
    """Requests sent, by purpose (retries count again), for benchmarks and request-count tests."""

    manifest_head: int = 0
    manifest_get: int = 0
    blob_get: int = 0
    token: int = 0
    ping: int = 0
    unauthorized: int = 0  # 401 answers received, from any endpoint
    rate_limited: int = 0  # 429 answers received
    retries: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Request:
    """One logical request; ``params`` go on the first hop only, ``data`` is a form body."""

    method: str
    url: str
    purpose: Purpose
    headers: tuple[tuple[str, str], ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    data: tuple[tuple[str, str], ...] = ()
    stream: bool = False


class _NoAuth(requests.auth.AuthBase):
    """Stops requests from adding ~/.netrc credentials behind our back; we set Authorization ourselves."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


_NO_AUTH = _NoAuth()


def bad_response(host: str, detail: str) -> BadResponseError:
    """The error for an answer we cannot trust or understand, naming the host that gave it."""
    return BadResponseError(f"bad registry response from {host}: {detail}", host)


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


def safe_header_value(value: str) -> bool:
    """Visible ASCII only: a token with CR/LF or controls would smuggle headers (and requests' error quotes it)."""
    return bool(value) and all(0x20 < ord(ch) < 0x7F for ch in value)


def rate_hint(resp: requests.Response) -> str:
    """What to do about a 429, with the registry's ratelimit-remaining when it sent a sane one."""
    remaining = resp.headers.get("ratelimit-remaining")
    hint = "log in for a higher limit or try again later"
    if remaining and safe_header_value(remaining.replace(" ", "")):
        hint = f"ratelimit-remaining: {remaining[:40]}; {hint}"
    return hint


def discard(resp: requests.Response) -> None:
    """Close a response we do not need, reading a small body first so the kept-alive connection is reused."""
    try:
        read = 0
        for chunk in resp.iter_content(16 * 1024):
            read += len(chunk)
            if read > 64 * 1024:
                break  # not worth it: let close() drop the connection
    except (requests.exceptions.RequestException, OSError):
        pass  # the connection is dropped by close() either way
    resp.close()


def read_capped(resp: requests.Response, limit: int, what: str, host: str) -> bytes:
    """The whole body, refused once it passes ``limit`` bytes (by Content-Length or as it streams in)."""
    too_big = f"{what} larger than " + (f"{limit // 1048576} MiB" if limit % 1048576 == 0 else f"{limit} bytes")
    length = resp.headers.get("Content-Length", "")
    if length.isascii() and length.isdigit() and int(length) > limit:  # "²".isdigit() is True
        raise bad_response(host, too_big)
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in resp.iter_content(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise bad_response(host, too_big)
            chunks.append(chunk)
    except requests.exceptions.RequestException as exc:
        raise RegistryConnectionError(f"cannot read {what} from {host}: {describe_exception(exc)}", host) from None
    return b"".join(chunks)


def default_session() -> requests.Session:
    """A session whose connection pool fits the plan's concurrency."""
    session = requests.Session()
    # The plan runs several lookups per host at once; the default pool of 10 would drop keep-alives.
    adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=32)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class Transport:
    """Sends requests for one run; thread-safe. Knows nothing of registries, tokens or manifests."""

    def __init__(
        self,
        session: requests.Session,
        *,
        timeout: tuple[float, float],
        retries: int,
        max_retry_wait: float,
        ca_dirs: Sequence[str],
        ca_bundle: str | None,
        user_agent: str,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
    ) -> None:
        self.session = session
        self.stats = RequestStats()
        self._timeout = timeout
        self._tries = max(1, retries)
        self._max_retry_wait = max_retry_wait
        self._ca_dirs = tuple(ca_dirs)
        self._ca_bundle = ca_bundle
        self._user_agent = user_agent
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._not_before: dict[str, float] = {}
        self._verify_cache: dict[str, str | None] = {}

    def close(self) -> None:
        self.session.close()

    def fetch(self, request: Request) -> requests.Response:
        """Send, following redirects ourselves so Authorization never reaches another origin."""
        method, url, data = request.method, request.url, request.data
        params = request.params
        start = origin(url)
        seen: set[str] = set()
        headers = {"User-Agent": self._user_agent, **dict(request.headers)}
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._send(request, method, url, headers, params, data)
            location = resp.headers.get("Location")
            if resp.status_code not in _REDIRECTS or not location:
                return resp
            discard(resp)
            if params:
                # The first hop carried the query; the Location already includes whatever the server wants.
                url = requests.Request("GET", url, params=list(params)).prepare().url or url
                params = ()
            seen.add(url)
            host = netloc(url)
            try:
                target = urljoin(url, location)
                scheme = urlsplit(target).scheme.lower()
            except ValueError:  # e.g. "http://[::1/": a hostile Location must not crash the run
                raise bad_response(host, "malformed redirect URL") from None
            if scheme not in ("http", "https"):
                raise bad_response(host, "redirect to a non-HTTP URL")
            if target in seen:
                raise bad_response(host, "redirect loop")
            if origin(target) != start:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if resp.status_code == 303 and method != "HEAD":
                method, data = "GET", ()
            url = target
        raise bad_response(netloc(url), f"more than {MAX_REDIRECTS} redirects")

    def _send(
        self, request: Request, method: str, url: str, headers: dict[str, str],
        params: tuple[tuple[str, str], ...], data: tuple[tuple[str, str], ...],
    ) -> requests.Response:
        """One hop with retries: connection errors, timeouts, 5xx and 429 (per-host backoff, Retry-After)."""
        host = netloc(url)
        for attempt in range(1, self._tries + 1):
            self._wait_for_host(host)
            self._count(request.purpose.value)
            try:
                resp = self.session.request(
                    method, url, headers=headers, params=list(params) or None, data=dict(data) or None,
                    timeout=self._timeout, allow_redirects=False, stream=request.stream, verify=self.verify(host),
                    auth=_NO_AUTH,
                )
            except requests.exceptions.SSLError:
                raise RegistryConnectionError(self._tls_message(host), host) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                if attempt == self._tries:
                    raise RegistryConnectionError(
                        f"cannot reach {host}: {describe_exception(exc)} (after {attempt} tries)", host
                    ) from None
                self._count("retries")
                self._sleep(self._backoff(attempt))
                continue
            except requests.exceptions.RequestException as exc:
                raise RegistryConnectionError(f"cannot reach {host}: {describe_exception(exc)}", host) from None
            except (UnicodeError, ValueError) as exc:
                # requests decodes a 3xx Location as UTF-8 even with allow_redirects=False; latin-1 bytes raise.
                raise bad_response(host, f"malformed response ({exc.__class__.__name__})") from None
            status = resp.status_code
            if status == 401:
                self._count("unauthorized")
            if status != 429 and (status < 500 or status in _NOT_RETRIED_5XX):
                return resp
            wait = self._retry_after(resp)
            if status == 429:
                self._count("rate_limited")
                wait = wait if wait is not None else self._backoff(attempt)
                with self._lock:
                    # Only this host slows down; other registries keep going at full speed.
                    self._not_before[host] = max(self._not_before.get(host, 0.0), self._clock() + wait)
            if attempt == self._tries:
                discard(resp)
                if status == 429:
                    raise RegistryConnectionError(
                        f"rate limited by {host} (HTTP 429, after {attempt} tries); {rate_hint(resp)}", host
                    )
                raise RegistryConnectionError(f"{host} answered HTTP {status} (after {attempt} tries)", host)
            discard(resp)
            self._count("retries")
            if status != 429:
                self._sleep(wait if wait is not None else self._backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def adopt(self, warm: Warm) -> None:
        """Count the ping a preconnect.Warmup sent, and put its idle connections in the session's pool."""
        from .preconnect import adopt

        assert warm.ping is not None
        self._count(Purpose.PING.value)
        if warm.ping.status == 401:
            self._count("unauthorized")
        adopt(self.session, warm, self.verify(warm.hostport))

    def probe_tls(self, hostport: str) -> str:
        """"https" when ``hostport`` completes a TLS handshake (even with an untrusted certificate), else "http"."""
        try:
            resp = self.session.get(
                # A local TLS handshake is instant; don't let a silent plain-http server hold the run for long.
                f"https://{hostport}/v2/", headers={"User-Agent": self._user_agent},
                timeout=(self._timeout[0], min(self._timeout[1], 5.0)),
                allow_redirects=False, stream=True, verify=self.verify(hostport), auth=_NO_AUTH,
            )
        except requests.exceptions.SSLError as exc:
            # An untrusted certificate still means TLS: keep https so the error says how to trust the CA.
            return "https" if "CERTIFICATE_VERIFY_FAILED" in str(exc) else "http"
        except requests.exceptions.RequestException:
            return "http"  # no TLS handshake (a plain http registry), refused, or timed out
        self._count(Purpose.PING.value)
        discard(resp)
        return "https"

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    @staticmethod
    def _backoff(attempt: int) -> float:
        return 0.5 * 2.0 ** (attempt - 1)

    def _retry_after(self, resp: requests.Response) -> float | None:
        value = (resp.headers.get("Retry-After") or "").strip()
        if not value:
            return None
        if value.isascii() and value.isdigit():  # not "²", which isdigit() accepts and float() rejects
            seconds = float(value)
        else:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return None
            if when is None or when.tzinfo is None:
                return None
            seconds = when.timestamp() - time.time()
        return min(max(seconds, 0.0), self._max_retry_wait)

    def _wait_for_host(self, host: str) -> None:
        with self._lock:
            not_before = self._not_before.get(host, 0.0)
        delay = not_before - self._clock()
        if delay > 0:
            self._sleep(delay)

    def verify(self, host: str) -> str | None:
        """certs.d CA file for host[:port], else ``ca_bundle``, passed per request; None lets requests decide.

        Per request because, with trust_env, requests lets REQUESTS_CA_BUNDLE override Session.verify.
        """
        if host in self._verify_cache:
            return self._verify_cache[host]
        found = self._ca_bundle
        for directory in self._ca_dirs:
            path = os.path.join(directory, host, "ca.crt")
            if os.path.isfile(path):
                found = path
                break
        self._verify_cache[host] = found
        return found

    def _tls_message(self, host: str) -> str:
        where = self._ca_dirs[0] if self._ca_dirs else "/etc/docker/certs.d"
        return (
            f"TLS certificate verification failed for {host}; to trust its CA, save it as "
            f"{os.path.join(where, host, 'ca.crt')} or point REQUESTS_CA_BUNDLE at a bundle that includes it"
        )
