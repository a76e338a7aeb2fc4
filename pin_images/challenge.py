"""Parse WWW-Authenticate headers (RFC 7235) into challenges; pure, no I/O."""

from __future__ import annotations

import re
from typing import NamedTuple

# RFC 7230 tchar; token68 adds the base64/URL-safe punctuation and trailing '='.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_BARE_VALUE_RE = re.compile(r'[^,\s"]*')
_WS = " \t"


class Challenge(NamedTuple):
    """One auth challenge: a lower-case scheme and its parameters (names lower-cased, in header order)."""

    scheme: str
    params: tuple[tuple[str, str], ...] = ()
    token68: str | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of parameter ``name`` (case-insensitive), else ``default``."""
        name = name.lower()
        for key, value in self.params:
            if key == name:
                return value
        return default

    def __str__(self) -> str:
        # Only scheme and parameter names: values (realms with tokens in them) stay out of messages.
        return self.scheme + ("" if not self.params else " " + ",".join(k for k, _ in self.params))


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WS:
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def match(self, pattern: re.Pattern[str]) -> str:
        found = pattern.match(self.text, self.pos)
        if not found:
            return ""
        self.pos = found.end()
        return found.group()

    def quoted(self) -> str:
        """A quoted-string starting at the opening quote; an unterminated one runs to the end of the header."""
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if ch == '"':
                break
            out.append(ch)
        return "".join(out)

    def skip_junk(self) -> None:
        """Skip to the next top-level comma, stepping over quoted strings, so one bad item costs only itself."""
        while self.pos < len(self.text) and self.text[self.pos] != ",":
            if self.text[self.pos] == '"':
                self.quoted()
            else:
                self.pos += 1


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in ``header`` (which may be several WWW-Authenticate headers joined with ", ").

    Lenient on junk: an unparsable item is skipped rather than failing the whole header, because one odd
    challenge from a proxy must not hide the registry's Bearer challenge.
    """
    scanner = _Scanner(header or "")
    result: list[Challenge] = []
    scheme: str | None = None
    params: list[tuple[str, str]] = []
    token68: str | None = None

    def flush() -> None:
        if scheme is not None:
            result.append(Challenge(scheme, tuple(params), token68))

    while True:
        # Empty list elements (",,") are allowed by the #rule.
        while scanner.peek() and scanner.peek() in _WS + ",":
            scanner.pos += 1
        if not scanner.peek():
            break
        start = scanner.pos
        token = scanner.match(_TOKEN_RE)
        if not token:
            scanner.skip_junk()
            continue
        scanner.skip_ws()
        if scanner.peek() == "=" and scheme is not None:
            # auth-param: token BWS "=" BWS ( token / quoted-string )
            scanner.pos += 1
            scanner.skip_ws()
            # Unquoted values should be tokens, but realms like https://x/token are sent bare; take up to ',' or space.
            value = scanner.quoted() if scanner.peek() == '"' else scanner.match(_BARE_VALUE_RE)
            scanner.skip_ws()
            if scanner.peek() not in ("", ","):
                scanner.skip_junk()  # e.g. realm=a b: keep what we have, drop the rest of the item
            params.append((token.lower(), value))
            continue
        if scanner.peek() == "=":
            # A parameter before any scheme: nothing to attach it to.
            scanner.pos = start
            scanner.skip_junk()
            continue
        # A new challenge: auth-scheme [ 1*SP ( token68 / #auth-param ) ]
        flush()
        scheme, params, token68 = token.lower(), [], None
        if scanner.pos > start + len(token):  # whitespace followed the scheme
            mark = scanner.pos
            candidate = scanner.match(_TOKEN68_RE)
            scanner.skip_ws()
            if candidate and scanner.peek() in ("", ","):
                token68 = candidate
            else:
                scanner.pos = mark  # it was the first auth-param
    flush()
    return result
