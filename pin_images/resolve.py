"""The plan: classify every image use in every file, resolve each unique reference once, concurrently, and decide
every finding's status (including the uses a failed file holds back)."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol, Union

from .config import matches_ignore
from .errors import InvalidReferenceError, RegistryError
from .reference import Reference, parse
from .uses import Edit, FileScan, ImageUse, Status

DEFAULT_JOBS = 8
# How a new pin is written: `python:3.12@sha256:..`, `docker.io/library/python:3.12@sha256:..`, or
# `docker.io/library/python@sha256:..`.
PIN_STYLES = ("tag", "full", "digest")
# Threads beyond this only queue on the per-registry limits; it bounds a run over many registries.
MAX_THREADS = 64


class FindingStatus(str, enum.Enum):
    """What happened to one image use; the values are stable strings, part of the JSON output."""

    PINNED = "pinned"  # we added a digest (or would, with --dry-run)
    UPDATED = "updated"  # --update replaced a stale digest (or would)
    UP_TO_DATE = "up-to-date"  # already pinned; nothing to do
    UNPINNED = "unpinned"  # --check: no digest (or a digest that could not be written)
    STALE = "stale"  # --check --update: the tag now points elsewhere
    SKIPPED = "skipped"  # ignored by pragma, platform ARG, digest-only, or an ARG with no value outside --check
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


PINNED = FindingStatus.PINNED
UPDATED = FindingStatus.UPDATED
UP_TO_DATE = FindingStatus.UP_TO_DATE
UNPINNED = FindingStatus.UNPINNED
STALE = FindingStatus.STALE
SKIPPED = FindingStatus.SKIPPED
ERROR = FindingStatus.ERROR

CHANGES = frozenset({PINNED, UPDATED})
# What a finding that carries a file's note (not an image use) has for its reference text.
FILE_NOTE = "(file)"
FAILS_CHECK = frozenset({UNPINNED, STALE})


class Resolver(Protocol):
    """What the run asks of a registry client; every method may be called from several threads at once."""

    def resolve(self, ref: Reference, platform: Platform | None = None) -> Resolution: ...

    def resolve_update(self, ref: Reference, current: str, platform: Platform | None = None) -> Resolution: ...

    def prefetch(self, refs: Sequence[Reference]) -> None:
        """Learn each registry's challenge and fetch tokens for many repositories at once; only an optimisation."""

    def close(self) -> None:
        """Release connections; the run calls it once, when it is done with the resolver it built."""


class Options(NamedTuple):
    check: bool = False
    update: bool = False
    platform: Platform | None = None
    jobs: int = DEFAULT_JOBS
    ignore_images: tuple[str, ...] = ()
    pin_style: str = "tag"


class Finding(NamedTuple):
    """What happened to one image use; ``edit`` is set when the file should change."""

    path: str
    line: int
    written: str
    image: str | None
    status: FindingStatus
    ref: Reference | None = None
    old_digest: str | None = None
    new_digest: str | None = None
    message: str | None = None
    warning: bool = False
    edit: Edit | None = None
    column: int = 0
    kind: str = "dockerfile"
    pinned_as: str | None = None  # the reference as now written, when a pin style rewrote it
    via: str = ""  # where the reference is used when its text lies elsewhere (an ARG default)

    @property
    def shown(self) -> str:
        """The reference as a person reads it: the expanded image text, or what was written."""
        return self.image or self.written


def _finding(
    path: str,
    use: ImageUse,
    status: FindingStatus,
    *,
    ref: Reference | None = None,
    old_digest: str | None = None,
    new_digest: str | None = None,
    message: str | None = None,
    warning: bool = False,
    edit: Edit | None = None,
    pinned_as: str | None = None,
) -> Finding:
    """A finding for ``use`` in ``path``, located where the use's reference text is."""
    return Finding(path, use.line, use.written, use.image, status, ref, old_digest, new_digest, message, warning,
                   edit, use.column, use.kind, pinned_as, use.via)


class Target(NamedTuple):
    """One unit of network work; equal targets are resolved once per run."""

    registry: str
    repository: str
    lookup: str
    platform: Platform | None
    current: str | None  # the pinned digest when re-resolving for --update


class Pending(NamedTuple):
    """A use that needs the network: its reference, what to resolve, and the text its edit span covers now."""

    path: str
    use: ImageUse
    ref: Reference
    target: Target
    span_text: str


class Plan:
    """Findings decided without the network plus the uses that still need it, file by file in order."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.findings: dict[str, list[Finding]] = {}
        self.pending: dict[str, list[Pending]] = {}

    def targets(self) -> dict[Target, Reference]:
        """Every unique target with the first reference that asked for it."""
        work: dict[Target, Reference] = {}
        for pending in self.pending.values():
            for p in pending:
                work.setdefault(p.target, p.ref)
        return work


if TYPE_CHECKING:
    # Only in annotations: --check never loads the manifest module.
    from .manifest import Platform, Resolution

Answer = Union["Resolution", RegistryError]


def classify(path: str, text: str, scan: FileScan, options: Options, plan: Plan) -> None:
    """Add one file's scan to ``plan``: decide, without the network, what each use needs.

    ``text`` is the file decoded with ``surrogateescape``, which the uses' spans index. The scan's file notes (a
    template left alone, a broken line no reference depends on) become skipped findings on their line.
    """
    plan.files.append(path)
    findings = plan.findings.setdefault(path, [])
    pending = plan.pending.setdefault(path, [])
    for note in scan.notes:
        findings.append(Finding(path, note.line, FILE_NOTE, None, SKIPPED, message=note.message,
                                warning=note.warning, kind=scan.kind))
    for use in scan.uses:
        decided = _decide(path, use, options)
        if isinstance(decided, Finding):
            findings.append(decided)
            continue
        ref = decided
        span_text = text[use.start : use.end]
        if ref.digest is not None and not span_text.endswith("@" + ref.digest):
            findings.append(_finding(path, use, SKIPPED, ref=ref, old_digest=ref.digest, warning=True,
                                     message="the digest comes from a variable; not updated"))
            continue
        try:
            platform = _platform_for(use, options)
        except ValueError as exc:
            findings.append(_finding(path, use, ERROR, ref=ref, message=f"--platform={use.platform}: {exc}"))
            continue
        target = Target(ref.registry, ref.repository, ref.lookup, platform, ref.digest)
        pending.append(Pending(path, use, ref, target, span_text))


def _platform_for(use: ImageUse, options: Options) -> Platform | None:
    """The platform whose manifest to pin: none without --platform (the index fits every platform); with it, a
    literal ``--platform=`` flag in the file wins for its reference. A ``# syntax=`` frontend runs on whatever
    machine builds, so it always keeps the index."""
    if options.platform is None or use.instruction == "syntax":
        return None
    if use.platform and "$" not in use.platform:
        from .manifest import parse_platform  # loaded already: the option was parsed with it

        return parse_platform(use.platform)
    return options.platform


def _decide(path: str, use: ImageUse, options: Options) -> Finding | Reference:
    """The finding for a use that needs no network, or the reference to resolve."""
    if use.status == Status.IGNORED:
        return _finding(path, use, SKIPPED, message="ignored (# pin-images: ignore)")
    if use.status == Status.SKIP:
        # Not a reference to pin (a variable, an empty value, an image the file builds): never a failure.
        return _finding(path, use, SKIPPED, message=use.note or "not pinned")
    if use.status == Status.PLATFORM_ARG:
        return _finding(path, use, SKIPPED, message=use.note or "uses a platform ARG")
    if use.status == Status.INVALID:
        # This reference's own expansion fails (BuildKit would refuse the build): an error for it alone.
        return _finding(path, use, ERROR, message=use.note or f"{use.written} cannot be expanded")
    if use.status == Status.OVERRIDDEN:
        # The build would use another image than the file names; a digest for either would be wrong. Not a
        # --check failure: the file's own reference is not what is built, so its pin state cannot be judged.
        note = use.note or "a --build-arg replaces the image the file names"
        return _finding(path, use, SKIPPED, message=note + "; not pinned", warning=True)
    if use.status == Status.UNRESOLVED or use.image is None:
        note = use.note or f"{use.written} cannot be expanded"
        if options.check:
            return _finding(path, use, UNPINNED, message=note, warning=True)
        return _finding(path, use, SKIPPED, message=note + "; not pinned", warning=True)
    try:
        ref = parse(use.image)
    except InvalidReferenceError as exc:
        return _finding(path, use, ERROR, message=str(exc))
    if options.ignore_images and matches_ignore(options.ignore_images, ref.original, ref.normalized):
        return _finding(path, use, SKIPPED, ref=ref, message="ignored (ignore-images)")
    if ref.digest is not None and (ref.tag is None or not options.update):
        # A digest-only pin names exactly one manifest; there is no tag to follow, so it is never changed.
        return _finding(path, use, UP_TO_DATE, ref=ref, old_digest=ref.digest)
    if ref.digest is None and options.check:
        return _finding(path, use, UNPINNED, ref=ref, message="is not pinned")
    return ref


def resolve_targets(work: Mapping[Target, Reference], resolver: Resolver, jobs: int = DEFAULT_JOBS,
                    ) -> Iterator[tuple[Target, Answer]]:
    """Resolve every target once, yielding each as it completes: at most ``jobs`` requests per registry host.

    Leaving the loop early (an exception, Ctrl-C) stops every lookup not yet started. The workers are daemon
    threads, so a lookup still waiting on the network never holds up the exit.
    """
    if not work:
        return
    # Imported here: --check and runs with nothing to resolve never start a thread.
    import queue
    import threading

    jobs = max(1, jobs)
    limits = {host: threading.BoundedSemaphore(jobs) for host in {t.registry for t in work}}
    todo: queue.SimpleQueue[tuple[Target, Reference]] = queue.SimpleQueue()
    done: queue.SimpleQueue[tuple[Target, Answer | BaseException]] = queue.SimpleQueue()
    stop = threading.Event()
    for item in work.items():
        todo.put(item)

    def one(target: Target, ref: Reference) -> Answer:
        with limits[target.registry]:
            try:
                if target.current is not None:
                    return resolver.resolve_update(ref, target.current, target.platform)
                return resolver.resolve(ref, target.platform)
            except RegistryError as exc:
                return exc

    def worker() -> None:
        while not stop.is_set():
            try:
                target, ref = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((target, one(target, ref)))
            except BaseException as exc:  # a bug: hand it to the caller's thread, where it is raised
                done.put((target, exc))

    for i in range(min(MAX_THREADS, jobs * len(limits), len(work))):
        threading.Thread(target=worker, name=f"pin-images-resolve-{i}", daemon=True).start()
    try:
        for _ in range(len(work)):
            target, answer = done.get()
            if isinstance(answer, BaseException) and not isinstance(answer, RegistryError):
                raise answer
            yield target, answer
    finally:
        stop.set()


class FileResult(NamedTuple):
    """One file's findings, in line order, once every reference it needs has an answer."""

    path: str
    findings: list[Finding]
    resolved: int = 0  # targets answered so far in the run, for progress

    @property
    def edits(self) -> list[Edit]:
        """The edits to write, or none when any reference of the file failed (the file is left alone)."""
        if any(f.status == ERROR for f in self.findings):
            return []
        return [f.edit for f in self.findings if f.edit is not None]


def resolve_plan(plan: Plan, resolver: Resolver | None, options: Options) -> Iterator[FileResult]:
    """Yield each file's findings as soon as all its references have resolved, so writing overlaps the network.

    Files that need no network come first; the rest in the order their last reference completes. ``resolver`` may
    be None only when no reference needs the network.
    """
    waiting: dict[str, set[Target]] = {}
    files_of: dict[Target, list[str]] = {}
    for path in plan.files:
        targets = {p.target for p in plan.pending[path]}
        if not targets:
            yield FileResult(path, finish(plan, path, {}, options))
            continue
        waiting[path] = targets
        for t in targets:
            files_of.setdefault(t, []).append(path)
    if not waiting:
        return
    if resolver is None:
        raise ValueError("references need the network but there is no resolver")
    answers: dict[Target, Answer] = {}
    for target, answer in resolve_targets(plan.targets(), resolver, options.jobs):
        answers[target] = answer
        for path in files_of[target]:
            waiting[path].discard(target)
            if not waiting[path]:
                yield FileResult(path, finish(plan, path, answers, options), len(answers))


def replacement(span_text: str, ref: Reference, digest: str) -> str:
    """The new text for a reference span: the span as written with ``@digest`` added or swapped in."""
    if ref.digest is not None and span_text.endswith("@" + ref.digest):
        return span_text[: -len(ref.digest)] + digest
    return f"{span_text}@{digest}"


def _styled(p: Pending, digest: str, style: str) -> tuple[str, str | None, bool, bool]:
    """A new pin's text in ``style``, the note to give, whether it is a warning, and whether the span was rewritten.

    ``full`` and ``digest`` rewrite the whole span, which is safe only when the span is the reference itself
    (a literal, an ARG default, a fallback); a reference composed from variables keeps the tag style.
    """
    ref = p.ref
    if style != "tag":
        try:
            whole = parse(p.span_text)
        except InvalidReferenceError:
            whole = None
        if whole is None or (whole.name, whole.tag) != (ref.name, ref.tag):
            note = f"composed from variables, so pinned in tag style, not {style}"
            return replacement(p.span_text, ref, digest), note, False, False
        if style == "full":
            return f"{ref.name}:{ref.tag_or_default}@{digest}", None, False, True
        return f"{ref.name}@{digest}", "pinned by digest alone: with no tag, --update cannot move it", False, True
    if ref.tag is None:
        hint = f"no tag: pinned latest; write `{ref.original}:latest` to keep it updatable"
        return replacement(p.span_text, ref, digest), hint, True, False
    return replacement(p.span_text, ref, digest), None, False, False


def finish(plan: Plan, path: str, answers: Mapping[Target, Answer], options: Options) -> list[Finding]:
    """One file's findings (with edits) in line order, its pending uses decided from ``answers``.

    A file with a failed reference is left alone, so its other pins are reported as not written.
    """
    findings = list(plan.findings[path])
    for p in plan.pending[path]:
        findings.append(_answered(p, answers[p.target], options))
    findings.sort(key=lambda f: f.line)
    failed = next((f for f in findings if f.status == ERROR), None)
    if failed is not None:
        reason = f"not written: the file is left alone because {failed.shown} (line {failed.line}) failed"
        findings = not_written(findings, reason)
    return findings


def _answered(p: Pending, answer: Answer, options: Options) -> Finding:
    """The finding for one pending use given its target's answer."""
    if isinstance(answer, RegistryError):
        return _finding(p.path, p.use, ERROR, ref=p.ref, old_digest=p.ref.digest, message=str(answer))
    new = answer.digest
    if p.ref.digest is None:
        text, note, warning, rewritten = _styled(p, new, options.pin_style)
        message = "; ".join(n for n in (p.use.note, note) if n) or None
        return _finding(p.path, p.use, PINNED, ref=p.ref, new_digest=new, edit=Edit(p.use.start, p.use.end, text),
                        message=message, warning=warning, pinned_as=text if rewritten else None)
    if p.ref.digest == new:
        return _finding(p.path, p.use, UP_TO_DATE, ref=p.ref, old_digest=new, new_digest=new)
    if options.check:
        return _finding(p.path, p.use, STALE, ref=p.ref, old_digest=p.ref.digest, new_digest=new)
    edit = Edit(p.use.start, p.use.end, replacement(p.span_text, p.ref, new))
    return _finding(p.path, p.use, UPDATED, ref=p.ref, old_digest=p.ref.digest, new_digest=new, edit=edit,
                    message=p.use.note or None)


def not_written(findings: Sequence[Finding], reason: str) -> list[Finding]:
    """A file's findings when it was not written: its pins are back to unpinned (with no new digest to claim) and
    its updates to stale (the tag did move)."""
    return [
        (f._replace(status=UNPINNED, new_digest=None, edit=None, message=reason, warning=False)
         if f.status == PINNED else f._replace(status=STALE, edit=None, message=reason, warning=False))
        if f.status in CHANGES else f
        for f in findings
    ]
