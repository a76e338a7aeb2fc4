"""File-system edge: find the files to read (names, kinds, excludes, .gitignore), read them, and replace them safely."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import os
import re
import stat
from collections.abc import Collection, Iterator, Sequence
from typing import NamedTuple

from . import kinds
from .errors import DockerfileError, PinImagesError

# Kept in step with the `files`/`exclude` patterns in .pre-commit-hooks.yaml (tests compare the two).
# Patterns are compiled on first use (re caches them): a run that names its files never walks a directory.
_NAME = (
    r"(?:Dockerfile|Containerfile|dockerfile|containerfile)(?:\.[^/]+)?"
    r"|[^/]+\.(?:Dockerfile|dockerfile|Containerfile|containerfile)"
)
# Names that match the patterns above but are documentation, templates or BuildKit's per-Dockerfile
# ignore files (`Dockerfile.dockerignore`), never Dockerfiles to pin.
_NOT_DOCKERFILE = (
    r".*\.(?:dockerignore|md|markdown|rst|txt|orig|rej|bak|swp|j2|jinja|jinja2|tpl|tmpl|template|in|erb|mustache)"
)
_SKIP_DIRS = frozenset({".git", ".hg", ".svn"})
# Real Dockerfiles are kilobytes. Scanning costs ~4 s per MiB of one-line instructions, so a bigger file (a
# generated blob named *.dockerfile) gets a fast, clear error instead of stalling a commit hook. Pinned output is
# held to the same limit (see check_size), so a file pin-images wrote is always one it can read back.
MAX_FILE_BYTES = 1024 * 1024
# git prints this for a directory it cannot list, and still exits 0; we must not take that for an empty directory.
_GIT_UNREADABLE = r"(?m)^warning: could not open directory '(.*)': (.*)$"
_GIT_TIMEOUT = 60.0


def is_dockerfile_name(name: str) -> bool:
    """True for the file names a directory walk treats as Dockerfiles."""
    return re.fullmatch(_NAME, name) is not None and re.fullmatch(_NOT_DOCKERFILE, name) is None


def display_path(path: str) -> str:
    """How a path is reported: normalised, ``/``-separated, relative to the working directory when it lies below it.

    ``./a/Dockerfile`` becomes ``a/Dockerfile``; a relative path that leaves the working directory keeps its ``..``;
    an absolute path outside the working directory stays absolute.
    """
    norm = os.path.normpath(path)
    if os.path.isabs(norm):
        try:
            rel = os.path.relpath(norm)
        except ValueError:  # another drive on Windows
            rel = norm
        if rel != ".." and not rel.startswith(".." + os.sep) and not os.path.isabs(rel):
            norm = rel
    return norm.replace(os.sep, "/")


def _normalise_glob(glob: str) -> str:
    """``./legacy``, ``legacy/`` and ``legacy`` are one pattern; paths are matched in display form."""
    g = re.sub(r"/+", "/", glob.replace(os.sep, "/").strip())
    while "/./" in g:
        g = g.replace("/./", "/")
    while g.startswith("./"):
        g = g[2:]
    return g.rstrip("/") or "."


def is_excluded(path: str, globs: Sequence[str]) -> bool:
    """True if ``path`` (relative, any separator), its basename or any parent directory matches one of ``globs``."""
    if not globs:
        return False
    parts = [p for p in display_path(path).split("/") if p not in ("", ".")]
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    candidates += parts
    patterns = [_normalise_glob(g) for g in globs]
    return any(fnmatch.fnmatchcase(c, g) for g in patterns for c in candidates)


def work_tree_root(path: str) -> str | None:
    """The root of the git work tree holding ``path`` (the nearest directory with a ``.git`` entry), or None.

    A ``.git`` file counts too: linked worktrees and submodules have one. No git process is started.
    """
    directory = os.path.abspath(path)
    if not os.path.isdir(directory):
        directory = os.path.dirname(directory)
    return _root_above(directory)


@functools.lru_cache(maxsize=256)
def _root_above(directory: str) -> str | None:
    while True:
        if os.path.lexists(os.path.join(directory, ".git")):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def root_relative(path: str, root: str | None = None) -> str:
    """``path`` relative to ``root`` (default: the work tree holding the working directory, else the working
    directory), ``/``-separated: what ``git apply`` and SARIF consumers expect. A path outside it stays as shown."""
    if root is None:
        root = work_tree_root(os.getcwd()) or os.getcwd()
    try:
        rel = os.path.relpath(os.path.abspath(path), root)
    except ValueError:
        return display_path(path)
    if rel == ".." or rel.startswith(".." + os.sep):
        return display_path(path)
    return rel.replace(os.sep, "/")


def patch_path(path: str) -> str:
    """The path a patch names for ``path`` (after ``a/`` and ``b/``): relative to the work tree holding the working
    directory, else to the file's own work tree (a file named by absolute path in another checkout), else as shown."""
    shown = root_relative(path)
    if not os.path.isabs(shown) and not shown.startswith("../"):
        return shown
    own = work_tree_root(path)
    return root_relative(path, own) if own is not None else shown


class Discovery(NamedTuple):
    """The files to read, each once, in order; and the errors met finding them (one bad path hides nothing else)."""

    # A NamedTuple (built once a run, no dataclass to build at import); the lists are filled in place.
    paths: list[str]
    errors: list[PinImagesError]
    excluded: list[str]  # paths named by the caller that an exclude pattern skipped


def discover(paths: Sequence[str], excludes: Sequence[str] = (), only: Collection[str] | None = None) -> Discovery:
    """Find the files named by ``paths``: a file as given, a directory searched (honouring .gitignore in git).

    Every path is reported in display form; the same file reached twice (``a/Dockerfile``, ``./a/Dockerfile``, a
    symlink, a hard link) is read once, under the name that is not a symlink when there is one. An excluded path is
    skipped even when named, so the configuration's excludes hold under pre-commit, which names every staged file.
    ``only``: the file kinds a search keeps (default: every kind ``kinds.kind_for_name`` knows).
    """
    found = Discovery([], [], [])
    by_file: dict[object, int] = {}
    for root in paths:
        if os.path.lexists(root) and is_excluded(display_path(root), excludes):
            found.excluded.append(display_path(root))
            continue
        try:
            for path in _find(root, excludes, found.errors, only):
                _add_once(found.paths, by_file, path)
        except PinImagesError as exc:
            found.errors.append(exc)
    return found


def _add_once(paths: list[str], by_file: dict[object, int], path: str) -> None:
    try:
        st = os.stat(path)
        key: object = (st.st_dev, st.st_ino)
    except OSError:
        key = path  # unreadable (a symlink loop, a dangling link): reading it will say why, once per name
    if key not in by_file:
        by_file[key] = len(paths)
        paths.append(path)
    elif _has_symlink(paths[by_file[key]]) and not _has_symlink(path):
        paths[by_file[key]] = path


def _has_symlink(path: str) -> bool:
    return os.path.realpath(path) != os.path.abspath(path)


def _find(
    root: str, excludes: Sequence[str], errors: list[PinImagesError], only: Collection[str] | None
) -> Iterator[str]:
    shown = display_path(root)
    if not os.path.lexists(root):
        raise DockerfileError("no such file or directory", shown)
    if is_excluded(shown, excludes):
        return
    if not os.path.isdir(root):
        yield shown
        return
    listed = _git_listing(root, errors, only)
    for rel, is_dir in _walk(root, excludes, errors, only) if listed is None else listed:
        path = display_path(os.path.join(root, rel))
        if is_dir:
            # A submodule or a nested repository: git lists it as one entry; search it with its own rules.
            yield from _find(path, excludes, errors, only)
        elif not is_excluded(path, excludes):
            yield path


def _wanted(path: str, only: Collection[str] | None) -> bool:
    kind = kinds.kind_for_name(path)
    return kind is not None and (only is None or kind in only)


def _walk(
    root: str, excludes: Sequence[str], errors: list[PinImagesError], only: Collection[str] | None
) -> list[tuple[str, bool]]:
    """The files of a known kind below ``root`` (relative to it), outside git: a walk that follows no directory link
    and does not enter excluded directories (a large excluded ``node_modules`` costs nothing)."""
    out: list[tuple[str, bool]] = []

    def unreadable(exc: OSError) -> None:
        errors.append(DockerfileError(f"cannot read directory: {exc.strerror or exc}", display_path(exc.filename)))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = [
            d for d in dirnames if d not in _SKIP_DIRS and not (excludes and is_excluded(f"{dirpath}/{d}", excludes))
        ]
        # os.walk joins every dirpath onto root, so slicing is relpath without its cost (it runs once per directory).
        prefix = dirpath[len(root) :].lstrip(os.sep + "/")
        for name in filenames:
            if _wanted(f"{dirpath}/{name}", only):
                out.append((f"{prefix}/{name}" if prefix else name, False))
    return sorted(out, key=_walk_order)


def _walk_order(entry: tuple[str, bool]) -> tuple[tuple[str, ...], str]:
    # A directory's own files before its subdirectories, each level sorted: the order a sorted walk gives.
    parts = entry[0].replace(os.sep, "/").rstrip("/").split("/")
    return (tuple(parts), "") if entry[1] else (tuple(parts[:-1]), parts[-1])


# `git ls-files -s` prints "<mode> <object> <stage>\t<path>" for tracked entries, the bare path for untracked ones.
_STAGED = r"(?s)([0-7]{6}) [0-9a-f]{40,64} [0-3]\t(.*)"
_GITLINK = "160000"
_GITLINK_ENTRY = b"160000 "


def _git_listing(
    root: str, errors: list[PinImagesError], only: Collection[str] | None
) -> list[tuple[str, bool]] | None:
    """The files of a known kind below ``root`` that git does not ignore, tracked or not, and the nested
    repositories to search on their own; None outside a work tree or without git."""
    if work_tree_root(root) is None or os.path.basename(os.path.abspath(root)) in _SKIP_DIRS:
        return None
    cmd = ["git", "-C", root, "ls-files", "-z", "--stage", "--cached", "--others", "--exclude-standard"]
    # No optional locks: listing must never write the index of the repository being checked.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    import subprocess  # only for directories in a work tree: naming files (as the hook does) never needs it

    try:
        proc = subprocess.run(cmd, capture_output=True, env=env, timeout=_GIT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None  # no git (or a broken one): search as outside a repository
    if proc.returncode != 0:
        return None  # e.g. a repository git refuses (another user's, "dubious ownership")
    stderr = proc.stderr.decode("utf-8", "replace")
    for match in re.finditer(_GIT_UNREADABLE, stderr):
        where = display_path(os.path.join(root, match.group(1)))
        errors.append(DockerfileError(f"cannot read directory: {match.group(2)}", where))
    found: dict[str, bool] = {}
    staged_re = re.compile(_STAGED)
    for entry in proc.stdout.split(b"\0"):
        if not _could_be_listed(entry):
            continue
        text = os.fsdecode(entry)
        staged = staged_re.fullmatch(text)
        rel = staged.group(2) if staged else text
        # A submodule (a gitlink) or an untracked nested repository (listed with a trailing slash).
        is_dir = (staged is not None and staged.group(1) == _GITLINK) or rel.endswith("/")
        if rel and (is_dir or _wanted(os.path.join(root, rel), only)):
            found[rel] = is_dir
    # --cached also lists files deleted from the work tree but not from the index.
    kept = [(rel, d) for rel, d in found.items() if os.path.lexists(os.path.join(root, rel))]
    return sorted(kept, key=_walk_order)


def _could_be_listed(entry: bytes) -> bool:
    """False for a `git ls-files` entry that is neither a file of a kind nor a repository to search, decided before
    decoding or matching it: a large repository lists tens of thousands of other files. (A tracked entry's mode and
    object id cannot contain these words.)"""
    return (
        b"ockerfile" in entry
        or b"ontainerfile" in entry
        or entry.endswith((b".yml", b".yaml", b".json", b"/"))
        or entry.startswith(_GITLINK_ENTRY)
    )


def read_file(path: str) -> bytes:
    """Read a file's bytes; errors name the file and the cause in one line."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise DockerfileError("is a directory", path)
        if not stat.S_ISREG(st.st_mode):
            # A FIFO would block the open forever, /dev/zero would never end.
            raise DockerfileError("not a regular file", path)
        if st.st_size > MAX_FILE_BYTES:
            raise _too_big(path)
        with open(path, "rb") as f:
            # The size the stat gave, plus one byte to see growth: asking for the whole limit would allocate a
            # MiB per file. A file that grew since the stat is read on, up to the limit.
            data = f.read(st.st_size + 1)
            if len(data) > st.st_size:
                data += f.read(MAX_FILE_BYTES + 1 - len(data))
        if len(data) > MAX_FILE_BYTES:
            raise _too_big(path)
        return data
    except DockerfileError:
        raise
    except OSError as exc:
        raise DockerfileError(f"cannot read: {exc.strerror or exc}", path) from None


def _too_big(path: str) -> DockerfileError:
    return DockerfileError(
        f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; not a Dockerfile? (skip it with --exclude)", path
    )


def check_size(path: str, new: bytes) -> None:
    """Refuse pinned content over the read limit: pin-images must be able to read back (and --check) what it wrote."""
    if len(new) > MAX_FILE_BYTES:
        raise DockerfileError(
            f"pinned, the file would be {len(new):,} bytes, over the {MAX_FILE_BYTES // (1024 * 1024)} MiB that "
            "pin-images reads; not written (split the file, or skip it with --exclude)",
            path,
        )


def digest_bytes(data: bytes) -> str:
    import hashlib  # only when a file may be written: --check never needs it

    return hashlib.sha256(data).hexdigest()


def replace_file(path: str, new: bytes, expected_sha256: str) -> None:
    """Replace ``path``'s content with ``new`` if it still holds what we read (``expected_sha256``).

    Normally a temporary file in the same directory, given the file's mode, owner, group and extended attributes
    (ACLs), is renamed over it: a crash leaves the old or the new content, never a mix. A file with other hard links,
    or one whose owner we could not give the new file, is rewritten in place instead so that the links and the owner
    stay; that write is one short ``write`` but not crash-atomic. A symlink is written through to its target. A file
    the user may not write is refused even when its directory is writable.
    """
    # Only a symlink needs resolving (to write through it); realpath costs an lstat per path component.
    target = os.path.realpath(path) if os.path.islink(path) else path
    try:
        with open(target, "rb") as f:
            current = f.read()
            st = os.fstat(f.fileno())
    except OSError as exc:
        raise DockerfileError(f"cannot read before writing: {exc.strerror or exc}", path) from None
    if digest_bytes(current) != expected_sha256:
        raise DockerfileError("changed on disk while pin-images was running; not overwritten, run again", path)
    check_size(path, new)
    if not os.access(target, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
        raise DockerfileError("no permission to write this file (it is read-only for you); not changed", path)
    if _rename_keeps_identity(st):
        _replace_by_rename(path, target, new, st)
    else:
        _rewrite_in_place(path, target, new, expected_sha256)


def _rename_keeps_identity(st: os.stat_result) -> bool:
    """Whether a new file renamed over this one can carry the same owner and group and lose no hard link."""
    if st.st_nlink > 1:
        return False
    if not hasattr(os, "geteuid"):
        return True  # Windows: no owners to keep this way
    euid = os.geteuid()
    if euid == 0:
        return True
    return st.st_uid == euid and (st.st_gid == os.getegid() or st.st_gid in os.getgroups())


def _replace_by_rename(path: str, target: str, new: bytes, st: os.stat_result) -> None:
    directory = os.path.dirname(target) or "."
    import tempfile  # only when writing; it imports shutil, random and more

    try:
        fd, tmp = tempfile.mkstemp(prefix=".pin-images-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise DockerfileError(f"cannot write: {exc.strerror or exc}", path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(new)
            f.flush()
            os.fsync(f.fileno())
        if hasattr(os, "chown"):
            tmp_st = os.stat(tmp)
            if (tmp_st.st_uid, tmp_st.st_gid) != (st.st_uid, st.st_gid):
                os.chown(tmp, st.st_uid, st.st_gid)
        _copy_xattrs(target, tmp)
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise DockerfileError(f"cannot write: {exc.strerror or exc}", path) from None
        raise


def _copy_xattrs(src: str, dst: str) -> None:
    """Copy extended attributes (POSIX ACLs live there); ones we may not set (security.*, trusted.*) stay behind."""
    if not hasattr(os, "listxattr"):
        return
    try:
        names = os.listxattr(src)
    except OSError:
        return
    for name in names:
        with contextlib.suppress(OSError):
            os.setxattr(dst, name, os.getxattr(src, name))


def _rewrite_in_place(path: str, target: str, new: bytes, expected_sha256: str) -> None:
    try:
        with open(target, "r+b") as f:
            # Compare again through the handle we write with: the last moment anyone else's edit can be seen.
            if digest_bytes(f.read()) != expected_sha256:
                raise DockerfileError("changed on disk while pin-images was running; not overwritten, run again", path)
            f.seek(0)
            f.write(new)
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise DockerfileError(f"cannot write: {exc.strerror or exc}", path) from None
