"""Real pre-commit: pre-commit names every staged file, so the configuration's excludes must win over a named file,
and what git ignores never reaches a hook at all."""

from __future__ import annotations

from pathlib import Path

from tests.integration import test_precommit as shared
from tests.integration.test_precommit import HookRepo, Images, add, configure, pre_commit

# The fixtures of the main pre-commit tests: the hook repository snapshot, the seeded images, an empty project.
hook_repo = shared.hook_repo
images = shared.images
project = shared.project


def test_configured_excludes_hold_for_the_files_pre_commit_names(project: Path, hook_repo: HookRepo, images: Images):
    configure(project, hook_repo)
    mirror = (project / ".pin-images.toml").read_text()
    add(
        project,
        {
            ".pin-images.toml": 'exclude = ["./legacy", "vendor"]\n' + mirror,
            "legacy/Dockerfile": "FROM python:3.12\n",
            "third_party/vendor/Dockerfile": "FROM alpine:3.20\n",
            "app/Dockerfile": "FROM python:3.12\n",
        },
        hook_repo.env,
    )
    checking = pre_commit(project, hook_repo, "run", "pin-images-check", "--all-files")
    assert checking.returncode == 1, checking.stdout
    assert "app/Dockerfile:1: python:3.12 is not pinned" in checking.stdout
    assert "legacy" not in checking.stdout and "vendor" not in checking.stdout
    assert "./" not in checking.stdout.replace("../", "")

    pinning = pre_commit(project, hook_repo, "run", "pin-images", "--all-files")
    assert pinning.returncode == 1, pinning.stdout
    assert (project / "app/Dockerfile").read_text() == f"FROM python:3.12@{images.python}\n"
    assert (project / "legacy/Dockerfile").read_text() == "FROM python:3.12\n"
    assert (project / "third_party/vendor/Dockerfile").read_text() == "FROM alpine:3.20\n"
