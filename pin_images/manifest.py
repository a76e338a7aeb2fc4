"""Pure manifest facts: media types, platforms, and what a resolution returns."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
# Order matters only for readability; every registry we know treats these as an unordered set.
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))


class Platform(NamedTuple):
    """os/architecture[/variant] as in ``--platform linux/arm64/v8``."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


class PlatformChild(NamedTuple):
    """One entry of an index: the child manifest's digest, type and platform (None when not given)."""

    digest: str
    media_type: str
    platform: Platform | None


class Resolution(NamedTuple):
    """What the registry said a reference points to.

    ``digest`` is what gets pinned: the top-level manifest's digest, or, when a platform was asked for, the
    matching child's digest. ``media_type`` is the type of the manifest that ``digest`` names. ``children`` lists an
    index's entries (empty for single manifests).
    """

    digest: str
    media_type: str
    children: tuple[PlatformChild, ...] = ()

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


class ManifestError(ValueError):
    """A manifest, index or config blob that is not what it claims to be; the client adds the host."""


# containerd's platforms.Normalize: aliases users and old images write, mapped to the canonical names.
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}
_ARCH_IMPLIED_VARIANT = {"armhf": ("arm", "v7"), "armel": ("arm", "v6")}


def normalize_platform(platform: Platform) -> Platform:
    """Canonical form for matching: lower case, arch aliases folded, default variants made explicit.

    As in containerd, ``arm64`` means ``arm64/v8`` and ``arm`` means ``arm/v7``; amd64's ``v1`` is the plain amd64
    (``v2``/``v3`` stay distinct, since those images need newer CPUs).
    """
    os_name = platform.os.lower()
    arch = platform.architecture.lower()
    variant = (platform.variant or "").lower()
    if arch in _ARCH_IMPLIED_VARIANT:
        arch, implied = _ARCH_IMPLIED_VARIANT[arch]
        variant = variant or implied
    arch = _ARCH_ALIASES.get(arch, arch)
    if variant and variant[0].isdigit():
        variant = "v" + variant  # "8" and "v8" are both seen in the wild
    if arch == "arm64" and variant in ("", "v8.0"):
        variant = "v8"
    elif arch == "arm" and not variant:
        variant = "v7"
    elif arch == "amd64" and variant == "v1":
        variant = ""
    return Platform(os_name, arch, variant or None)


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]`` (``linux/arm64/v8``), keeping what was written; raise ValueError when malformed."""
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError("expected os/architecture[/variant], e.g. linux/arm64/v8")
    for part in parts:
        if not all(ch.isalnum() or ch in "._-" for ch in part):
            raise ValueError(f"unexpected character in {part!r}; expected os/architecture[/variant]")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def platform_matches(candidate: Platform | None, wanted: Platform) -> bool:
    """True when ``candidate`` (from an index or a config) is the platform ``wanted`` names, after normalising."""
    return candidate is not None and normalize_platform(candidate) == normalize_platform(wanted)


def select_child(children: tuple[PlatformChild, ...], wanted: Platform) -> PlatformChild | None:
    """The index entry for ``wanted`` (first match, as docker pulls it), or None."""
    for child in children:
        if platform_matches(child.platform, wanted):
            return child
    return None


def _loads_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # "[[[[..." nests past the recursion limit
        raise ManifestError(f"{what} is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{what} is not a JSON object")
    return doc


def parse_manifest(body: bytes, media_type: str) -> dict[str, Any]:
    """Parse and sanity-check an index or image manifest served as ``media_type``; raise ManifestError."""
    doc = _loads_object(body, "manifest")
    if doc.get("schemaVersion") == 1:
        raise ManifestError("unsupported legacy (schema 1) manifest")
    if doc.get("schemaVersion") != 2:
        raise ManifestError(f"unexpected schemaVersion {doc.get('schemaVersion')!r}")
    declared = doc.get("mediaType")
    # The distribution spec says to reject a manifest whose mediaType disagrees with Content-Type.
    if declared is not None and declared != media_type:
        raise ManifestError(f"manifest mediaType {declared!r} does not match Content-Type {media_type!r}")
    if media_type in INDEX_TYPES:
        if not isinstance(doc.get("manifests"), list):
            raise ManifestError("index has no 'manifests' list")
    elif media_type in IMAGE_TYPES:
        _descriptor(doc.get("config"), "config")
    return doc


def _descriptor(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(f"{what} descriptor is missing or not an object")
    if not isinstance(value.get("digest"), str) or not isinstance(value.get("mediaType", ""), str):
        raise ManifestError(f"{what} descriptor has no valid digest")
    return value


def index_children(doc: dict[str, Any]) -> tuple[PlatformChild, ...]:
    """The entries of a parsed index as PlatformChild values; a bad entry raises ManifestError."""
    children = []
    for number, entry in enumerate(doc.get("manifests") or ()):
        entry = _descriptor(entry, f"index entry {number}")
        platform = None
        raw = entry.get("platform")
        if isinstance(raw, dict) and isinstance(raw.get("os"), str) and isinstance(raw.get("architecture"), str):
            variant = raw.get("variant")
            platform = Platform(raw["os"], raw["architecture"], variant if isinstance(variant, str) else None)
        children.append(PlatformChild(entry["digest"], entry.get("mediaType", ""), platform))
    return tuple(children)


def config_digest(doc: dict[str, Any]) -> str:
    """Digest of an image manifest's config blob."""
    return str(_descriptor(doc.get("config"), "config")["digest"])


def config_platform(body: bytes) -> Platform:
    """The os/architecture/variant recorded in an image config blob."""
    doc = _loads_object(body, "image config")
    os_name, arch, variant = doc.get("os"), doc.get("architecture"), doc.get("variant")
    if not isinstance(os_name, str) or not isinstance(arch, str) or not os_name or not arch:
        raise ManifestError("image config has no os/architecture")
    return Platform(os_name, arch, variant if isinstance(variant, str) and variant else None)
