"""What a new user meets first, through main() and real processes: patches git accepts, paths CI tools accept, one
result per file, quiet that still explains, a closed pipe, configuration that stays inside the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pin_images import files
from pin_images.cli import main

from .conftest import fake_digest
from .support.users import run_as_nobody, shared_tmp

ROOT = Path(__file__).resolve().parent.parent
PY = fake_digest("docker.io/library/python:3.12")
GO = fake_digest("docker.io/library/golang:1.22")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=cwd, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed repository with two services, the layout of examples/."""
    root = tmp_path / "repo"
    write(root / "go-service" / "Dockerfile", "FROM golang:1.22 AS build\nRUN go build\n")
    write(root / "python-app" / "Dockerfile", "FROM python:3.12\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


@pytest.mark.parametrize("where", [".", "go-service"])
def test_dry_run_output_is_a_patch_git_apply_takes(repo, resolver, capsys, monkeypatch, where):
    monkeypatch.chdir(repo / where)
    assert main(["--dry-run", "-q", "." if where == "." else ".."]) == 1
    patch = capsys.readouterr().out
    assert "--- a/go-service/Dockerfile\n+++ b/go-service/Dockerfile\n" in patch
    assert "--- a/python-app/Dockerfile\n+++ b/python-app/Dockerfile\n" in patch
    (repo.parent / "p.diff").write_text(patch)
    check = git(repo, "apply", "--check", str(repo.parent / "p.diff"))
    assert check.returncode == 0, check.stderr
    assert git(repo, "apply", str(repo.parent / "p.diff")).returncode == 0
    assert (repo / "python-app" / "Dockerfile").read_text() == f"FROM python:3.12@{PY}\n"
    assert (repo / "go-service" / "Dockerfile").read_text() == f"FROM golang:1.22@{GO} AS build\nRUN go build\n"


def test_dry_run_of_a_file_in_another_checkout_names_it_from_that_root(repo, resolver, capsys, monkeypatch):
    elsewhere = repo.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["--dry-run", "-q", str(repo / "python-app" / "Dockerfile")]) == 1
    patch = capsys.readouterr().out
    assert patch.startswith("--- a/python-app/Dockerfile\n+++ b/python-app/Dockerfile\n")
    (repo.parent / "p.diff").write_text(patch)
    assert git(repo, "apply", "--check", str(repo.parent / "p.diff")).returncode == 0


def test_dry_run_outside_git_is_relative_to_the_working_directory(tmp_path, resolver, capsys, monkeypatch):
    write(tmp_path / "svc" / "Dockerfile", "FROM python:3.12\n")
    monkeypatch.chdir(tmp_path)
    assert main(["--dry-run", "-q", "./svc"]) == 1
    patch = capsys.readouterr().out
    assert patch.startswith("--- a/svc/Dockerfile\n+++ b/svc/Dockerfile\n")
    (tmp_path / "p.diff").write_text(patch)
    done = subprocess.run(["git", "apply", "--check", "p.diff"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_one_file_named_three_ways_is_one_result(tmp_path, resolver, capsys, monkeypatch):
    write(tmp_path / "real" / "Dockerfile", "FROM python:3.12\n")
    os.symlink("real/Dockerfile", tmp_path / "Dockerfile")
    monkeypatch.chdir(tmp_path)
    assert main(["--dry-run", "Dockerfile", "real/Dockerfile", "./real/Dockerfile"]) == 1
    out = capsys.readouterr().out
    assert out.count("@@") == 2  # one hunk
    assert out.splitlines()[0] == f"real/Dockerfile:1: python:3.12 -> python:3.12@{PY}"
    assert out.splitlines()[-1] == "would pin 1 reference in 1 file"
    assert main(["Dockerfile", "real/Dockerfile", "./real/Dockerfile"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "pinned 1 reference in 1 file"
    assert os.path.islink(tmp_path / "Dockerfile")


def test_an_excluded_named_file_is_skipped_and_the_pattern_normalised(tmp_path, no_network, capsys, monkeypatch):
    write(tmp_path / "legacy" / "Dockerfile", "FROM python:3.12\n")
    write(tmp_path / "app" / "Dockerfile", f"FROM python:3.12@{PY}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["--check", "--exclude", "./legacy", "."]) == 0
    assert capsys.readouterr().out == "all 1 reference pinned (1 file scanned)\n"
    # The exclude wins over the name: pre-commit names every staged file, excludes must still hold.
    assert main(["--check", "--exclude", "./legacy/", "legacy/Dockerfile", "app/Dockerfile"]) == 0
    assert capsys.readouterr().out == "all 1 reference pinned (1 file scanned, 1 named path excluded)\n"
    assert main(["--check", "-v", "--exclude", "legacy", "legacy/Dockerfile"]) == 0
    out, err = capsys.readouterr()
    assert out == "no image references found (0 files scanned, 1 named path excluded)\n"
    assert "pin-images: legacy/Dockerfile: not read, it matches an exclude pattern\n" in err


def test_gitignored_directories_are_not_pinned(repo, resolver, capsys, monkeypatch):
    for d in ("node_modules/pkg", ".venv/lib", "build"):
        write(repo / d / "Dockerfile", "FROM python:3.12\n")
    write(repo / ".gitignore", "node_modules/\n.venv/\nbuild/\n")
    monkeypatch.chdir(repo)
    assert main(["--check", "."]) == 1
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()[:-1]] == [
        "go-service/Dockerfile", "python-app/Dockerfile",
    ]
    assert main(["--check", "build/Dockerfile"]) == 1  # named: read though ignored
    assert capsys.readouterr().out.startswith("build/Dockerfile:1: python:3.12 is not pinned")


def test_pinned_output_never_outgrows_the_read_limit(tmp_path, resolver, capsys):
    line = "FROM python:3.12\n"
    data = line * (files.MAX_FILE_BYTES // len(line))
    assert len(data) <= files.MAX_FILE_BYTES < len(data) + len(line)
    f = write(tmp_path / "Dockerfile", data)
    for args in ([], ["--dry-run"]):
        assert main([*args, str(f)]) == 2
        out, err = capsys.readouterr()
        assert f"{f}: pinned, the file would be" in err and "over the 1 MiB that pin-images reads" in err
        assert "@@" not in out
        assert f.read_text() == data
    # A file that stays under the limit once pinned is written, and --check reads it back.
    small = write(tmp_path / "small" / "Dockerfile", line * 1000)
    assert main([str(small)]) == 1
    assert main(["--check", str(small)]) == 0
    capsys.readouterr()


def _pipe_closed_early(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pin_images", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)  # `| head -c 10`
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    return subprocess.CompletedProcess(args, proc.returncode, b"", err)


@pytest.mark.parametrize("fmt", ["json", "sarif", "text", "github"])
def test_a_closed_stdout_pipe_ends_quietly(tmp_path, fmt):
    # Enough output to fill the pipe's buffer, so the write itself meets the closed pipe.
    write(tmp_path / "Dockerfile", "FROM python:3.12\n" * 3000)
    done = _pipe_closed_early(["--check", "--no-config", "--format", fmt, "Dockerfile"], tmp_path)
    assert done.stderr.decode() == ""
    assert done.returncode == 1  # the check's own result: unpinned references


def test_a_configuration_error_under_github_format_is_an_annotation(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / ".pin-images.toml", "jobs = 0\n")
    assert main(["--check", "--format", "github"]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == ["::error::.pin-images.toml: jobs: expected an integer >= 1, got 0"]
    assert "jobs: expected an integer >= 1" in err


def test_config_and_no_config_together_is_a_usage_error(tmp_path, capsys):
    cfg = write(tmp_path / "c.toml", "jobs = 2\n")
    assert main(["--check", "--config", str(cfg), "--no-config", str(tmp_path)]) == 2
    assert "--config and --no-config cannot be used together" in capsys.readouterr().err


def test_a_configuration_above_the_repository_is_not_applied(repo, no_network, capsys, monkeypatch):
    write(repo.parent / "pyproject.toml", '[tool.pin-images]\nexclude = ["python-app"]\n')
    monkeypatch.chdir(repo / "go-service")
    assert main(["--check", "-v", ".."]) == 1
    out, err = capsys.readouterr()
    assert "python-app/Dockerfile:1:" in out
    assert "pin-images: configuration: none found" in err


def test_verbose_and_json_name_the_configuration_used(repo, no_network, capsys, monkeypatch):
    cfg = write(repo / ".pin-images.toml", 'exclude = ["python-app"]\n')
    monkeypatch.chdir(repo / "go-service")
    assert main(["--check", "-v", ".."]) == 1
    assert f"pin-images: configuration: {cfg}" in capsys.readouterr().err
    assert main(["--check", "--format", "json", ".."]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"] == str(cfg)
    assert [r["file"] for r in doc["references"]] == ["../go-service/Dockerfile"]
    assert main(["--check", "--format", "json", "--no-config", ".."]) == 1
    assert json.loads(capsys.readouterr().out)["config"] is None


def test_build_arg_without_value_comes_from_the_environment(tmp_path, resolver, capsys, monkeypatch):
    f = write(tmp_path / "Dockerfile", "ARG BASE\nFROM $BASE\n")
    monkeypatch.setenv("BASE", "python:3.12")
    assert main(["--dry-run", "--build-arg", "BASE", str(f)]) == 1
    assert f"{f}:2: python:3.12 -> python:3.12@{PY}" in capsys.readouterr().out
    # Unset in the environment: as docker build, the ARG is then not set at all.
    monkeypatch.delenv("BASE")
    assert main(["--check", "--build-arg", "BASE", str(f)]) == 1
    out, err = capsys.readouterr()
    assert "depends on ARG BASE" in out + err and "python" not in out + err
    monkeypatch.setenv("BASE", "")
    assert main(["--check", "--build-arg", "BASE=", str(f)]) in (1, 2)  # an empty value is a value, as in docker


def _check_as_nobody(root: str) -> int:
    os.chdir(root)
    return main(["--check", "--no-config", "sub", "ok"])


def test_an_unreadable_directory_fails_the_check():
    with shared_tmp() as root:
        write(root / "ok" / "Dockerfile", f"FROM python:3.12@{PY}\n")
        write(root / "sub" / "Dockerfile", "FROM python:3.12\n")
        (root / "sub").chmod(0o000)
        rc, out, err = run_as_nobody(_check_as_nobody, str(root))
        assert rc == 2
        assert err == "sub: cannot read directory: Permission denied\n"
        assert "1 error" in out


def test_ignore_image_matches_every_spelling_through_main(tmp_path, no_network, capsys):
    f = write(tmp_path / "Dockerfile", "FROM docker.io/library/alpine:3.20\nFROM index.docker.io/library/alpine\n")
    for pattern in ("alpine", "alpine:*", "docker.io/alpine"):
        assert main(["--check", "--ignore-image", pattern, str(f)]) == 0, pattern
        assert capsys.readouterr().out == "2 references skipped (1 file scanned)\n"
    assert main(["--check", "--ignore-image", "alpine:3.*", str(f)]) == 1  # the second one has no tag
    assert capsys.readouterr().out.startswith(f"{f}:2: index.docker.io/library/alpine is not pinned")


@pytest.mark.parametrize("budget", [0, 32 * 1024 * 1024], ids=["read-while-scanning", "read-ahead"])
def test_files_read_ahead_or_while_scanning_give_the_same_run(tmp_path, resolver, capsys, monkeypatch, budget):
    """Files are read before scanning up to a byte budget, the rest as they are scanned: the same pins either way,
    and a file that cannot be read is reported in its place, the files after it still pinned."""
    from pin_images import run

    monkeypatch.setattr(run, "READ_AHEAD", budget)
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b", "d"):
        write(tmp_path / name / "Dockerfile", "FROM python:3.12\n")
    (tmp_path / "c").mkdir()
    os.mkfifo(tmp_path / "c" / "Dockerfile")  # walked, but not a regular file: an error, never a hang
    assert main(["."]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == ["c/Dockerfile: not a regular file"]
    for name in ("a", "b", "d"):
        assert (tmp_path / name / "Dockerfile").read_text() == f"FROM python:3.12@{PY}\n"
        assert f"{name}/Dockerfile:1: python:3.12 -> python:3.12@{PY}" in out


@pytest.mark.parametrize("to", ["pipe", "file"])
def test_the_command_ends_with_all_its_output_written(tmp_path, to):
    # The command exits without tearing the interpreter down: whatever it printed must still arrive whole.
    write(tmp_path / "Dockerfile", "FROM python:3.12\n" * 3000)
    args = [sys.executable, "-m", "pin_images", "--check", "--no-config", "--format", "json", "Dockerfile"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if to == "pipe":
        done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, timeout=120)
        out = done.stdout
    else:
        with open(tmp_path / "out.json", "wb") as sink:
            done = subprocess.run(args, cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.PIPE, timeout=120)
        out = (tmp_path / "out.json").read_bytes()
    assert done.returncode == 1
    assert len(json.loads(out)["references"]) == 3000


def test_writing_files_does_not_import_concurrent_futures(tmp_path):
    """Files are written by a few plain threads: concurrent.futures (and the logging it imports) costs a pin run
    ~15 ms of CPU for nothing."""
    for name in ("a", "b", "c"):
        write(tmp_path / name / "Dockerfile", "FROM python:3.12\n")
    code = (
        "import sys\n"
        "from pin_images import cli\n"
        "from pin_images.manifest import Resolution\n"
        "class Fake:\n"
        "    def resolve(self, ref, platform=None): return Resolution('sha256:' + '0' * 64, 'application/json')\n"
        "    def prefetch(self, refs): pass\n"
        "    def close(self): pass\n"
        "cli.make_resolver = lambda settings, env: Fake()\n"
        "rc = cli.main(['-q', sys.argv[1]])\n"
        "print(rc, [m for m in ('concurrent.futures', 'logging') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.splitlines()[-1:] == ["1 []"], proc.stderr
    for name in ("a", "b", "c"):
        assert (tmp_path / name / "Dockerfile").read_text() == f"FROM python:3.12@sha256:{'0' * 64}\n"


def test_a_check_of_a_dockerfile_without_json_arrays_does_not_import_json(tmp_path):
    """json is imported for a JSON-form instruction, a JSON or SARIF report, or a configuration message: ~3 ms a
    hook run otherwise spends for nothing."""
    write(tmp_path / "Dockerfile", f"FROM python:3.12@{PY} AS build\nRUN make\nFROM python:3.12@{PY}\n")
    write(tmp_path / "Dockerfile.cmd", f'FROM python:3.12@{PY}\nCMD ["python"]\n')
    code = (
        "import sys\n"
        "from pin_images.cli import main\n"
        "rc = main(['--check', '-q', sys.argv[1]])\n"
        "print(rc, 'json' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name, loaded in (("Dockerfile", "False"), ("Dockerfile.cmd", "True")):
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], capture_output=True, text=True,
                              env=env)
        assert proc.stdout.splitlines()[-1:] == [f"0 {loaded}"], (name, proc.stderr)
