"""Hook latency: pin-images on the one Dockerfile a commit touches, side by side with pindock, plus the bulk case.

Run from the repository root: ``python bench/hook.py`` (~5 min on 2 cores) or ``--rounds 3`` for a quick look.
See bench/README.md ("Hook latency") for what is measured and the latest results.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from repo_gen import audit, plan_uses, write_repo  # noqa: E402

from bench import clean_env, count_requests, find_pindock, timed, version  # noqa: E402
from tests.support import pki  # noqa: E402
from tests.support.deps import link_distributions, runtime_requirements  # noqa: E402
from tests.support.proxy import LatencyProxy  # noqa: E402
from tests.support.registry_server import RegistryServer, find_registry_bin  # noqa: E402
from tests.support.seed import seed_image  # noqa: E402

PYTHON = sys.executable
INSTALL_FILES = ("pyproject.toml", "README.md", "pin_images")
SKOPEO_LOOP = ('while read -r ref; do skopeo inspect --tls-verify=false --format "{{.Digest}}" "docker://$ref" '
               "|| echo FAILED; done")


# ------------------------------------------------------------------------------------------------- a TLS proxy


class TLSLatencyProxy(LatencyProxy):
    """A :class:`LatencyProxy` that serves https with a certificate of the benchmark's private CA.

    Besides ``latency`` per request, a new connection waits two more round trips before its TLS handshake
    completes: the TCP handshake's (which a server cannot delay in ``connect()`` itself, so it is charged here) and
    TLS 1.3's. A client that opens its connection early hides them; one that opens it late waits.
    """

    def __init__(self, upstream: str, context: ssl.SSLContext, **kwargs: Any) -> None:
        super().__init__(upstream, **kwargs)
        self.context = context
        self.connections = 0

    @property
    def url(self) -> str:
        return f"https://{self.host}"


class _TLSHandler(LatencyProxy.handler_class):  # type: ignore[name-defined,misc]
    server_obj: TLSLatencyProxy

    def setup(self) -> None:
        proxy = self.server_obj
        with proxy._lock:
            proxy.connections += 1
        if proxy.latency:
            time.sleep(2 * proxy.latency)
        self.request = proxy.context.wrap_socket(self.request, server_side=True)
        super().setup()


TLSLatencyProxy.handler_class = _TLSHandler


# ------------------------------------------------------------------------------------------------- registries


@dataclass
class Target:
    """A registry behind a proxy, with its seeded images, as the tools see it."""

    name: str
    server: RegistryServer
    proxy: LatencyProxy
    token_proxy: LatencyProxy | None
    digests: dict[str, str] = field(default_factory=dict)  # image as written in files -> top manifest digest
    notes: dict[str, str] = field(default_factory=dict)


    @property
    def proxies(self) -> list[LatencyProxy]:
        return [p for p in (self.proxy, self.token_proxy) if p is not None]

    def set_latency(self, seconds: float) -> None:
        for p in self.proxies:
            p.latency = seconds

    def reset(self) -> None:
        for p in self.proxies:
            p.reset()
            if isinstance(p, TLSLatencyProxy):
                p.connections = 0

    def counts(self) -> dict[str, int]:
        c = count_requests(self.proxy.requests, self.token_proxy.requests if self.token_proxy else [])
        c["conns"] = sum(p.connections for p in self.proxies if isinstance(p, TLSLatencyProxy))
        return c


# The one-file case: three references, two unique (a multi-arch index, a single manifest).
ONE_FILE_IMAGES = (("bench/base", "1.0", "oci-index"), ("bench/tool", "2.0", "docker-manifest"))


def one_file_text(target: Target, pinned: bool = False) -> str:
    base, tool = (f"{target.proxy.host}/{repo}:{tag}" for repo, tag, _ in ONE_FILE_IMAGES)
    if pinned:
        base, tool = f"{base}@{target.digests[base]}", f"{tool}@{target.digests[tool]}"
    return (f"FROM {base} AS build\nCOPY --from={tool} /bin/tool /usr/local/bin/tool\nRUN tool build /src /out\n\n"
            f"FROM {base}\nCOPY --from=build /out /app\nCMD [\"/app/run\"]\n")


def start_tls_target(stack: contextlib.ExitStack, mode: str, binary: str, work: Path, ca: pki.KeyPair,
                     context: ssl.SSLContext) -> Target:
    """A registry (htpasswd or token auth) reached over https through a TLS latency proxy."""
    server = RegistryServer(mode, binary=binary, workdir=work / f"registry-{mode}")
    server.workdir.mkdir()
    stack.callback(server.cleanup)
    server.start()
    token_proxy = None
    rewrites: dict[str, str] = {}
    if server.token_server is not None:
        token_proxy = TLSLatencyProxy(f"http://{server.token_server.host}", context)
        stack.callback(token_proxy.stop)
        token_proxy.start()
        # pindock (go-containerregistry) refuses a token realm on a literal loopback IP; a name is fine.
        rewrites[f"http://{server.token_server.host}"] = f"https://localhost:{token_proxy.port}"
    proxy = TLSLatencyProxy(server.url, context, rewrites=rewrites)
    stack.callback(proxy.stop)
    proxy.start()
    target = Target(f"{'basic' if mode == 'htpasswd' else 'token'}", server, proxy, token_proxy)
    for repo, tag, kind in ONE_FILE_IMAGES:
        seeded = seed_image(server.url, repo, tag, kind, auth=server.push_auth)
        target.digests[f"{proxy.host}/{repo}:{tag}"] = seeded.digest
    return target


def start_bulk_target(stack: contextlib.ExitStack, binary: str, work: Path, images: int) -> Target:
    """The anonymous plain-http registry of bench.py, seeded with ``images`` images."""
    server = RegistryServer("anonymous", binary=binary, workdir=work / "registry-bulk")
    server.workdir.mkdir()
    stack.callback(server.cleanup)
    server.start()
    proxy = LatencyProxy(server.url)
    stack.callback(proxy.stop)
    proxy.start()
    target = Target("bulk", server, proxy, None)
    kinds = ("oci-index", "docker-list", "oci-manifest", "docker-manifest")
    for i in range(images):
        repo, tag = f"bench/img{i:03d}", f"{1 + i % 4}.{i}"
        seeded = seed_image(server.url, repo, tag, kinds[i % 4], platforms=("linux/amd64",))
        target.digests[f"{proxy.host}/{repo}:{tag}"] = seeded.digest
    return target


# ------------------------------------------------------------------------------------------------- the hook's venv


def make_venv(dest: Path, src: Path) -> Path:
    """A virtualenv made as pre-commit makes a hook's (virtualenv, seeded pip and setuptools), with pin-images
    installed from ``src`` by pip and its dependencies linked from this interpreter (offline); returns its bin."""
    subprocess.run([PYTHON, "-m", "virtualenv", "-q", "--no-download", "--no-periodic-update",
                    "--app-data", str(dest.parent / "virtualenv-app-data"), str(dest)], check=True, timeout=300)
    python = dest / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    link_distributions(Path(purelib), runtime_requirements(src / "pyproject.toml"))
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation",
                    "--no-compile", str(src)], check=True, timeout=300, capture_output=True,
                   env={**os.environ, "PIP_NO_WARN_SCRIPT_LOCATION": "1"})
    # pip byte-compiles too, but a stale __pycache__ must never decide what runs: compile once, explicitly.
    subprocess.run([str(python), "-m", "compileall", "-q", str(Path(purelib) / "pin_images")], check=True, timeout=120)
    return dest / "bin"


def source_tree(src: Path, commit: str | None) -> Path:
    """What to install, copied to ``src``: the working tree's package files, or those of ``commit``."""
    src.mkdir()
    if commit is None:
        for name in INSTALL_FILES:
            path = ROOT / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, src / name)
        return src
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit, *INSTALL_FILES],
                             capture_output=True, check=True, timeout=60).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True, timeout=60)
    return src


# ------------------------------------------------------------------------------------------------- measuring


@dataclass
class Sample:
    wall: float
    cpu: float  # user + system seconds, children included: less sensitive than wall time to a busy machine
    counts: dict[str, int]
    audit: str  # "" when the output is right


@dataclass
class Row:
    """One command's samples in one case."""

    label: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def low(self) -> float:
        return min(s.wall for s in self.samples)

    @property
    def high(self) -> float:
        return max(s.wall for s in self.samples)

    def requests(self) -> str:
        c = self.samples[len(self.samples) // 2].counts if self.samples else {}
        if not c:
            return ""
        text = f"{c['head'] + c['get']} manifest / {c['ping']} ping / {c['token']} token / {c['401']} 401"
        if c.get("other"):
            text += f" / {c['other']} other"
        if "conns" in c:
            text += f" / {c['conns']} TLS conns"
        return text

    def problems(self) -> list[str]:
        return sorted({s.audit for s in self.samples if s.audit})


Runner = Callable[[], Sample]


def alternate(rows: Sequence[tuple[Row, Runner]], rounds: int) -> None:
    """``rounds`` rounds of every command, the order rotating each round so no command always runs first."""
    for r in range(rounds):
        shift = r % len(rows)
        for row, run in [*rows[shift:], *rows[:shift]]:
            row.samples.append(run())


def one_file_audit(path: Path, target: Target) -> str:
    text = path.read_text()
    want = one_file_text(target, pinned=True)
    if text == want:
        return ""
    return "output differs from the expected pins: " + repr(text[:120])


@dataclass
class Env:
    work: Path
    bin: Path
    env: dict[str, str]
    pindock: str | None
    skopeo: str | None


def pin_one_file(e: Env, target: Target, argv: Sequence[str]) -> Runner:
    def run() -> Sample:
        case = e.work / "case"
        shutil.rmtree(case, ignore_errors=True)
        case.mkdir()
        (case / "Dockerfile").write_text(one_file_text(target))
        target.reset()
        m = timed([*argv, "Dockerfile"], e.env, case, e.work)
        problem = "" if m.code in (0, 1) else f"exit {m.code}: {(e.work / 'stderr').read_text()[-300:]}"
        return Sample(m.wall, m.cpu, target.counts(), problem or one_file_audit(case / "Dockerfile", target))

    return run


def plain(e: Env, argv: Sequence[str], cwd: Path, expect: int = 0) -> Runner:
    def run() -> Sample:
        m = timed(argv, e.env, cwd, e.work)
        problem = "" if m.code == expect else f"exit {m.code}: {(e.work / 'stderr').read_text()[-300:]}"
        return Sample(m.wall, m.cpu, {}, problem)

    return run


def bulk_runner(e: Env, target: Target, template: Path, argv: Sequence[str]) -> Runner:
    def run() -> Sample:
        repo = e.work / "bulk-case"
        shutil.rmtree(repo, ignore_errors=True)
        shutil.copytree(template, repo)
        target.reset()
        m = timed(argv, e.env, repo, e.work)
        problem = "" if m.code in (0, 1) else f"exit {m.code}: {(e.work / 'stderr').read_text()[-300:]}"
        got = audit(repo, target.digests)
        if got.get("wrong") or got.get("unpinned"):
            problem = problem or f"audit {dict(got)}"
        return Sample(m.wall, m.cpu, target.counts(), problem)

    return run


def skopeo_runner(e: Env, target: Target, images: Sequence[str]) -> Runner:
    refs = e.work / "refs.txt"
    refs.write_text("".join(f"{i}\n" for i in images))

    def run() -> Sample:
        target.reset()
        assert e.skopeo is not None
        m = timed(["bash", "-c", SKOPEO_LOOP], e.env, e.work, e.work, stdin=refs)
        got = m.stdout.read_text().split()
        # Timed, not audited: skopeo 1.9 sends an Accept header without OCI types, so docker-registry 2.8 refuses its
        # OCI manifests and converts docker ones to schema 1 (another digest). The round trips happen either way.
        got = m.stdout.read_text().split()
        failed = got.count("FAILED")
        problem = f"exit {m.code}: {(e.work / 'stderr').read_text()[-300:]}" if m.code else ""
        target.notes["skopeo"] = (f"skopeo's answers are timed, not audited: it failed on {failed} of {len(images)} "
                                  "references (OCI manifests), printed schema 1 digests for the rest (bench/README.md)")
        return Sample(m.wall, m.cpu, target.counts(), problem)

    return run


def import_profile(e: Env, cwd: Path, argv: Sequence[str]) -> list[tuple[int, int, str]]:
    """``-X importtime`` of one run: (self us, cumulative us, module) of the top-level imports, slowest first."""
    done = subprocess.run([str(e.bin / "python"), "-X", "importtime", *argv], cwd=cwd, env=e.env,
                          capture_output=True, text=True, timeout=120, check=False)
    rows = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(3)) <= 2:  # the run's own top-level imports (the site's come before the script)
            rows.append((int(m.group(1)), int(m.group(2)), m.group(4)))
    return rows


# ------------------------------------------------------------------------------------------------- report


@dataclass
class Case:
    title: str
    rows: list[Row]
    ratios: list[tuple[str, float, float | None, str]]  # label, value, target (None: for information), sense
    notes: list[str] = field(default_factory=list)


def ratio(a: Row, b: Row) -> float:
    return a.median / b.median


def render(cases: Sequence[Case], facts: dict[str, str], profile: list[tuple[int, int, str]],
           args: argparse.Namespace) -> str:
    out: list[str] = []
    w = out.append
    w(f"Machine: {facts['cpus']} CPUs, shared; Python {facts['python']}; pindock {facts['pindock']}; "
      f"skopeo {facts['skopeo']}; docker-registry {facts['registry']}. pin-images at {facts['code']}. "
      f"{args.rounds} alternating rounds, medians (min-max in brackets); the cache directory "
      f"{'is emptied before every run (cold)' if args.cold else 'persists across runs (warm)'}.")
    w("")
    for case in cases:
        w(f"### {case.title}")
        w("")
        w("| command | median s | min-max s | median CPU s | requests (median run) |")
        w("|---|---:|---:|---:|---|")
        for row in case.rows:
            w(f"| {row.label} | {row.median:.3f} | {row.low:.3f}-{row.high:.3f} | {row.cpu:.3f} | {row.requests()} |")
        w("")
        for label, value, target, sense in case.ratios:
            if target is None:
                w(f"- {label}: {value:.2f}x")
            else:
                ok = value <= target if sense == "<=" else value >= target
                w(f"- {label}: {value:.2f}x (target {sense} {target:g}x: {'MET' if ok else 'MISSED'})")
        for note in case.notes:
            w(f"- {note}")
        for row in case.rows:
            for problem in row.problems():
                w(f"- WARNING {row.label}: {problem}")
        w("")
    if profile:
        total = sum(cum for _, cum, _ in profile)
        w(f"### `python -X importtime pin-images --check Dockerfile`: top-level imports of the run, {total / 1000:.1f} "
          "ms in all")
        w("")
        w("| module | self ms | cumulative ms |")
        w("|---|---:|---:|")
        for self_us, cum_us, name in sorted(profile, key=lambda r: -r[1])[:12]:
            w(f"| {name} | {self_us / 1000:.1f} | {cum_us / 1000:.1f} |")
        w("")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------- main


def write_docker_config(directory: Path, targets: Sequence[Target]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    auths = {}
    for t in targets:
        if t.server.username:
            token = base64.b64encode(f"{t.server.username}:{t.server.password}".encode()).decode()
            auths[t.proxy.host] = {"auth": token}
    (directory / "config.json").write_text(json.dumps({"auths": auths}, indent=2))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=9, help="alternating rounds per case, medians reported (default 9)")
    p.add_argument("--latency-ms", type=float, nargs="+", default=[20, 50], help="added per round trip (20 50)")
    p.add_argument("--cases", nargs="+", choices=("basic", "token", "check", "bulk"),
                   default=["basic", "token", "check", "bulk"], help="which cases (default all)")
    p.add_argument("--commit", help="measure pin_images as of this commit instead of the working tree")
    p.add_argument("--baseline", metavar="COMMIT", help="also run pin-images as of COMMIT, alternating with the rest")
    p.add_argument("--cold", action="store_true", help="empty the user cache directory before every run")
    p.add_argument("--bulk-files", type=int, default=200)
    p.add_argument("--bulk-images", type=int, default=50)
    p.add_argument("--bulk-latency-ms", type=float, default=20)
    p.add_argument("--no-peers", action="store_true", help="skip pindock and skopeo")
    p.add_argument("--markdown", type=Path, help="also write the report (markdown) to this file")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be positive")
    return args


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    registry_bin = find_registry_bin()
    if registry_bin is None:
        log("docker-registry not found (apt-get install docker-registry, or set PIN_IMAGES_REGISTRY_BIN)")
        return 2
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="pin-images-hook-bench-"))
        stack.callback(shutil.rmtree, work, True)
        home = work / "home"
        home.mkdir()
        log("building the hook's virtualenv ...")
        bindir = make_venv(work / "venv", source_tree(work / "src", args.commit))
        base_bin = None
        if args.baseline:
            base_bin = make_venv(work / "venv-base", source_tree(work / "src-base", args.baseline))
        ca = pki.make_ca(work)
        cert = pki.make_server_cert(work, ca)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert.cert_path, cert.key_path)
        env = clean_env(home, work)
        env.pop("PYTHONPATH")
        cache = work / "cache"
        env.update(DOCKER_CONFIG=str(work / "docker-config"), SSL_CERT_FILE=str(ca.cert_path),
                   XDG_CACHE_HOME=str(cache))
        e = Env(work, bindir, env, None if args.no_peers else find_pindock(),
                None if args.no_peers else shutil.which("skopeo"))
        pin = [str(bindir / "pin-images")]
        base = [str(base_bin / "pin-images")] if base_bin else None
        at = f" at {args.baseline}"
        targets: dict[str, Target] = {}
        try:
            for name, mode in (("basic", "htpasswd"), ("token", "token")):
                if name in args.cases:
                    targets[name] = start_tls_target(stack, mode, registry_bin, work, ca, context)
            write_docker_config(work / "docker-config", list(targets.values()))
            cases: list[Case] = []
            for name, target in targets.items():
                for ms in args.latency_ms:
                    target.set_latency(ms / 1000)
                    log(f"one file, {name}, {ms:g} ms ...")
                    rows = [(Row("`pin-images Dockerfile`"), pin_one_file(e, target, pin))]
                    if e.pindock:
                        rows.append((Row("`pindock run Dockerfile`"), pin_one_file(e, target, [e.pindock, "run"])))
                    if base:
                        rows.append((Row(f"`pin-images Dockerfile`{at}"), pin_one_file(e, target, base)))
                    rows = with_cold(rows, cache, args.cold)
                    alternate(rows, args.rounds)
                    ratios = [("pin-images / pindock", ratio(rows[0][0], rows[1][0]), 1.0, "<=")] if e.pindock else []
                    if base:
                        ratios.append((f"pin-images / pin-images{at}", ratio(rows[0][0], rows[-1][0]), None, ""))
                    title = ("TLS registry (private CA), htpasswd credentials from a docker config" if name == "basic"
                             else "TLS registry, token auth (credentials from a docker config)")
                    cases.append(Case(f"One Dockerfile, 3 references (2 unique): {title}, {ms:g} ms per round trip",
                                      [r for r, _ in rows], ratios))
            profile: list[tuple[int, int, str]] = []
            if "check" in args.cases:
                log("check ...")
                pinned_target = targets.get("basic") or targets.get("token")
                case_dir = work / "check-case"
                case_dir.mkdir()
                if pinned_target is not None:
                    (case_dir / "Dockerfile").write_text(one_file_text(pinned_target, pinned=True))
                else:
                    (case_dir / "Dockerfile").write_text("FROM python:3.12@sha256:" + "0" * 64 + "\n")
                rows = [(Row("`pin-images --check Dockerfile`"), plain(e, [*pin, "--check", "Dockerfile"], case_dir)),
                        (Row("`python -c pass` (the hook venv's interpreter)"),
                         plain(e, [str(bindir / "python"), "-c", "pass"], case_dir))]
                if e.pindock:
                    rows.append((Row("`pindock check Dockerfile`"),
                                 plain(e, [e.pindock, "check", "Dockerfile"], case_dir)))
                if base:
                    rows.append((Row(f"`pin-images --check Dockerfile`{at}"),
                                 plain(e, [*base, "--check", "Dockerfile"], case_dir)))
                alternate(rows, args.rounds)
                ratios = [("pin-images --check / python -c pass", ratio(rows[0][0], rows[1][0]), 4.0, "<=")]
                if base:
                    ratios.append((f"pin-images{at} --check / python -c pass", ratio(rows[-1][0], rows[1][0]), None,
                                   ""))
                cases.append(Case("`--check` on the pinned file (offline)", [r for r, _ in rows], ratios))
                profile = import_profile(e, case_dir, [*pin, "--check", "Dockerfile"])
            if "bulk" in args.cases:
                cases.append(bulk_case(stack, args, e, registry_bin, pin, base))
        except KeyboardInterrupt:
            log("interrupted; stopping the registries and proxies")
            return 130
        facts = {
            "cpus": str(os.cpu_count()),
            "python": sys.version.split()[0],
            "pindock": "1.1.3" if e.pindock else "n/a",
            "skopeo": version([e.skopeo, "--version"]).split()[-1] if e.skopeo else "n/a",
            "registry": version([registry_bin, "--version"]).split()[-1],
            "code": args.commit or version(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]),
        }
        text = render(cases, facts, profile, args)
    print(text)
    print(f"Command: python bench/hook.py {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip())
    print(f"Total time: {time.perf_counter() - started:.0f} s")
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


def with_cold(rows: list[tuple[Row, Runner]], cache: Path, cold: bool) -> list[tuple[Row, Runner]]:
    """With ``--cold``, every run starts without the user cache directory."""
    if not cold:
        return rows

    def wrap(run: Runner) -> Runner:
        def cold_run() -> Sample:
            shutil.rmtree(cache, ignore_errors=True)
            return run()

        return cold_run

    return [(row, wrap(run)) for row, run in rows]


def bulk_case(stack: contextlib.ExitStack, args: argparse.Namespace, e: Env, registry_bin: str, pin: list[str],
              base: list[str] | None) -> Case:
    log(f"bulk: {args.bulk_files} files, {args.bulk_images} images, {args.bulk_latency_ms:g} ms ...")
    target = start_bulk_target(stack, registry_bin, e.work, args.bulk_images)
    target.set_latency(args.bulk_latency_ms / 1000)
    images = list(target.digests)
    template = e.work / "bulk-template"
    write_repo(template, plan_uses(args.bulk_files, images, seed=args.bulk_files * 1000 + args.bulk_images))
    rows = [(Row("`pin-images -q .`"), bulk_runner(e, target, template, [*pin, "-q", "."]))]
    if e.pindock:
        rows.append((Row("`pindock run`"), bulk_runner(e, target, template, [e.pindock, "run"])))
    if e.skopeo:
        rows.append((Row("skopeo loop over the unique references"), skopeo_runner(e, target, images)))
    if base:
        rows.append((Row(f"`pin-images -q .` at {args.baseline}"),
                     bulk_runner(e, target, template, [*base, "-q", "."])))
    alternate(rows, args.rounds)
    ratios: list[tuple[str, float, float | None, str]] = []
    by = {row.label: row for row, _ in rows}
    if e.pindock:
        ratios.append(("pin-images / pindock", ratio(rows[0][0], by["`pindock run`"]), 0.6, "<="))
    if e.skopeo:
        ratios.append(("skopeo loop / pin-images", ratio(by["skopeo loop over the unique references"], rows[0][0]),
                       10.0, ">="))
    notes = list(target.notes.values())
    if base:
        ratios.append((f"pin-images / pin-images at {args.baseline}", ratio(rows[0][0], rows[-1][0]), None, ""))
    title = (f"Bulk: {args.bulk_files} Dockerfiles, {args.bulk_images} unique references, anonymous http registry, "
             f"{args.bulk_latency_ms:g} ms per request")
    return Case(title, [r for r, _ in rows], ratios, notes)


if __name__ == "__main__":
    raise SystemExit(main())
