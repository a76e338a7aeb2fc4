"""What every YAML file kind shares: compose a stream into nodes with exact marks, walk it as a graph, and turn a
scalar node into an ImageUse whose span is exactly the reference's text.

Nothing is ever dumped: an edit is a character span taken from the composer's marks and verified against the text,
so comments, quoting, flow style, CRLF and a BOM all stay. ``yaml`` is imported only when a YAML file is scanned.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import FileFormatError
from .uses import SKIP, FileScan, ImageUse, Note

Node = Any  # a yaml.Node; typed loosely so that importing this module does not import yaml

MERGE_TAG = "tag:yaml.org,2002:merge"
STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
# Go/Helm and Jinja template markers: such a file is a template of YAML, not YAML.
TEMPLATE_RE = re.compile(r"\{\{|\{%")
# Real files nest a few dozen levels; a deeper one is hostile (and PyYAML's scanners slow down with depth).
MAX_DEPTH = 500


class _Retry(Exception):
    """libyaml's marks disagreed with the text: compose again with the pure-Python parser."""


@dataclass
class Stream:
    """One YAML file being scanned: its text, its documents, and the uses found so far (one per scalar node)."""

    text: str
    path: str
    kind: str
    documents: list[Node]
    exact_marks: bool = True  # False for libyaml's parser: a span that fails to verify means "compose again"
    uses: dict[int, ImageUse] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    _lines: list[int] | None = None

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset (lines end at LF, as editors and apply() count them)."""
        if self._lines is None:
            self._lines = [m.end() for m in re.finditer("\n", self.text)]
        line = bisect.bisect_right(self._lines, offset)
        begin = self._lines[line - 1] if line else 0
        return line + 1, offset - begin + 1

    def add(self, node: Node, where: str, prefix: str = "", platform: str | None = None) -> None:
        """Record the scalar ``node`` as an image reference (``prefix``, e.g. ``docker://``, is not part of it).

        A node reached again (through an alias or a merge key) is recorded once, where it is written.
        """
        if id(node) in self.uses:
            return
        use = self._use(node, where, prefix, platform)
        if use is not None:
            self.uses[id(node)] = use

    def skip(self, node: Node, where: str, note: str) -> None:
        """Record the scalar ``node`` as a reference that is deliberately not pinned (overrides an earlier add)."""
        if not is_scalar(node):
            return
        start = node.start_mark.index
        line, col = self.line_col(start)
        self.uses[id(node)] = ImageUse(
            line, where, str(node.value), None, None, start, start, status=SKIP, note=note, column=col,
            kind=self.kind,
        )  # fmt: skip

    def _use(self, node: Node, where: str, prefix: str, platform: str | None) -> ImageUse | None:
        if not is_scalar(node):
            return None
        value = str(node.value)
        if node.tag == NULL_TAG or not value.strip():
            return self._skipped(node, where, value, "empty value; not pinned")
        if node.tag != STR_TAG:
            return None  # a number or a boolean is not a reference
        if not value.startswith(prefix):
            return None
        image = value[len(prefix) :]
        if not image:
            return self._skipped(node, where, value, "empty value; not pinned")
        if "$" in image:
            return self._skipped(node, where, value, "holds a variable; not pinned")
        if TEMPLATE_RE.search(image):
            return self._skipped(node, where, value, "holds a template expression; not pinned")
        span = scalar_span(self.text, node)
        if span is None:
            if not self.exact_marks and not _explained(self.text, node):
                raise _Retry
            return self._skipped(node, where, value, _why_not_exact(self.text, node) + "; not pinned")
        start, end = span[0] + len(prefix), span[1]
        line, col = self.line_col(start)
        return ImageUse(line, where, value, image, platform, start, end, column=col, kind=self.kind)

    def _skipped(self, node: Node, where: str, value: str, note: str) -> ImageUse:
        start = node.start_mark.index
        line, col = self.line_col(start)
        return ImageUse(line, where, value, None, None, start, start, status=SKIP, note=note, column=col,
                        kind=self.kind)  # fmt: skip

    def result(self) -> FileScan:
        uses = sorted(self.uses.values(), key=lambda u: (u.start, u.end))
        return FileScan(self.kind, tuple(uses), tuple(self.notes))


def is_scalar(node: Node) -> bool:
    return type(node).__name__ == "ScalarNode"


def is_mapping(node: Node) -> bool:
    return type(node).__name__ == "MappingNode"


def is_sequence(node: Node) -> bool:
    return type(node).__name__ == "SequenceNode"


def scalar_span(text: str, node: Node) -> tuple[int, int] | None:
    """The exact characters of a scalar's value in ``text`` (inside the quotes), or None if the value is not
    written verbatim on one line (escapes, folding, block scalars)."""
    style = node.style or ""
    if style in ("|", ">"):
        return None
    value = str(node.value)
    end = node.end_mark.index
    if style:
        if end < 1 or text[end - 1 : end] != style:
            return None
        end -= 1
    start = end - len(value)
    open_at = start - 1 if style else start
    if open_at < node.start_mark.index or text[start:end] != value:
        return None
    if style and text[open_at] != style:
        return None
    if "\n" in value or "\r" in value:
        return None
    # Whatever lies between the node's start mark and the value must be its anchor or tag, nothing else.
    before = text[node.start_mark.index : open_at]
    if before and (before[0] not in "&!" or before[-1] not in " \t\r\n"):
        return None
    return start, end


def _explained(text: str, node: Node) -> bool:
    """True when the text between a scalar's marks shows why its value is not written verbatim (a block scalar,
    an escape, a doubled quote, a line break), so libyaml's marks need no second opinion."""
    raw = text[node.start_mark.index : node.end_mark.index]
    return (node.style or "") in ("|", ">") or any(c in raw for c in ("\\", "''", "\n", "\r"))


def _why_not_exact(text: str, node: Node) -> str:
    style = node.style or ""
    if style in ("|", ">"):
        return "a block scalar"
    raw = text[node.start_mark.index : node.end_mark.index]
    if style == '"' and "\\" in raw:
        return "a double-quoted value with escape sequences"
    if style == "'" and "''" in raw:
        return "a single-quoted value with an escaped quote"
    return "a value written over several lines"


def mapping_items(node: Node) -> Iterator[tuple[str, Node]]:
    """A mapping's (key, value) pairs with YAML merge keys (``<<: *common``) applied: own keys first, then each
    merged mapping's in order; the first occurrence of a key wins. Each mapping is visited once, so cycles and
    nested aliases cost linear time."""
    if not is_mapping(node):
        return
    seen_keys: set[str] = set()
    seen_nodes: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen_nodes or not is_mapping(current):
            continue
        seen_nodes.add(id(current))
        merged: list[Node] = []
        for key, value in current.value:
            if not is_scalar(key):
                continue
            if key.tag == MERGE_TAG or (key.value == "<<" and not key.style):
                merged.extend(value.value if is_sequence(value) else [value])
                continue
            if key.value not in seen_keys:
                seen_keys.add(key.value)
                yield str(key.value), value
        stack.extend(reversed(merged))


def get(node: Node, key: str) -> Node | None:
    """The value of ``key`` in a mapping (merge keys applied), or None."""
    for k, value in mapping_items(node):
        if k == key:
            return value
    return None


def sequence_items(node: Node | None) -> list[Node]:
    """The entries of a plain sequence; none for anything else, including a sequence with an application tag
    (GitLab's ``!reference [.job, services]`` names other keys, it holds no references itself)."""
    if node is None or not is_sequence(node) or not str(node.tag).startswith("tag:yaml.org,2002:"):
        return []
    return list(node.value)


def scalar_value(node: Node | None) -> str | None:
    return str(node.value) if node is not None and is_scalar(node) else None


def walk(root: Node) -> Iterator[tuple[Node, Callable[[], str]]]:
    """Every node reachable from ``root`` once (aliases share nodes), in document order, with a function that
    spells its path (``spec.containers[0].image``) only when asked."""
    seen: set[int] = set()
    Path = Optional[tuple[Any, str]]
    stack: list[tuple[Node, Path]] = [(root, None)]

    def spell(path: Path) -> str:
        parts = []
        while path is not None:
            path, part = path
            parts.append(part)
        return "".join(reversed(parts)).lstrip(".")

    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node, (lambda p=path: spell(p))  # type: ignore[misc]
        if is_mapping(node):
            for key, value in reversed(node.value):
                label = f".{key.value}" if is_scalar(key) else ".?"
                stack.append((value, (path, label)))
                stack.append((key, (path, label + "(key)")))
        elif is_sequence(node):
            for i in range(len(node.value) - 1, -1, -1):
                stack.append((node.value[i], (path, f"[{i}]")))


def decode(data: bytes, path: str, what: str) -> str:
    """The text of a YAML or JSON file; raises FileFormatError when it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FileFormatError(f"not a UTF-8 {what} (invalid byte at offset {exc.start})", path, line) from None


def _error(what: str, path: str, text: str, cause: str, mark: Any) -> FileFormatError:
    index = getattr(mark, "index", None)
    line = text.count("\n", 0, index) + 1 if isinstance(index, int) else None
    return FileFormatError(f"not a valid {what}: {cause}", path, line)


def _compose_events(loader: Any, text: str, path: str, what: str) -> list[Node]:
    """Build the node graph from the parser's events with an explicit stack.

    PyYAML's own composers recurse once per nesting level: the pure-Python one raises RecursionError and the C one
    crashes the process on a deep file. Aliases share the anchored node, as in PyYAML; an anchor may be redefined.
    """
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    documents: list[Node] = []
    anchors: dict[str, Node] = {}
    stack: list[list[Any]] = []  # [collection node, pending mapping key or None]
    root: Node = None
    while loader.check_event():
        event = loader.get_event()
        name = type(event).__name__
        if name == "DocumentStartEvent":
            anchors, root = {}, None
            continue
        if name == "DocumentEndEvent":
            documents.append(root)
            continue
        if name in ("StreamStartEvent", "StreamEndEvent"):
            continue
        if name == "AliasEvent":
            node = anchors.get(event.anchor)
            if node is None:
                raise _error(what, path, text, f"found undefined alias {event.anchor!r}", event.start_mark)
        elif name == "ScalarEvent":
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(ScalarNode, event.value, event.implicit)
            node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
            if event.anchor is not None:
                anchors[event.anchor] = node
        elif name in ("SequenceStartEvent", "MappingStartEvent"):
            if len(stack) >= MAX_DEPTH:
                raise _error(what, path, text, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
            cls = SequenceNode if name == "SequenceStartEvent" else MappingNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(cls, None, event.implicit)
            collection = cls(tag, [], event.start_mark, None, flow_style=event.flow_style)
            if event.anchor is not None:
                anchors[event.anchor] = collection
            stack.append([collection, None])
            continue
        else:  # the end of a sequence or a mapping
            node = stack.pop()[0]
            node.end_mark = event.end_mark
        if not stack:
            root = node
            continue
        top = stack[-1]
        if type(top[0]) is SequenceNode:
            top[0].value.append(node)
        elif top[1] is None:
            top[1] = node
        else:
            top[0].value.append((top[1], node))
            top[1] = None
    return documents


def compose(text: str, path: str, what: str, fast: bool = True) -> tuple[list[Node], bool]:
    """Every document of a YAML stream as a node graph, and whether the marks are known exact (pure-Python parser).

    libyaml's parser is used when present (about five times faster); ``fast=False`` forces the pure-Python one.
    Raises FileFormatError naming file, line and cause.
    """
    import yaml

    c_loader = getattr(yaml, "CSafeLoader", None) if fast else None
    loader = (c_loader or yaml.SafeLoader)(text)
    try:
        return _compose_events(loader, text, path, what), c_loader is None
    except yaml.MarkedYAMLError as exc:
        cause = " ".join(p for p in (exc.context, exc.problem) if p)
        raise _error(what, path, text, cause, exc.problem_mark or exc.context_mark) from None
    except yaml.YAMLError as exc:  # a reader error: a character YAML does not allow
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        reason = getattr(exc, "reason", "") or str(exc).splitlines()[0]
        raise FileFormatError(f"not a valid {what}: {reason}", path, line) from None
    finally:
        loader.dispose()


def template_note(text: str) -> Note | None:
    """A note for a file with template syntax (a Helm or Jinja template of YAML), which is left alone."""
    m = TEMPLATE_RE.search(text)
    if m is None:
        return None
    line = text.count("\n", 0, m.start()) + 1
    return Note(line, "template syntax ({{ or {%): not YAML until rendered; left alone", warning=False)


def _has_template_expression(text: str, documents: list[Node]) -> bool:
    """True if an unquoted ``{{ x }}`` parsed as a flow mapping (YAML reads it as a mapping in a mapping)."""
    for doc in documents:
        for node, _ in walk(doc):
            if is_mapping(node) and text.startswith("{{", node.start_mark.index):
                return True
    return False


def scan(
    data: bytes, path: str, kind: str, what: str, visit: Callable[[Stream], None], strict: bool = True
) -> FileScan:
    """Scan a YAML file: compose it, let ``visit`` add the uses it finds, and return them in file order.

    ``strict`` files (their kind comes from their name) raise FileFormatError when they do not parse; others yield
    nothing. A file with template syntax that does not parse is left alone with a note, never an error.
    """
    try:
        text = decode(data, path, what)
    except FileFormatError:
        if strict:
            raise
        return FileScan(kind)
    fast = True
    while True:
        try:
            documents, exact = compose(text, path, what, fast)
        except FileFormatError:
            note = template_note(text)
            if note is not None:
                return FileScan(kind, notes=(note,))
            if strict:
                raise
            return FileScan(kind)
        note = template_note(text) if "{{" in text else None
        if note is not None and _has_template_expression(text, documents):
            return FileScan(kind, notes=(note,))
        stream = Stream(text, path, kind, documents, exact_marks=exact)
        try:
            visit(stream)
        except _Retry:
            fast = False
            continue
        return stream.result()
