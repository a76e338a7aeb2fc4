"""File-system edge: find Dockerfiles, read them, and replace them atomically without losing mode or racing edits."""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Sequence

from .errors import DockerfileError

# Kept in step with the `files`/`exclude` patterns in .pre-commit-hooks.yaml (tests compare the two).
_NAME_RE = re.compile(
    r"(?:Dockerfile|Containerfile|dockerfile|containerfile)(?:\.[^/]+)?"
    r"|[^/]+\.(?:Dockerfile|dockerfile|Containerfile|containerfile)"
)
# Names that match the patterns above but are documentation, templates or BuildKit's per-Dockerfile
# ignore files (`Dockerfile.dockerignore`), never Dockerfiles to pin.
_NOT_DOCKERFILE_RE = re.compile(
    r".*\.(?:dockerignore|md|markdown|rst|txt|orig|rej|bak|swp|j2|jinja|jinja2|tpl|tmpl|template|in|erb|mustache)"
)
_SKIP_DIRS = frozenset({".git", ".hg", ".svn"})
# Real Dockerfiles are kilobytes. Scanning costs ~4 s per MiB of one-line instructions, so a bigger file (a
# generated blob named *.dockerfile) gets a fast, clear error instead of stalling a commit hook.
MAX_FILE_BYTES = 1024 * 1024


def is_dockerfile_name(name: str) -> bool:
    """True for the file names a directory walk treats as Dockerfiles."""
    return _NAME_RE.fullmatch(name) is not None and _NOT_DOCKERFILE_RE.fullmatch(name) is None


def is_excluded(path: str, globs: Sequence[str]) -> bool:
    """True if ``path`` (relative, any separator), its basename or any parent directory matches one of ``globs``."""
    if not globs:
        return False
    parts = [p for p in path.replace(os.sep, "/").split("/") if p not in ("", ".")]
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    candidates += parts
    return any(fnmatch.fnmatchcase(c, g.rstrip("/")) for g in globs for c in candidates)


def find_dockerfiles(paths: Sequence[str], excludes: Sequence[str] = ()) -> Iterator[str]:
    """Yield the Dockerfiles named by ``paths``: files as given, directories walked recursively (sorted).

    Directory symlinks are not followed, so a symlink loop cannot trap the walk. A missing path raises.
    """
    seen: set[str] = set()
    for root in paths:
        if not os.path.lexists(root):
            raise DockerfileError("no such file or directory", root)
        if not os.path.isdir(root):
            if not is_excluded(root, excludes) and root not in seen:
                seen.add(root)
                yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(
                d for d in dirnames if d not in _SKIP_DIRS and not is_excluded(os.path.join(dirpath, d), excludes)
            )
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if is_dockerfile_name(name) and not is_excluded(path, excludes) and path not in seen:
                    seen.add(path)
                    yield path


def read_file(path: str) -> bytes:
    """Read a Dockerfile's bytes; errors name the file and the cause in one line."""
    try:
        if os.path.isdir(path):
            raise DockerfileError("is a directory", path)
        too_big = DockerfileError(
            f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; not a Dockerfile? (skip it with --exclude)",
            path,
        )
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            # A FIFO would block the open forever, /dev/zero would never end.
            raise DockerfileError("not a regular file", path)
        if os.path.getsize(path) > MAX_FILE_BYTES:
            raise too_big
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # the file may have grown since the stat
        if len(data) > MAX_FILE_BYTES:
            raise too_big
        return data
    except DockerfileError:
        raise
    except OSError as exc:
        raise DockerfileError(f"cannot read: {exc.strerror or exc}", path) from None


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def replace_file(path: str, new: bytes, expected_sha256: str) -> None:
    """Atomically replace ``path``'s content with ``new``, if it still holds what we read (``expected_sha256``).

    The temp file lives in the target's directory so the rename is atomic; mode bits are kept; a symlink is
    written through to its target. On any failure the original file is untouched and no temp file remains.
    """
    target = os.path.realpath(path)
    try:
        with open(target, "rb") as f:
            current = f.read()
    except OSError as exc:
        raise DockerfileError(f"cannot read before writing: {exc.strerror or exc}", path) from None
    if digest_bytes(current) != expected_sha256:
        raise DockerfileError("changed on disk while pin-images was running; not overwritten, run again", path)
    directory = os.path.dirname(target) or "."
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
        fd, tmp = tempfile.mkstemp(prefix=".pin-images-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise DockerfileError(f"cannot write: {exc.strerror or exc}", path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(new)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise DockerfileError(f"cannot write: {exc.strerror or exc}", path) from None
        raise
