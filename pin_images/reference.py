"""Image reference grammar: parse and normalise references exactly as distribution/reference does."""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import InvalidReferenceError
from .hosts import DOCKER_HUB, LEGACY_HUB

DEFAULT_REGISTRY = DOCKER_HUB
LEGACY_REGISTRY = LEGACY_HUB
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN_AND_PORT = rf"{_HOST}(?::[0-9]+)?"

_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_RE = re.compile(_DOMAIN_AND_PORT)
TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
_ANY_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
SHA256_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
_SURROGATE_RE = re.compile("[\udc80-\udcff]")
_ID_RE = re.compile(r"[a-f0-9]{64}")  # what distribution/reference refuses as a name


def is_sha256_digest(value: str) -> bool:
    """True only for the one digest form we ever write into a file: ``sha256:`` and 64 lowercase hex digits."""
    return SHA256_DIGEST_RE.fullmatch(value) is not None


class Reference(NamedTuple):
    """A parsed image reference; ``original`` is the text as the user wrote it."""

    original: str
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Fully qualified repository name, e.g. ``docker.io/library/python``."""
        return f"{self.registry}/{self.repository}"

    @property
    def lookup(self) -> str:
        """What to ask the registry for: the tag (``latest`` when none was written), else the digest."""
        if self.tag is not None:
            return self.tag
        if self.digest is not None:
            return self.digest
        return DEFAULT_TAG

    @property
    def tag_or_default(self) -> str:
        return self.tag if self.tag is not None else DEFAULT_TAG

    @property
    def normalized(self) -> str:
        """The canonical form, e.g. ``docker.io/library/python:3.12@sha256:...``."""
        text = self.name
        if self.tag is not None or self.digest is None:
            text += ":" + self.tag_or_default
        if self.digest is not None:
            text += "@" + self.digest
        return text

    @property
    def without_digest(self) -> str:
        """The reference as written, minus any ``@digest`` part."""
        return self.original.split("@", 1)[0]

    def __str__(self) -> str:
        return self.original


def split_domain(name: str) -> tuple[str, str]:
    """Split a name into (domain, remainder) with Docker's rules, before normalising."""
    first, sep, rest = name.partition("/")
    if not sep or (
        "." not in first and ":" not in first and first != "localhost" and first.lower() == first
    ):
        return DEFAULT_REGISTRY, name
    return first, rest


def parse(text: str) -> Reference:
    """Parse ``text`` into a normalised Reference or raise InvalidReferenceError saying what is wrong."""
    if not text:
        raise InvalidReferenceError(text, "empty reference")
    if text.split() != [text]:  # str.split() splits on exactly the characters str.isspace() accepts
        raise InvalidReferenceError(text, "contains whitespace")
    if not text.isascii() and _SURROGATE_RE.search(text):  # undecodable bytes, kept by surrogateescape
        raise InvalidReferenceError(text, "contains bytes that are not UTF-8; check the file's encoding")

    rest, at, digest = text.partition("@")
    if at:
        if not digest:
            raise InvalidReferenceError(text, "empty digest after '@'")
        if "@" in digest:
            raise InvalidReferenceError(text, "more than one '@'")
        if not _ANY_DIGEST_RE.fullmatch(digest):
            raise InvalidReferenceError(text, f"digest {digest!r} is not of the form algorithm:hex")
        if not digest.startswith("sha256:"):
            raise InvalidReferenceError(text, f"unsupported digest algorithm in {digest!r}; only sha256 is supported")
        if not is_sha256_digest(digest):
            raise InvalidReferenceError(text, f"sha256 digest {digest!r} must be 64 lowercase hex digits")
    else:
        digest = ""

    name, tag = rest, None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        name, tag = rest[:colon], rest[colon + 1 :]
        if not tag:
            raise InvalidReferenceError(text, "empty tag after ':'")
        if not TAG_RE.fullmatch(tag):
            if ":" in name and "/" not in name:
                raise InvalidReferenceError(text, "too many ':' (a port needs a '/repository' after it)")
            raise InvalidReferenceError(
                text,
                f"tag {tag!r} must be letters, digits, '_', '.' or '-' (at most 128, not starting with '.' or '-')",
            )
    if not name:
        raise InvalidReferenceError(text, "empty repository name")

    domain, remainder = split_domain(name)
    if not _DOMAIN_RE.fullmatch(domain):
        raise InvalidReferenceError(text, f"registry {domain!r} is not a valid host[:port]")
    if not remainder:
        raise InvalidReferenceError(text, "empty repository name")
    if ":" in remainder:
        raise InvalidReferenceError(text, "too many ':' in the reference")
    if remainder.lower() != remainder and _PATH_RE.fullmatch(remainder.lower()):
        raise InvalidReferenceError(text, "repository name must be lowercase")
    if not _PATH_RE.fullmatch(remainder):
        raise InvalidReferenceError(
            text,
            "repository path components must be lowercase letters and digits separated by '.', '_', '__' or '-'",
        )
    if _ID_RE.fullmatch(text):
        raise InvalidReferenceError(text, "a 64-character hexadecimal string is an image ID, not a repository name")

    if domain == LEGACY_REGISTRY:
        domain = DEFAULT_REGISTRY
    if domain == DEFAULT_REGISTRY and "/" not in remainder:
        remainder = "library/" + remainder
    # Docker checks the length of the normalised name (docker.io/library/...), not of what was written.
    if len(domain) + 1 + len(remainder) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReferenceError(text, f"repository name longer than {NAME_TOTAL_LENGTH_MAX} characters")
    return Reference(original=text, registry=domain, repository=remainder, tag=tag, digest=digest or None)
