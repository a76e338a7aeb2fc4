"""The Dockerfile scanner's decisions: where a reference is, where its digest goes, and what it says when it won't.

Each test asserts what a user sees: the pinned bytes, a use's line/column/status/note, or a file note.
"""

from __future__ import annotations

import pytest

from pin_images import dockerfile as df
from pin_images.cli import main
from pin_images.dockerfile import INVALID, OK, OVERRIDDEN, PLATFORM_ARG, UNRESOLVED, Edit, apply, scan
from pin_images.errors import DockerfileError
from pin_images.uses import FileScan, ImageUse, ScanOptions

from .conftest import fake_digest

DIGEST = "sha256:" + "ab" * 32


def scanned(src: str | bytes, pin_syntax: bool = False, **build_args: str) -> FileScan:
    data = src.encode("utf-8", "surrogateescape") if isinstance(src, str) else src
    return df.scan_uses(data, "Dockerfile", ScanOptions(build_args=build_args, pin_syntax=pin_syntax))


def uses(src: str | bytes, **build_args: str) -> list[ImageUse]:
    return list(scanned(src, **build_args).uses)


def pinned(src: str, pin_syntax: bool = False, **build_args: str) -> str:
    """The file as a run would write it: ``@digest`` after every OK use's span."""
    data = src.encode()
    edits = [Edit(u.end, u.end, "@" + DIGEST) for u in scanned(data, pin_syntax, **build_args).uses if u.status == OK]
    return apply(data, edits).decode()


def where(src: str, **build_args: str) -> list[tuple[int, int, str]]:
    """(line, column, the text at that line and column up to the span's end) for every use."""
    lines = src.splitlines(keepends=True)
    out = []
    for u in uses(src, **build_args):
        at = sum(len(line) for line in lines[: u.line - 1]) + u.column - 1
        at += u.line == 1 and src.startswith("\ufeff")  # the BOM is not a column
        out.append((u.line, u.column, src[at : u.end]))
    return out


# Line and column: of the reference text itself, not of the instruction's first line.

POSITIONS = [
    # a FROM continued over four lines: the reference is on line 3
    (
        "FROM \\\n  --platform=$BUILDPLATFORM \\\n  rust:1.80-slim-bookworm \\\n  AS build\n",
        [(3, 3, "rust:1.80-slim-bookworm")],
    ),
    # a second --mount on a continued RUN
    (
        "FROM a\nRUN --mount=from=busybox:1.36,target=/b \\\n    --mount=type=bind,from=alpine:3,target=/a true\n",
        [(1, 6, "a"), (2, 18, "busybox:1.36"), (3, 28, "alpine:3")],
    ),
    # after a blank line and a comment inside a continuation
    ("FROM \\\n\n# base image\n  python:3.12\n", [(4, 3, "python:3.12")]),
    # CRLF line endings
    (
        "FROM a\r\nCOPY --from=b:1 \\\r\n  /x /y\r\nRUN \\\r\n  --mount=from=c:2,target=/c true\r\n",
        [(1, 6, "a"), (2, 13, "b:1"), (5, 16, "c:2")],
    ),
    # the backtick escape
    ("# escape=`\nFROM `\n  --platform=linux/arm64 `\n  node:20 AS n\n", [(4, 3, "node:20")]),
    # tabs count as one column each
    ("FROM\t\tpython:3.12\nCOPY\t--from=\tb:1 / /\n", [(1, 7, "python:3.12")]),
    # a quoted reference: the column of the name, inside the quotes
    ('FROM "python:3.12"\n', [(1, 7, "python:3.12")]),
    # the BOM is not a column
    ("\ufeffFROM python:3.12\n", [(1, 6, "python:3.12")]),
    # the digest goes on the ARG's default: that is the line and column reported, for every use of it
    ("ARG BASE=python:3.12\nFROM $BASE AS a\nFROM ${BASE}\n", [(1, 10, "python:3.12"), (1, 10, "python:3.12")]),
    # a fallback pinned inside its braces: the fallback's own column
    ("ARG BASE\nFROM ${BASE:-debian:12}\n", [(2, 14, "debian:12")]),
]


@pytest.mark.parametrize(("src", "expected"), POSITIONS)
def test_line_and_column_locate_the_reference(src: str, expected: list[tuple[int, int, str]]) -> None:
    assert where(src) == expected


def test_a_flag_value_that_is_not_a_reference_keeps_its_line() -> None:
    # `COPY --from=\tb:1`: the flag has no value ("" is no reference), BuildKit reads `b:1` as a source path
    assert [u.written for u in uses("FROM a\nCOPY --from=\tb:1 / /\n")] == ["a"]


# `${VAR:-fallback}`: the digest goes inside the braces, never after them.

FALLBACKS = [
    ("ARG BASE\nFROM ${BASE:-debian:bookworm-slim}\n", "ARG BASE\nFROM ${BASE:-debian:bookworm-slim@%s}\n"),
    # BuildKit reads `${BASE-x}` alike here: an ARG without a value is unset, not empty
    ("ARG BASE\nFROM ${BASE-debian:12}\n", "ARG BASE\nFROM ${BASE-debian:12@%s}\n"),
    # never declared, or declared empty (`:-` treats empty as unset)
    ("FROM ${BASE:-debian:12}\n", "FROM ${BASE:-debian:12@%s}\n"),
    ("ARG BASE=\nFROM ${BASE:-debian:12}\n", "ARG BASE=\nFROM ${BASE:-debian:12@%s}\n"),
    # quoted, in COPY --from and in a mount
    ('ARG B\nFROM "${B:-debian:12}"\n', 'ARG B\nFROM "${B:-debian:12@%s}"\n'),
    ("FROM a\nCOPY --from=${X:-b:1} / /\n", "FROM a@%s\nCOPY --from=${X:-b:1@%s} / /\n"),
    # the fallback is the end of a composed reference: still inside the braces, so an override replaces it all
    ("ARG TAG\nFROM python:${TAG:-3.12}\n", "ARG TAG\nFROM python:${TAG:-3.12@%s}\n"),
    # the ARG has a default: the fallback is unused and the default is what to pin
    ("ARG BASE=python:3.12\nFROM ${BASE:-debian:12}\n", "ARG BASE=python:3.12@%s\nFROM ${BASE:-debian:12}\n"),
    # `${X-y}` with X set but empty is empty: the reference is what follows
    ("ARG IMG=\nFROM ${IMG-python:3.12}x\n", "ARG IMG=\nFROM ${IMG-python:3.12}x@%s\n"),
]


@pytest.mark.parametrize(("src", "expected"), FALLBACKS)
def test_fallback_is_pinned_inside_its_braces(src: str, expected: str) -> None:
    assert pinned(src) == expected.replace("%s", DIGEST)


def test_pinned_fallback_still_builds_an_override() -> None:
    after = pinned("ARG BASE\nFROM ${BASE:-debian:12}\n")
    # the pinned file names the override alone, and the fallback pinned
    assert [u.image for u in uses(after, BASE="ubuntu:24.04")] == [None]
    assert [u.image for u in uses(after)] == ["debian:12@" + DIGEST]


def test_build_arg_replacing_a_fallback_is_overridden() -> None:
    (use,) = uses("ARG BASE\nFROM ${BASE:-debian:12}\n", BASE="ubuntu:24.04")
    assert (use.status, use.image) == (OVERRIDDEN, None)
    assert "--build-arg BASE replaces the fallback" in use.note


@pytest.mark.parametrize(
    "src", ["ARG V=1\nFROM ${BASE:-debian:$V}\n", "ARG V=debian:1\nFROM ${BASE:-${V}}\n", "FROM ${BASE:-'debian:1'}\n"]
)
def test_fallback_that_is_not_plain_text_is_not_pinned(src: str) -> None:
    (use,) = uses(src)
    assert use.status == UNRESOLVED and "not plain text" in use.note


# A broken instruction that no reference depends on does not stop the file.

DEVCONTAINER = """\
FROM mcr.microsoft.com/devcontainers/base:bullseye

ARG INSTALL_ZSH="${templateOption:installZsh}"
ARG UPGRADE_PACKAGES="${templateOption:upgradePackages}"
RUN echo $INSTALL_ZSH
"""


def test_devcontainer_template_pins_its_from_and_warns_about_the_bad_lines() -> None:
    result = scanned(DEVCONTAINER)
    assert [(u.image, u.status) for u in result.uses] == [("mcr.microsoft.com/devcontainers/base:bullseye", OK)]
    assert [(n.line, n.warning) for n in result.notes] == [(3, True), (4, True)]
    assert "ARG INSTALL_ZSH cannot be expanded" in result.notes[0].message
    assert "unsupported modifier (:i)" in result.notes[0].message
    assert pinned(DEVCONTAINER).startswith(f"FROM mcr.microsoft.com/devcontainers/base:bullseye@{DIGEST}\n")
    # the entry point without notes pins it too
    assert [u.status for u in scan(DEVCONTAINER.encode())] == [OK]


@pytest.mark.parametrize(
    ("src", "line", "cause"),
    [
        # the reference itself cannot be expanded
        ("FROM ${X\n", 1, "missing '}'"),
        ("FROM ${:x}\n", 1, "bad substitution"),
        ("FROM ${X:\n", 1, "missing '}'"),
        ("FROM ${X!y}\n", 1, "unsupported modifier"),
        ("FROM a\nCOPY --from=${templateOption:image} / /\n", 2, "unsupported modifier (:i)"),
        ("FROM --platform=${P:x} a\n", 1, "--platform cannot be expanded"),
        ("ARG B=\nFROM ${B}\n", 1, "base name (${B}) should not be blank"),
        # it depends on a declaration that cannot be expanded
        ('ARG IMG="${a:b}"\nFROM $IMG\n', 1, "ARG IMG on line 1 cannot be expanded"),
        ("FROM a\nENV IMG=${a:b}\nCOPY --from=$IMG / /\n", 3, "ENV IMG on line 2 cannot be expanded"),
    ],
)
def test_a_reference_that_cannot_be_expanded_is_invalid_alone(src: str, line: int, cause: str) -> None:
    data = (src + "FROM python:3.12 AS other\n").encode()
    result = df.scan_uses(data, "Dockerfile", ScanOptions())
    bad, good = result.uses[-2:]
    assert (bad.status, bad.image, bad.line) == (INVALID, None, line) and cause in bad.note
    assert (good.image, good.status) == ("python:3.12", OK)
    assert df.scan_file(data, "Dockerfile", ScanOptions()) == result
    # the entry point from before file kinds refuses the whole file for it, naming the line
    with pytest.raises(DockerfileError) as exc:
        scan(data, "Dockerfile")
    assert exc.value.line == line and cause in str(exc.value)


def test_broken_global_arg_only_spoils_what_uses_it() -> None:
    result = scanned("ARG X=${a:b}\nARG BASE=python:3.12\nFROM $BASE\nFROM node:$X\n")
    assert [(u.status, u.image) for u in result.uses] == [(OK, "python:3.12"), (INVALID, None)]
    assert [n.line for n in result.notes] == [1]


def test_build_arg_over_a_broken_default_is_not_expanded() -> None:
    # BuildKit never expands a default that a --build-arg replaces: no warning for it.
    result = scanned("ARG V=${a:b}\nFROM node:$V\n", V="22")
    assert [u.status for u in result.uses] == [OVERRIDDEN] and result.notes == ()


# --platform: the literal value after ARG expansion, or None.


@pytest.mark.parametrize(
    ("src", "build_args", "platform"),
    [
        ("FROM --platform=linux/arm64 python:3.12\n", {}, "linux/arm64"),
        ("ARG P=linux/arm64/v8\nFROM --platform=$P python:3.12\n", {}, "linux/arm64/v8"),
        ("ARG P\nFROM --platform=$P python:3.12\n", {"P": "linux/s390x"}, "linux/s390x"),
        ("FROM python:3.12\n", {}, None),
        ("FROM --platform=$BUILDPLATFORM python:3.12\n", {}, None),
        ("FROM --platform=${TARGETPLATFORM} python:3.12\n", {}, None),
        ("ARG P=$TARGETOS/amd64\nFROM --platform=$P python:3.12\n", {}, None),
        # even a --build-arg for a platform ARG: the platform is the build's, not the file's
        ("FROM --platform=$TARGETPLATFORM python:3.12\n", {"TARGETPLATFORM": "linux/arm64"}, None),
        ("ARG P\nFROM --platform=$P python:3.12\n", {}, None),
    ],
)
def test_platform_is_the_literal_flag_value(src: str, build_args: dict[str, str], platform: str | None) -> None:
    (use,) = uses(src, **build_args)
    assert (use.platform, use.status) == (platform, OK)


def test_copy_and_mount_uses_have_no_platform() -> None:
    assert [u.platform for u in uses("FROM --platform=linux/arm64 a\nCOPY --from=b:1 / /\n")] == ["linux/arm64", None]


# --build-arg against the defaults the file names.


@pytest.mark.parametrize(
    ("src", "build_args"),
    [
        ("ARG BASE=python:3.12-slim\nFROM ${BASE}\n", {"BASE": "python:3.13"}),
        ("ARG GO_VERSION=1.22\nFROM golang:${GO_VERSION}-bookworm\n", {"GO_VERSION": "1.23"}),
        # through another ARG's default, and through a stage ARG that inherits the global one
        ("ARG V=1.22\nARG IMG=golang:$V\nFROM $IMG\n", {"V": "1.23"}),
        ("ARG IMG=redis:7\nFROM a\nARG IMG\nCOPY --from=$IMG / /\n", {"IMG": "redis:8"}),
        ("FROM a\nARG IMG=redis:7\nCOPY --from=$IMG / /\n", {"IMG": "redis:8"}),
    ],
)
def test_build_arg_overriding_a_default_is_not_pinned(src: str, build_args: dict[str, str]) -> None:
    use = uses(src, **build_args)[-1]
    (name,) = build_args
    assert (use.status, use.image) == (OVERRIDDEN, None)
    assert f"--build-arg {name} overrides the default the file gives ARG {name}" in use.note
    assert pinned(src, **build_args).count(DIGEST) == len(uses(src, **build_args)) - 1


@pytest.mark.parametrize(
    ("src", "build_args", "expected"),
    [
        # a value for an ARG that has none is allowed
        ("ARG BASE\nFROM $BASE\n", {"BASE": "python:3.13"}, "ARG BASE\nFROM $BASE@%s\n"),
        ("ARG V\nFROM golang:${V}-bookworm\n", {"V": "1.23"}, "ARG V\nFROM golang:${V}-bookworm@%s\n"),
        # the same value as the default changes nothing: the default is pinned
        ("ARG BASE=python:3.12\nFROM $BASE\n", {"BASE": "python:3.12"}, "ARG BASE=python:3.12@%s\nFROM $BASE\n"),
    ],
)
def test_build_arg_without_a_default_to_replace_is_pinned(src: str, build_args: dict[str, str], expected: str) -> None:
    assert pinned(src, **build_args) == expected.replace("%s", DIGEST)


@pytest.mark.parametrize(
    ("src", "names"),
    [
        ("ARG GO_VERSION=1.22\nFROM golang:${GO_VERSION}-bookworm\n", "GO_VERSION"),
        ("ARG REG=quay.io\nARG OWNER=jupyter\nARG IMG=$REG/$OWNER/base\nFROM $IMG\n", "OWNER, REG"),
        # the ARG is used elsewhere too, so the digest goes after `$BASE`: an override keeps it as well
        ("ARG BASE=python:3.12\nFROM $BASE\nLABEL base=$BASE\n", "BASE"),
    ],
)
def test_composed_pin_notes_that_an_override_keeps_the_digest(src: str, names: str) -> None:
    (use,) = uses(src)
    assert use.status == OK
    assert use.note == f"built from ARG {names}: a --build-arg that changes it at build time still pulls this digest"


@pytest.mark.parametrize(
    "src",
    [
        "FROM python:3.12\n",
        "ARG BASE=python:3.12\nFROM $BASE\n",  # the override replaces the digest with the rest
        "ARG BASE\nFROM ${BASE:-python:3.12}\n",
    ],
)
def test_pin_an_override_replaces_whole_has_no_note(src: str) -> None:
    assert [u.note for u in uses(src)] == [""]


# Messages: each case worded as it is.


@pytest.mark.parametrize(
    ("src", "note"),
    [
        ("ARG V\nFROM node:$V\n", "depends on ARG V, which has no default value and no --build-arg"),
        (
            "FROM a\nARG V=20\nFROM node:$V\n",
            "depends on ARG V, which is declared only inside a stage (line 2); "
            "FROM sees only ARGs declared before the first FROM",
        ),
        ("FROM node:$V\n", "depends on $V, which no ARG before the first FROM declares"),
        (
            "ARG REG=ghcr.io\nFROM a\nCOPY --from=$REG/tools:1 / /\n",
            "depends on the global ARG REG, which this stage must redeclare (`ARG REG`) to see its default",
        ),
        (
            "ARG REG\nFROM a\nCOPY --from=$REG/tools:1 / /\n",
            "depends on the global ARG REG, which has no default value and is not redeclared in this stage",
        ),
        ("FROM a\nARG REG\nCOPY --from=$REG/tools:1 / /\n", "depends on ARG REG, which has no default value"),
        ("FROM a\nCOPY --from=$REG/tools:1 / /\n", "depends on $REG, which no ARG or ENV of this stage declares"),
        (
            "ARG A\nFROM $A:$B\n",
            "depends on ARG A, which has no default value and no --build-arg; "
            "$B, which no ARG before the first FROM declares",
        ),
    ],
)
def test_unresolved_messages_say_which_case_it_is(src: str, note: str) -> None:
    use = uses(src)[-1]
    assert use.status == UNRESOLVED and use.note.startswith(note)


@pytest.mark.parametrize("src", ["", "# just a comment\n", "# syntax=docker/dockerfile:1\n\n# c\n", "\ufeff \r\n"])
def test_file_with_no_instructions_is_a_quiet_note(src: str) -> None:
    result = scanned(src)
    assert result.uses == ()
    assert [(n.line, n.message, n.warning) for n in result.notes] == [(1, "file with no instructions", False)]


def test_platform_arg_note_is_unchanged() -> None:
    (use,) = uses("FROM img:$TARGETARCH\n")
    assert (use.status, use.note) == (
        PLATFORM_ARG,
        "depends on predefined platform ARG TARGETARCH, unknown when pinning",
    )


# `# syntax=`: pinned only when asked.


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("# syntax=docker/dockerfile:1.7\nFROM a\n", "# syntax=docker/dockerfile:1.7@%s\nFROM a@%s\n"),
        ("#syntax = docker/dockerfile:1 \r\nFROM a\r\n", "#syntax = docker/dockerfile:1@%s \r\nFROM a@%s\r\n"),
        (
            "\ufeff# escape=`\n# syntax=docker/dockerfile:1.7\nFROM a\n",
            "\ufeff# escape=`\n# syntax=docker/dockerfile:1.7@%s\nFROM a@%s\n",
        ),
        # not a directive once an instruction or another comment came first
        ("# hello\n# syntax=docker/dockerfile:1.7\nFROM a\n", "# hello\n# syntax=docker/dockerfile:1.7\nFROM a@%s\n"),
    ],
)
def test_syntax_frontend_is_pinned_when_asked(src: str, expected: str) -> None:
    assert pinned(src, pin_syntax=True) == expected.replace("%s", DIGEST)


def test_syntax_use_and_default() -> None:
    src = "# syntax=docker/dockerfile:1.7\nFROM a\n"
    syntax, _ = scanned(src, pin_syntax=True).uses
    assert (syntax.instruction, syntax.image, syntax.line, syntax.column) == ("syntax", "docker/dockerfile:1.7", 1, 10)
    assert [u.instruction for u in uses(src)] == ["FROM"]


# `# pin-images:` comments.


@pytest.mark.parametrize(
    "pragma",
    [
        "# pin-images: ignore",
        "# pin-images: ignore because vendored",
        "# pin-images: ignore -- vendored",
        "#pin-images:ignore\ttabbed reason",
        "# PIN-IMAGES: Ignore  ",
    ],
)
def test_ignore_pragma_accepts_a_reason(pragma: str) -> None:
    result = scanned(f"{pragma}\nFROM a\nFROM b\n")
    assert [u.status.value for u in result.uses] == ["ignored", "ok"] and result.notes == ()


@pytest.mark.parametrize(
    ("src", "line", "message"),
    [
        ("# pin-images: skip\nFROM a\n", 1, "unknown '# pin-images:' directive 'skip'"),
        ("FROM a\n# pin-images: ignored\nFROM b\n", 2, "unknown '# pin-images:' directive 'ignored'"),
        ("# pin-images: ignore--vendored\nFROM a\n", 1, "directive 'ignore--vendored'"),
        ("# pin-images:\nFROM a\n", 1, "unknown '# pin-images:' directive nothing"),
        ("# pin-images: ignore\n\nFROM a\n", 1, "has no effect: no instruction directly below"),
        # inside a continuation it is a comment BuildKit drops, and no instruction starts below it
        ("FROM \\\n# pin-images: ignore\n  a\n", 2, "has no effect"),
    ],
)
def test_unknown_or_misplaced_pragma_is_a_warning(src: str, line: int, message: str) -> None:
    result = scanned(src)
    assert all(u.status == OK for u in result.uses)
    ((note_line, text, warning),) = [(n.line, n.message, n.warning) for n in result.notes]
    assert (note_line, warning) == (line, True) and message in text


def test_pragma_lookalike_in_a_heredoc_is_not_a_comment() -> None:
    result = scanned("FROM a\nRUN <<EOF\n# pin-images: nonsense\nEOF\n")
    assert result.notes == ()


# Through the command line: what a user of a template repository sees.


def test_run_pins_a_template_and_warns_about_its_placeholder(tmp_path, resolver, capsys) -> None:
    f = tmp_path / "Dockerfile"
    f.write_bytes(DEVCONTAINER.encode())
    assert main(["--no-config", str(f)]) == 1
    image = "mcr.microsoft.com/devcontainers/base:bullseye"
    assert f.read_text() == DEVCONTAINER.replace(image, f"{image}@{fake_digest(image)}", 1)
    err = capsys.readouterr().err
    assert f"{f}:3: warning:" in err and "ARG INSTALL_ZSH cannot be expanded" in err


def test_run_reports_a_reference_that_cannot_be_expanded_as_its_own_error(tmp_path, resolver, capsys) -> None:
    data = b"FROM python:3.12\nCOPY --from=${templateOption:image} / /\n"
    f = tmp_path / "Dockerfile"
    f.write_bytes(data)
    assert main(["--no-config", str(f)]) == 2
    assert f.read_bytes() == data  # a file with a failed reference is left alone
    err = capsys.readouterr().err
    assert f"{f}:2: " in err and "unsupported modifier (:i)" in err
