"""Property tests for the YAML and JSON file kinds: pinning changes nothing but the inserted digests, and the pinned
file still means the same thing with each reference (and only those) carrying its digest."""

from __future__ import annotations

import json
import re

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pin_images import kinds
from pin_images.uses import OK, Edit, ScanOptions, apply

from .test_properties import PROFILE

DIGEST = "sha256:" + "0f" * 32
INSERTED = re.compile(re.escape("@" + DIGEST))

refs = st.sampled_from(
    ["nginx", "nginx:1.27", "redis:7.4-alpine", "ghcr.io/org/app:v1", "localhost:5000/x/y:dev",
     "registry.example.com:8443/team/img:1.0", "python:3.12-slim", "a.b/c_d/e-f:G.h"]
)  # fmt: skip
styles = st.sampled_from(["plain", "single", "double"])
comments = st.sampled_from(["", "  # a comment", "   #x", " # image: fake:1"])


def quote(value: str, style: str) -> str:
    return {"plain": value, "single": f"'{value}'", "double": f'"{value}"'}[style]


@st.composite
def documents(draw):
    """(kind, path, text, expected images) for a generated file of one kind."""
    kind = draw(st.sampled_from(["compose", "kubernetes", "github", "gitlab"]))
    items = draw(st.lists(st.tuples(refs, styles, comments, st.booleans(), st.booleans()), min_size=1, max_size=5))
    lines: list[str] = []
    images: list[str] = []
    if kind == "compose":
        path = "compose.yaml"
        lines.append("services:  # the stack")
        for i, (ref, style, comment, flow, anchored) in enumerate(items):
            anchor = f"&s{i} " if anchored else ""
            if flow:
                lines.append(f"  s{i}: {{image: {anchor}{quote(ref, style)}, ports: ['80:80']}}{comment}")
            else:
                lines += [f"  s{i}:", f"    image: {anchor}{quote(ref, style)}{comment}", "    restart: always"]
            images.append(ref)
            if anchored:
                lines.append(f"  alias{i}: {{image: *s{i}}}")  # the same scalar again: pinned once
    elif kind == "kubernetes":
        path = "k8s/app.yaml"
        for i, (ref, style, comment, flow, _) in enumerate(items):
            lines += ["---", "apiVersion: v1", "kind: Pod", f"metadata: {{name: p{i}}}", "spec:", "  containers:"]
            if flow:
                lines.append(f"  - {{name: c, image: {quote(ref, style)}}}{comment}")
            else:
                lines += ["  - name: c", f"    image: {quote(ref, style)}{comment}"]
            images.append(ref)
    elif kind == "github":
        path = ".github/workflows/ci.yml"
        lines += ["on: [push]", "jobs:"]
        for i, (ref, style, comment, flow, _) in enumerate(items):
            lines += [f"  j{i}:", "    runs-on: ubuntu-latest"]
            if flow:
                lines.append(f"    container: {{image: {quote(ref, style)}}}{comment}")
            else:
                lines += ["    steps:", f"      - uses: {quote('docker://' + ref, style)}{comment}"]
            images.append(ref)
    else:
        path = ".gitlab-ci.yml"
        for i, (ref, style, comment, flow, _) in enumerate(items):
            lines.append(f"{'.' if i % 2 else ''}job{i}:")
            if flow:
                lines.append(f"  services: [{{name: {quote(ref, style)}, alias: a{i}}}]{comment}")
            else:
                lines += [f"  image: {quote(ref, style)}{comment}", "  script: [make]"]
            images.append(ref)
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + draw(st.sampled_from([eol, ""]))
    if draw(st.booleans()):
        text = "\ufeff" + text
    return kind, path, text, images


def pin(kind: str, path: str, data: bytes) -> tuple[bytes, list[str]]:
    uses = [u for u in kinds.scan_file(kind, data, path, ScanOptions()).uses if u.status == OK]
    text = data.decode()
    for u in uses:
        assert text[u.start : u.end] == u.image  # the span is exactly the reference
    return apply(data, [Edit(u.end, u.end, "@" + DIGEST) for u in uses]), [str(u.image) for u in uses]


def _with_digest(value, images):
    """The loaded document with every expected image value given its digest."""
    if isinstance(value, dict):
        return {k: _with_digest(v, images) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_digest(v, images) for v in value]
    if isinstance(value, str) and value.removeprefix("docker://") in images:
        return value + "@" + DIGEST
    return value


@settings(PROFILE)
@given(documents())
def test_pinning_changes_only_the_inserted_digests(doc):
    kind, path, text, images = doc
    data = text.encode()
    assert kinds.kind_for_name(path) == kind
    pinned, found = pin(kind, path, data)
    assert sorted(found) == sorted(images)
    # Every byte but the insertions stays.
    assert INSERTED.sub("", pinned.decode()).encode() == data
    # The pinned file means the same, with the references (and only those) pinned.
    before = list(yaml.safe_load_all(text.lstrip("\ufeff")))
    after = list(yaml.safe_load_all(pinned.decode().lstrip("\ufeff")))
    assert after == _with_digest(before, set(images))
    # Pinning again finds the same references, now with their digests, and adds nothing more.
    _, found_again = pin(kind, path, pinned)
    assert sorted(found_again) == sorted(f"{i}@{DIGEST}" for i in images)


@settings(PROFILE)
@given(
    refs,
    st.lists(st.sampled_from(['"a": 1', '"b": [1, 2,]', '"c": {"image": "no:1",}']), max_size=3),
    st.sampled_from(["", "// head\n", "/* block\n comment */"]),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.booleans(),
)
def test_devcontainer_pinning_changes_only_the_digest(ref, members, head, eol, trailing, bom):
    body = [*members, f'"image": "{ref}" // the image']
    text = head + "{" + eol + ("," + eol).join(body) + ("," if trailing else "") + eol + "}" + eol
    if bom:
        text = "\ufeff" + text
    data = text.encode()
    pinned, found = pin("devcontainer", ".devcontainer/devcontainer.json", data)
    assert found == [ref]
    assert INSERTED.sub("", pinned.decode()).encode() == data
    assert f'"image": "{ref}@{DIGEST}"'.encode() in pinned
    # Without comments and trailing commas the pinned file is plain JSON with the pinned image.
    plain = re.sub(r"//[^\n]*|/\*.*?\*/", "", pinned.decode().lstrip("\ufeff"), flags=re.S)
    plain = re.sub(r",(\s*[}\]])", r"\1", plain)
    assert json.loads(plain)["image"] == f"{ref}@{DIGEST}"
