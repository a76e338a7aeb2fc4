"""Command line: options and config merge, reading and writing files, and exit codes (the only module that prints)."""

from __future__ import annotations

import argparse
import difflib
import functools
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import IO, Callable, Optional
from urllib.parse import urlsplit

from . import __version__, dockerfile, files
from .config import FileConfig, find_config, load_config, registry_key
from .dockerfile import Edit
from .errors import ConfigError, DockerfileError, PinImagesError
from .manifest import Platform, parse_platform
from .reference import Reference
from .report import EXIT_ERROR, FORMATS, Report, exit_code, write_report
from .resolve import (
    CHANGES,
    ERROR,
    PINNED,
    STALE,
    UNPINNED,
    Finding,
    Options,
    Outcome,
    Plan,
    Resolver,
    Target,
    classify,
    finish,
    resolve_targets,
    span_texts,
)

CA_DIRS = ("/etc/docker/certs.d", "/etc/containers/certs.d", "~/.docker/certs.d", "~/.config/containers/certs.d")
DEFAULT_JOBS = 8
DEFAULT_TIMEOUT = 30.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pin-images",
        description="Pin every image reference in Dockerfiles (FROM, COPY --from, RUN --mount from=) to its "
        "sha256 manifest digest, changing nothing else in the file. Options can also be set in "
        "[tool.pin-images] of pyproject.toml or in .pin-images.toml; the command line wins.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="Dockerfiles or directories to search (default: .)")
    mode = p.add_argument_group("mode")
    mode.add_argument("--check", action="store_true", help="write nothing; fail if a reference is not pinned "
                      "(no network unless --update)")
    mode.add_argument("--update", action="store_true", default=None, help="also re-resolve tag@digest pins and "
                      "replace digests whose tag moved (with --check: fail on stale pins)")
    mode.add_argument("--dry-run", action="store_true", help="print a unified diff instead of writing")
    res = p.add_argument_group("resolution")
    res.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                     help="pin that platform's manifest instead of the multi-arch index")
    res.add_argument("--registry-mirror", action="append", default=[], metavar="REGISTRY=URL",
                     help="fetch REGISTRY's manifests from URL first (repeatable, tried in order, then the "
                     "registry itself; the file keeps the original name), e.g. docker.io=https://mirror.gcr.io")
    res.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                     help="talk plain http to this registry (loopback hosts always may)")
    res.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE",
                     help="override an ARG default, as docker build does (repeatable)")
    res.add_argument("--jobs", type=int, metavar="N",
                     help=f"concurrent requests per registry (default {DEFAULT_JOBS})")
    res.add_argument("--timeout", type=float, metavar="SECONDS",
                     help=f"read timeout per request (default {DEFAULT_TIMEOUT:g})")
    sel = p.add_argument_group("selection and output")
    sel.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                     help="skip paths matching GLOB (repeatable)")
    sel.add_argument("--ignore-image", action="append", default=[], metavar="GLOB",
                     help="never pin references matching GLOB, e.g. 'registry.internal/*' (repeatable)")
    sel.add_argument("--config", metavar="FILE",
                     help="read settings from FILE instead of the nearest .pin-images.toml or pyproject.toml")
    sel.add_argument("--no-config", action="store_true", help="ignore configuration files")
    sel.add_argument("--format", choices=FORMATS, help="output format (default text)")
    sel.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    sel.add_argument("-v", "--verbose", action="store_true", help="also print pinned and skipped references")
    sel.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


@dataclass
class Settings:
    paths: list[str]
    options: Options
    dry_run: bool = False
    mirrors: dict[str, list[str]] = field(default_factory=dict)
    insecure: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    excludes: list[str] = field(default_factory=list)
    fmt: str = "text"
    quiet: bool = False
    verbose: bool = False


def _relative_globs(globs: Sequence[str], config_path: str | None, cwd: str) -> list[str]:
    """Config-file excludes are relative to the config file's directory; paths are matched relative to cwd."""
    if not config_path:
        return list(globs)
    base = os.path.dirname(os.path.abspath(config_path))
    if os.path.relpath(base, cwd) == ".":
        return list(globs)
    # Rebased through the file system, not by prefixing: from a subdirectory, `svc/old/*` must become `old/*`.
    return [
        g if "/" not in g.strip("/") else os.path.relpath(os.path.join(base, g.lstrip("/")), cwd).replace(os.sep, "/")
        for g in globs
    ]


def settings_from_args(args: argparse.Namespace, cfg: FileConfig | None = None, cwd: str | None = None) -> Settings:
    """Merge command line over config file over defaults; every bad value is a ConfigError naming its option."""
    cfg = cfg or FileConfig()
    cwd = cwd or os.getcwd()
    platform: Platform | None = None
    platform_text = args.platform or cfg.platform
    if platform_text:
        try:
            platform = parse_platform(platform_text)
        except ValueError as exc:
            raise ConfigError(f"--platform {platform_text!r}: {exc}") from None
    mirrors: dict[str, list[str]] = {k: list(v) for k, v in cfg.registry_mirrors.items()}
    cli_mirrors: dict[str, list[str]] = {}
    for item in args.registry_mirror:
        registry, sep, url = item.partition("=")
        parts = urlsplit(url.strip())
        if not sep or not registry.strip() or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"--registry-mirror {item!r}: expected REGISTRY=URL with an http:// or https:// URL, "
                "e.g. docker.io=https://mirror.gcr.io"
            )
        cli_mirrors.setdefault(registry_key(registry), []).append(url.strip().rstrip("/"))
    mirrors.update(cli_mirrors)  # a registry's mirrors on the command line replace the file's list for it
    build_args = dict(cfg.build_args)
    for item in args.build_arg:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--build-arg {item!r}: expected NAME=VALUE")
        build_args[name] = value
    jobs = args.jobs if args.jobs is not None else (cfg.jobs or DEFAULT_JOBS)
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: must be at least 1")
    timeout = args.timeout if args.timeout is not None else (cfg.timeout or DEFAULT_TIMEOUT)
    if not timeout > 0:
        raise ConfigError(f"--timeout {timeout:g}: must be a positive number of seconds")
    if args.quiet and args.verbose:
        raise ConfigError("-q and -v cannot be used together")
    update = args.update if args.update is not None else bool(cfg.update)
    ignore_images = [*cfg.ignore_images, *args.ignore_image]
    return Settings(
        paths=args.paths or ["."],
        options=Options(check=args.check, update=update, platform=platform, jobs=jobs,
                        ignore_images=tuple(ignore_images)),
        dry_run=args.dry_run,
        mirrors=mirrors,
        insecure=list(dict.fromkeys([*cfg.insecure_registries, *(registry_key(h) for h in args.insecure_registry)])),
        build_args=build_args,
        timeout=timeout,
        excludes=[*_relative_globs(cfg.exclude, cfg.path, cwd), *args.exclude],
        fmt=args.format or cfg.format or "text",
        quiet=args.quiet,
        verbose=args.verbose,
    )


def load_file_config(args: argparse.Namespace, cwd: str) -> FileConfig:
    if args.no_config:
        return FileConfig()
    if args.config:
        if not os.path.isfile(args.config):
            raise ConfigError(f"--config {args.config}: no such file")
        return load_config(args.config)
    path = find_config(cwd)
    return load_config(path) if path else FileConfig()


def make_resolver(settings: Settings, env: dict[str, str]) -> Resolver:
    """Build the real registry client; imported here so that --check never loads requests or google-auth."""
    from .credentials import default_keychain
    from .registry import RegistryClient

    home = env.get("HOME") or os.path.expanduser("~")
    ca_dirs = [os.path.join(home, d[2:]) if d.startswith("~/") else d for d in CA_DIRS]
    return RegistryClient(
        default_keychain(env),
        mirrors=settings.mirrors,
        timeout=(min(10.0, settings.timeout), settings.timeout),
        ca_dirs=ca_dirs,
        # requests reads REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE itself, but not OpenSSL's SSL_CERT_FILE.
        ca_bundle=None if env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") else env.get("SSL_CERT_FILE"),
        insecure=settings.insecure,
    )


ScanResult = tuple[str, str, list[dockerfile.ImageUse], list[str], Optional[PinImagesError]]
PARALLEL_SCAN_MIN = 128  # files; below this a process pool costs more than it saves


def _scan_one(path: str, build_args: dict[str, str]) -> ScanResult:
    """Read and scan one file: (path, sha256 of its bytes, uses, span texts, error)."""
    try:
        data = files.read_file(path)
        uses = dockerfile.scan(data, path, build_args)
    except PinImagesError as exc:
        return path, "", [], [], exc
    return path, files.digest_bytes(data), uses, span_texts(data.decode("utf-8", "surrogateescape"), uses), None


def _scan_all(paths: list[str], build_args: dict[str, str], started: Callable[[], None]) -> Iterator[ScanResult]:
    """Scan files in order; a large tree is scanned by a pool of processes (scanning is CPU-bound Python).

    ``started`` runs once any worker processes exist: threads must not be started before a fork.
    """
    workers = min(8, os.cpu_count() or 1)
    if len(paths) < PARALLEL_SCAN_MIN or workers < 2 or sys.platform == "win32":
        started()
        for path in paths:
            yield _scan_one(path, build_args)
        return
    import multiprocessing  # only here: it costs the small runs (pre-commit, --check on a few files) nothing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        started()
        yield from pool.imap(functools.partial(_scan_one, build_args=build_args), paths, chunksize=16)


def run(settings: Settings, resolver: Resolver | None = None, env: dict[str, str] | None = None,
        progress: IO[str] | None = None) -> Report:
    """Scan, resolve, edit and write; returns everything the caller needs to report."""
    options = settings.options
    mode = "check" if options.check else ("dry-run" if settings.dry_run else "write")
    report = Report(mode=mode, update=options.update, platform=str(options.platform) if options.platform else None)
    plan = Plan()
    digests: dict[str, str] = {}
    paths: dict[str, None] = {}
    for root in settings.paths:
        # One path at a time, so that one typo does not hide every other finding.
        try:
            paths.update(dict.fromkeys(files.find_dockerfiles([root], settings.excludes)))
        except PinImagesError as exc:
            report.file_errors.append(exc)
    # Build the registry client (importing requests) while the files are scanned, if the network may be needed.
    client_builder = ThreadPoolExecutor(max_workers=1)
    client: Future[Resolver] | None = None
    environ = dict(env if env is not None else os.environ)

    def build_client() -> None:
        nonlocal client
        if resolver is None and (not options.check or options.update):
            client = client_builder.submit(make_resolver, settings, environ)

    try:
        registries: set[str] = set()
        # Only each file's hash and its uses are kept, not its bytes: memory grows with references, not with files.
        for path, digest, uses, spans, error in _scan_all(list(paths), settings.build_args, build_client):
            if error is not None:
                report.file_errors.append(error)
                continue
            report.files_scanned += 1
            digests[path] = digest
            known = len(plan.pending)
            classify(path, spans, uses, options, plan)
            for p in plan.pending[known:]:
                if client is not None and p.ref.registry not in registries:
                    # Learn the registry's challenge while the scan goes on: one round trip fewer after it.
                    registries.add(p.ref.registry)
                    client_builder.submit(_learn_challenge, client, p.ref)

        outcomes: dict[Target, Outcome] = {}
        # Files are edited and written as soon as every reference they need has resolved, overlapping the requests
        # still in flight; each write is atomic, so an interruption leaves every file whole (old or new).
        with ThreadPoolExecutor(max_workers=4) as writer:
            writes: dict[str, Future[tuple[bool, str | None]]] = {}

            def write_when_ready(path: str, findings: list[Finding]) -> None:
                edits = [f.edit for f in findings if f.edit is not None]
                # A file with any failed reference is left untouched.
                if edits and not any(f.status == ERROR for f in findings):
                    writes[path] = writer.submit(_write_one, path, edits, digests[path], settings)

            if plan.pending:
                if resolver is None:
                    resolver = client.result() if client is not None else make_resolver(settings, environ)
                outcomes = _resolve(plan, resolver, options, progress, write_when_ready)
            report.findings = finish(plan, outcomes, options)
    finally:
        # Queued challenge lookups are only a head start; never let them hold up the exit.
        client_builder.shutdown(wait=False, cancel_futures=True)
    _collect_writes(report, writes)
    return report


def _learn_challenge(client: Future[Resolver], ref: Reference) -> None:
    learn = getattr(client.result(), "learn_challenges", None)
    if learn is not None:
        learn([ref])


def _resolve(plan: Plan, resolver: Resolver, options: Options, progress: IO[str] | None,
             file_ready: Callable[[str, list[Finding]], None]) -> dict[Target, Outcome]:
    """Resolve every unique target; call ``file_ready`` with a file's findings once all its targets are in."""
    work: dict[Target, Reference] = {}
    for p in plan.pending:
        work.setdefault(p.target, p.ref)
    prefetch = getattr(resolver, "prefetch_tokens", None)
    if prefetch is not None:
        prefetch(list(work.values()))
    per_file = plan.by_file()
    waiting = {path: {p.target for p in sub.pending} for path, sub in per_file.items() if sub.pending}
    files_of: dict[Target, list[str]] = {}
    for path, targets in waiting.items():
        for t in targets:
            files_of.setdefault(t, []).append(path)
    outcomes: dict[Target, Outcome] = {}

    def on_result(target: Target, outcome: Outcome) -> None:
        outcomes[target] = outcome
        if progress is not None:
            progress.write(f"\rpin-images: resolved {len(outcomes)}/{len(work)} references")
            progress.flush()
        for path in files_of[target]:
            waiting[path].discard(target)
            if not waiting[path]:
                file_ready(path, finish(per_file[path], outcomes, options))

    resolve_targets(work.items(), resolver, options.jobs, on_result)
    if progress is not None:
        progress.write("\r\033[K")
    return outcomes


def _collect_writes(report: Report, writes: dict[str, Future[tuple[bool, str | None]]]) -> None:
    """Record each file's write in file order; a failed write turns its pins back into unpinned/stale."""
    failed: set[str] = set()
    for path in sorted(writes, key={f.path: i for i, f in enumerate(report.findings)}.get):
        try:
            changed, diff = writes[path].result()
        except PinImagesError as exc:
            report.file_errors.append(exc)
            failed.add(path)
            continue
        if changed:
            report.changed_files.append(path)
        if diff:
            report.diffs.append(diff)
    if failed:
        # Nothing was written to those files after all: their references are still unpinned or stale.
        report.findings = [
            replace(f, status=UNPINNED if f.status == PINNED else STALE, edit=None, message="not written")
            if f.path in failed and f.status in CHANGES else f
            for f in report.findings
        ]


def _new_bytes(path: str, edits: list[Edit], expected: str) -> tuple[bytes, bytes]:
    """Re-read ``path`` (only its hash was kept) and apply ``edits``: (old bytes, new bytes)."""
    data = files.read_file(path)
    if files.digest_bytes(data) != expected:
        raise DockerfileError("changed on disk while pin-images was running; not overwritten, run again", path)
    try:
        return data, dockerfile.apply(data, edits)
    except ValueError as exc:
        raise DockerfileError(f"conflicting edits ({exc}); not written", path) from None


def _write_one(path: str, edits: list[Edit], expected: str, settings: Settings) -> tuple[bool, str | None]:
    """Write (or diff) one file: (changed, diff)."""
    data, new = _new_bytes(path, edits, expected)
    if new == data:
        return False, None
    if settings.dry_run:
        return True, _diff(path, data, new)
    if not settings.options.check:
        files.replace_file(path, new, expected)
    return True, None


def _diff(path: str, old: bytes, new: bytes) -> str:
    def lines(data: bytes) -> list[str]:
        return data.decode("utf-8", "replace").splitlines(keepends=True)

    out = difflib.unified_diff(lines(old), lines(new), fromfile=f"a/{path}", tofile=f"b/{path}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in out)


def _fail(exc: PinImagesError, fmt: str | None, args: argparse.Namespace) -> int:
    """A run that could not start: one line on stderr, and still a valid document for machine formats."""
    sys.stderr.write(f"pin-images: error: {exc}\n")
    if fmt in ("json", "sarif"):
        mode = "check" if args.check else ("dry-run" if args.dry_run else "write")
        write_report(Report(file_errors=[exc], mode=mode, update=bool(args.update)), fmt, sys.stdout, sys.stderr)
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits for --help, --version and usage errors
        return int(exc.code or 0)
    for stream in (sys.stdout, sys.stderr):
        # A file's undecodable bytes (kept as surrogates) or a non-ASCII path must not crash the report.
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        cwd = os.getcwd()
        settings = settings_from_args(args, load_file_config(args, cwd), cwd)
    except PinImagesError as exc:
        return _fail(exc, args.format, args)
    show_progress = settings.fmt == "text" and not settings.quiet and sys.stderr.isatty()
    try:
        report = run(settings, progress=sys.stderr if show_progress else None)
    except PinImagesError as exc:
        return _fail(exc, settings.fmt, args)
    except KeyboardInterrupt:
        sys.stderr.write("pin-images: interrupted; files already written are complete, the rest untouched\n")
        return 130
    except Exception as exc:  # a bug in pin-images: say so in one line; the traceback only on request
        if os.environ.get("PIN_IMAGES_DEBUG"):
            raise
        sys.stderr.write(
            f"pin-images: internal error: {type(exc).__name__}: {exc} (a bug: please report it; set "
            "PIN_IMAGES_DEBUG=1 to see the traceback); files already written are complete, the rest untouched\n"
        )
        return EXIT_ERROR
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ  # https://no-color.org
    write_report(report, settings.fmt, sys.stdout, sys.stderr, quiet=settings.quiet, verbose=settings.verbose,
                 color=color)
    return exit_code(report)
