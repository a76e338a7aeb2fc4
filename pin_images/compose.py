"""Compose files: ``services.<name>.image``, following merge keys; a service that builds its image is skipped."""

from __future__ import annotations

from . import yamlscan
from .uses import FileScan

KIND = "compose"


def scan(data: bytes, path: str = "") -> FileScan:
    """Every image a Compose file's services pull, in file order."""
    return yamlscan.scan(data, path, KIND, "Compose file", _visit)


def _visit(stream: yamlscan.Stream) -> None:
    for doc in stream.documents:
        services = yamlscan.get(doc, "services")
        for name, service in yamlscan.mapping_items(services):
            fields = dict(yamlscan.mapping_items(service))
            image = fields.get("image")
            if image is None:
                continue
            where = f"services.{name}.image"
            if "build" in fields:
                # The image names what `docker compose build` makes: a digest there would break the build.
                stream.skip(image, where, "the service builds this image (build:); not pinned")
                continue
            stream.add(image, where, platform=yamlscan.scalar_value(fields.get("platform")))
