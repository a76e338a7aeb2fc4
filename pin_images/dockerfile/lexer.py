"""BuildKit's Dockerfile lexing: parser directives, continuations, comments and heredocs, into instructions.

A port of BuildKit's frontend/dockerfile/parser (parser.go) that keeps, for every character of an instruction,
where it sits in the text; ``words`` splits each instruction into its flags and arguments.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import NamedTuple

from ..errors import DockerfileError
from .expand import GO_SPACE, Shell, ShellError
from .words import Command, CommandError, CommandParser, Logical, Token, go_trim

# Compiled on first use (through re's own cache): most files have no directive and no heredoc.
_DIRECTIVE = r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*"
_HEREDOC = r"([0-9]*)<<(-?)([^<]*)"
_VALID_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC_COMMANDS = frozenset({"ADD", "COPY", "RUN"})
KNOWN_INSTRUCTIONS = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
        "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    }
)  # fmt: skip
_BOM = "\ufeff"


# Records are NamedTuples, not dataclasses: a dataclass costs the hook's import a millisecond or more each, and
# an instance several times a tuple's (one Instruction per line of every file scanned).
class Heredoc(NamedTuple):
    """A here-document attached to an instruction (``<<EOF``, ``<<-EOF``, ``<<"EOF"``, ``3<<EOF``)."""

    name: str
    file_descriptor: int
    chomp: bool
    content: str


class Instruction(NamedTuple):
    """One instruction as BuildKit's parser sees it (continuations joined, comments and heredoc bodies removed)."""

    keyword: str
    start_line: int
    end_line: int
    flags: tuple[str, ...]
    args: tuple[str, ...]
    heredocs: tuple[Heredoc, ...] = ()
    json: bool = False
    flag_tokens: tuple[Token, ...] = ()
    arg_tokens: tuple[Token, ...] = ()
    # ONBUILD's trigger instruction (same lines); None for every other keyword.
    sub: Command | None = None


class Lexer:
    """Splits a Dockerfile's text into instructions; afterwards ``escape`` and ``syntax`` hold its directives.

    ``syntax`` is the (start, end) span of the ``# syntax=`` directive's value, None without one; ``comments``
    holds the (line, start, end) of every comment line, without heredoc bodies (which are not comments).
    """

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.syntax: tuple[int, int] | None = None
        self.comments: list[tuple[int, int, int]] = []
        self.escape = "\\"
        parts = text.split("\n")
        if not parts[-1]:
            parts.pop()  # nothing after the last newline: no line there
        ends = list(accumulate(len(part) + 1 for part in parts))
        if ends and ends[-1] > len(text):
            ends[-1] = len(text)  # the last line has no newline
        starts = [0, *ends[:-1]]
        # Each line's span, and without its trailing CR/LF characters (bytes.TrimRight(line, "\r\n")).
        self.lines = list(zip(starts, ends))
        self.contents = [(start, start + len(part.rstrip("\r"))) for start, part in zip(starts, parts)]
        self._next = 0  # the next physical line to read
        self._parser = CommandParser(self.escape)

    def error(self, cause: str, line: int) -> DockerfileError:
        return DockerfileError(cause, self.path, line)

    def _trim_continuation(self, start: int, end: int) -> tuple[int, bool]:
        """Returns (end of the kept text, whether the logical line ends here).

        BuildKit's ``([^\\])\\[ \t]*$|^\\[ \t]*$`` (for the file's escape character), by hand: the escape is the
        last character before trailing blanks and is not itself escaped. A regex search here cost a slice per line.
        """
        text = self.text
        k = end
        while k > start and text[k - 1] in " \t":
            k -= 1
        esc = self.escape
        if k == start or text[k - 1] != esc or (k - 1 > start and text[k - 2] == esc):
            return end, True
        return k - 1, False

    def run(self) -> list[Instruction]:
        """Every instruction, in file order."""
        text = self.text
        result: list[Instruction] = []
        directives_done = False
        seen: set[str] = set()
        while self._next < len(self.lines):
            start_line = self._next + 1
            start, end = self.contents[self._next]
            if start_line == 1 and text.startswith(_BOM):
                start += 1
            lo = start
            while lo < end and text[lo] in GO_SPACE:
                lo += 1
            if not directives_done:
                directives_done = self._directive(lo, end, seen, start_line)
            if lo < end and text[lo] == "#":
                self.comments.append((start_line, lo, end))
                end = lo
            self._next += 1
            if lo == end:
                continue  # a blank or comment line (what _logical_line would find, without the calls)
            logical = self._logical_line(lo, end)
            if logical is None:
                continue
            cmd = self._command(logical, start_line)
            heredocs = self._heredoc_bodies(cmd, logical.s, start_line) if "<<" in logical.s else ()
            flags = cmd.flags if cmd.flag_tokens else ()
            result.append(
                Instruction(
                    cmd.keyword, start_line, self._next, flags, cmd.args, heredocs, cmd.json,
                    cmd.flag_tokens, cmd.arg_tokens, cmd.sub,
                )
            )  # fmt: skip
        return result

    def _logical_line(self, lo: int, end: int) -> Logical | None:
        """Join the instruction starting at text[lo:end] with its continuation lines; None for an empty line."""
        text = self.text
        kept, eol = self._trim_continuation(lo, end)
        if eol and kept == lo:
            return None
        if eol:
            return Logical(text[lo:kept], range(lo, kept))  # one physical line (nearly every instruction)
        chars = [text[lo:kept]]
        pos = list(range(lo, kept))
        while not eol and self._next < len(self.lines):
            cstart, cend = self.contents[self._next]
            self._next += 1
            first, _ = go_trim(text, cstart, cend)
            if first < cend and text[first] == "#":
                self.comments.append((self._next, first, cend))
                continue
            if first == cend:
                continue  # BuildKit skips blank lines inside a continuation (with a warning)
            kept, eol = self._trim_continuation(cstart, cend)
            chars.append(text[cstart:kept])
            pos.extend(range(cstart, kept))
        return Logical("".join(chars), tuple(pos))

    def _command(self, logical: Logical, line: int) -> Command:
        try:
            if self._parser.escape != self.escape:
                self._parser = CommandParser(self.escape)
            return self._parser.parse(logical, 0, len(logical.s))
        except CommandError as exc:
            raise self.error(str(exc), line) from None
        except RecursionError:  # ONBUILD ONBUILD ... hundreds deep (BuildKit refuses even two)
            raise self.error("ONBUILD nested too deeply", line) from None

    def _heredoc_bodies(self, cmd: Command, line: str, start_line: int) -> tuple[Heredoc, ...]:
        """Read the bodies of the instruction's heredocs from the lines that follow it."""
        target = cmd.sub if cmd.keyword == "ONBUILD" and cmd.sub is not None else cmd
        if target.keyword not in _HEREDOC_COMMANDS or target.json or "<<" not in line:
            return ()
        heredocs: list[Heredoc] = []
        for name, fd, chomp in self._heredocs(line, start_line):
            content: list[str] = []
            while True:
                if self._next >= len(self.lines):
                    raise self.error("unterminated heredoc", start_line)
                bstart, bend = self.lines[self._next]
                self._next += 1
                candidate = self.text[bstart:bend].rstrip("\r\n")
                if (candidate.lstrip("\t") if chomp else candidate) == name:
                    break
                content.append(self.text[bstart:bend])
            heredocs.append(Heredoc(name, fd, chomp, "".join(content)))
        return tuple(heredocs)

    def _directive(self, lo: int, end: int, seen: set[str], line: int) -> bool:
        """Parser directives: only in the leading run of ``# key=value`` comments. Returns True once done."""
        text = self.text
        if lo >= end or text[lo] != "#":
            return True
        body = lo + 1
        while body < end and text[body] in GO_SPACE:
            body += 1
        m = re.compile(_DIRECTIVE).fullmatch(text, body, end)
        if m is None:
            return True
        key = m.group(1).lower()
        if key not in _VALID_DIRECTIVES:
            return True
        if key in seen:
            raise self.error(f"only one {key} parser directive can be used", line)
        seen.add(key)
        if key == "syntax":
            self.syntax = m.span(2)
        if key == "escape":
            value = m.group(2)
            if value not in ("`", "\\"):
                raise self.error(f"invalid escape token '{value}' does not match ` or \\", line)
            self.escape = value
        return False

    def _heredocs(self, line: str, lineno: int) -> list[tuple[str, int, bool]]:
        """The (name, file descriptor, chomp) of each ``<<NAME`` word of an instruction, as ParseHeredoc finds them."""
        sh = Shell("\\", {}, raw_quotes=True, raw_escapes=True, skip_unset=True)
        try:
            _, words = sh.process(line)
        except ShellError:
            return []  # BuildKit ignores the lexing error here: no heredocs
        docs = []
        heredoc = re.compile(_HEREDOC)
        for word in words:
            m = heredoc.fullmatch(word)
            if m is None or not m.group(3):
                continue
            rest = m.group(3)
            try:
                _, names = Shell("\\", {}, skip_unset=True).process(rest)
                if len(names) != 1:
                    continue
                _, raw = Shell("\\", {}, raw_quotes=True, skip_unset=True).process(rest)
            except ShellError as exc:
                raise self.error(str(exc), lineno) from None
            if len(raw) != len(names):
                raise self.error(f"internal lexing of heredoc produced inconsistent results: {rest}", lineno)
            docs.append((names[0], int(m.group(1) or 0), m.group(2) == "-"))
        return docs


def instructions(text: str, path: str = "") -> list[Instruction]:
    """Every instruction of a Dockerfile's text, as BuildKit's parser splits it."""
    return Lexer(text, path).run()
