"""Offline installs: expose pin-images' runtime dependencies, as installed in this interpreter, to another one."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path, PurePosixPath

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The names in ``[project] dependencies`` that apply to this interpreter."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return [req.name for req in map(Requirement, project["dependencies"]) if not req.marker or req.marker.evaluate()]


def _requirements(dist: metadata.Distribution) -> list[str]:
    """Names of the distributions ``dist`` needs on this interpreter, extras left out."""
    reqs = (Requirement(text) for text in dist.requires or ())
    return [req.name for req in reqs if not req.marker or req.marker.evaluate({"extra": ""})]


def link_distributions(dest: Path, names: list[str]) -> Path:
    """Symlink into ``dest`` every top-level file and directory of ``names`` and their dependencies (transitively),
    including their ``.dist-info``, so that pip, given ``dest`` on its path, sees them installed."""
    dest.mkdir(parents=True, exist_ok=True)
    pending, seen = list(names), set()
    while pending:
        name = canonicalize_name(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        dist = metadata.distribution(name)  # PackageNotFoundError: install pin-images' dependencies first
        pending.extend(_requirements(dist))
        for top in {PurePosixPath(str(f)).parts[0] for f in dist.files or ()} - {"..", "__pycache__"}:
            link, target = dest / top, Path(str(dist.locate_file(top)))
            if target.exists() and not link.exists():
                link.symlink_to(target, target_is_directory=target.is_dir())
    return dest
