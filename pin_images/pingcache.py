"""What each registry endpoint answered to ``GET /v2/`` in earlier runs: its status and WWW-Authenticate header.

These are public facts the registry tells every client (no token, no credential), kept in the user's cache
directory so that a warm run skips its ping: one round trip less on a hook's critical path. The file is only a
hint. It may be deleted, damaged or stale at any time: reading it never fails a run, a challenge that changed is
learned again from the next 401 (see auth.Authenticator), and writing it is best effort.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from typing import NamedTuple

FILE_NAME = "challenges.json"
_VERSION = 1
# Enough for any one user's registries; the oldest entries go first.
_MAX_ENTRIES = 64
_MAX_BYTES = 256 * 1024
# Entries this old are not trusted to skip a ping (a registry may have moved to another auth service meanwhile).
MAX_AGE = 7 * 24 * 3600.0


class Ping(NamedTuple):
    """The answer to ``GET /v2/``: what the authenticator needs to know about the endpoint."""

    status: int
    www_authenticate: str


def default_path(env: Mapping[str, str]) -> str | None:
    """``$XDG_CACHE_HOME/pin-images/challenges.json``, else under ``~/.cache``; None without either."""
    base = env.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):  # the XDG spec says to ignore a relative value
        home = env.get("HOME") or ""
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "pin-images", FILE_NAME)


def _usable(value: object) -> bool:
    # Only what a ping can answer, and nothing that could carry control characters into a header parser.
    if not isinstance(value, dict):
        return False
    status, header, saved = value.get("status"), value.get("www_authenticate"), value.get("saved")
    return (
        status in (200, 401)
        and isinstance(header, str)
        and len(header) <= 4096
        and all(0x20 <= ord(ch) < 0x7F for ch in header)
        and isinstance(saved, (int, float))
        and not isinstance(saved, bool)
    )


def _entries(path: str) -> dict[str, dict[str, object]]:
    """The file's valid entries by endpoint base URL; empty if it is missing, too big, or not what we wrote."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
        if len(data) > _MAX_BYTES:
            return {}
        doc = json.loads(data)
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict) or doc.get("version") != _VERSION or not isinstance(doc.get("endpoints"), dict):
        return {}
    return {base: entry for base, entry in doc["endpoints"].items() if isinstance(base, str) and _usable(entry)}


def load(path: str | None, now: float | None = None) -> dict[str, Ping]:
    """The pings recorded at ``path`` that are recent enough to act on, by endpoint base URL."""
    if path is None:
        return {}
    now = time.time() if now is None else now
    found = {}
    for base, entry in _entries(path).items():
        saved = float(entry["saved"])  # type: ignore[arg-type]
        if 0 <= now - saved <= MAX_AGE:
            found[base] = Ping(int(entry["status"]), str(entry["www_authenticate"]))  # type: ignore[call-overload]
    return found


def save(path: str | None, learned: Mapping[str, Ping], now: float | None = None) -> None:
    """Record ``learned`` (answers a registry gave this run) at ``path``, keeping the other entries; never raises."""
    if path is None or not learned:
        return
    now = time.time() if now is None else now
    entries = _entries(path)
    for base, ping in learned.items():  # the file's own entries were checked as they were read
        entry: dict[str, object] = {"status": ping.status, "www_authenticate": ping.www_authenticate, "saved": now}
        if _usable(entry):
            entries[base] = entry
        else:
            entries.pop(base, None)  # an answer we will not keep replaces the old one all the same
    newest = sorted(entries.items(), key=lambda item: float(item[1]["saved"]), reverse=True)  # type: ignore[arg-type]
    doc = {"version": _VERSION, "endpoints": dict(newest[:_MAX_ENTRIES])}
    directory = os.path.dirname(path)
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with open(temp, "w", encoding="ascii") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
        os.replace(temp, path)  # concurrent runs: the last one wins, and a reader sees one whole file or the other
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
