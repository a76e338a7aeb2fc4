"""What is an image reference in a Dockerfile: FROM, COPY/ADD --from and RUN --mount from=, with ARGs expanded.

Where a pin goes: after the reference in the instruction (``FROM python:3.12``, ``FROM ${REG}/app:1``); onto an
ARG's default when the whole reference is that ARG and nothing else expands it (``ARG BASE=python:3.12`` for
``FROM $BASE``); inside the braces of a fallback the build uses (``${BASE:-debian:12@sha256:...}``), so that a
--build-arg still replaces the whole reference. Each use's ``line``/``column`` locate that text: for an
ARG-default pin, the default on the ARG's line.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection, Mapping
from typing import NamedTuple

from ..errors import DockerfileError
from ..uses import FileScan, ImageUse, Note, ScanOptions, Status
from .expand import NO_DEPS, Deps, Shell, ShellError, Var
from .lexer import KNOWN_INSTRUCTIONS, Instruction, Lexer
from .words import Token, csv_fields

# ARGs BuildKit defines itself from the build and target platforms; they have no value when we pin.
PLATFORM_ARGS = frozenset(
    {
        "BUILDPLATFORM", "BUILDOS", "BUILDOSVERSION", "BUILDARCH", "BUILDVARIANT",
        "TARGETPLATFORM", "TARGETOS", "TARGETOSVERSION", "TARGETARCH", "TARGETVARIANT",
    }
)  # fmt: skip
# Their values before any ARG: placeholders that make a reference built from them a PLATFORM_ARG use.
_PLACEHOLDERS = {name: Var("", deps=Deps(platform=frozenset({name}))) for name in PLATFORM_ARGS}
_NAME = r"[^\W\d]\w*"
_STAGE_INDEX_RE = re.compile(r"[+-]?[0-9]+")
# Compiled on first use (through re's cache): only references with a `$`, `AS name` and comments need them.
_VAR_REF = rf"\$\{{?({_NAME})"
_DOLLAR_TAIL = rf"\$({_NAME})\Z"
_BRACE = rf"\$\{{({_NAME})(:?-|(?=\}}))"
_STAGE_NAME = r"[a-z][a-z0-9-_.]*"
_PRAGMA = r"#[ \t]*pin-images[ \t]*:[ \t]*(\S*)(.*)"


def _unquoted(tok: Token) -> tuple[int, int]:
    """The span to edit for a raw token: inside its quotes when the whole token is one quoted string."""
    v = tok.value
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"" and v[0] not in v[1:-1] and len(tok.positions) == len(v):
        return tok.positions[1], tok.positions[-2] + 1
    return tok.start, tok.end


class _Tail(NamedTuple):
    """The variable a reference ends with: the whole of it (``$BASE``) or its last part (``python:${TAG:-3.12}``)."""

    name: str
    whole: bool
    op: str  # ":-", "-", or "" for no fallback
    fallback: tuple[int, int] | None  # the fallback's span in the text, when it is plain text


def _tail(tok: Token, escape: str) -> _Tail | None:
    written, offset = tok.value, 0
    if "$" not in written:
        return None  # no variable at all (most references)
    if len(written) >= 2 and written[0] == written[-1] == '"':
        written, offset = written[1:-1], 1
    m = re.search(_DOLLAR_TAIL, written)
    if m is not None and written[m.start() - 1 : m.start()] != escape:
        return _Tail(m.group(1), m.start() == 0, "", None)
    start = _last_brace(written, escape)
    m = re.compile(_BRACE).match(written, start) if start is not None else None
    if m is None:
        return None  # no variable at the end, or one with another modifier (`${X:+y}`, `${X#y}`, ...)
    lo, hi = m.end(), len(written) - 1
    word = written[lo:hi]
    fallback = None
    if m.group(2) and word and not set(word) & set("$'\"\\" + escape) and len(tok.positions) == len(tok.value):
        fallback = (tok.positions[offset + lo], tok.positions[offset + hi - 1] + 1)
    return _Tail(m.group(1), start == 0, m.group(2), fallback)


def _last_brace(written: str, escape: str) -> int | None:
    """Where the ``${`` that the word's final ``}`` closes starts; None when the word does not end so."""
    if not written.endswith("}"):
        return None
    opened: list[int] = []
    i = 0
    while i < len(written):
        if written[i] == escape:
            i += 2
            continue
        if written.startswith("${", i):
            opened.append(i)
            i += 2
            continue
        if written[i] == "}" and opened:
            start = opened.pop()
            if i == len(written) - 1:
                return start
        i += 1
    return None


class _Stage:
    """What one build stage sees: its ARG/ENV values, and the ARGs it declared itself."""

    def __init__(self, env: dict[str, Var] | None = None, declared: set[str] | None = None) -> None:
        self.env = env if env is not None else {}
        self.declared = declared if declared is not None else set()


# Internal records are NamedTuples, not dataclasses: a dataclass costs the hook's import a millisecond or more each.
class _Found(NamedTuple):
    """A reference as an instruction writes it, before the file-wide choice of where its digest goes."""

    keyword: str
    written: str
    image: str | None
    platform: str | None
    status: Status
    note: str
    span: tuple[int, int]  # the reference in the instruction, or the fallback inside its braces
    arg: str | None = None  # the ARG whose default is the whole reference
    arg_span: tuple[int, int] = (0, 0)
    built_from: frozenset[str] = frozenset()  # ARGs a --build-arg could change while the digest stays


class _Scanner:
    def __init__(self, text: str, path: str, options: ScanOptions) -> None:
        self.text = text
        self.path = path
        self.build_args = dict(options.build_args)
        self.pin_syntax = options.pin_syntax
        self.lexer = Lexer(text, path)
        # Where each line starts (after every newline, the last one included): the lexer's line ends.
        self.line_starts = [0, *(end for _, end in self.lexer.lines)]
        if not text.endswith("\n") and len(self.line_starts) > 1:
            self.line_starts.pop()
        self.instrs = self.lexer.run()
        self.escape = self.lexer.escape
        self.found: list[_Found] = []
        self.notes: list[Note] = []
        self.global_env = dict(_PLACEHOLDERS)
        for name in PLATFORM_ARGS & self.build_args.keys():
            self.global_env[name] = Var(self.build_args[name], deps=Deps(args=frozenset({name})), from_build_arg=True)
        self.global_declared: set[str] = set()
        self.stage_declared: dict[str, int] = {}  # ARG name -> first line that declares it inside a stage
        self.stages: set[str] = set()  # every stage name: COPY --from sees later stages too

    def position(self, index: int) -> tuple[int, int]:
        """The 1-based line and column (in characters, a BOM not counted) of a text index."""
        line = bisect.bisect_right(self.line_starts, index)
        column = index - self.line_starts[line - 1] + 1
        if line == 1 and self.text.startswith("\ufeff") and index > 0:
            column -= 1
        return line, column

    def error(self, cause: str, ins: Instruction) -> DockerfileError:
        return DockerfileError(cause, self.path, ins.start_line)

    def expand(self, word: str, env: Mapping[str, Var]) -> tuple[str, Deps]:
        """The word expanded in ``env`` and what it depends on; raises ShellError where BuildKit would fail."""
        if "$" not in word and "'" not in word and '"' not in word and self.escape not in word:
            return word, NO_DEPS  # nothing to expand (most references): no Shell to build
        sh = Shell(self.escape, env)
        result, _ = sh.process(word)
        return result, sh.collected()

    def run(self) -> FileScan:
        if not self.instrs:
            # BuildKit refuses such a file; here it is only worth a mention (with -v): an empty file pins nothing.
            self.notes.append(Note(1, "file with no instructions", warning=False))
        ignored = self.pragmas()
        names: dict[int, str | None] = {}  # each FROM's stage name, by instruction index (all checked first)
        for i, ins in enumerate(self.instrs):
            if ins.keyword == "FROM":
                name = names[i] = self.from_stage_name(ins)
                if name:
                    self.stages.add(name)
        earlier: dict[str, _Stage] = {}
        stage: _Stage | None = None
        for i, ins in enumerate(self.instrs):
            kw = ins.keyword
            if kw not in KNOWN_INSTRUCTIONS:
                if self.lexer.syntax is not None:
                    continue  # a `# syntax=` frontend may define its own instructions
                raise self.error(f"unknown instruction: {kw}", ins)
            skip = ins.start_line - 1 in ignored
            if kw == "FROM":
                stage = self.enter_stage(ins, names[i], earlier, skip)
            elif kw == "ARG":
                self.declare(ins, stage)
            elif stage is None:
                raise self.error("no build stage in current context", ins)
            elif kw == "ENV":
                self.set_env(ins, stage)
            elif kw in ("COPY", "ADD"):
                tok = self.flag_value(ins, "from")
                if tok is not None:
                    self.add_use(ins, tok, stage, self.stages, skip)
            elif kw == "RUN":
                self.scan_mounts(ins, stage, skip)
        uses = self.place_digests()
        if self.pin_syntax and self.lexer.syntax is not None:
            uses.insert(0, self.syntax_use(*self.lexer.syntax))
        return FileScan("dockerfile", tuple(uses), tuple(sorted(self.notes, key=lambda n: n.line)))

    def pragmas(self) -> set[int]:
        """The lines of ``# pin-images: ignore`` comments (a reason may follow); a note for any other word."""
        found: set[int] = set()
        pragma = re.compile(_PRAGMA, re.IGNORECASE)
        starts = {ins.start_line for ins in self.instrs}
        for line, lo, hi in self.lexer.comments:
            m = pragma.fullmatch(self.text, lo, hi)
            if m is None:
                continue
            word = m.group(1)
            if word.lower() != "ignore":
                shown = f"'{word}'" if word else "nothing"
                self.notes.append(Note(line, f"unknown '# pin-images:' directive {shown}: the only one is 'ignore'"))
            elif line + 1 not in starts:
                self.notes.append(Note(line, "'# pin-images: ignore' has no effect: no instruction directly below"))
            else:
                found.add(line)
        return found

    def syntax_use(self, start: int, end: int) -> ImageUse:
        """The ``# syntax=`` frontend image as a use of its own."""
        value = self.text[start:end]
        line, column = self.position(start)
        return ImageUse(line, "syntax", value, value, None, start, end, column=column)

    def enter_stage(self, ins: Instruction, name: str | None, earlier: dict[str, _Stage], skip: bool) -> _Stage:
        """FROM: the image it names, then a new stage (``name``, if any) that starts from its base stage's ARGs and
        ENVs."""
        self.scan_from(ins, earlier.keys(), skip)
        try:
            base = self.expand(ins.args[0], self.global_env)[0].lower()
        except ShellError:
            base = ""
        parent = earlier.get(base)
        stage = _Stage(dict(parent.env), set(parent.declared)) if parent is not None else _Stage()
        if name:
            earlier[name] = stage
        return stage

    def declare(self, ins: Instruction, stage: _Stage | None) -> None:
        """ARG: a --build-arg beats the default; in a stage, a bare ``ARG X`` inherits the global X."""
        if not ins.arg_tokens:
            raise self.error("ARG requires at least one argument", ins)
        env = self.global_env if stage is None else stage.env
        for tok in ins.arg_tokens:
            name, eq, _ = tok.value.partition("=")
            if eq and not name:
                raise self.error("ARG names can not be blank", ins)
            if stage is None:
                self.global_declared.add(name)
            else:
                stage.declared.add(name)
                self.stage_declared.setdefault(name, ins.start_line)
            given = self.build_args.get(name)
            default = self.default(ins, tok, name, env, given is None) if eq else None
            if default is None and stage is not None and not eq:
                default = self.global_env.get(name)
            if given is not None and (default is None or (default.value != given or default.deps.broken)):
                if default is None or default.from_build_arg:
                    default = default or Var(given, None, Deps(args=frozenset({name})), from_build_arg=True)
                else:  # the build replaces a default the file names
                    deps = Deps(args=frozenset({name}), overridden=frozenset({name}))
                    default = Var(given, None, deps, from_build_arg=True)
            if default is not None:
                env[name] = default
            # Otherwise the ARG has no value (a predefined platform ARG keeps its placeholder).

    def default(self, ins: Instruction, tok: Token, name: str, env: Mapping[str, Var], report: bool) -> Var:
        """The value of ``ARG name=default``, remembering where the default's text is.

        ``report`` is False when a --build-arg replaces the default: BuildKit does not expand it then.
        """
        default = tok.part(len(name) + 1)
        if default is None:
            at = tok.positions[len(name)] + 1
            origin = (at, at, name)
        else:
            start, end = _unquoted(default)
            origin = (start, end, name)
        try:
            value, deps = self.expand(default.value if default else "", env)
        except ShellError as exc:
            if not report:
                return Var("", origin, Deps(broken=frozenset({str(exc)})))
            return Var("", origin, self.broken(ins, f"ARG {name}", exc))
        return Var(value, origin, deps | Deps(args=frozenset({name})))

    def broken(self, ins: Instruction, what: str, exc: ShellError) -> Deps:
        """A declaration BuildKit cannot expand: a warning for the file, and a reason for what depends on it."""
        self.notes.append(Note(ins.start_line, f"{what} cannot be expanded: {exc}"))
        return Deps(broken=frozenset({f"{what} on line {ins.start_line} cannot be expanded ({exc})"}))

    def set_env(self, ins: Instruction, stage: _Stage) -> None:
        """ENV: every value is expanded with the variables as they were before the instruction."""
        toks = ins.arg_tokens
        values: list[tuple[str, Var]] = []
        for k in range(0, len(toks) - 1, 2):
            key = toks[k].value
            try:
                value, deps = self.expand(toks[k + 1].value, stage.env)
            except ShellError as exc:
                values.append((key, Var("", None, self.broken(ins, f"ENV {key}", exc))))
            else:
                values.append((key, Var(value, None, deps)))
        stage.env.update(values)

    def scan_from(self, ins: Instruction, stages: Collection[str], skip: bool) -> None:
        """The image a FROM names, and its --platform when that is known before the build."""
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
        platform, problem = None, ""
        if platform_tok is not None:
            try:
                value, deps = self.expand(platform_tok.value, self.global_env)
            except ShellError as exc:
                problem = f"--platform cannot be expanded: {exc}"
            else:
                literal = not (deps.platform or deps.unresolved or deps.broken or deps.args & PLATFORM_ARGS)
                platform = value if literal and value else None
        self.add_use(ins, ins.arg_tokens[0], None, stages, skip, platform, problem)

    def from_stage_name(self, ins: Instruction) -> str | None:
        args = ins.args
        if len(args) == 3 and args[1].lower() == "as":
            name = args[2].lower()
            if not re.compile(_STAGE_NAME).fullmatch(name):
                raise self.error(
                    f"invalid name for build stage: {args[2]!r}, name can't start with a number or contain symbols", ins
                )
            return name
        if len(args) != 1:
            raise self.error("FROM requires either one or three arguments", ins)
        return None

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

    def scan_mounts(self, ins: Instruction, stage: _Stage, skip: bool) -> None:
        """RUN --mount=...,from=<image>: every mount that reads from an image."""
        for tok in ins.flag_tokens:
            if tok.value == "--":
                break
            name, eq, _ = tok.value[2:].partition("=")
            if name != "mount" or not eq:
                continue
            value = tok.part(len("--mount="))
            fields = csv_fields(value) if value is not None else None
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
            self.add_use(ins, source, stage, self.stages, skip)

    def add_use(
        self, ins: Instruction, tok: Token, stage: _Stage | None, stages: Collection[str], skip: bool,
        platform: str | None = None, problem: str = "",
    ) -> None:  # fmt: skip
        """Record the reference ``tok`` (in ``stage``, or before any for FROM) unless it names a stage."""
        env = self.global_env if stage is None else stage.env
        written = tok.value
        span = _unquoted(tok) if ins.keyword == "FROM" else (tok.start, tok.end)
        image: str | None = None
        deps = NO_DEPS
        try:
            image, deps = self.expand(written, env)
        except ShellError as exc:
            status, note = Status.INVALID, str(exc)
        else:
            status, note = (Status.INVALID, problem) if problem else self.judge(deps, stage)
        if status in (Status.OK, Status.OVERRIDDEN) and image is not None:
            if image.lower() in stages or image.lower() == "scratch":
                return
            if ins.keyword != "FROM" and _STAGE_INDEX_RE.fullmatch(image):
                return
            if image == "" and ins.keyword == "FROM":
                status, note = Status.INVALID, f"base name ({written}) should not be blank"
        found = _Found(ins.keyword, written, image, platform, status, note, span, built_from=deps.args)
        found = self.place(found, tok, env)
        if found.status is not Status.OK:
            found = found._replace(image=None)
        if skip:
            found = found._replace(status=Status.IGNORED, note="marked '# pin-images: ignore'")
        self.found.append(found)

    def place(self, found: _Found, tok: Token, env: Mapping[str, Var]) -> _Found:
        """Where the digest of an OK reference goes when it ends with a variable (see the module docstring)."""
        tail = _tail(tok, self.escape)
        if tail is None:
            return found
        var = env.get(tail.name)
        uses_fallback = bool(tail.op) and (var is None or (tail.op == ":-" and var.value == ""))
        if found.status is Status.OK and uses_fallback:
            if tail.fallback is None:
                note = f"its fallback for ${tail.name} is not plain text, so the digest cannot go inside the braces"
                return found._replace(status=Status.UNRESOLVED, note=note)
            return found._replace(span=tail.fallback, built_from=found.built_from - {tail.name})
        if found.status is Status.OK and tail.op and var is not None and var.from_build_arg:
            note = (
                f"--build-arg {tail.name} replaces the fallback the file names in "
                f"${{{tail.name}{tail.op}...}}, and a digest must belong to the image the file names"
            )
            return found._replace(status=Status.OVERRIDDEN, note=note)
        if tail.whole and not uses_fallback and var is not None and var.origin is not None and not var.from_build_arg:
            return found._replace(arg=tail.name, arg_span=var.origin[:2])
        return found

    def judge(self, deps: Deps, stage: _Stage | None) -> tuple[Status, str]:
        """The status of a reference from what its expansion depended on, and the note that says why."""
        if deps.broken:
            return Status.INVALID, "depends on " + "; ".join(sorted(deps.broken))
        platform_args = deps.platform | (deps.unresolved & PLATFORM_ARGS)
        if platform_args:
            return (
                Status.PLATFORM_ARG,
                f"depends on predefined platform ARG {', '.join(sorted(platform_args))}, unknown when pinning",
            )
        if deps.unresolved:
            why = [self.why_unset(name, stage) for name in sorted(deps.unresolved)]
            return Status.UNRESOLVED, "depends on " + "; ".join(why)
        if deps.overridden:
            names = sorted(deps.overridden)
            return Status.OVERRIDDEN, (
                f"--build-arg {names[0]} overrides the default the file gives ARG {names[0]}, "
                "and a digest must belong to the image the file names"
            )
        return Status.OK, ""

    def why_unset(self, name: str, stage: _Stage | None) -> str:
        """Why ``name`` has no value where a reference uses it, worded for the case it is."""
        if name in (self.global_declared if stage is None else stage.declared):
            return f"ARG {name}, which has no default value and no --build-arg"
        if stage is None:
            if name in self.stage_declared:
                return (
                    f"ARG {name}, which is declared only inside a stage (line {self.stage_declared[name]}); "
                    "FROM sees only ARGs declared before the first FROM"
                )
            return f"${name}, which no ARG before the first FROM declares"
        if name in self.global_env:
            return f"the global ARG {name}, which this stage must redeclare (`ARG {name}`) to see its default"
        if name in self.global_declared:
            return f"the global ARG {name}, which has no default value and is not redeclared in this stage"
        return f"${name}, which no ARG or ENV of this stage declares"

    def var_refs(self) -> dict[str, int]:
        """How many times each variable is referenced in the file's instructions."""
        refs: dict[str, int] = {}
        var_ref = re.compile(_VAR_REF)
        for ins in self.instrs:
            for one in (ins, ins.sub):
                for tok in (*one.flag_tokens, *one.arg_tokens) if one is not None else ():
                    if "$" in tok.value:
                        for m in var_ref.finditer(tok.value):
                            refs[m.group(1)] = refs.get(m.group(1), 0) + 1
        return refs

    def place_digests(self) -> list[ImageUse]:
        """The uses, with an ARG default edited only when every reference to that ARG is a whole image reference.

        Otherwise (``FROM $BASE-slim``, ``ARG FULL=$BASE``, ``LABEL base=$BASE``) a digest on the default would
        leak into the other uses, so the digest goes after the reference in the instruction instead.
        """
        whole: dict[str, int] = {}
        for f in self.found:
            if f.arg is not None:
                whole[f.arg] = whole.get(f.arg, 0) + 1
        refs = self.var_refs() if whole else {}  # most files have no reference that is a whole ARG
        uses = []
        for f in self.found:
            arg = f.arg if f.arg is not None and refs.get(f.arg, 0) <= whole[f.arg] else None
            start, end = f.arg_span if arg is not None else f.span
            note, built_from = f.note, f.built_from - {arg}
            if f.status is Status.OK and built_from:
                names = ", ".join(sorted(built_from))
                note = f"built from ARG {names}: a --build-arg that changes it at build time still pulls this digest"
            line, column = self.position(start)
            via = f"ARG {arg}, used by {f.keyword} on line {self.position(f.span[0])[0]}" if arg is not None else ""
            uses.append(
                ImageUse(line, f.keyword, f.written, f.image, f.platform, start, end, f.status, note, column, via=via)
            )
        return uses


def scan(data: bytes, path: str = "", build_args: Mapping[str, str] | None = None) -> list[ImageUse]:
    """Every external image reference in a Dockerfile (FROM, COPY/ADD --from, RUN --mount from=), in file order.

    The entry point from before file kinds: notes are dropped, and a reference that cannot be expanded (an
    INVALID use of ``scan_file``) is a DockerfileError for the whole file, naming its line.
    """
    uses = scan_file(data, path, ScanOptions(build_args=dict(build_args or {}))).uses
    for use in uses:
        if use.status is Status.INVALID:
            raise DockerfileError(use.note, path, use.line)
    return list(uses)


def scan_file(data: bytes, path: str, options: ScanOptions) -> FileScan:
    """The file-kind entry point: one Dockerfile's image uses (INVALID ones included) and file-level notes."""
    return scan_uses(data, path, options)


def scan_uses(data: bytes, path: str, options: ScanOptions) -> FileScan:
    """Every use and note, a reference that cannot be expanded included as a ``Status.INVALID`` use."""
    if b"\x00" in data:
        raise DockerfileError("binary file (contains NUL bytes)", path)
    text = data.decode("utf-8", "surrogateescape")
    return _Scanner(text, path, options).run()
