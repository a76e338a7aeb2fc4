"""Registry client: resolve a reference to a verified sha256 manifest digest over the distribution API, trying
mirrors first, and map every answer to a result or one error."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, TypeVar
from urllib.parse import urlsplit

from . import __version__
from . import manifest as mf
from .auth import Authenticator, Endpoint
from .errors import NotFoundError, PinImagesError, RegistryConnectionError, RegistryError
from .hosts import api_host, host_of, is_loopback, netloc
from .manifest import ACCEPT, INDEX_TYPES, SCHEMA1_TYPES, Platform, PlatformChild, Resolution
from .reference import Reference, is_sha256_digest
from .transport import (
    SMALL_BODY,
    Purpose,
    Request,
    RequestStats,
    Response,
    Transport,
    bad_response,
    rate_hint,
    read_capped,
)

if TYPE_CHECKING:
    import requests

    from .wire import Wire

__all__ = ["MAX_MANIFEST_BYTES", "RegistryClient", "RequestStats", "is_loopback"]

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MANIFEST_TYPES = frozenset({mf.OCI_INDEX, mf.DOCKER_LIST, mf.OCI_MANIFEST, mf.DOCKER_MANIFEST})

T = TypeVar("T")
_ACCEPT = (("Accept", ACCEPT),)


class _PlatformMissing(NotFoundError):
    """The image exists but has no manifest for the wanted platform."""


class _Manifest(NamedTuple):
    """A manifest as fetched: the exact body, its media type and the sha256 of the body."""

    body: bytes
    media_type: str
    digest: str


def _sha256(data: bytes) -> str:
    import hashlib  # here: a HEAD answers most lookups, and hashlib's OpenSSL set-up costs every run ~3 ms

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _what(lookup: str) -> str:
    return f"digest {lookup}" if lookup.startswith("sha256:") else f"tag {lookup}"


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


class _Endpoints:
    """Where a registry's requests go: its mirrors in order, then the registry itself. Thread-safe."""

    def __init__(self, mirrors: Mapping[str, Sequence[str]], insecure: Sequence[str],
                 probe_tls: Callable[[str], str]) -> None:
        self._mirrors = {k.lower(): tuple(v) for k, v in mirrors.items()}
        self._insecure = frozenset(h.lower() for h in insecure)
        self._probe_tls = probe_tls
        self._lock = threading.Lock()
        self._scheme_locks: dict[str, threading.Lock] = {}
        self._loopback_schemes: dict[str, str] = {}

    def __call__(self, registry: str) -> list[Endpoint]:
        result = [self._mirror_endpoint(url) for url in self._mirrors.get(registry.lower(), ())]
        hostport = api_host(registry)
        if self.is_insecure(hostport):
            scheme = "http"
        elif is_loopback(hostport):
            scheme = self._loopback_scheme(hostport)
        else:
            scheme = "https"
        result.append(Endpoint(f"{scheme}://{hostport}", registry, scheme == "https" or is_loopback(hostport)))
        return result

    def is_insecure(self, hostport: str) -> bool:
        """True when the user asked for plain http to this host[:port] (or to the host on any port)."""
        return hostport.lower() in self._insecure or host_of(hostport) in self._insecure

    def know_scheme(self, hostport: str, scheme: str) -> None:
        """Record what a loopback registry speaks, found out elsewhere (the early warm-up)."""
        with self._lock:
            self._loopback_schemes.setdefault(hostport, scheme)

    def _loopback_scheme(self, hostport: str) -> str:
        """A registry on this machine may serve TLS or plain http; like docker, try https first. Probed once."""
        with self._lock:
            lock = self._scheme_locks.setdefault(hostport, threading.Lock())
        with lock:
            with self._lock:
                known = self._loopback_schemes.get(hostport)
            if known is None:
                known = self._probe_tls(hostport)
                with self._lock:
                    known = self._loopback_schemes.setdefault(hostport, known)
            return known

    def _mirror_endpoint(self, url: str) -> Endpoint:
        url = url.strip().rstrip("/")
        if "://" not in url:
            host = url.split("/", 1)[0]
            url = ("http://" if is_loopback(host) or self.is_insecure(host) else "https://") + url
        scheme = urlsplit(url).scheme.lower()
        host = netloc(url)
        return Endpoint(url, host, scheme == "https" or is_loopback(host))


class RegistryClient:
    """Resolves references against registries; thread-safe, one instance per run (close it, or use ``with``).

    ``mirrors`` maps a registry name (``docker.io``, ``localhost:5000``) to base URLs tried in order before the
    registry itself. ``timeout`` is (connect, whole attempt) in seconds; ``deadline`` bounds the whole run from the
    client's creation. The client never reads the environment: the caller passes the keychain, the wire (the
    standard library's by default, which reads the CA variables requests would; with a ``session``, requests) and
    the CA dirs.
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
        wire: Wire | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_manifest_bytes: int = MAX_MANIFEST_BYTES,
        user_agent: str = f"pin-images/{__version__}",
        deadline: float | None = None,
        ping_cache: str | None = None,
    ) -> None:
        self._max_manifest_bytes = max_manifest_bytes
        self._ping_cache = ping_cache
        if wire is None and session is not None:
            from .requests_wire import RequestsWire

            wire = RequestsWire(session)
        elif wire is None:
            from .stdlib_wire import StdlibWire

            wire = StdlibWire()
        self._transport = Transport(
            wire, timeout=timeout, retries=retries,
            max_retry_wait=max_retry_wait, ca_dirs=ca_dirs, ca_bundle=ca_bundle, user_agent=user_agent,
            sleep=sleep, clock=clock, deadline=deadline,
        )
        self._auth = Authenticator(self._transport, keychain, clock)
        self._endpoints = _Endpoints(mirrors or {}, insecure, self._transport.probe_tls)
        self._warmup: Any = None

    @property
    def stats(self) -> RequestStats:
        """Requests sent so far, by purpose."""
        return self._transport.stats

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

    def use_warmup(self, warmup: Any) -> None:
        """Take over what ``warmup`` (a preconnect.Warmup started before this client existed) gets for each registry:
        its open connections and the answer to its ``GET /v2/``."""
        self._warmup = warmup

    def _take_warm(self, registry: str) -> None:
        warm = self._warmup.take(registry) if self._warmup is not None else None
        if warm is None:
            return
        if is_loopback(warm.hostport) and not self._endpoints.is_insecure(warm.hostport):
            self._endpoints.know_scheme(warm.hostport, warm.scheme)
        ep = self._endpoints(registry)[0]
        if ep.base != f"{warm.scheme}://{warm.hostport}" or warm.ping is None:
            self._warmup.discard(warm)
            return
        self._transport.adopt(warm)
        self._auth.learn_ping(ep, warm.ping.status, warm.ping.www_authenticate, remembered=warm.remembered)

    def prefetch(self, refs: Sequence[Reference]) -> None:
        """Warm up for ``refs``: learn each registry's challenge (one ``GET /v2/``) and fetch one token for many
        repositories. Only an optimisation: failures are swallowed and the per-request path takes over."""
        refs = list(refs)
        for registry in dict.fromkeys(ref.registry for ref in refs):
            self._take_warm(registry)
        repos: dict[Endpoint, list[str]] = {}
        for ref in refs:
            names = repos.setdefault(self._endpoints(ref.registry)[0], [])
            if ref.repository not in names:
                names.append(ref.repository)
        for ep, names in repos.items():
            try:
                self._auth.prefetch(ep, names)
            except PinImagesError:
                continue

    def close(self) -> None:
        """Release the connection pool, and record what the registries answered for the next run (``ping_cache``)."""
        self._transport.close()
        if self._ping_cache is not None:
            from . import pingcache

            pingcache.save(self._ping_cache, self._auth.heard())

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------------- mirrors

    def _with_mirrors(self, ref: Reference, fn: Callable[[Endpoint], T]) -> T:
        """``fn`` on each mirror in turn, then on the registry; a failure there names what each mirror said."""
        endpoints = self._endpoints(ref.registry)
        answers: list[str] = []
        for ep in endpoints[:-1]:
            try:
                return fn(ep)
            except _PlatformMissing:
                raise  # the mirror has the image; its platform list is the answer, as docker takes it
            except RegistryError as exc:
                # As docker's registry-mirrors: a miss, a refusal or an outage falls through to the next.
                answers.append(f"mirror {ep.host}: {exc}")
        try:
            return fn(endpoints[-1])
        except RegistryError as exc:
            if not answers:
                raise
            raise type(exc)(f"{exc} (mirrors tried first: {'; '.join(answers)})", exc.host) from None

    # ----------------------------------------------------------------------------------------------- resolution

    def _resolve_at(self, ep: Endpoint, ref: Reference, lookup: str, platform: Platform | None) -> Resolution:
        if platform is not None:
            return self._resolve_platform(ep, ref, lookup, platform)
        head = self._head_manifest(ep, ref, lookup)
        if head is not None:
            return head
        got = self._get_manifest(ep, ref, lookup)
        children = self._children(ep, got.body, got.media_type) if got.media_type in INDEX_TYPES else ()
        return Resolution(got.digest, got.media_type, children)

    def _resolve_platform(self, ep: Endpoint, ref: Reference, lookup: str, platform: Platform) -> Resolution:
        got = self._get_manifest(ep, ref, lookup)
        if got.media_type in INDEX_TYPES:
            children = self._children(ep, got.body, got.media_type)
            child = self._select(ep, ref, lookup, children, platform)
            return Resolution(child.digest, child.media_type, children)
        actual = self._image_platform(ep, ref, got)
        if not mf.platform_matches(actual, platform):
            raise _PlatformMissing(
                f"{_what(lookup)} in {ref.name} is a single-platform {actual} image, not {platform}", ep.host
            )
        return Resolution(got.digest, got.media_type)

    def _update_at(self, ep: Endpoint, ref: Reference, current: str) -> Resolution:
        top = self._resolve_at(ep, ref, ref.lookup, None)
        if top.digest == current:
            return top
        current_type = self._current_type(ep, ref, current, top)
        if current_type in INDEX_TYPES or top.media_type not in INDEX_TYPES:
            # An index pin stays an index pin; a single-manifest tag has nothing else to offer.
            return top
        index = self._get_manifest(ep, ref, top.digest)
        children = self._children(ep, index.body, index.media_type)
        if any(child.digest == current for child in children):
            return Resolution(current, current_type, children)  # the platform pin is still current
        old_platform = self._image_platform(ep, ref, self._get_manifest(ep, ref, current))
        child = self._select(ep, ref, ref.lookup, children, old_platform)
        return Resolution(child.digest, child.media_type, children)

    def _current_type(self, ep: Endpoint, ref: Reference, current: str, top: Resolution) -> str:
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
        return self._get_manifest(ep, ref, current).media_type

    def _children(self, ep: Endpoint, body: bytes, media_type: str) -> tuple[PlatformChild, ...]:
        try:
            return mf.index_children(mf.parse_manifest(body, media_type))
        except mf.ManifestError as exc:
            raise bad_response(ep.host, str(exc)) from None

    def _select(
        self, ep: Endpoint, ref: Reference, lookup: str, children: tuple[PlatformChild, ...], platform: Platform
    ) -> PlatformChild:
        child = mf.select_child(children, platform)
        if child is None:
            # buildx's attestation manifests say unknown/unknown: not a platform anyone can ask for.
            shown = {str(c.platform) for c in children if c.platform and c.platform.os != "unknown"}
            available = ", ".join(sorted(shown)) or "none"
            raise _PlatformMissing(
                f"no {platform} image for {_what(lookup)} in {ref.name} (available: {available})", ep.host
            )
        if not is_sha256_digest(child.digest):
            raise bad_response(ep.host, f"index entry for {platform} has an invalid digest")
        return child

    def _image_platform(self, ep: Endpoint, ref: Reference, image: _Manifest) -> Platform:
        try:
            config = mf.config_digest(mf.parse_manifest(image.body, image.media_type))
        except mf.ManifestError as exc:
            raise bad_response(ep.host, str(exc)) from None
        if not is_sha256_digest(config):
            raise bad_response(ep.host, "config descriptor has an invalid digest")
        url = f"{ep.base}/v2/{ref.repository}/blobs/{config}"
        resp = self._send(ep, ref, Request("GET", url, Purpose.BLOB_GET, limit=MAX_CONFIG_BYTES))
        self._raise_for_status(ep, ref, resp, f"config blob {config}")
        blob = read_capped(resp, MAX_CONFIG_BYTES, "config blob", ep.host)
        if _sha256(blob) != config:
            raise bad_response(ep.host, f"config blob does not match its digest {config}")
        try:
            return mf.config_platform(blob)
        except mf.ManifestError as exc:
            raise bad_response(ep.host, str(exc)) from None

    # ----------------------------------------------------------------------------------------------- manifests

    def _send(self, ep: Endpoint, ref: Reference, request: Request) -> Response:
        return self._auth.send(ep, ref.repository, request)

    def _manifest_url(self, ep: Endpoint, ref: Reference, lookup: str) -> str:
        return f"{ep.base}/v2/{ref.repository}/manifests/{lookup}"

    def _head_manifest(self, ep: Endpoint, ref: Reference, lookup: str) -> Resolution | None:
        """HEAD (free on Docker Hub); None when the answer is not enough and a GET is needed."""
        url = self._manifest_url(ep, ref, lookup)
        resp = self._send(ep, ref, Request("HEAD", url, Purpose.MANIFEST_HEAD, _ACCEPT))
        if resp.status_code in (401, 403, 404, 429):
            self._raise_for_status(ep, ref, resp, _what(lookup))
        if resp.status_code != 200:
            return None  # 405 and friends: some registries and proxies reject HEAD
        media_type = _media_type(resp.headers.get("Content-Type"))
        digest = resp.headers.get("Docker-Content-Digest")
        if media_type in SCHEMA1_TYPES:
            raise bad_response(ep.host, "unsupported legacy (schema 1) manifest")
        if digest is None or media_type not in MANIFEST_TYPES:
            return None
        if not is_sha256_digest(digest):
            raise bad_response(ep.host, f"invalid Docker-Content-Digest header for {ref.name}:{lookup}")
        if lookup.startswith("sha256:") and digest != lookup:
            raise bad_response(ep.host, f"asked for {lookup} but the registry says {digest}")
        return Resolution(digest, media_type)

    def _get_manifest(self, ep: Endpoint, ref: Reference, lookup: str) -> _Manifest:
        """GET and verify: (body, media type, sha256 of the exact body)."""
        url = self._manifest_url(ep, ref, lookup)
        resp = self._send(ep, ref, Request("GET", url, Purpose.MANIFEST_GET, _ACCEPT, limit=self._max_manifest_bytes))
        self._raise_for_status(ep, ref, resp, _what(lookup))
        media_type = _media_type(resp.headers.get("Content-Type"))
        header_digest = resp.headers.get("Docker-Content-Digest")
        if media_type in SCHEMA1_TYPES:
            raise bad_response(ep.host, "unsupported legacy (schema 1) manifest")
        body = read_capped(resp, self._max_manifest_bytes, "manifest", ep.host)
        digest = _sha256(body)
        if media_type not in MANIFEST_TYPES:
            try:
                mf.parse_manifest(body, media_type)  # turns a schema 1 body behind application/json into that error
            except mf.ManifestError as exc:
                if "schema 1" in str(exc):
                    raise bad_response(ep.host, str(exc)) from None
            raise bad_response(ep.host, f"unexpected Content-Type {media_type or '(none)'!r} for a manifest")
        # distribution#2395 made some registries send a wrong header; a body that disagrees is never pinned.
        if header_digest is not None and header_digest != digest:
            raise bad_response(
                ep.host, f"manifest body does not match its Docker-Content-Digest header ({ref.name}:{lookup})"
            )
        if lookup.startswith("sha256:") and digest != lookup:
            raise bad_response(ep.host, f"asked for {lookup} but the body hashes to {digest}")
        try:
            mf.parse_manifest(body, media_type)
        except mf.ManifestError as exc:
            raise bad_response(ep.host, str(exc)) from None
        return _Manifest(body, media_type, digest)

    # ----------------------------------------------------------------------------------------------- errors

    def _raise_for_status(self, ep: Endpoint, ref: Reference, resp: Response, what: str) -> None:
        status = resp.status_code
        if status == 200:
            return
        if status == 404:
            if self._error_code(resp) == "NAME_UNKNOWN":
                raise NotFoundError(f"repository {ref.name} not found", ep.host)
            raise NotFoundError(f"{what} not found in {ref.name}", ep.host)
        if status in (401, 403):
            raise self._auth.refused(ep, ref.repository, status)
        if status == 429:
            raise RegistryConnectionError(f"rate limited by {ep.host} (HTTP 429); {rate_hint(resp)}", ep.host)
        raise bad_response(ep.host, f"HTTP {status} for {what} of {ref.name}")

    @staticmethod
    def _error_code(resp: Response) -> str:
        """The first distribution error code of a (small) error body, or ""."""
        try:
            if len(resp.body) >= SMALL_BODY:
                return ""
            codes = json.loads(resp.body or b"{}").get("errors") or []
            return str(codes[0].get("code", "")) if codes and isinstance(codes[0], dict) else ""
        except Exception:  # an error body is a hint only; a bad one must not hide the 404
            return ""
