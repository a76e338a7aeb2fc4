"""The cache of registries' answers to GET /v2/: a hint that may be missing, damaged or old, and never an error."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pin_images import pingcache
from pin_images.pingcache import Ping

NOW = 1_800_000_000.0
BASIC = Ping(401, 'Basic realm="r"')
BEARER = Ping(401, 'Bearer realm="https://auth.example.com/token",service="reg"')


def test_what_is_saved_is_loaded(tmp_path: Path) -> None:
    path = str(tmp_path / "pin-images" / "challenges.json")
    pingcache.save(path, {"https://a.example.com": BASIC, "http://127.0.0.1:5000": Ping(200, "")}, now=NOW)
    pingcache.save(path, {"https://b.example.com": BEARER}, now=NOW + 1)  # merged, not replaced
    assert pingcache.load(path, now=NOW + 2) == {
        "https://a.example.com": BASIC, "http://127.0.0.1:5000": Ping(200, ""), "https://b.example.com": BEARER,
    }
    assert oct(os.stat(tmp_path / "pin-images").st_mode & 0o777) == "0o700"


def test_old_answers_are_not_acted_on(tmp_path: Path) -> None:
    path = str(tmp_path / "c.json")
    pingcache.save(path, {"https://a.example.com": BASIC}, now=NOW)
    assert pingcache.load(path, now=NOW + pingcache.MAX_AGE + 1) == {}
    assert pingcache.load(path, now=NOW - 60) == {}  # saved "in the future": a clock that jumped


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"version": 2, "endpoints": {}}',
        b'{"version": 1, "endpoints": []}',
        b"[" * 100_000,
        b'{"version": 1, "endpoints": {"https://a": ' + b" " * 300_000 + b"{}}}",
    ],
    ids=["empty", "broken", "binary", "list", "other-version", "bad-endpoints", "deep", "huge"],
)
def test_a_damaged_file_is_ignored_and_replaced(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(content)
    assert pingcache.load(str(path), now=NOW) == {}
    pingcache.save(str(path), {"https://a.example.com": BASIC}, now=NOW)
    assert pingcache.load(str(path), now=NOW) == {"https://a.example.com": BASIC}


def test_entries_a_ping_cannot_answer_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    good = {"status": 401, "www_authenticate": "Basic", "saved": NOW}
    path.write_text(json.dumps({"version": 1, "endpoints": {
        "https://ok": good,
        "https://status": {**good, "status": 302},
        "https://control": {**good, "www_authenticate": 'Basic realm="a\r\nX-Injected: 1"'},
        "https://type": {**good, "www_authenticate": 7},
        "https://saved": {**good, "saved": True},
    }}))  # fmt: skip
    assert pingcache.load(str(path), now=NOW) == {"https://ok": Ping(401, "Basic")}
    pingcache.save(str(path), {"https://new": Ping(401, "Basic realm=\"\u00e9\"")}, now=NOW)  # not ASCII: not kept
    assert set(pingcache.load(str(path), now=NOW)) == {"https://ok"}


def test_only_the_newest_entries_are_kept(tmp_path: Path) -> None:
    path = str(tmp_path / "c.json")
    for i in range(100):
        pingcache.save(path, {f"https://r{i}.example.com": BASIC}, now=NOW + i)
    kept = pingcache.load(path, now=NOW + 100)
    assert len(kept) == 64 and "https://r99.example.com" in kept and "https://r0.example.com" not in kept


def test_a_cache_that_cannot_be_written_is_no_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    pingcache.save(str(blocker / "pin-images" / "challenges.json"), {"https://a": BASIC}, now=NOW)
    assert pingcache.load(str(blocker / "pin-images" / "challenges.json"), now=NOW) == {}
    assert pingcache.load(None) == {}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"XDG_CACHE_HOME": "/x/cache", "HOME": "/home/u"}, "/x/cache/pin-images/challenges.json"),
        ({"HOME": "/home/u"}, "/home/u/.cache/pin-images/challenges.json"),
        ({"XDG_CACHE_HOME": "relative", "HOME": "/home/u"}, "/home/u/.cache/pin-images/challenges.json"),
        ({}, None),
        ({"HOME": ""}, None),
    ],
)
def test_where_the_cache_lives(env: dict[str, str], expected: str | None) -> None:
    assert pingcache.default_path(env) == expected
