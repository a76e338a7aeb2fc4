"""Requests pin-images sends to a real registry, counted by a proxy in front of it: one request per unique
reference, one challenge per registry, one token per 50 repositories.

Counts are exact: one run resolves each unique reference once, learns a registry's challenge once (one ``GET /v2/``),
asks for every repository's scope in one token request, and ``--check`` without ``--update`` sends nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from pin_images import cli
from pin_images.cli import main
from pin_images.registry import RegistryClient
from tests.support.proxy import LatencyProxy, ProxiedRequest
from tests.support.registry_server import RegistryServer
from tests.support.seed import KINDS, SeededImage, seed_image


# One proxy per module (stopping one takes half a second), its records cleared for every test.
@pytest.fixture(scope="module")
def _proxy(registry: RegistryServer) -> Iterator[LatencyProxy]:
    with LatencyProxy(registry.url) as p:
        yield p


@pytest.fixture(scope="module")
def _token_proxy(token_registry: RegistryServer) -> Iterator[LatencyProxy]:
    with LatencyProxy(token_registry.url) as p:
        yield p


@pytest.fixture
def proxy(_proxy: LatencyProxy, many: list[SeededImage]) -> LatencyProxy:
    _proxy.reset()
    return _proxy


@pytest.fixture
def token_proxy(_token_proxy: LatencyProxy, guarded: list[SeededImage]) -> LatencyProxy:
    _token_proxy.reset()
    return _token_proxy


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> list[RegistryClient]:
    """Every RegistryClient the CLI builds, to compare its own ``stats`` with what the proxy saw."""
    made: list[RegistryClient] = []
    real = cli.make_resolver

    def capture(settings: cli.Settings, env: dict[str, str]) -> RegistryClient:
        client = real(settings, env)
        assert isinstance(client, RegistryClient)
        made.append(client)
        return client

    monkeypatch.setattr(cli, "make_resolver", capture)
    return made


def manifest(method: str) -> Callable[[ProxiedRequest], bool]:
    return lambda r: r.method == method and "/manifests/" in r.path


def kinds_seen(p: LatencyProxy) -> dict[str, int]:
    """Requests by kind: manifest HEAD/GET, ping (GET /v2/), 401 answers, anything else."""
    counts = {"head": 0, "get": 0, "ping": 0, "other": 0, "401": 0}
    for r in p.requests:
        if r.status == 401:
            counts["401"] += 1
        if manifest("HEAD")(r):
            counts["head"] += 1
        elif manifest("GET")(r):
            counts["get"] += 1
        elif r.method == "GET" and r.path == "/v2/":
            counts["ping"] += 1
        else:
            counts["other"] += 1
    return counts


def write_repo(root: Path, files: int, per_file: int, names: list[str]) -> dict[Path, str]:
    """``files`` multi-stage Dockerfiles, each using ``per_file`` of ``names`` with heavy reuse (every name used)."""
    texts: dict[Path, str] = {}
    for i in range(files):
        chosen = [names[(i * 3 + j) % len(names)] for j in range(per_file)]
        lines = [f"FROM {chosen[0]} AS s0"]
        for j, name in enumerate(chosen[1:], 1):
            lines.append(f"COPY --from={name} /a /a{j}" if j % 2 else f"FROM {name} AS s{j}")
        path = root / f"svc{i:02d}" / "Dockerfile"
        path.parent.mkdir(parents=True)
        text = "\n".join(lines) + "\n"
        path.write_text(text)
        texts[path] = text
    used = {name for text in texts.values() for name in names if f" {name} " in text or f"={name} " in text}
    assert used == set(names), "every unique reference must be used at least once"
    return texts


def pinned(text: str, digests: dict[str, str]) -> str:
    for name, digest in digests.items():
        text = text.replace(f" {name} ", f" {name}@{digest} ").replace(f"={name} ", f"={name}@{digest} ")
    return text


# ----------------------------------------------------------------------------------------------- anonymous


@pytest.fixture(scope="module")
def many(registry: RegistryServer) -> list[SeededImage]:
    """12 images (4 repositories x 3 tags, every media type) on the anonymous registry."""
    return [
        seed_image(registry.url, f"counts/anon/repo{r}", f"v{t}", kind=KINDS[(r + t) % len(KINDS)])
        for r in range(4)
        for t in range(3)
    ]


def test_one_head_per_unique_reference_and_no_get(
    proxy: LatencyProxy, many: list[SeededImage], clients: list[RegistryClient], cli_home: Path, tmp_path: Path,
) -> None:
    names = [f"{proxy.host}/{image.repo}:{image.tag}" for image in many]
    texts = write_repo(tmp_path / "repo", files=40, per_file=5, names=names)
    assert sum(text.count(proxy.host) for text in texts.values()) == 200  # 200 uses of 12 references

    assert main(["-q", str(tmp_path / "repo")]) == 1
    digests = {name: image.digest for name, image in zip(names, many)}
    for path, text in texts.items():
        assert path.read_text() == pinned(text, digests)

    # One GET /v2/ learns that the registry needs no auth; then exactly one HEAD per unique reference.
    assert kinds_seen(proxy) == {"head": 12, "get": 0, "ping": 1, "other": 0, "401": 0}
    assert {r.path for r in proxy.requests if r.method == "HEAD"} == {
        f"/v2/{image.repo}/manifests/{image.tag}" for image in many
    }
    (client,) = clients
    assert client.stats.as_dict() == {"manifest_head": 12, "manifest_get": 0, "blob_get": 0, "token": 0, "ping": 1,
                                      "unauthorized": 0, "rate_limited": 0, "retries": 0}


def test_same_reference_in_twenty_files_is_one_head(
    proxy: LatencyProxy, many: list[SeededImage], clients: list[RegistryClient], cli_home: Path, tmp_path: Path,
) -> None:
    # Through a mirror this time: the files say docker.io, the requests go to the proxy.
    image = many[0]
    paths = []
    for i in range(20):
        path = tmp_path / f"d{i}" / "Dockerfile"
        path.parent.mkdir()
        path.write_text(f"FROM {image.repo}:{image.tag}\nRUN true\nFROM docker.io/{image.repo}:{image.tag}\n")
        paths.append(path)

    assert main(["-q", str(tmp_path), "--registry-mirror", f"docker.io={proxy.url}"]) == 1
    for path in paths:
        assert path.read_text() == (
            f"FROM {image.repo}:{image.tag}@{image.digest}\nRUN true\n"
            f"FROM docker.io/{image.repo}:{image.tag}@{image.digest}\n"
        )
    assert kinds_seen(proxy) == {"head": 1, "get": 0, "ping": 1, "other": 0, "401": 0}
    assert clients[0].stats.manifest_head == 1


def test_check_without_update_sends_nothing(
    proxy: LatencyProxy, many: list[SeededImage], clients: list[RegistryClient], cli_home: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = [f"{proxy.host}/{image.repo}:{image.tag}" for image in many]
    texts = write_repo(tmp_path / "unpinned", files=10, per_file=4, names=names)
    digests = {name: image.digest for name, image in zip(names, many)}
    pinned_root = tmp_path / "pinned"
    for path, text in texts.items():
        target = pinned_root / path.relative_to(tmp_path / "unpinned")
        target.parent.mkdir(parents=True)
        target.write_text(pinned(text, digests))

    assert main(["--check", str(tmp_path / "unpinned")]) == 1  # unpinned references fail the check
    assert "40 references unpinned" in capsys.readouterr().out
    assert main(["--check", str(pinned_root)]) == 0
    assert capsys.readouterr().out == "all 40 references pinned (10 files scanned)\n"
    assert proxy.requests == []
    assert clients == []  # the registry client was never even built

    # With --update the check asks the registry again: one HEAD per unique reference, all current.
    assert main(["--check", "--update", str(pinned_root)]) == 0
    assert kinds_seen(proxy) == {"head": 12, "get": 0, "ping": 1, "other": 0, "401": 0}


# ----------------------------------------------------------------------------------------------- token


@pytest.fixture(scope="module")
def guarded(token_registry: RegistryServer) -> list[SeededImage]:
    """8 images (4 repositories x 2 tags) behind token auth."""
    push_token = functools.lru_cache(maxsize=None)(token_registry.push_auth)  # minting costs ~30 ms: once per repo
    return [
        # Single manifests: an index costs 16 pushes, and the media type does not change the counts.
        seed_image(token_registry.url, f"counts/token/repo{r}", f"v{t}", kind=("oci-manifest", "docker-manifest")[t],
                   auth=push_token)
        for r in range(4)
        for t in range(2)
    ]


def test_token_registry_one_401_one_token_one_head_per_reference(
    token_registry: RegistryServer, token_proxy: LatencyProxy, guarded: list[SeededImage],
    clients: list[RegistryClient], docker_config: Callable[..., Path], tmp_path: Path,
) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    docker_config({token_proxy.host: (token_registry.username, token_registry.password)})
    names = [f"{token_proxy.host}/{image.repo}:{image.tag}" for image in guarded]
    texts = write_repo(tmp_path / "repo", files=20, per_file=4, names=names)
    tokens.reset()

    assert main(["-q", str(tmp_path / "repo")]) == 1
    digests = {name: image.digest for name, image in zip(names, guarded)}
    for path, text in texts.items():
        assert path.read_text() == pinned(text, digests)

    # The 401 is the ping's; every HEAD carries the one token that covers all four repositories.
    assert kinds_seen(token_proxy) == {"head": 8, "get": 0, "ping": 1, "other": 0, "401": 1}
    assert all(r.auth_scheme == "Bearer" for r in token_proxy.requests if r.method == "HEAD")
    (request,) = tokens.requests
    assert (request.status, request.username) == (200, token_registry.username)
    assert sorted(request.scopes) == [f"repository:counts/token/repo{r}:pull" for r in range(4)]
    assert clients[0].stats.as_dict() == {"manifest_head": 8, "manifest_get": 0, "blob_get": 0, "token": 1,
                                          "ping": 1, "unauthorized": 1, "rate_limited": 0, "retries": 0}


def test_token_registry_anonymous_bulk_token(
    token_registry: RegistryServer, token_proxy: LatencyProxy, guarded: list[SeededImage], cli_home: Path,
    tmp_path: Path,
) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    names = [f"{token_proxy.host}/{image.repo}:{image.tag}" for image in guarded]
    write_repo(tmp_path / "repo", files=8, per_file=3, names=names)
    tokens.reset()
    tokens.allow_anonymous = True
    try:
        assert main(["-q", str(tmp_path / "repo")]) == 1
    finally:
        tokens.allow_anonymous = False
    assert kinds_seen(token_proxy) == {"head": 8, "get": 0, "ping": 1, "other": 0, "401": 1}
    (request,) = tokens.requests
    assert (request.status, request.had_authorization, len(request.scopes)) == (200, False, 4)


def test_token_lacking_scopes_falls_back_to_one_token_per_repository(
    token_registry: RegistryServer, token_proxy: LatencyProxy, guarded: list[SeededImage],
    clients: list[RegistryClient], docker_config: Callable[..., Path], tmp_path: Path,
) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    docker_config({token_proxy.host: (token_registry.username, token_registry.password)})
    one_per_repo = [image for image in guarded if image.tag == "v0"]
    names = [f"{token_proxy.host}/{image.repo}:{image.tag}" for image in one_per_repo]
    write_repo(tmp_path / "repo", files=4, per_file=2, names=names)
    tokens.reset()
    tokens.max_scopes = 1  # the bulk token covers only the first repository
    try:
        assert main(["-q", str(tmp_path / "repo")]) == 1
    finally:
        tokens.max_scopes = None
    # Bulk token, then for each of the 3 other repositories: HEAD -> 401 -> own token -> HEAD again.
    assert [len(r.scopes) for r in tokens.requests] == [4, 1, 1, 1]
    assert kinds_seen(token_proxy) == {"head": 4 + 3, "get": 0, "ping": 1, "other": 0, "401": 1 + 3}
    assert clients[0].stats.token == 4
