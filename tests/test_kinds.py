"""Tests for kinds.py: which kind a file is by its name (walks) or by name and content (files named on the command
line), and that scan_file reaches every kind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pin_images import kinds
from pin_images.uses import ScanOptions

NAMES = [
    ("Dockerfile", "dockerfile"),
    ("app/Containerfile.dev", "dockerfile"),
    ("compose.yaml", "compose"),
    ("compose.yml", "compose"),
    ("docker-compose.yml", "compose"),
    ("docker-compose.yaml", "compose"),
    ("deploy/compose.prod.yaml", "compose"),
    ("docker-compose.override.yml", "compose"),
    (".github/workflows/ci.yml", "github"),
    ("sub/.github/workflows/release.yaml", "github"),
    (".github/workflows/nested/x.yml", "kubernetes"),  # GitHub reads only the workflows folder itself
    ("action.yml", "github"),
    (".github/actions/setup/action.yaml", "github"),
    (".gitlab-ci.yml", "gitlab"),
    ("ci/deploy.gitlab-ci.yml", "gitlab"),
    (".gitlab-ci.yaml", "gitlab"),
    (".devcontainer.json", "devcontainer"),
    (".devcontainer/devcontainer.json", "devcontainer"),
    ("x/.devcontainer/python/devcontainer.json", "devcontainer"),
    (".devcontainer/a/b/devcontainer.json", None),
    ("devcontainer.json", None),
    ("k8s/deployment.yaml", "kubernetes"),
    ("config.yml", "kubernetes"),
    ("package.json", None),
    ("README.md", None),
    ("compose.yaml.orig", None),
    ("windows\\.github\\workflows\\ci.yml", "github"),
    ("svc/api.containerfile", "dockerfile"),
    ("Makefile", None),
    ("docs/dockerfiles.txt", None),  # the word alone makes no Dockerfile
    ("values.YAML", None),  # the patterns are case-sensitive
]


@pytest.mark.parametrize(("path", "kind"), NAMES)
def test_kind_for_name(path, kind):
    assert kinds.kind_for_name(path) == kind


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("docker-compose.yml", "compose"),
        ("config.yaml", "kubernetes"),  # read by content: nothing unless it is a manifest
        ("CONFIG.YML", "kubernetes"),
        ("package.json", None),  # JSON of no kind: skipped quietly
        ("settings.JSON", None),
        ("build/base-image", "dockerfile"),  # anything else named on the command line is a Dockerfile
        ("Dockerfile.prod", "dockerfile"),
    ],
)
def test_kind_for_named_file(path, kind):
    assert kinds.kind_for_named_file(path, b"") == kind


@pytest.mark.parametrize(
    ("kind", "path", "data", "image"),
    [
        ("dockerfile", "Dockerfile", b"FROM alpine:3.20\n", "alpine:3.20"),
        ("compose", "compose.yaml", b"services:\n  a:\n    image: alpine:3.20\n", "alpine:3.20"),
        ("kubernetes", "pod.yaml", b"apiVersion: v1\nkind: Pod\nspec: {containers: [{image: alpine:3.20}]}\n",
         "alpine:3.20"),
        ("github", ".github/workflows/ci.yml", b"jobs:\n  a:\n    container: alpine:3.20\n", "alpine:3.20"),
        ("github", "action.yml", b"runs:\n  image: docker://alpine:3.20\n", "alpine:3.20"),
        ("gitlab", ".gitlab-ci.yml", b"image: alpine:3.20\n", "alpine:3.20"),
        ("devcontainer", ".devcontainer.json", b'{"image": "alpine:3.20"}', "alpine:3.20"),
    ],
)  # fmt: skip
def test_scan_file_reaches_every_kind(kind, path, data, image):
    result = kinds.scan_file(kind, data, path, ScanOptions())
    assert result.kind == kind
    assert [(u.image, u.kind) for u in result.uses] == [(image, kind)]
    assert kind in kinds.KINDS


def test_a_workflow_named_action_yml_is_still_a_workflow():
    data = b"jobs:\n  a:\n    container: node:20\n"
    assert [u.image for u in kinds.scan_file("github", data, ".github/workflows/action.yml", ScanOptions()).uses] == [
        "node:20"
    ]


def test_a_skipped_value_is_reported_as_skipped_and_never_fails_check():
    from pin_images.resolve import FAILS_CHECK, SKIPPED, Options, Plan, classify

    data = b"services:\n  a:\n    image: ${IMAGE}\n  b:\n    build: .\n    image: me/b:dev\n"
    scan = kinds.scan_file("compose", data, "compose.yaml", ScanOptions())
    for options in (Options(check=True), Options(), Options(check=True, update=True)):
        plan = Plan()
        classify("compose.yaml", data.decode(), scan, options, plan)
        findings = plan.findings["compose.yaml"]
        assert [(f.line, f.status, f.message) for f in findings] == [
            (3, SKIPPED, "holds a variable; not pinned"),
            (6, SKIPPED, "the service builds this image (build:); not pinned"),
        ]
        assert not plan.targets() and not any(f.status in FAILS_CHECK for f in findings)


HOOK_NAMES = [name for name, _ in NAMES] + [
    "README.md", "notes.yaml.md", "compose.yaml.orig", "Dockerfile.j2", ".yml", "x.YAML", "values.yaml.tmpl",
    "Dockerfile", "api.Dockerfile", "devcontainer-lock.json", ".devcontainer/devcontainer-feature.json",
]  # fmt: skip


def _hooks():
    root = Path(__file__).resolve().parent.parent
    return {h["id"]: h for h in yaml.safe_load((root / ".pre-commit-hooks.yaml").read_text())}


@pytest.mark.parametrize("hook_id", ["pin-images", "pin-images-check"])
@pytest.mark.parametrize("name", HOOK_NAMES)
@pytest.mark.parametrize("directory", ["", "services/api/"])
def test_hook_patterns_take_exactly_the_files_a_walk_reads(hook_id, name, directory):
    hook = _hooks()[hook_id]
    path = (directory + name).replace("\\", "/")
    selected = re.search(hook["files"], path) is not None and re.search(hook["exclude"], path) is None
    assert selected is (kinds.kind_for_name(path) is not None)
