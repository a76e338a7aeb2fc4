"""Fixtures starting the real distribution registry (``docker-registry``) on 127.0.0.1 in each auth/TLS mode."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.registry_server import RegistryServer, find_registry_bin

_HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    # pyproject registers the marker; only add it when run with another config (e.g. -c /dev/null).
    if not any(line.split(":")[0].strip() == "integration" for line in config.getini("markers")):
        config.addinivalue_line("markers", "integration: talks to a real distribution registry on 127.0.0.1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def registry_bin() -> str:
    """Path of the registry binary; skips locally, fails on CI (``CI=true``) when it is missing."""
    binary = find_registry_bin()
    if binary is None:
        wanted = os.environ.get("PIN_IMAGES_REGISTRY_BIN") or "/usr/bin/docker-registry"
        message = f"distribution registry binary not found at {wanted} (apt-get install docker-registry)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def _serve(mode: str, binary: str) -> Iterator[RegistryServer]:
    server = RegistryServer(mode, binary=binary)
    with server:
        yield server


@pytest.fixture(scope="session")
def registry(registry_bin: str) -> Iterator[RegistryServer]:
    """Anonymous registry (push and pull without credentials)."""
    yield from _serve("anonymous", registry_bin)


@pytest.fixture(scope="session")
def htpasswd_registry(registry_bin: str) -> Iterator[RegistryServer]:
    """Basic-auth registry; ``.username``/``.password`` are the only valid credentials."""
    yield from _serve("htpasswd", registry_bin)


@pytest.fixture(scope="session")
def token_registry(registry_bin: str) -> Iterator[RegistryServer]:
    """Bearer-token registry; ``.token_server`` issues tokens for ``.username``/``.password``, none anonymously."""
    yield from _serve("token", registry_bin)


@pytest.fixture(scope="session")
def tls_registry(registry_bin: str) -> Iterator[RegistryServer]:
    """Anonymous registry over https with a throw-away CA at ``.ca_path``."""
    yield from _serve("tls", registry_bin)
