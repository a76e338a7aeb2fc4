"""Tables for the pure manifest helpers: platform parsing and matching, index and config parsing."""

from __future__ import annotations

import json

import pytest

from pin_images import manifest as mf
from pin_images.manifest import Platform, PlatformChild


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
        ("linux/arm/v7", Platform("linux", "arm", "v7")),
        ("windows/amd64", Platform("windows", "amd64")),
        (" linux/riscv64 ", Platform("linux", "riscv64")),
    ],
)
def test_parse_platform(text: str, expected: Platform) -> None:
    assert mf.parse_platform(text) == expected


@pytest.mark.parametrize("text", ["", "linux", "linux/", "/amd64", "linux/arm/v7/extra", "linux/am d64", "linux//v8"])
def test_parse_platform_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="os/architecture"):
        mf.parse_platform(text)


def test_platform_str_round_trip() -> None:
    assert str(mf.parse_platform("linux/arm64/v8")) == "linux/arm64/v8"
    assert str(mf.parse_platform("linux/amd64")) == "linux/amd64"


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        (Platform("linux", "arm64"), Platform("linux", "arm64", "v8")),  # containerd: arm64 means v8
        (Platform("linux", "arm64", "8"), Platform("linux", "arm64", "v8")),
        (Platform("linux", "aarch64"), Platform("linux", "arm64", "v8")),
        (Platform("linux", "arm"), Platform("linux", "arm", "v7")),  # and arm means v7
        (Platform("linux", "arm", "6"), Platform("linux", "arm", "v6")),
        (Platform("linux", "armhf"), Platform("linux", "arm", "v7")),
        (Platform("linux", "armel"), Platform("linux", "arm", "v6")),
        (Platform("linux", "amd64", "v1"), Platform("linux", "amd64")),  # v1 is the baseline
        (Platform("linux", "amd64", "v3"), Platform("linux", "amd64", "v3")),  # newer CPUs only: stays distinct
        (Platform("Linux", "X86_64"), Platform("linux", "amd64")),
        (Platform("linux", "i386"), Platform("linux", "386")),
    ],
)
def test_normalize_platform(given: Platform, normal: Platform) -> None:
    assert mf.normalize_platform(given) == normal


def _child(name: str, platform: Platform | None) -> PlatformChild:
    return PlatformChild("sha256:" + name * 64, mf.OCI_MANIFEST, platform)


CHILDREN = (
    _child("a", Platform("linux", "amd64")),
    _child("b", Platform("linux", "amd64", "v3")),
    _child("c", Platform("linux", "arm64", "v8")),
    _child("d", Platform("linux", "arm", "v6")),
    _child("e", Platform("linux", "arm", "v7")),
    _child("f", None),  # no platform: never matches
    _child("0", Platform("unknown", "unknown")),  # buildx attestation
)


@pytest.mark.parametrize(
    ("wanted", "digest_char"),
    [
        (Platform("linux", "amd64"), "a"),
        (Platform("linux", "amd64", "v3"), "b"),
        (Platform("linux", "arm64"), "c"),
        (Platform("linux", "arm"), "e"),
        (Platform("linux", "arm", "v6"), "d"),
        (Platform("linux", "s390x"), None),
        (Platform("windows", "amd64"), None),
        (Platform("linux", "arm", "v5"), None),  # no silent substitution of another variant
    ],
)
def test_select_child(wanted: Platform, digest_char: str | None) -> None:
    child = mf.select_child(CHILDREN, wanted)
    if digest_char is None:
        assert child is None
    else:
        assert child is not None and child.digest == "sha256:" + digest_char * 64


def test_select_child_without_variant_in_index() -> None:
    # Older indexes list arm64 without a variant; asking for arm64/v8 must still find it.
    children = (_child("c", Platform("linux", "arm64")),)
    assert mf.select_child(children, Platform("linux", "arm64", "v8")) is children[0]


def _index(entries: list[object]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": entries}).encode()


def test_index_children() -> None:
    body = _index([
        {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 1,
         "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:" + "b" * 64, "size": 1},
    ])
    children = mf.index_children(mf.parse_manifest(body, mf.OCI_INDEX))
    assert children == (
        PlatformChild("sha256:" + "a" * 64, mf.OCI_MANIFEST, Platform("linux", "arm", "v7")),
        PlatformChild("sha256:" + "b" * 64, mf.OCI_MANIFEST, None),
    )


@pytest.mark.parametrize(
    ("body", "media_type", "message"),
    [
        (b"not json", mf.OCI_INDEX, "not valid JSON"),
        (b"\xff\xfe", mf.OCI_INDEX, "not valid JSON"),
        (b"[]", mf.OCI_INDEX, "not a JSON object"),
        (b'{"schemaVersion": 1}', mf.DOCKER_MANIFEST, "schema 1"),
        (b'{"schemaVersion": 3}', mf.OCI_INDEX, "schemaVersion"),
        (b'{"schemaVersion": 2, "mediaType": "x"}', mf.OCI_INDEX, "does not match Content-Type"),
        (b'{"schemaVersion": 2}', mf.OCI_INDEX, "no 'manifests' list"),
        (b'{"schemaVersion": 2, "manifests": {}}', mf.DOCKER_LIST, "no 'manifests' list"),
        (b'{"schemaVersion": 2}', mf.OCI_MANIFEST, "config descriptor"),
        (b'{"schemaVersion": 2, "config": {"digest": 5}}', mf.DOCKER_MANIFEST, "config descriptor"),
    ],
)
def test_parse_manifest_rejects(body: bytes, media_type: str, message: str) -> None:
    with pytest.raises(mf.ManifestError, match=message):
        mf.parse_manifest(body, media_type)


def test_index_entry_without_digest() -> None:
    doc = mf.parse_manifest(_index([{"mediaType": mf.OCI_MANIFEST}]), mf.OCI_INDEX)
    with pytest.raises(mf.ManifestError, match="index entry 0"):
        mf.index_children(doc)


def test_config_digest_and_platform() -> None:
    body = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + "c" * 64}}).encode()
    assert mf.config_digest(mf.parse_manifest(body, mf.DOCKER_MANIFEST)) == "sha256:" + "c" * 64
    config = json.dumps({"os": "linux", "architecture": "arm64", "variant": "v8"}).encode()
    assert mf.config_platform(config) == Platform("linux", "arm64", "v8")
    assert mf.config_platform(b'{"os": "linux", "architecture": "amd64", "variant": ""}') == Platform("linux", "amd64")


@pytest.mark.parametrize("body", [b"{}", b'{"os": "linux"}', b'{"os": 1, "architecture": "x"}', b"[1]"])
def test_config_platform_rejects(body: bytes) -> None:
    with pytest.raises(mf.ManifestError):
        mf.config_platform(body)
