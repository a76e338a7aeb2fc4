"""Pure manifest facts: media types, platforms, and what a resolution returns."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Platform:
    """os/architecture[/variant] as in ``--platform linux/arm64/v8``."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class PlatformChild:
    """One entry of an index: the child manifest's digest, type and platform (None when not given)."""

    digest: str
    media_type: str
    platform: Platform | None


@dataclass(frozen=True)
class Resolution:
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
