"""The hook's network path against the real registry, counted on the registry's own access log: one ``GET /v2/`` per
registry per run, whatever the scheme and auth, with every reference resolved and written as before."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pin_images.cli import main
from tests.support.registry_server import RegistryServer
from tests.support.seed import seed_image


def _log(server: RegistryServer) -> list[str]:
    return server.log_path.read_text(errors="replace").splitlines()


def _ours(server: RegistryServer, since: int) -> list[str]:
    """Access-log lines of pin-images' requests (by User-Agent) after line ``since``."""
    return [line for line in _log(server)[since:] if '"pin-images/' in line]


def _pin_one_file(server: RegistryServer, tmp_path: Path, auth: object = None) -> list[str]:
    """Pin a Dockerfile with three references to two images (an index and a single manifest) on ``server``;
    returns pin-images' requests as the registry logged them."""
    verify = server.verify
    index = seed_image(server.url, "hook/base", "1.0", kind="oci-index", auth=auth, verify=verify)
    single = seed_image(server.url, "hook/tool", "2.0", kind="docker-manifest", auth=auth, verify=verify)
    base, tool = f"{server.host}/hook/base:1.0", f"{server.host}/hook/tool:2.0"
    text = f"FROM {base} AS build\nCOPY --from={tool} /t /t\n\nFROM {base}\nCOPY --from=build /out /app\n"
    f = tmp_path / "Dockerfile"
    f.write_text(text)
    since = len(_log(server))
    assert main([str(f)]) == 1
    pinned = text.replace(base, f"{base}@{index.digest}").replace(tool, f"{tool}@{single.digest}")
    assert f.read_text() == pinned
    return _ours(server, since)


def _pings(lines: list[str]) -> list[str]:
    return [line for line in lines if '"GET /v2/ ' in line]


def _heads(lines: list[str]) -> list[str]:
    return [line for line in lines if '"HEAD /v2/' in line and "/manifests/" in line]


def test_one_ping_per_run_to_a_tls_registry_on_this_machine(
    tls_registry: RegistryServer, cli_home: Path, tmp_path: Path
) -> None:
    # A registry on a loopback address may speak TLS or not: finding out must not cost a second GET /v2/.
    assert tls_registry.ca_path is not None
    certs = cli_home / ".docker" / "certs.d" / tls_registry.host
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(tls_registry.ca_path.read_bytes())
    lines = _pin_one_file(tls_registry, tmp_path)
    assert len(_pings(lines)) == 1, lines
    assert len(_heads(lines)) == 2, lines


def test_one_ping_per_run_to_a_plain_http_registry(registry: RegistryServer, cli_home: Path, tmp_path: Path) -> None:
    lines = _pin_one_file(registry, tmp_path)
    assert len(_pings(lines)) == 1, lines
    assert len(_heads(lines)) == 2, lines


def test_one_ping_per_run_with_basic_auth_from_a_docker_config(
    htpasswd_registry: RegistryServer, docker_config: Callable[..., Path], tmp_path: Path
) -> None:
    assert htpasswd_registry.username and htpasswd_registry.password
    docker_config({htpasswd_registry.host: (htpasswd_registry.username, htpasswd_registry.password)})
    lines = _pin_one_file(htpasswd_registry, tmp_path, auth=htpasswd_registry.push_auth)
    pings = _pings(lines)
    assert len(pings) == 1 and '" 401 ' in pings[0], lines
    heads = _heads(lines)
    # The ping's challenge is known before the first HEAD: each goes out once, with credentials, and succeeds.
    assert len(heads) == 2 and all('" 200 ' in line for line in heads), lines


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_a_proxy_setting_turns_the_early_connections_off(
    registry: RegistryServer, cli_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    # requests would send through the proxy what the early connections would send directly: they are not opened.
    # NO_PROXY exempts this registry, so the normal path reaches it directly and the run still succeeds.
    monkeypatch.setenv(variable, "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    lines = _pin_one_file(registry, tmp_path)
    assert len(_heads(lines)) == 2, lines
