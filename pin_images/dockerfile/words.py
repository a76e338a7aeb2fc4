"""One instruction's keyword, flags and arguments as BuildKit's line parsers split them, as positioned tokens.

A port of BuildKit's frontend/dockerfile/parser/line_parsers.go and extractBuilderFlags over a logical line (its
continuations joined) that knows, for each character, where it sits in the file's text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from .expand import GO_SPACE

# extractBuilderFlags and parseHealthConfig test single bytes; at character level that is ASCII whitespace.
_BYTE_SPACE = frozenset("\t\n\v\f\r ")
# BuildKit's reWhitespace / tokenWhitespace: only these split a command from its arguments and FROM's words.
_ASCII_WS_RE = re.compile(r"[\t\v\f\r ]+")
_PLAIN_FLAG_RE = re.compile(r"[^\t\n\v\f\r '\"\\]*")  # a builder flag's run without _BYTE_SPACE, quotes, backslash


def go_trim(s: str, lo: int, hi: int) -> tuple[int, int]:
    """strings.TrimSpace on s[lo:hi], returned as indices."""
    while lo < hi and s[lo] in GO_SPACE:
        lo += 1
    while hi > lo and s[hi - 1] in GO_SPACE:
        hi -= 1
    return lo, hi


class CommandError(Exception):
    """An instruction BuildKit's parser refuses; the lexer adds the file and line."""


class Token(NamedTuple):
    """One flag or argument as BuildKit reports it, with where it sits in the text.

    ``start``/``end`` cover the token's characters in the text (a token split by a line continuation spans it);
    ``positions[i]`` is the text index of ``value[i]`` (quotes and escapes removed by the parser have none).
    A NamedTuple, not a dataclass: every word of every instruction of every file scanned is one.
    """

    value: str
    start: int
    end: int
    # A range when the characters are contiguous in the text (nearly always), else a tuple.
    positions: Sequence[int] = ()

    def part(self, begin: int, stop: int | None = None) -> Token | None:
        """The sub-token value[begin:stop] with its own span; None when it is empty."""
        stop = len(self.value) if stop is None else stop
        if begin >= stop:
            return None
        pos = self.positions[begin:stop]
        return Token(self.value[begin:stop], pos[0], pos[-1] + 1, pos)


class Command(NamedTuple):
    """An instruction's keyword, flags and arguments; ``sub`` is ONBUILD's trigger."""

    keyword: str
    flag_tokens: tuple[Token, ...]
    arg_tokens: tuple[Token, ...]
    json: bool = False
    sub: Command | None = None

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple([t.value for t in self.flag_tokens])

    @property
    def args(self) -> tuple[str, ...]:
        return tuple([t.value for t in self.arg_tokens])


class Logical:
    """A logical line (continuations joined) and, for each character, its index in the text.

    ``pos`` is a range for a line that is one physical line, so that its tokens' positions are ranges too (slicing
    a range costs nothing; a tuple of every character's index was most of a token's cost).
    """

    def __init__(self, s: str, pos: Sequence[int]) -> None:
        self.s = s
        self.pos = pos

    def token(self, lo: int, hi: int, idx: list[int] | None = None, value: str | None = None) -> Token:
        pos = self.pos
        if idx is None or (idx and len(idx) == hi - lo and idx[0] == lo and idx[-1] == hi - 1):
            # A contiguous run (almost every token; idx only ever grows): slice instead of walking it char by char.
            value = self.s[lo:hi] if value is None else value
            positions = pos[lo:hi]
        else:
            value = "".join([self.s[i] for i in idx]) if value is None else value
            positions = tuple([pos[i] for i in idx])
        if hi > lo:
            return Token(value, pos[lo], pos[hi - 1] + 1, positions)
        start = pos[lo] if lo < len(pos) else (pos[-1] + 1 if pos else 0)
        return Token(value, start, start, positions)


class CommandParser:
    """splitCommand and the per-instruction argument parsers; ``escape`` is the file's escape character."""

    def __init__(self, escape: str) -> None:
        self.escape = escape

    def parse(self, lg: Logical, lo: int, hi: int) -> Command:
        """splitCommand: the keyword, the builder flags, then the arguments as the keyword's own parser splits them."""
        s = lg.s
        if lo < hi and (s[lo] in GO_SPACE or s[hi - 1] in GO_SPACE):  # the call only when there is space to trim
            lo, hi = go_trim(s, lo, hi)
        m = _ASCII_WS_RE.search(s, lo, hi)
        keyword = s[lo : m.start() if m else hi].upper()
        flags: list[Token] = []
        args_lo = args_hi = hi
        if m:
            args_lo = m.end()
            if s.startswith("--", args_lo):  # the whitespace run ended there, so this is where flags would start
                flags, args_lo = self._flags(lg, args_lo, hi)
            args_hi = hi
            if args_lo < hi and (s[args_lo] in GO_SPACE or s[hi - 1] in GO_SPACE):
                args_lo, args_hi = go_trim(s, args_lo, hi)
        if keyword == "ONBUILD":
            if args_lo == args_hi:
                return Command(keyword, tuple(flags), ())
            sub = self.parse(lg, args_lo, args_hi)
            return Command(keyword, tuple(flags), (lg.token(args_lo, args_hi),), False, sub)
        args, is_json = self._arguments(keyword, lg, args_lo, args_hi)
        return Command(keyword, tuple(flags), tuple(args), is_json)

    def _arguments(self, keyword: str, lg: Logical, lo: int, hi: int) -> tuple[list[Token], bool]:
        """The arguments of one instruction and whether they were written as a JSON array."""
        if keyword in ("FROM", "EXPOSE"):
            return self._split_ws(lg, lo, hi), False
        if keyword in ("ADD", "COPY", "VOLUME"):
            parsed = self._json(lg, lo, hi)
            return (parsed, True) if parsed is not None else (self._split_ws(lg, lo, hi), False)
        if keyword in ("CMD", "ENTRYPOINT", "RUN", "SHELL"):
            return self._maybe_json(lg, lo, hi)
        if keyword == "ARG":
            return self._words(lg, lo, hi), False
        if keyword in ("ENV", "LABEL"):
            return self._name_val(lg, lo, hi, keyword), False
        if keyword == "HEALTHCHECK":
            s = lg.s
            sep = lo
            while sep < hi and s[sep] not in _BYTE_SPACE:
                sep += 1
            nxt = sep
            while nxt < hi and s[nxt] in _BYTE_SPACE:
                nxt += 1
            if sep == lo:
                return [], False
            rest, is_json = self._maybe_json(lg, nxt, hi)
            return [lg.token(lo, sep), *rest], is_json
        if keyword in ("MAINTAINER", "STOPSIGNAL", "USER", "WORKDIR"):
            return ([lg.token(lo, hi)] if lo < hi else []), False
        return [], False  # BuildKit's parser keeps unknown instructions without arguments

    def _flags(self, lg: Logical, lo: int, hi: int) -> tuple[list[Token], int]:
        """extractBuilderFlags: leading ``--words`` (quotes removed, backslash escapes), then where args start.

        One state machine, kept whole so that it reads line by line against BuildKit's Go function.
        """
        s = lg.s
        pos = lo
        while pos < hi and s[pos] in _BYTE_SPACE:
            pos += 1
        if pos + 1 >= hi or s[pos] != "-" or s[pos + 1] != "-":
            return [], pos  # no flags (most instructions): the loop below would return here too
        flags: list[Token] = []
        in_word = in_quote = False
        quote = ""
        blank_ok = False
        idx: list[int] = []
        raw_start = lo

        def dashes() -> bool:  # is the word so far "--", the end of the flags?
            return len(idx) == 2 and s[idx[0]] == "-" and s[idx[1]] == "-"

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
                if not dashes() and (blank_ok or idx):
                    flags.append(lg.token(raw_start, pos, idx))
                break
            if in_word:
                if ch in _BYTE_SPACE:
                    in_word = False
                    if dashes():
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

    def _split_ws(self, lg: Logical, lo: int, hi: int) -> list[Token]:
        if lo >= hi:
            return []
        tokens = []
        prev = lo
        for m in _ASCII_WS_RE.finditer(lg.s, lo, hi):
            tokens.append(lg.token(prev, m.start()))
            prev = m.end()
        tokens.append(lg.token(prev, hi))
        return tokens

    def _words(self, lg: Logical, lo: int, hi: int) -> list[Token]:
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
                if ch in GO_SPACE:
                    pos += 1
                    continue
                phase = 1
                raw_start = pos
            if pos == hi:
                if blank_ok or idx:
                    words.append(lg.token(raw_start, pos, idx))
                break
            if phase == 1:
                if ch in GO_SPACE:
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

    def _name_val(self, lg: Logical, lo: int, hi: int, keyword: str) -> list[Token]:
        words = self._words(lg, lo, hi)
        if not words:
            return []
        if "=" not in words[0].value:
            m = _ASCII_WS_RE.search(lg.s, lo, hi)
            if m is None:
                raise CommandError(f"{keyword} must have two arguments")
            return [lg.token(lo, m.start()), lg.token(m.end(), hi)]
        out: list[Token] = []
        for w in words:
            if "=" not in w.value:
                raise CommandError(f'Syntax error - can\'t find = in "{w.value}". Must be of the form: name=value')
            eq = w.value.index("=")
            out.append(w.part(0, eq) or Token("", w.start, w.start))
            out.append(w.part(eq + 1) or Token("", w.positions[eq] + 1, w.positions[eq] + 1))
        return out

    def _maybe_json(self, lg: Logical, lo: int, hi: int) -> tuple[list[Token], bool]:
        if lo >= hi:
            return [], False
        parsed = self._json(lg, lo, hi)
        if parsed is not None:
            return parsed, True
        return [lg.token(lo, hi)], False

    def _json(self, lg: Logical, lo: int, hi: int) -> list[Token] | None:
        s = lg.s
        while lo < hi and s[lo] in GO_SPACE:
            lo += 1
        if lo >= hi or s[lo] != "[":
            return None

        import json  # only for a line that starts with "[": many Dockerfiles have none

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
            raise CommandError("when using JSON array syntax, arrays must be comprised of strings only")
        return _json_tokens(lg, lo, len(values))


_JSON_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _json_tokens(lg: Logical, i: int, count: int) -> list[Token]:
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


def csv_fields(tok: Token) -> list[Token] | None:
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
            if i < stop:  # an unquoted field is a run of the value: slice it rather than copy it char by char
                pos = tok.positions[i:stop]
                fields.append(Token(v[i:stop], pos[0], pos[-1] + 1, pos))
            else:
                fields.append(make([]))
            if j < 0:
                return fields
            i = j + 1
