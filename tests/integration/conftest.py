"""Fixtures starting the real distribution registry (``docker-registry``) on 127.0.0.1 in each auth/TLS mode."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
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


# Variables that would let the machine's own docker/podman logins, CA bundles or proxies leak into a CLI run.
_LEAKY_ENV = (
    "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy",
)  # fmt: skip


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``$HOME`` for ``pin_images.cli.main``, with every credential, CA and proxy variable cleared."""
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_home: Path) -> Callable[..., Path]:
    """``docker_config({host: (user, password)})`` writes a ``config.json`` with base64 ``auths`` and points
    ``DOCKER_CONFIG`` at it; returns the file's path."""

    def write(auths: dict[str, tuple[str, str]]) -> Path:
        directory = tmp_path / "docker-config"
        directory.mkdir(exist_ok=True)
        entries = {
            host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode("ascii")}
            for host, (user, password) in auths.items()
        }
        path = directory / "config.json"
        path.write_text(json.dumps({"auths": entries}, indent=2))
        monkeypatch.setenv("DOCKER_CONFIG", str(directory))
        return path

    return write
