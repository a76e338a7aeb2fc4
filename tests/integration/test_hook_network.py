"""The hook's network path against the real registry, counted on the registry's own access log: one ``GET /v2/`` per
registry per run, whatever the scheme and auth, with every reference resolved and written as before."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pin_images.cli import main
from tests.support.hostile import closed_port
from tests.support.registry_server import RegistryServer
from tests.support.seed import seed_image


def _log(server: RegistryServer) -> list[str]:
    return server.log_path.read_text(errors="replace").splitlines()


def _ours(server: RegistryServer, since: int) -> list[str]:
    """Access-log lines of pin-images' requests (by User-Agent) after line ``since``."""
    return [line for line in _log(server)[since:] if '"pin-images/' in line]


def _pin_one_file(server: RegistryServer, tmp_path: Path, auth: object = None, args: tuple[str, ...] = ()) -> list[str]:
    """Pin a Dockerfile with three references to two images (an index and a single manifest) on ``server``;
    returns pin-images' requests as the registry logged them."""
    verify = server.verify
    index = seed_image(server.url, "hook/base", "1.0", kind="oci-index", auth=auth, verify=verify)
    single = seed_image(server.url, "hook/tool", "2.0", kind="docker-manifest", auth=auth, verify=verify)
    base, tool = f"{server.host}/hook/base:1.0", f"{server.host}/hook/tool:2.0"
    text = f"FROM {base} AS build\nCOPY --from={tool} /t /t\n\nFROM {base}\nCOPY --from=build /out /app\n"
    tmp_path.mkdir(parents=True, exist_ok=True)
    f = tmp_path / "Dockerfile"
    f.write_text(text)
    since = len(_log(server))
    assert main([*args, str(f)]) == 1
    pinned = text.replace(base, f"{base}@{index.digest}").replace(tool, f"{tool}@{single.digest}")
    assert f.read_text() == pinned
    return _ours(server, since)


def _trust_ca(server: RegistryServer, home: Path) -> None:
    """Put ``server``'s CA where docker looks for it (``~/.docker/certs.d/<host:port>/ca.crt``)."""
    assert server.ca_path is not None
    certs = home / ".docker" / "certs.d" / server.host
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(server.ca_path.read_bytes())


def _pings(lines: list[str]) -> list[str]:
    return [line for line in lines if '"GET /v2/ ' in line]


def _heads(lines: list[str]) -> list[str]:
    return [line for line in lines if '"HEAD /v2/' in line and "/manifests/" in line]


def test_one_ping_per_run_to_a_tls_registry_on_this_machine(
    tls_registry: RegistryServer, cli_home: Path, tmp_path: Path
) -> None:
    # A registry on a loopback address may speak TLS or not: finding out must not cost a second GET /v2/.
    _trust_ca(tls_registry, cli_home)
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


# ------------------------------------------------------------------------------------------------ remembered pings


def _cache_file() -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "pin-images" / "challenges.json"


def _remember(base: str, status: int, header: str) -> None:
    path = _cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"status": status, "www_authenticate": header, "saved": time.time()}
    path.write_text(json.dumps({"version": 1, "endpoints": {base: entry}}))


def _remembered(base: str) -> dict[str, object]:
    return dict(json.loads(_cache_file().read_text())["endpoints"][base])


def test_the_next_run_sends_no_ping(
    htpasswd_registry: RegistryServer, docker_config: Callable[..., Path], tmp_path: Path
) -> None:
    # GET /v2/ tells public facts (the auth scheme); the first run's answer spares the next run that round trip.
    # (A registry named as plain http; one on this machine whose scheme is guessed is always pinged, see below.)
    assert htpasswd_registry.username and htpasswd_registry.password
    docker_config({htpasswd_registry.host: (htpasswd_registry.username, htpasswd_registry.password)})
    plain = ("--insecure-registry", htpasswd_registry.host)
    first = _pin_one_file(htpasswd_registry, tmp_path / "a", auth=htpasswd_registry.push_auth, args=plain)
    assert len(_pings(first)) == 1, first
    assert _remembered(htpasswd_registry.url)["www_authenticate"] == 'Basic realm="pin-images-test"'
    second = _pin_one_file(htpasswd_registry, tmp_path / "b", auth=htpasswd_registry.push_auth, args=plain)
    assert _pings(second) == [], second
    heads = _heads(second)
    assert len(heads) == 2 and all('" 200 ' in line for line in heads), second


def test_a_remembered_open_registry_that_now_wants_credentials_heals(
    htpasswd_registry: RegistryServer, docker_config: Callable[..., Path], tmp_path: Path
) -> None:
    assert htpasswd_registry.username and htpasswd_registry.password
    docker_config({htpasswd_registry.host: (htpasswd_registry.username, htpasswd_registry.password)})
    _remember(htpasswd_registry.url, 200, "")
    lines = _pin_one_file(htpasswd_registry, tmp_path, auth=htpasswd_registry.push_auth,
                          args=("--insecure-registry", htpasswd_registry.host))
    assert _pings(lines) == [], lines  # the remembered answer was acted on ...
    assert _remembered(htpasswd_registry.url)["status"] == 401  # ... and learned again from the 401


def test_a_remembered_basic_challenge_for_a_token_registry_heals(
    token_registry: RegistryServer, docker_config: Callable[..., Path], tmp_path: Path
) -> None:
    # The registry moved to a token service: the Basic credentials sent first are answered with its Bearer
    # challenge, which the run follows instead of calling the credentials refused.
    assert token_registry.username and token_registry.password
    docker_config({token_registry.host: (token_registry.username, token_registry.password)})
    _remember(token_registry.url, 401, 'Basic realm="old"')
    lines = _pin_one_file(token_registry, tmp_path, auth=token_registry.push_auth,
                          args=("--insecure-registry", token_registry.host))
    assert _pings(lines) == [], lines
    assert str(_remembered(token_registry.url)["www_authenticate"]).startswith("Bearer ")


def test_a_remembered_token_service_that_is_gone_heals(
    token_registry: RegistryServer, docker_config: Callable[..., Path], tmp_path: Path
) -> None:
    assert token_registry.username and token_registry.password
    docker_config({token_registry.host: (token_registry.username, token_registry.password)})
    gone = f'Bearer realm="http://127.0.0.1:{closed_port()}/token",service="old"'
    _remember(token_registry.url, 401, gone)
    lines = _pin_one_file(token_registry, tmp_path, auth=token_registry.push_auth,
                          args=("--insecure-registry", token_registry.host))
    assert len(_pings(lines)) == 1, lines  # asked again once the remembered service failed
    assert _remembered(token_registry.url)["www_authenticate"] != gone


def test_a_damaged_cache_is_no_error(registry: RegistryServer, cli_home: Path, tmp_path: Path) -> None:
    path = _cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00{{ not json")
    lines = _pin_one_file(registry, tmp_path)
    assert len(_pings(lines)) == 1, lines
    assert _remembered(registry.url)["status"] == 200


def test_a_registry_on_this_machine_remembered_as_plain_http_that_now_speaks_tls(
    tls_registry: RegistryServer, cli_home: Path, tmp_path: Path
) -> None:
    # The same port, restarted with TLS: the remembered scheme is only a first guess, never a downgrade.
    _trust_ca(tls_registry, cli_home)
    _remember(f"http://{tls_registry.host}", 200, "")
    lines = _pin_one_file(tls_registry, tmp_path)
    assert len(_heads(lines)) == 2 and all('" 200 ' in line for line in _heads(lines)), lines
    assert _remembered(tls_registry.url)["status"] == 200


def test_a_tls_registry_on_this_machine_is_not_pinged_next_time(
    tls_registry: RegistryServer, cli_home: Path, tmp_path: Path
) -> None:
    _trust_ca(tls_registry, cli_home)
    assert len(_pings(_pin_one_file(tls_registry, tmp_path / "a"))) == 1
    lines = _pin_one_file(tls_registry, tmp_path / "b")
    assert _pings(lines) == [] and len(_heads(lines)) == 2, lines


def test_a_plain_http_registry_on_this_machine_is_pinged_every_run(
    registry: RegistryServer, cli_home: Path, tmp_path: Path
) -> None:
    # Its scheme is a guess (docker tries TLS first): a plain http answer from the cache must not stop it from
    # noticing TLS one day, so its ping is sent, but over plain http first.
    _pin_one_file(registry, tmp_path / "a")
    assert _remembered(registry.url)["status"] == 200
    lines = _pin_one_file(registry, tmp_path / "b")
    assert len(_pings(lines)) == 1 and len(_heads(lines)) == 2, lines
