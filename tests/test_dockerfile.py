"""Tests for pin_images.dockerfile: scanning image references with exact spans, and byte-exact editing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pin_images import dockerfile as df
from pin_images.dockerfile import IGNORED, OK, OVERRIDDEN, PLATFORM_ARG, UNRESOLVED, Edit, apply, scan
from pin_images.errors import DockerfileError

DIGEST = "sha256:" + "ab" * 32
CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.dockerfile-corpus"))


def found(src: str | bytes, **build_args: str) -> list[tuple[object, ...]]:
    """(line, instruction, image, text of the span to edit, status) for every use."""
    data = src.encode("utf-8", "surrogateescape") if isinstance(src, str) else src
    text = data.decode("utf-8", "surrogateescape")
    return [
        (u.line, u.instruction, u.image, text[u.start : u.end], u.status) for u in scan(data, "Dockerfile", build_args)
    ]


def pin(data: bytes, uses: list[df.ImageUse]) -> bytes:
    return apply(data, [Edit(u.end, u.end, "@" + DIGEST) for u in uses if u.status == OK])


SCAN_CASES = [
    ("FROM python:3.12\n", {}, [(1, "FROM", "python:3.12", "python:3.12", OK)]),
    # flags are skipped, `AS name` in any case
    ("FROM --platform=linux/amd64 alpine:3 as Base\n", {}, [(1, "FROM", "alpine:3", "alpine:3", OK)]),
    ("from alpine:3\nrun true\n", {}, [(1, "FROM", "alpine:3", "alpine:3", OK)]),
    # scratch (any case) is never an image
    ("FROM scratch\nFROM SCRATCH\n", {}, []),
    # an earlier stage is not an image, in any case
    ("FROM a AS Build\nFROM build\nFROM BUILD\n", {}, [(1, "FROM", "a", "a", OK)]),
    # a LATER stage's name is an external image for FROM
    (
        "FROM tools\nFROM alpine AS tools\n",
        {},
        [(1, "FROM", "tools", "tools", OK), (2, "FROM", "alpine", "alpine", OK)],
    ),
    # --from sees every stage, also later ones; numeric indexes are stages
    (
        "FROM a\nCOPY --from=later /x /y\nCOPY --from=0 /x /y\nCOPY --from=redis:7 /x /y\nFROM b AS later\n",
        {},
        [(1, "FROM", "a", "a", OK), (4, "COPY", "redis:7", "redis:7", OK), (5, "FROM", "b", "b", OK)],
    ),
    ("FROM a\nADD --from=nginx:1 /x /y\n", {}, [(1, "FROM", "a", "a", OK), (2, "ADD", "nginx:1", "nginx:1", OK)]),
    # --from value in quotes: the span stays inside them
    (
        'FROM a\nCOPY --from="busybox:1" /x /y\n',
        {},
        [(1, "FROM", "a", "a", OK), (2, "COPY", "busybox:1", "busybox:1", OK)],
    ),
    # RUN --mount from= (CSV, quoted fields, several mounts); cache without from and tmpfs are not images
    (
        "FROM a AS s\nRUN --mount=type=cache,target=/c --mount=from=s,target=/s \\\n"
        '  --mount=type=bind,from=alpine:3,target=/z --mount="from=busybox:1,target=/b" '
        "--mount=type=tmpfs,from=x:1,target=/t true\n",
        {},
        [
            (1, "FROM", "a", "a", OK),
            (3, "RUN", "alpine:3", "alpine:3", OK),
            (3, "RUN", "busybox:1", "busybox:1", OK),
        ],
    ),
    # a CSV-quoted field: the span is the value inside the field's quotes
    (
        'FROM a\nRUN --mount=type=bind,"from=b:1",target=/x true\n',
        {},
        [(1, "FROM", "a", "a", OK), (2, "RUN", "b:1", "b:1", OK)],
    ),
    # continuation inside FROM, and a comment line inside it: the line is the reference's own
    (
        "FROM \\\n# note\n  --platform=linux/arm64 \\\n  alpine:3.19 \\\n  AS x\n",
        {},
        [(4, "FROM", "alpine:3.19", "alpine:3.19", OK)],
    ),
    # the frontend image of `# syntax=` is left alone
    ("# syntax=docker/dockerfile:1\nFROM a\n", {}, [(2, "FROM", "a", "a", OK)]),
    # ONBUILD triggers run in another build's context: not ours to pin
    ("FROM a\nONBUILD COPY --from=b:1 /x /y\n", {}, [(1, "FROM", "a", "a", OK)]),
]


@pytest.mark.parametrize(("src", "build_args", "expected"), SCAN_CASES)
def test_scan(src: str, build_args: dict[str, str], expected: list[tuple[object, ...]]) -> None:
    assert found(src, **build_args) == expected


ARG_CASES = [
    # whole reference is one ARG with a default: edit the default
    ("ARG BASE=python:3.12\nFROM $BASE\n", {}, ("python:3.12", "python:3.12", 1, OK)),
    ("ARG BASE=python:3.12\nFROM ${BASE}\n", {}, ("python:3.12", "python:3.12", 1, OK)),
    # quoted defaults: the span is inside the quotes
    ('ARG BASE="python:3.12"\nFROM $BASE\n', {}, ("python:3.12", "python:3.12", 1, OK)),
    ("ARG BASE='python:3.12'\nFROM $BASE\n", {}, ("python:3.12", "python:3.12", 1, OK)),
    # several ARGs on one line
    ("ARG A=a:1 B=b:2\nFROM $B\n", {}, ("b:2", "b:2", 1, OK)),
    # a default built from earlier ARGs (jupyter/docker-stacks style)
    (
        "ARG REG=quay.io\nARG OWNER=jupyter\nARG IMG=$REG/$OWNER/base\nFROM $IMG\n",
        {},
        ("quay.io/jupyter/base", "$REG/$OWNER/base", 3, OK),
    ),
    # composed reference: the span is the token in the instruction
    ("ARG REG=ghcr.io\nFROM ${REG}/app:1\n", {}, ("ghcr.io/app:1", "${REG}/app:1", 2, OK)),
    ("ARG V=20\nFROM node:$V-alpine\n", {}, ("node:20-alpine", "node:$V-alpine", 2, OK)),
    # ${X:-default} with X unset uses the default, and the digest goes inside the braces; ${X:+alt} and ${X-default}
    ("FROM ${IMG:-python:3.12}\n", {}, ("python:3.12", "python:3.12", 1, OK)),
    ("ARG IMG=\nFROM ${IMG:-python:3.12}\n", {}, ("python:3.12", "python:3.12", 2, OK)),
    ("ARG IMG=\nFROM ${IMG-python:3.12}x\n", {}, ("x", "${IMG-python:3.12}x", 2, OK)),
    ("ARG S=1\nFROM node${S:+:20}\n", {}, ("node:20", "node${S:+:20}", 2, OK)),
    ("ARG T=v1.2.3\nFROM app:${T#v}\n", {}, ("app:1.2.3", "app:${T#v}", 2, OK)),
    # a --build-arg that overrides the default the file names: not pinned (the digest would be another image's)
    ("ARG BASE=python:3.12\nFROM $BASE\n", {"BASE": "python:3.13"}, (None, "$BASE", 2, OVERRIDDEN)),
    # ... one that gives an ARG without default its value is allowed; the digest goes after the token
    ("ARG BASE\nFROM $BASE\n", {"BASE": "python:3.13"}, ("python:3.13", "$BASE", 2, OK)),
    ("ARG V\nFROM node:$V\n", {"V": "22"}, ("node:22", "node:$V", 2, OK)),
    # build-args only reach declared ARGs
    ("FROM node:$V\n", {"V": "22"}, (None, "node:$V", 1, UNRESOLVED)),
    # ARG without a value: reported, not expanded to `node:`
    ("ARG V\nFROM node:$V\n", {}, (None, "node:$V", 2, UNRESOLVED)),
    # `ARG A=1 B`: B has no value
    ("ARG A=1 B\nFROM img:$B\n", {}, (None, "img:$B", 2, UNRESOLVED)),
    # predefined platform ARGs have no value when pinning, even through another ARG
    ("FROM img:$TARGETARCH\n", {}, (None, "img:$TARGETARCH", 1, PLATFORM_ARG)),
    ("ARG IMG=img:${TARGETOS}\nFROM $IMG\n", {}, (None, "img:${TARGETOS}", 1, PLATFORM_ARG)),
    # in a stage, a platform ARG that was not declared there is still a platform ARG
    ("FROM a\nCOPY --from=img:$TARGETARCH / /\n", {}, (None, "img:$TARGETARCH", 2, PLATFORM_ARG)),
    ("FROM a\nARG TARGETARCH\nCOPY --from=img:$TARGETARCH / /\n", {}, (None, "img:$TARGETARCH", 3, PLATFORM_ARG)),
    # FROM sees only global ARGs: a stage ARG does not reach the next FROM
    ("FROM a\nARG X=b:1\nFROM $X\n", {}, (None, "$X", 3, UNRESOLVED)),
    # a later global re-declaration without value keeps the earlier default
    ("ARG B=x:1\nARG B\nFROM $B\n", {}, ("x:1", "x:1", 1, OK)),
    # the last default wins
    ("ARG B=x:1\nARG B=y:2\nFROM $B\n", {}, ("y:2", "y:2", 2, OK)),
    # escape directive is the escape character of the expansion too
    ("# escape=`\nARG B=a:1\nFROM `$B\n", {}, ("$B", "`$B", 3, OK)),
]


@pytest.mark.parametrize(("src", "build_args", "expected"), ARG_CASES)
def test_arg_expansion(src: str, build_args: dict[str, str], expected: tuple[object, ...]) -> None:
    """(image, text of the edit span, its line, status) of the last use, which is on the last line."""
    text = src
    u = scan(src.encode(), "Dockerfile", build_args)[-1]
    assert (u.image, text[u.start : u.end], u.line, u.status) == expected
    assert u.written == text.splitlines()[-1].split()[1].replace("--from=", "")


def test_arg_naming_a_stage_is_a_stage() -> None:
    assert found("ARG STAGE=build\nFROM a AS build\nFROM $STAGE\n") == [(2, "FROM", "a", "a", OK)]


def test_several_uses_of_one_arg_share_the_span() -> None:
    data = b"ARG BASE=python:3.12\nFROM $BASE AS a\nRUN true\nFROM ${BASE}\n"
    uses = scan(data)
    assert len(uses) == 2 and (uses[0].start, uses[0].end) == (uses[1].start, uses[1].end)
    # the caller emits one edit per use; identical edits collapse
    assert pin(data, uses) == data.replace(b"python:3.12", b"python:3.12@" + DIGEST.encode())


@pytest.mark.parametrize(
    "src",
    [
        # the ARG is also part of a composed reference: a digest on its default would end up inside that one
        "ARG BASE=python:3.12\nFROM $BASE AS a\nFROM ${BASE}-slim\n",
        # ... or in another ARG's default, or anywhere else it is expanded
        "ARG BASE=python:3.12\nARG FULL=$BASE\nFROM $BASE\n",
        "ARG BASE=python:3.12\nFROM $BASE\nLABEL base=${BASE}\n",
    ],
)
def test_arg_default_is_not_edited_when_the_arg_has_other_uses(src: str) -> None:
    data = src.encode()
    pinned = pin(data, scan(data)[:1])
    assert pinned.splitlines()[0] == b"ARG BASE=python:3.12"
    assert b"$BASE@" + DIGEST.encode() in pinned


def test_stage_arg_inherits_the_global_value_and_its_span() -> None:
    data = b"ARG IMG=redis:7\nFROM alpine\nARG IMG\nCOPY --from=$IMG /x /y\n"
    uses = scan(data)
    assert [(u.instruction, u.image) for u in uses] == [("FROM", "alpine"), ("COPY", "redis:7")]
    assert pin(data, uses) == b"ARG IMG=redis:7@%s\nFROM alpine@%s\nARG IMG\nCOPY --from=$IMG /x /y\n" % (
        (DIGEST.encode(),) * 2
    )


def test_stage_arg_and_env_expand_in_copy_from() -> None:
    # BuildKit itself rejects variables in --from; we still resolve them the way the user meant.
    src = "FROM a\nARG V=3\nENV IMG=alpine:$V\nCOPY --from=$IMG /x /y\nRUN --mount=from=${IMG},target=/m true\n"
    assert found(src)[1:] == [(4, "COPY", "alpine:3", "$IMG", OK), (5, "RUN", "alpine:3", "${IMG}", OK)]


def test_stage_inherits_args_of_its_base_stage() -> None:
    src = "FROM a AS base\nARG IMG=b:1\nFROM base\nCOPY --from=$IMG /x /y\n"
    assert found(src)[1] == (2, "COPY", "b:1", "b:1", OK)  # the line of the default the digest goes on


@pytest.mark.parametrize(
    ("src", "platform"),
    [
        ("FROM --platform=linux/arm64 alpine\n", "linux/arm64"),
        ("ARG P=linux/amd64\nFROM --platform=$P alpine\n", "linux/amd64"),
        # expanded from a predefined ARG: unknown when pinning
        ("FROM --platform=$BUILDPLATFORM alpine\n", None),
        ("FROM alpine\n", None),
    ],
)
def test_platform(src: str, platform: str | None) -> None:
    (use,) = scan(src.encode())
    assert (use.platform, use.status) == (platform, OK)


def test_notes_name_the_arg() -> None:
    unresolved, platform = scan(b"ARG VERSION\nFROM node:$VERSION\nFROM img:$TARGETARCH\n")
    assert "VERSION" in unresolved.note and "TARGETARCH" in platform.note


@pytest.mark.parametrize(
    ("src", "statuses"),
    [
        ("# pin-images: ignore\nFROM a\nFROM b\n", [IGNORED, OK]),
        # case-insensitive, whitespace-tolerant, CRLF
        ("  #PIN-IMAGES :  Ignore  \r\nFROM a\r\n", [IGNORED]),
        # must be directly above
        ("# pin-images: ignore\n\nFROM a\n", [OK]),
        ("# pin-images: ignore\n# other\nFROM a\n", [OK]),
        # covers every use of the instruction
        (
            "FROM a AS s\n# pin-images: ignore\nRUN --mount=from=b:1,target=/b --mount=from=c:1,target=/c true\n",
            [OK, IGNORED, IGNORED],
        ),
        # a comment inside a heredoc body is not a pragma for the next instruction
        ("FROM a\nRUN <<EOF\n# pin-images: ignore\nEOF\nFROM b\n", [OK, OK]),
    ],
)
def test_ignore_pragma(src: str, statuses: list[df.Status]) -> None:
    assert [u.status for u in scan(src.encode())] == statuses


# One test per dockerfile-parse bug listed in the issue.


def test_bug_phantom_from_in_heredoc() -> None:
    assert found("FROM a\nRUN <<EOF\nFROM ubuntu\nCOPY --from=x:1 / /\nEOF\n") == [(1, "FROM", "a", "a", OK)]


def test_bug_bom_keeps_first_from_and_escape_directive() -> None:
    data = "\ufeff# escape=`\nFROM python:3.12 `\n  AS x\n".encode()
    (use,) = scan(data)
    assert (use.image, use.start, use.line) == ("python:3.12", data.decode().index("python"), 2)
    assert pin(data, [use]).startswith(b"\xef\xbb\xbf# escape=`\nFROM python:3.12@sha256:")


def test_bug_blank_line_inside_continuation() -> None:
    assert found("FROM a \\\n\n   AS b\nFROM b\n") == [(1, "FROM", "a", "a", OK)]


def test_bug_arg_built_from_args() -> None:
    src = "ARG REGISTRY=quay.io\nARG OWNER=jupyter\nARG BASE_IMAGE=$REGISTRY/$OWNER/base-notebook\nFROM $BASE_IMAGE\n"
    assert found(src) == [(3, "FROM", "quay.io/jupyter/base-notebook", "$REGISTRY/$OWNER/base-notebook", OK)]


def test_bug_arg_without_value_is_reported() -> None:
    (use,) = scan(b"ARG NODE_VERSION\nFROM node:${NODE_VERSION}\n")
    assert (use.status, use.image) == (UNRESOLVED, None)


def test_bug_default_modifier() -> None:
    assert found("FROM ${X:-debian:12}\n") == [(1, "FROM", "debian:12", "debian:12", OK)]


def test_bug_arg_with_and_without_value_on_one_line() -> None:
    assert found("ARG A=alpine:3 B\nFROM $A\n") == [(1, "FROM", "alpine:3", "alpine:3", OK)]


@pytest.mark.parametrize(
    ("data", "line", "cause"),
    [
        (b"FROM a\x00\n", None, "binary file"),
        (b"FROM\n", 1, "one or three arguments"),
        (b"FROM a b\n", 1, "one or three arguments"),
        (b"FROM a AS 1x\n", 1, "invalid name for build stage"),
        (b"FROM --platfrom=x a\n", 1, "Unknown flag: platfrom"),
        (b"FROM --platform a\n", 1, "Missing a value on flag: platform"),
        (b"FROM a\nCOPY --from /x /y /z\n", 2, "Missing a value on flag: from"),
        (b"FROM a\nRUN <<EOF\nbody\n", 2, "unterminated heredoc"),
        (b"FROM a\nFORM b\n", 2, "unknown instruction: FORM"),
        (b"RUN true\nFROM a\n", 1, "no build stage"),
        (b"# escape=x\nFROM a\n", 1, "invalid escape token"),
        (b"FROM a\nRUN --mount=type=secret,id=t,from=b true\n", 2, "secret mount should not have a from"),
        (b'FROM a\nRUN ["a", 1]\n', 2, "arrays must be comprised of strings"),
    ],
)
def test_errors(data: bytes, line: int | None, cause: str) -> None:
    with pytest.raises(DockerfileError) as exc:
        scan(data, "dir/Dockerfile")
    assert (exc.value.path, exc.value.line) == ("dir/Dockerfile", line)
    assert cause in str(exc.value) and "\n" not in str(exc.value)


def test_unknown_instruction_is_allowed_under_a_custom_frontend() -> None:
    # e.g. dockerfile-x adds INCLUDE; only BuildKit's own frontend rejects unknown instructions
    assert found("# syntax=devthefuture/dockerfile-x\nFROM a\nINCLUDE ./other.dockerfile\n") == [
        (2, "FROM", "a", "a", OK)
    ]


def test_empty_file_has_no_uses() -> None:
    assert scan(b"") == [] and scan(b"# just a comment\n") == []


# Editing: byte-exact round trips.

ROUND_TRIPS = [
    b"FROM python:3.12\r\nRUN echo hi\r\n",  # CRLF
    b"\xef\xbb\xbfFROM python:3.12\n",  # BOM
    b"FROM python:3.12",  # no trailing newline
    b"FROM \\\r\n  python:3.12 \\\r\n  AS b\r\nCOPY --from=b /a /b\r\n",  # continuations
    b"FROM a\nRUN <<EOF\nFROM b\nEOF\nCOPY --from=c:1 /x /y\n",  # heredocs
    b"# caf\xe9 \xff\nFROM\tpython:3.12\t\n# \xe9\n",  # non-UTF-8 comments, tabs
    b"ARG B='python:3.12'\n# \x80\nFROM $B\nFROM ${B}\n",  # quoted ARG default, used twice
]


@pytest.mark.parametrize("data", ROUND_TRIPS)
def test_pin_then_unpin_round_trips(data: bytes) -> None:
    uses = scan(data)
    assert uses
    pinned = pin(data, uses)
    assert pinned != data
    assert pinned.replace(b"@" + DIGEST.encode(), b"") == data
    # the pinned file still scans, now with the digest in the reference
    assert all(u.image is None or u.image.endswith("@" + DIGEST) for u in scan(pinned))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_round_trips(path: Path) -> None:
    data = path.read_bytes()
    uses = scan(data, path.name)
    pinned = pin(data, uses)
    assert pinned.replace(b"@" + DIGEST.encode(), b"") == data
    again = [u for u in scan(pinned, path.name) if u.status == OK]
    assert len(again) == sum(u.status == OK for u in uses)
    assert all(re.search("@sha256:[0-9a-f]{64}$", u.image or "") for u in again)


@pytest.mark.parametrize(
    ("data", "edits", "expected"),
    [
        (b"abc", [], b"abc"),
        (b"abc", [Edit(1, 1, "X")], b"aXbc"),
        (b"abc", [Edit(0, 1, "X"), Edit(3, 3, "Y")], b"XbcY"),
        # identical duplicates collapse
        (b"abc", [Edit(1, 1, "X"), Edit(1, 1, "X")], b"aXbc"),
        # replacing a digest (--update)
        (b"a@sha256:00", [Edit(2, 11, "sha256:ff")], b"a@sha256:ff"),
        # an insertion right after a replacement is well ordered
        (b"abc", [Edit(0, 1, "X"), Edit(1, 1, "Y")], b"XYbc"),
        # offsets count characters of the surrogateescape text, not bytes
        ("é\udcffz".encode("utf-8", "surrogateescape"), [Edit(2, 2, "!")], b"\xc3\xa9\xff!z"),
    ],
)
def test_apply(data: bytes, edits: list[Edit], expected: bytes) -> None:
    assert apply(data, edits) == expected


@pytest.mark.parametrize(
    "edits",
    [
        [Edit(0, 2, "X"), Edit(1, 3, "Y")],
        [Edit(1, 1, "X"), Edit(1, 1, "Y")],  # two insertions at one point: no defined order
        [Edit(0, 2, "X"), Edit(0, 0, "Y")],
        [Edit(2, 9, "X")],  # outside the text
    ],
)
def test_apply_rejects_conflicts(edits: list[Edit]) -> None:
    with pytest.raises(ValueError):
        apply(b"abc", edits)
