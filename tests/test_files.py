"""File selection (and its twin in .pre-commit-hooks.yaml), the directory walk, and atomic replacement."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
import yaml

from pin_images.errors import DockerfileError
from pin_images.files import digest_bytes, find_dockerfiles, is_dockerfile_name, is_excluded, replace_file
from pin_images.kinds import kind_for_name

ROOT = Path(__file__).resolve().parent.parent

NAMES = [
    ("Dockerfile", True),
    ("Containerfile", True),
    ("Dockerfile.prod", True),
    ("Dockerfile.dev.arm64", True),
    ("Containerfile.ci", True),
    ("api.Dockerfile", True),
    ("x.dockerfile", True),
    ("build.Containerfile", True),
    ("dockerfile", True),
    # Documentation, templates and BuildKit's per-Dockerfile ignore file are not Dockerfiles.
    ("Dockerfile.md", False),
    ("Dockerfile.dockerignore", False),
    ("api.Dockerfile.dockerignore", False),
    (".dockerignore", False),
    ("Dockerfile.j2", False),
    ("Dockerfile.tmpl", False),
    ("Dockerfile.in", False),
    ("README.md", False),
    ("docker-compose.yml", False),
    ("MyDockerfile", False),
    ("Dockerfiles", False),
    ("Dockerfile-old", False),
]


@pytest.mark.parametrize(("name", "expected"), NAMES)
def test_is_dockerfile_name(name, expected):
    assert is_dockerfile_name(name) is expected


def _hooks():
    return {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


@pytest.mark.parametrize("hook_id", ["pin-images", "pin-images-check"])
@pytest.mark.parametrize(("name", "expected"), NAMES)
@pytest.mark.parametrize("directory", ["", "services/api/"])
def test_hook_patterns_match_the_walk(hook_id, name, expected, directory):
    hook = _hooks()[hook_id]
    path = directory + name
    selected = re.search(hook["files"], path) is not None and re.search(hook["exclude"], path) is None
    # The hooks take every file a walk reads: Dockerfiles and the other file kinds (tests/test_kinds.py).
    assert selected is (expected or kind_for_name(path) is not None)


def test_hooks_are_serial_python_hooks():
    hooks = _hooks()
    assert hooks["pin-images"]["entry"] == "pin-images"
    assert hooks["pin-images-check"]["entry"] == "pin-images --check"
    assert all(h["language"] == "python" and h["require_serial"] for h in hooks.values())


@pytest.mark.parametrize(
    ("path", "globs", "expected"),
    [
        ("vendor/x/Dockerfile", ["vendor"], True),
        ("vendor/x/Dockerfile", ["vendor/*"], True),
        ("a/vendor/Dockerfile", ["vendor"], True),
        ("a/b/Dockerfile.test", ["*.test"], True),
        ("a/b/Dockerfile", ["a/c"], False),
        ("./a/b/Dockerfile", ["a/b/Dockerfile"], True),
        ("a/b/Dockerfile", [], False),
    ],
)
def test_is_excluded(path, globs, expected):
    assert is_excluded(path, globs) is expected


def test_walk_finds_dockerfiles_sorted_skips_git_and_excludes(tmp_path):
    for rel in ["b/Dockerfile", "a/Containerfile", "a/x.dockerfile", ".git/Dockerfile", "c/Dockerfile",
                "a/README.md", "a/Dockerfile.md"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("FROM x\n")
    found = [os.path.relpath(p, tmp_path) for p in find_dockerfiles([str(tmp_path)], ["c"])]
    assert found == ["a/Containerfile", "a/x.dockerfile", "b/Dockerfile"]


def test_explicit_file_is_taken_whatever_its_name(tmp_path):
    f = tmp_path / "base.txt"
    f.write_text("FROM x\n")
    assert list(find_dockerfiles([str(f)])) == [str(f)]


def test_walk_survives_a_symlink_loop(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "Dockerfile").write_text("FROM x\n")
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    assert [os.path.relpath(p, tmp_path) for p in find_dockerfiles([str(tmp_path)])] == ["d/Dockerfile"]


def test_missing_path_is_a_one_line_error(tmp_path):
    with pytest.raises(DockerfileError, match="no such file or directory") as info:
        list(find_dockerfiles([str(tmp_path / "nope")]))
    assert str(tmp_path / "nope") in str(info.value)


def test_replace_keeps_mode_and_leaves_no_temp_files(tmp_path):
    f = tmp_path / "Dockerfile"
    f.write_bytes(b"FROM x\r\n")
    f.chmod(0o640)
    replace_file(str(f), b"FROM x@sha256:1\r\n", digest_bytes(b"FROM x\r\n"))
    assert f.read_bytes() == b"FROM x@sha256:1\r\n"
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["Dockerfile"]


def test_replace_writes_through_a_symlink(tmp_path):
    real = tmp_path / "real.Dockerfile"
    real.write_bytes(b"FROM x\n")
    link = tmp_path / "Dockerfile"
    link.symlink_to(real.name)
    replace_file(str(link), b"FROM y\n", digest_bytes(b"FROM x\n"))
    assert link.is_symlink()
    assert real.read_bytes() == b"FROM y\n"


def test_replace_refuses_a_file_changed_since_it_was_read(tmp_path):
    f = tmp_path / "Dockerfile"
    f.write_bytes(b"FROM edited-meanwhile\n")
    with pytest.raises(DockerfileError, match="changed on disk"):
        replace_file(str(f), b"FROM x@sha256:1\n", digest_bytes(b"FROM x\n"))
    assert f.read_bytes() == b"FROM edited-meanwhile\n"
    assert os.listdir(tmp_path) == ["Dockerfile"]


def test_failed_write_leaves_the_original_and_no_temp_file(tmp_path, monkeypatch):
    f = tmp_path / "Dockerfile"
    f.write_bytes(b"FROM x\n")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(DockerfileError, match="No space left on device"):
        replace_file(str(f), b"FROM x@sha256:1\n", digest_bytes(b"FROM x\n"))
    assert f.read_bytes() == b"FROM x\n"
    assert os.listdir(tmp_path) == ["Dockerfile"]
