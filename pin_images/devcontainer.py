"""devcontainer.json: the top-level ``"image"``, read with a small exact-offset tokenizer for JSON with comments and
trailing commas (the dialect the Dev Containers spec allows), so every other byte stays as written."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from .errors import FileFormatError
from .uses import SKIP, FileScan, ImageUse

KIND = "devcontainer"
WHAT = "devcontainer.json"

_TOKEN_RE = re.compile(
    r"""(?P<ws>[ \t\r\n]+)
      | (?P<line_comment>//[^\n]*)
      | (?P<block_comment>/\*.*?\*/)
      | (?P<string>"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*")
      | (?P<punct>[{}\[\]:,])
      | (?P<literal>true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    """,
    re.VERBOSE | re.DOTALL,
)


def _tokens(text: str, path: str) -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) for every token but whitespace and comments; raises FileFormatError at a bad one."""
    pos = 1 if text.startswith("\ufeff") else 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None or m.lastgroup is None:
            raise FileFormatError(f"not a valid {WHAT}: {_bad_token(text, pos)}", path, _line(text, pos))
        if m.lastgroup not in ("ws", "line_comment", "block_comment"):
            yield m.lastgroup, m.start(), m.end()
        pos = m.end()


def _bad_token(text: str, pos: int) -> str:
    if text.startswith("/*", pos):
        return "unterminated comment"
    if text.startswith('"', pos):
        return "unterminated string or bad escape"
    return f"unexpected character {text[pos]!r}"


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def scan(data: bytes, path: str = "") -> FileScan:
    """The image a devcontainer.json names at its top level (none for a Dockerfile or Compose based one)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FileFormatError(f"not a UTF-8 {WHAT} (invalid byte at offset {exc.start})", path, line) from None
    uses = [_use(text, key_at, start, end) for key_at, start, end in _top_level_strings(text, path, "image")]
    return FileScan(KIND, tuple(uses))


def _use(text: str, key_at: int, start: int, end: int) -> ImageUse:
    """An ImageUse for the string token text[start:end] (quotes included)."""
    raw = text[start + 1 : end - 1]
    line = _line(text, start)
    column = start - (text.rfind("\n", 0, start) + 1) + 2
    if "\\" in raw:
        note = "a string with escape sequences; not pinned"
    elif not raw.strip():
        note = "empty value; not pinned"
    elif "$" in raw:
        note = "holds a variable; not pinned"
    else:
        return ImageUse(line, "image", raw, raw, None, start + 1, end - 1, column=column, kind=KIND)
    return ImageUse(line, "image", raw, None, None, start + 1, start + 1, status=SKIP, note=note,
                    column=column, kind=KIND)  # fmt: skip


def _top_level_strings(text: str, path: str, key: str) -> list[tuple[int, int, int]]:
    """(key offset, value start, value end) of every top-level ``key`` whose value is a string.

    Validates the whole document (objects, arrays, trailing commas allowed) with an explicit stack, so deep nesting
    cannot exhaust the interpreter's recursion.
    """
    found: list[tuple[int, int, int]] = []
    stack: list[str] = []
    state = "value"  # value | key | colon | after | item (a value or a closing bracket)
    current_key: str | None = None
    key_at = 0
    last = 0

    def fail(cause: str, at: int) -> FileFormatError:
        return FileFormatError(f"not a valid {WHAT}: {cause}", path, _line(text, at))

    for tok, start, end in _tokens(text, path):
        last = start
        t = text[start:end]
        if state == "after":
            if not stack:
                raise fail(f"unexpected {t!r} after the end of the document", start)
            if t == ",":
                state = "key" if stack[-1] == "{" else "item"
            elif (t == "}" and stack[-1] == "{") or (t == "]" and stack[-1] == "["):
                stack.pop()
            else:
                raise fail(f"expected ',' or a closing bracket, found {t!r}", start)
            continue
        if state == "key":
            if t == "}":
                stack.pop()
                state = "after"
            elif tok == "string":
                if len(stack) == 1:
                    current_key, key_at = json.loads(t), start
                state = "colon"
            else:
                raise fail(f"expected a quoted key, found {t!r}", start)
            continue
        if state == "colon":
            if t != ":":
                raise fail(f"expected ':', found {t!r}", start)
            state = "value"
            continue
        if state == "item" and t == "]":
            stack.pop()
            state = "after"
            continue
        # A value.
        if not stack and t != "{":
            raise fail("the top level must be an object", start)
        if t in ("{", "["):
            stack.append(t)
            state = "key" if t == "{" else "item"
            continue
        if tok not in ("string", "literal"):
            raise fail(f"expected a value, found {t!r}", start)
        if tok == "string" and len(stack) == 1 and current_key == key:
            found.append((key_at, start, end))
        state = "after"
    if stack or state != "after":
        raise fail("unexpected end of file", len(text) if stack else last)
    return found
