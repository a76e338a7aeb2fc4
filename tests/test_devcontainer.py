"""Tests for devcontainer.json (JSON with comments and trailing commas): the top-level image, exact spans, errors."""

from __future__ import annotations

import pytest

from pin_images import devcontainer
from pin_images.errors import FileFormatError
from pin_images.uses import OK, SKIP, Edit, apply

DIGEST = "sha256:" + "cd" * 32
D = "@" + DIGEST


def pinned(src: str | bytes) -> bytes:
    data = src.encode() if isinstance(src, str) else src
    uses = devcontainer.scan(data, ".devcontainer/devcontainer.json").uses
    return apply(data, [Edit(u.end, u.end, "@" + DIGEST) for u in uses if u.status == OK])


CASES = [
    ('{"image": "mcr.microsoft.com/devcontainers/base:ubuntu"}',
     '{"image": "mcr.microsoft.com/devcontainers/base:ubuntu' + D + '"}'),
    # comments of both kinds, a trailing comma, CRLF, a BOM and odd spacing all stay
    ('\ufeff// Dev container\r\n{\r\n  /* img */ "name": "x",\r\n  "image" :\t"node:20", // pin\r\n}\r\n',
     '\ufeff// Dev container\r\n{\r\n  /* img */ "name": "x",\r\n  "image" :\t"node:20' + D + '", // pin\r\n}\r\n'),
    # an "image" below the top level is not the container's image
    ('{"features": {"image": "no:1"}, "x": [{"image": "no:2"}], "image": "yes:1",}',
     '{"features": {"image": "no:1"}, "x": [{"image": "no:2"}], "image": "yes:1' + D + '",}'),
    # comment markers inside strings are text
    ('{"name": "a // b /* c", "image": "python:3.12"}', '{"name": "a // b /* c", "image": "python:3.12' + D + '"}'),
    # a Dockerfile- or Compose-based container names no image here
    ('{"build": {"dockerfile": "Dockerfile"}}', '{"build": {"dockerfile": "Dockerfile"}}'),
    ('{"dockerComposeFile": "compose.yaml", "service": "a"}', '{"dockerComposeFile": "compose.yaml", "service": "a"}'),
    # non-ASCII before the value does not shift it
    ('{"name": "café 😀", "image": "x:1"}', '{"name": "café 😀", "image": "x:1' + D + '"}'),
]  # fmt: skip


@pytest.mark.parametrize(("src", "expected"), CASES)
def test_devcontainer_pins_exactly_the_image(src, expected):
    assert pinned(src) == expected.encode()


def test_devcontainer_use_location():
    (use,) = devcontainer.scan(b'{\n  "image":  "node:20"\n}\n', "x").uses
    assert (use.line, use.column, use.kind, use.image, use.instruction) == (2, 14, "devcontainer", "node:20", "image")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ('"node:\\u0032"', "a string with escape sequences"),
        ('"node\\/x:1"', "a string with escape sequences"),
        ('""', "empty value"),
        ('"${localEnv:IMAGE}"', "holds a variable"),
    ],
)
def test_devcontainer_values_skipped_with_a_note(value, why):
    src = '{"image": ' + value + "}"
    (use,) = devcontainer.scan(src.encode(), "x").uses
    assert use.status == SKIP and use.image is None and use.note.startswith(why)
    assert pinned(src) == src.encode()


@pytest.mark.parametrize("value", ["1", "null", "true", '{"name": "x:1"}', '["x:1"]'])
def test_devcontainer_image_that_is_not_a_string_is_not_a_reference(value):
    assert devcontainer.scan(('{"image": ' + value + "}").encode(), "x").uses == ()


@pytest.mark.parametrize(
    ("src", "line", "cause"),
    [
        ('{"image": "x:1"', 1, "unexpected end of file"),
        ('{\n"image": "x:1\n}', 2, "unterminated string"),
        ('{\n  /* never closed\n}', 2, "unterminated comment"),
        ('{"image" "x:1"}', 1, "expected ':'"),
        ('{"a": 1 "b": 2}', 1, "expected ',' or a closing bracket"),
        ("{image: 'x:1'}", 1, "unexpected character"),
        ('{"a": [1,,]}', 1, "expected a value"),
        ('["x"]', 1, "the top level must be an object"),
        ('{"a": 1}\n{"b": 2}', 2, "unexpected '{' after the end of the document"),
        ("", 1, "unexpected end of file"),
        ("// only a comment\n", 1, "unexpected end of file"),
        ('{"a": 1}]', 1, "unexpected ']' after the end of the document"),
        ('{"a": [1}', 1, "expected ',' or a closing bracket"),
    ],
)
def test_devcontainer_errors_name_file_line_and_cause(src, line, cause):
    with pytest.raises(FileFormatError) as err:
        devcontainer.scan(src.encode(), ".devcontainer.json")
    assert str(err.value).startswith(f".devcontainer.json:{line}: not a valid devcontainer.json: {cause}")


def test_devcontainer_not_utf8_is_an_error():
    with pytest.raises(FileFormatError, match=r"^d\.json:2: not a UTF-8"):
        devcontainer.scan(b'{\n"image": "\xff"}', "d.json")


def test_devcontainer_deep_nesting_needs_no_recursion():
    src = '{"a": ' + "[" * 200_000 + "]" * 200_000 + ', "image": "x:1"}'
    assert [u.image for u in devcontainer.scan(src.encode(), "x").uses] == ["x:1"]
