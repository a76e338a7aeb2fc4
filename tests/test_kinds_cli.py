"""The CLI over every file kind: walks find them all, --kind and `kinds = [...]` restrict them, named files are read
as their name says, templates and oversized YAML are left alone, and the reports carry the kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pin_images import files
from pin_images.cli import main

from .conftest import fake_digest

TREE = {
    "Dockerfile": "FROM alpine:3.20\n",
    "compose.yaml": "services:\n  web:\n    image: nginx:1.27  # proxy\n",
    "k8s/pod.yaml": "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - {name: a, image: 'redis:7'}\n",
    ".github/workflows/ci.yml": "jobs:\n  a:\n    container: node:20\n",
    ".gitlab-ci.yml": "image: ruby:3.3\n",
    ".devcontainer/devcontainer.json": '{"image": "python:3.12"}\n',
    "config.yaml": "image: not-a-reference:1\n",
}
IMAGES = {
    "Dockerfile": "alpine:3.20", "compose.yaml": "nginx:1.27", "k8s/pod.yaml": "redis:7",
    ".github/workflows/ci.yml": "node:20", ".gitlab-ci.yml": "ruby:3.3",
    ".devcontainer/devcontainer.json": "python:3.12",
}  # fmt: skip
KIND_OF = {
    "Dockerfile": "dockerfile", "compose.yaml": "compose", "k8s/pod.yaml": "kubernetes",
    ".github/workflows/ci.yml": "github", ".gitlab-ci.yml": "gitlab", ".devcontainer/devcontainer.json": "devcontainer",
}  # fmt: skip


def digest(image: str) -> str:
    name, _, tag = image.rpartition(":")
    return fake_digest(f"docker.io/library/{name}:{tag}")


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for rel, text in TREE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def changed(root: Path) -> set[str]:
    return {rel for rel, text in TREE.items() if (root / rel).read_text() != text}


def test_a_walk_pins_every_kind(tree, resolver, capsys):
    assert main(["--no-config", "."]) == 1
    assert changed(tree) == set(IMAGES)
    for rel, image in IMAGES.items():
        assert (tree / rel).read_text() == TREE[rel].replace(image, f"{image}@{digest(image)}")


@pytest.mark.parametrize(
    ("args", "config", "kinds"),
    [
        (["--kind", "compose"], None, {"compose"}),
        (["--kind", "dockerfile,github", "--kind", "devcontainer"], None, {"dockerfile", "github", "devcontainer"}),
        ([], 'kinds = ["kubernetes", "gitlab"]', {"kubernetes", "gitlab"}),
        (["--kind", "dockerfile"], 'kinds = ["kubernetes"]', {"dockerfile"}),  # the command line wins
    ],
)
def test_kind_restricts_what_is_read(tree, resolver, args, config, kinds):
    if config:
        (tree / ".pin-images.toml").write_text(config + "\n")
    assert main([*([] if config else ["--no-config"]), *args, "."]) == 1
    assert changed(tree) == {rel for rel, kind in KIND_OF.items() if kind in kinds}


def test_kind_restricts_named_files_too(tree, resolver):
    assert main(["--no-config", "--kind", "dockerfile", "Dockerfile", "compose.yaml"]) == 1
    assert changed(tree) == {"Dockerfile"}


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (["--kind", "helm"], None, "--kind 'helm': unknown file kind; expected one of dockerfile, compose,"),
        (["--kind", "compose,"], None, None),  # an empty item is ignored
        ([], 'kinds = ["docker"]', 'kinds[0]: unknown file kind "docker"; expected one of dockerfile,'),
        ([], "kinds = 'compose'", "kinds: expected an array of strings"),
    ],
)
def test_unknown_kind_is_a_usage_error(tree, resolver, capsys, args, config, message):
    if config:
        (tree / ".pin-images.toml").write_text(config + "\n")
    code = main([*([] if config else ["--no-config"]), "--check", *args, "."])
    err = capsys.readouterr().err
    if message is None:
        assert code == 1
        return
    assert code == 2
    assert message in err
    assert changed(tree) == set()


def test_named_yaml_and_json_files_of_no_kind_are_skipped_quietly(tree, no_network, capsys):
    (tree / "package.json").write_text('{"image": "x:1"}\n')
    (tree / "values.yml").write_text("services:\n  - not: a compose file\n")
    assert main(["--no-config", "--check", "config.yaml", "package.json", "values.yml"]) == 0
    out = capsys.readouterr()
    assert "unknown instruction" not in out.out + out.err
    assert out.err == ""


def test_named_compose_file_is_read_as_compose(tree, resolver, capsys):
    # Before file kinds this said "unknown instruction: SERVICES:".
    assert main(["--no-config", "--check", "compose.yaml"]) == 1
    assert "compose.yaml:3: nginx:1.27 is not pinned" in capsys.readouterr().out


def test_broken_named_kind_is_an_error_naming_file_line_and_cause(tree, resolver, capsys):
    (tree / "compose.yaml").write_text("services:\n  web: [\n")
    assert main(["--no-config", "."]) == 2
    captured = capsys.readouterr()
    assert "compose.yaml:3: not a valid Compose file: " in captured.err
    assert (tree / "compose.yaml").read_text() == "services:\n  web: [\n"
    assert (tree / "Dockerfile").read_text() != TREE["Dockerfile"]  # the other files are still pinned


def test_template_is_left_alone_with_a_note_shown_with_verbose(tree, resolver, capsys):
    chart = tree / "chart" / "templates" / "pod.yaml"
    chart.parent.mkdir(parents=True)
    text = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: {{ .Values.image }}\n"
    chart.write_text(text)
    assert main(["--no-config", "--check", "-v", "chart"]) == 0
    out = capsys.readouterr().out
    assert "chart/templates/pod.yaml:5: note: template syntax" in out  # a file note, not a reference
    assert chart.read_text() == text


def test_yaml_known_only_by_content_over_the_limit_is_skipped_not_an_error(tree, no_network, capsys):
    big = tree / "generated" / "bundle.yaml"
    big.parent.mkdir()
    big.write_text("apiVersion: v1\nkind: List\nitems: []\n# " + "x" * files.MAX_FILE_BYTES + "\n")
    assert main(["--no-config", "--check", "generated"]) == 0
    # A file whose kind comes from its name is still read, and still too big.
    (tree / "generated" / "compose.yaml").write_text("# " + "x" * files.MAX_FILE_BYTES + "\n")
    assert main(["--no-config", "--check", "generated"]) == 2
    assert "compose.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["json", "sarif", "github"])
def test_reports_carry_the_kind_and_line(tree, no_network, capsys, fmt):
    assert main(["--no-config", "--check", "--format", fmt, "."]) == 1
    out = capsys.readouterr().out
    if fmt == "json":
        refs = {r["file"]: (r["kind"], r["line"]) for r in json.loads(out)["references"]}
        assert refs == {
            "Dockerfile": ("dockerfile", 1), "compose.yaml": ("compose", 3), "k8s/pod.yaml": ("kubernetes", 5),
            ".github/workflows/ci.yml": ("github", 3), ".gitlab-ci.yml": ("gitlab", 1),
            ".devcontainer/devcontainer.json": ("devcontainer", 1),
        }  # fmt: skip
    elif fmt == "sarif":
        results = json.loads(out)["runs"][0]["results"]
        where = {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: (
                r["locations"][0]["physicalLocation"]["region"]["startLine"],
                r["locations"][0]["physicalLocation"]["region"].get("startColumn"),
            )
            for r in results
        }
        assert where["compose.yaml"] == (3, 12)
        assert where["k8s/pod.yaml"] == (5, 23)
        assert where[".devcontainer/devcontainer.json"] == (1, 12)
    else:
        assert "::error file=compose.yaml,line=3,col=12" in out
        assert "::error file=.gitlab-ci.yml,line=1,col=8" in out
