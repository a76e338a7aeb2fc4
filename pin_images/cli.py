"""Command line: options and config merge, reading and writing files, and exit codes (the only module that prints)."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Callable, NoReturn

from . import __version__
from .config import FileConfig, find_config, load_config, parse_build_args, registry_key
from .errors import ConfigError, PinImagesError
from .kinds import KINDS
from .report import EXIT_ERROR, FORMATS, Report, exit_code, write_report
from .resolve import DEFAULT_JOBS, PIN_STYLES, Options, Resolver
from .run import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, Settings, run

if TYPE_CHECKING:
    from .manifest import Platform
    from .preconnect import Warmup
    from .registry import RegistryClient
    from .wire import Wire

__all__ = ["DEFAULT_JOBS", "DEFAULT_TIMEOUT", "Settings", "build_parser", "entry", "main", "make_resolver"]

CA_DIRS = ("/etc/docker/certs.d", "/etc/containers/certs.d", "~/.docker/certs.d", "~/.config/containers/certs.d")


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, sized as shutil.get_terminal_size() would size it, without importing shutil (and bz2,
    lzma, zlib with it): argparse builds a formatter for every option it is given, so every run paid for it."""

    def __init__(self, prog: str) -> None:
        try:
            columns = int(os.environ.get("COLUMNS", "0"))
        except ValueError:
            columns = 0
        if columns <= 0:
            try:
                columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
            except (AttributeError, ValueError, OSError):
                columns = 80
        super().__init__(prog, width=(columns or 80) - 2)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pin-images",
        formatter_class=_HelpFormatter,
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
    res.add_argument("--build-arg", action="append", default=[], metavar="NAME[=VALUE]",
                     help="override an ARG default, as docker build does (repeatable); NAME alone takes its value "
                     "from the environment")
    res.add_argument("--pin-style", choices=PIN_STYLES,
                     help="how a new pin is written: tag (default) python:3.12@sha256:..., full "
                     "docker.io/library/python:3.12@sha256:..., digest docker.io/library/python@sha256:... "
                     "(full and digest rewrite the reference; digest drops the tag, so --update cannot move it)")
    res.add_argument("--pin-syntax", action="store_true", default=None,
                     help="also pin the Dockerfile's `# syntax=` frontend image")
    res.add_argument("--jobs", type=int, metavar="N",
                     help=f"concurrent requests per registry (default {DEFAULT_JOBS})")
    res.add_argument("--timeout", type=float, metavar="SECONDS",
                     help=f"limit for one request, connecting to last byte (default {DEFAULT_TIMEOUT:g})")
    res.add_argument("--deadline", type=float, metavar="SECONDS",
                     help=f"limit for all requests of the run (default {DEFAULT_DEADLINE:g})")
    sel = p.add_argument_group("selection and output")
    sel.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                     help="skip paths matching GLOB, even when named (repeatable)")
    sel.add_argument("--kind", action="append", default=[], metavar="KIND[,KIND]",
                     help=f"read only these file kinds: {', '.join(KINDS)} (default all)")
    sel.add_argument("--ignore-image", action="append", default=[], metavar="GLOB",
                     help="never pin references matching GLOB, e.g. 'registry.internal/*' (repeatable)")
    sel.add_argument("--config", metavar="FILE",
                     help="read settings from FILE instead of the nearest .pin-images.toml or pyproject.toml")
    sel.add_argument("--no-config", action="store_true", help="ignore configuration files")
    sel.add_argument("--format", choices=FORMATS, help="output format (default text)")
    sel.add_argument("-q", "--quiet", action="store_true", help="hide successes, the summary and progress; failures "
                     "and their reasons are still printed")
    sel.add_argument("-v", "--verbose", action="store_true", help="also print pinned and skipped references and the "
                     "configuration file used")
    sel.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


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
        from .manifest import parse_platform

        try:
            platform = parse_platform(platform_text)
        except ValueError as exc:
            raise ConfigError(f"--platform {platform_text!r}: {exc}") from None
    mirrors: dict[str, list[str]] = {k: list(v) for k, v in cfg.registry_mirrors.items()}
    cli_mirrors: dict[str, list[str]] = {}
    for item in args.registry_mirror:
        from urllib.parse import urlsplit  # only with mirrors

        registry, sep, url = item.partition("=")
        parts = urlsplit(url.strip())
        if not sep or not registry.strip() or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"--registry-mirror {item!r}: expected REGISTRY=URL with an http:// or https:// URL, "
                "e.g. docker.io=https://mirror.gcr.io"
            )
        cli_mirrors.setdefault(registry_key(registry), []).append(url.strip().rstrip("/"))
    mirrors.update(cli_mirrors)  # a registry's mirrors on the command line replace the file's list for it
    build_args = {**cfg.build_args, **parse_build_args(args.build_arg, os.environ)}
    jobs = args.jobs if args.jobs is not None else (cfg.jobs or DEFAULT_JOBS)
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: must be at least 1")
    timeout = args.timeout if args.timeout is not None else (cfg.timeout or DEFAULT_TIMEOUT)
    deadline = args.deadline if args.deadline is not None else (cfg.deadline or DEFAULT_DEADLINE)
    for option, seconds in (("--timeout", timeout), ("--deadline", deadline)):
        if not (math.isfinite(seconds) and seconds > 0):
            raise ConfigError(f"{option} {seconds:g}: must be a positive, finite number of seconds")
    if args.quiet and args.verbose:
        raise ConfigError("-q and -v cannot be used together")
    update = args.update if args.update is not None else bool(cfg.update)
    ignore_images = [*cfg.ignore_images, *args.ignore_image]
    selected = [k.strip() for item in args.kind for k in item.split(",") if k.strip()] or cfg.kinds
    for name in selected:
        if name not in KINDS:
            raise ConfigError(f"--kind {name!r}: unknown file kind; expected one of {', '.join(KINDS)}")
    return Settings(
        paths=args.paths or ["."],
        options=Options(check=args.check, update=update, platform=platform, jobs=jobs,
                        ignore_images=tuple(ignore_images), pin_style=args.pin_style or cfg.pin_style or "tag"),
        pin_syntax=args.pin_syntax if args.pin_syntax is not None else bool(cfg.pin_syntax),
        dry_run=args.dry_run,
        mirrors=mirrors,
        insecure=list(dict.fromkeys([*cfg.insecure_registries, *(registry_key(h) for h in args.insecure_registry)])),
        build_args=build_args,
        timeout=timeout,
        deadline=deadline,
        excludes=[*_relative_globs(cfg.exclude, cfg.path, cwd), *args.exclude],
        fmt=args.format or cfg.format or "text",
        quiet=args.quiet,
        verbose=args.verbose,
        kinds=tuple(dict.fromkeys(selected)),
    )


def load_file_config(args: argparse.Namespace, cwd: str) -> FileConfig:
    if args.no_config and args.config:
        raise ConfigError("--config and --no-config cannot be used together")
    if args.no_config:
        return FileConfig()
    if args.config:
        if not os.path.isfile(args.config):
            raise ConfigError(f"--config {args.config}: no such file")
        return load_config(args.config)
    path = find_config(cwd)
    return load_config(path) if path else FileConfig()


def _ca_sources(env: dict[str, str]) -> tuple[list[str], str | None]:
    """The certs.d directories, and the CA bundle to pass requests (it reads REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE
    itself, but not OpenSSL's SSL_CERT_FILE)."""
    home = env.get("HOME") or os.path.expanduser("~")
    ca_dirs = [os.path.join(home, d[2:]) if d.startswith("~/") else d for d in CA_DIRS]
    ca_bundle = None if env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") else env.get("SSL_CERT_FILE")
    return ca_dirs, ca_bundle


def make_resolver(settings: Settings, env: dict[str, str]) -> Resolver:
    """Build the real registry client (tests replace this function with a fake)."""
    return _registry_client(settings, env)


def make_wire(env: dict[str, str]) -> Wire:
    """The standard library's HTTP, unless a proxy variable is set: then requests, which honours them all (tests
    that mock requests with `responses` replace this function)."""
    from .preconnect import proxy_configured

    if proxy_configured(env):
        from .requests_wire import RequestsWire

        return RequestsWire()
    from .stdlib_wire import StdlibWire

    return StdlibWire(env)


def _registry_client(settings: Settings, env: dict[str, str]) -> RegistryClient:
    """The registry client; imported here so that --check never loads the HTTP code or google-auth."""
    from .credentials import default_keychain
    from .pingcache import default_path
    from .registry import RegistryClient

    ca_dirs, ca_bundle = _ca_sources(env)
    return RegistryClient(
        default_keychain(env),
        wire=make_wire(env),
        mirrors=settings.mirrors,
        timeout=(min(10.0, settings.timeout), settings.timeout),
        ca_dirs=ca_dirs,
        ca_bundle=ca_bundle,
        insecure=settings.insecure,
        deadline=settings.deadline,
        ping_cache=default_path(env),
    )


_REAL_MAKE_RESOLVER = make_resolver


def make_warmup(settings: Settings, env: dict[str, str]) -> Warmup:
    """Opens each registry's connections as soon as a reference needs it (see preconnect); stdlib only."""
    from .pingcache import default_path, load
    from .preconnect import Warmup
    from .wire import ca_file_for

    ca_dirs, ca_bundle = _ca_sources(env)
    return Warmup(
        ca_file=lambda hostport: ca_file_for(hostport, ca_dirs, ca_bundle),
        env=env,
        timeout=min(10.0, settings.timeout),
        user_agent=f"pin-images/{__version__}",
        insecure=settings.insecure,
        mirrored=list(settings.mirrors),
        known=load(default_path(env)),
    )


def _connect(settings: Settings, env: dict[str, str], warmup: Warmup | None) -> Resolver:
    """The resolver for the run; the real client takes over the warm-up's connections (a fake gets no warm-up)."""
    if warmup is None:
        return make_resolver(settings, env)
    client = _registry_client(settings, env)
    client.use_warmup(warmup)
    return client


def _progress_to(stream: IO[str]) -> Callable[[int, int], None]:
    """A progress callback that keeps one line on a terminal up to date."""

    def show(done: int, total: int) -> None:
        stream.write(f"\rpin-images: resolved {done}/{total} references")
        stream.flush()

    return show


def _fail(exc: PinImagesError, fmt: str | None, args: argparse.Namespace) -> int:
    """A run that could not start: one line on stderr, and still a valid document for machine formats."""
    sys.stderr.write(f"pin-images: error: {exc}\n")
    if fmt in ("json", "sarif", "github"):
        mode = "check" if args.check else ("dry-run" if args.dry_run else "write")
        report = Report(file_errors=[exc], mode=mode, update=bool(args.update))
        _to_stdout(lambda: write_report(report, fmt, sys.stdout, sys.stderr, quiet=True))
    return EXIT_ERROR


def _to_stdout(write: Callable[[], None]) -> None:
    """Run an output step; a reader that stopped early (``| head``) ends the output quietly, as other tools do."""
    try:
        write()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit and would report the same broken pipe: point it at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


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
        cfg = load_file_config(args, cwd)
        settings = settings_from_args(args, cfg, cwd)
    except PinImagesError as exc:
        return _fail(exc, args.format, args)
    show_progress = settings.fmt == "text" and not settings.quiet and sys.stderr.isatty()
    environ = dict(os.environ)
    # A replaced make_resolver (tests' fakes) gets no warm-up: it would connect to the hosts their files name.
    network = not settings.options.check or settings.options.update
    warmup = make_warmup(settings, environ) if network and make_resolver is _REAL_MAKE_RESOLVER else None
    try:
        report = run(settings, lambda: _connect(settings, environ, warmup),
                     progress=_progress_to(sys.stderr) if show_progress else None,
                     warm=warmup.start if warmup is not None else None)
        if show_progress:
            sys.stderr.write("\r\033[K")
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
    finally:
        if warmup is not None:
            warmup.close()
    report.config = cfg.path
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ  # https://no-color.org
    _to_stdout(lambda: write_report(report, settings.fmt, sys.stdout, sys.stderr, quiet=settings.quiet,
                                    verbose=settings.verbose, color=color))
    return exit_code(report)


def entry() -> NoReturn:
    """The console script and ``python -m pin_images``: main(), then a quick exit. Everything the run wrote is on
    disk by then (files are fsync'd and renamed), and the output is flushed here; tearing the interpreter down
    module by module would add 30 to 60 ms to every hook run for nothing."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        # A reader that went away (| head) or a closed stream: nothing more to show.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
