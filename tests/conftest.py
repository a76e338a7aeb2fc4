"""Shared fixtures: a fake Resolver for CLI tests, so they never touch the network."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator

import pytest
import responses

from pin_images.errors import RegistryError
from pin_images.manifest import OCI_INDEX, Resolution
from tests.support.fake_registry import FakeDNS, FakeTime


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets an empty user cache directory (pin-images remembers registries' auth challenges there),
    outside the tree it scans: one test's registry answers never decide another's requests."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


def fake_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class FakeResolver:
    """Answers every reference with a digest derived from its name and tag, or with a configured error."""

    def __init__(self) -> None:
        self.digests: dict[str, str] = {}
        self.errors: dict[str, RegistryError] = {}
        self.calls: list[tuple[str, str, object, object]] = []
        self.closed = False
        self._lock = threading.Lock()

    def digest_for(self, key: str) -> str:
        return self.digests.get(key) or fake_digest(key)

    def _answer(self, ref, platform, current, kind):
        key = f"{ref.name}:{ref.lookup}"
        with self._lock:
            self.calls.append((kind, key, platform, current))
        if key in self.errors:
            raise self.errors[key]
        return Resolution(digest=self.digest_for(key), media_type=OCI_INDEX)

    def resolve(self, ref, platform=None):
        return self._answer(ref, platform, None, "resolve")

    def resolve_update(self, ref, current, platform=None):
        return self._answer(ref, platform, current, "update")

    def prefetch(self, refs):
        """Nothing to learn ahead: answers are immediate."""

    def close(self):
        self.closed = True


@pytest.fixture
def resolver(monkeypatch):
    """A FakeResolver that pin_images.cli.main uses instead of the real registry client."""
    fake = FakeResolver()
    monkeypatch.setattr("pin_images.cli.make_resolver", lambda settings, env: fake)
    return fake


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if the CLI tries to build a registry client at all."""

    def refuse(settings, env):
        raise AssertionError("the network was used")

    monkeypatch.setattr("pin_images.cli.make_resolver", refuse)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    """Name lookups answered from a table (unknown names get a public address): never a real lookup."""
    fake = FakeDNS()
    monkeypatch.setattr("socket.getaddrinfo", fake)
    return fake


@pytest.fixture
def through_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """`responses` intercepts requests only: the CLI sends through requests, as it does behind a proxy, and opens
    no early connections of its own (they would go to the fake addresses for real)."""
    from pin_images import cli
    from pin_images.requests_wire import RequestsWire

    monkeypatch.setattr(cli, "make_wire", lambda env: RequestsWire())
    monkeypatch.setattr(cli, "make_warmup", lambda settings, env: None)


@pytest.fixture
def rsps(dns: FakeDNS, through_requests: None) -> Iterator[responses.RequestsMock]:
    """A `responses` mock in which any unregistered request fails: unit tests never reach the network."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeTime:
    """A monotonic clock whose sleeps only advance it, recording each wait."""
    return FakeTime()
