"""GitLab CI: ``image`` and ``services`` (a string or its ``name``) at the top level, under ``default:`` and in
every job, hidden ``.template`` jobs included."""

from __future__ import annotations

from . import yamlscan
from .uses import FileScan

KIND = "gitlab"
# Top-level keys that are not jobs; a variable named `image` under `variables:` is not a reference.
_GLOBAL_KEYWORDS = frozenset(
    {"default", "include", "stages", "variables", "workflow", "cache", "before_script", "after_script", "spec",
     "image", "services", "types"}
)  # fmt: skip


def scan(data: bytes, path: str = "") -> FileScan:
    """Every image a GitLab CI file's jobs run, in file order."""
    return yamlscan.scan(data, path, KIND, "GitLab CI file", _visit)


def _image(stream: yamlscan.Stream, node: yamlscan.Node | None, where: str) -> None:
    if node is None:
        return
    if yamlscan.is_mapping(node):
        name = yamlscan.get(node, "name")
        if name is not None:
            stream.add(name, f"{where}.name")
    else:
        stream.add(node, where)


def _job(stream: yamlscan.Stream, job: yamlscan.Node, where: str) -> None:
    fields = dict(yamlscan.mapping_items(job))
    _image(stream, fields.get("image"), f"{where}image")
    for i, service in enumerate(yamlscan.sequence_items(fields.get("services"))):
        _image(stream, service, f"{where}services[{i}]")


def _visit(stream: yamlscan.Stream) -> None:
    for doc in stream.documents:
        if not yamlscan.is_mapping(doc):
            continue
        _job(stream, doc, "")
        for name, value in yamlscan.mapping_items(doc):
            if name == "default":
                _job(stream, value, "default.")
            elif name not in _GLOBAL_KEYWORDS and yamlscan.is_mapping(value):
                _job(stream, value, f"{name}.")
