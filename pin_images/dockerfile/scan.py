"""What is an image reference in a Dockerfile: FROM, COPY/ADD --from and RUN --mount from=, with ARGs expanded."""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import replace

from ..errors import DockerfileError
from ..uses import IGNORED, PLATFORM_ARG, UNRESOLVED, FileScan, ImageUse, ScanOptions, Status
from .expand import Shell, ShellError, Var
from .lexer import KNOWN_INSTRUCTIONS, Instruction, Lexer
from .words import Token

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
        lexer = Lexer(text, path)
        self.instrs = lexer.run()
        self.lines = lexer.lines
        self.escape = lexer.escape
        self.uses: list[ImageUse] = []
        self.token_spans: list[tuple[int, int]] = []
        self.has_syntax = lexer.syntax is not None

    def line_of(self, index: int) -> int:
        return bisect.bisect_right(self.line_starts, index)

    def error(self, cause: str, ins: Instruction) -> DockerfileError:
        return DockerfileError(cause, self.path, ins.start_line)

    def expand(self, word: str, env: Mapping[str, Var], ins: Instruction) -> Shell:
        sh = Shell(self.escape, env)
        try:
            sh.result, _ = sh.process(word)
        except ShellError as exc:
            raise self.error(str(exc), ins) from None
        return sh

    def ignored(self, ins: Instruction, prev_end: int) -> bool:
        above = ins.start_line - 1
        if above < 1 or above <= prev_end:
            return False
        start, end = self.lines[above - 1]
        return _PRAGMA_RE.fullmatch(self.text[start:end].rstrip("\r\n")) is not None

    def declare(self, ins: Instruction, env: dict[str, Var], inherit: Mapping[str, Var] | None) -> None:
        """ARG: build-arg beats default; in a stage, a bare ``ARG X`` inherits the global X."""
        if not ins.arg_tokens:
            raise self.error("ARG requires at least one argument", ins)
        for tok in ins.arg_tokens:
            name, eq, _ = tok.value.partition("=")
            if eq and not name:
                raise self.error("ARG names can not be blank", ins)
            if name in self.build_args:
                env[name] = Var(self.build_args[name])
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
                env[name] = Var(sh.result, origin, frozenset(sh.platform), frozenset(sh.unresolved))
            elif inherit is not None and name in inherit:
                env[name] = inherit[name]
            # Otherwise the ARG has no value (a predefined platform ARG keeps its placeholder).

    def add_use(
        self, ins: Instruction, tok: Token, env: Mapping[str, Var], stages: set[str], ignored: bool,
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
        global_env: dict[str, Var] = {
            name: Var(self.build_args[name]) if name in self.build_args else Var("", platform=frozenset({name}))
            for name in PLATFORM_ARGS
        }
        earlier: set[str] = set()
        stage_envs: dict[str, dict[str, Var]] = {}
        env: dict[str, Var] | None = None
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
                    env[key] = Var(sh.result, None, frozenset(sh.platform), frozenset(sh.unresolved))
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

    def scan_from(self, ins: Instruction, global_env: Mapping[str, Var], earlier: set[str], ignored: bool) -> None:
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

    def scan_mounts(self, ins: Instruction, env: Mapping[str, Var], stages: set[str], ignored: bool) -> None:
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


def scan_file(data: bytes, path: str, options: ScanOptions) -> FileScan:
    """The file-kind entry point: one Dockerfile's image uses and notes."""
    return FileScan("dockerfile", tuple(scan(data, path, options.build_args)))
