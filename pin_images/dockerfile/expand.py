"""Shell-style word expansion as BuildKit does it for ARG, ENV and instruction words, with its glob matcher.

A port of BuildKit's frontend/dockerfile/shell/lex.go that also remembers which ARGs a result depends on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

# Go's unicode.IsSpace, which BuildKit uses to trim lines and split words (Python's str.isspace is wider).
GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
)
# Compiled on first use (through re's cache; ~0.6 ms): the scanner expands no plain word through a Shell.
_GO_SPACE = "[" + re.escape("".join(sorted(GO_SPACE))) + "]+"


class Deps(NamedTuple):
    """What an expanded value depends on beyond its own text; the scanner turns it into a status and a note."""

    platform: frozenset[str] = frozenset()  # predefined platform ARGs: no value when pinning
    unresolved: frozenset[str] = frozenset()  # names without a value
    args: frozenset[str] = frozenset()  # ARGs with a value, which a --build-arg may change at build time
    overridden: frozenset[str] = frozenset()  # ARGs whose default in the file a --build-arg replaced
    broken: frozenset[str] = frozenset()  # why a declaration it depends on could not be expanded

    def __or__(self, other: object) -> Deps:  # a union of each field, not a tuple concatenation
        assert isinstance(other, Deps)
        return Deps(*(a | b for a, b in zip(self, other)))


NO_DEPS = Deps()


class Var(NamedTuple):
    """An ARG/ENV value; ``origin`` is the (start, end, ARG name) of an ARG default's text we could edit."""

    value: str
    origin: tuple[int, int, str] | None = None
    deps: Deps = NO_DEPS
    from_build_arg: bool = False


class ShellError(Exception):
    """A word BuildKit cannot expand (bad substitution, unmatched quote, ...)."""


class _Words:
    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def add_char(self, ch: str) -> None:
        space = ch in GO_SPACE
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


class Shell:
    """Quote removal and ``$VAR``/``${VAR...}`` expansion, remembering which ARGs the result depends on."""

    def __init__(
        self,
        escape: str,
        env: Mapping[str, Var],
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
        self.deps = NO_DEPS
        self.unresolved: set[str] = set()
        self.result = ""
        self.s = ""
        self.i = 0

    def process(self, word: str) -> tuple[str, list[str]]:
        """The word expanded, and the words it splits into."""
        if "$" not in word and "'" not in word and '"' not in word and self.escape not in word:
            # Nothing to expand, unquote or unescape (most references): the loop below would copy it char by
            # char, which was most of --check's time on 1000 pinned files in the benchmark.
            return word, [w for w in re.split(_GO_SPACE, word) if w]
        self.s, self.i = word, 0
        try:
            return self._stop_on(None, self.raw_escapes)
        except ShellError as exc:
            raise ShellError(f"failed to process {word!r}: {exc}") from None
        except RecursionError:  # ${a:-${b:-${c:-...}}} hundreds deep: Go's stack grows, Python's does not
            raise ShellError(f"failed to process {word!r}: substitutions nested too deeply") from None

    def collected(self) -> Deps:
        """Everything the words processed so far depend on."""
        if not self.unresolved:
            return self.deps
        return self.deps | Deps(unresolved=frozenset(self.unresolved))

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
                raise ShellError(f"unexpected end of statement while looking for matching {stop}")
            return "".join(result), words.get()
        finally:
            self.raw_escapes = saved

    def _single(self) -> str:
        opening = self._next() or ""
        res = [opening] if self.raw_quotes else []
        while True:
            ch = self._next()
            if ch is None:
                raise ShellError("unexpected end of statement while looking for matching single-quote")
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
                raise ShellError("unexpected end of statement while looking for matching double-quote")
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
        if var.deps is not NO_DEPS:
            self.deps |= var.deps
        return var.value, True

    def _dollar(self) -> str:
        """One ``$NAME`` or ``${...}`` expansion, the ``$`` not yet consumed (processDollar)."""
        self._next()
        if self._peek() != "{":
            name = self._name()
            if not name:
                return "$"
            return self._plain(name, "$" + name)
        self._next()
        p = self._peek()
        if p is None:
            raise ShellError("syntax error: missing '}'")
        if p in "{}:":
            raise ShellError("syntax error: bad substitution")
        name = self._name()
        ch = self._next()
        if ch is None:
            raise ShellError("syntax error: missing '}'")
        if ch == "}":
            return self._plain(name, "${" + name + "}")
        if ch == "/":
            return self._substitute(name)
        chs = ch
        null_is_unset = ch == ":"
        if null_is_unset:
            ch = self._next() or ""
            if not ch:
                raise ShellError("syntax error: missing '}'")
            chs += ch
        if not null_is_unset and ch not in "+-?#%":
            raise ShellError(f"unsupported modifier ({chs}) in substitution")
        try:
            word, _ = self._stop_on("}", ch in "#%")
        except ShellError:
            if self._peek() is None:
                raise ShellError("syntax error: missing '}'") from None
            raise
        return self._modifier(name, chs, word)

    def _plain(self, name: str, written: str) -> str:
        """``$NAME`` / ``${NAME}``: its value, noting a name without one."""
        value, found = self._get(name)
        if not found:
            if self.skip_unset:
                return written
            self.unresolved.add(name)
        return value

    def _modifier(self, name: str, chs: str, word: str) -> str:
        """``${NAME<chs>word}`` for the modifiers ``-``, ``+``, ``?``, ``#``, ``%`` (with or without ``:``)."""
        ch = chs[-1]
        null_is_unset = chs[0] == ":"
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
        raise ShellError(f"unsupported modifier ({chs}) in substitution")

    def _substitute(self, name: str) -> str:
        """``${NAME/pattern/replacement}`` and ``${NAME//pattern/replacement}``, after the first ``/``."""
        replace_all = self._peek() == "/"
        if replace_all:
            self._next()
        try:
            pattern, _ = self._stop_on("/", True)
        except ShellError:
            if self._peek() is None:
                raise ShellError("syntax error: missing '/' in ${}") from None
            raise
        try:
            replacement, _ = self._stop_on("}", True)
        except ShellError:
            if self._peek() is None:
                raise ShellError("syntax error: missing '}'") from None
            raise
        value, found = self._get(name)
        if self.skip_unset and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        if not found:
            self.unresolved.add(name)
        return _replace(pattern, value, replacement, replace_all)


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
                raise ShellError(f"invalid pattern ({pattern}) in substitution")
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
