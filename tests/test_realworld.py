"""Real-world files (tests/data/realworld, see its README for sources and licences): every reference found is the
exact text of its span, pinning changes only the inserted digests, and the pinned YAML means the same."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pin_images import kinds
from pin_images.uses import OK, Edit, ScanOptions, apply

DATA = Path(__file__).resolve().parent / "data" / "realworld"
DIGEST = "@sha256:" + "5a" * 32

# original path -> (kind, references pinned, uses skipped with a note, file notes)
EXPECTED = {
    "docker+awesome-compose/nginx-flask-mongo/compose.yaml": ("compose", ["nginx", "mongo"], 0, 0),
    "GoogleCloudPlatform+microservices-demo/release/kubernetes-manifests.yaml": ("kubernetes", 13, 0, 0),
    "GoogleCloudPlatform+microservices-demo/helm-chart/templates/adservice.yaml": ("kubernetes", 0, 0, 1),
    "kubernetes+examples/_archived/storage/vitess/etcd-controller-template.yaml": ("kubernetes", 0, 0, 1),
    "prometheus+prometheus/.github/workflows/ci.yml": ("github", 9, 0, 0),
    "firecow+gitlab-ci-local/tests/test-cases/services/.gitlab-ci.yml": ("gitlab", 25, 0, 0),
    "devcontainers+templates/src/alpine/.devcontainer/devcontainer.json": ("devcontainer", 0, 1, 0),
    "devcontainers+images/.devcontainer/devcontainer.json": (
        "devcontainer", ["mcr.microsoft.com/devcontainers/javascript-node:3-22"], 0, 0,
    ),
}  # fmt: skip


class _AnyTag(yaml.SafeLoader):
    """SafeLoader that also reads GitLab's !reference tags, to compare documents before and after pinning."""


_AnyTag.add_multi_constructor(
    "!", lambda loader, suffix, node: loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else None
)


def _same_but_pinned(before: object, after: object, images: set[str]) -> int:
    """Compare two loaded documents; every difference must be a reference given its digest. Returns the count."""
    if isinstance(before, dict):
        assert isinstance(after, dict) and list(before) == list(after)
        return sum(_same_but_pinned(before[k], after[k], images) for k in before)
    if isinstance(before, list):
        assert isinstance(after, list) and len(before) == len(after)
        return sum(_same_but_pinned(b, a, images) for b, a in zip(before, after))
    if before != after:
        assert isinstance(before, str) and after == before + DIGEST
        assert re.sub(r"^docker://", "", before) in images
        return 1
    return 0


@pytest.mark.parametrize("original", sorted(EXPECTED))
def test_real_world_file(original):
    kind, pinned_refs, skipped, notes = EXPECTED[original]
    data = (DATA / (original + ".txt")).read_bytes()
    path = original.partition("/")[2]
    assert kinds.kind_for_name(path) == kind
    scan = kinds.scan_file(kind, data, path, ScanOptions())
    ok = [u for u in scan.uses if u.status == OK]
    text = data.decode()
    for u in ok:
        assert text[u.start : u.end] == u.image
        assert u.line == text.count("\n", 0, u.start) + 1
    if isinstance(pinned_refs, list):
        assert [u.image for u in ok] == pinned_refs
    else:
        assert len(ok) == pinned_refs
    assert len(scan.uses) - len(ok) == skipped
    assert len(scan.notes) == notes
    new = apply(data, [Edit(u.end, u.end, DIGEST) for u in ok])
    assert new.decode().replace(DIGEST, "").encode() == data
    if kind != "devcontainer" and ok:
        before = list(yaml.load_all(text, _AnyTag))
        after = list(yaml.load_all(new.decode(), _AnyTag))
        assert _same_but_pinned(before, after, {str(u.image) for u in ok}) >= len(ok)
