"""Which file kinds exist, how a walk recognises them by name, and the one entry point that scans any of them.

Adding a kind means adding it here; the engine, the walk and the reports need no change.
"""

from __future__ import annotations

import re

from .uses import FileScan, ScanOptions

KINDS = ("dockerfile", "compose", "kubernetes", "github", "gitlab", "devcontainer")
# The kind of a YAML file known by no name: recognised by its content when scanned (nothing if it is not a manifest).
BY_CONTENT = "kubernetes"

# Kept in step with the `files` patterns in .pre-commit-hooks.yaml (tests compare the two). Compiled on first use
# (re caches them): a run over Dockerfiles alone never needs them.
_COMPOSE = r"(?:docker-)?compose(?:\.[^/]+)?\.ya?ml"
_WORKFLOW = r"(?:.*/)?\.github/workflows/[^/]+\.ya?ml"
_ACTION = r"action\.ya?ml"
_GITLAB = r"(?:.+)?\.gitlab-ci\.ya?ml"
_DEVCONTAINER = r"(?:.*/)?(?:\.devcontainer\.json|\.devcontainer/(?:[^/]+/)?devcontainer\.json)"
_YAML = r".+\.ya?ml"
# Files of these extensions are never read as Dockerfiles when named on the command line.
_DATA = r"(?i).+\.(?:ya?ml|json)"


def kind_for_name(path: str) -> str | None:
    """The kind a directory walk gives a file by its name alone, or None to pass it by.

    Any other ``*.yaml``/``*.yml`` is a Kubernetes candidate: recognised by its content, it yields nothing (and no
    error) when it is not a manifest.
    """
    path = path.replace("\\", "/")
    name = path.rsplit("/", 1)[-1]
    if not _could_be_any(name):
        return None
    from .files import is_dockerfile_name

    if is_dockerfile_name(name):
        return "dockerfile"
    if re.fullmatch(_COMPOSE, name):
        return "compose"
    if re.fullmatch(_WORKFLOW, path) or re.fullmatch(_ACTION, name):
        return "github"
    if re.fullmatch(_GITLAB, name):
        return "gitlab"
    if re.fullmatch(_DEVCONTAINER, path):
        return "devcontainer"
    if re.fullmatch(_YAML, name):
        return BY_CONTENT
    return None


def _could_be_any(name: str) -> bool:
    """False for a name no pattern above can match: every Dockerfile name has one of these words in it, and every
    other kind's file is YAML or JSON. A search of a large repository asks this of every file it lists."""
    return "ockerfile" in name or "ontainerfile" in name or name.endswith((".yml", ".yaml", ".json"))


def kind_for_named_file(path: str, data: bytes = b"") -> str | None:
    """The kind of a file named on the command line; None means skip it quietly.

    Decided by the name, so a file of an unwanted kind is never read: a ``.json`` file of no kind is skipped, a
    ``.yaml``/``.yml`` one is read by content (as a Kubernetes candidate, which yields nothing when it is not a
    manifest; pre-commit hands the hook every YAML file), and any other file is read as a Dockerfile.
    """
    kind = kind_for_name(path)
    if kind is not None:
        return kind
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    if re.fullmatch(_DATA, name):
        return BY_CONTENT if re.fullmatch(_YAML, name.lower()) else None
    return "dockerfile"


def scan_file(kind: str, data: bytes, path: str, options: ScanOptions) -> FileScan:
    """Scan one file of a known kind; raises a PinImagesError for a file that cannot be read as that kind."""
    if kind == "dockerfile":
        from . import dockerfile

        return dockerfile.scan_file(data, path, options)
    if kind == "compose":
        from . import compose

        return compose.scan(data, path)
    if kind == "kubernetes":
        from . import kubernetes

        return kubernetes.scan(data, path)
    if kind == "github":
        from . import workflows

        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        if re.fullmatch(_ACTION, name) and not re.fullmatch(_WORKFLOW, path.replace("\\", "/")):
            return workflows.scan_action(data, path)
        return workflows.scan_workflow(data, path)
    if kind == "gitlab":
        from . import gitlab

        return gitlab.scan(data, path)
    if kind == "devcontainer":
        from . import devcontainer

        return devcontainer.scan(data, path)
    raise ValueError(f"unknown file kind {kind!r}")
