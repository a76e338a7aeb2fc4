"""File selection (and its twin in .pre-commit-hooks.yaml), the directory walk, and atomic replacement."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from pin_images import files
from pin_images.errors import DockerfileError
from pin_images.files import (
    digest_bytes,
    discover,
    display_path,
    is_dockerfile_name,
    is_excluded,
    replace_file,
)
from pin_images.kinds import kind_for_name

from .support.users import NOBODY_UID, is_root, run_as_nobody, shared_tmp

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
        # A pattern is normalised as the path is: `./legacy`, `legacy/` and `legacy` are one pattern.
        ("legacy/Dockerfile", ["./legacy"], True),
        ("legacy/Dockerfile", ["legacy/"], True),
        ("./legacy/x/Dockerfile", [".//legacy/x"], True),
        ("legacyx/Dockerfile", ["./legacy"], False),
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
    found = [os.path.relpath(p, tmp_path) for p in discover([str(tmp_path)], ["c"], only=("dockerfile",)).paths]
    assert found == ["a/Containerfile", "a/x.dockerfile", "b/Dockerfile"]


def test_explicit_file_is_taken_whatever_its_name(tmp_path):
    f = tmp_path / "base.txt"
    f.write_text("FROM x\n")
    assert discover([str(f)], only=("dockerfile",)).paths == [str(f)]


def test_walk_survives_a_symlink_loop(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "Dockerfile").write_text("FROM x\n")
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    assert [os.path.relpath(p, tmp_path) for p in discover([str(tmp_path)]).paths] == ["d/Dockerfile"]


def test_missing_path_is_a_one_line_error(tmp_path):
    found = discover([str(tmp_path / "nope")])
    assert found.paths == []
    [error] = found.errors
    assert isinstance(error, DockerfileError)
    assert "no such file or directory" in str(error)
    assert str(tmp_path / "nope") in str(error)


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


# ---------------------------------------------------------------------------------------------------------------
# Paths as reported, .gitignore, one result per file, unreadable directories
# ---------------------------------------------------------------------------------------------------------------


def touch(root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("FROM x\n")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("./a/Dockerfile", "a/Dockerfile"),
        ("a//b/../Dockerfile", "a/Dockerfile"),
        ("./Dockerfile", "Dockerfile"),
        ("../up/Dockerfile", "../up/Dockerfile"),  # outside the working directory: keeps its ..
        ("/elsewhere/Dockerfile", "/elsewhere/Dockerfile"),
    ],
)
def test_display_path(tmp_path, monkeypatch, given, shown):
    monkeypatch.chdir(tmp_path)
    assert display_path(given) == shown


def test_walk_from_dot_reports_paths_without_dot_slash(tmp_path, monkeypatch):
    touch(tmp_path, "go-service/Dockerfile", "Dockerfile")
    monkeypatch.chdir(tmp_path)
    assert discover(["."]).paths == ["Dockerfile", "go-service/Dockerfile"]
    assert discover(["./go-service/"]).paths == ["go-service/Dockerfile"]
    # An absolute path inside the working directory is shown relative to it.
    assert discover([str(tmp_path / "go-service")]).paths == ["go-service/Dockerfile"]


def test_a_git_work_tree_skips_what_git_ignores(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    touch(repo, "app/Dockerfile", "new/Dockerfile", "node_modules/pkg/Dockerfile", ".venv/lib/Dockerfile",
          "build/Dockerfile", "keep/build/Dockerfile", "tracked-but-ignored/Dockerfile")
    (repo / ".gitignore").write_text("node_modules/\n.venv/\n/build/\ntracked-but-ignored/\n")
    git(repo, "init", "-q")
    git(repo, "add", "-f", "app", "tracked-but-ignored", ".gitignore")
    monkeypatch.chdir(repo)
    # Tracked, untracked but not ignored, and tracked despite an ignore rule (git keeps tracking it) are read.
    assert discover(["."]).paths == [
        "app/Dockerfile", "keep/build/Dockerfile", "new/Dockerfile", "tracked-but-ignored/Dockerfile",
    ]
    # A file named on the command line is read even when git ignores it.
    assert discover(["node_modules/pkg/Dockerfile", "app"]).paths == ["node_modules/pkg/Dockerfile", "app/Dockerfile"]
    # From a subdirectory the same rules hold; paths stay relative to the working directory.
    monkeypatch.chdir(repo / "app")
    assert discover([".."]).paths == [
        "../app/Dockerfile", "../keep/build/Dockerfile", "../new/Dockerfile", "../tracked-but-ignored/Dockerfile",
    ]


def test_a_nested_repository_is_searched_with_its_own_rules(tmp_path, monkeypatch):
    touch(tmp_path, "Dockerfile", "vendor/lib/Dockerfile", "vendor/lib/out/Dockerfile")
    git(tmp_path, "init", "-q")
    git(tmp_path / "vendor" / "lib", "init", "-q")
    (tmp_path / "vendor" / "lib" / ".gitignore").write_text("out/\n")
    monkeypatch.chdir(tmp_path)
    assert discover(["."]).paths == ["Dockerfile", "vendor/lib/Dockerfile"]


def test_a_search_keeps_submodules_and_the_kinds_files_among_many_others(tmp_path, monkeypatch):
    """Entries of no kind are dropped before they are decoded and matched; submodules (gitlinks), nested
    repositories and every kind's file still come through."""
    touch(tmp_path, "Dockerfile", "svc/api.containerfile", "ci/deploy.gitlab-ci.yml", "k8s/app.yaml",
          ".devcontainer/devcontainer.json", "docs/dockerfiles.md", "vendor/sub/Dockerfile", "nested/Dockerfile")
    for i in range(50):
        (tmp_path / "src" / f"module{i}.py").parent.mkdir(exist_ok=True)
        (tmp_path / "src" / f"module{i}.py").write_text("x = 1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path / "vendor" / "sub", "init", "-q")
    git(tmp_path / "vendor" / "sub", "add", "Dockerfile")
    git(tmp_path / "vendor" / "sub", "commit", "-qm", "sub")
    sub_head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path / "vendor" / "sub", capture_output=True,
                              text=True, check=True).stdout.strip()
    git(tmp_path, "update-index", "--add", "--cacheinfo", f"160000,{sub_head},vendor/sub")  # a submodule's entry
    git(tmp_path / "nested", "init", "-q")  # an untracked nested repository
    git(tmp_path, "add", "Dockerfile", "svc", "src")
    monkeypatch.chdir(tmp_path)
    assert discover(["."]).paths == [
        "Dockerfile", ".devcontainer/devcontainer.json", "ci/deploy.gitlab-ci.yml", "k8s/app.yaml",
        "nested/Dockerfile", "svc/api.containerfile", "vendor/sub/Dockerfile",
    ]


def test_without_git_the_walk_reads_everything(tmp_path, monkeypatch):
    touch(tmp_path, "app/Dockerfile", "node_modules/Dockerfile")
    (tmp_path / ".gitignore").write_text("node_modules/\n")
    git(tmp_path, "init", "-q")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin-here"))
    assert discover(["."]).paths == ["app/Dockerfile", "node_modules/Dockerfile"]


def test_outside_git_the_walk_is_unchanged(tmp_path, monkeypatch):
    touch(tmp_path, "node_modules/Dockerfile", "b/Dockerfile")
    (tmp_path / ".gitignore").write_text("node_modules/\n")  # not a repository: .gitignore means nothing
    monkeypatch.chdir(tmp_path)
    assert discover(["."]).paths == ["b/Dockerfile", "node_modules/Dockerfile"]


def test_walked_files_are_chosen_by_kind(tmp_path, monkeypatch):
    touch(tmp_path, "Dockerfile", "notes.txt", "Dockerfile.md")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(files.kinds, "kind_for_name", lambda p: "text" if p.endswith(".txt") else None)
    assert discover(["."]).paths == ["notes.txt"]


def test_one_file_named_three_ways_is_one_result(tmp_path, monkeypatch):
    touch(tmp_path, "real/Dockerfile")
    os.symlink("real/Dockerfile", tmp_path / "Dockerfile.link")
    os.symlink("real", tmp_path / "linkdir")
    monkeypatch.chdir(tmp_path)
    # The symlink comes first, but the name reported is the one that is not a symlink.
    found = discover(["Dockerfile.link", "real/Dockerfile", "./real/Dockerfile", "linkdir/Dockerfile", "."])
    assert (found.paths, found.errors) == (["real/Dockerfile"], [])


def test_a_hard_link_is_the_same_file(tmp_path, monkeypatch):
    touch(tmp_path, "a/Dockerfile")
    (tmp_path / "b").mkdir()
    os.link(tmp_path / "a" / "Dockerfile", tmp_path / "b" / "Dockerfile")
    monkeypatch.chdir(tmp_path)
    assert discover(["."]).paths == ["a/Dockerfile"]


def test_exclude_wins_over_a_named_file_and_is_normalised(tmp_path, monkeypatch):
    touch(tmp_path, "legacy/Dockerfile", "app/Dockerfile")
    monkeypatch.chdir(tmp_path)
    assert discover(["."], ["./legacy"]).paths == ["app/Dockerfile"]
    assert discover(["legacy/Dockerfile", "./app/Dockerfile"], ["./legacy/"]).paths == ["app/Dockerfile"]


def _discover_as_nobody(root: str, paths: list[str]) -> list[list[str]]:
    os.chdir(root)
    found = discover(paths)
    return [found.paths, [str(e) for e in found.errors]]


@pytest.mark.parametrize("in_git", [False, True], ids=["walk", "git"])
def test_an_unreadable_directory_is_an_error(in_git):
    with shared_tmp() as root:
        touch(root, "ok/Dockerfile", "sub/deep/Dockerfile", "ignored/Dockerfile")
        (root / ".gitignore").write_text("ignored/\n")  # proves which search ran
        if in_git:
            git(root, "init", "-q")
            if is_root():  # git refuses a repository that another user owns; make it nobody's, as in real use
                for dirpath, dirnames, filenames in os.walk(root):
                    for name in dirnames + filenames:
                        os.lchown(os.path.join(dirpath, name), NOBODY_UID, -1)
                os.chown(root, NOBODY_UID, -1)
        (root / "sub" / "deep").chmod(0o000)
        (found, errors), _, _ = run_as_nobody(_discover_as_nobody, str(root), ["."])
        assert found == ["ok/Dockerfile"] if in_git else ["ignored/Dockerfile", "ok/Dockerfile"]
        assert errors == ["sub/deep: cannot read directory: Permission denied"]
        # Named directly, the unreadable directory itself is the error.
        (root / "sub").chmod(0o000)
        (found, errors), _, _ = run_as_nobody(_discover_as_nobody, str(root), ["sub", "ok"])
        assert found == ["ok/Dockerfile"]
        assert errors == ["sub: cannot read directory: Permission denied"]


# ---------------------------------------------------------------------------------------------------------------
# What a replace keeps: owner, group, hard links; what it refuses: a file the user may not write, an oversized result
# ---------------------------------------------------------------------------------------------------------------

OLD, NEW = b"FROM x\n", b"FROM x@sha256:" + b"1" * 64 + b"\n"


@pytest.mark.skipif(not is_root(), reason="only root can give a file to another owner")
def test_replace_keeps_owner_and_group(tmp_path):
    f = tmp_path / "Dockerfile"
    f.write_bytes(OLD)
    os.chown(f, NOBODY_UID, 65534)
    f.chmod(0o664)
    replace_file(str(f), NEW, digest_bytes(OLD))
    st = f.stat()
    assert (f.read_bytes(), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (NEW, NOBODY_UID, 65534, 0o664)
    assert os.listdir(tmp_path) == ["Dockerfile"]


def test_replace_keeps_hard_links(tmp_path):
    f = tmp_path / "Dockerfile"
    f.write_bytes(OLD)
    other = tmp_path / "shared.Dockerfile"
    os.link(f, other)
    replace_file(str(f), NEW, digest_bytes(OLD))
    assert f.read_bytes() == other.read_bytes() == NEW
    assert os.path.samefile(f, other) and f.stat().st_nlink == 2
    assert sorted(os.listdir(tmp_path)) == ["Dockerfile", "shared.Dockerfile"]


def test_replace_in_place_still_refuses_a_file_changed_meanwhile(tmp_path):
    f = tmp_path / "Dockerfile"
    f.write_bytes(b"FROM edited\n")
    os.link(f, tmp_path / "other")
    with pytest.raises(DockerfileError, match="changed on disk"):
        replace_file(str(f), NEW, digest_bytes(OLD))
    assert f.read_bytes() == b"FROM edited\n"


def _replace_as_nobody(path: str) -> str:
    try:
        replace_file(path, NEW, digest_bytes(OLD))
    except DockerfileError as exc:
        return str(exc)
    return "written"


def test_replace_refuses_a_read_only_file_in_a_writable_directory():
    with shared_tmp() as root:
        f = root / "Dockerfile"
        f.write_bytes(OLD)
        if is_root():
            os.chown(f, NOBODY_UID, 65534)
        f.chmod(0o444)  # the directory (0o777) is writable: a rename would have gone through
        message, _, _ = run_as_nobody(_replace_as_nobody, str(f))
        assert message == f"{f}: no permission to write this file (it is read-only for you); not changed"
        assert f.read_bytes() == OLD
        assert os.listdir(root) == ["Dockerfile"]


def test_replace_refuses_output_larger_than_what_it_can_read_back(tmp_path):
    old = b"FROM a:1\n" * (files.MAX_FILE_BYTES // 9)
    assert len(old) <= files.MAX_FILE_BYTES
    new = old.replace(b"a:1", b"a:1@sha256:" + b"0" * 64)
    f = tmp_path / "Dockerfile"
    f.write_bytes(old)
    with pytest.raises(DockerfileError, match=r"would be [\d,]+ bytes, over the 1 MiB that pin-images reads"):
        replace_file(str(f), new, digest_bytes(old))
    assert f.read_bytes() == old


def test_discover_finds_every_kind_and_only_the_kinds_asked_for(tmp_path, monkeypatch):
    touch(tmp_path, "Dockerfile", "compose.yaml", "notes.txt")
    monkeypatch.chdir(tmp_path)
    assert discover(["."]).paths == ["Dockerfile", "compose.yaml"]
    assert discover(["."], only=("dockerfile",)).paths == ["Dockerfile"]


def test_replace_keeps_extended_attributes(tmp_path):
    f = tmp_path / "Dockerfile"
    f.write_bytes(OLD)
    try:
        os.setxattr(f, "user.pin-images-test", b"kept")  # POSIX ACLs live in xattrs the same way
    except (AttributeError, OSError) as exc:
        pytest.skip(f"no user extended attributes here: {exc}")
    replace_file(str(f), NEW, digest_bytes(OLD))
    assert f.read_bytes() == NEW
    assert os.getxattr(f, "user.pin-images-test") == b"kept"


def test_read_file_reads_past_a_size_that_understates_the_content(tmp_path, monkeypatch):
    """The read is sized from the stat; a file that grew since (or a procfs file, whose size is 0) is read whole."""
    f = tmp_path / "Dockerfile"
    f.write_bytes(b"FROM a:1\n" * 100)
    real_stat = os.stat

    def stale_stat(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 9, *st[7:10]))

    monkeypatch.setattr(files.os, "stat", stale_stat)
    assert files.read_file(str(f)) == b"FROM a:1\n" * 100


def test_read_file_refuses_a_file_that_grew_past_the_limit_since_the_stat(tmp_path, monkeypatch):
    f = tmp_path / "Dockerfile"
    f.write_bytes(b"#" * (files.MAX_FILE_BYTES + 10))
    real_stat = os.stat

    def stale_stat(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 100, *st[7:10]))

    monkeypatch.setattr(files.os, "stat", stale_stat)
    with pytest.raises(DockerfileError, match="larger than 1 MiB"):
        files.read_file(str(f))
