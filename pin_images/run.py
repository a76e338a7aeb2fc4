"""One run: find files, scan each through its file kind, plan, resolve, and write; returns a Report.

Nothing here prints or exits (the CLI does); the registry client is built only when a reference needs the network,
so ``--check`` never imports ``requests``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Callable, NamedTuple

from . import files, kinds
from .errors import DockerfileError, PinImagesError
from .report import Report
from .resolve import (
    DEFAULT_JOBS,
    FileResult,
    Options,
    Plan,
    Resolver,
    classify,
    not_written,
    resolve_plan,
)
from .uses import Edit, ScanOptions, apply

__all__ = ["DEFAULT_JOBS", "DEFAULT_TIMEOUT", "Settings", "run"]

DEFAULT_TIMEOUT = 30.0
# A git hook must end in well under a minute whatever the registries do.
DEFAULT_DEADLINE = 50.0
# Writes are fsync'd; a few threads let them overlap each other and the requests still in flight.
WRITERS = 4
# Bytes read before scanning starts (see _read_ahead); a tree larger than this reads the rest as it scans.
READ_AHEAD = 32 * 1024 * 1024

Progress = Callable[[int, int], None]


class Settings(NamedTuple):
    """Everything a run needs, merged from the command line, the configuration file and the defaults.

    A NamedTuple, not a dataclass (a millisecond of every run's import); the defaults are read-only, being shared.
    """

    paths: list[str]
    options: Options
    dry_run: bool = False
    mirrors: Mapping[str, list[str]] = MappingProxyType({})
    insecure: Sequence[str] = ()
    build_args: Mapping[str, str] = MappingProxyType({})
    timeout: float = DEFAULT_TIMEOUT
    deadline: float = DEFAULT_DEADLINE  # seconds for all the network work of one run
    excludes: Sequence[str] = ()
    fmt: str = "text"
    quiet: bool = False
    verbose: bool = False
    pin_syntax: bool = False
    kinds: tuple[str, ...] = ()  # the file kinds to read; empty means every kind


class _Written(NamedTuple):
    """What writing (or diffing) one file did."""

    changed: bool
    diff: str | None = None


def run(settings: Settings, connect: Callable[[], Resolver], progress: Progress | None = None,
        warm: Callable[[str], None] | None = None) -> Report:
    """Scan, resolve, edit and write; ``connect`` builds the resolver, called only if the network is needed.

    ``progress(done, total)`` is called as references resolve. ``warm(registry)`` is called once per registry as soon
    as a reference needs it, so that its connections can open while the rest of the files are scanned.
    """
    options = settings.options
    mode = "check" if options.check else ("dry-run" if settings.dry_run else "write")
    report = Report(mode=mode, update=options.update, platform=str(options.platform) if options.platform else None)
    plan = Plan()
    early = _Early(connect, warm)
    contents = _scan(settings, report, plan, early)
    work = plan.targets()
    resolver = early.resolver() if work else None
    try:
        if resolver is not None:
            resolver.prefetch(list(work.values()))
        _resolve_and_write(plan, resolver, contents, settings, report, progress, len(work))
    finally:
        if resolver is not None:
            resolver.close()  # pooled connections (and their sockets) go now, not whenever the process ends
    return report


def _scan(settings: Settings, report: Report, plan: Plan, early: _Early) -> dict[str, bytes]:
    """Find, read and scan every file once into ``plan``; returns the bytes of the files that may change.

    Only those are kept: memory grows with the files to write, not with the tree.
    """
    contents: dict[str, bytes] = {}
    scan_options = ScanOptions(build_args=settings.build_args, pin_syntax=settings.pin_syntax)
    found = files.discover(settings.paths, settings.excludes, only=settings.kinds or None)
    report.file_errors.extend(found.errors)
    report.excluded = found.excluded
    todo: list[tuple[str, str]] = []
    for path in found.paths:
        # A search keeps only files of a known kind; a named file of no kind (a .json, a .yaml by name) is skipped.
        kind = kinds.kind_for_named_file(path)
        if kind is None or (settings.kinds and kind not in settings.kinds) or _too_big_to_sniff(path, kind):
            continue
        todo.append((path, kind))
    ahead = _read_ahead(path for path, _ in todo)
    for path, kind in todo:
        try:
            read = ahead.pop(path, None)
            if isinstance(read, PinImagesError):
                raise read
            data = files.read_file(path) if read is None else read
            scan = kinds.scan_file(kind, data, path, scan_options)
        except PinImagesError as exc:
            report.file_errors.append(exc)
            continue
        report.files_scanned += 1
        classify(path, data.decode("utf-8", "surrogateescape"), scan, settings.options, plan)
        if plan.pending[path]:
            contents[path] = data
            early.need(p.target.registry for p in plan.pending[path])
    return contents


def _read_ahead(paths: Iterable[str]) -> dict[str, bytes | PinImagesError]:
    """The files' bytes (or why a file cannot be read), read before any of them is scanned, up to READ_AHEAD bytes.

    Scanning the first file that needs the network starts threads that import the HTTP code and open connections
    (CPU-bound for a while). From then on every system call of the main thread lets them take the GIL, and getting
    it back can take the whole switch interval (5 ms): reading 200 files that way cost the bulk benchmark ~0.25 s
    of waiting. Read first, the files cost only their reads; the budget bounds the memory held on a large tree.
    """
    ahead: dict[str, bytes | PinImagesError] = {}
    total = 0
    for path in paths:
        if total > READ_AHEAD:
            break  # the rest are read as they are scanned
        try:
            data = ahead[path] = files.read_file(path)
        except PinImagesError as exc:
            ahead[path] = exc
        else:
            total += len(data)
    return ahead


def _resolve_and_write(plan: Plan, resolver: Resolver | None, contents: dict[str, bytes], settings: Settings,
                       report: Report, progress: Progress | None, total: int) -> None:
    """Resolve, write each file as soon as its references are in, and record every file's findings in file order."""
    results: dict[str, FileResult] = {}
    writes: dict[str, _Job] = {}
    writer: _Writers | None = None  # started with the first file to write: --check never needs it
    try:
        for result in resolve_plan(plan, resolver, settings.options):
            results[result.path] = result
            if progress is not None and total:
                progress(result.resolved, total)
            edits = result.edits
            if edits:
                if writer is None:
                    writer = _Writers(WRITERS)
                writes[result.path] = writer.submit(_write_one, result.path, contents[result.path], edits, settings)
        # Each write is atomic, so an interruption leaves every file whole (old or new).
        for path in plan.files:
            findings = results[path].findings
            if path in writes:
                try:
                    written = writes[path].result()
                except PinImagesError as exc:
                    report.file_errors.append(exc)
                    findings = not_written(findings, "not written")
                else:
                    if written.changed:
                        report.changed_files.append(path)
                    if written.diff:
                        report.diffs.append(written.diff)
            report.findings.extend(findings)
    finally:
        if writer is not None:
            writer.shutdown()


class _Job:
    """One file's write, run by a writer thread; ``result()`` waits for it and returns or re-raises its outcome."""

    def __init__(self, call: Callable[[], _Written]) -> None:
        self._call = call
        self._done = threading.Event()
        self._value: _Written | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as exc:  # Ctrl-C's KeyboardInterrupt included: re-raised in the main thread
            self._error = exc
        finally:
            self._done.set()

    def cancel(self) -> None:
        self._error = RuntimeError("write cancelled")
        self._done.set()

    def result(self) -> _Written:
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


class _Writers:
    """Up to ``size`` threads writing files, started as writes come: a queue and plain threads, not
    concurrent.futures, whose import (it imports logging) cost every pin run ~15 ms of CPU."""

    def __init__(self, size: int) -> None:
        import queue  # resolving imports it too

        self._size = size
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._cancelled = False

    def submit(self, fn: Callable[..., _Written], *args: object) -> _Job:
        job = _Job(lambda: fn(*args))
        self._jobs.put(job)
        if len(self._threads) < self._size:
            thread = threading.Thread(target=self._work, name=f"pin-images-write-{len(self._threads)}")
            thread.start()
            self._threads.append(thread)
        return job

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._cancelled:
                job.cancel()
            else:
                job.run()

    def shutdown(self) -> None:
        """Drop the writes not started yet and wait for the running ones: a write is never cut short."""
        self._cancelled = True
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()


class _Early:
    """Starts what the network part will need as soon as a reference needs the network: the resolver, built in a
    thread (its imports are most of a hook run's CPU), and each registry's warm-up."""

    def __init__(self, connect: Callable[[], Resolver], warm: Callable[[str], None] | None) -> None:
        self._connect = connect
        self._warm = warm
        self._registries: set[str] = set()
        # A plain thread, not an executor: importing concurrent.futures here would delay the warm-up by ~20 ms.
        self._thread: threading.Thread | None = None
        self._built: list[Resolver] = []
        self._failed: list[BaseException] = []

    def need(self, registries: Iterable[str]) -> None:
        for registry in registries:
            if registry not in self._registries:
                self._registries.add(registry)
                if self._warm is not None:
                    self._warm(registry)
        if self._thread is None:
            self._thread = threading.Thread(target=self._build, name="pin-images-connect", daemon=True)
            self._thread.start()

    def _build(self) -> None:
        try:
            self._built.append(self._connect())
        except BaseException as exc:  # handed to resolver(), in the main thread
            self._failed.append(exc)

    def resolver(self) -> Resolver:
        if self._thread is None:
            return self._connect()
        self._thread.join()
        if self._failed:
            raise self._failed[0]  # what building it raised, here as before
        return self._built[0]


def _too_big_to_sniff(path: str, kind: str) -> bool:
    """True for a YAML file recognised only by its content that is over the read limit: generated bundles are not
    read, and not an error (a file of a kind known by its name still is)."""
    if kind != kinds.BY_CONTENT:
        return False
    try:
        return os.path.getsize(path) > files.MAX_FILE_BYTES
    except OSError:
        return False  # reading it reports the cause


def _write_one(path: str, data: bytes, edits: Sequence[Edit], settings: Settings) -> _Written:
    """Write (or diff) one file from the bytes it was scanned from; ``files`` refuses it if it changed since."""
    try:
        new = apply(data, edits)
    except ValueError as exc:
        raise DockerfileError(f"conflicting edits ({exc}); not written", path) from None
    if new == data:
        return _Written(False)
    files.check_size(path, new)  # before a diff too: --dry-run must not show what could not be written
    if settings.dry_run:
        return _Written(True, _diff(path, data, new))
    if not settings.options.check:
        files.replace_file(path, new, files.digest_bytes(data))
    return _Written(True)


def _diff(path: str, old: bytes, new: bytes) -> str:
    """A unified diff of one file, marking a last line without a newline as diff(1) does.

    Its paths are relative to the repository root, as ``git apply`` wants them, from any working directory.
    """

    def lines(data: bytes) -> list[str]:
        return data.decode("utf-8", "replace").splitlines(keepends=True)

    import difflib  # only --dry-run shows diffs

    name = files.patch_path(path)
    out = difflib.unified_diff(lines(old), lines(new), fromfile=f"a/{name}", tofile=f"b/{name}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in out)
