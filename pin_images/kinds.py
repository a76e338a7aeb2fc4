"""Which file kinds exist, how a walk recognises them by name, and the one entry point that scans any of them.

Adding a kind means adding it here; the engine, the walk and the reports need no change.
"""

from __future__ import annotations

from .uses import FileScan, ScanOptions

KINDS = ("dockerfile",)


def kind_for_name(path: str) -> str | None:
    """The kind a directory walk gives a file by its name alone, or None to pass it by."""
    from .files import is_dockerfile_name

    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return "dockerfile" if is_dockerfile_name(name) else None


def kind_for_named_file(path: str, data: bytes) -> str | None:
    """The kind of a file named on the command line (its name, else its content); None means skip it quietly."""
    return kind_for_name(path) or "dockerfile"


def scan_file(kind: str, data: bytes, path: str, options: ScanOptions) -> FileScan:
    """Scan one file of a known kind; raises a PinImagesError for a file that cannot be read as that kind."""
    if kind == "dockerfile":
        from . import dockerfile

        return dockerfile.scan_file(data, path, options)
    raise ValueError(f"unknown file kind {kind!r}")
