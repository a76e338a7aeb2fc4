"""The file-kind interface: what every scanner (Dockerfile, Compose, Kubernetes, ...) returns, and the one splice.

A file kind is a pure ``scan(data, path, ...) -> list[ImageUse]``; every kind shares ``apply`` because an edit is a
character span of the file's text decoded with ``surrogateescape``, so every byte outside the spans round-trips.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import NamedTuple


class Status(str, enum.Enum):
    """What the scanner could decide about a use without the network."""

    OK = "ok"
    IGNORED = "ignored"
    UNRESOLVED = "unresolved"
    PLATFORM_ARG = "platform-arg"
    # A --build-arg replaced the default that the file names: the digest would belong to another image.
    OVERRIDDEN = "overridden"
    # Not a reference to pin, for the reason in the note (a variable, an empty value, a block scalar, an image a
    # Compose service builds): reported as skipped, never a --check failure.
    SKIP = "skip"
    # The reference's own text cannot be expanded (BuildKit fails the build there); the note says why.
    INVALID = "invalid"

    def __str__(self) -> str:
        return self.value


OK = Status.OK
IGNORED = Status.IGNORED
UNRESOLVED = Status.UNRESOLVED
PLATFORM_ARG = Status.PLATFORM_ARG
OVERRIDDEN = Status.OVERRIDDEN
SKIP = Status.SKIP
INVALID = Status.INVALID


class ImageUse(NamedTuple):
    """One external image reference and the span of text to edit to pin it.

    ``start``/``end`` are the character offsets of the edit span; ``line``/``column`` (1-based, in characters)
    locate its start, the text a pin changes. For an ARG-default pin (``ARG BASE=python:3.12`` for ``FROM $BASE``)
    that is the default on the ARG's line, where the digest goes, not the instruction that uses it.
    ``platform`` is the instruction's ``--platform`` value when it is literal
    after ARG expansion (``linux/arm64``), None when there is none or it comes from ``$BUILDPLATFORM``,
    ``$TARGETPLATFORM`` or another platform ARG (known only at build time).
    """

    line: int
    instruction: str
    written: str
    image: str | None
    platform: str | None
    start: int
    end: int
    status: Status = Status.OK
    note: str = ""
    column: int = 0
    kind: str = "dockerfile"
    # Where the reference is used when its text (and pin) lies elsewhere, e.g. "ARG BASE, used by FROM on line 4":
    # two FROMs sharing one ARG default would otherwise print the same line twice with nothing to tell them apart.
    via: str = ""


# The records below are NamedTuples, not frozen dataclasses: each dataclass cost every run (the hook's --check
# included) a millisecond or more to build at import, and each instance several times a tuple's.
class Edit(NamedTuple):
    start: int
    end: int
    replacement: str


def apply(data: bytes, edits: Iterable[Edit]) -> bytes:
    """Splice edits into the file's text; every byte outside them stays identical."""
    text = data.decode("utf-8", "surrogateescape")
    unique = sorted(set(edits), key=lambda e: (e.start, e.end, e.replacement))
    for e in unique:
        if not 0 <= e.start <= e.end <= len(text):
            raise ValueError(f"edit {e} is outside the text (length {len(text)})")
    for a, b in zip(unique, unique[1:]):
        # Two insertions at one point (or an insertion at a replacement's start) have no defined order.
        if b.start < a.end or (a.start == b.start and (a.start == a.end or b.start == b.end)):
            raise ValueError(f"overlapping edits {a} and {b}")
    parts = []
    prev = 0
    for e in unique:
        parts.append(text[prev : e.start])
        parts.append(e.replacement)
        prev = e.end
    parts.append(text[prev:])
    return "".join(parts).encode("utf-8", "surrogateescape")


class Note(NamedTuple):
    """Something a scan wants the user to know about a file that is not tied to one image use."""

    line: int
    message: str
    warning: bool = True


class ScanOptions(NamedTuple):
    """What a scanner may need beyond the file's bytes; every kind ignores what it does not use."""

    build_args: Mapping[str, str] = MappingProxyType({})  # read-only: a default shared by every instance
    pin_syntax: bool = False


class FileScan(NamedTuple):
    """One file's scan: its image uses in file order, and file-level notes (a broken line no use depends on)."""

    kind: str
    uses: tuple[ImageUse, ...] = ()
    notes: tuple[Note, ...] = ()
