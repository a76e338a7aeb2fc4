"""The CLI end to end against the real distribution registry: every media type, mirrors, platforms, --update, auth
modes and TLS, asserting the exit code, the exact bytes written and what was printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from pin_images.cli import main
from tests.support.registry_server import RegistryServer
from tests.support.seed import KINDS, SeededImage, seed_image


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def expand(template: str, digests: dict[str, str]) -> tuple[bytes, bytes]:
    """``template`` marks each reference's end with ``<key>``: (the file as written, the file once pinned)."""
    before, after = template, template
    for key, digest in digests.items():
        before = before.replace(f"<{key}>", "")
        after = after.replace(f"<{key}>", f"@{digest}")
    assert "<" not in before, "a marker in the template has no digest"
    return before.encode(), after.encode()


def reported(err: str, path: Path) -> list[str]:
    """pin-images' stderr lines about ``path``; the token server thread may add a traceback when a client drops a
    kept-alive connection (socketserver prints those to the same stderr)."""
    return [line for line in err.splitlines() if line.startswith(f"{path}:")]


def mirror(server: RegistryServer, registry: str = "docker.io") -> list[str]:
    return ["--registry-mirror", f"{registry}={server.url}"]


@pytest.fixture(scope="module")
def kinds(registry: RegistryServer) -> dict[str, SeededImage]:
    """One image of each media type, in nested repository paths."""
    return {kind: seed_image(registry.url, f"cli/{kind}/team/sub/app", "1.0", kind=kind) for kind in KINDS}


@pytest.fixture(scope="module")
def hub(registry: RegistryServer) -> dict[str, SeededImage]:
    """Images the anonymous registry serves as a mirror of docker.io and ghcr.io."""
    return {
        "python": seed_image(registry.url, "library/python", "3.12", kind="docker-list"),
        "alpine": seed_image(registry.url, "library/alpine", "3.20", kind="oci-manifest"),
        "ghcr": seed_image(registry.url, "owner/x", "1", kind="oci-index"),
    }


# ----------------------------------------------------------------------------------------------- anonymous


@pytest.mark.parametrize("kind", KINDS)
def test_pins_each_media_type_to_the_pushed_manifest_digest(
    registry: RegistryServer, kinds: dict[str, SeededImage], cli_home: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], kind: str,
) -> None:
    image = kinds[kind]
    name = f"{registry.host}/{image.repo}:1.0"
    before, after = expand(f"FROM {name}<d> AS base\nRUN true\n", {"d": image.digest})
    f = write(tmp_path / "Dockerfile", before)

    assert main([str(f)]) == 1
    assert f.read_bytes() == after
    out = capsys.readouterr()
    assert out.out == f"{f}:1: {name} -> {name}@{image.digest}\npinned 1 reference in 1 file\n"
    assert out.err == ""

    # A second run finds nothing to do and does not touch the file.
    assert main([str(f)]) == 0
    assert f.read_bytes() == after
    assert capsys.readouterr().out == "all 1 reference pinned (1 file scanned)\n"


def test_multi_stage_file_through_mirrors_changes_only_the_digests(
    registry: RegistryServer, kinds: dict[str, SeededImage], hub: dict[str, SeededImage], cli_home: Path,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    local = f"{registry.host}/{kinds['docker-manifest'].repo}:1.0"
    template = (
        "\ufeff# syntax=docker/dockerfile:1\r\n"
        f"ARG BASE={local}<local>\r\n"
        "FROM \\\r\n"
        "    python:3.12<python> \\\r\n"
        "    AS build\r\n"
        "COPY --from=ghcr.io/owner/x:1<ghcr> /bin/x /usr/bin/x\r\n"
        "RUN --mount=type=bind,from=library/alpine:3.20<alpine>,target=/mnt \\\r\n"
        "    ls /mnt\r\n"
        "FROM ${BASE}\r\n"
        "COPY --from=build /out /out\r\n"
        "FROM docker.io/library/python:3.12<python2> AS last"  # no newline at the end of the file
    )
    digests = {"local": kinds["docker-manifest"].digest, "python": hub["python"].digest,
               "ghcr": hub["ghcr"].digest, "alpine": hub["alpine"].digest, "python2": hub["python"].digest}
    before, after = expand(template, digests)
    f = write(tmp_path / "Dockerfile", before)

    assert main([str(f), *mirror(registry), *mirror(registry, "ghcr.io")]) == 1
    assert f.read_bytes() == after
    out = capsys.readouterr()
    assert out.err == ""
    # Each reference is reported on the line that gets its digest: the ARG default on line 2 (used on line 9),
    # the continued FROM's image on line 4.
    assert out.out.splitlines() == [
        f"{f}:2: {local} -> {local}@{digests['local']} (ARG BASE, used by FROM on line 9)",
        f"{f}:4: python:3.12 -> python:3.12@{digests['python']}",
        f"{f}:6: ghcr.io/owner/x:1 -> ghcr.io/owner/x:1@{digests['ghcr']}",
        f"{f}:7: library/alpine:3.20 -> library/alpine:3.20@{digests['alpine']}",
        f"{f}:11: docker.io/library/python:3.12 -> docker.io/library/python:3.12@{digests['python']}",
        "pinned 5 references in 1 file",
    ]


def test_json_output_lists_every_reference(
    registry: RegistryServer, hub: dict[str, SeededImage], cli_home: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    f = write(tmp_path / "app" / "Dockerfile", b"FROM python:3.12\nFROM python:3.12\n")
    assert main(["--format", "json", str(tmp_path), *mirror(registry)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["exit_code"], doc["files_changed"], doc["errors"]) == (1, [str(f)], [])
    assert [(r["line"], r["name"], r["status"], r["new_digest"]) for r in doc["references"]] == [
        (1, "docker.io/library/python", "pinned", hub["python"].digest),
        (2, "docker.io/library/python", "pinned", hub["python"].digest),
    ]
    assert f.read_bytes() == f"FROM python:3.12@{hub['python'].digest}\n".encode() * 2


def test_mirrors_are_tried_in_order_and_use_the_mirrors_credentials(
    registry: RegistryServer, htpasswd_registry: RegistryServer, docker_config: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Only the second mirror has the image: the first answers 404 and pin-images moves on, logging in to the second
    # with the credentials stored for the mirror's own host.
    image = seed_image(htpasswd_registry.url, "library/only-in-second", "7", auth=htpasswd_registry.push_auth)
    docker_config({htpasswd_registry.host: (htpasswd_registry.username, htpasswd_registry.password)})
    f = write(tmp_path / "Dockerfile", b"FROM only-in-second:7\n")
    assert main([str(f), *mirror(registry), *mirror(htpasswd_registry)]) == 1
    assert f.read_bytes() == f"FROM only-in-second:7@{image.digest}\n".encode()
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------------------------- platforms


@pytest.mark.parametrize("kind", ["oci-index", "docker-list"])
def test_platform_pins_the_arm64_child(
    registry: RegistryServer, kinds: dict[str, SeededImage], cli_home: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], kind: str,
) -> None:
    image = kinds[kind]
    child = image.children["linux/arm64/v8"]
    assert child != image.digest
    name = f"{registry.host}/{image.repo}:1.0"
    f = write(tmp_path / "Dockerfile", f"FROM {name}\n".encode())
    assert main(["--platform", "linux/arm64", str(f)]) == 1
    assert f.read_bytes() == f"FROM {name}@{child}\n".encode()
    assert capsys.readouterr().err == ""


def test_platform_missing_from_the_index_fails_and_names_it(
    registry: RegistryServer, kinds: dict[str, SeededImage], cli_home: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = kinds["oci-index"]
    name = f"{registry.host}/{image.repo}:1.0"
    f = write(tmp_path / "Dockerfile", f"FROM {name}\n".encode())
    assert main(["--platform", "linux/s390x", str(f)]) == 2
    assert f.read_bytes() == f"FROM {name}\n".encode()
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"{f}:1: {name}: no linux/s390x image for tag 1.0 in {registry.host}/{image.repo} "
        "(available: linux/amd64, linux/arm/v7, linux/arm64/v8)"
    ]


def test_single_platform_image_matches_or_fails(
    registry: RegistryServer, kinds: dict[str, SeededImage], cli_home: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = kinds["oci-manifest"]  # linux/amd64 only
    name = f"{registry.host}/{image.repo}:1.0"
    f = write(tmp_path / "Dockerfile", f"FROM {name}\n".encode())

    assert main(["--platform", "linux/arm64", str(f)]) == 2
    assert f.read_bytes() == f"FROM {name}\n".encode()
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert f"{f}:1: {name}: " in err
    assert "single-platform linux/amd64 image, not linux/arm64" in err

    assert main(["--platform", "linux/amd64", str(f)]) == 1
    assert f.read_bytes() == f"FROM {name}@{image.digest}\n".encode()


# ----------------------------------------------------------------------------------------------- --update


def test_update_follows_a_moved_tag_and_keeps_the_kind_of_pin(
    registry: RegistryServer, cli_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    repo = "cli/update/moving"
    old = seed_image(registry.url, repo, "1", salt="old")
    name = f"{registry.host}/{repo}:1"
    arm = "linux/arm64/v8"
    template = "FROM {name}@{index} AS index\nFROM {name}@{arm} AS arm\n"
    f = write(tmp_path / "Dockerfile", template.format(name=name, index=old.digest, arm=old.children[arm]).encode())
    pinned = f.read_bytes()

    # Nothing moved yet: --update finds both pins current (the arm pin is a child of the current index).
    assert main(["--update", str(f)]) == 0
    assert f.read_bytes() == pinned
    assert capsys.readouterr().out == "all 2 references pinned (1 file scanned)\n"

    new = seed_image(registry.url, repo, "1", salt="new")
    assert new.digest != old.digest and new.children[arm] != old.children[arm]

    assert main(["--check", "--update", str(f)]) == 1
    assert f.read_bytes() == pinned
    assert capsys.readouterr().out.splitlines() == [
        f"{f}:1: {name} is stale: pinned {old.digest}, the tag now points to {new.digest}",
        f"{f}:2: {name} is stale: pinned {old.children[arm]}, the tag now points to {new.children[arm]}",
        "2 stale",
    ]

    assert main(["--update", str(f)]) == 1
    assert f.read_bytes() == template.format(name=name, index=new.digest, arm=new.children[arm]).encode()
    assert capsys.readouterr().out.splitlines() == [
        f"{f}:1: {name}@{old.digest} -> {name}@{new.digest}",
        f"{f}:2: {name}@{old.children[arm]} -> {name}@{new.children[arm]}",
        "updated 2 references in 1 file",
    ]
    assert main(["--check", "--update", str(f)]) == 0


def test_update_of_a_single_manifest_tag(
    registry: RegistryServer, cli_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    repo = "cli/update/single"
    old = seed_image(registry.url, repo, "2", kind="docker-manifest", salt="old")
    new = seed_image(registry.url, repo, "2", kind="docker-manifest", salt="new")
    name = f"{registry.host}/{repo}:2"
    f = write(tmp_path / "Dockerfile", f"FROM {name}@{old.digest}\n".encode())
    assert main(["--update", str(f)]) == 1
    assert f.read_bytes() == f"FROM {name}@{new.digest}\n".encode()
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------------------------- errors


def test_unknown_tag_leaves_its_file_alone_while_others_are_written(
    registry: RegistryServer, kinds: dict[str, SeededImage], cli_home: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = kinds["oci-index"]
    good_name = f"{registry.host}/{good.repo}:1.0"
    bad_name = f"{registry.host}/{good.repo}:9.99"
    bad_text = f"FROM {good_name}\nRUN true\nFROM {bad_name}\n".encode()
    bad = write(tmp_path / "a" / "Dockerfile", bad_text)
    ok = write(tmp_path / "b" / "Dockerfile", f"FROM {good_name}\n".encode())

    assert main([str(bad), str(ok)]) == 2
    assert bad.read_bytes() == bad_text  # a file with any failed reference is not written at all
    assert ok.read_bytes() == f"FROM {good_name}@{good.digest}\n".encode()
    out = capsys.readouterr()
    assert out.err.splitlines() == [f"{bad}:3: {bad_name}: tag 9.99 not found in {registry.host}/{good.repo}"]
    assert f"{ok}:1: {good_name} -> {good_name}@{good.digest}" in out.out


def test_unknown_repository_is_not_found(
    registry: RegistryServer, cli_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"{registry.host}/cli/no/such/repo:1"
    f = write(tmp_path / "Dockerfile", f"FROM {name}\n".encode())
    assert main([str(f)]) == 2
    # A HEAD answer has no body, so distribution's NAME_UNKNOWN reads like any other 404.
    assert capsys.readouterr().err == f"{f}:1: {name}: tag 1 not found in {registry.host}/cli/no/such/repo\n"


# ----------------------------------------------------------------------------------------------- htpasswd


@pytest.fixture(scope="module")
def private(htpasswd_registry: RegistryServer) -> SeededImage:
    return seed_image(htpasswd_registry.url, "cli/private/team/app", "v1", kind="docker-list",
                      auth=htpasswd_registry.push_auth)


def test_basic_auth_with_credentials_from_docker_config(
    htpasswd_registry: RegistryServer, private: SeededImage, docker_config: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    docker_config({htpasswd_registry.host: (htpasswd_registry.username, htpasswd_registry.password)})
    name = f"{htpasswd_registry.host}/{private.repo}:v1"
    f = write(tmp_path / "Dockerfile", f"FROM {name}\n".encode())
    assert main([str(f)]) == 1
    assert f.read_bytes() == f"FROM {name}@{private.digest}\n".encode()
    assert capsys.readouterr().err == ""


def test_basic_auth_wrong_password_names_host_and_source_not_the_secret(
    htpasswd_registry: RegistryServer, private: SeededImage, docker_config: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "not-the-password-4f9c2e"
    config = docker_config({htpasswd_registry.host: (htpasswd_registry.username, wrong)})
    name = f"{htpasswd_registry.host}/{private.repo}:v1"
    f = write(tmp_path / "Dockerfile", f"FROM {name}\n".encode())
    assert main([str(f)]) == 2
    assert f.read_bytes() == f"FROM {name}\n".encode()
    out = capsys.readouterr()
    assert wrong not in out.out + out.err
    (line,) = out.err.splitlines()
    assert line.startswith(f"{f}:1: {name}: {htpasswd_registry.host} requires authentication (HTTP 401)")
    assert f"credentials tried: auths in {config};" in line
    assert f"`docker login {htpasswd_registry.host}`" in line


def test_basic_auth_without_credentials_says_how_to_log_in(
    htpasswd_registry: RegistryServer, private: SeededImage, cli_home: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"{htpasswd_registry.host}/{private.repo}:v1"
    f = write(tmp_path / "Dockerfile", f"FROM {name}\n".encode())
    assert main([str(f)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"{htpasswd_registry.host} requires authentication (HTTP 401) for {private.repo}" in line
    assert "no credentials found" in line
    assert f"docker login {htpasswd_registry.host}" in line


# ----------------------------------------------------------------------------------------------- token


@pytest.fixture(scope="module")
def guarded(token_registry: RegistryServer) -> SeededImage:
    return seed_image(token_registry.url, "cli/token/team/app", "v1", kind="oci-index",
                      auth=token_registry.push_auth)


def test_token_auth_with_credentials_from_docker_config(
    token_registry: RegistryServer, guarded: SeededImage, docker_config: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    docker_config({token_registry.host: (token_registry.username, token_registry.password)})
    name = f"{token_registry.host}/{guarded.repo}:v1"
    f = write(tmp_path / "Dockerfile", f"FROM {name}\n".encode())
    assert main([str(f)]) == 1
    assert f.read_bytes() == f"FROM {name}@{guarded.digest}\n".encode()
    assert capsys.readouterr().err == ""


def test_token_auth_anonymous_pull_when_the_token_server_allows_it(
    token_registry: RegistryServer, guarded: SeededImage, cli_home: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    name = f"{token_registry.host}/{guarded.repo}:v1"
    f = write(tmp_path / "Dockerfile", f"FROM {name}\n".encode())

    assert main([str(f)]) == 2  # anonymous tokens refused: an auth error saying how to log in
    (line,) = reported(capsys.readouterr().err, f)
    assert f"{token_registry.host} requires authentication (HTTP 401)" in line
    assert f"docker login {token_registry.host}" in line

    tokens.allow_anonymous = True
    try:
        assert main([str(f)]) == 1
    finally:
        tokens.allow_anonymous = False
    assert f.read_bytes() == f"FROM {name}@{guarded.digest}\n".encode()


def test_token_auth_wrong_password_is_not_printed(
    token_registry: RegistryServer, guarded: SeededImage, docker_config: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "wrong-token-password-81d0"
    config = docker_config({token_registry.host: (token_registry.username, wrong)})
    name = f"{token_registry.host}/{guarded.repo}:v1"
    f = write(tmp_path / "Dockerfile", f"FROM {name}\n".encode())
    assert main([str(f)]) == 2
    out = capsys.readouterr()
    assert wrong not in out.out + out.err
    (line,) = reported(out.err, f)
    assert token_registry.host in line
    assert f"(token server {token_registry.token_server.host} refused); credentials tried: auths in {config};" in line


# ----------------------------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def secure(tls_registry: RegistryServer) -> SeededImage:
    return seed_image(tls_registry.url, "cli/tls/team/app", "v1", kind="docker-list", verify=tls_registry.verify)


def test_tls_trusted_through_certs_d_in_home(
    tls_registry: RegistryServer, secure: SeededImage, cli_home: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert tls_registry.ca_path is not None
    certs = cli_home / ".docker" / "certs.d" / tls_registry.host
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(tls_registry.ca_path.read_bytes())
    name = f"{tls_registry.host}/{secure.repo}:v1"
    f = write(tmp_path / "Dockerfile", f"FROM {name}\n".encode())
    assert main([str(f)]) == 1  # a loopback registry is tried over https first, as docker does
    assert f.read_bytes() == f"FROM {name}@{secure.digest}\n".encode()
    assert capsys.readouterr().err == ""

    # As an https mirror of docker.io: the CA is looked up by the mirror's host, the file keeps the Hub name.
    mirrored = seed_image(tls_registry.url, "library/tls-mirrored", "1", kind="oci-manifest",
                          verify=tls_registry.verify)
    g = write(tmp_path / "hub" / "Dockerfile", b"FROM tls-mirrored:1\n")
    assert main([str(g), *mirror(tls_registry)]) == 1
    assert g.read_bytes() == f"FROM tls-mirrored:1@{mirrored.digest}\n".encode()


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_tls_trusted_through_a_ca_bundle_variable(
    tls_registry: RegistryServer, secure: SeededImage, cli_home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str,
) -> None:
    monkeypatch.setenv(variable, str(tls_registry.ca_path))
    name = f"{tls_registry.host}/{secure.repo}:v1"
    f = write(tmp_path / "Dockerfile", f"FROM {name}\n".encode())
    assert main([str(f)]) == 1
    assert f.read_bytes() == f"FROM {name}@{secure.digest}\n".encode()
    assert capsys.readouterr().err == ""


def test_tls_untrusted_ca_says_how_to_trust_it(
    tls_registry: RegistryServer, secure: SeededImage, cli_home: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"{tls_registry.host}/{secure.repo}:v1"
    f = write(tmp_path / "Dockerfile", f"FROM {name}\n".encode())
    assert main([str(f)]) == 2
    assert f.read_bytes() == f"FROM {name}\n".encode()
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{f}:1: {name}: TLS certificate verification failed for {tls_registry.host}")
    assert f"certs.d/{tls_registry.host}/ca.crt" in line
    assert "REQUESTS_CA_BUNDLE" in line
