"""Property tests for guarantee 1 (byte-exact edits) and the fuzzing targets, on generated Dockerfile-like texts.

Every example runs through ``main()`` on a real file with the fake resolver, and through ``scan``/``apply``
directly. Profiles: ``pin-images`` (default, small) and ``pin-images-fuzz`` (bench/fuzz.py, long, no database).
Pick one with PIN_IMAGES_HYPOTHESIS_PROFILE.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import time
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pin_images import dockerfile as df
from pin_images import reference
from pin_images.cli import main
from pin_images.errors import DockerfileError, InvalidReferenceError, PinImagesError

from .conftest import FakeResolver

# In CI the examples are derandomized, so a landing never turns on a new random draw; locally they stay random.
CI = os.environ.get("CI", "").lower() in ("1", "true")
settings.register_profile(
    "pin-images", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None,
    derandomize=CI,
)
settings.register_profile(
    "pin-images-fuzz",
    max_examples=2000,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
PROFILE = settings.get_profile(os.environ.get("PIN_IMAGES_HYPOTHESIS_PROFILE", "pin-images"))

# Digests already in the generated inputs; every other `@sha256:<hex>` in an output was inserted by pin-images.
INPUT_DIGESTS = ("sha256:" + "a" * 64, "sha256:" + "0123456789abcdef" * 4)
DIGEST_RE = re.compile(rb"@sha256:[0-9a-f]{64}")

# --------------------------------------------------------------------------------------------------------------
# Strategy: a Dockerfile as physical lines, each marked "protected" when it is a comment or a heredoc body line
# (nothing there may ever change), then joined with LF/CRLF endings, maybe a BOM, maybe no final newline.
# --------------------------------------------------------------------------------------------------------------

registries = st.sampled_from(
    ["", "", "", "docker.io/", "ghcr.io/", "localhost:5000/", "registry.example.com:8443/", "127.0.0.1:5000/",
     "[::1]:5000/", "index.docker.io/", "quay.io/"]
)  # fmt: skip
paths = st.sampled_from(
    ["python", "alpine", "library/debian", "team/app", "org/group/sub/image", "a_b", "a__b", "a-b", "a.b", "x1"]
)
tags = st.sampled_from(["", ":3.12", ":latest", ":1.0-slim", ":v1_2", ":A.b-C"])
digests = st.sampled_from(["", "", "", *(f"@{d}" for d in INPUT_DIGESTS)])
valid_refs = st.builds(lambda r, p, t, d: r + p + t + d, registries, paths, tags, digests)
# References the grammar rejects: the run must fail with exit 2 and leave the file alone.
invalid_refs = st.sampled_from(["Python:3", "a:b:c", "a@sha256:12", "UPPER/x", "a:-x", "a..b", "x@md5:" + "0" * 32])


@dataclass(frozen=True)
class Line:
    text: str
    protected: bool = False
    terminator: bool = False  # a heredoc's closing line: nothing may be appended to it


def _kw(draw, word: str) -> str:
    return draw(st.sampled_from([word, word.lower(), word.capitalize()]))


@st.composite
def dockerfiles(draw, allow_invalid: bool = True) -> tuple[bytes, list[tuple[int, int]]]:
    """(bytes, protected byte ranges) of a Dockerfile-like text."""
    escape = draw(st.sampled_from(["\\", "\\", "`"]))
    header: list[Line] = []
    if draw(st.booleans()):
        header.append(Line("# syntax=docker/dockerfile:1", True))
    if escape == "`":
        header.append(Line("# escape=`", True))
    # \v and \f separate words for BuildKit (and are line breaks to str.splitlines: nothing may use that).
    ws = st.sampled_from([" ", " ", "\t", "  ", " \t", " ", "\t", "\x0b", "\x0c"])
    indent = st.sampled_from(["", "", "", "  ", "\t"])

    def ref() -> str:
        if allow_invalid and draw(st.integers(0, 30)) == 0:
            return draw(invalid_refs)
        return draw(valid_refs)

    args_with_default: list[str] = []
    args_without: list[str] = []
    stages: list[str] = []
    env_names: list[str] = []

    def instruction(tokens: list[str]) -> list[Line]:
        """Join tokens with spaces or continuations (maybe with comment or blank lines inside)."""
        lines: list[Line] = []
        current = draw(indent) + tokens[0]
        for tok in tokens[1:]:
            if draw(st.integers(0, 4)) == 0:
                # The continuation joins the lines without a space: the space goes before it or after it.
                before = draw(st.sampled_from(["", " ", "\t"]))
                lines.append(Line(current + before + escape + draw(st.sampled_from(["", "", " ", "\t"]))))
                for _ in range(draw(st.integers(0, 2))):
                    if draw(st.booleans()):
                        lines.append(Line(draw(indent) + draw(comments), True))
                    else:
                        lines.append(Line(draw(st.sampled_from(["", "  "]))))
                current = (draw(indent) or (" " if not before else "")) + tok
            else:
                current += draw(ws) + tok
        lines.append(Line(current))
        return lines

    def from_line() -> list[Line]:
        tokens = [_kw(draw, "FROM")]
        if draw(st.integers(0, 3)) == 0:
            tokens.append(
                draw(
                    st.sampled_from(
                        ["--platform=linux/amd64", "--platform=$BUILDPLATFORM", "--platform=linux/arm64/v8"]
                    )
                )
            )
        choice = draw(st.integers(0, 9))
        if choice == 0 and stages:
            tokens.append(draw(st.sampled_from(stages)))
        elif choice == 1:
            tokens.append("scratch")
        elif choice == 2 and args_with_default:
            name = draw(st.sampled_from(args_with_default))
            tokens.append(draw(st.sampled_from([f"${name}", f"${{{name}}}", f'"${name}"', f"${name}-slim"])))
        elif choice == 3 and args_without:
            name = draw(st.sampled_from(args_without))
            # an ARG without value, alone or with a fallback (which gets the digest inside its braces)
            tokens.append(draw(st.sampled_from([f"${name}", f"${{{name}:-{ref()}}}", f"${{{name}-{ref()}}}"])))
        elif choice == 4:
            tokens.append(draw(st.sampled_from(["alpine-$TARGETARCH", "${BUILDPLATFORM}x"])))
        else:
            tokens.append(decorated(ref()))
        if draw(st.booleans()):
            name = draw(st.sampled_from(["build", "base", "stage-1", "b.2", "x_y"]))
            tokens += [draw(st.sampled_from(["AS", "as", "As"])), draw(st.sampled_from([name, name.upper()]))]
            stages.append(name)
        return instruction(tokens)

    def decorated(value: str) -> str:
        """Quoted, or as a default in ${X:-...}, or as written."""
        form = draw(st.integers(0, 9))
        if form == 0:
            return f'"{value}"'
        if form == 1:
            return f"${{NOPE:-{value}}}"
        return value

    def from_value() -> str:
        choice = draw(st.integers(0, 5))
        if choice == 0 and stages:
            return draw(st.sampled_from(stages))
        if choice == 1:
            return str(draw(st.integers(0, 3)))
        if choice == 2 and args_with_default:
            return "$" + draw(st.sampled_from(args_with_default))
        if choice == 3 and env_names:
            return "${E}"
        return decorated(ref())

    def heredoc() -> list[Line]:
        name = draw(st.sampled_from(["EOF", "END", "E_1"]))
        chomp = draw(st.booleans())
        opener = draw(st.sampled_from([f"<<{name}", f"<<'{name}'", f'<<"{name}"']))
        if chomp:
            opener = opener.replace("<<", "<<-")
        head = draw(
            st.sampled_from(
                [
                    f"RUN {opener}",
                    f"RUN cat {opener} > /x",
                    f"COPY {opener} /dst",
                    f"RUN --mount=type=bind,from=busybox:1 {opener}",
                ]
            )
        )
        body_lines = draw(st.lists(st.sampled_from(
            ["FROM ubuntu:22.04", "COPY --from=alpine:3 /a /b", "# comment", "echo $HOME", "", "  FROM x AS y",
             "RUN --mount=from=debian:12 ls", "\tindented", "FROM python:3.12@" + INPUT_DIGESTS[0], "ARG X=a:b"]),
            max_size=4))  # fmt: skip
        lines = [Line(draw(indent) + head)]
        lines += [Line(b, True) for b in body_lines]
        lines.append(Line(("\t" if chomp and draw(st.booleans()) else "") + name, terminator=True))
        return lines

    comments = st.sampled_from(
        [
            "# a comment",
            "#FROM python:3",
            "# pin-images: ignore",
            "#",
            "# COPY --from=alpine /a /b",
            "#\tRUN --mount=from=x ls",
            "# escape=\\",
            "# not UTF-8: \udcff\udcfe",
        ]
    )

    def body_item() -> list[Line]:
        kind = draw(st.integers(0, 12))
        if kind == 0:
            return [Line(draw(indent) + draw(comments), True)]
        if kind == 1:
            return [Line(draw(st.sampled_from(["", " ", "\t"])))]
        if kind == 2:
            return from_line()
        if kind == 3:
            return instruction([_kw(draw, "COPY"), f"--from={from_value()}", "/src", "/dst"])
        if kind == 4:
            t = draw(st.sampled_from(["", "type=bind,", "type=cache,", "type=bind,target=/t,"]))
            return instruction([_kw(draw, "RUN"), f"--mount={t}from={from_value()}", "ls"])
        if kind == 5:
            return arg_line()
        if kind == 6:
            if draw(st.booleans()):
                env_names.append("E")
                return instruction([_kw(draw, "ENV"), draw(st.sampled_from(["E=", "E ", "E="])) + ref()])
            return instruction([_kw(draw, "ENV"), draw(st.sampled_from(["A=b", "PATH=/x:$PATH", 'Q="a b"', "K v"]))])
        if kind == 7:
            return heredoc()
        if kind == 8:
            return instruction([_kw(draw, "RUN"), "echo", draw(st.sampled_from(["hi", "'FROM x'", '"a b"']))])
        if kind == 9:
            return instruction([_kw(draw, "ADD"), "--from=" + from_value(), "a", "b"])
        if kind == 10:
            return instruction(["WORKDIR", "/app"])
        if kind == 11:
            if draw(st.booleans()):
                # a devcontainer template's placeholder: BuildKit cannot expand it; nothing here depends on it
                return instruction([_kw(draw, "ARG"), 'INSTALL_ZSH="${templateOption:installZsh}"'])
            return instruction([_kw(draw, "LABEL"), "a=b"])
        return instruction(["CMD", '["x"]'])

    def arg_line() -> list[Line]:
        name = draw(st.sampled_from(["BASE", "IMG", "V", "TOOL"]))
        form = draw(st.integers(0, 4))
        if form == 0:
            args_without.append(name)
            return instruction([_kw(draw, "ARG"), name])
        value = ref()
        args_with_default.append(name)
        text = {1: f"{name}={value}", 2: f'{name}="{value}"', 3: f"{name}='{value}'", 4: f"{name}="}[form]
        return instruction([_kw(draw, "ARG"), text])

    lines: list[Line] = list(header)
    for _ in range(draw(st.integers(0, 2))):
        lines += arg_line()
    lines += from_line()
    for _ in range(draw(st.integers(0, 8))):
        lines += body_item()
    if draw(st.integers(0, 9)) == 0 and not lines[-1].terminator:
        lines[-1] = replace(lines[-1], text=lines[-1].text + " " + escape)  # continuation at EOF
    if draw(st.integers(0, 6)) == 0:
        lines = [ln if ln.protected else replace(ln, text=ln.text.replace(" ", "\t")) for ln in lines]

    ending_mode = draw(st.sampled_from(["\n", "\r\n", "mixed"]))
    out = "\ufeff" if draw(st.integers(0, 5)) == 0 else ""
    protected: list[tuple[int, int]] = []
    for i, ln in enumerate(lines):
        nl = ending_mode if ending_mode != "mixed" else draw(st.sampled_from(["\n", "\r\n"]))
        if i == len(lines) - 1 and draw(st.integers(0, 3)) == 0:
            nl = ""
        start = len(out.encode("utf-8", "surrogateescape"))
        out += ln.text + nl
        if ln.protected:
            protected.append((start, len(out.encode("utf-8", "surrogateescape"))))
    data = out.encode("utf-8", "surrogateescape")
    return data, protected


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def run_main(argv: list[str], resolver: FakeResolver) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("pin_images.cli.make_resolver", lambda settings, env: resolver)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["--no-config", *argv])
    return rc, out.getvalue(), err.getvalue()


def inserted(before: bytes, after: bytes) -> tuple[bytes, list[int]]:
    """``after`` without the digests pin-images inserted, and where (in ``before``'s offsets) each went."""
    offsets: list[int] = []
    removed = 0
    parts = []
    prev = 0
    for m in DIGEST_RE.finditer(after):
        if m.group()[1:].decode() in INPUT_DIGESTS:
            continue
        parts.append(after[prev : m.start()])
        offsets.append(m.start() - removed)
        removed += m.end() - m.start()
        prev = m.end()
    parts.append(after[prev:])
    return b"".join(parts), offsets


def assert_only_digests_inserted(before: bytes, after: bytes, protected: list[tuple[int, int]]) -> None:
    stripped, offsets = inserted(before, after)
    assert stripped == before
    for off in offsets:
        for start, end in protected:
            assert not start <= off < end, f"digest inserted inside a comment or heredoc body at byte {off}"


def unpinned_uses(data: bytes) -> list[df.ImageUse]:
    """OK uses of a valid reference that carries no digest."""
    out = []
    for use in df.scan(data):
        if use.status != df.OK or use.image is None:
            continue
        try:
            ref = reference.parse(use.image)
        except InvalidReferenceError:
            continue
        if ref.digest is None:
            out.append(use)
    return out


def pin_directly(data: bytes) -> bytes:
    """What pin-images does, without the CLI: edit every OK use without a digest (as resolve.finish does)."""
    from pin_images.resolve import replacement

    from .conftest import fake_digest

    text = data.decode("utf-8", "surrogateescape")
    edits = []
    for use in df.scan(data):
        if use.status != df.OK or use.image is None:
            continue
        ref = reference.parse(use.image)
        if ref.digest is not None:
            continue
        edits.append(df.Edit(use.start, use.end, replacement(text[use.start : use.end], ref, fake_digest(ref.name))))
    return df.apply(data, edits)


# --------------------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------------------


def check_main(data: bytes, protected: list[tuple[int, int]]) -> None:
    """Properties (a)-(d) of one input through main(): run, run again, then --check."""
    resolver = FakeResolver()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "Dockerfile")
        with open(path, "wb") as f:
            f.write(data)
        rc, out, err = run_main([path], resolver)
        with open(path, "rb") as f:
            after = f.read()
        assert os.listdir(tmp) == ["Dockerfile"]  # no temp file left behind
        if rc == 2:
            # Any error (bad reference, parse error) leaves the file untouched, with a message naming the file.
            assert after == data
            assert path in err + out
        else:
            assert rc in (0, 1), err
            assert (rc == 1) == (after != data)
            # (a) + (d): only digests were inserted, never inside a comment or a heredoc body.
            assert_only_digests_inserted(data, after, protected)
            # (c) every external reference in the output is pinned, unless it cannot be expanded.
            assert unpinned_uses(after) == []
        # (b) running again changes nothing.
        rc2, _, err2 = run_main([path], resolver)
        with open(path, "rb") as f:
            assert f.read() == after
        assert rc2 == (2 if rc == 2 else 0), err2
        if rc != 2:
            # (c) --check passes unless a reference depends on an ARG that has no value.
            unresolved = any(u.status == df.UNRESOLVED for u in df.scan(after))
            rc3, out3, _ = run_main(["--check", path], resolver)
            assert rc3 == (1 if unresolved else 0), out3


@settings(PROFILE)
@given(dockerfiles())
def test_main_inserts_only_digests_is_idempotent_and_then_checks_clean(case) -> None:
    check_main(*case)


@settings(PROFILE)
@given(dockerfiles())
def test_scan_and_apply_insert_only_digests(case) -> None:
    data, protected = case
    try:
        after = pin_directly(data)
    except (DockerfileError, InvalidReferenceError):
        return
    assert_only_digests_inserted(data, after, protected)
    assert unpinned_uses(after) == []
    assert pin_directly(after) == after
    # Spans point at the text: a plain reference's span is exactly what was written (generated tokens are never
    # split by a continuation; quotes and variables are edited elsewhere).
    text = data.decode("utf-8", "surrogateescape")
    for use in df.scan(data):
        assert 0 <= use.start <= use.end <= len(text)
        if not set(use.written) & set("$'\""):
            assert text[use.start : use.end] == use.written
        # line and column locate the span's start (a BOM is not a column)
        line_start = text.rfind("\n", 0, use.start) + 1
        bom = line_start == 0 and text.startswith("\ufeff")
        assert (use.line, use.column) == (text.count("\n", 0, use.start) + 1, use.start - line_start + 1 - bom)


try:  # BuildKit's parser through its Go wrapper, a test dependency
    import dockerfile as buildkit

    from .test_dockerfile_buildkit import ours, theirs
except ImportError:  # pragma: no cover
    buildkit = None


@settings(PROFILE)
@given(dockerfiles())
def test_instructions_match_buildkit(case) -> None:
    if buildkit is None:
        pytest.skip("the dockerfile package (BuildKit's parser) is not installed")
    data, _ = case
    text = data.decode("utf-8", "surrogateescape")
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        return  # the Go wrapper takes str; lone surrogates cannot cross
    try:
        expected = theirs(buildkit.parse_string(text))
    except (buildkit.GoParseError, AttributeError):
        return
    try:
        got = ours(text)
    except DockerfileError:
        return
    assert got == expected


# --------------------------------------------------------------------------------------------------------------
# Fuzzing targets: only our own errors may come out of the scanner and the reference parser.
# --------------------------------------------------------------------------------------------------------------

FRAGMENTS = [
    "FROM ", "from ", "COPY ", "RUN ", "ARG ", "ENV ", "ONBUILD ", "ADD ", "--from=", "--mount=", "--platform=",
    "type=bind,", "from=", ",", "=", "$", "${", "}", ":-", ":+", "#", "%", "?", "\\", "`", "\n", "\r\n", " ", "\t",
    "<<EOF", "<<-", "EOF", "'", '"', "[", "]", "AS ", "a", "b:1", "@sha256:", "a" * 64, "\ufeff", "# escape=`\n",
    "# syntax=x\n", "\x85", "\u2028", "\xa0", "0", "-1", "scratch", "localhost:5000/", "\udcff", "ARG A=b\n",
    "FROM $A\n", "${A#*}", "${A%%b}", "${A:?x}", "[\"a\"]", "\\\n", "[" * 1100, "${a:-" * 400, "ONBUILD " * 400,
    "${A#*a*a*a*a*a*a*a*a*a*a*a*b}", "${A//*a*a*a*a*a*a*a*a*b/x}", "ARG A=" + "a" * 60 + "\n",
]  # fmt: skip
dockerish_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=40).map("".join)


@settings(PROFILE)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join))
def test_main_on_fuzzed_text(text: str) -> None:
    """Any text: exit 0/1/2 (never a traceback), and the same properties whenever the run succeeds."""
    check_main(text.encode("utf-8", "surrogateescape"), [])


def check_scanner(data: bytes) -> None:
    """scan/instructions raise only PinImagesError; apply of scan's own edits never raises."""
    text = data.decode("utf-8", "surrogateescape")
    with contextlib.suppress(PinImagesError):
        df.instructions(text)
    try:
        uses = df.scan(data)
    except PinImagesError:
        return
    edits = {df.Edit(u.start, u.end, text[u.start : u.end] + "@" + INPUT_DIGESTS[0]) for u in uses}
    # Two different uses may share one span (an ARG default used twice); they then get the same edit.
    df.apply(data, edits)


def check_reference(text: str) -> None:
    try:
        ref = reference.parse(text)
    except InvalidReferenceError:
        return
    assert reference.parse(ref.normalized).normalized == ref.normalized


reference_text = st.lists(
    st.sampled_from(["a", "B", "0", ".", "_", "__", "-", "/", ":", "@", "sha256:", "a" * 64, "[::1]", "5000",
                     "localhost", "docker.io", "index.docker.io", "\u0660", "\u212a", "\udcff", " ", "\n", "é"])
    | st.text(max_size=2),
    max_size=20,
).map("".join)  # fmt: skip


@settings(PROFILE)
@given(st.binary(max_size=300) | dockerish_text.map(lambda t: t.encode("utf-8", "surrogateescape")))
def test_fuzz_scanner_raises_only_our_errors(data: bytes) -> None:
    check_scanner(data)


@settings(PROFILE)
@given(dockerfiles().map(lambda c: c[0]))
def test_fuzz_scanner_on_generated_dockerfiles(data: bytes) -> None:
    check_scanner(data)


@settings(PROFILE)
@given(reference_text | st.text(max_size=40))
def test_fuzz_reference_parse_raises_only_invalid_reference(text: str) -> None:
    check_reference(text)


# Regressions found by fuzzing (each one a fixed bug): deep nesting raised RecursionError instead of our error, and
# ${VAR#glob} / ${VAR/glob/x} used a backtracking regex that took exponential time.
REGRESSIONS = [
    b"FROM a\nRUN " + b"[" * 100_000,  # json.raw_decode: RecursionError
    b"FROM a\nCOPY " + b"[" * 5000 + b"]" * 5000 + b" x",
    b"FROM " + b"${a:-" * 500 + b"x" + b"}" * 500,  # shell expansion recursion
    b"ARG A=" + b"${a:-" * 500 + b"\nFROM a",
    b"FROM a\nRUN --mount=from=" + b"${a:-" * 500 + b"x" + b"}" * 500 + b" ls",
    b"FROM a\n" + b"ONBUILD " * 2000 + b"RUN x\n",  # the lexer's ONBUILD recursion
    b"ARG A=" + b"a" * 40 + b"\nFROM ${A#" + b"*" * 30 + b"b}\n",  # exponential backtracking
    b"ARG A=" + b"a" * 5000 + b"\nFROM ${A#" + b"*a" * 20 + b"b}\n",
    b"ARG A=" + b"a" * 5000 + b"\nFROM ${A%%" + b"*a" * 20 + b"b}\n",
    b"ARG A=" + b"a" * 5000 + b"\nFROM ${A//" + b"*a" * 20 + b"b/x}\n",
    b"ARG A=" + b"a" * 5000 + b"\nFROM ${A/" + b"*a" * 20 + b"b/x}\n",
]


@pytest.mark.parametrize("data", REGRESSIONS, ids=range(len(REGRESSIONS)))
def test_fuzz_regressions(data: bytes) -> None:
    started = time.monotonic()
    check_scanner(data)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("${A#*a}", "aab"), ("${A##*a}", "b"), ("${A%a*}", "aa"), ("${A%%a*}", ""), ("${A#?}", "aab"),
        ("${A/a/x}", "xaab"), ("${A//a/x}", "xxxb"), ("${A/*/x}", "x"), ("${A//b*/x}", "aaax"), ("${A#\\*}", "aaab"),
        ("${A//a*b/}", ""), ("${A/#a/x}", "aaab"), ("${B//x*/-}", "a-"), ("${A//?/.}", "...."),
    ],
)  # fmt: skip
def test_glob_substitutions_keep_their_meaning(word: str, expected: str) -> None:
    """The linear-time glob matcher that replaced the regex gives the same answers (A=aaab, B=axb)."""
    uses = df.scan(f"ARG A=aaab\nARG B=axb\nFROM img{word}\n".encode())
    assert uses[0].image == "img" + expected


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        # Found by bench/fuzz.py: accepted, but its normalised form (docker.io/library/...) was longer than 255 and
        # did not parse back; Docker checks the normalised name's length.
        ("a" * 238, "longer than 255"),
        ("a" * 200 + "index.docker.io" * 3, "longer than 255"),
        ("a" * 64, "image ID"),  # distribution/reference refuses 64 hex digits as a name
    ],
)
def test_reference_regressions(text: str, cause: str) -> None:
    with pytest.raises(InvalidReferenceError, match=cause):
        reference.parse(text)
    check_reference(text)
    check_reference("a" * 237)  # the longest docker.io/library name still parses, and round-trips
