"""One HTTP exchange with a registry or token server: redirects followed by hand and checked before they are
followed, retries with backoff and Retry-After, a per-host pause after 429, TLS verification from certs.d, bodies
capped in size, and every attempt bounded in total time and by the run's deadline. The bytes travel over a
:class:`~pin_images.wire.Wire` (the standard library's, or requests behind a proxy); the rules here are the same
for both."""

from __future__ import annotations

import enum
import functools
import os
import threading
import time
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Callable, NamedTuple
from urllib.parse import urlencode, urljoin, urlsplit

from .errors import BadResponseError, RegistryConnectionError
from .hosts import netloc, origin
from .targets import Targets, shown
from .wire import (
    SMALL_BODY,
    ConnectionFailure,
    MalformedResponse,
    RequestFailure,
    Response,
    TLSFailure,
    Wire,
    ca_file_for,
)

if TYPE_CHECKING:
    from .preconnect import Warm

__all__ = ["SMALL_BODY", "Purpose", "Request", "RequestStats", "Response", "Transport", "Unreachable"]

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


class RequestStats:
    """Requests sent, by purpose (retries count again), for benchmarks and request-count tests. A plain class: one
    per run, and a dataclass would cost every run's start-up more than all its uses."""

    NAMES = ("manifest_head", "manifest_get", "blob_get", "token", "ping",
             "unauthorized",  # 401 answers received, from any endpoint
             "rate_limited",  # 429 answers received
             "retries")  # fmt: skip

    def __init__(self) -> None:
        self.manifest_head = self.manifest_get = self.blob_get = self.token = self.ping = 0
        self.unauthorized = self.rate_limited = self.retries = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.NAMES}

    def __repr__(self) -> str:
        return f"RequestStats({self.as_dict()})"


class Request(NamedTuple):
    """One logical request made on behalf of the registry at ``registry`` (its base URL).

    ``params`` go on the first hop only; ``data`` is a form body. ``limit`` caps a 200 answer's body (None: the body
    is not wanted, only its first bytes are kept). ``private`` marks secrets (a password, a refresh token) that no
    redirect may carry to another origin.
    """

    method: str
    url: str
    purpose: Purpose
    headers: tuple[tuple[str, str], ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    data: tuple[tuple[str, str], ...] = ()
    limit: int | None = None
    private: bool = False
    registry: str = ""


class Unreachable(RegistryConnectionError):
    """The host could not be reached at all (refused, no such name, TLS, timed out): not one answer's fault."""


def bad_response(host: str, detail: str) -> BadResponseError:
    """The error for an answer we cannot trust or understand, naming the host that gave it."""
    return BadResponseError(f"bad registry response from {host}: {detail}", host)


def safe_header_value(value: str) -> bool:
    """Visible ASCII only: a token with CR/LF or controls would smuggle headers (and requests' error quotes it)."""
    return bool(value) and all(0x20 < ord(ch) < 0x7F for ch in value)


def rate_hint(resp: Response) -> str:
    """What to do about a 429, with the registry's ratelimit-remaining when it sent a sane one."""
    remaining = resp.headers.get("ratelimit-remaining")
    hint = "log in for a higher limit or try again later"
    if remaining and safe_header_value(remaining.replace(" ", "")):
        hint = f"ratelimit-remaining: {remaining[:40]}; {hint}"
    return hint


def read_capped(resp: Response, limit: int, what: str, host: str) -> bytes:
    """The body of an answer fetched with ``limit``; refused when it went past it or could not be read whole."""
    if resp.truncated:
        size = f"{limit // 1048576} MiB" if limit % 1048576 == 0 else f"{limit} bytes"
        raise bad_response(host, f"{what} larger than {size}")
    if resp.read_error is not None:
        raise RegistryConnectionError(f"cannot read {what} from {host}: {resp.read_error}", host)
    return resp.body


class _Overdue(Exception):
    """An attempt ran out of time; ``final`` when the run's deadline, not just the attempt's limit, passed."""

    def __init__(self, final: bool) -> None:
        self.final = final


class _Attempt:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Response | None = None
        self.error: BaseException | None = None
        self.abandoned = False


class Transport:
    """Sends requests for one run; thread-safe. Knows nothing of registries' protocols, tokens or manifests.

    Each attempt runs in a daemon thread that the caller stops waiting for after ``attempt_limit`` seconds or at the
    run's deadline, whichever comes first: socket timeouts alone never end a server that trickles a byte or a header
    line at a time.
    """

    def __init__(
        self,
        wire: Wire,
        *,
        timeout: tuple[float, float],
        retries: int,
        max_retry_wait: float,
        ca_dirs: Sequence[str],
        ca_bundle: str | None,
        user_agent: str,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        deadline: float | None = None,
    ) -> None:
        self.wire = wire
        self.stats = RequestStats()
        self._timeout = timeout
        self._attempt_limit = max(timeout)
        self._tries = max(1, retries)
        self._max_retry_wait = max_retry_wait
        self._ca_dirs = tuple(ca_dirs)
        self._ca_bundle = ca_bundle
        self._user_agent = user_agent
        self._sleep = sleep
        self._clock = clock
        self.deadline = deadline
        self._deadline_at = None if deadline is None else clock() + deadline
        self._lock = threading.Lock()
        self._not_before: dict[str, float] = {}
        self._verify_cache: dict[str, str | None] = {}
        self.targets = Targets()

    def close(self) -> None:
        self.wire.close()

    # --------------------------------------------------------------------------------------------- time

    def remaining(self) -> float | None:
        """Seconds left before the run's deadline (never below 0), or None without one."""
        return None if self._deadline_at is None else max(0.0, self._deadline_at - self._clock())

    def deadline_error(self, host: str, what: str = "") -> Unreachable:
        """The error for work cut short by the run's deadline."""
        detail = f"{what}; " if what else ""
        return Unreachable(
            f"cannot reach {host}: {detail}gave up at the run deadline of {self.deadline:g}s (--deadline)", host
        )

    # --------------------------------------------------------------------------------------------- requests

    def fetch(self, request: Request) -> Response:
        """Send, following redirects ourselves: each target is checked first, and Authorization and bodies never
        go to another origin."""
        method, url = request.method, request.url
        if request.params:
            # The first hop carries the query; a Location already includes whatever the server wants.
            url += ("&" if urlsplit(url).query else "?") + urlencode(request.params)
        headers = {"User-Agent": self._user_agent, **dict(request.headers)}
        body = None
        if request.data:
            body = urlencode(request.data).encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        start = origin(url)
        seen: set[str] = set()
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._send(request, method, url, headers, body)
            location = resp.headers.get("Location")
            if resp.status_code not in _REDIRECTS or not location:
                return resp
            seen.add(url)
            host = netloc(url)
            try:
                # Header bytes arrive decoded as latin-1; a URL's are UTF-8 (requests decodes them so too).
                target = urljoin(url, location.encode("latin-1").decode("utf-8"))
                parts = urlsplit(target)
                scheme, _ = parts.scheme.lower(), parts.port  # a port that is not a number raises
            except (ValueError, UnicodeError):  # "http://[::1/", "h:\xb2": a hostile Location must not crash the run
                raise bad_response(host, "malformed redirect URL") from None
            if scheme not in ("http", "https"):
                raise bad_response(host, "redirect to a non-HTTP URL")
            if target in seen:
                raise bad_response(host, "redirect loop")
            self.targets.check(request.registry or url, target, "redirect", current=url)
            if origin(target) != start:
                if request.private or (body and not (resp.status_code == 303 and method != "HEAD")):
                    raise bad_response(
                        host, f"refused to follow a redirect to {shown(target)}: the request carries credentials "
                        "that must not leave the server they were meant for"
                    )
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if resp.status_code == 303 and method != "HEAD":
                method, body = "GET", None
                headers.pop("Content-Type", None)
            url = target
        raise bad_response(netloc(url), f"more than {MAX_REDIRECTS} redirects")

    def _send(self, request: Request, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Response:
        """One hop with retries: connection errors, timeouts, 5xx and 429 (per-host backoff, Retry-After)."""
        host = netloc(url)
        for attempt in range(1, self._tries + 1):
            self._wait_for_host(host)
            self._count(request.purpose.value)
            try:
                resp = self._attempt(host, functools.partial(
                    self.wire.send, method, url, headers, body, self._socket_timeout(), self.verify(host),
                    request.limit,
                ))
            except _Overdue as late:
                if late.final:
                    raise self.deadline_error(host, "no answer") from None
                failure = "timed out waiting for a response"
                self._retry_failure(host, attempt, failure)
                continue
            except TLSFailure:
                raise Unreachable(self._tls_message(host), host) from None
            except ConnectionFailure as exc:
                if exc.lookup:
                    # A name that does not resolve now will not resolve in half a second: an offline laptop.
                    raise Unreachable(f"cannot reach {host}: {exc.failure}", host) from None
                self._retry_failure(host, attempt, exc.failure)
                continue
            except RequestFailure as exc:
                raise RegistryConnectionError(f"cannot reach {host}: {exc.failure}", host) from None
            except MalformedResponse as exc:
                raise bad_response(host, exc.failure) from None
            if not self._retry_status(resp, host, attempt):
                return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_failure(self, host: str, attempt: int, failure: str) -> None:
        """After a failed attempt: raise once the tries are spent, else pause before the next one."""
        if attempt == self._tries:
            raise Unreachable(f"cannot reach {host}: {failure} (after {attempt} tries)", host) from None
        self._count("retries")
        self._pause(host, self._backoff(attempt), failure)

    def _retry_status(self, resp: Response, host: str, attempt: int) -> bool:
        """False for an answer to return; True after waiting to try again (5xx, 429); raises after the last try."""
        status = resp.status_code
        if status == 401:
            self._count("unauthorized")
        if status != 429 and (status < 500 or status in _NOT_RETRIED_5XX):
            return False
        wait = self._retry_after(resp)
        if status == 429:
            self._count("rate_limited")
            wait = wait if wait is not None else self._backoff(attempt)
            with self._lock:
                # Only this host slows down; other registries keep going at full speed.
                self._not_before[host] = max(self._not_before.get(host, 0.0), self._clock() + wait)
        if attempt == self._tries:
            if status == 429:
                raise RegistryConnectionError(
                    f"rate limited by {host} (HTTP 429, after {attempt} tries); {rate_hint(resp)}", host
                )
            raise RegistryConnectionError(f"{host} answered HTTP {status} (after {attempt} tries)", host)
        self._count("retries")
        if status != 429:  # a 429's wait is taken before the next try, by every request to the host
            self._pause(host, wait if wait is not None else self._backoff(attempt), f"answered HTTP {status}")
        return True

    def _attempt(self, host: str, work: Callable[[], Response], limit: float | None = None) -> Response:
        """Run ``work`` in a daemon thread and wait for it at most until the attempt limit or the deadline."""
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise _Overdue(final=True)
        limit = self._attempt_limit if limit is None else limit
        budget = limit if remaining is None else min(limit, remaining)
        state = _Attempt()

        def run() -> None:
            try:
                state.result = work()
            except BaseException as exc:  # handed to the waiting caller
                state.error = exc
            finally:
                state.done.set()

        threading.Thread(target=run, name=f"pin-images {host}", daemon=True).start()
        if not state.done.wait(budget):
            state.abandoned = True
            raise _Overdue(final=remaining is not None and budget >= remaining)
        if state.error is not None:
            raise state.error
        assert state.result is not None
        return state.result

    def _socket_timeout(self) -> tuple[float, float]:
        connect, read = self._timeout
        remaining = self.remaining()
        if remaining is None:
            return connect, read
        # Even an abandoned attempt should not keep its socket long after the run is over.
        return max(0.01, min(connect, remaining)), max(0.01, min(read, remaining))

    def _pause(self, host: str, seconds: float, failure: str) -> None:
        """Sleep before a retry, unless the deadline would pass first: then fail now with what went wrong."""
        remaining = self.remaining()
        if remaining is not None and seconds >= remaining:
            raise self.deadline_error(host, failure)
        self._sleep(seconds)

    def adopt(self, warm: Warm) -> None:
        """Count the ping a preconnect.Warmup sent, and hand its idle connections to the wire."""
        assert warm.ping is not None
        if not warm.remembered:  # an earlier run's answer cost this run no request
            self._count(Purpose.PING.value)
            if warm.ping.status == 401:
                self._count("unauthorized")
        self.wire.adopt(warm.scheme, warm.hostport, warm.connections, self.verify(warm.hostport))
        for scheme, hostport, conn in warm.elsewhere:
            self.wire.adopt(scheme, hostport, [conn], self.verify(hostport))

    def probe_tls(self, hostport: str) -> str:
        """"https" when ``hostport`` completes a TLS handshake (even with an untrusted certificate), else "http"."""

        probe = functools.partial(
            self.wire.send, "GET", f"https://{hostport}/v2/", {"User-Agent": self._user_agent}, None,
            self._socket_timeout(), self.verify(hostport), None,
        )
        try:
            # A local TLS handshake is instant; don't let a silent plain-http server hold the run for long.
            self._attempt(hostport, probe, min(self._attempt_limit, 5.0))
        except TLSFailure as exc:
            # An untrusted certificate still means TLS: keep https so the error says how to trust the CA.
            return "https" if exc.untrusted else "http"
        except (ConnectionFailure, RequestFailure, MalformedResponse, _Overdue):
            return "http"  # no TLS handshake (a plain http registry), refused, or timed out
        self._count(Purpose.PING.value)
        return "https"

    # --------------------------------------------------------------------------------------------- helpers

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    @staticmethod
    def _backoff(attempt: int) -> float:
        return 0.5 * 2.0 ** (attempt - 1)

    def _retry_after(self, resp: Response) -> float | None:
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
            self._pause(host, delay, "rate limited (HTTP 429)")

    def verify(self, host: str) -> str | None:
        """certs.d CA file for host[:port], else ``ca_bundle``, passed per request; None lets the wire decide as
        requests does (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, certifi).

        Per request because, with trust_env, requests lets REQUESTS_CA_BUNDLE override Session.verify.
        """
        if host not in self._verify_cache:
            self._verify_cache[host] = ca_file_for(host, self._ca_dirs, self._ca_bundle)
        return self._verify_cache[host]

    def _tls_message(self, host: str) -> str:
        where = self._ca_dirs[0] if self._ca_dirs else "/etc/docker/certs.d"
        return (
            f"TLS certificate verification failed for {host}; to trust its CA, save it as "
            f"{os.path.join(where, host, 'ca.crt')} or point REQUESTS_CA_BUNDLE at a bundle that includes it"
        )
