"""Real pre-commit runs of this checkout's hooks against the real registry, reached through the mirror option.

pre-commit installs a hook from a git repository. ``try-repo`` on the checkout itself would see uncommitted edits
but not untracked files, so the session commits a snapshot of the working tree (tracked and untracked files, as git
sees them) once and every run points at that snapshot and commit. ``try-repo`` always builds the hook's virtualenv in
a throw-away store (about 15 s of pip install each time), so it is used twice, for both hooks; the other runs go
through a ``.pre-commit-config.yaml`` naming the same repository and commit, whose environment pre-commit builds once
in the PRE_COMMIT_HOME shared by this whole file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.deps import link_distributions, runtime_requirements
from tests.support.registry_server import RegistryServer
from tests.support.seed import seed_image

ROOT = Path(__file__).resolve().parents[2]
# What the package needs to install; used only when the checkout is not a git work tree.
_MINIMAL = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "pin_images")
# Docker/podman credentials and git state of an outer process must not reach the hook or the temp repos.
_DROP = ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "PRE_COMMIT_HOME", "SKIP", "NO_COLOR")

# Names the hooks must pick up, and names that look like Dockerfiles but are not (documentation, ignore files).
PICKED = ["Dockerfile", "Containerfile", "Dockerfile.prod", "services/api.Dockerfile", "x.dockerfile",
          "deploy/dockerfile", "Containerfile.dev"]  # fmt: skip
IGNORED = ["Dockerfile.md", "Dockerfile.dockerignore", "docs/api.Dockerfile.md", "Dockerfile.j2"]


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT")) and k not in _DROP}
    docker_config = tmp / "docker-config"
    docker_config.mkdir(exist_ok=True)
    env["DOCKER_CONFIG"] = str(docker_config)  # empty: no credentials, no credential helpers
    env["PRE_COMMIT_HOME"] = str(tmp / "pre-commit-home")
    # The hook must reach 127.0.0.1 directly even where pip needs a proxy for PyPI.
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1", "localhost"]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    # Tests never reach the internet. pip may not consult any index; the hook's runtime dependencies come from the
    # interpreter running the tests (a virtualenv's own site-packages, not its base interpreter's), through a
    # directory on PYTHONPATH holding only those distributions, where pip sees them installed. virtualenv seeds
    # setuptools from its bundled wheels (for every Python version) to build the hook without build isolation.
    env["PYTHONPATH"] = str(link_distributions(tmp / "hook-deps", runtime_requirements()))
    env["PIP_NO_INDEX"] = "1"
    env["PIP_NO_BUILD_ISOLATION"] = "0"  # pip reads this inverted: "0" turns build isolation off
    env["VIRTUALENV_SETUPTOOLS"] = "bundle"
    env["VIRTUALENV_NO_DOWNLOAD"] = "1"
    env["VIRTUALENV_NO_PERIODIC_UPDATE"] = "1"
    env["VIRTUALENV_OVERRIDE_APP_DATA"] = str(tmp / "virtualenv-app-data")  # not the user's real cache
    for name in ("VIRTUALENV_SYSTEM_SITE_PACKAGES", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONNOUSERSITE"):
        env.pop(name, None)
    return env


def _snapshot(dest: Path, env: dict[str, str]) -> str:
    """Commit the checkout's working tree into ``dest``; returns the commit."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, env=env, timeout=60,
    )  # fmt: skip
    if listed.returncode == 0:
        names = [n for n in listed.stdout.decode("utf-8", "surrogateescape").split("\0") if n]
    else:
        names = [str(p.relative_to(ROOT)) for top in _MINIMAL for p in [ROOT / top, *(ROOT / top).rglob("*")]]
    dest.mkdir()
    for name in names:
        src = ROOT / name
        if src.is_file() and "__pycache__" not in src.parts:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    _git(dest, "init", "-q", env=env)
    _git(dest, "add", "-A", env=env)
    _git(dest, "-c", "user.name=pin-images tests", "-c", "user.email=tests@pin-images.invalid",
         "-c", "commit.gpgsign=false", "commit", "-q", "-m", "snapshot", env=env)  # fmt: skip
    return _git(dest, "rev-parse", "HEAD", env=env).strip()


@dataclass(frozen=True)
class HookRepo:
    path: Path
    rev: str
    env: dict[str, str]


@dataclass(frozen=True)
class Images:
    python: str
    alpine: str


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> HookRepo:
    tmp = tmp_path_factory.mktemp("precommit")
    env = _clean_env(tmp)
    return HookRepo(tmp / "hook-repo", _snapshot(tmp / "hook-repo", env), env)


@pytest.fixture(scope="session")
def images(registry: RegistryServer) -> Images:
    return Images(
        python=seed_image(registry.url, "library/python", "3.12").digest,
        alpine=seed_image(registry.url, "library/alpine", "3.20", kind="docker-list").digest,
    )


@pytest.fixture
def project(tmp_path: Path, hook_repo: HookRepo, registry: RegistryServer, images: Images) -> Iterator[Path]:
    """An empty git repository whose .pin-images.toml sends docker.io to the test registry."""
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q", env=hook_repo.env)
    _git(repo, "config", "user.name", "pin-images tests", env=hook_repo.env)
    _git(repo, "config", "user.email", "tests@pin-images.invalid", env=hook_repo.env)
    _git(repo, "config", "commit.gpgsign", "false", env=hook_repo.env)
    (repo / ".pin-images.toml").write_text(f'[registry-mirrors]\n"docker.io" = "{registry.url}"\n')
    yield repo


def add(repo: Path, files: dict[str, str], env: dict[str, str]) -> None:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    _git(repo, "add", "-A", env=env)


def pre_commit(repo: Path, hook_repo: HookRepo, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["pre-commit", *args, "--color", "never"],
        cwd=repo, env=hook_repo.env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    done.stdout += done.stderr  # pre-commit prints hook output on stdout; keep stray stderr for messages
    return done


def try_repo(repo: Path, hook_repo: HookRepo, hook: str) -> subprocess.CompletedProcess[str]:
    return pre_commit(repo, hook_repo, "try-repo", str(hook_repo.path), hook, "--ref", hook_repo.rev, "--all-files")


CONFIG = """\
repos:
  - repo: {path}
    rev: {rev}
    hooks:
      - id: pin-images
      - id: pin-images-check
{check_args}"""


def configure(repo: Path, hook_repo: HookRepo, check_args: str = "") -> None:
    text = CONFIG.format(path=hook_repo.path, rev=hook_repo.rev, check_args=check_args)
    add(repo, {".pre-commit-config.yaml": text}, hook_repo.env)


UNPINNED = "FROM python:3.12 AS base\nFROM alpine:3.20\n"


def test_try_repo_both_hooks_pick_up_dockerfile_names(project: Path, hook_repo: HookRepo, images: Images):
    add(project, {name: UNPINNED for name in PICKED + IGNORED}, hook_repo.env)

    pinning = try_repo(project, hook_repo, "pin-images")
    assert pinning.returncode == 1, pinning.stdout
    assert "files were modified by this hook" in pinning.stdout
    assert f"pinned 14 references in {len(PICKED)} files" in pinning.stdout
    pinned = f"FROM python:3.12@{images.python} AS base\nFROM alpine:3.20@{images.alpine}\n"
    for name in PICKED:
        assert (project / name).read_text() == pinned, name
    for name in IGNORED:
        assert (project / name).read_text() == UNPINNED, name

    # The ignored files still hold unpinned references: the check passes only if its patterns skip them too.
    _git(project, "add", "-A", env=hook_repo.env)
    checking = try_repo(project, hook_repo, "pin-images-check")
    assert checking.returncode == 0, checking.stdout
    assert "Passed" in checking.stdout


def test_pin_hook_fails_the_first_run_and_passes_the_second(project: Path, hook_repo: HookRepo, images: Images):
    configure(project, hook_repo)
    add(project, {"Dockerfile": "FROM python:3.12\r\n# keep me\r\nFROM alpine:3.20 AS x\r\n"}, hook_repo.env)

    first = pre_commit(project, hook_repo, "run", "pin-images", "--all-files")
    assert first.returncode == 1, first.stdout
    assert "files were modified by this hook" in first.stdout
    assert "Dockerfile:1: python:3.12 -> python:3.12@" in first.stdout
    assert (project / "Dockerfile").read_bytes() == (
        f"FROM python:3.12@{images.python}\r\n# keep me\r\nFROM alpine:3.20@{images.alpine} AS x\r\n".encode()
    )

    _git(project, "add", "-A", env=hook_repo.env)
    second = pre_commit(project, hook_repo, "run", "pin-images", "--all-files")
    assert second.returncode == 0, second.stdout
    assert "Passed" in second.stdout


def test_check_hook_names_file_and_line_then_passes(project: Path, hook_repo: HookRepo, images: Images):
    configure(project, hook_repo)
    add(project, {"Dockerfile": f"FROM python:3.12@{images.python}\nRUN true\nFROM alpine:3.20\n",
                  "Dockerfile.md": "FROM node:20\n"}, hook_repo.env)  # fmt: skip
    before = (project / "Dockerfile").read_bytes()

    failed = pre_commit(project, hook_repo, "run", "pin-images-check", "--all-files")
    assert failed.returncode == 1, failed.stdout
    assert "Dockerfile:3: alpine:3.20 is not pinned" in failed.stdout
    assert "Dockerfile:1:" not in failed.stdout
    assert "node" not in failed.stdout  # Dockerfile.md is not a Dockerfile
    assert (project / "Dockerfile").read_bytes() == before  # the check never writes

    add(project, {"Dockerfile": f"FROM python:3.12@{images.python}\nRUN true\nFROM alpine:3.20@{images.alpine}\n"},
        hook_repo.env)  # fmt: skip
    passed = pre_commit(project, hook_repo, "run", "pin-images-check", "--all-files")
    assert passed.returncode == 0, passed.stdout
    assert "Passed" in passed.stdout


def test_both_hooks_with_stale_detection_configured_in_pyproject(
    project: Path, hook_repo: HookRepo, registry: RegistryServer, images: Images
):
    # Configured in pyproject.toml this time; the fixture's .pin-images.toml would win, so it goes.
    (project / ".pin-images.toml").unlink()
    configure(project, hook_repo, check_args="        args: [--update]\n")
    old = seed_image(registry.url, "library/busybox", "1.36", salt="old").digest
    add(
        project,
        {
            "pyproject.toml": f'[tool.pin-images]\nregistry-mirrors = {{ "docker.io" = "{registry.url}" }}\n',
            "app/Dockerfile": "FROM busybox:1.36\nCOPY --from=python:3.12 /usr/local/bin/python3 /py\n",
        },
        hook_repo.env,
    )

    first = pre_commit(project, hook_repo, "run", "--all-files")
    assert first.returncode == 1, first.stdout
    assert (project / "app/Dockerfile").read_text() == (
        f"FROM busybox:1.36@{old}\nCOPY --from=python:3.12@{images.python} /usr/local/bin/python3 /py\n"
    )
    _git(project, "add", "-A", env=hook_repo.env)
    second = pre_commit(project, hook_repo, "run", "--all-files")
    assert second.returncode == 0, second.stdout

    # The tag moves: the pin hook leaves tag@digest alone, the check with --update reports the pin as stale.
    new = seed_image(registry.url, "library/busybox", "1.36", salt="new").digest
    assert new != old
    stale = pre_commit(project, hook_repo, "run", "--all-files")
    assert stale.returncode == 1, stale.stdout
    assert f"app/Dockerfile:1: busybox:1.36 is stale: pinned {old}, the tag now points to {new}" in stale.stdout
    assert (project / "app/Dockerfile").read_text().startswith(f"FROM busybox:1.36@{old}\n")


def test_hooks_take_compose_kubernetes_and_workflow_files(project: Path, hook_repo: HookRepo, images: Images):
    # pre-commit hands the hooks every YAML file: each is read as its name or content says, never as a Dockerfile.
    configure(project, hook_repo)
    add(project, {
        "docker-compose.yml": "services:\n  web:\n    image: python:3.12   # app\n",
        "deploy/pod.yaml": "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: a, image: 'alpine:3.20'}]\n",
        ".github/workflows/ci.yml": "on: push\njobs:\n  t:\n    container: alpine:3.20\n",
        "config.yaml": "image: python:3.12\n",  # no kind: left alone
    }, hook_repo.env)  # fmt: skip

    first = pre_commit(project, hook_repo, "run", "pin-images", "--all-files")
    assert first.returncode == 1, first.stdout
    assert "unknown instruction" not in first.stdout
    assert (project / "docker-compose.yml").read_text() == (
        f"services:\n  web:\n    image: python:3.12@{images.python}   # app\n"
    )
    assert f"image: 'alpine:3.20@{images.alpine}'" in (project / "deploy/pod.yaml").read_text()
    assert f"container: alpine:3.20@{images.alpine}\n" in (project / ".github/workflows/ci.yml").read_text()
    assert (project / "config.yaml").read_text() == "image: python:3.12\n"

    _git(project, "add", "-A", env=hook_repo.env)
    checking = pre_commit(project, hook_repo, "run", "pin-images-check", "--all-files")
    assert checking.returncode == 0, checking.stdout
