"""The README's offline demo runs as a newcomer would run it, and leaves examples/ as it found it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tree_digest(directory: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def test_demo_pins_a_copy_of_the_examples_offline(registry_bin: str, tmp_path: Path):
    before = _tree_digest(ROOT / "examples")
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE")}
    env["PIN_IMAGES_REGISTRY_BIN"] = registry_bin
    done = subprocess.run(
        [sys.executable, str(ROOT / "demo" / "run_demo.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    diff = out[out.index("--dry-run writes nothing") : out.index("==> pinning for real")]
    assert "\n+FROM " in diff and "@sha256:" in diff
    for kind_file in ("compose/compose.yaml", "k8s/deployment.yaml", ".github/workflows/test.yml",
                      "gitlab/.gitlab-ci.yml", "devcontainer/.devcontainer/devcontainer.json"):
        assert f"\n+++ b/{kind_file}\n" in diff, kind_file
    assert "would pin" in diff
    assert "pinned" in out[out.index("==> pinning for real") :]
    assert "(exit status 0)" in out[out.index("==> checking") :]
    assert "stopping the registry" in out
    assert _tree_digest(ROOT / "examples") == before
