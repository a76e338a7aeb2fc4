"""Guarantee 5: bad local input through main(): one line on stderr naming the file (and line), exit 2, nothing written.

Each case also checks the bytes on disk and that no temp file is left behind. Credential-source failures go through
the real registry client against a `responses` mock of an https registry that asks for credentials.
"""

from __future__ import annotations

import builtins
import functools
import os
import re
import time

import pytest
import responses

from pin_images import credentials, files
from pin_images.cli import main

from .conftest import fake_digest

PY = fake_digest("docker.io/library/python:3.12")


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def tree(root) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes), symlinks as their target text."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if os.path.islink(full):
                out[rel] = ("-> " + os.readlink(full)).encode()
            elif os.path.isfile(full):
                with open(full, "rb") as f:
                    out[rel] = f.read()
    return out


def one_error_line(err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["--no-config", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


# ---------------------------------------------------------------------------------------------------------------
# Paths and file contents
# ---------------------------------------------------------------------------------------------------------------


def test_missing_path(tmp_path, no_network, capsys):
    missing = tmp_path / "nope" / "Dockerfile"
    rc, _, err = run(capsys, str(missing))
    assert rc == 2
    one_error_line(err, str(missing), "no such file or directory")
    assert tree(tmp_path) == {}


def test_missing_path_does_not_hide_the_other_paths(tmp_path, resolver, capsys):
    good = write(tmp_path / "Dockerfile", b"FROM python:3.12\n")
    rc, _, err = run(capsys, str(tmp_path / "typo"), str(good))
    assert rc == 2
    one_error_line(err, "typo", "no such file or directory")
    assert good.read_bytes() == f"FROM python:3.12@{PY}\n".encode()


def test_directory_without_dockerfiles_is_not_an_error(tmp_path, no_network, capsys):
    write(tmp_path / "src" / "main.py", b"print('FROM python')\n")
    write(tmp_path / "Dockerfile.md", b"FROM python:3.12\n")  # documentation, not a Dockerfile
    before = tree(tmp_path)
    rc, out, err = run(capsys, str(tmp_path))
    assert rc == 0
    assert err == ""
    assert "no image references found (0 files scanned)" in out
    assert tree(tmp_path) == before


def test_unreadable_file(tmp_path, no_network, capsys, monkeypatch):
    f = write(tmp_path / "Dockerfile", b"FROM python:3.12\n")
    real_open = builtins.open

    def deny(path, *args, **kwargs):  # tests run as root, where chmod 000 does not stop a read
        if os.fspath(path) == str(f):
            raise PermissionError(13, "Permission denied", str(f))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(files, "open", deny, raising=False)
    rc, _, err = run(capsys, str(f))
    assert rc == 2
    one_error_line(err, str(f), "cannot read: Permission denied")
    assert f.read_bytes() == b"FROM python:3.12\n"


def test_binary_file(tmp_path, no_network, capsys):
    data = b"FROM python:3.12\n\x00\x01\x02\xff"
    f = write(tmp_path / "Dockerfile", data)
    rc, _, err = run(capsys, str(f))
    assert rc == 2
    one_error_line(err, str(f), "binary file")
    assert tree(tmp_path) == {"Dockerfile": data}


def test_non_utf8_bytes_in_comments_are_preserved(tmp_path, resolver, capsys):
    # (A `#` after an instruction is not a comment in a Dockerfile; only whole lines are.)
    data = b"# caf\xe9 latin-1 \xff\xfe\nFROM \\\r\n  # \x80 inside a continuation\r\n python:3.12\r\n"
    data += b"RUN echo \xc3\x28\n"
    f = write(tmp_path / "Dockerfile", data)
    rc, _, err = run(capsys, str(f))
    assert rc == 1, err
    assert f.read_bytes() == data.replace(b"python:3.12", f"python:3.12@{PY}".encode())
    assert tree(tmp_path).keys() == {"Dockerfile"}


def test_non_utf8_bytes_in_a_reference(tmp_path, resolver, capsys):
    data = b"FROM python:3.12\nFROM caf\xe9:1\n"
    f = write(tmp_path / "Dockerfile", data)
    rc, _, err = run(capsys, str(f))
    assert rc == 2
    one_error_line(err, f"{f}:2:", "not UTF-8")
    assert tree(tmp_path) == {"Dockerfile": data}  # one bad reference keeps the whole file untouched


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\xef\xbb\xbf", b"# only a comment\n", b"   \t\r\n"])
def test_empty_file(tmp_path, no_network, capsys, data):
    f = write(tmp_path / "Dockerfile", data)
    rc, out, err = run(capsys, str(f))
    assert (rc, err) == (0, "")
    assert "no image references found (1 file scanned)" in out
    assert f.read_bytes() == data


@pytest.mark.parametrize(
    ("line", "cause"),
    [
        ("FROM Python:3", "repository name must be lowercase"),
        ("FROM a:b:c", "too many ':'"),
        ("COPY --from=a@sha256:12 / /", "not of the form algorithm:hex"),
        ("RUN --mount=from=x:-y ls", "tag '-y'"),
    ],
)
def test_invalid_reference_names_file_and_line(tmp_path, resolver, capsys, line, cause):
    data = f"FROM python:3.12\n{line}\n".encode()
    f = write(tmp_path / "Dockerfile", data)
    rc, _, err = run(capsys, str(f))
    assert rc == 2
    one_error_line(err, f"{f}:2:", "invalid image reference", cause)
    assert tree(tmp_path) == {"Dockerfile": data}  # the good reference on line 1 is not written either


def test_arg_without_default_is_a_warning_not_an_error(tmp_path, resolver, capsys):
    data = b"ARG BASE\nFROM $BASE\nFROM python:3.12\n"
    f = write(tmp_path / "Dockerfile", data)
    rc, out, err = run(capsys, str(f))
    assert rc == 1  # the other reference was pinned
    one_error_line(err, f"{f}:2:", "warning", "ARG BASE")
    assert f.read_bytes() == data.replace(b"python:3.12", f"python:3.12@{PY}".encode())
    rc, out, err = run(capsys, "--check", str(f))
    assert rc == 1
    assert f"{f}:2: $BASE is not pinned" in err + out
    assert "ARG BASE" in err + out


def test_unterminated_continuation_at_eof_is_accepted(tmp_path, resolver, capsys):
    data = b"FROM \\\n  python:3.12 \\"
    f = write(tmp_path / "Dockerfile", data)
    rc, _, err = run(capsys, str(f))
    assert (rc, err) == (1, "")
    assert f.read_bytes() == f"FROM \\\n  python:3.12@{PY} \\".encode()


def test_unterminated_heredoc(tmp_path, no_network, capsys):
    data = b"FROM python:3.12\nRUN <<EOF\necho hi\nFROM alpine\n"
    f = write(tmp_path / "Dockerfile", data)
    rc, _, err = run(capsys, str(f))
    assert rc == 2
    one_error_line(err, f"{f}:2:", "unterminated heredoc")
    assert tree(tmp_path) == {"Dockerfile": data}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"RUN echo\n", ":1: no build stage in current context"),
        (b"FROM a b\n", ":1: FROM requires either one or three arguments"),
        (b"FROM a AS 1x\n", ":1: invalid name for build stage"),
        (b"FROM a\nNOPE x\n", ":2: unknown instruction: NOPE"),
        (b"# escape=x\nFROM a\n", ":1: invalid escape token"),
        (b'FROM a\nRUN ["a", 1]\n', ":2: when using JSON array syntax"),
        (b"FROM ${X\n", ":1: failed to process"),
    ],
)
def test_parse_errors_name_file_and_line(tmp_path, no_network, capsys, data, message):
    f = write(tmp_path / "Dockerfile", data)
    rc, _, err = run(capsys, str(f))
    assert rc == 2
    one_error_line(err, f"{f}{message}")
    assert f.read_bytes() == data


def test_ten_mib_dockerfile_is_a_fast_clear_error(tmp_path, no_network, capsys):
    data = b"FROM python:3.12\nRUN echo hi\n" * (10 * 1024 * 1024 // 29)
    f = write(tmp_path / "Dockerfile", data)
    started = time.monotonic()
    rc, _, err = run(capsys, str(f))
    elapsed = time.monotonic() - started
    assert rc == 2
    one_error_line(err, str(f), "larger than 1 MiB", "--exclude")
    assert elapsed < 2, elapsed
    assert f.read_bytes() == data


def test_a_large_but_plausible_dockerfile_pins_fast(tmp_path, resolver, capsys):
    """Just under the limit: big heredocs and long RUN lines (how real Dockerfiles get big) pin in well under 2 s."""
    chunk = b"RUN <<EOF\n" + b"echo 'FROM python:3.12 some generated setup line'\n" * 200 + b"EOF\n"
    chunk += b"RUN " + b"apt-get install -y pkg && " * 300 + b"true\nFROM python:3.12 AS s\n"
    head = b"FROM python:3.12\n"
    data = head + chunk * ((files.MAX_FILE_BYTES - len(head)) // len(chunk))
    assert files.MAX_FILE_BYTES - 20_000 < len(data) <= files.MAX_FILE_BYTES
    f = write(tmp_path / "Dockerfile", data)
    started = time.monotonic()
    rc, _, err = run(capsys, "-q", str(f))
    elapsed = time.monotonic() - started
    assert (rc, err) == (1, "")
    assert elapsed < 2, elapsed
    assert f.read_bytes() == data.replace(b"\nFROM python:3.12", f"\nFROM python:3.12@{PY}".encode()).replace(
        b"FROM python:3.12\n", f"FROM python:3.12@{PY}\n".encode(), 1
    )


def test_symlink_loops_in_a_walk(tmp_path, resolver, capsys):
    root = tmp_path / "repo"
    good = write(root / "app" / "Dockerfile", b"FROM python:3.12\n")
    os.symlink("..", root / "app" / "loop")  # a directory loop: not followed
    os.symlink("Dockerfile.b", root / "Dockerfile.a")  # a file loop: named like a Dockerfile, cannot be read
    os.symlink("Dockerfile.a", root / "Dockerfile.b")
    started = time.monotonic()
    rc, _, err = run(capsys, str(root))
    assert time.monotonic() - started < 2
    assert rc == 2
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert all("Too many levels of symbolic links" in line for line in lines)
    assert {line.split(":")[0] for line in lines} == {str(root / "Dockerfile.a"), str(root / "Dockerfile.b")}
    assert good.read_bytes() == f"FROM python:3.12@{PY}\n".encode()  # the readable file is still pinned
    assert sorted(os.listdir(root / "app")) == ["Dockerfile", "loop"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_and_device_named_like_dockerfiles_do_not_hang(tmp_path, no_network, capsys):
    """A FIFO blocked the open forever and /dev/zero read until memory ran out."""
    os.mkfifo(tmp_path / "Dockerfile")
    os.symlink("/dev/zero", tmp_path / "zero.Dockerfile")
    started = time.monotonic()
    rc, _, err = run(capsys, str(tmp_path))
    assert time.monotonic() - started < 2
    assert rc == 2
    lines = err.splitlines()
    assert sorted(lines) == [f"{tmp_path / 'Dockerfile'}: not a regular file",
                             f"{tmp_path / 'zero.Dockerfile'}: not a regular file"]  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Credential sources, through main() and the real registry client
# ---------------------------------------------------------------------------------------------------------------

REGISTRY = "registry.example.com"


@pytest.fixture
def docker_env(tmp_path, monkeypatch, dns, through_requests):
    """An isolated HOME and DOCKER_CONFIG, PATH holding only a bin dir of our helpers, and an https registry that
    answers 401 with a Basic challenge to everything (so the client must ask the keychain)."""
    home = tmp_path / "home"
    config_dir = tmp_path / "docker"
    bin_dir = tmp_path / "bin"
    for d in (home, config_dir, bin_dir):
        d.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    for name in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    # A hanging helper must not cost the default 10 s here.
    monkeypatch.setattr(
        credentials, "default_keychain", functools.partial(credentials.default_keychain, helper_timeout=0.5)
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "HEAD"):
            mock.add(
                method,
                re.compile(rf"https://{re.escape(REGISTRY)}/.*"),
                status=401,
                headers={"WWW-Authenticate": f'Basic realm="{REGISTRY}"'},
            )
        yield config_dir, bin_dir


def helper(bin_dir, name: str, script: str) -> None:
    path = bin_dir / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def dockerfile_for_registry(tmp_path):
    data = f"FROM {REGISTRY}/team/app:1\n".encode()
    return write(tmp_path / "src" / "Dockerfile", data), data


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        (b'{"auths": {', "malformed JSON in {config}"),
        (b'["not", "an", "object"]', "malformed {config}: the top level must be a JSON object"),
        (b'{"credHelpers": []}', "malformed {config}: 'credHelpers' must be a JSON object"),
        (b'{"auths": {"' + REGISTRY.encode() + b'": {"auth": "%%%"}}}', "{config}: 'auth' is not base64"),
        (b"\xff\xfe{}", "{config} is not UTF-8 text"),
    ],
)
def test_malformed_docker_config(tmp_path, docker_env, capsys, config, needle):
    config_dir, _ = docker_env
    (config_dir / "config.json").write_bytes(config)
    f, data = dockerfile_for_registry(tmp_path)
    rc, _, err = run(capsys, str(f))
    assert rc == 2
    one_error_line(err, f"{f}:1:", needle.format(config=config_dir / "config.json"))
    assert f.read_bytes() == data


@pytest.mark.parametrize(
    ("script", "needle"),
    [
        (None, "not found on PATH; install it or remove the entry"),
        ("sleep 30\n", "did not answer within 0.5s for registry.example.com"),
        ("echo 'this is not json'\n", "returned malformed output"),
        ('echo \'{"Username": 1, "Secret": "s3cr3t"}\'\n', "returned malformed output"),
        ("echo boom >&2; exit 3\n", "failed for registry.example.com with exit status 3: boom"),
    ],
    ids=["missing", "hangs", "junk", "wrong-types", "fails"],
)
def test_broken_credential_helper(tmp_path, docker_env, capsys, script, needle):
    config_dir, bin_dir = docker_env
    (config_dir / "config.json").write_text(f'{{"credHelpers": {{"{REGISTRY}": "acme"}}}}')
    if script is not None:
        helper(bin_dir, "acme", script)
    f, data = dockerfile_for_registry(tmp_path)
    started = time.monotonic()
    rc, out, err = run(capsys, str(f))
    assert time.monotonic() - started < 5
    assert rc == 2
    where = f"credential helper docker-credential-acme (credHelpers[{REGISTRY}] in {config_dir / 'config.json'})"
    line = one_error_line(err, f"{f}:1:", where, needle)
    assert "s3cr3t" not in line + out
    assert f.read_bytes() == data
    assert sorted(os.listdir(f.parent)) == ["Dockerfile"]


def test_broken_creds_store_names_the_helper(tmp_path, docker_env, capsys):
    config_dir, bin_dir = docker_env
    (config_dir / "config.json").write_text('{"credsStore": "desktop"}')
    helper(bin_dir, "desktop", "echo '<html>'\n")
    f, data = dockerfile_for_registry(tmp_path)
    rc, _, err = run(capsys, str(f))
    assert rc == 2
    one_error_line(err, f"{f}:1:", "docker-credential-desktop", "malformed output")
    assert f.read_bytes() == data


@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
@pytest.mark.parametrize(
    ("data", "args"),
    [
        (b"# pin-images: ignore\nFROM caf\xe9:1\n", ["-v"]),  # an ignored reference, shown with -v
        (b"ARG X\nFROM $X\xe9\n", ["--format", "github"]),  # a warning annotation on stdout
        (b"FROM x\nBAD\xe9 y\n", []),  # an error naming the bytes
    ],
)
def test_undecodable_bytes_in_output_do_not_crash_a_strict_stdout(tmp_path, data, args, encoding):
    """With a UTF-8 (not C) locale, or an ASCII one, Python's stdout is strict: surrogates used to be a traceback."""
    import subprocess
    import sys

    f = write(tmp_path / "Dockerfile", data)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONIOENCODING": encoding, "PYTHONPATH": root}
    proc = subprocess.run(
        [sys.executable, "-m", "pin_images", "--no-config", *args, str(f)],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    assert proc.returncode in (0, 2)
    assert b"\\udce9" in proc.stdout + proc.stderr
    assert f.read_bytes() == data
