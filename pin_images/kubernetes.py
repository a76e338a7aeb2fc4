"""Kubernetes manifests: every ``image:`` key with a string value in a document with ``apiVersion`` and ``kind``.

Recognised by content, so any ``*.yaml`` may be one: a file that is not Kubernetes, or does not parse, yields
nothing. Walking the whole document covers Pods, workloads, ``kind: List`` and CRDs (Argo, Tekton) alike; Kustomize's
``images:`` entries have no ``image:`` key and stay untouched.
"""

from __future__ import annotations

import re

from . import yamlscan
from .uses import FileScan

KIND = "kubernetes"
# Cheap test before composing: a manifest with an image names all three words (composing costs ~100 KB/s).
_WORDS = (b"apiVersion", b"kind", b"image")
# apiVersion prefixes of configuration files that look like manifests but whose `image:` keys are not pulled.
_NOT_KUBERNETES = ("skaffold/",)
_HELM_DIR_RE = re.compile(r"(?:^|[/\\])templates[/\\]")


def scan(data: bytes, path: str = "") -> FileScan:
    """Every image a Kubernetes manifest names, in file order; nothing for any other YAML file."""
    if not all(w in data for w in _WORDS):
        return FileScan(KIND)
    if _HELM_DIR_RE.search(path):
        # A Helm chart's templates/ may parse as YAML yet render into something else: leave it alone.
        note = yamlscan.template_note(data.decode("utf-8", "replace"))
        if note is not None:
            return FileScan(KIND, notes=(note,))
    return yamlscan.scan(data, path, KIND, "Kubernetes manifest", _visit, strict=False)


def is_manifest(doc: yamlscan.Node) -> bool:
    """True for a document whose top level has both ``apiVersion`` and ``kind``, unless it is a tool's own
    configuration that borrows the shape (Skaffold's ``image:`` entries name images it builds)."""
    fields = dict(yamlscan.mapping_items(doc))
    if "apiVersion" not in fields or "kind" not in fields:
        return False
    api = yamlscan.scalar_value(fields["apiVersion"]) or ""
    return not api.startswith(_NOT_KUBERNETES)


def _visit(stream: yamlscan.Stream) -> None:
    for doc in stream.documents:
        if not is_manifest(doc):
            continue
        for node, where in yamlscan.walk(doc):
            if not yamlscan.is_mapping(node):
                continue
            for key, value in node.value:
                if yamlscan.is_scalar(key) and key.value == "image" and yamlscan.is_scalar(value):
                    stream.add(value, where() + ".image")
