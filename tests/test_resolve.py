"""The plan's rules without files or network: classify, resolve each target once, finish, and held-back writes."""

from __future__ import annotations

import threading
import time

import pytest

from pin_images.errors import NotFoundError
from pin_images.manifest import Platform
from pin_images.reference import parse
from pin_images.resolve import (
    ERROR,
    PINNED,
    SKIPPED,
    STALE,
    UNPINNED,
    UP_TO_DATE,
    Options,
    Plan,
    Target,
    classify,
    finish,
    not_written,
    resolve_plan,
    resolve_targets,
)
from pin_images.uses import FileScan, ImageUse, Note, Status, apply

from .conftest import FakeResolver, fake_digest

OLD = "sha256:" + "0" * 64
PY = fake_digest("docker.io/library/python:3.12")


def use_in(text: str, written: str, *, status: Status = Status.OK, image: str | None = "", note: str = "",
           line: int = 1) -> ImageUse:
    """An ImageUse for the first occurrence of ``written`` in ``text``, as a scanner would report it."""
    start = text.index(written)
    return ImageUse(line=line, instruction="FROM", written=written, image=written if image == "" else image,
                    platform=None, start=start, end=start + len(written), status=status, note=note,
                    column=start + 1)


def plan_for(text: str, *uses: ImageUse, options: Options | None = None, path: str = "Dockerfile") -> Plan:
    plan = Plan()
    classify(path, text, FileScan("dockerfile", uses), options or Options(), plan)
    return plan


def only(plan: Plan, path: str = "Dockerfile"):
    [finding] = plan.findings[path]
    return finding


@pytest.mark.parametrize(
    ("status", "options", "expected", "message"),
    [
        (Status.IGNORED, Options(), SKIPPED, "ignored (# pin-images: ignore)"),
        (Status.PLATFORM_ARG, Options(), SKIPPED, "uses a platform ARG"),
        # An unexpandable reference fails --check (it is not pinned) but is only a warning when pinning.
        (Status.UNRESOLVED, Options(check=True), UNPINNED, "$X cannot be expanded"),
        (Status.UNRESOLVED, Options(), SKIPPED, "$X cannot be expanded; not pinned"),
    ],
)
def test_uses_the_scanner_decided_need_no_network(status, options, expected, message):
    text = "FROM $X\n"
    plan = plan_for(text, use_in(text, "$X", status=status, image=None), options=options)
    assert plan.targets() == {}
    f = only(plan)
    assert (f.status, f.message) == (expected, message)


def test_classify_without_network():
    text = "FROM python:3.12\nFROM Python:3\nFROM alpine@" + OLD + "\nFROM a:1@" + OLD + "\n"
    uses = [use_in(text, "python:3.12", line=1), use_in(text, "Python:3", line=2),
            use_in(text, "alpine@" + OLD, line=3), use_in(text, "a:1@" + OLD, line=4)]
    plan = plan_for(text, *uses, options=Options(check=True))
    assert [(f.line, f.status) for f in plan.findings["Dockerfile"]] == [
        (1, UNPINNED), (2, ERROR), (3, UP_TO_DATE), (4, UP_TO_DATE)
    ]
    assert plan.targets() == {}


def test_ignore_images_matches_the_written_or_normalised_name():
    text = "FROM registry.internal/app:1\n"
    options = Options(ignore_images=("registry.internal/*",))
    plan = plan_for(text, use_in(text, "registry.internal/app:1"), options=options)
    assert (only(plan).status, only(plan).message) == (SKIPPED, "ignored (ignore-images)")


def test_update_only_follows_a_digest_written_in_the_span():
    # The digest came from a variable: the span does not end with it, so there is nothing to rewrite.
    text = "FROM a:1@${D}\n"
    plan = plan_for(text, use_in(text, "a:1@${D}", image="a:1@" + OLD), options=Options(update=True))
    assert (only(plan).status, only(plan).warning) == (SKIPPED, True)


def test_equal_references_share_one_target_across_files():
    plan = Plan()
    for path in ("a/Dockerfile", "b/Dockerfile"):
        text = "FROM python:3.12\nFROM docker.io/library/python:3.12\n"
        uses = (use_in(text, "python:3.12"), use_in(text, "docker.io/library/python:3.12"))
        classify(path, text, FileScan("dockerfile", uses), Options(platform=Platform("linux", "amd64")), plan)
    assert list(plan.targets()) == [
        Target("docker.io", "library/python", "3.12", Platform("linux", "amd64"), None)
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # gone:1 failed, so the file is left alone: the pin and the update are reported as not written.
        (Options(update=True), [(1, UNPINNED), (2, STALE), (3, ERROR)]),
        # --check decides the unpinned ones without the network; only the pinned one is re-resolved.
        (Options(update=True, check=True), [(1, UNPINNED), (2, STALE), (3, UNPINNED)]),
    ],
)
def test_finish_pins_updates_and_reports_stale_and_errors(options, expected):
    text = "FROM python:3.12\nFROM a:1@" + OLD + "\nFROM gone:1\n"
    uses = [use_in(text, "python:3.12", line=1), use_in(text, "a:1@" + OLD, line=2), use_in(text, "gone:1", line=3)]
    resolver = FakeResolver()
    resolver.errors["docker.io/library/gone:1"] = NotFoundError("gone:1: not found", "docker.io")
    [result] = resolve_plan(plan_for(text, *uses, options=options), resolver, options)
    assert [(f.line, f.status) for f in result.findings] == expected


def test_a_file_held_back_by_a_failure_claims_no_pin():
    text = "FROM python:3.12\nFROM gone:1\n"
    plan = plan_for(text, use_in(text, "python:3.12", line=1), use_in(text, "gone:1", line=2))
    resolver = FakeResolver()
    resolver.errors["docker.io/library/gone:1"] = NotFoundError("gone:1: not found", "docker.io")
    [result] = resolve_plan(plan, resolver, Options())
    held = result.findings[0]
    assert (held.status, held.new_digest, held.edit) == (UNPINNED, None, None)
    assert held.message == "not written: the file is left alone because gone:1 (line 2) failed"


def test_finish_edits_only_the_span():
    text = "FROM python:3.12 AS b\nFROM a:1@" + OLD + "\n"
    uses = [use_in(text, "python:3.12", line=1), use_in(text, "a:1@" + OLD, line=2)]
    plan = plan_for(text, *uses, options=Options(update=True))
    [result] = resolve_plan(plan, FakeResolver(), Options(update=True))
    new = fake_digest("docker.io/library/a:1")
    assert apply(text.encode(), result.edits).decode() == f"FROM python:3.12@{PY} AS b\nFROM a:1@{new}\n"
    assert [f.new_digest for f in result.findings] == [PY, new]
    assert result.findings[1].old_digest == OLD


def test_a_file_with_a_failed_reference_gets_no_edits():
    text = "FROM python:3.12\nFROM gone:1\n"
    plan = plan_for(text, use_in(text, "python:3.12", line=1), use_in(text, "gone:1", line=2))
    resolver = FakeResolver()
    resolver.errors["docker.io/library/gone:1"] = NotFoundError("gone:1: not found", "docker.io")
    [result] = resolve_plan(plan, resolver, Options())
    assert result.edits == []


def test_findings_carry_line_column_and_kind():
    text = "FROM  python:3.12\n"
    plan = plan_for(text, use_in(text, "python:3.12"))
    [result] = resolve_plan(plan, FakeResolver(), Options())
    [f] = result.findings
    assert (f.line, f.column, f.kind) == (1, 7, "dockerfile")


def test_files_are_yielded_as_soon_as_their_references_resolve():
    """A file that needs nothing comes first, then each file when its last target answers."""
    plan = Plan()
    for path, text in (("slow", "FROM slow:1\n"), ("done", "FROM a@" + OLD + "\n"), ("fast", "FROM fast:1\n")):
        classify(path, text, FileScan("dockerfile", (use_in(text, text[5:-1]),)), Options(), plan)
    release = threading.Event()
    resolver = FakeResolver()
    real = resolver.resolve

    def resolve(ref, platform=None):
        if ref.repository == "library/slow":
            release.wait(5)
        return real(ref, platform)

    resolver.resolve = resolve
    order = []
    for result in resolve_plan(plan, resolver, Options()):
        order.append(result.path)
        if result.path == "fast":
            release.set()
    assert order == ["done", "fast", "slow"]


def test_each_target_is_resolved_once_and_jobs_bound_each_registry():
    inflight: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()
    resolver = FakeResolver()
    real = resolver.resolve

    def resolve(ref, platform=None):
        with lock:
            inflight[ref.registry] = inflight.get(ref.registry, 0) + 1
            peak[ref.registry] = max(peak.get(ref.registry, 0), inflight[ref.registry])
        time.sleep(0.01)
        with lock:
            inflight[ref.registry] -= 1
        return real(ref, platform)

    resolver.resolve = resolve
    work = {}
    for host in ("a.example", "b.example"):
        for i in range(12):
            ref = parse(f"{host}/img{i}:1")
            work[Target(ref.registry, ref.repository, ref.lookup, None, None)] = ref
    answers = dict(resolve_targets(work, resolver, jobs=3))
    assert set(answers) == set(work)
    assert len(resolver.calls) == 24
    assert max(peak.values()) <= 3


def test_leaving_resolution_early_cancels_the_lookups_not_started():
    started = []
    resolver = FakeResolver()
    real = resolver.resolve

    def resolve(ref, platform=None):
        started.append(ref.repository)
        time.sleep(0.05)
        return real(ref, platform)

    resolver.resolve = resolve
    work = {}
    for i in range(40):
        ref = parse(f"img{i}:1")
        work[Target(ref.registry, ref.repository, ref.lookup, None, None)] = ref
    results = resolve_targets(work, resolver, jobs=2)
    next(results)
    results.close()  # what an exception or Ctrl-C in the caller does
    time.sleep(0.3)
    assert len(started) < 10


def test_a_failed_write_turns_pins_back_into_unpinned_and_stale():
    text = "FROM python:3.12\nFROM a:1@" + OLD + "\nFROM b@" + OLD + "\n"
    uses = [use_in(text, "python:3.12", line=1), use_in(text, "a:1@" + OLD, line=2), use_in(text, "b@" + OLD, line=3)]
    plan = plan_for(text, *uses, options=Options(update=True))
    [result] = resolve_plan(plan, FakeResolver(), Options(update=True))
    back = not_written(result.findings, "not written")
    assert [(f.status, f.edit, f.message) for f in back] == [
        (UNPINNED, None, "not written"), (STALE, None, "not written"), (UP_TO_DATE, None, None)
    ]


def test_finish_keeps_line_order():
    text = "FROM b:1\nFROM $X\nFROM a:1\n"
    uses = [use_in(text, "b:1", line=1), use_in(text, "$X", status=Status.IGNORED, image=None, line=2),
            use_in(text, "a:1", line=3)]
    plan = plan_for(text, *uses)
    answers = {t: FakeResolver().resolve(ref) for t, ref in plan.targets().items()}
    assert [f.line for f in finish(plan, "Dockerfile", answers, Options())] == [1, 2, 3]


@pytest.mark.parametrize("options", [Options(), Options(check=True), Options(update=True)])
def test_an_overridden_reference_is_never_pinned_and_never_fails_check(options):
    note = "--build-arg BASE overrides the default the file gives ARG BASE"
    text = "ARG BASE=python:3.12\nFROM ${BASE}\n"
    use = use_in(text, "${BASE}", status=Status.OVERRIDDEN, image=None, note=note, line=2)
    plan = plan_for(text, use, options=options)
    assert plan.targets() == {}
    f = only(plan)
    assert (f.status, f.warning, f.message) == (SKIPPED, True, note + "; not pinned")


def test_the_scanners_note_on_a_composed_reference_travels_with_its_pin():
    note = "built from ARG VERSION: a --build-arg that changes it at build time still pulls this digest"
    text = "ARG VERSION=3.12\nFROM python:${VERSION}\n"
    use = use_in(text, "python:${VERSION}", image="python:3.12", note=note, line=2)
    [result] = resolve_plan(plan_for(text, use), FakeResolver(), Options())
    [f] = result.findings
    assert (f.status, f.message, f.warning) == (PINNED, note, False)


def test_a_syntax_frontend_keeps_the_index_digest_under_platform():
    text = "# syntax=docker/dockerfile:1.7\nFROM python:3.12\n"
    frontend = use_in(text, "docker/dockerfile:1.7")
    frontend = frontend._replace(instruction="syntax")
    options = Options(platform=Platform("linux", "arm64"))
    plan = plan_for(text, frontend, use_in(text, "python:3.12", line=2), options=options)
    assert sorted((t.repository, t.platform) for t in plan.targets()) == [
        ("docker/dockerfile", None), ("library/python", Platform("linux", "arm64"))
    ]


def test_an_invalid_platform_flag_is_an_error_for_its_reference():
    text = "FROM --platform=linux python:3.12\n"
    use = use_in(text, "python:3.12")._replace(platform="linux")
    f = only(plan_for(text, use, options=Options(platform=Platform("linux", "amd64"))))
    assert f.status == ERROR and f.message.startswith("--platform=linux: ")


def test_an_invalid_use_is_an_error_for_itself_and_file_notes_are_skipped_findings():
    text = "FROM python:3.12\nFROM ${X!}\nRUN x\n"
    bad = use_in(text, "${X!}", status=Status.INVALID, image=None, note="bad substitution", line=2)
    plan = Plan()
    classify("D", text, FileScan("dockerfile", (bad,), (Note(3, "a broken line"),)), Options(), plan)
    assert [(f.line, f.status, f.message, f.warning) for f in plan.findings["D"]] == [
        (3, SKIPPED, "a broken line", True), (2, ERROR, "bad substitution", False)
    ]
