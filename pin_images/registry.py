"""Registry client: resolve a reference to a verified sha256 manifest digest over the distribution API."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from email.utils import parsedate_to_datetime
from typing import Any, Callable, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import requests

from . import __version__
from . import manifest as mf
from .challenge import Challenge, parse_challenges
from .errors import (
    AuthError,
    BadResponseError,
    NotFoundError,
    PinImagesError,
    RegistryConnectionError,
    RegistryError,
)
from .manifest import ACCEPT, INDEX_TYPES, SCHEMA1_TYPES, Platform, PlatformChild, Resolution
from .reference import DEFAULT_REGISTRY, Reference, is_sha256_digest

__all__ = ["MAX_MANIFEST_BYTES", "RegistryClient", "RequestStats"]

HUB_API_HOST = "registry-1.docker.io"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_TOKEN_BYTES = 1024 * 1024
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_REDIRECTS = 5
CLIENT_ID = "pin-images"
MANIFEST_TYPES = frozenset({mf.OCI_INDEX, mf.DOCKER_LIST, mf.OCI_MANIFEST, mf.DOCKER_MANIFEST})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# 501/505 say "never", not "not now": retrying them only wastes the budget.
_NOT_RETRIED_5XX = frozenset({501, 505})
_DEFAULT_TOKEN_TTL = 60.0
# Keep a scope-chunked token URL well under the 8 KiB request-line limit of common servers and proxies.
_MAX_TOKEN_URL = 4000
_MAX_SCOPES_PER_TOKEN = 50

T = TypeVar("T")


@dataclass
class RequestStats:
    """Requests sent, by kind (retries count again), for benchmarks and request-count tests."""

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
class _Endpoint:
    """Where requests for one registry go: a mirror or the registry itself."""

    base: str  # scheme://host[:port][/path], no trailing slash
    host: str  # host[:port] for credentials, certs.d and messages ("docker.io" for Hub)
    secure: bool  # https, or plain http to this machine: credentials may be sent
    mirror: bool


@dataclass
class _Token:
    value: str
    expires: float


class _NoAuth(requests.auth.AuthBase):
    """Stops requests from adding ~/.netrc credentials behind our back; we set Authorization ourselves."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


_NO_AUTH = _NoAuth()


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _SingleFlight:
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


class _PlatformMissing(NotFoundError):
    """The image exists but has no manifest for the wanted platform."""


def _split_host(hostport: str) -> str:
    """The host part of host[:port], without IPv6 brackets."""
    if hostport.startswith("["):
        return hostport[1 : hostport.find("]")] if "]" in hostport else hostport[1:]
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


def is_loopback(hostport: str) -> bool:
    """localhost, *.localhost, 127.0.0.0/8 and ::1, with or without a port."""
    host = _split_host(hostport).lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _netloc(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2].lower()


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), _netloc(url)


def _describe_exception(exc: BaseException) -> str:
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


def _safe_header_value(value: str) -> bool:
    """Visible ASCII only: a token with CR/LF or controls would smuggle headers (and requests' error quotes it)."""
    return bool(value) and all(0x20 < ord(ch) < 0x7F for ch in value)


def _discard(resp: requests.Response) -> None:
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


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


class RegistryClient:
    """Resolves references against registries; thread-safe, one instance per run.

    ``mirrors`` maps a registry name (``docker.io``, ``localhost:5000``) to base URLs tried in order before the
    registry itself. The client never reads the environment: the caller passes the keychain, session and CA dirs.
    """

    def __init__(
        self,
        keychain: Any,
        *,
        mirrors: Mapping[str, Sequence[str]] | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        retries: int = 3,
        max_retry_wait: float = 30.0,
        ca_dirs: Sequence[str] = (),
        ca_bundle: str | None = None,
        insecure: Sequence[str] = (),
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_manifest_bytes: int = MAX_MANIFEST_BYTES,
        user_agent: str = f"pin-images/{__version__}",
    ) -> None:
        self._keychain = keychain
        self._mirrors = {k.lower(): tuple(v) for k, v in (mirrors or {}).items()}
        self._timeout = timeout
        self._tries = max(1, retries)
        self._max_retry_wait = max_retry_wait
        self._ca_dirs = tuple(ca_dirs)
        self._ca_bundle = ca_bundle
        self._insecure = frozenset(h.lower() for h in insecure)
        self._session = session if session is not None else self._default_session()
        self._sleep = sleep
        self._clock = clock
        self._max_manifest_bytes = max_manifest_bytes
        self._user_agent = user_agent
        self.stats = RequestStats()
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge] = {}
        self._probe_locks: dict[str, threading.Lock] = {}
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self._token_flights = _SingleFlight()
        self._not_before: dict[str, float] = {}
        self._verify_cache: dict[str, str | None] = {}
        self._loopback_schemes: dict[str, str] = {}

    @staticmethod
    def _default_session() -> requests.Session:
        session = requests.Session()
        # The plan runs several lookups per host at once; the default pool of 10 would drop keep-alives.
        adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=32)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    # ----------------------------------------------------------------------------------------------- public API

    def resolve(self, ref: Reference, platform: Platform | None = None) -> Resolution:
        """The digest to pin for ``ref.lookup``: the top-level manifest's, or the ``platform`` child's."""
        return self._with_mirrors(ref, lambda ep: self._resolve_at(ep, ref, ref.lookup, platform))

    def resolve_update(self, ref: Reference, current: str, platform: Platform | None = None) -> Resolution:
        """Re-resolve ``ref``'s tag keeping the kind of pin ``current`` is (index stays index, platform stays
        the same platform). With an explicit ``platform`` that platform's child is returned."""
        if not is_sha256_digest(current):
            raise RegistryError(f"cannot update {ref}: pinned digest {current!r} is not a sha256 digest", ref.registry)
        if platform is not None:
            return self.resolve(ref, platform)
        return self._with_mirrors(ref, lambda ep: self._update_at(ep, ref, current))

    def prefetch_tokens(self, refs: Iterable[Reference]) -> None:
        """Learn each registry's challenge once and fetch one token for many repositories (issue 5).

        Only an optimisation: any failure is swallowed and the normal per-request path takes over.
        """
        repos: dict[_Endpoint, list[str]] = {}
        for ref in refs:
            ep = self._endpoints(ref.registry)[0]
            names = repos.setdefault(ep, [])
            if ref.repository not in names:
                names.append(ref.repository)
        for ep, names in repos.items():
            try:
                self._prefetch(ep, names)
            except PinImagesError:
                continue

    prefetch = prefetch_tokens  # the name the Resolver protocol declares

    # ----------------------------------------------------------------------------------------------- endpoints

    def _endpoints(self, registry: str) -> list[_Endpoint]:
        result = [self._mirror_endpoint(url) for url in self._mirrors.get(registry.lower(), ())]
        netloc = HUB_API_HOST if registry == DEFAULT_REGISTRY else registry
        if self._is_insecure(netloc):
            scheme = "http"
        elif is_loopback(netloc):
            scheme = self._loopback_scheme(netloc)
        else:
            scheme = "https"
        result.append(_Endpoint(f"{scheme}://{netloc}", registry, scheme == "https" or is_loopback(netloc), False))
        return result

    def _loopback_scheme(self, netloc: str) -> str:
        """A registry on this machine may serve TLS or plain http; like docker, try https first. Probed once."""
        with self._lock:
            lock = self._probe_locks.setdefault("scheme " + netloc, threading.Lock())
        with lock:
            if netloc not in self._loopback_schemes:
                self._loopback_schemes[netloc] = self._probe_tls(netloc)
            return self._loopback_schemes[netloc]

    def _probe_tls(self, netloc: str) -> str:
        try:
            resp = self._session.get(
                # A local TLS handshake is instant; don't let a silent plain-http server hold the run for long.
                f"https://{netloc}/v2/", headers={"User-Agent": self._user_agent},
                timeout=(self._timeout[0], min(self._timeout[1], 5.0)),
                allow_redirects=False, stream=True, verify=self._verify(netloc), auth=_NO_AUTH,
            )
        except requests.exceptions.SSLError as exc:
            # An untrusted certificate still means TLS: keep https so the error says how to trust the CA.
            return "https" if "CERTIFICATE_VERIFY_FAILED" in str(exc) else "http"
        except requests.exceptions.RequestException:
            return "http"  # no TLS handshake (a plain http registry), refused, or timed out
        self._count("ping")
        _discard(resp)
        return "https"

    def _mirror_endpoint(self, url: str) -> _Endpoint:
        url = url.strip().rstrip("/")
        if "://" not in url:
            host = url.split("/", 1)[0]
            url = ("http://" if is_loopback(host) or self._is_insecure(host) else "https://") + url
        scheme = urlsplit(url).scheme.lower()
        host = _netloc(url)
        return _Endpoint(url, host, scheme == "https" or is_loopback(host), True)

    def _is_insecure(self, hostport: str) -> bool:
        return hostport.lower() in self._insecure or _split_host(hostport).lower() in self._insecure

    def _with_mirrors(self, ref: Reference, fn: Callable[[_Endpoint], T]) -> T:
        endpoints = self._endpoints(ref.registry)
        for ep in endpoints[:-1]:
            try:
                return fn(ep)
            except _PlatformMissing:
                raise  # the mirror has the image; its platform list is the answer, as docker takes it
            except (NotFoundError, RegistryConnectionError):
                continue  # as docker's registry-mirrors: a miss or an outage falls through to the next
        return fn(endpoints[-1])

    # ----------------------------------------------------------------------------------------------- resolution

    def _resolve_at(self, ep: _Endpoint, ref: Reference, lookup: str, platform: Platform | None) -> Resolution:
        if platform is not None:
            return self._resolve_platform(ep, ref, lookup, platform)
        head = self._head_manifest(ep, ref, lookup)
        if head is not None:
            return head
        body, media_type, digest = self._get_manifest(ep, ref, lookup)
        children = self._children(ep, body, media_type) if media_type in INDEX_TYPES else ()
        return Resolution(digest, media_type, children)

    def _resolve_platform(self, ep: _Endpoint, ref: Reference, lookup: str, platform: Platform) -> Resolution:
        body, media_type, digest = self._get_manifest(ep, ref, lookup)
        if media_type in INDEX_TYPES:
            children = self._children(ep, body, media_type)
            child = self._select(ep, ref, lookup, children, platform)
            return Resolution(child.digest, child.media_type, children)
        actual = self._image_platform(ep, ref, body, media_type)
        if not mf.platform_matches(actual, platform):
            raise _PlatformMissing(
                f"{self._what(ref, lookup)} in {ref.name} is a single-platform {actual} image, not {platform}", ep.host
            )
        return Resolution(digest, media_type)

    def _update_at(self, ep: _Endpoint, ref: Reference, current: str) -> Resolution:
        top = self._resolve_at(ep, ref, ref.lookup, None)
        if top.digest == current:
            return top
        current_type = self._current_type(ep, ref, current, top)
        if current_type in INDEX_TYPES or top.media_type not in INDEX_TYPES:
            # An index pin stays an index pin; a single-manifest tag has nothing else to offer.
            return top
        body, media_type, _ = self._get_manifest(ep, ref, top.digest)
        children = self._children(ep, body, media_type)
        if any(child.digest == current for child in children):
            return Resolution(current, current_type, children)  # the platform pin is still current
        old_body, old_type, _ = self._get_manifest(ep, ref, current)
        old_platform = self._image_platform(ep, ref, old_body, old_type)
        child = self._select(ep, ref, ref.lookup, children, old_platform)
        return Resolution(child.digest, child.media_type, children)

    def _current_type(self, ep: _Endpoint, ref: Reference, current: str, top: Resolution) -> str:
        if any(child.digest == current for child in top.children):
            return next(c.media_type for c in top.children if c.digest == current)
        try:
            head = self._head_manifest(ep, ref, current)
        except NotFoundError:
            raise NotFoundError(
                f"pinned digest {current} no longer exists in {ref.name}, so it is unknown whether it was an index "
                f"or one platform's manifest; re-pin {ref.without_digest} (with --platform for a platform pin)",
                ep.host,
            ) from None
        if head is not None:
            return head.media_type
        return self._get_manifest(ep, ref, current)[1]

    def _children(self, ep: _Endpoint, body: bytes, media_type: str) -> tuple[PlatformChild, ...]:
        try:
            return mf.index_children(mf.parse_manifest(body, media_type))
        except mf.ManifestError as exc:
            raise self._bad(ep, str(exc)) from None

    def _select(
        self, ep: _Endpoint, ref: Reference, lookup: str, children: tuple[PlatformChild, ...], platform: Platform
    ) -> PlatformChild:
        child = mf.select_child(children, platform)
        if child is None:
            available = ", ".join(sorted({str(c.platform) for c in children if c.platform})) or "none"
            raise _PlatformMissing(
                f"no {platform} image for {self._what(ref, lookup)} in {ref.name} (available: {available})", ep.host
            )
        if not is_sha256_digest(child.digest):
            raise self._bad(ep, f"index entry for {platform} has an invalid digest")
        return child

    def _image_platform(self, ep: _Endpoint, ref: Reference, body: bytes, media_type: str) -> Platform:
        try:
            config = mf.config_digest(mf.parse_manifest(body, media_type))
        except mf.ManifestError as exc:
            raise self._bad(ep, str(exc)) from None
        if not is_sha256_digest(config):
            raise self._bad(ep, "config descriptor has an invalid digest")
        url = f"{ep.base}/v2/{ref.repository}/blobs/{config}"
        with self._authorized(ep, ref.repository, "GET", url, {}, kind="blob_get", stream=True) as resp:
            self._raise_for_status(ep, ref, resp, f"config blob {config}")
            blob = self._read_capped(ep, resp, MAX_CONFIG_BYTES, "config blob")
        if "sha256:" + hashlib.sha256(blob).hexdigest() != config:
            raise self._bad(ep, f"config blob does not match its digest {config}")
        try:
            return mf.config_platform(blob)
        except mf.ManifestError as exc:
            raise self._bad(ep, str(exc)) from None

    # ----------------------------------------------------------------------------------------------- manifests

    def _manifest_url(self, ep: _Endpoint, ref: Reference, lookup: str) -> str:
        return f"{ep.base}/v2/{ref.repository}/manifests/{lookup}"

    def _head_manifest(self, ep: _Endpoint, ref: Reference, lookup: str) -> Resolution | None:
        """HEAD (free on Docker Hub); None when the answer is not enough and a GET is needed."""
        url = self._manifest_url(ep, ref, lookup)
        with self._authorized(ep, ref.repository, "HEAD", url, {"Accept": ACCEPT}, kind="manifest_head") as resp:
            if resp.status_code in (401, 403, 404, 429):
                self._raise_for_status(ep, ref, resp, self._what(ref, lookup))
            if resp.status_code != 200:
                return None  # 405 and friends: some registries and proxies reject HEAD
            media_type = _media_type(resp.headers.get("Content-Type"))
            digest = resp.headers.get("Docker-Content-Digest")
        if media_type in SCHEMA1_TYPES:
            raise self._bad(ep, "unsupported legacy (schema 1) manifest")
        if digest is None or media_type not in MANIFEST_TYPES:
            return None
        if not is_sha256_digest(digest):
            raise self._bad(ep, f"invalid Docker-Content-Digest header for {ref.name}:{lookup}")
        if lookup.startswith("sha256:") and digest != lookup:
            raise self._bad(ep, f"asked for {lookup} but the registry says {digest}")
        return Resolution(digest, media_type)

    def _get_manifest(self, ep: _Endpoint, ref: Reference, lookup: str) -> tuple[bytes, str, str]:
        """GET and verify: (body, media type, sha256 of the exact body)."""
        url = self._manifest_url(ep, ref, lookup)
        headers = {"Accept": ACCEPT}
        with self._authorized(ep, ref.repository, "GET", url, headers, kind="manifest_get", stream=True) as resp:
            self._raise_for_status(ep, ref, resp, self._what(ref, lookup))
            media_type = _media_type(resp.headers.get("Content-Type"))
            header_digest = resp.headers.get("Docker-Content-Digest")
            if media_type in SCHEMA1_TYPES:
                raise self._bad(ep, "unsupported legacy (schema 1) manifest")
            body = self._read_capped(ep, resp, self._max_manifest_bytes, "manifest")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if media_type not in MANIFEST_TYPES:
            try:
                mf.parse_manifest(body, media_type)  # turns a schema 1 body behind application/json into that error
            except mf.ManifestError as exc:
                if "schema 1" in str(exc):
                    raise self._bad(ep, str(exc)) from None
            raise self._bad(ep, f"unexpected Content-Type {media_type or '(none)'!r} for a manifest")
        # distribution#2395 made some registries send a wrong header; a body that disagrees is never pinned.
        if header_digest is not None and header_digest != digest:
            raise self._bad(ep, f"manifest body does not match its Docker-Content-Digest header ({ref.name}:{lookup})")
        if lookup.startswith("sha256:") and digest != lookup:
            raise self._bad(ep, f"asked for {lookup} but the body hashes to {digest}")
        try:
            mf.parse_manifest(body, media_type)
        except mf.ManifestError as exc:
            raise self._bad(ep, str(exc)) from None
        return body, media_type, digest

    def _read_capped(self, ep: _Endpoint, resp: requests.Response, limit: int, what: str) -> bytes:
        too_big = f"{what} larger than " + (f"{limit // 1048576} MiB" if limit % 1048576 == 0 else f"{limit} bytes")
        length = resp.headers.get("Content-Length", "")
        if length.isascii() and length.isdigit() and int(length) > limit:  # "²".isdigit() is True
            raise self._bad(ep, too_big)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in resp.iter_content(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise self._bad(ep, too_big)
                chunks.append(chunk)
        except requests.exceptions.RequestException as exc:
            raise RegistryConnectionError(
                f"cannot read {what} from {ep.host}: {_describe_exception(exc)}", ep.host
            ) from None
        return b"".join(chunks)

    # ----------------------------------------------------------------------------------------------- errors

    @staticmethod
    def _what(ref: Reference, lookup: str) -> str:
        return f"digest {lookup}" if lookup.startswith("sha256:") else f"tag {lookup}"

    @staticmethod
    def _bad(ep: _Endpoint, detail: str) -> BadResponseError:
        return BadResponseError(f"bad registry response from {ep.host}: {detail}", ep.host)

    def _raise_for_status(self, ep: _Endpoint, ref: Reference, resp: requests.Response, what: str) -> None:
        status = resp.status_code
        if status == 200:
            return
        if status == 404:
            if self._error_code(resp) == "NAME_UNKNOWN":
                raise NotFoundError(f"repository {ref.name} not found", ep.host)
            raise NotFoundError(f"{what} not found in {ref.name}", ep.host)
        if status in (401, 403):
            raise self._auth_error(ep, ref.repository, status)
        if status == 429:
            raise RegistryConnectionError(f"rate limited by {ep.host} (HTTP 429); {self._rate_hint(resp)}", ep.host)
        raise self._bad(ep, f"HTTP {status} for {what} of {ref.name}")

    @staticmethod
    def _error_code(resp: requests.Response) -> str:
        """The first distribution error code of a (small) error body, or ""."""
        try:
            raw = b""
            for chunk in resp.iter_content(16 * 1024):
                raw += chunk
                if len(raw) >= 64 * 1024:
                    return ""
            codes = json.loads(raw or b"{}").get("errors") or []
            return str(codes[0].get("code", "")) if codes and isinstance(codes[0], dict) else ""
        except Exception:  # an error body is a hint only; a bad one must not hide the 404
            return ""

    @staticmethod
    def _rate_hint(resp: requests.Response) -> str:
        remaining = resp.headers.get("ratelimit-remaining")
        hint = "log in for a higher limit or try again later"
        if remaining and _safe_header_value(remaining.replace(" ", "")):
            hint = f"ratelimit-remaining: {remaining[:40]}; {hint}"
        return hint

    def _login_hint(self, ep: _Endpoint) -> str:
        return "docker login" if ep.host == DEFAULT_REGISTRY else f"docker login {ep.host}"

    def _tried(self, ep: _Endpoint) -> list[str]:
        try:
            return list(self._keychain.tried(ep.host))
        except Exception:  # a broken source already surfaced through get(); the message must still be built
            return []

    def _auth_error(self, ep: _Endpoint, repository: str, status: int, detail: str = "") -> AuthError:
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
        return AuthError(
            f"{ep.host} {verb} (HTTP {status}) for {repository}{extra}; {used}; log in with "
            f"`{self._login_hint(ep)}`, and check that the repository exists and you may pull it",
            ep.host,
        )

    def _has_credential(self, ep: _Endpoint) -> bool:
        try:
            return self._keychain.get(ep.host) is not None
        except Exception:  # a broken source counts as tried; its own error was raised where it mattered
            return True

    # ----------------------------------------------------------------------------------------------- auth

    def _credential(self, ep: _Endpoint) -> Any:
        if not ep.secure:
            return None
        try:
            return self._keychain.get(ep.host)
        except RegistryError:
            raise
        except PinImagesError as exc:
            # The contract promises RegistryError subclasses; the source's own message already says what broke.
            raise AuthError(str(exc), ep.host) from exc

    def _probe_lock(self, ep: _Endpoint) -> threading.Lock:
        with self._lock:
            return self._probe_locks.setdefault(ep.base, threading.Lock())

    def _learn(self, ep: _Endpoint, resp: requests.Response) -> Challenge | None:
        challenges = parse_challenges(resp.headers.get("WWW-Authenticate", ""))
        chosen = next((c for c in challenges if c.scheme == "bearer" and c.get("realm")), None)
        chosen = chosen or next((c for c in challenges if c.scheme == "basic"), None)
        if chosen is not None:
            with self._lock:
                self._challenges[ep.base] = chosen
        return chosen

    def _authorized(
        self, ep: _Endpoint, repository: str, method: str, url: str, headers: dict[str, str], *, kind: str,
        stream: bool = False,
    ) -> requests.Response:
        return self._authorized_send(ep, repository, method, url, headers, kind, stream)

    def _authorized_send(
        self, ep: _Endpoint, repository: str, method: str, url: str, headers: dict[str, str], kind: str, stream: bool
    ) -> requests.Response:
        """Send with what we know of the endpoint's auth; on 401 learn the challenge, authorize, and retry once."""
        with self._lock:
            state = self._challenges.get(ep.base)
        probe: threading.Lock | None = None
        if state is None:
            # First contact with this endpoint: let one thread find out its challenge while the others wait,
            # so N concurrent lookups cost one 401, not N.
            probe = self._probe_lock(ep)
            probe.acquire()
            with self._lock:
                state = self._challenges.get(ep.base)
            if state is not None:
                probe.release()
                probe = None
        try:
            auth, cached_key = self._authorization(ep, repository, state, fresh=False)
            resp = self._fetch(method, url, {**headers, **auth}, kind=kind, stream=stream)
            if probe is not None and resp.status_code != 401:
                with self._lock:
                    self._challenges.setdefault(ep.base, _OPEN)
            if resp.status_code != 401:
                return resp
            challenge = self._learn(ep, resp)
        finally:
            if probe is not None:
                probe.release()
        _discard(resp)
        if challenge is None:
            raise self._auth_error(ep, repository, 401, "no usable WWW-Authenticate challenge")
        if auth and cached_key is None:
            raise self._auth_error(ep, repository, 401)  # fresh credentials were just refused
        if cached_key is not None:
            with self._lock:
                self._tokens.pop(cached_key, None)  # expired early, revoked, or a prefetched token lacking this scope
        auth, _ = self._authorization(ep, repository, challenge, fresh=True)
        if not auth:
            raise self._auth_error(ep, repository, 401)
        resp = self._fetch(method, url, {**headers, **auth}, kind=kind, stream=stream)
        if resp.status_code == 401:
            _discard(resp)
            raise self._auth_error(ep, repository, 401)
        return resp

    def _authorization(
        self, ep: _Endpoint, repository: str, state: Challenge | None, *, fresh: bool
    ) -> tuple[dict[str, str], tuple[str, str, str] | None]:
        """Headers for a request under ``state``, and the token cache key used (None when nothing was cached)."""
        if state is None or state is _OPEN:
            return {}, None
        if state.scheme == "basic":
            cred = self._credential(ep)
            if cred is None or cred.identity_token:
                return {}, None
            return {"Authorization": self._basic(cred.username, cred.password)}, None
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

    def _cached_token(self, key: tuple[str, str, str]) -> str | None:
        with self._lock:
            entry = self._tokens.get(key)
        if entry is not None and entry.expires > self._clock():
            return entry.value
        return None

    def _token_for(
        self, ep: _Endpoint, challenge: Challenge, scopes: list[str], key: tuple[str, str, str], *, fresh: bool
    ) -> str:
        # Another thread (or a prefetch) may have stored it while we queued for the flight.
        if not fresh:
            cached = self._cached_token(key)
            if cached is not None:
                return cached
        return self._fetch_token(ep, challenge, scopes)

    @staticmethod
    def _basic(username: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")

    def _fetch_token(self, ep: _Endpoint, challenge: Challenge, scopes: list[str]) -> str:
        """One token request for ``scopes``; stores the token under every scope it was asked for."""
        realm = challenge.get("realm") or ""
        service = challenge.get("service")
        try:
            parts = urlsplit(realm)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            raise self._bad(ep, "Bearer challenge has no usable realm URL") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise self._bad(ep, "Bearer challenge has no usable realm URL")
        realm_host = _netloc(realm)
        # Credentials go to a realm over TLS, or to this machine; never to another host over plain http.
        realm_ok = parts.scheme.lower() == "https" or (is_loopback(realm_host) and is_loopback(ep.host))
        cred = self._credential(ep) if realm_ok else None
        headers: dict[str, str] = {}
        if cred is not None and cred.identity_token:
            data: dict[str, str] = {
                "grant_type": "refresh_token",
                "refresh_token": cred.password,
                "client_id": CLIENT_ID,
                "scope": " ".join(scopes),
            }
            if service:
                data["service"] = service
            resp = self._fetch("POST", realm, headers, kind="token", data=data, stream=True)
        else:
            if cred is not None:
                headers["Authorization"] = self._basic(cred.username, cred.password)
            params = ([("service", service)] if service else []) + [("scope", s) for s in scopes]
            resp = self._fetch("GET", realm, headers, kind="token", params=params, stream=True)
        with resp:
            if resp.status_code in (401, 403):
                raise self._auth_error(ep, ", ".join(s.split(":")[1] for s in scopes), resp.status_code,
                                       f"token server {realm_host} refused")
            if resp.status_code != 200:
                raise self._bad(ep, f"token server {realm_host} answered HTTP {resp.status_code}")
            body = self._read_capped(ep, resp, MAX_TOKEN_BYTES, "token response")
        token, ttl = self._parse_token(ep, body)
        now = self._clock()
        # Renew a little early so a token never expires between the check and the request.
        expires = now + max(ttl - min(10.0, ttl / 2), 1.0)
        with self._lock:
            for scope in scopes:
                self._tokens[(realm, service or "", scope)] = _Token(token, expires)
        return token

    def _parse_token(self, ep: _Endpoint, body: bytes) -> tuple[str, float]:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # deeply nested junk raises RecursionError
            raise self._bad(ep, "token response is not JSON") from None
        if not isinstance(doc, dict):
            raise self._bad(ep, "token response is not a JSON object")
        token = doc.get("token") or doc.get("access_token")
        if not isinstance(token, str) or not _safe_header_value(token):
            raise self._bad(ep, "token response has no usable token")
        ttl = doc.get("expires_in", _DEFAULT_TOKEN_TTL)
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
            ttl = _DEFAULT_TOKEN_TTL
        return token, float(ttl)

    def learn_challenges(self, refs: Iterable[Reference]) -> None:
        """Find out how each registry authenticates (one ``GET /v2/`` each), e.g. while the caller still scans.

        Only an optimisation, like prefetch_tokens: failures are swallowed and the per-request path takes over.
        """
        for ep in dict.fromkeys(self._endpoints(ref.registry)[0] for ref in refs):
            try:
                self._challenge_of(ep)
            except PinImagesError:
                continue

    def _challenge_of(self, ep: _Endpoint) -> Challenge | None:
        with self._lock:
            state = self._challenges.get(ep.base)
        if state is None:
            with self._probe_lock(ep):
                with self._lock:
                    state = self._challenges.get(ep.base)
                if state is None:
                    with self._fetch("GET", ep.base + "/v2/", {}, kind="ping") as resp:
                        if resp.status_code == 401:
                            state = self._learn(ep, resp)
                        elif resp.status_code == 200:
                            with self._lock:
                                state = self._challenges.setdefault(ep.base, _OPEN)
        return state

    def _prefetch(self, ep: _Endpoint, repositories: list[str]) -> None:
        state = self._challenge_of(ep)
        if state is None or state.scheme != "bearer":
            return
        realm, service = state.get("realm") or "", state.get("service") or ""
        missing = [
            f"repository:{repo}:pull"
            for repo in repositories
            if self._cached_token((realm, service, f"repository:{repo}:pull")) is None
        ]
        for chunk in self._scope_chunks(realm, missing):
            self._fetch_token(ep, state, chunk)

    @staticmethod
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

    # ----------------------------------------------------------------------------------------------- transport

    def _fetch(
        self, method: str, url: str, headers: dict[str, str], *, kind: str, stream: bool = False,
        params: list[tuple[str, str]] | None = None, data: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send, following redirects ourselves so Authorization never reaches another origin."""
        origin = _origin(url)
        seen: set[str] = set()
        headers = {"User-Agent": self._user_agent, **headers}
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._send(method, url, headers, kind=kind, stream=stream, params=params, data=data)
            location = resp.headers.get("Location")
            if resp.status_code not in _REDIRECTS or not location:
                return resp
            _discard(resp)
            if params:
                # The first hop carried the query; the Location already includes whatever the server wants.
                url = requests.Request("GET", url, params=params).prepare().url or url
                params = None
            seen.add(url)
            host = _netloc(url)
            try:
                target = urljoin(url, location)
                scheme = urlsplit(target).scheme.lower()
            except ValueError:  # e.g. "http://[::1/": a hostile Location must not crash the run
                raise BadResponseError(f"bad registry response from {host}: malformed redirect URL", host) from None
            if scheme not in ("http", "https"):
                raise BadResponseError(f"bad registry response from {host}: redirect to a non-HTTP URL", host)
            if target in seen:
                raise BadResponseError(f"bad registry response from {host}: redirect loop", host)
            if _origin(target) != origin:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if resp.status_code == 303 and method != "HEAD":
                method, data = "GET", None
            url = target
        host = _netloc(url)
        raise BadResponseError(f"bad registry response from {host}: more than {MAX_REDIRECTS} redirects", host)

    def _send(
        self, method: str, url: str, headers: dict[str, str], *, kind: str, stream: bool,
        params: list[tuple[str, str]] | None, data: dict[str, str] | None,
    ) -> requests.Response:
        """One hop with retries: connection errors, timeouts, 5xx and 429 (per-host backoff, Retry-After)."""
        host = _netloc(url)
        for attempt in range(1, self._tries + 1):
            self._wait_for_host(host)
            self._count(kind)
            try:
                resp = self._session.request(
                    method, url, headers=headers, params=params, data=data, timeout=self._timeout,
                    allow_redirects=False, stream=stream, verify=self._verify(host), auth=_NO_AUTH,
                )
            except requests.exceptions.SSLError:
                raise RegistryConnectionError(self._tls_message(host), host) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                if attempt == self._tries:
                    raise RegistryConnectionError(
                        f"cannot reach {host}: {_describe_exception(exc)} (after {attempt} tries)", host
                    ) from None
                self._count("retries")
                self._sleep(self._backoff(attempt))
                continue
            except requests.exceptions.RequestException as exc:
                raise RegistryConnectionError(f"cannot reach {host}: {_describe_exception(exc)}", host) from None
            except (UnicodeError, ValueError) as exc:
                # requests decodes a 3xx Location as UTF-8 even with allow_redirects=False; latin-1 bytes raise.
                raise BadResponseError(
                    f"bad registry response from {host}: malformed response ({exc.__class__.__name__})", host
                ) from None
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
                _discard(resp)
                if status == 429:
                    raise RegistryConnectionError(
                        f"rate limited by {host} (HTTP 429, after {attempt} tries); {self._rate_hint(resp)}", host
                    )
                raise RegistryConnectionError(f"{host} answered HTTP {status} (after {attempt} tries)", host)
            _discard(resp)
            self._count("retries")
            if status != 429:
                self._sleep(wait if wait is not None else self._backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _count(self, kind: str) -> None:
        with self._lock:
            setattr(self.stats, kind, getattr(self.stats, kind) + 1)

    @staticmethod
    def _backoff(attempt: int) -> float:
        return 0.5 * (2 ** (attempt - 1))

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

    def _verify(self, host: str) -> str | None:
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
