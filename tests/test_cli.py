"""The CLI contract through main(argv): modes, output, exit codes and the bytes left on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from pin_images import __version__
from pin_images.cli import main
from pin_images.errors import AuthError, NotFoundError
from pin_images.manifest import Platform

from .conftest import fake_digest
from .support.hostile import HostileServer, Reply, Seen, manifest, serve_manifest

PY = fake_digest("docker.io/library/python:3.12")
ALPINE = fake_digest("docker.io/library/alpine:3.20")
OLD = "sha256:" + "0" * 64


def write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_pins_in_place_and_reports_each_change(tmp_path, resolver, capsys):
    original = b"FROM python:3.12 AS build\nRUN make\nFROM alpine:3.20\nCOPY --from=build /a /a\n"
    f = write(tmp_path, "Dockerfile", original)
    assert main([str(f)]) == 1
    assert f.read_bytes() == (
        f"FROM python:3.12@{PY} AS build\nRUN make\nFROM alpine:3.20@{ALPINE}\nCOPY --from=build /a /a\n".encode()
    )
    out = capsys.readouterr().out
    assert f"{f}:1: python:3.12 -> python:3.12@{PY}" in out
    assert f"{f}:3: alpine:3.20 -> alpine:3.20@{ALPINE}" in out
    assert "pinned 2 references in 1 file" in out


def test_second_run_changes_nothing_and_keeps_mtime(tmp_path, resolver, capsys):
    f = write(tmp_path, "Dockerfile", b"FROM python:3.12\n")
    assert main([str(f)]) == 1
    pinned = f.read_bytes()
    os.utime(f, (1_000_000, 1_000_000))
    resolver.calls.clear()
    assert main([str(f)]) == 0
    assert f.read_bytes() == pinned
    assert f.stat().st_mtime == 1_000_000
    assert resolver.calls == []  # name@tag@digest is left alone without --update
    assert "all 1 reference pinned" in capsys.readouterr().out


@pytest.mark.parametrize(
    "original",
    [
        b"\xef\xbb\xbfFROM python:3.12\r\n\tRUN x\r\n",  # BOM and CRLF
        b"from python:3.12 as Build\n# comment \xff\xfe not utf-8\n",  # case kept, odd bytes in a comment
        b"FROM \\\n  python:3.12 \\\n  AS b",  # continuation, no newline at EOF
        b"FROM python:3.12\nRUN <<EOF\nFROM ubuntu\nEOF\n",  # heredoc body is not an instruction
    ],
)
def test_only_the_digest_is_inserted(tmp_path, resolver, original):
    f = write(tmp_path, "Dockerfile", original)
    assert main([str(f)]) == 1
    new = f.read_bytes()
    assert new.replace(b"@" + PY.encode(), b"") == original
    assert new.count(PY.encode()) == 1


def test_check_is_offline_and_names_file_and_line(tmp_path, no_network, capsys):
    f = write(tmp_path, "Dockerfile", f"FROM python:3.12@{PY}\nFROM alpine:3.20\n".encode())
    before = f.read_bytes()
    assert main(["--check", str(f)]) == 1
    assert f.read_bytes() == before
    out = capsys.readouterr().out
    assert f"{f}:2: alpine:3.20 is not pinned" in out
    assert ":1:" not in out
    assert "1 reference unpinned" in out


def test_check_passes_when_everything_is_pinned(tmp_path, no_network, capsys):
    f = write(tmp_path, "Dockerfile", f"FROM python:3.12@{PY}\nFROM scratch\nFROM alpine@{ALPINE}\n".encode())
    assert main(["--check", str(f)]) == 0


def test_check_does_not_import_requests_or_google_auth(tmp_path):
    f = write(tmp_path, "Dockerfile", b"FROM python:3.12\n")
    code = (
        "import sys; from pin_images.cli import main; rc = main(['--check', '-q', sys.argv[1]]); "
        "bad = [m for m in ('requests', 'google.auth', 'urllib3') if m in sys.modules]; "
        "assert not bad, bad; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(f)], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr


def test_dry_run_prints_a_diff_and_writes_nothing(tmp_path, resolver, capsys):
    f = write(tmp_path, "Dockerfile", b"FROM python:3.12\n")
    assert main(["--dry-run", str(f)]) == 1
    assert f.read_bytes() == b"FROM python:3.12\n"
    out = capsys.readouterr().out
    assert f"-FROM python:3.12\n+FROM python:3.12@{PY}\n" in out
    assert f"--- a/{f}" in out


def test_update_replaces_a_moved_tag_and_keeps_a_current_one(tmp_path, resolver, capsys):
    f = write(tmp_path, "Dockerfile", f"FROM python:3.12@{OLD}\nFROM alpine:3.20@{ALPINE}\n".encode())
    assert main(["--update", str(f)]) == 1
    assert f.read_bytes() == f"FROM python:3.12@{PY}\nFROM alpine:3.20@{ALPINE}\n".encode()
    assert ("update", "docker.io/library/python:3.12", None, OLD) in resolver.calls
    assert f"{f}:1: python:3.12@{OLD} -> python:3.12@{PY}" in capsys.readouterr().out
    assert main(["--update", str(f)]) == 0


def test_digest_only_pins_are_never_touched(tmp_path, resolver):
    f = write(tmp_path, "Dockerfile", f"FROM python@{OLD}\n".encode())
    assert main(["--update", str(f)]) == 0
    assert resolver.calls == []


def test_check_update_reports_stale_pins_without_writing(tmp_path, resolver, capsys):
    f = write(tmp_path, "Dockerfile", f"FROM python:3.12@{OLD}\nFROM alpine:3.20\n".encode())
    before = f.read_bytes()
    assert main(["--check", "--update", str(f)]) == 1
    assert f.read_bytes() == before
    out = capsys.readouterr().out
    assert f"{f}:1: python:3.12 is stale: pinned {OLD}, the tag now points to {PY}" in out
    assert f"{f}:2: alpine:3.20 is not pinned" in out


def test_a_file_with_a_failed_reference_is_left_untouched_others_written(tmp_path, resolver, capsys):
    resolver.errors["docker.io/library/python:3.99"] = NotFoundError(
        "tag 3.99 not found in docker.io/library/python", "registry-1.docker.io"
    )
    bad = write(tmp_path, "a/Dockerfile", b"FROM alpine:3.20\nFROM python:3.99\n")
    good = write(tmp_path, "b/Dockerfile", b"FROM alpine:3.20\n")
    assert main([str(tmp_path)]) == 2
    assert bad.read_bytes() == b"FROM alpine:3.20\nFROM python:3.99\n"
    assert good.read_bytes() == f"FROM alpine:3.20@{ALPINE}\n".encode()
    err = capsys.readouterr().err
    assert f"{bad}:2: python:3.99: tag 3.99 not found in docker.io/library/python\n" in err
    assert len(err.strip().splitlines()) == 1


def test_the_registry_client_is_closed_when_the_run_ends(tmp_path, resolver):
    # The run builds the client, so the run releases its pooled connections, also after a failed reference.
    resolver.errors["docker.io/library/python:3.99"] = NotFoundError("tag 3.99 not found", "registry-1.docker.io")
    write(tmp_path, "Dockerfile", b"FROM alpine:3.20\nFROM python:3.99\n")
    assert main([str(tmp_path)]) == 2
    assert resolver.closed


def test_each_unique_reference_is_resolved_once(tmp_path, resolver):
    for i in range(5):
        write(tmp_path, f"s{i}/Dockerfile", b"FROM python:3.12\nFROM docker.io/library/python:3.12 AS x\n")
    assert main([str(tmp_path)]) == 1
    assert [c[1] for c in resolver.calls] == ["docker.io/library/python:3.12"]


def test_invalid_reference_is_an_error_naming_file_and_line(tmp_path, resolver, capsys):
    f = write(tmp_path, "Dockerfile", b"FROM alpine:3.20\nFROM Python:3\n")
    assert main([str(f)]) == 2
    assert f.read_bytes() == b"FROM alpine:3.20\nFROM Python:3\n"
    err = capsys.readouterr().err
    assert f"{f}:2: invalid image reference 'Python:3': repository name must be lowercase" in err


def test_single_arg_reference_pins_the_arg_default(tmp_path, resolver):
    f = write(tmp_path, "Dockerfile", b'ARG BASE="python:3.12"\nFROM ${BASE}\nFROM $BASE AS two\n')
    assert main([str(f)]) == 1
    assert f.read_bytes() == f'ARG BASE="python:3.12@{PY}"\nFROM ${{BASE}}\nFROM $BASE AS two\n'.encode()


def test_uses_of_one_arg_default_say_which_instruction_each_is(tmp_path, no_network, capsys):
    # Both references are located on the ARG's line, where the digest goes; each line also names its own FROM.
    f = write(tmp_path, "Dockerfile", b"ARG BASE=python:3.12\n\nFROM ${BASE} AS deps\nRUN true\nFROM $BASE\n")
    assert main(["--check", str(f)]) == 1
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"{f}:1: python:3.12 is not pinned (ARG BASE, used by FROM on line 3)",
        f"{f}:1: python:3.12 is not pinned (ARG BASE, used by FROM on line 5)",
    ]


def test_composed_reference_gets_the_digest_after_the_text(tmp_path, resolver):
    f = write(tmp_path, "Dockerfile", b"ARG V=3.12\nFROM python:${V}\n")
    assert main([str(f)]) == 1
    assert f.read_bytes() == f"ARG V=3.12\nFROM python:${{V}}@{PY}\n".encode()


def test_build_arg_that_overrides_the_default_is_not_pinned(tmp_path, resolver, capsys):
    # 3.12's digest after a file that names 3.11 would make a plain `docker build` silently build 3.12.
    f = write(tmp_path, "Dockerfile", b"ARG V=3.11\nFROM python:${V}\n")
    assert main(["--build-arg", "V=3.12", str(f)]) == 0
    assert f.read_bytes() == b"ARG V=3.11\nFROM python:${V}\n"
    assert "--build-arg V overrides the default" in capsys.readouterr().err


def test_build_arg_gives_an_arg_without_default_its_value(tmp_path, resolver):
    f = write(tmp_path, "Dockerfile", b"ARG V\nFROM python:${V}\n")
    assert main(["--build-arg", "V=3.12", str(f)]) == 1
    assert f.read_bytes() == f"ARG V\nFROM python:${{V}}@{PY}\n".encode()


def test_arg_without_value_is_a_warning_and_fails_check(tmp_path, resolver, capsys):
    f = write(tmp_path, "Dockerfile", b"ARG BASE\nFROM ${BASE}\n")
    assert main([str(f)]) == 0
    assert f.read_bytes() == b"ARG BASE\nFROM ${BASE}\n"
    assert "BASE" in capsys.readouterr().err
    assert main(["--check", str(f)]) == 1


def test_platform_args_are_skipped_and_do_not_fail_check(tmp_path, no_network, capsys):
    f = write(tmp_path, "Dockerfile", b"FROM --platform=$BUILDPLATFORM alpine:3.20@" + ALPINE.encode()
              + b"\nARG TARGETARCH\nFROM ${TARGETARCH}/alpine:3.20\n")
    assert main(["--check", str(f)]) == 0


def test_pragma_skips_the_next_instruction(tmp_path, resolver):
    f = write(tmp_path, "Dockerfile", b"# pin-images: ignore\nFROM python:3.12\nFROM alpine:3.20\n")
    assert main([str(f)]) == 1
    assert f.read_bytes() == f"# pin-images: ignore\nFROM python:3.12\nFROM alpine:3.20@{ALPINE}\n".encode()


def test_platform_option_reaches_the_resolver(tmp_path, resolver):
    f = write(tmp_path, "Dockerfile", b"FROM python:3.12\n")
    assert main(["--platform", "linux/arm64", str(f)]) == 1
    (call,) = resolver.calls
    # As written; the client treats arm64 without a variant as arm64/v8 when it selects an index child.
    assert call[2] == Platform("linux", "arm64")


def test_json_output_is_valid_and_complete(tmp_path, resolver, capsys):
    resolver.errors["docker.io/library/alpine:3.20"] = AuthError("denied", "registry-1.docker.io")
    f = write(tmp_path, "Dockerfile", b"FROM python:3.12\nFROM alpine:3.20\nFROM scratch\n")
    assert main(["--format", "json", "--dry-run", str(f)]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 1
    assert doc["exit_code"] == 2
    refs = {r["line"]: r for r in doc["references"]}
    # alpine failed, so the file is left alone: python is reported as not written, with no digest claimed.
    assert refs[1]["status"] == "unpinned" and refs[1]["new_digest"] is None
    assert refs[1]["message"] == "not written: the file is left alone because alpine:3.20 (line 2) failed"
    assert refs[1]["name"] == "docker.io/library/python"
    assert refs[2]["status"] == "error" and refs[2]["message"] == "denied"
    assert set(refs) == {1, 2}


def test_missing_path_is_an_error_but_other_paths_still_run(tmp_path, resolver, capsys):
    f = write(tmp_path, "Dockerfile", b"FROM python:3.12\n")
    assert main([str(tmp_path / "nope"), str(f)]) == 2
    assert f.read_bytes() == f"FROM python:3.12@{PY}\n".encode()
    assert "nope: no such file or directory" in capsys.readouterr().err


def test_directory_without_dockerfiles_is_fine(tmp_path, no_network, capsys):
    (tmp_path / "README.md").write_text("FROM python\n")
    assert main([str(tmp_path)]) == 0
    assert "no image references found (0 files scanned)" in capsys.readouterr().out


def test_binary_file_is_an_error(tmp_path, no_network, capsys):
    f = write(tmp_path, "Dockerfile", b"FROM x\x00\x01")
    assert main([str(f)]) == 2
    assert str(f) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--registry-mirror", "docker.io"], "--registry-mirror"),
        (["--registry-mirror", "docker.io=ftp://x"], "--registry-mirror"),
        (["--build-arg", "=1"], "--build-arg"),  # NAME alone is valid: the value comes from the environment
        (["--jobs", "0"], "--jobs"),
        (["--platform", "linux"], "--platform"),
        (["-q", "-v"], "-q and -v"),
    ],
)
def test_bad_options_are_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_version(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_quiet_prints_only_errors(tmp_path, resolver, capsys):
    f = write(tmp_path, "Dockerfile", b"FROM python:3.12\n")
    assert main(["-q", str(f)]) == 1
    assert capsys.readouterr().out == ""


def test_python_dash_m_entry_point(tmp_path):
    f = write(tmp_path, "Dockerfile", b"FROM python:3.12\n")
    proc = subprocess.run([sys.executable, "-m", "pin_images", "--check", str(f)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "python:3.12 is not pinned" in proc.stdout


def test_a_tree_with_broken_files_keeps_file_order_and_each_error(tmp_path, resolver, capsys):
    for i in range(12):
        write(tmp_path, f"s{i:02d}/Dockerfile", f"FROM python:3.12\nFROM alpine:3.20 AS a{i}\n".encode())
    write(tmp_path, "s05/bad.Dockerfile", b"FROM alpine:3.20\nFROM Python:3\n")
    write(tmp_path, "s07/broken.Dockerfile", b"FROM alpine:3.20\nRUN <<EOF\nno end\n")
    assert main(["--format", "json", str(tmp_path)]) == 2
    doc = json.loads(capsys.readouterr().out)
    # Errors keep their file and line.
    assert doc["errors"] == [f"{tmp_path}/s07/broken.Dockerfile:2: unterminated heredoc"]
    bad = [r for r in doc["references"] if r["status"] == "error"]
    assert [(r["file"], r["line"]) for r in bad] == [(f"{tmp_path}/s05/bad.Dockerfile", 2)]
    assert len(doc["files_changed"]) == 12
    assert [r["file"] for r in doc["references"]] == sorted(r["file"] for r in doc["references"])
    pinned = f"FROM python:3.12@{PY}\nFROM alpine:3.20@{ALPINE} AS a11\n".encode()
    assert (tmp_path / "s11/Dockerfile").read_bytes() == pinned


def test_ctrl_c_exits_at_once_with_every_file_whole(tmp_path):
    """A real SIGINT to a real process while lookups hang: exit 130 at once, no file half-written, no temp file.

    The first lookups answer, so some files are written before the interrupt; the rest hang until the server stops,
    so a run that waited for queued or in-flight lookups would take many seconds.
    """
    body, digest = manifest("interrupt")
    answered = threading.Semaphore(10)

    def handler(seen: Seen) -> Reply:
        if seen.path == "/v2/":
            return Reply(200, [("Content-Type", "application/json")], b"{}")
        if "/manifests/" in seen.path and answered.acquire(blocking=False):
            return serve_manifest(body, digest)
        return Reply(hang=True)

    with HostileServer(handler) as server:
        originals = {}
        for i in range(30):
            text = f"FROM {server.host}/img{2 * i}:1 AS a\nFROM {server.host}/img{2 * i + 1}:1\n".encode()
            originals[write(tmp_path, f"s{i:02d}/Dockerfile", text)] = text
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "REGISTRY_AUTH"))}
        env.update(HOME=str(tmp_path / "home"), DOCKER_CONFIG=str(tmp_path / "home" / "docker"), NO_COLOR="1")
        proc = subprocess.Popen([sys.executable, "-m", "pin_images", "--jobs", "2", "--timeout", "60", str(tmp_path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            deadline = time.monotonic() + 30
            while server.count("/manifests/") < 12 and time.monotonic() < deadline:  # 10 answered, 2 hanging
                time.sleep(0.02)
            assert server.count("/manifests/") >= 12
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
            elapsed = time.monotonic() - sent
        finally:
            proc.kill()
    assert proc.returncode == 130, err
    assert elapsed < 2, f"took {elapsed:.1f} s to stop"
    assert b"interrupted" in err
    assert server.count("/manifests/") < 20  # queued lookups were never sent
    written = 0
    for path, text in originals.items():
        now = path.read_bytes()
        if now != text:
            written += 1
            assert now == text.replace(b":1 AS", b":1@" + digest.encode() + b" AS").replace(
                b":1\n", b":1@" + digest.encode() + b"\n"
            )
    assert written >= 1
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["Dockerfile"] * 30


def test_a_held_back_file_claims_no_pin_in_any_format(tmp_path, resolver, capsys):
    resolver.errors["docker.io/library/python:3.99"] = NotFoundError("tag 3.99 not found", "registry-1.docker.io")
    f = write(tmp_path, "Dockerfile", b"FROM alpine:3.20\nFROM python:3.99\n")
    assert main([str(f)]) == 2
    out = capsys.readouterr().out
    assert f"{f}:1: alpine:3.20 is not pinned: not written: the file is left alone because python:3.99 (line 2)" in out
    assert "->" not in out and "pinned 1" not in out
    assert main(["--format", "github", str(f)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("::notice") for line in lines)
    assert f.read_bytes() == b"FROM alpine:3.20\nFROM python:3.99\n"


def test_platform_flag_in_the_file_wins_only_under_the_platform_option(tmp_path, resolver):
    f = write(tmp_path, "Dockerfile", b"FROM --platform=linux/arm64 python:3.12\nFROM --platform=$BUILDPLATFORM "
              b"alpine:3.20\nFROM node:20\n")
    assert main(["--dry-run", "--platform", "linux/amd64", str(f)]) == 1
    asked = {key: platform for _, key, platform, _ in resolver.calls}
    assert asked == {
        "docker.io/library/python:3.12": Platform("linux", "arm64"),
        "docker.io/library/alpine:3.20": Platform("linux", "amd64"),  # built from a platform ARG: the option's
        "docker.io/library/node:20": Platform("linux", "amd64"),
    }
    resolver.calls.clear()
    assert main(["--dry-run", str(f)]) == 1
    assert {platform for _, _, platform, _ in resolver.calls} == {None}  # the index digest, right everywhere


def test_an_untagged_reference_is_pinned_with_a_warning_or_with_its_tag(tmp_path, resolver, capsys):
    latest = fake_digest("docker.io/library/python:latest")
    f = write(tmp_path, "Dockerfile", b"FROM python\n")
    assert main([str(f)]) == 1
    assert f.read_bytes() == f"FROM python@{latest}\n".encode()
    err = capsys.readouterr().err
    assert "no tag: pinned latest; write `python:latest` to keep it updatable" in err
    f.write_bytes(b"FROM python\n")
    assert main(["--pin-style", "full", str(f)]) == 1
    assert f.read_bytes() == f"FROM docker.io/library/python:latest@{latest}\n".encode()
    assert "no tag" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("tag", "ARG BASE=python:3.12@{py}\nFROM $BASE\nFROM alpine:3.20@{alpine}\nFROM ${{REG}}/app:1@{app}\n"),
        ("full", "ARG BASE=docker.io/library/python:3.12@{py}\nFROM $BASE\n"
                 "FROM docker.io/library/alpine:3.20@{alpine}\nFROM ${{REG}}/app:1@{app}\n"),
        ("digest", "ARG BASE=docker.io/library/python@{py}\nFROM $BASE\nFROM docker.io/library/alpine@{alpine}\n"
                   "FROM ${{REG}}/app:1@{app}\n"),
    ],
)
def test_pin_styles(tmp_path, resolver, capsys, style, expected):
    app = fake_digest("r.example/app:1")
    f = write(tmp_path, "Dockerfile", b"ARG BASE=python:3.12\nARG REG=r.example\nFROM $BASE\nFROM alpine:3.20\n"
              b"FROM ${REG}/app:1\n")
    assert main(["-v", "--pin-style", style, str(f)]) == 1
    text = expected.format(py=PY, alpine=ALPINE, app=app)
    assert f.read_bytes() == text.replace("\nFROM $BASE", "\nARG REG=r.example\nFROM $BASE").encode()
    out = capsys.readouterr().out
    shown = {"tag": f"alpine:3.20@{ALPINE}", "full": f"docker.io/library/alpine:3.20@{ALPINE}",
             "digest": f"docker.io/library/alpine@{ALPINE}"}[style]
    assert f"{f}:4: alpine:3.20 -> {shown}\n" in out  # what the file now says
    if style != "tag":
        [note] = [line for line in out.splitlines() if line.startswith(f"{f}:5: note: ")]
        assert f"composed from variables, so pinned in tag style, not {style}" in note
    # Every digest-pinned form passes --check, offline.
    assert main(["--check", str(f)]) == 0


def test_pin_style_and_pin_syntax_come_from_the_configuration(tmp_path, resolver, monkeypatch):
    write(tmp_path, ".pin-images.toml", b'pin-style = "digest"\npin-syntax = true\n')
    f = write(tmp_path, "Dockerfile", b"FROM alpine:3.20\n")
    monkeypatch.chdir(tmp_path)
    assert main(["Dockerfile"]) == 1
    assert f.read_bytes() == f"FROM docker.io/library/alpine@{ALPINE}\n".encode()
    f.write_bytes(b"FROM alpine:3.20\n")
    assert main(["--pin-style", "tag", "Dockerfile"]) == 1  # the command line wins
    assert f.read_bytes() == f"FROM alpine:3.20@{ALPINE}\n".encode()


def test_pin_syntax_pins_the_frontend_only_when_asked(tmp_path, resolver, capsys):
    frontend = fake_digest("docker.io/docker/dockerfile:1.7")
    f = write(tmp_path, "Dockerfile", b"# syntax=docker/dockerfile:1.7\nFROM alpine:3.20\n")
    assert main([str(f)]) == 1
    assert f.read_bytes() == f"# syntax=docker/dockerfile:1.7\nFROM alpine:3.20@{ALPINE}\n".encode()
    assert main(["--check", str(f)]) == 0  # off by default: a file that pins everything else passes
    assert main(["--check", "--pin-syntax", str(f)]) == 1
    assert main(["--pin-syntax", "--platform", "linux/arm64", str(f)]) == 1
    assert f.read_bytes() == f"# syntax=docker/dockerfile:1.7@{frontend}\nFROM alpine:3.20@{ALPINE}\n".encode()
    # The frontend runs on whatever machine builds: its index digest, whatever --platform says.
    assert [platform for _, key, platform, _ in resolver.calls if "dockerfile" in key] == [None]


def test_a_reference_whose_default_a_build_arg_replaces_is_not_pinned(tmp_path, resolver, capsys):
    text = b"ARG BASE=python:3.12-slim\nFROM ${BASE}\n"
    f = write(tmp_path, "Dockerfile", text)
    for extra in ([], ["--check"]):
        assert main([*extra, "--build-arg", "BASE=python:3.13", str(f)]) == 0
        assert f.read_bytes() == text
        err = capsys.readouterr().err
        assert f"{f}:2: warning: ${{BASE}} skipped: --build-arg BASE overrides the default" in err
        assert err.rstrip().endswith("; not pinned")
    assert resolver.calls == []


def test_a_composed_reference_pinned_through_an_arg_default_gets_a_note_with_verbose(tmp_path, resolver, capsys):
    f = write(tmp_path, "Dockerfile", b"ARG V=3.12\nFROM python:${V}\n")
    assert main(["-v", str(f)]) == 1
    assert f.read_bytes() == f"ARG V=3.12\nFROM python:${{V}}@{PY}\n".encode()
    out = capsys.readouterr().out
    assert f"{f}:2: note: built from ARG V: a --build-arg that changes it at build time still pulls this digest" in out
    f.write_bytes(b"ARG V=3.12\nFROM python:${V}\n")
    assert main([str(f)]) == 1
    assert "note:" not in capsys.readouterr().out
