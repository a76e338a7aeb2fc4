"""The plan: classify every image use in every file, resolve each unique reference once, concurrently, map back."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Protocol, Union

from . import dockerfile
from .config import matches_ignore
from .dockerfile import Edit, ImageUse
from .errors import InvalidReferenceError, PinImagesError, RegistryError
from .manifest import Platform, Resolution
from .reference import Reference, parse
from .uses import SKIP

# Finding statuses: stable strings, part of the JSON output.
PINNED = "pinned"  # we added a digest (or would, with --dry-run)
UPDATED = "updated"  # --update replaced a stale digest (or would)
UP_TO_DATE = "up-to-date"  # already pinned; nothing to do
UNPINNED = "unpinned"  # --check: no digest
STALE = "stale"  # --check --update: the tag now points elsewhere
SKIPPED = "skipped"  # ignored by pragma, platform ARG, digest-only, or an ARG with no value outside --check
ERROR = "error"

CHANGES = frozenset({PINNED, UPDATED})
FAILS_CHECK = frozenset({UNPINNED, STALE})


class Resolver(Protocol):
    def resolve(self, ref: Reference, platform: Platform | None = None) -> Resolution: ...

    def resolve_update(self, ref: Reference, current: str, platform: Platform | None = None) -> Resolution: ...


@dataclass(frozen=True)
class Options:
    check: bool = False
    update: bool = False
    platform: Platform | None = None
    jobs: int = 8
    ignore_images: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """What happened to one image use; ``edit`` is set when the file should change."""

    path: str
    line: int
    written: str
    image: str | None
    status: str
    ref: Reference | None = None
    old_digest: str | None = None
    new_digest: str | None = None
    message: str | None = None
    warning: bool = False
    edit: Edit | None = None

    @property
    def shown(self) -> str:
        """The reference as a person reads it: the expanded image text, or what was written."""
        return self.image or self.written


@dataclass(frozen=True)
class Target:
    """One unit of network work; equal targets are resolved once per run."""

    registry: str
    repository: str
    lookup: str
    platform: Platform | None
    current: str | None  # the pinned digest when re-resolving for --update


@dataclass
class _Pending:
    path: str
    use: ImageUse
    ref: Reference
    target: Target
    span_text: str


@dataclass
class Plan:
    """Findings so far plus the uses that still need the network."""

    files: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)

    def by_file(self) -> dict[str, Plan]:
        """One sub-plan per file, in file order."""
        plans = {path: Plan(files=[path]) for path in self.files}
        for f in self.findings:
            plans[f.path].findings.append(f)
        for p in self.pending:
            plans[p.path].pending.append(p)
        return plans


def classify(path: str, spans: Sequence[str], uses: Sequence[ImageUse], options: Options, plan: Plan) -> None:
    """Add one file's uses to ``plan``: decide, without the network, what each one needs.

    ``spans[i]`` is the file's text at ``uses[i]``'s span (see ``span_texts``).
    """
    plan.files.append(path)
    for use, span_text in zip(uses, spans):
        base = {"path": path, "line": use.line, "written": use.written, "image": use.image}
        if use.status == dockerfile.IGNORED:
            plan.findings.append(Finding(**base, status=SKIPPED, message="ignored (# pin-images: ignore)"))
            continue
        if use.status == SKIP:
            # Not a reference to pin (a variable, an empty value, an image the file builds): never a failure.
            plan.findings.append(Finding(**base, status=SKIPPED, message=use.note or "not pinned"))
            continue
        if use.status == dockerfile.PLATFORM_ARG:
            plan.findings.append(Finding(**base, status=SKIPPED, message=use.note or "uses a platform ARG"))
            continue
        if use.status == dockerfile.UNRESOLVED or use.image is None:
            note = use.note or f"{use.written} cannot be expanded"
            if options.check:
                plan.findings.append(Finding(**base, status=UNPINNED, message=note, warning=True))
            else:
                plan.findings.append(Finding(**base, status=SKIPPED, message=note + "; not pinned", warning=True))
            continue
        try:
            ref = parse(use.image)
        except InvalidReferenceError as exc:
            plan.findings.append(Finding(**base, status=ERROR, message=str(exc)))
            continue
        if options.ignore_images and matches_ignore(options.ignore_images, ref.original, ref.normalized):
            plan.findings.append(Finding(**base, status=SKIPPED, ref=ref, message="ignored (ignore-images)"))
            continue
        if ref.digest is not None and ref.tag is None:
            # A digest-only pin names exactly one manifest; there is no tag to follow, so it is never changed.
            plan.findings.append(Finding(**base, status=UP_TO_DATE, ref=ref, old_digest=ref.digest))
            continue
        if ref.digest is not None:
            if not options.update:
                plan.findings.append(Finding(**base, status=UP_TO_DATE, ref=ref, old_digest=ref.digest))
                continue
            if not span_text.endswith("@" + ref.digest):
                plan.findings.append(
                    Finding(
                        **base,
                        status=SKIPPED,
                        ref=ref,
                        old_digest=ref.digest,
                        message="the digest comes from a variable; not updated",
                        warning=True,
                    )
                )
                continue
            target = Target(ref.registry, ref.repository, ref.lookup, options.platform, ref.digest)
        else:
            if options.check:
                plan.findings.append(Finding(**base, status=UNPINNED, ref=ref, message="is not pinned"))
                continue
            target = Target(ref.registry, ref.repository, ref.lookup, options.platform, None)
        plan.pending.append(_Pending(path, use, ref, target, span_text))


def span_texts(text: str, uses: Sequence[ImageUse]) -> list[str]:
    """The text each use's edit span covers, so that classify needs neither the file's bytes nor its text."""
    return [text[use.start : use.end] for use in uses]


Outcome = Union[Resolution, RegistryError]


def resolve_targets(
    targets: Iterable[tuple[Target, Reference]],
    resolver: Resolver,
    jobs: int = 8,
    on_result: Callable[[Target, Outcome], None] | None = None,
) -> dict[Target, Outcome]:
    """Resolve every target once: at most ``jobs`` requests in flight per registry host, hosts in parallel.

    ``on_result`` is called in the calling thread as each target completes, so work on finished targets (writing
    the files that only need those) overlaps the requests still in flight.
    """
    work = dict(targets)
    if not work:
        return {}
    jobs = max(1, jobs)
    hosts = {t.registry for t in work}
    limits = {h: threading.BoundedSemaphore(jobs) for h in hosts}

    def one(target: Target, ref: Reference) -> Outcome:
        with limits[target.registry]:
            try:
                if target.current is not None:
                    return resolver.resolve_update(ref, target.current, target.platform)
                return resolver.resolve(ref, target.platform)
            except RegistryError as exc:
                return exc

    results: dict[Target, Outcome] = {}
    with ThreadPoolExecutor(max_workers=min(64, jobs * len(hosts), len(work))) as pool:
        futures = {pool.submit(one, t, r): t for t, r in work.items()}
        for fut in as_completed(futures):
            target = futures[fut]
            results[target] = fut.result()
            if on_result is not None:
                on_result(target, results[target])
    return results


def replacement(span_text: str, ref: Reference, digest: str) -> str:
    """The new text for a reference span: the span as written with ``@digest`` added or swapped in."""
    if ref.digest is not None and span_text.endswith("@" + ref.digest):
        return span_text[: -len(ref.digest)] + digest
    return f"{span_text}@{digest}"


def finish(plan: Plan, outcomes: Mapping[Target, Outcome], options: Options) -> list[Finding]:
    """Turn resolved targets into findings (with edits) for every pending use."""
    findings = list(plan.findings)
    for p in plan.pending:
        base = {"path": p.path, "line": p.use.line, "written": p.use.written, "image": p.use.image, "ref": p.ref}
        outcome = outcomes[p.target]
        if isinstance(outcome, PinImagesError):
            findings.append(Finding(**base, status=ERROR, old_digest=p.ref.digest, message=str(outcome)))
            continue
        new = outcome.digest
        if p.ref.digest is None:
            edit = Edit(p.use.start, p.use.end, replacement(p.span_text, p.ref, new))
            findings.append(Finding(**base, status=PINNED, new_digest=new, edit=edit))
        elif p.ref.digest == new:
            findings.append(Finding(**base, status=UP_TO_DATE, old_digest=new, new_digest=new))
        elif options.check:
            findings.append(Finding(**base, status=STALE, old_digest=p.ref.digest, new_digest=new))
        else:
            edit = Edit(p.use.start, p.use.end, replacement(p.span_text, p.ref, new))
            findings.append(Finding(**base, status=UPDATED, old_digest=p.ref.digest, new_digest=new, edit=edit))
    order = {path: i for i, path in enumerate(plan.files)}
    findings.sort(key=lambda f: (order.get(f.path, len(order)), f.line))
    return findings
