"""Push real blobs and manifests of all four media types through a registry's HTTP API."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Union
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.auth import AuthBase

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ALL_MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
ACCEPT_ALL = ", ".join(ALL_MANIFEST_TYPES)
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/arm/v7")
KINDS = ("oci-index", "docker-list", "oci-manifest", "docker-manifest")

# None (anonymous) | requests auth (tuple or AuthBase) | a `repo -> bearer token` getter.
PushAuth = Union[None, tuple[str, str], AuthBase, Callable[[str], str]]


class BearerAuth(AuthBase):
    """``Authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _auth_for(auth: PushAuth, repo: str) -> Any:
    if auth is None or isinstance(auth, (tuple, AuthBase)):
        return auth
    return BearerAuth(auth(repo))


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))


def push_blob(
    base_url: str, repo: str, data: bytes, auth: PushAuth = None, *, verify: bool | str = True,
    session: requests.Session | None = None,
) -> str:
    """Monolithic upload (POST a session, PUT the bytes with ``?digest=``); returns the blob digest."""
    http = session or requests.Session()
    digest = sha256_digest(data)
    req_auth = _auth_for(auth, repo)
    resp = http.post(f"{base_url}/v2/{repo}/blobs/uploads/", auth=req_auth, verify=verify, timeout=10)
    if resp.status_code != 202:
        raise AssertionError(f"POST upload for {repo}: HTTP {resp.status_code} {resp.text[:300]}")
    location = urljoin(f"{base_url}/v2/{repo}/blobs/uploads/", resp.headers["Location"])
    resp = http.put(
        _with_query(location, digest=digest), data=data, auth=req_auth, verify=verify, timeout=10,
        headers={"Content-Type": "application/octet-stream"},
    )
    if resp.status_code != 201:
        raise AssertionError(f"PUT blob {digest} to {repo}: HTTP {resp.status_code} {resp.text[:300]}")
    assert resp.headers.get("Docker-Content-Digest") == digest, resp.headers
    return digest


def push_manifest(
    base_url: str, repo: str, ref: str, body: bytes, media_type: str, auth: PushAuth = None, *,
    verify: bool | str = True, session: requests.Session | None = None,
) -> str:
    """PUT a manifest under ``ref`` (tag or digest); returns sha256 of the exact bytes, checked against the registry."""
    http = session or requests.Session()
    digest = sha256_digest(body)
    resp = http.put(
        f"{base_url}/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media_type},
        auth=_auth_for(auth, repo), verify=verify, timeout=10,
    )
    if resp.status_code != 201:
        raise AssertionError(f"PUT manifest {repo}:{ref}: HTTP {resp.status_code} {resp.text[:500]}")
    assert resp.headers.get("Docker-Content-Digest") == digest, (resp.headers, digest)
    return digest


def delete_manifest(
    base_url: str, repo: str, digest: str, auth: PushAuth = None, *, verify: bool | str = True,
) -> None:
    """DELETE a manifest by digest (the fixture registries run with ``delete: enabled``)."""
    resp = requests.delete(f"{base_url}/v2/{repo}/manifests/{digest}", auth=_auth_for(auth, repo), verify=verify,
                           timeout=10)
    if resp.status_code != 202:
        raise AssertionError(f"DELETE {repo}@{digest}: HTTP {resp.status_code} {resp.text[:300]}")


# -- content builders -------------------------------------------------------------------------------------------
def parse_platform(platform: str) -> dict[str, str]:
    """``linux/arm64/v8`` -> ``{"os": "linux", "architecture": "arm64", "variant": "v8"}``."""
    parts = platform.split("/")
    if len(parts) not in (2, 3):
        raise ValueError(f"bad platform {platform!r}")
    result = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        result["variant"] = parts[2]
    return result


def _dumps(obj: Any) -> bytes:
    # Indented like docker/buildx output; the digest is over these exact bytes.
    return json.dumps(obj, indent=3).encode()


def make_layer(text: str) -> tuple[bytes, str]:
    """A real gzip'd tar holding one file; returns (compressed bytes, diff_id of the uncompressed tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        payload = text.encode()
        info = tarfile.TarInfo("etc/pin-images-test")
        info.size, info.mtime, info.mode = len(payload), 0, 0o644
        tar.addfile(info, io.BytesIO(payload))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), sha256_digest(tar_bytes)


def make_config(platform: str, diff_id: str, salt: str = "") -> bytes:
    """An image config JSON with ``os``/``architecture``/``variant`` and one layer."""
    config: dict[str, Any] = dict(parse_platform(platform))
    config.update({
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"pin-images.test.salt": salt}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "pin-images test seed"}],
    })
    return _dumps(config)


def _descriptor(media_type: str, data: bytes, platform: str | None = None) -> dict[str, Any]:
    desc: dict[str, Any] = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    if platform:
        desc["platform"] = parse_platform(platform)
    return desc


def image_manifest(config: bytes, layers: Sequence[bytes], oci: bool) -> tuple[bytes, str]:
    """Docker schema2 (``oci=False``) or OCI image manifest body and its media type."""
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    return _dumps({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": _descriptor(OCI_CONFIG if oci else DOCKER_CONFIG, config),
        "layers": [_descriptor(OCI_LAYER if oci else DOCKER_LAYER, layer) for layer in layers],
    }), media_type


def image_index(children: Sequence[tuple[str, bytes]], oci: bool) -> tuple[bytes, str]:
    """Docker manifest list (``oci=False``) or OCI index of ``(platform, child manifest body)`` pairs."""
    media_type, child_type = (OCI_INDEX, OCI_MANIFEST) if oci else (DOCKER_LIST, DOCKER_MANIFEST)
    return _dumps({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [_descriptor(child_type, body, platform) for platform, body in children],
    }), media_type


@dataclass(frozen=True)
class SeededImage:
    """What :func:`seed_image` pushed: the tag's manifest and, for indexes, each platform's child."""

    repo: str
    tag: str
    digest: str
    media_type: str
    body: bytes = field(repr=False)
    children: dict[str, str] = field(default_factory=dict)  # platform string -> child manifest digest
    child_media_type: str | None = None


def seed_image(
    base_url: str,
    repo: str,
    tag: str,
    kind: str = "oci-index",
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
    salt: str = "",
    auth: PushAuth = None,
    *,
    verify: bool | str = True,
    session: requests.Session | None = None,
) -> SeededImage:
    """Push a complete image of ``kind`` (see ``KINDS``) and tag it; single-manifest kinds use ``platforms[0]``.

    Children are pushed by digest only; ``salt`` changes every blob, so re-seeding a tag with another salt moves it.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    oci = kind.startswith("oci")
    is_index = kind in ("oci-index", "docker-list")
    http = session or requests.Session()
    kw: dict[str, Any] = {"verify": verify, "session": http}
    chosen = list(platforms) if is_index else [platforms[0]]

    children: list[tuple[str, bytes]] = []
    for platform in chosen:
        layer, diff_id = make_layer(f"{repo}:{tag} {platform} {salt}\n")
        config = make_config(platform, diff_id, salt)
        push_blob(base_url, repo, layer, auth, **kw)
        push_blob(base_url, repo, config, auth, **kw)
        children.append((platform, image_manifest(config, [layer], oci)[0]))

    if not is_index:
        body, media_type = children[0][1], (OCI_MANIFEST if oci else DOCKER_MANIFEST)
        digest = push_manifest(base_url, repo, tag, body, media_type, auth, **kw)
        return SeededImage(repo, tag, digest, media_type, body)

    child_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    child_digests = {
        platform: push_manifest(base_url, repo, sha256_digest(body), body, child_type, auth, **kw)
        for platform, body in children
    }
    body, media_type = image_index(children, oci)
    digest = push_manifest(base_url, repo, tag, body, media_type, auth, **kw)
    return SeededImage(repo, tag, digest, media_type, body, child_digests, child_type)
