"""Registry authentication: each endpoint's challenge learned once, Basic or Bearer headers, bearer tokens cached
per scope and fetched once however many threads want them, and one token for many repositories."""

from __future__ import annotations

import base64
import functools
import json
import threading
from collections.abc import Iterator
from typing import Any, Callable, NamedTuple, TypeVar
from urllib.parse import quote, urlsplit

from .challenge import Challenge, parse_challenges
from .errors import AuthError, PinImagesError, RegistryError
from .hosts import DOCKER_HUB, is_loopback, netloc
from .pingcache import Ping
from .transport import Purpose, Request, Response, Transport, Unreachable, bad_response, read_capped, safe_header_value

MAX_TOKEN_BYTES = 1024 * 1024
CLIENT_ID = "pin-images"
_DEFAULT_TOKEN_TTL = 60.0
# Keep a scope-chunked token URL well under the 8 KiB request-line limit of common servers and proxies.
_MAX_TOKEN_URL = 4000
_MAX_SCOPES_PER_TOKEN = 50

T = TypeVar("T")
_TokenKey = tuple[str, str, str]  # (realm, service, scope)


class Endpoint(NamedTuple):
    """Where requests for one registry go: a mirror or the registry itself."""

    base: str  # scheme://host[:port][/path], no trailing slash
    host: str  # host[:port] for credentials, certs.d and messages ("docker.io" for Hub)
    secure: bool  # https, or plain http to this machine: credentials may be sent


class _Token(NamedTuple):
    value: str
    expires: float


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class SingleFlight:
    """One call per key at a time; concurrent callers with the same key wait for and share its outcome."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[object, _Flight] = {}

    def do(self, key: object, fn: Callable[[], T]) -> T:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.result  # type: ignore[no-any-return]
        try:
            flight.result = fn()
            return flight.result  # type: ignore[no-any-return]
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()


# Challenge state per endpoint: absent = unknown (send anonymously once), _OPEN = no auth needed so far.
_OPEN = Challenge("none")


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


class Authenticator:
    """Sends requests to registry endpoints with whatever authorization each one asks for; thread-safe."""

    def __init__(self, transport: Transport, keychain: Any, clock: Callable[[], float]) -> None:
        self._transport = transport
        self._keychain = keychain
        self._clock = clock
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge] = {}
        self._probe_locks: dict[str, threading.Lock] = {}
        self._tokens: dict[_TokenKey, _Token] = {}
        self._token_flights = SingleFlight()
        # An endpoint whose first contact failed fails every later request at once, with the same error.
        self._failures: dict[str, Unreachable] = {}
        # Challenges taken from an earlier run's answer (pingcache) that no answer of this run has confirmed yet,
        # and what endpoints answered this run (for the next run's cache).
        self._remembered: dict[str, Ping] = {}
        self._heard: dict[str, Ping] = {}

    # --------------------------------------------------------------------------------------------- requests

    def send(self, ep: Endpoint, repository: str, request: Request) -> Response:
        """Send with what we know of the endpoint's auth; on 401 learn the challenge, authorize, and retry once."""
        request = request._replace(registry=ep.base)
        with self._lock:
            state = self._challenges.get(ep.base)
        probe: threading.Lock | None = None
        if state is None:
            # First contact with this endpoint: let one thread find out its challenge while the others wait,
            # so N concurrent lookups cost one 401, not N, and one failure, not N.
            probe = self._first_contact(ep)
            with self._lock:
                state = self._challenges.get(ep.base)
            if state is not None:
                probe.release()
                probe = None
        try:
            auth, cached_key, state = self._first_authorization(ep, repository, state)
            resp = self._remembering(ep, probe is not None, lambda: self._transport.fetch(_with_headers(request, auth)))
            if probe is not None and resp.status_code != 401:
                with self._lock:
                    self._challenges.setdefault(ep.base, _OPEN)
            if resp.status_code != 401:
                self._confirm(ep)
                return resp
            challenge = self._learn(ep, resp)
        finally:
            if probe is not None:
                probe.release()
        if challenge is None:
            raise self.refused(ep, repository, 401, "no usable WWW-Authenticate challenge")
        if auth and cached_key is None and _same(challenge, state):
            raise self.refused(ep, repository, 401)  # fresh credentials were just refused
        # Otherwise: a token that expired early or lacked this scope, or a challenge that changed (since the run
        # that left it in the cache, or during this one): authorize again under the challenge just received.
        if cached_key is not None:
            with self._lock:
                self._tokens.pop(cached_key, None)  # expired early, revoked, or a prefetched token lacking this scope
        auth, _ = self._authorization(ep, repository, challenge, fresh=True)
        if not auth:
            raise self.refused(ep, repository, 401)
        resp = self._transport.fetch(_with_headers(request, auth))
        if resp.status_code == 401:
            raise self.refused(ep, repository, 401)
        return resp

    def _first_authorization(
        self, ep: Endpoint, repository: str, state: Challenge | None
    ) -> tuple[dict[str, str], _TokenKey | None, Challenge | None]:
        """Authorization for a first try under ``state``. A remembered challenge whose token service fails (moved,
        gone) is forgotten and the endpoint asked again, so a stale cache never fails a run."""
        try:
            auth, key = self._authorization(ep, repository, state, fresh=False)
            return auth, key, state
        except RegistryError:
            with self._lock:
                stale = self._remembered.pop(ep.base, None) is not None
                if stale:
                    self._challenges.pop(ep.base, None)
                # Another lookup may have found the remembered challenge stale first, and replaced it.
                replaced = self._challenges.get(ep.base) is not state
            if not stale and not replaced:
                raise
        state = self.challenge_of(ep)
        auth, key = self._authorization(ep, repository, state, fresh=False)
        return auth, key, state

    def _confirm(self, ep: Endpoint) -> None:
        """An answer other than 401 under a remembered challenge: it still holds (and stays in the cache)."""
        with self._lock:
            ping = self._remembered.pop(ep.base, None)
            if ping is not None:
                self._heard.setdefault(ep.base, ping)

    def heard(self) -> dict[str, Ping]:
        """What each endpoint answered to GET /v2/ (or with a 401) this run, or confirmed from the cache."""
        with self._lock:
            return dict(self._heard)

    def challenge_of(self, ep: Endpoint) -> Challenge | None:
        """The endpoint's challenge, asking ``GET /v2/`` once if it is not known yet; None if it named none."""
        with self._lock:
            state = self._challenges.get(ep.base)
        if state is None:
            probe = self._first_contact(ep)
            try:
                with self._lock:
                    state = self._challenges.get(ep.base)
                if state is None:
                    ping = Request("GET", ep.base + "/v2/", Purpose.PING, registry=ep.base)
                    resp = self._remembering(ep, True, lambda: self._transport.fetch(ping))
                    if resp.status_code == 401:
                        state = self._learn(ep, resp)
                    elif resp.status_code == 200:
                        with self._lock:
                            state = self._challenges.setdefault(ep.base, _OPEN)
                            self._heard[ep.base] = Ping(200, "")
            finally:
                probe.release()
        return state

    def prefetch(self, ep: Endpoint, repositories: list[str]) -> None:
        """Fetch pull tokens for many repositories in as few token requests as the URL length allows."""
        state = self.challenge_of(ep)
        if state is None or state.scheme != "bearer":
            return
        realm, service = state.get("realm") or "", state.get("service") or ""
        missing = [
            f"repository:{repo}:pull"
            for repo in repositories
            if self._cached_token((realm, service, f"repository:{repo}:pull")) is None
        ]
        for chunk in _scope_chunks(realm, missing):
            self._fetch_token(ep, state, chunk)

    # --------------------------------------------------------------------------------------------- state

    def _first_contact(self, ep: Endpoint) -> threading.Lock:
        """The endpoint's first-contact lock, acquired; raises the first contact's failure if there was one."""
        with self._lock:
            probe = self._probe_locks.setdefault(ep.base, threading.Lock())
        remaining = self._transport.remaining()
        if not probe.acquire(timeout=-1 if remaining is None else remaining + 1.0):
            raise self._transport.deadline_error(netloc(ep.base), "waiting for the first answer")
        with self._lock:
            failure = self._failures.get(ep.base)
        if failure is not None:
            probe.release()
            raise Unreachable(str(failure), failure.host)
        return probe

    def _remembering(self, ep: Endpoint, first: bool, fetch: Callable[[], Response]) -> Response:
        """``fetch()``; when it is the endpoint's first contact and cannot reach it, remember that for the rest."""
        try:
            return fetch()
        except Unreachable as exc:
            if first:
                with self._lock:
                    self._failures.setdefault(ep.base, exc)
            raise

    def learn_ping(self, ep: Endpoint, status: int, www_authenticate: str, remembered: bool = False) -> None:
        """Take the answer to a ``GET /v2/`` sent for this endpoint elsewhere (preconnect), as challenge_of would;
        ``remembered`` when it is an earlier run's answer (pingcache), to be confirmed or corrected by this run's."""
        if status == 401:
            self._learn_header(ep, www_authenticate, remembered)
        elif status == 200:
            with self._lock:
                self._challenges.setdefault(ep.base, _OPEN)
                self._note(ep, Ping(200, ""), remembered)

    def _note(self, ep: Endpoint, ping: Ping, remembered: bool) -> None:
        """Record where a challenge came from; the caller holds the lock."""
        if remembered:
            self._remembered[ep.base] = ping
        else:
            self._remembered.pop(ep.base, None)
            self._heard[ep.base] = ping

    def _learn(self, ep: Endpoint, resp: Response) -> Challenge | None:
        return self._learn_header(ep, resp.headers.get("WWW-Authenticate", ""))

    def _learn_header(self, ep: Endpoint, header: str, remembered: bool = False) -> Challenge | None:
        challenges = parse_challenges(header)
        chosen = next((c for c in challenges if c.scheme == "bearer" and c.get("realm")), None)
        chosen = chosen or next((c for c in challenges if c.scheme == "basic"), None)
        if chosen is not None:
            with self._lock:
                self._challenges[ep.base] = chosen
                self._note(ep, Ping(401, header), remembered)
        return chosen

    def _authorization(
        self, ep: Endpoint, repository: str, state: Challenge | None, *, fresh: bool
    ) -> tuple[dict[str, str], _TokenKey | None]:
        """Headers for a request under ``state``, and the token cache key used (None when nothing was cached)."""
        if state is None or state is _OPEN:
            return {}, None
        if state.scheme == "basic":
            cred = self.credential(ep)
            if cred is None or cred.identity_token:
                return {}, None
            return {"Authorization": basic_header(cred.username, cred.password)}, None
        if state.scheme != "bearer":
            return {}, None
        scope = f"repository:{repository}:pull"
        key = (state.get("realm") or "", state.get("service") or "", scope)
        if not fresh:
            token = self._cached_token(key)
            if token is not None:
                return {"Authorization": f"Bearer {token}"}, key
        token = self._token_flights.do(key, lambda: self._token_for(ep, state, [scope], key, fresh=fresh))
        return {"Authorization": f"Bearer {token}"}, None

    def _cached_token(self, key: _TokenKey) -> str | None:
        with self._lock:
            entry = self._tokens.get(key)
        if entry is not None and entry.expires > self._clock():
            return entry.value
        return None

    def _token_for(self, ep: Endpoint, challenge: Challenge, scopes: list[str], key: _TokenKey, *, fresh: bool) -> str:
        # Another thread (or a prefetch) may have stored it while we queued for the flight.
        if not fresh:
            cached = self._cached_token(key)
            if cached is not None:
                return cached
        return self._fetch_token(ep, challenge, scopes)

    # --------------------------------------------------------------------------------------------- tokens

    def _fetch_token(self, ep: Endpoint, challenge: Challenge, scopes: list[str]) -> str:
        """One token request for ``scopes``; stores the token under every scope it was asked for."""
        realm = challenge.get("realm") or ""
        service = challenge.get("service")
        try:
            parts = urlsplit(realm)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            raise bad_response(ep.host, "Bearer challenge has no usable realm URL") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise bad_response(ep.host, "Bearer challenge has no usable realm URL")
        realm_host = netloc(realm)
        # The realm is the server's choice: refuse one that points where the server should not send us.
        self._transport.targets.check(ep.base, realm, "realm")
        # Credentials go to a realm over TLS, or to this machine; never to another host over plain http.
        realm_ok = parts.scheme.lower() == "https" or (is_loopback(realm_host) and is_loopback(ep.host))
        cred = self.credential(ep) if realm_ok else None
        token_request = functools.partial(
            Request, url=realm, purpose=Purpose.TOKEN, limit=MAX_TOKEN_BYTES, private=cred is not None,
            registry=ep.base,
        )
        if cred is not None and cred.identity_token:
            data = [("grant_type", "refresh_token"), ("refresh_token", cred.password), ("client_id", CLIENT_ID),
                    ("scope", " ".join(scopes))]
            if service:
                data.append(("service", service))
            request = token_request(method="POST", data=tuple(data))
        else:
            headers = () if cred is None else (("Authorization", basic_header(cred.username, cred.password)),)
            params = ([("service", service)] if service else []) + [("scope", s) for s in scopes]
            request = token_request(method="GET", headers=headers, params=tuple(params))
        resp = self._transport.fetch(request)
        if resp.status_code in (401, 403):
            raise self.refused(ep, ", ".join(s.split(":")[1] for s in scopes), resp.status_code,
                               f"token server {realm_host} refused")
        if resp.status_code != 200:
            raise bad_response(ep.host, f"token server {realm_host} answered HTTP {resp.status_code}")
        body = read_capped(resp, MAX_TOKEN_BYTES, "token response", ep.host)
        token, ttl = _parse_token(ep, body)
        # Renew a little early so a token never expires between the check and the request.
        expires = self._clock() + max(ttl - min(10.0, ttl / 2), 1.0)
        with self._lock:
            for scope in scopes:
                self._tokens[(realm, service or "", scope)] = _Token(token, expires)
        return token

    # --------------------------------------------------------------------------------------------- credentials

    def credential(self, ep: Endpoint) -> Any:
        """The keychain's credential for the endpoint, never for one reached over plain http to another host."""
        if not ep.secure:
            return None
        try:
            return self._keychain.get(ep.host)
        except RegistryError:
            raise
        except PinImagesError as exc:
            # The contract promises RegistryError subclasses; the source's own message already says what broke.
            raise AuthError(str(exc), ep.host) from exc

    def refused(self, ep: Endpoint, repository: str, status: int, detail: str = "") -> AuthError:
        """The 401/403 error: what was tried (sources, never secrets) and how to log in."""
        if not ep.secure:
            # Not even looked up: asking a credential helper about a host we will not send secrets to is pointless.
            used = f"no credentials sent (they are never sent over plain http to {ep.host})"
        elif self._has_credential(ep):
            used = "credentials tried: " + (", ".join(self._tried(ep)) or "from the keychain")
        else:
            tried = self._tried(ep)
            used = "no credentials found" + (f" (looked in: {', '.join(tried)})" if tried else "")
        verb = "requires authentication" if status == 401 else "denied access"
        extra = f" ({detail})" if detail else ""
        login = "docker login" if ep.host == DOCKER_HUB else f"docker login {ep.host}"
        return AuthError(
            f"{ep.host} {verb} (HTTP {status}) for {repository}{extra}; {used}; log in with "
            f"`{login}`, and check that the repository exists and you may pull it",
            ep.host,
        )

    def _tried(self, ep: Endpoint) -> list[str]:
        try:
            return list(self._keychain.tried(ep.host))
        except Exception:  # a broken source already surfaced through get(); the message must still be built
            return []

    def _has_credential(self, ep: Endpoint) -> bool:
        try:
            return self._keychain.get(ep.host) is not None
        except Exception:  # a broken source counts as tried; its own error was raised where it mattered
            return True


def _same(a: Challenge, b: Challenge | None) -> bool:
    """The same authority: scheme, realm and service (a 401 adds error= and scope= to the challenge it repeats)."""
    return b is not None and all(a.get(k) == b.get(k) for k in ("realm", "service")) and a.scheme == b.scheme


def _with_headers(request: Request, extra: dict[str, str]) -> Request:
    return request._replace(headers=request.headers + tuple(extra.items())) if extra else request


def _parse_token(ep: Endpoint, body: bytes) -> tuple[str, float]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deeply nested junk raises RecursionError
        raise bad_response(ep.host, "token response is not JSON") from None
    if not isinstance(doc, dict):
        raise bad_response(ep.host, "token response is not a JSON object")
    token = doc.get("token") or doc.get("access_token")
    if not isinstance(token, str) or not safe_header_value(token):
        raise bad_response(ep.host, "token response has no usable token")
    ttl = doc.get("expires_in", _DEFAULT_TOKEN_TTL)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
        ttl = _DEFAULT_TOKEN_TTL
    return token, float(ttl)


def _scope_chunks(realm: str, scopes: list[str]) -> Iterator[list[str]]:
    base = len(realm) + 200  # room for service= and the realm's own query
    chunk: list[str] = []
    length = base
    for scope in scopes:
        cost = len(quote(scope, safe="")) + len("&scope=")
        if chunk and (length + cost > _MAX_TOKEN_URL or len(chunk) >= _MAX_SCOPES_PER_TOKEN):
            yield chunk
            chunk, length = [], base
        chunk.append(scope)
        length += cost
    if chunk:
        yield chunk
