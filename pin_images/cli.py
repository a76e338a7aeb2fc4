"""Command line: options, reading and writing files, reporting, and exit codes (the only module that prints)."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit

from . import __version__, dockerfile, files
from .errors import ConfigError, PinImagesError
from .manifest import Platform, parse_platform
from .resolve import (
    CHANGES,
    ERROR,
    FAILS_CHECK,
    PINNED,
    SKIPPED,
    STALE,
    UNPINNED,
    UPDATED,
    Finding,
    Options,
    Plan,
    Resolver,
    Target,
    classify,
    finish,
    resolve_targets,
)

JSON_SCHEMA_VERSION = 1
EXIT_OK, EXIT_CHANGED, EXIT_ERROR = 0, 1, 2
CA_DIRS = ("/etc/docker/certs.d", "/etc/containers/certs.d", "~/.docker/certs.d", "~/.config/containers/certs.d")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pin-images",
        description="Pin every image reference in Dockerfiles (FROM, COPY --from, RUN --mount from=) to its "
        "sha256 manifest digest, changing nothing else in the file.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="Dockerfiles or directories to search (default: .)")
    mode = p.add_argument_group("mode")
    mode.add_argument("--check", action="store_true", help="write nothing; fail if a reference is not pinned "
                      "(no network unless --update)")
    mode.add_argument("--update", action="store_true", help="also re-resolve tag@digest pins and replace digests "
                      "whose tag moved (with --check: fail on stale pins)")
    mode.add_argument("--dry-run", action="store_true", help="print a unified diff instead of writing")
    res = p.add_argument_group("resolution")
    res.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                     help="pin that platform's manifest instead of the multi-arch index")
    res.add_argument("--registry-mirror", action="append", default=[], metavar="REGISTRY=URL",
                     help="fetch REGISTRY's manifests from URL first (repeatable, tried in order; the file keeps "
                     "the original name), e.g. docker.io=https://mirror.gcr.io")
    res.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                     help="talk plain http to this registry (loopback hosts always may)")
    res.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE",
                     help="override an ARG default, as docker build does (repeatable)")
    res.add_argument("--jobs", type=int, default=8, metavar="N", help="concurrent requests per registry (default 8)")
    res.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                     help="read timeout per request (default 30)")
    sel = p.add_argument_group("selection and output")
    sel.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                     help="skip paths matching GLOB (repeatable)")
    sel.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    sel.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    sel.add_argument("-v", "--verbose", action="store_true", help="also print skipped references and notes")
    sel.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


@dataclass
class Settings:
    paths: list[str]
    options: Options
    dry_run: bool
    mirrors: dict[str, list[str]]
    insecure: list[str]
    build_args: dict[str, str]
    timeout: float
    excludes: list[str]
    fmt: str
    quiet: bool
    verbose: bool


def _registry_key(name: str) -> str:
    name = name.strip().lower()
    return "docker.io" if name in ("index.docker.io", "registry-1.docker.io") else name


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Validate option values; every problem is a ConfigError naming the option."""
    platform: Platform | None = None
    if args.platform:
        try:
            platform = parse_platform(args.platform)
        except ValueError as exc:
            raise ConfigError(f"--platform {args.platform!r}: {exc}") from None
    mirrors: dict[str, list[str]] = {}
    for item in args.registry_mirror:
        registry, sep, url = item.partition("=")
        parts = urlsplit(url.strip())
        if not sep or not registry.strip() or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"--registry-mirror {item!r}: expected REGISTRY=URL with an http:// or https:// URL, "
                "e.g. docker.io=https://mirror.gcr.io"
            )
        mirrors.setdefault(_registry_key(registry), []).append(url.strip().rstrip("/"))
    build_args: dict[str, str] = {}
    for item in args.build_arg:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--build-arg {item!r}: expected NAME=VALUE")
        build_args[name] = value
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be at least 1")
    if not args.timeout > 0:
        raise ConfigError(f"--timeout {args.timeout}: must be a positive number of seconds")
    if args.quiet and args.verbose:
        raise ConfigError("-q and -v cannot be used together")
    return Settings(
        paths=args.paths or ["."],
        options=Options(check=args.check, update=args.update, platform=platform, jobs=args.jobs),
        dry_run=args.dry_run,
        mirrors=mirrors,
        insecure=[_registry_key(h) for h in args.insecure_registry],
        build_args=build_args,
        timeout=args.timeout,
        excludes=list(args.exclude),
        fmt=args.format,
        quiet=args.quiet,
        verbose=args.verbose,
    )


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
        insecure=settings.insecure,
    )


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    file_errors: list[PinImagesError] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    files_scanned: int = 0


def run(settings: Settings, resolver: Resolver | None = None, env: dict[str, str] | None = None,
        progress: IO[str] | None = None) -> Report:
    """Scan, resolve, edit and write; returns everything the caller needs to report."""
    report = Report()
    plan = Plan()
    digests: dict[str, str] = {}
    paths: dict[str, None] = {}
    for root in settings.paths:
        # One path at a time, so that one typo does not hide every other finding.
        try:
            paths.update(dict.fromkeys(files.find_dockerfiles([root], settings.excludes)))
        except PinImagesError as exc:
            report.file_errors.append(exc)
    for path in paths:
        try:
            data = files.read_file(path)
            uses = dockerfile.scan(data, path, settings.build_args)
        except PinImagesError as exc:
            report.file_errors.append(exc)
            continue
        report.files_scanned += 1
        digests[path] = files.digest_bytes(data)
        classify(path, data.decode("utf-8", "surrogateescape"), uses, settings.options, plan)

    outcomes = {}
    if plan.pending:
        if resolver is None:
            resolver = make_resolver(settings, dict(env if env is not None else os.environ))
        prefetch = getattr(resolver, "prefetch_tokens", None)
        if prefetch is not None:
            prefetch({p.target: p.ref for p in plan.pending}.values())
        work: dict[Target, Any] = {}
        for p in plan.pending:
            work.setdefault(p.target, p.ref)

        def tick(done: int, total: int) -> None:
            if progress is not None:
                progress.write(f"\rpin-images: resolved {done}/{total} references")
                progress.flush()

        outcomes = resolve_targets(work.items(), resolver, settings.options.jobs, tick)
        if progress is not None:
            progress.write("\r\033[K")
    report.findings = finish(plan, outcomes, settings.options)

    by_file: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_file.setdefault(f.path, []).append(f)
    for path, found in by_file.items():
        edits = [f.edit for f in found if f.edit is not None]
        if not edits or any(f.status == ERROR for f in found):
            continue  # a file with any failed reference is left untouched
        try:
            data = files.read_file(path)
            if files.digest_bytes(data) != digests[path]:
                raise PinImagesError(f"{path}: changed on disk while pin-images was running; not overwritten")
            try:
                new = dockerfile.apply(data, edits)
            except ValueError as exc:
                raise PinImagesError(f"{path}: conflicting edits ({exc}); not written") from None
            if new == data:
                continue
            if settings.dry_run:
                report.diffs.append(_diff(path, data, new))
            elif not settings.options.check:
                files.replace_file(path, new, digests[path])
            report.changed_files.append(path)
        except PinImagesError as exc:
            report.file_errors.append(exc)
            # Its references were not written after all: report them as errors, not as pinned.
            report.findings = [
                Finding(f.path, f.line, f.written, f.image, ERROR, f.ref, f.old_digest, None, str(exc))
                if f.path == path and f.status in CHANGES else f
                for f in report.findings
            ]
    return report


def _diff(path: str, old: bytes, new: bytes) -> str:
    def lines(data: bytes) -> list[str]:
        return data.decode("utf-8", "replace").splitlines(keepends=True)

    out = difflib.unified_diff(lines(old), lines(new), fromfile=f"a/{path}", tofile=f"b/{path}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in out)


def exit_code(report: Report) -> int:
    if report.file_errors or any(f.status == ERROR for f in report.findings):
        return EXIT_ERROR
    if report.changed_files or any(f.status in FAILS_CHECK for f in report.findings):
        return EXIT_CHANGED
    return EXIT_OK


def _finding_line(f: Finding) -> str:
    where = f"{f.path}:{f.line}"
    if f.status == PINNED or f.status == UPDATED:
        old = f.ref.original if f.ref else f.shown
        new = f"{f.ref.without_digest if f.ref else f.shown}@{f.new_digest}"
        return f"{where}: {old} -> {new}"
    if f.status == UNPINNED:
        if f.warning:
            return f"{where}: {f.shown} is not pinned: {f.message}"
        return f"{where}: {f.shown} is not pinned"
    if f.status == STALE:
        name = f.ref.without_digest if f.ref else f.shown
        return f"{where}: {name} is stale: pinned {f.old_digest}, the tag now points to {f.new_digest}"
    if f.status == ERROR:
        return f"{where}: {f.message}" if f.ref is None else f"{where}: {f.shown}: {f.message}"
    if f.status == SKIPPED:
        prefix = "warning: " if f.warning else ""
        return f"{where}: {prefix}{f.shown} skipped: {f.message}"
    return f"{where}: {f.shown} is pinned"


def summary(report: Report, settings: Settings) -> str:
    counts: dict[str, int] = {}
    for f in report.findings:
        counts[f.status] = counts.get(f.status, 0) + 1
    files_changed = len(report.changed_files)
    parts = []
    verb = "would pin" if settings.dry_run or settings.options.check else "pinned"
    if counts.get(PINNED):
        parts.append(f"{verb} {counts[PINNED]} reference{'s' * (counts[PINNED] != 1)}")
    if counts.get(UPDATED):
        parts.append(f"{'would update' if settings.dry_run else 'updated'} {counts[UPDATED]}")
    if parts:
        parts[-1] += f" in {files_changed} file{'s' * (files_changed != 1)}"
    if counts.get(UNPINNED):
        parts.append(f"{counts[UNPINNED]} reference{'s' * (counts[UNPINNED] != 1)} unpinned")
    if counts.get(STALE):
        parts.append(f"{counts[STALE]} stale")
    errors = counts.get(ERROR, 0) + len(report.file_errors)
    if errors:
        parts.append(f"{errors} error{'s' * (errors != 1)}")
    if not parts:
        n = len(report.findings)
        return (f"all {n} reference{'s' * (n != 1)} pinned" if n else "no image references found") + (
            f" ({report.files_scanned} file{'s' * (report.files_scanned != 1)} scanned)"
        )
    return ", ".join(parts)


def to_json(report: Report, settings: Settings) -> dict[str, Any]:
    mode = "check" if settings.options.check else ("dry-run" if settings.dry_run else "write")
    return {
        "version": JSON_SCHEMA_VERSION,
        "mode": mode,
        "update": settings.options.update,
        "platform": str(settings.options.platform) if settings.options.platform else None,
        "exit_code": exit_code(report),
        "summary": summary(report, settings),
        "files_scanned": report.files_scanned,
        "files_changed": report.changed_files,
        "references": [
            {
                "file": f.path,
                "line": f.line,
                "reference": f.written,
                "image": f.image,
                "name": f.ref.name if f.ref else None,
                "status": f.status,
                "old_digest": f.old_digest,
                "new_digest": f.new_digest,
                "message": f.message,
            }
            for f in report.findings
        ],
        "errors": [str(e) for e in report.file_errors],
    }


def print_report(report: Report, settings: Settings, out: IO[str], err: IO[str]) -> None:
    if settings.fmt == "json":
        json.dump(to_json(report, settings), out, indent=2)
        out.write("\n")
        return
    for e in report.file_errors:
        err.write(f"{e}\n")
    for f in report.findings:
        if f.status == ERROR or (f.warning and not settings.quiet):
            err.write(_finding_line(f) + "\n")
        elif settings.quiet:
            continue
        elif f.status in CHANGES or f.status in FAILS_CHECK or settings.verbose:
            out.write(_finding_line(f) + "\n")
    for d in report.diffs:
        out.write(d)
    if not settings.quiet:
        out.write(summary(report, settings) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits for --help, --version and usage errors
        return int(exc.code or 0)
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        sys.stderr.write(f"pin-images: error: {exc}\n")
        return EXIT_ERROR
    show_progress = settings.fmt == "text" and not settings.quiet and sys.stderr.isatty()
    try:
        report = run(settings, progress=sys.stderr if show_progress else None)
    except PinImagesError as exc:
        sys.stderr.write(f"pin-images: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("pin-images: interrupted; files already written are complete, the rest untouched\n")
        return 130
    print_report(report, settings, sys.stdout, sys.stderr)
    return exit_code(report)
