"""The copy-paste examples stay true: hook ids exist, the rev is this version, CI commands parse."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from pin_images import __version__
from pin_images.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _commands(node: object) -> list[str]:
    """Every ``pin-images ...`` shell line in a CI file (GitHub ``run:`` steps, GitLab ``script:`` lists)."""
    if isinstance(node, dict):
        return [c for v in node.values() for c in _commands(v)]
    if isinstance(node, list):
        return [c for v in node for c in _commands(v)]
    if isinstance(node, str):
        return [line.strip() for line in node.splitlines() if line.strip().startswith("pin-images")]
    return []


def test_pre_commit_example_uses_real_hooks_at_this_version():
    hooks = {h["id"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    config = yaml.safe_load((EXAMPLES / ".pre-commit-config.yaml").read_text())
    (repo,) = config["repos"]
    assert repo["rev"] == f"v{__version__}"
    used = [h["id"] for h in repo["hooks"]]
    assert set(used) == hooks == {"pin-images", "pin-images-check"}
    for hook in repo["hooks"]:
        build_parser().parse_args(hook.get("args", []))


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_examples_run_valid_commands(name):
    commands = _commands(yaml.safe_load((EXAMPLES / "ci" / name).read_text()))
    assert any("--check" in c for c in commands)
    for command in commands:
        build_parser().parse_args(shlex.split(command)[1:])  # argparse exits on a bad option


def test_github_example_has_a_scheduled_stale_pin_job():
    workflow = yaml.safe_load((EXAMPLES / "ci" / "github-actions.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request", "schedule"} <= set(triggers)
    commands = _commands(workflow["jobs"])
    assert "pin-images --check --update --format github" in commands
    assert "pin-images --check --format github" in commands
