"""`responses`-backed fakes for registry client tests: a distribution registry with optional Basic or Bearer auth,
a keychain, a clock that never sleeps, and manifest builders."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import responses

from pin_images import manifest as mf
from pin_images.credentials import Credential
from pin_images.manifest import Platform
from pin_images.registry import RegistryClient

HUB = "https://registry-1.docker.io"
HUB_REALM = "https://auth.docker.io/token"
REG = "https://registry.example.com"

class FakeKeychain:
    def __init__(self, creds: dict[str, Credential] | None = None) -> None:
        self.creds = creds or {}
        self.asked: list[str] = []

    def get(self, host: str) -> Credential | None:
        self.asked.append(host)
        return self.creds.get(host)

    def tried(self, host: str) -> list[str]:
        self.asked.append(host)  # the real Keychain.tried() consults the sources too
        cred = self.creds.get(host)
        return [cred.source] if cred else ["/home/u/.docker/config.json (no entry)"]


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


class RecordingSession(requests.Session):
    """Records the keyword arguments of every request (verify, allow_redirects, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls.append({"method": method, "url": url, **kwargs})
        return super().request(method, url, *args, **kwargs)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_blob(os_name: str = "linux", arch: str = "amd64", variant: str | None = None) -> bytes:
    doc: dict[str, Any] = {"os": os_name, "architecture": arch, "rootfs": {"type": "layers", "diff_ids": []}}
    if variant:
        doc["variant"] = variant
    return json.dumps(doc).encode()


def image_manifest(config: bytes, media_type: str = mf.OCI_MANIFEST, salt: str = "") -> bytes:
    config_type = "application/vnd.oci.image.config.v1+json"
    doc = {"schemaVersion": 2, "mediaType": media_type, "config": {"mediaType": config_type,
           "digest": sha(config), "size": len(config)}, "layers": [], "annotations": {"salt": salt}}
    return json.dumps(doc).encode()


def index_manifest(children: list[tuple[bytes, str, Platform | None]], media_type: str = mf.OCI_INDEX) -> bytes:
    entries = []
    for body, child_type, platform in children:
        entry: dict[str, Any] = {"mediaType": child_type, "digest": sha(body), "size": len(body)}
        if platform is not None:
            entry["platform"] = {"os": platform.os, "architecture": platform.architecture}
            if platform.variant:
                entry["platform"]["variant"] = platform.variant
        entries.append(entry)
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}).encode()


class FakeRegistry:
    """A distribution registry behind `responses` callbacks: manifests, blobs, and optional auth."""

    def __init__(self, rsps: responses.RequestsMock, base: str, *, auth: str | None = None,
                 realm: str = HUB_REALM, service: str = "registry.docker.io",
                 basic: tuple[str, str] | None = None, head_digest: bool = True,
                 token_scopes_limit: int | None = None, expires_in: int | None = 300) -> None:
        self.base = base
        self.auth = auth
        self.realm = realm
        self.service = service
        self.basic = basic
        self.head_digest = head_digest
        self.token_scopes_limit = token_scopes_limit
        self.expires_in = expires_in
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.tokens: dict[str, set[str]] = {}
        self.requests: list[requests.PreparedRequest] = []
        self.token_requests: list[requests.PreparedRequest] = []
        self._lock = threading.Lock()
        pattern = re.compile(re.escape(base) + r"/v2/.*")
        for method in ("GET", "HEAD"):
            rsps.add_callback(method, pattern, callback=self._serve)
        if auth == "bearer":
            for method in ("GET", "POST"):
                rsps.add_callback(method, realm, callback=self._token)

    def push(self, repo: str, body: bytes, media_type: str, *tags: str) -> str:
        digest = sha(body)
        self.manifests[(repo, digest)] = (body, media_type)
        for tag in tags:
            self.manifests[(repo, tag)] = (body, media_type)
        return digest

    def push_blob(self, body: bytes) -> str:
        self.blobs[sha(body)] = body
        return sha(body)

    def push_image(self, repo: str, platform: Platform, *tags: str, salt: str = "") -> tuple[bytes, str]:
        config = config_blob(platform.os, platform.architecture, platform.variant)
        self.push_blob(config)
        body = image_manifest(config, salt=salt)
        self.push(repo, body, mf.OCI_MANIFEST, *tags)
        return body, sha(body)

    def _authorized(self, request: requests.PreparedRequest, repo: str) -> bool:
        header = request.headers.get("Authorization", "")
        if self.auth == "bearer":
            return header.startswith("Bearer ") and repo in self.tokens.get(header[7:], set())
        if self.auth == "basic":
            assert self.basic is not None
            expected = base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            return header == f"Basic {expected}"
        return True

    def _challenge(self, repo: str) -> str:
        if self.auth == "basic":
            return 'Basic realm="Registry Realm"'
        return f'Bearer realm="{self.realm}",service="{self.service}",scope="repository:{repo}:pull"'

    def _serve(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = self._answer(request)
        return status, headers, b"" if request.method == "HEAD" else body

    def _answer(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.requests.append(request)
        path = urlsplit(request.url).path[len("/v2/"):]
        if not path:
            if self.auth:
                return 401, {"WWW-Authenticate": self._challenge("").split(",scope=")[0]}, b""
            return 200, {}, b"{}"
        match = re.fullmatch(r"(.+)/(manifests|blobs)/(.+)", path)
        assert match, path
        repo, kind, ref = match.groups()
        if not self._authorized(request, repo):
            return 401, {"WWW-Authenticate": self._challenge(repo)}, b""
        if kind == "blobs":
            if ref not in self.blobs:
                return 404, {}, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}'
            return 200, {"Content-Type": "application/octet-stream"}, self.blobs[ref]
        if (repo, ref) not in self.manifests:
            known = any(r == repo for r, _ in self.manifests)
            code = "MANIFEST_UNKNOWN" if known else "NAME_UNKNOWN"
            return 404, {"Content-Type": "application/json"}, json.dumps({"errors": [{"code": code}]}).encode()
        body, media_type = self.manifests[(repo, ref)]
        headers = {"Content-Type": media_type}
        if self.head_digest or request.method == "GET":
            headers["Docker-Content-Digest"] = sha(body)
        return 200, headers, body

    def _token(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.token_requests.append(request)
        if request.method == "POST":
            form = parse_qs(request.body if isinstance(request.body, str) else (request.body or b"").decode())
            scopes = form.get("scope", [""])[0].split(" ")
        else:
            scopes = parse_qs(urlsplit(request.url).query).get("scope", [])
        if self.basic and request.method == "GET":
            expected = base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            if request.headers.get("Authorization") != f"Basic {expected}":
                return 401, {}, b'{"details":"incorrect username or password"}'
        granted = scopes[: self.token_scopes_limit] if self.token_scopes_limit else scopes
        with self._lock:
            token = f"tok{len(self.tokens) + 1}"
            self.tokens[token] = {s.split(":")[1] for s in granted if s}
        doc: dict[str, Any] = {"token": token}
        if self.expires_in is not None:
            doc["expires_in"] = self.expires_in
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()


def make_client(clock: FakeTime, keychain: Any = None, **kwargs: Any) -> RegistryClient:
    kwargs.setdefault("session", RecordingSession())
    return RegistryClient(keychain or FakeKeychain(), sleep=clock.sleep, clock=clock.clock, **kwargs)


AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64", "v8")
ARMV7 = Platform("linux", "arm", "v7")
ARMV6 = Platform("linux", "arm", "v6")


def push_multiarch(registry: FakeRegistry, repo: str, tag: str, salt: str = "") -> tuple[str, dict[Platform, str]]:
    children = []
    digests = {}
    for platform in (AMD64, ARM64, ARMV7, ARMV6):
        body, digest = registry.push_image(repo, platform, salt=salt)
        children.append((body, mf.OCI_MANIFEST, platform))
        digests[platform] = digest
    # An attestation entry, as buildx adds: it must never be picked.
    attestation = image_manifest(config_blob("unknown", "unknown"), salt="att" + salt)
    registry.push(repo, attestation, mf.OCI_MANIFEST)
    children.append((attestation, mf.OCI_MANIFEST, Platform("unknown", "unknown")))
    index_digest = registry.push(repo, index_manifest(children), mf.OCI_INDEX, tag)
    return index_digest, digests


class FakeDNS:
    """A ``socket.getaddrinfo`` for `responses` tests: names in ``addresses`` get those IPs, ``localhost`` and IP
    literals pass through, every other name gets a public documentation address. No real lookup ever happens, and
    nothing connects anyway (responses answers first)."""

    PUBLIC = "203.0.113.1"

    def __init__(self, addresses: dict[str, str] | None = None) -> None:
        self.addresses = dict(addresses or {})
        self.looked_up: list[str] = []

    def __call__(self, host: object, port: object, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        import ipaddress
        import socket

        name = host.decode() if isinstance(host, bytes) else str(host)
        self.looked_up.append(name)
        lower = name.lower().rstrip(".")
        try:
            address = str(ipaddress.ip_address(lower.strip("[]")))
        except ValueError:
            address = "127.0.0.1" if lower == "localhost" else self.addresses.get(lower, self.PUBLIC)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port or 0))]
