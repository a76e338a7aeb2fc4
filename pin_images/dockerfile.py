"""Find every image reference in a Dockerfile with its exact character span, and splice edits back byte-exactly.

The lexer follows BuildKit's parser (frontend/dockerfile/parser, instructions, shell): we pin what `docker build` reads.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .errors import DockerfileError
from .uses import IGNORED, OK, PLATFORM_ARG, UNRESOLVED, Edit, ImageUse, Status, apply

__all__ = ["IGNORED", "OK", "PLATFORM_ARG", "UNRESOLVED", "Edit", "ImageUse", "Status", "apply", "instructions", "scan"]

# Go's unicode.IsSpace, which BuildKit uses to trim lines and split words (Python's str.isspace is wider).
_GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
)
_GO_SPACE_RE = re.compile("[" + re.escape("".join(sorted(_GO_SPACE))) + "]+")
# extractBuilderFlags and parseHealthConfig test single bytes; at character level that is ASCII whitespace.
_BYTE_SPACE = frozenset("\t\n\v\f\r ")
# BuildKit's reWhitespace / tokenWhitespace: only these split a command from its arguments and FROM's words.
_ASCII_WS_RE = re.compile(r"[\t\v\f\r ]+")
_PLAIN_FLAG_RE = re.compile(r"[^\t\n\v\f\r '\"\\]*")  # a builder flag's run without _BYTE_SPACE, quotes, backslash
_DIRECTIVE_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*")
_VALID_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC_RE = re.compile(r"([0-9]*)<<(-?)([^<]*)")
_HEREDOC_COMMANDS = frozenset({"ADD", "COPY", "RUN"})
KNOWN_INSTRUCTIONS = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
        "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    }
)  # fmt: skip
# ARGs BuildKit defines itself from the build and target platforms; they have no value when we pin.
PLATFORM_ARGS = frozenset(
    {
        "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
        "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
    }
)  # fmt: skip
_STAGE_NAME_RE = re.compile(r"[a-z][a-z0-9-_.]*")
_STAGE_INDEX_RE = re.compile(r"[+-]?[0-9]+")
_VAR_REF_RE = re.compile(r"\$\{?([^\W\d]\w*)")
_SINGLE_ARG_RE = re.compile(r"\$(?:([^\W\d]\w*)|\{([^\W\d]\w*)\})")
_PRAGMA_RE = re.compile(r"[ \t]*#[ \t]*pin-images[ \t]*:[ \t]*ignore[ \t]*", re.IGNORECASE)
_BOM = "\ufeff"


def _go_trim(s: str, lo: int, hi: int) -> tuple[int, int]:
    """strings.TrimSpace on s[lo:hi], returned as indices."""
    while lo < hi and s[lo] in _GO_SPACE:
        lo += 1
    while hi > lo and s[hi - 1] in _GO_SPACE:
        hi -= 1
    return lo, hi


# ---------------------------------------------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """One flag or argument as BuildKit reports it, with where it sits in the text.

    ``start``/``end`` cover the token's characters in the text (a token split by a line continuation spans it);
    ``positions[i]`` is the text index of ``value[i]`` (quotes and escapes removed by the parser have none).
    """

    value: str
    start: int
    end: int
    positions: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def part(self, begin: int, stop: int | None = None) -> Token | None:
        """The sub-token value[begin:stop] with its own span; None when it is empty."""
        stop = len(self.value) if stop is None else stop
        if begin >= stop:
            return None
        pos = self.positions[begin:stop]
        return Token(self.value[begin:stop], pos[0], pos[-1] + 1, pos)


@dataclass(frozen=True)
class Heredoc:
    """A here-document attached to an instruction (``<<EOF``, ``<<-EOF``, ``<<"EOF"``, ``3<<EOF``)."""

    name: str
    file_descriptor: int
    chomp: bool
    expand: bool
    content: str


@dataclass(frozen=True)
class Instruction:
    """One instruction as BuildKit's parser sees it (continuations joined, comments and heredoc bodies removed)."""

    keyword: str
    start_line: int
    end_line: int
    flags: tuple[str, ...]
    args: tuple[str, ...]
    heredocs: tuple[Heredoc, ...] = ()
    json: bool = False
    flag_tokens: tuple[Token, ...] = field(default=(), repr=False)
    arg_tokens: tuple[Token, ...] = field(default=(), repr=False)
    # ONBUILD's trigger instruction (same lines); None for every other keyword.
    sub: Instruction | None = field(default=None, repr=False)
    start: int = field(default=0, repr=False)


# ---------------------------------------------------------------------------------------------------------------
# Shell word expansion (BuildKit's frontend/dockerfile/shell/lex.go)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Var:
    """An ARG/ENV value; ``origin`` is set when it came from an ARG default we could edit."""

    value: str
    origin: tuple[int, int, str] | None = None  # (start, end, ARG name) of the default's text
    platform: frozenset[str] = frozenset()  # predefined platform ARGs the value depends on
    unresolved: frozenset[str] = frozenset()  # ARGs without value the value depends on


class _ShellError(Exception):
    pass


class _Words:
    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def add_char(self, ch: str) -> None:
        space = ch in _GO_SPACE
        if space and self.in_word:
            if self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        elif not space:
            self.add_raw(ch)

    def add_raw(self, s: str) -> None:
        self.word += s
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def get(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class _Shell:
    """Quote removal and ``$VAR``/``${VAR...}`` expansion, remembering which ARGs the result depends on."""

    def __init__(
        self,
        escape: str,
        env: Mapping[str, _Var],
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_unset: bool = False,
    ) -> None:
        self.escape = escape
        self.env = env
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset = skip_unset
        self.platform: set[str] = set()
        self.unresolved: set[str] = set()
        self.result = ""
        self.s = ""
        self.i = 0

    def process(self, word: str) -> tuple[str, list[str]]:
        if "$" not in word and "'" not in word and '"' not in word and self.escape not in word:
            # Nothing to expand, unquote or unescape (most references): the loop below would copy it char by
            # char, which was most of --check's time on 1000 pinned files (issue 5's benchmark).
            return word, [w for w in _GO_SPACE_RE.split(word) if w]
        self.s, self.i = word, 0
        try:
            return self._stop_on(None, self.raw_escapes)
        except _ShellError as exc:
            raise _ShellError(f"failed to process {word!r}: {exc}") from None
        except RecursionError:  # ${a:-${b:-${c:-...}}} hundreds deep: Go's stack grows, Python's does not
            raise _ShellError(f"failed to process {word!r}: substitutions nested too deeply") from None

    def _peek(self) -> str | None:
        return self.s[self.i] if self.i < len(self.s) else None

    def _next(self) -> str | None:
        if self.i >= len(self.s):
            return None
        self.i += 1
        return self.s[self.i - 1]

    def _stop_on(self, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            result: list[str] = []
            words = _Words()
            while (ch := self._peek()) is not None:
                if stop is not None and ch == stop:
                    self._next()
                    return "".join(result), words.get()
                if ch == "$":
                    tmp = self._dollar()
                    result.append(tmp)
                    words.add_string(tmp)
                elif ch in "'\"":
                    tmp = self._single() if ch == "'" else self._double()
                    result.append(tmp)
                    words.add_raw(tmp)
                else:
                    ch = self._next()
                    assert ch is not None
                    if ch == self.escape:
                        if self.raw_escapes:
                            words.add_raw(ch)
                            result.append(ch)
                        nxt = self._next()
                        if nxt is None:
                            break
                        ch = nxt
                        words.add_raw(ch)
                    else:
                        words.add_char(ch)
                    result.append(ch)
            if stop is not None:
                raise _ShellError(f"unexpected end of statement while looking for matching {stop}")
            return "".join(result), words.get()
        finally:
            self.raw_escapes = saved

    def _single(self) -> str:
        opening = self._next() or ""
        res = [opening] if self.raw_quotes else []
        while True:
            ch = self._next()
            if ch is None:
                raise _ShellError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.raw_quotes:
                    res.append(ch)
                return "".join(res)
            res.append(ch)

    def _double(self) -> str:
        opening = self._next() or ""
        res = [opening] if self.raw_quotes else []
        while True:
            p = self._peek()
            if p is None:
                raise _ShellError("unexpected end of statement while looking for matching double-quote")
            if p == '"':
                self._next()
                if self.raw_quotes:
                    res.append(p)
                return "".join(res)
            if p == "$":
                res.append(self._dollar())
                continue
            ch = self._next()
            assert ch is not None
            if ch == self.escape:
                if self.raw_escapes:
                    res.append(ch)
                nxt = self._peek()
                if nxt is None:
                    continue
                if nxt in ('"', "$", self.escape):
                    ch = self._next()
                    assert ch is not None
            res.append(ch)

    def _name(self) -> str:
        name: list[str] = []
        while (ch := self._peek()) is not None:
            if not name and ch.isdecimal():
                while (d := self._peek()) is not None and d.isdecimal():
                    name.append(d)
                    self._next()
                return "".join(name)
            if not name and ch in "@*#?-$!0":
                self._next()
                return ch
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            name.append(ch)
            self._next()
        return "".join(name)

    def _get(self, name: str) -> tuple[str, bool]:
        var = self.env.get(name)
        if var is None:
            return "", False
        self.platform |= var.platform
        self.unresolved |= var.unresolved
        return var.value, True

    def _dollar(self) -> str:
        self._next()
        if self._peek() != "{":
            name = self._name()
            if not name:
                return "$"
            value, found = self._get(name)
            if not found:
                if self.skip_unset:
                    return "$" + name
                self.unresolved.add(name)
            return value
        self._next()
        p = self._peek()
        if p is None:
            raise _ShellError("syntax error: missing '}'")
        if p in "{}:":
            raise _ShellError("syntax error: bad substitution")
        name = self._name()
        ch = self._next()
        if ch is None:
            raise _ShellError("syntax error: missing '}'")
        if ch == "}":
            value, found = self._get(name)
            if not found:
                if self.skip_unset:
                    return "${" + name + "}"
                self.unresolved.add(name)
            return value
        chs = ch
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self._next() or ""
            if not ch:
                raise _ShellError("syntax error: missing '}'")
            chs += ch
        if null_is_unset or ch in "+-?#%":
            try:
                word, _ = self._stop_on("}", ch in "#%")
            except _ShellError:
                if self._peek() is None:
                    raise _ShellError("syntax error: missing '}'") from None
                raise
            value, found = self._get(name)
            if self.skip_unset and not found:
                return "${" + name + chs + word + "}"
            empty = not found or (null_is_unset and value == "")
            if ch == "-":
                return word if empty else value
            if ch == "+":
                return "" if empty else word
            if ch == "?":
                # BuildKit fails the build here unless a --build-arg gives the value: the reference is unresolved.
                if empty:
                    self.unresolved.add(name)
                return value
            if ch in "#%":
                if not found:
                    self.unresolved.add(name)
                greedy = word.startswith(ch)
                if greedy:
                    word = word[1:]
                if ch == "#":
                    return _trim_prefix(word, value, greedy)
                return _trim_prefix(_reverse_pattern(word), value[::-1], greedy)[::-1]
            raise _ShellError(f"unsupported modifier ({chs}) in substitution")
        if ch == "/":
            replace_all = self._peek() == "/"
            if replace_all:
                self._next()
            try:
                pattern, _ = self._stop_on("/", True)
            except _ShellError:
                if self._peek() is None:
                    raise _ShellError("syntax error: missing '/' in ${}") from None
                raise
            try:
                replacement, _ = self._stop_on("}", True)
            except _ShellError:
                if self._peek() is None:
                    raise _ShellError("syntax error: missing '}'") from None
                raise
            value, found = self._get(name)
            if self.skip_unset and not found:
                return "${" + name + "/" + pattern + "/" + replacement + "}"
            if not found:
                self.unresolved.add(name)
            return _replace(pattern, value, replacement, replace_all)
        raise _ShellError(f"unsupported modifier ({chs}) in substitution")


_STAR = object()  # a glob `*`; `?` is _ANY; any other element is a literal character
_ANY = object()


def _glob(pattern: str) -> list[object]:
    """A ${VAR#pattern} / ${VAR/pattern/...} glob as elements, with BuildKit's escaping rules."""
    out: list[object] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(_STAR)
        elif ch == "?":
            out.append(_ANY)
        elif ch == "\\":
            if i < len(pattern) and pattern[i] in "}/":
                continue
            if i >= len(pattern) or pattern[i] not in "*?\\":
                raise _ShellError(f"invalid pattern ({pattern}) in substitution")
            out.append(pattern[i])
            i += 1
        else:
            out.append(ch)
    return out


def _glob_search(
    glob: list[object], value: str, pos: int, greedy: bool, anchored: bool, must_advance: bool = False
) -> tuple[int, int] | None:
    """The leftmost match at or after ``pos`` (longest if greedy, else shortest), like Go's regexp would find it.

    A simulation of all match attempts at once (linear in the value), where a backtracking regex took exponential
    time on patterns like ``*a*a*a*b``. ``must_advance`` forbids an empty match at ``pos`` (re.sub's rule).
    """
    n = len(glob)

    def add(states: dict[int, int], j: int, start: int) -> None:
        while j not in states or start < states[j]:
            states[j] = start
            if j < n and glob[j] is _STAR:
                j += 1
            else:
                break

    best: tuple[int, int] | None = None
    threads: dict[int, int] = {}  # pattern position -> earliest start of an attempt there
    i = pos
    while True:
        if best is None and (not anchored or i == pos):
            add(threads, 0, i)
        if n in threads and not (must_advance and threads[n] == i == pos):
            s = threads[n]
            if best is None or s < best[0] or (s == best[0] and greedy):
                best = (s, i)
        if best is not None:
            threads = {j: s for j, s in threads.items() if s < best[0] or (greedy and s == best[0])}
        if i >= len(value) or (not threads and (best is not None or anchored)):
            return best
        ch = value[i]
        nxt: dict[int, int] = {}
        if ch != "\n":  # like `.` in a regexp, `*` and `?` do not match a newline
            for j, s in threads.items():
                if j == n:
                    continue
                elem = glob[j]
                if elem is _STAR:
                    add(nxt, j, s)
                elif elem is _ANY or elem == ch:
                    add(nxt, j + 1, s)
        else:
            for j, s in threads.items():
                if j < n and glob[j] == "\n":
                    add(nxt, j + 1, s)
        threads = nxt
        i += 1


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    m = _glob_search(_glob(pattern), value, 0, greedy, anchored=True)
    return value if m is None else value[m[1] :]


def _replace(pattern: str, value: str, replacement: str, replace_all: bool) -> str:
    """${VAR/pattern/replacement} and ${VAR//pattern/replacement}: greedy, leftmost, with re.sub's empty matches."""
    glob = _glob(pattern)
    out: list[str] = []
    pos, must_advance = 0, False
    while pos <= len(value):
        m = _glob_search(glob, value, pos, greedy=True, anchored=False, must_advance=must_advance)
        if m is None:
            break
        out += [value[pos : m[0]], replacement]
        pos, must_advance = m[1], m[0] == m[1]
        if not replace_all:
            break
    out.append(value[pos:])
    return "".join(out)


def _reverse_pattern(pattern: str) -> str:
    units: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            units.append(pattern[i : i + 2])
            i += 2
        else:
            units.append(pattern[i])
            i += 1
    return "".join(reversed(units))


# ---------------------------------------------------------------------------------------------------------------
# The lexer (BuildKit's frontend/dockerfile/parser)
# ---------------------------------------------------------------------------------------------------------------


class _Logical:
    """A logical line (continuations joined) and, for each character, its index in the text."""

    def __init__(self, s: str, pos: list[int]) -> None:
        self.s = s
        self.pos = pos

    def token(self, lo: int, hi: int, idx: list[int] | None = None, value: str | None = None) -> Token:
        if idx is None or (idx and len(idx) == hi - lo and idx[0] == lo and idx[-1] == hi - 1):
            # A contiguous run (almost every token; idx only ever grows): slice instead of walking it char by char.
            value = self.s[lo:hi] if value is None else value
            positions = tuple(self.pos[lo:hi])
        else:
            value = "".join(self.s[i] for i in idx) if value is None else value
            positions = tuple(self.pos[i] for i in idx)
        start = self.pos[lo] if lo < len(self.pos) else (self.pos[-1] + 1 if self.pos else 0)
        end = self.pos[hi - 1] + 1 if hi > lo else start
        return Token(value, start, end, positions)


class _Lexer:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.escape = "\\"
        self.has_syntax = False
        self._set_escape("\\")
        self.lines: list[tuple[int, int]] = []
        pos = 0
        while pos < len(text):
            nl = text.find("\n", pos)
            end = len(text) if nl < 0 else nl + 1
            self.lines.append((pos, end))
            pos = end

    def _set_escape(self, esc: str) -> None:
        self.escape = esc
        e = re.escape(esc)
        self.continuation = re.compile(rf"([^{e}]){e}[ \t]*\Z|^{e}[ \t]*\Z")

    def error(self, cause: str, line: int) -> DockerfileError:
        return DockerfileError(cause, self.path, line)

    def _content(self, i: int) -> tuple[int, int]:
        """Physical line i without its trailing CR/LF characters (bytes.TrimRight(line, "\\r\\n"))."""
        start, end = self.lines[i]
        while end > start and self.text[end - 1] in "\r\n":
            end -= 1
        return start, end

    def _is_comment(self, start: int, end: int) -> bool:
        lo, _ = _go_trim(self.text, start, end)
        return lo < end and self.text[lo] == "#"

    def _trim_continuation(self, start: int, end: int) -> tuple[int, bool]:
        """Returns (end of the kept text, whether the logical line ends here)."""
        # Search a slice: with a start position, `^` would not match there.
        m = self.continuation.search(self.text[start:end])
        if m is None:
            return end, True
        return start + (m.start(1) + 1 if m.group(1) is not None else m.start()), False

    def run(self) -> list[Instruction]:
        text = self.text
        result: list[Instruction] = []
        directives_done = False
        seen: set[str] = set()
        i = 0
        while i < len(self.lines):
            start, end = self._content(i)
            if i == 0 and text.startswith(_BOM):
                start += 1
            lo = start
            while lo < end and text[lo] in _GO_SPACE:
                lo += 1
            if not directives_done:
                directives_done = self._directive(lo, end, seen, i + 1)
            if lo < end and text[lo] == "#":
                end = lo
            i += 1
            start_line = i
            kept, eol = self._trim_continuation(lo, end)
            if eol and kept == lo:
                continue
            chars = [text[lo:kept]]
            pos = list(range(lo, kept))
            while not eol and i < len(self.lines):
                cstart, cend = self._content(i)
                i += 1
                if self._is_comment(cstart, cend):
                    continue
                if _go_trim(text, cstart, cend)[0] == cend:
                    continue  # BuildKit skips blank lines inside a continuation (with a warning)
                kept, eol = self._trim_continuation(cstart, cend)
                chars.append(text[cstart:kept])
                pos.extend(range(cstart, kept))
            logical = _Logical("".join(chars), pos)
            try:
                ins = self._node(logical, 0, len(logical.s), start_line)
            except RecursionError:  # ONBUILD ONBUILD ... hundreds deep (BuildKit refuses even two)
                raise self.error("ONBUILD nested too deeply", start_line) from None
            heredocs: list[Heredoc] = []
            target = ins.sub if ins.keyword == "ONBUILD" and ins.sub is not None else ins
            if target.keyword in _HEREDOC_COMMANDS and not target.json and "<<" in logical.s:
                for doc in self._heredocs(logical.s, start_line):
                    content: list[str] = []
                    terminated = False
                    while i < len(self.lines):
                        bstart, bend = self.lines[i]
                        i += 1
                        candidate = text[bstart:bend].rstrip("\r\n")
                        if doc.chomp:
                            candidate = candidate.lstrip("\t")
                        if candidate == doc.name:
                            terminated = True
                            break
                        content.append(text[bstart:bend])
                    if not terminated:
                        raise self.error("unterminated heredoc", start_line)
                    heredocs.append(Heredoc(doc.name, doc.file_descriptor, doc.chomp, doc.expand, "".join(content)))
            result.append(
                Instruction(
                    ins.keyword, start_line, i, ins.flags, ins.args, tuple(heredocs), ins.json,
                    ins.flag_tokens, ins.arg_tokens, ins.sub, ins.start,
                )
            )  # fmt: skip
        return result

    def _directive(self, lo: int, end: int, seen: set[str], line: int) -> bool:
        """Parser directives: only in the leading run of ``# key=value`` comments. Returns True once done."""
        text = self.text
        if lo >= end or text[lo] != "#":
            return True
        body = lo + 1
        while body < end and text[body] in _GO_SPACE:
            body += 1
        m = _DIRECTIVE_RE.fullmatch(text, body, end)
        if m is None:
            return True
        key = m.group(1).lower()
        if key not in _VALID_DIRECTIVES:
            return True
        if key in seen:
            raise self.error(f"only one {key} parser directive can be used", line)
        seen.add(key)
        self.has_syntax = self.has_syntax or key == "syntax"
        if key == "escape":
            value = m.group(2)
            if value not in ("`", "\\"):
                raise self.error(f"invalid escape token '{value}' does not match ` or \\", line)
            self._set_escape(value)
        return False

    def _heredocs(self, line: str, lineno: int) -> list[Heredoc]:
        sh = _Shell("\\", {}, raw_quotes=True, raw_escapes=True, skip_unset=True)
        try:
            _, words = sh.process(line)
        except _ShellError:
            return []  # BuildKit ignores the lexing error here: no heredocs
        docs = []
        for word in words:
            m = _HEREDOC_RE.fullmatch(word)
            if m is None or not m.group(3):
                continue
            rest = m.group(3)
            try:
                _, names = _Shell("\\", {}, skip_unset=True).process(rest)
                if len(names) != 1:
                    continue
                _, raw = _Shell("\\", {}, raw_quotes=True, skip_unset=True).process(rest)
            except _ShellError as exc:
                raise self.error(str(exc), lineno) from None
            if len(raw) != len(names):
                raise self.error(f"internal lexing of heredoc produced inconsistent results: {rest}", lineno)
            name = names[0]
            quotes = name.count("'") + name.count('"')
            raw_quotes = raw[0].count("'") + raw[0].count('"')
            docs.append(Heredoc(name, int(m.group(1) or 0), m.group(2) == "-", quotes == raw_quotes, ""))
        return docs

    # -- one instruction: splitCommand + the per-command line parser --

    def _node(self, lg: _Logical, lo: int, hi: int, line: int) -> Instruction:
        s = lg.s
        lo, hi = _go_trim(s, lo, hi)
        m = _ASCII_WS_RE.search(s, lo, hi)
        cmd_end = m.start() if m else hi
        keyword = s[lo:cmd_end].upper()
        start = lg.pos[lo] if lo < len(lg.pos) else 0
        flags: list[Token] = []
        args_lo = args_hi = hi
        if m:
            flags, args_lo = self._flags(lg, m.end(), hi)
            args_lo, args_hi = _go_trim(s, args_lo, hi)
        sub = None
        is_json = False
        if keyword == "ONBUILD":
            args: list[Token] = [lg.token(args_lo, args_hi)] if args_lo < args_hi else []
            if args_lo < args_hi:
                sub = self._node(lg, args_lo, args_hi, line)
        elif keyword in ("FROM", "EXPOSE"):
            args = self._split_ws(lg, args_lo, args_hi)
        elif keyword in ("ADD", "COPY", "VOLUME"):
            parsed = self._json(lg, args_lo, args_hi, line)
            is_json = parsed is not None
            args = parsed if parsed is not None else self._split_ws(lg, args_lo, args_hi)
        elif keyword in ("CMD", "ENTRYPOINT", "RUN", "SHELL"):
            args, is_json = self._maybe_json(lg, args_lo, args_hi, line)
        elif keyword == "ARG":
            args = self._words(lg, args_lo, args_hi)
        elif keyword in ("ENV", "LABEL"):
            args = self._name_val(lg, args_lo, args_hi, keyword, line)
        elif keyword == "HEALTHCHECK":
            sep = args_lo
            while sep < args_hi and s[sep] not in _BYTE_SPACE:
                sep += 1
            nxt = sep
            while nxt < args_hi and s[nxt] in _BYTE_SPACE:
                nxt += 1
            args = []
            if sep > args_lo:
                rest, is_json = self._maybe_json(lg, nxt, args_hi, line)
                args = [lg.token(args_lo, sep), *rest]
        elif keyword in ("MAINTAINER", "STOPSIGNAL", "USER", "WORKDIR"):
            args = [lg.token(args_lo, args_hi)] if args_lo < args_hi else []
        else:
            args = []  # BuildKit's parser keeps unknown instructions without arguments
        return Instruction(
            keyword, line, line, tuple(t.value for t in flags), tuple(t.value for t in args), (), is_json,
            tuple(flags), tuple(args), sub, start,
        )  # fmt: skip

    def _flags(self, lg: _Logical, lo: int, hi: int) -> tuple[list[Token], int]:
        """extractBuilderFlags: leading ``--words`` (quotes removed, backslash escapes), then where args start."""
        s = lg.s
        flags: list[Token] = []
        in_word = in_quote = False
        quote = ""
        blank_ok = False
        idx: list[int] = []
        raw_start = lo

        def value() -> str:
            return "".join(s[k] for k in idx)

        pos = lo
        while pos <= hi:
            ch = s[pos] if pos < hi else ""
            if not in_word and not in_quote:
                if pos == hi:
                    break
                if ch in _BYTE_SPACE:
                    pos += 1
                    continue
                if ch != "-" or pos + 1 == hi or s[pos + 1] != "-":
                    return flags, pos
                in_word = True
                raw_start = pos
                plain = _PLAIN_FLAG_RE.match(s, pos, hi).end()  # type: ignore[union-attr]
                if plain == hi or s[plain] in _BYTE_SPACE:
                    # No quotes or backslashes (nearly every flag): the word is its own value; take it whole.
                    idx.extend(range(pos, plain))
                    pos = plain
                    continue
            if pos == hi:
                if value() != "--" and (blank_ok or idx):
                    flags.append(lg.token(raw_start, pos, idx))
                break
            if in_word:
                if ch in _BYTE_SPACE:
                    in_word = False
                    if value() == "--":
                        return flags, pos
                    if blank_ok or idx:
                        flags.append(lg.token(raw_start, pos, idx))
                    idx = []
                    blank_ok = False
                    pos += 1
                    continue
                if ch in "'\"":
                    quote, blank_ok, in_word, in_quote = ch, True, False, True
                    pos += 1
                    continue
                if ch == "\\":
                    if pos + 1 == hi:
                        pos += 1
                        continue
                    pos += 1
                idx.append(pos)
                pos += 1
                continue
            # in a quote
            if ch == quote:
                in_word, in_quote = True, False
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == hi:
                    in_word, in_quote = True, False
                    pos += 1
                    continue
                pos += 1
            idx.append(pos)
            pos += 1
        return flags, hi

    def _split_ws(self, lg: _Logical, lo: int, hi: int) -> list[Token]:
        if lo >= hi:
            return []
        tokens = []
        prev = lo
        for m in _ASCII_WS_RE.finditer(lg.s, lo, hi):
            tokens.append(lg.token(prev, m.start()))
            prev = m.end()
        tokens.append(lg.token(prev, hi))
        return tokens

    def _words(self, lg: _Logical, lo: int, hi: int) -> list[Token]:
        """parseWords: whitespace-separated words keeping quotes and escapes (ARG, ENV, LABEL)."""
        s, esc = lg.s, self.escape
        words: list[Token] = []
        phase = 0  # 0 spaces, 1 word, 2 quote
        quote = ""
        blank_ok = False
        idx: list[int] = []
        raw_start = lo
        pos = lo
        while pos <= hi:
            ch = s[pos] if pos < hi else ""
            if phase == 0:
                if pos == hi:
                    break
                if ch in _GO_SPACE:
                    pos += 1
                    continue
                phase = 1
                raw_start = pos
            if pos == hi:
                if blank_ok or idx:
                    words.append(lg.token(raw_start, pos, idx))
                break
            if phase == 1:
                if ch in _GO_SPACE:
                    phase = 0
                    if blank_ok or idx:
                        words.append(lg.token(raw_start, pos, idx))
                    idx = []
                    blank_ok = False
                    pos += 1
                    continue
                if ch in "'\"":
                    quote, blank_ok, phase = ch, True, 2
                if ch == esc:
                    if pos + 1 == hi:
                        pos += 1
                        continue
                    idx.append(pos)
                    pos += 1
                idx.append(pos)
                pos += 1
                continue
            if ch == quote:
                phase = 1
            if ch == esc and quote != "'":
                if pos + 1 == hi:
                    phase = 1
                    pos += 1
                    continue
                idx.append(pos)
                pos += 1
            idx.append(pos)
            pos += 1
        return words

    def _name_val(self, lg: _Logical, lo: int, hi: int, keyword: str, line: int) -> list[Token]:
        words = self._words(lg, lo, hi)
        if not words:
            return []
        if "=" not in words[0].value:
            m = _ASCII_WS_RE.search(lg.s, lo, hi)
            if m is None:
                raise self.error(f"{keyword} must have two arguments", line)
            return [lg.token(lo, m.start()), lg.token(m.end(), hi)]
        out: list[Token] = []
        for w in words:
            if "=" not in w.value:
                raise self.error(f'Syntax error - can\'t find = in "{w.value}". Must be of the form: name=value', line)
            eq = w.value.index("=")
            out.append(w.part(0, eq) or Token("", w.start, w.start))
            out.append(w.part(eq + 1) or Token("", w.positions[eq] + 1, w.positions[eq] + 1))
        return out

    def _maybe_json(self, lg: _Logical, lo: int, hi: int, line: int) -> tuple[list[Token], bool]:
        if lo >= hi:
            return [], False
        parsed = self._json(lg, lo, hi, line)
        if parsed is not None:
            return parsed, True
        return [lg.token(lo, hi)], False

    def _json(self, lg: _Logical, lo: int, hi: int, line: int) -> list[Token] | None:
        s = lg.s
        while lo < hi and s[lo] in _GO_SPACE:
            lo += 1
        if lo >= hi or s[lo] != "[":
            return None

        def no_constants(name: str) -> object:
            raise ValueError(name)  # Go's encoding/json has no NaN/Infinity

        try:
            # BuildKit decodes the first JSON value and ignores what follows it (json.Decoder, not Unmarshal).
            values, _ = json.JSONDecoder(parse_constant=no_constants).raw_decode(s[lo:hi])
        except (ValueError, RecursionError):  # "[[[[..." nests past Python's limit: not JSON, as for Go past its own
            return None
        if not isinstance(values, list):
            return None
        if not all(isinstance(v, str) for v in values):
            raise self.error("when using JSON array syntax, arrays must be comprised of strings only", line)
        return _json_tokens(lg, lo, len(values))


_JSON_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _json_tokens(lg: _Logical, i: int, count: int) -> list[Token]:
    """Walk an already validated JSON array of strings, keeping each decoded character's position."""
    s = lg.s
    tokens = []
    for _ in range(count):
        i = s.index('"', i)
        raw_start = i
        i += 1
        chars: list[str] = []
        idx: list[int] = []
        while s[i] != '"':
            if s[i] == "\\":
                if s[i + 1] == "u":
                    cp = int(s[i + 2 : i + 6], 16)
                    j = i + 6
                    if 0xD800 <= cp < 0xDC00 and s[j : j + 2] == "\\u":
                        low = int(s[j + 2 : j + 6], 16)
                        if 0xDC00 <= low < 0xE000:
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
                            j += 6
                    chars.append(chr(cp))
                    idx.append(i)
                    i = j
                else:
                    chars.append(_JSON_ESCAPES[s[i + 1]])
                    idx.append(i)
                    i += 2
            else:
                chars.append(s[i])
                idx.append(i)
                i += 1
        i += 1
        tok = lg.token(raw_start, i, idx, "".join(chars))
        tokens.append(tok)
    return tokens


def instructions(text: str, path: str = "") -> list[Instruction]:
    """Every instruction of a Dockerfile's text, as BuildKit's parser splits it."""
    return _Lexer(text, path).run()


# ---------------------------------------------------------------------------------------------------------------
# Scanning for image references
# ---------------------------------------------------------------------------------------------------------------


def _unquoted(tok: Token) -> tuple[int, int]:
    """The span to edit for a raw token: inside its quotes when the whole token is one quoted string."""
    v = tok.value
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"" and v[0] not in v[1:-1] and len(tok.positions) == len(v):
        return tok.positions[1], tok.positions[-2] + 1
    return tok.start, tok.end


def _single_arg(written: str) -> str | None:
    """The ARG name when the reference is exactly ``$NAME`` or ``${NAME}`` (optionally in double quotes)."""
    if len(written) >= 2 and written[0] == written[-1] == '"':
        written = written[1:-1]
    m = _SINGLE_ARG_RE.fullmatch(written)
    return (m.group(1) or m.group(2)) if m else None


def _csv_fields(tok: Token) -> list[Token] | None:
    """Go's encoding/csv, first record only (the value of ``--mount=``); None when it does not parse."""
    v, n = tok.value, len(tok.value)
    if n == 0:
        return None
    fields: list[Token] = []

    def make(idx: list[int]) -> Token:
        if not idx:
            return Token("", tok.start, tok.start)
        return Token("".join(v[k] for k in idx), tok.positions[idx[0]], tok.positions[idx[-1]] + 1,
                     tuple(tok.positions[k] for k in idx))  # fmt: skip

    i = 0
    while True:
        idx: list[int] = []
        if i < n and v[i] == '"':
            i += 1
            while True:
                if i >= n:
                    return None
                if v[i] == '"':
                    if i + 1 < n and v[i + 1] == '"':
                        idx.append(i)
                        i += 2
                        continue
                    i += 1
                    break
                idx.append(i)
                i += 1
            fields.append(make(idx))
            if i == n:
                return fields
            if v[i] != ",":
                return None
            i += 1
        else:
            j = v.find(",", i)
            stop = n if j < 0 else j
            if '"' in v[i:stop]:
                return None
            fields.append(make(list(range(i, stop))))
            if j < 0:
                return fields
            i = j + 1


class _Scanner:
    def __init__(self, text: str, path: str, build_args: Mapping[str, str]) -> None:
        self.text = text
        self.path = path
        self.build_args = dict(build_args)
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        lexer = _Lexer(text, path)
        self.instrs = lexer.run()
        self.lines = lexer.lines
        self.escape = lexer.escape
        self.uses: list[ImageUse] = []
        self.token_spans: list[tuple[int, int]] = []
        self.has_syntax = lexer.has_syntax

    def line_of(self, index: int) -> int:
        return bisect.bisect_right(self.line_starts, index)

    def error(self, cause: str, ins: Instruction) -> DockerfileError:
        return DockerfileError(cause, self.path, ins.start_line)

    def expand(self, word: str, env: Mapping[str, _Var], ins: Instruction) -> _Shell:
        sh = _Shell(self.escape, env)
        try:
            sh.result, _ = sh.process(word)
        except _ShellError as exc:
            raise self.error(str(exc), ins) from None
        return sh

    def ignored(self, ins: Instruction, prev_end: int) -> bool:
        above = ins.start_line - 1
        if above < 1 or above <= prev_end:
            return False
        start, end = self.lines[above - 1]
        return _PRAGMA_RE.fullmatch(self.text[start:end].rstrip("\r\n")) is not None

    def declare(self, ins: Instruction, env: dict[str, _Var], inherit: Mapping[str, _Var] | None) -> None:
        """ARG: build-arg beats default; in a stage, a bare ``ARG X`` inherits the global X."""
        if not ins.arg_tokens:
            raise self.error("ARG requires at least one argument", ins)
        for tok in ins.arg_tokens:
            name, eq, _ = tok.value.partition("=")
            if eq and not name:
                raise self.error("ARG names can not be blank", ins)
            if name in self.build_args:
                env[name] = _Var(self.build_args[name])
            elif eq:
                default = tok.part(len(name) + 1)
                raw = default.value if default else ""
                sh = self.expand(raw, env, ins)
                if default is None:
                    at = tok.positions[len(name)] + 1
                    origin = (at, at, name)
                else:
                    start, end = _unquoted(default)
                    origin = (start, end, name)
                env[name] = _Var(sh.result, origin, frozenset(sh.platform), frozenset(sh.unresolved))
            elif inherit is not None and name in inherit:
                env[name] = inherit[name]
            # Otherwise the ARG has no value (a predefined platform ARG keeps its placeholder).

    def add_use(
        self, ins: Instruction, tok: Token, env: Mapping[str, _Var], stages: set[str], ignored: bool,
        platform: str | None = None, raw_written: bool = False,
    ) -> None:  # fmt: skip
        written = tok.value
        sh = self.expand(written, env, ins)
        image: str | None = sh.result
        status, note = Status.OK, ""
        # A platform ARG used in a stage without `ARG TARGETARCH` is empty in BuildKit, but meant per platform.
        platform_args = sh.platform | (sh.unresolved & PLATFORM_ARGS)
        if platform_args:
            names = ", ".join(sorted(platform_args))
            status, image = PLATFORM_ARG, None
            note = f"depends on predefined platform ARG {names}, unknown when pinning"
        elif sh.unresolved:
            names = ", ".join(sorted(sh.unresolved))
            status = UNRESOLVED
            note = f"depends on ARG {names} with no default value and no --build-arg"
            image = None
        else:
            assert image is not None
            if image.lower() in stages or image.lower() == "scratch":
                return
            if ins.keyword != "FROM" and _STAGE_INDEX_RE.fullmatch(image):
                return
            if image == "" and ins.keyword == "FROM":
                raise self.error(f"base name ({written}) should not be blank", ins)
        if ignored:
            status, note = IGNORED, "marked '# pin-images: ignore'"
        start, end = _unquoted(tok) if raw_written else (tok.start, tok.end)
        self.token_spans.append((start, end))
        arg = None
        name = _single_arg(written)
        var = env.get(name) if name else None
        if var is not None and var.origin is not None:
            start, end, arg = var.origin
        self.uses.append(
            ImageUse(ins.start_line, ins.keyword, written, image, platform, start, end, self.line_of(start),
                     arg, status, note)
        )  # fmt: skip

    def run(self) -> list[ImageUse]:
        all_stages: set[str] = set()
        for ins in self.instrs:
            if ins.keyword == "FROM":
                name = self.from_stage_name(ins)
                if name:
                    all_stages.add(name)
        global_env: dict[str, _Var] = {
            name: _Var(self.build_args[name]) if name in self.build_args else _Var("", platform=frozenset({name}))
            for name in PLATFORM_ARGS
        }
        earlier: set[str] = set()
        stage_envs: dict[str, dict[str, _Var]] = {}
        env: dict[str, _Var] | None = None
        prev_end = 0
        for ins in self.instrs:
            kw = ins.keyword
            if kw not in KNOWN_INSTRUCTIONS:
                if self.has_syntax:
                    continue  # a `# syntax=` frontend may define its own instructions
                raise self.error(f"unknown instruction: {kw}", ins)
            ignored = self.ignored(ins, prev_end)
            prev_end = ins.end_line
            if env is None and kw not in ("ARG", "FROM"):
                raise self.error("no build stage in current context", ins)
            if kw == "ARG":
                if env is None:
                    self.declare(ins, global_env, None)
                else:
                    self.declare(ins, env, global_env)
            elif kw == "FROM":
                self.scan_from(ins, global_env, earlier, ignored)
                name = self.from_stage_name(ins)
                base = self.expand(ins.args[0], global_env, ins).result.lower()
                env = dict(stage_envs[base]) if base in earlier and base in stage_envs else {}
                if name:
                    earlier.add(name)
                    stage_envs[name] = env
            elif kw == "ENV" and env is not None:
                toks = ins.arg_tokens
                values = [(toks[k].value, self.expand(toks[k + 1].value, env, ins)) for k in range(0, len(toks) - 1, 2)]
                for key, sh in values:
                    env[key] = _Var(sh.result, None, frozenset(sh.platform), frozenset(sh.unresolved))
            elif kw in ("COPY", "ADD") and env is not None:
                tok = self.flag_value(ins, "from")
                if tok is not None:
                    self.add_use(ins, tok, env, all_stages, ignored)
            elif kw == "RUN" and env is not None:
                self.scan_mounts(ins, env, all_stages, ignored)
        return self.shared_defaults_only()

    def shared_defaults_only(self) -> list[ImageUse]:
        """Edit an ARG default only when every reference to that ARG is a whole image reference.

        Otherwise (``FROM $BASE-slim``, ``ARG FULL=$BASE``, ``LABEL base=$BASE``) a digest on the default would
        leak into the other uses, so the digest goes after the reference in the instruction instead.
        """
        refs: dict[str, int] = {}
        for ins in self.instrs:
            for one in (ins, ins.sub):
                for tok in (*one.flag_tokens, *one.arg_tokens) if one is not None else ():
                    for m in _VAR_REF_RE.finditer(tok.value):
                        refs[m.group(1)] = refs.get(m.group(1), 0) + 1
        whole: dict[str, int] = {}
        for use in self.uses:
            if use.arg is not None:
                whole[use.arg] = whole.get(use.arg, 0) + 1
        out = []
        for use, (start, end) in zip(self.uses, self.token_spans):
            if use.arg is not None and refs.get(use.arg, 0) > whole[use.arg]:
                use = replace(use, start=start, end=end, edit_line=self.line_of(start), arg=None)
            out.append(use)
        return out

    def from_stage_name(self, ins: Instruction) -> str | None:
        args = ins.args
        if len(args) == 3 and args[1].lower() == "as":
            name = args[2].lower()
            if not _STAGE_NAME_RE.fullmatch(name):
                raise self.error(
                    f"invalid name for build stage: {args[2]!r}, name can't start with a number or contain symbols", ins
                )
            return name
        if len(args) != 1:
            raise self.error("FROM requires either one or three arguments", ins)
        return None

    def scan_from(self, ins: Instruction, global_env: Mapping[str, _Var], earlier: set[str], ignored: bool) -> None:
        platform_tok = None
        for tok in ins.flag_tokens:
            if tok.value == "--":
                break
            name, eq, _ = tok.value[2:].partition("=")
            if name != "platform":
                raise self.error(f"Unknown flag: {name}", ins)
            if not eq:
                raise self.error("Missing a value on flag: platform", ins)
            if platform_tok is not None:
                raise self.error("Duplicate flag specified: platform", ins)
            platform_tok = tok.part(len("--platform="))
        self.from_stage_name(ins)
        platform = None
        if platform_tok is not None:
            sh = self.expand(platform_tok.value, global_env, ins)
            platform = None if sh.platform or sh.unresolved else sh.result
        self.add_use(ins, ins.arg_tokens[0], global_env, earlier, ignored, platform, raw_written=True)

    def flag_value(self, ins: Instruction, wanted: str) -> Token | None:
        found = None
        for tok in ins.flag_tokens:
            if tok.value == "--":
                break
            name, eq, _ = tok.value[2:].partition("=")
            if name != wanted:
                continue
            if not eq:
                raise self.error(f"Missing a value on flag: {wanted}", ins)
            if found is not None:
                raise self.error(f"Duplicate flag specified: {wanted}", ins)
            found = tok.part(len(wanted) + 3) or Token("", tok.end, tok.end)
        return found if found is not None and found.value else None

    def scan_mounts(self, ins: Instruction, env: Mapping[str, _Var], stages: set[str], ignored: bool) -> None:
        for tok in ins.flag_tokens:
            if tok.value == "--":
                break
            name, eq, _ = tok.value[2:].partition("=")
            if name != "mount" or not eq:
                continue
            value = tok.part(len("--mount="))
            fields = _csv_fields(value) if value is not None else None
            if fields is None:
                raise self.error(f"failed to parse csv mounts: {tok.value}", ins)
            mount_type, source = "bind", None
            for f in fields:
                key, has_eq, _ = f.value.partition("=")
                key = key.lower()
                if not has_eq:
                    continue
                if key == "type":
                    mount_type = f.value[len(key) + 1 :].lower()
                elif key == "from":
                    source = f.part(len(key) + 1)
            if source is None or mount_type == "tmpfs":
                continue
            if mount_type == "secret":
                raise self.error("secret mount should not have a from", ins)
            self.add_use(ins, source, env, stages, ignored)


def scan(data: bytes, path: str = "", build_args: Mapping[str, str] | None = None) -> list[ImageUse]:
    """Every external image reference in a Dockerfile (FROM, COPY/ADD --from, RUN --mount from=), in file order."""
    if b"\x00" in data:
        raise DockerfileError("binary file (contains NUL bytes)", path)
    text = data.decode("utf-8", "surrogateescape")
    return _Scanner(text, path, build_args or {}).run()
