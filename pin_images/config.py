"""Project configuration: find and validate ``.pin-images.toml`` or ``[tool.pin-images]`` in ``pyproject.toml``.

Search rule: walk up from the start directory, stopping at the root of the git work tree (the directory with a
``.git`` entry) or, outside git, at the filesystem root; in each directory ``.pin-images.toml`` (top-level keys) wins,
then a ``pyproject.toml`` that has a ``[tool.pin-images]`` table; the first hit applies.
"""

from __future__ import annotations

import fnmatch
import math
import os
import sys
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Callable, NamedTuple

from .errors import ConfigError, InvalidReferenceError
from .hosts import canonical_registry
from .reference import parse as parse_reference

STANDALONE = ".pin-images.toml"
PYPROJECT = "pyproject.toml"
FORMATS = ("text", "json", "github", "sarif")


class FileConfig(NamedTuple):
    """Settings read from one file; ``None``/empty means "not set", so command-line options and defaults apply.

    A NamedTuple, not a frozen dataclass: building one of 15 fields cost every run's import ~2 ms. The defaults are
    read-only, being shared by every instance.
    """

    path: str | None = None
    registry_mirrors: Mapping[str, Sequence[str]] = MappingProxyType({})
    platform: str | None = None
    exclude: Sequence[str] = ()
    ignore_images: Sequence[str] = ()
    build_args: Mapping[str, str] = MappingProxyType({})
    jobs: int | None = None
    timeout: float | None = None
    deadline: float | None = None
    insecure_registries: Sequence[str] = ()
    format: str | None = None
    update: bool | None = None
    pin_style: str | None = None
    pin_syntax: bool | None = None
    kinds: Sequence[str] = ()


def find_config(start: str) -> str | None:
    """Absolute path of the configuration file that applies to ``start`` (a directory or a file in one), or None.

    Raises ConfigError for an unreadable or malformed ``pyproject.toml`` met on the way, because we cannot tell
    whether it was meant to configure us and silently skipping it would apply some farther file instead.
    """
    directory = os.path.abspath(start)
    if not os.path.isdir(directory):
        directory = os.path.dirname(directory)
    while True:
        standalone = os.path.join(directory, STANDALONE)
        if os.path.isfile(standalone):
            return standalone
        pyproject = os.path.join(directory, PYPROJECT)
        if os.path.isfile(pyproject):
            tool = _read_toml(pyproject).get("tool")
            if isinstance(tool, dict) and "pin-images" in tool:
                return pyproject
        parent = os.path.dirname(directory)
        # A repository's settings are its own: a file above its root (a home directory's) must not change them.
        if parent == directory or os.path.lexists(os.path.join(directory, ".git")):
            return None
        directory = parent


def load_config(path: str) -> FileConfig:
    """Parse and validate one ``.pin-images.toml`` or ``pyproject.toml``; every problem is a ConfigError."""
    doc = _read_toml(path)
    if os.path.basename(path) == PYPROJECT:
        prefix = f"{_display(path)}: [tool.pin-images] "
        tool = doc.get("tool", {})
        table = tool.get("pin-images", {}) if isinstance(tool, dict) else {}
        if not isinstance(table, dict):
            raise ConfigError(f"{prefix.rstrip()}: expected a table, got {_show(table)}")
    else:
        prefix = f"{_display(path)}: "
        table = doc
    return _validate(table, prefix, path)


def load_for(start: str) -> FileConfig:
    """The configuration that applies to ``start``; an empty FileConfig when there is none."""
    path = find_config(start)
    return load_config(path) if path is not None else FileConfig()


def matches_ignore(patterns: Sequence[str], written: str, normalized_name: str) -> bool:
    """True when a glob matches the reference in any of its spellings, with or without its tag and digest.

    The spellings are: as written, normalised (``docker.io/library/alpine:3.20``) and, for Docker Hub, the short
    form (``alpine:3.20``, ``bitnami/redis:7``); so ``alpine``, ``alpine:*`` and ``docker.io/library/alpine`` all
    match both ``FROM alpine:3.20`` and ``FROM docker.io/library/alpine:3.20``. Stripping the tag lets ``python``
    ignore every ``python:...`` use, which is what people mean; ``*`` also crosses ``/`` (fnmatch), so
    ``registry.internal/*`` covers nested repositories. Matching is case-sensitive because tags are.
    """
    candidates: set[str] = set()
    for spelling in (written, normalized_name, _docker_hub_short(normalized_name)):
        candidates.update((spelling, spelling.split("@", 1)[0], _bare_name(spelling)))
    return any(fnmatch.fnmatchcase(c, p) for p in _pattern_forms(patterns) for c in candidates if c)


def _pattern_forms(patterns: Sequence[str]) -> list[str]:
    """Each pattern, plus the normalised spelling of one without wildcards (``docker.io/alpine``)."""
    forms = []
    for pattern in patterns:
        forms.append(pattern)
        if pattern and not any(ch in pattern for ch in "*?["):
            try:
                ref = parse_reference(pattern)
            except InvalidReferenceError:
                continue
            # Not ref.normalized: that adds an implicit ":latest" the pattern did not ask for.
            forms.append(ref.name + (f":{ref.tag}" if ref.tag else "") + (f"@{ref.digest}" if ref.digest else ""))
    return forms


def _bare_name(reference: str) -> str:
    name = reference.split("@", 1)[0]
    # A colon after the last slash is a tag; one before it is a registry port (localhost:5000/app).
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def _docker_hub_short(normalized: str) -> str:
    """``docker.io/library/alpine:3.20`` -> ``alpine:3.20``, ``docker.io/bitnami/redis`` -> ``bitnami/redis``."""
    if not normalized.startswith("docker.io/"):
        return ""
    rest = normalized[len("docker.io/") :]
    if rest.startswith("library/") and "/" not in rest[len("library/") :].split("@", 1)[0]:
        rest = rest[len("library/") :]
    return rest


def parse_build_args(items: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """``--build-arg`` values: ``NAME=VALUE``, or ``NAME`` alone, which takes the value from ``env`` as ``docker build``
    does (and, unset there, sets nothing, so the file's default or "no value" stands)."""
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not name:
            raise ConfigError(f"--build-arg {item!r}: expected NAME=VALUE or NAME (to take it from the environment)")
        if sep:
            values[name] = value
        elif name in env:
            values[name] = env[name]
    return values


def _read_toml(path: str) -> dict[str, Any]:
    # Imported only when there is a file to read (tomllib compiles a dozen regexes and imports datetime).
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised only on 3.9/3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        # The parser's message already says "(at line N, column M)".
        raise ConfigError(f"{_display(path)}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{_display(path)}: invalid TOML: not UTF-8 ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{_display(path)}: cannot read: {exc.strerror or exc}") from None


def _display(path: str) -> str:
    """The path relative to the working directory when it lies below it, so messages stay short."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel


def _quoted(text: str) -> str:
    """A string quoted as TOML (and JSON) would write it, for messages."""
    import json  # only messages need it

    return json.dumps(text)


def _show(value: Any) -> str:
    """A value as TOML would spell it, short enough for a one-line message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"  # dates and times


def _quote_key(key: str) -> str:
    return key if key and all(ch.isalnum() or ch in "-_" for ch in key) else _quoted(key)


def registry_key(name: str) -> str:
    # Same spelling rules as the --registry-mirror/--insecure-registry options, so file and flags merge by key.
    return canonical_registry(name)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {_show(value)}")
    return value


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected an array of strings, got {_show(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{where}[{i}]: expected a non-empty string, got {_show(item)}")
    return list(value)


def _mirror_url(value: Any, where: str) -> str:
    from urllib.parse import urlsplit  # only with mirrors

    parts = urlsplit(value.strip()) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{where}: expected an http:// or https:// URL, got {_show(value)}")
    return str(value).strip().rstrip("/")


def _mirrors(value: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise ConfigError(f'{where}: expected a table like {{ "docker.io" = "https://mirror.gcr.io" }}, '
                          f"got {_show(value)}")
    mirrors: dict[str, list[str]] = {}
    for registry, urls in value.items():
        at = f"{where}.{_quote_key(registry)}"
        if not registry.strip():
            raise ConfigError(f"{at}: the registry name is empty")
        if isinstance(urls, str):
            found = [_mirror_url(urls, at)]
        elif isinstance(urls, list) and urls:
            found = [_mirror_url(url, f"{at}[{i}]") for i, url in enumerate(urls)]
        else:
            raise ConfigError(f"{at}: expected a URL string or a non-empty array of URL strings, got {_show(urls)}")
        # index.docker.io and docker.io are one registry; keep the file's order when both are given.
        mirrors.setdefault(registry_key(registry), []).extend(found)
    return mirrors


def _platform(value: Any, where: str) -> str:
    text = _string(value, where)
    from .manifest import parse_platform  # only when the file sets a platform

    try:
        parse_platform(text)
    except ValueError as exc:
        # parse_platform leaves naming the value to its caller (the option or, here, the key).
        raise ConfigError(f"{where} = {_show(text)}: {exc}") from None
    return text.strip()


def _build_args(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f'{where}: expected a table like {{ VERSION = "1.2" }}, got {_show(value)}')
    for name, arg in value.items():
        if not isinstance(arg, str):
            # Build args are strings to docker; quoting is cheap and avoids guessing how 1.10 or true should print.
            raise ConfigError(f"{where}.{_quote_key(name)}: expected a string (quote it), got {_show(arg)}")
    return dict(value)


def _jobs(value: Any, where: str) -> int:
    # bool is an int subclass in Python; `jobs = true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: expected an integer >= 1, got {_show(value)}")
    return value


def _timeout(value: Any, where: str) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise ConfigError(f"{where}: expected a positive number of seconds, got {_show(value)}")
    return float(value)


def _format(value: Any, where: str) -> str:
    if not isinstance(value, str) or value not in FORMATS:
        raise ConfigError(f"{where}: expected one of {', '.join(map(_quoted, FORMATS))}, got {_show(value)}")
    return value


def _update(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {_show(value)}")
    return value


def _pin_style(value: Any, where: str) -> str:
    styles = ("tag", "full", "digest")  # resolve.PIN_STYLES; resolve imports this module, so not imported here
    if not isinstance(value, str) or value not in styles:
        raise ConfigError(f"{where}: expected one of {', '.join(map(_quoted, styles))}, got {_show(value)}")
    return value


def _kinds(value: Any, where: str) -> list[str]:
    from .kinds import KINDS

    names = _string_list(value, where)
    for i, name in enumerate(names):
        if name not in KINDS:
            raise ConfigError(f"{where}[{i}]: unknown file kind {_show(name)}; expected one of {', '.join(KINDS)}")
    return names


def _insecure(value: Any, where: str) -> list[str]:
    return [registry_key(host) for host in _string_list(value, where)]


# File key -> (FileConfig field, validator). Keys mirror the long options, plural where the option repeats.
_KEYS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "registry-mirrors": ("registry_mirrors", _mirrors),
    "platform": ("platform", _platform),
    "exclude": ("exclude", _string_list),
    "ignore-images": ("ignore_images", _string_list),
    "build-args": ("build_args", _build_args),
    "jobs": ("jobs", _jobs),
    "timeout": ("timeout", _timeout),
    "deadline": ("deadline", _timeout),
    "insecure-registries": ("insecure_registries", _insecure),
    "format": ("format", _format),
    "update": ("update", _update),
    "pin-style": ("pin_style", _pin_style),
    "pin-syntax": ("pin_syntax", _update),
    "kinds": ("kinds", _kinds),
}
KEYS = tuple(_KEYS)


def _validate(table: dict[str, Any], prefix: str, path: str) -> FileConfig:
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise ConfigError(f"{prefix}{_unknown(key)}")
        name, check = _KEYS[key]
        values[name] = check(value, f"{prefix}{key}")
    return FileConfig(path=path, **values)


def _unknown(key: str) -> str:
    # Underscores and the singular option spelling (registry-mirror, build-arg) are the likely slips.
    import difflib  # only for this message

    guess = difflib.get_close_matches(key.replace("_", "-").lower(), KEYS, n=1, cutoff=0.6)
    hint = f"did you mean {_quoted(guess[0])}?" if guess else "valid keys: " + ", ".join(KEYS)
    return f"unknown key {_quoted(key)} ({hint})"
