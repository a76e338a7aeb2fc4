"""Benchmark: pin-images vs pindock, a skopeo loop and its own --jobs 1, on the real registry behind a latency proxy.

Run from the repository root: ``python bench/bench.py`` (full, ~10 min on 2 cores) or ``--quick`` (~1 min).
See bench/README.md for what is measured and the latest results.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import requests  # noqa: E402
from repo_gen import audit, plan_uses, write_repo  # noqa: E402

from tests.support.proxy import LatencyProxy, ProxiedRequest  # noqa: E402
from tests.support.registry_server import RegistryServer, find_registry_bin  # noqa: E402
from tests.support.seed import KINDS, seed_image  # noqa: E402

JOBS = 8
TOKEN_CHUNK = 50  # scopes per token request: pin_images.registry._MAX_SCOPES_PER_TOKEN
RUN_TIMEOUT = 300.0  # seconds for one tool run; a hung peer must not hang the benchmark
PYTHON = sys.executable  # the interpreter itself, not a pyenv shim (a shim adds ~60 ms of bash per start)
REQ_KINDS = ("head", "get", "ping", "token", "401", "other")


# ------------------------------------------------------------------------------------------------- infrastructure


@dataclass
class Registry:
    """One registry (anonymous or token) with its proxies and seeded images."""

    mode: str
    server: RegistryServer
    proxy: LatencyProxy
    token_proxy: LatencyProxy | None
    images: list[str] = field(default_factory=list)  # 127.0.0.1:PROXYPORT/bench/imgNNN:TAG
    digests: dict[str, str] = field(default_factory=dict)  # image -> sha256 digest of its top manifest

    def set_latency(self, seconds: float) -> None:
        for p in (self.proxy, self.token_proxy):
            if p is not None:
                p.latency = seconds

    def reset(self) -> None:
        for p in (self.proxy, self.token_proxy):
            if p is not None:
                p.reset()

    def counts(self) -> dict[str, int]:
        return count_requests(self.proxy.requests, self.token_proxy.requests if self.token_proxy else [])


def count_requests(registry: Sequence[ProxiedRequest], token: Sequence[ProxiedRequest]) -> dict[str, int]:
    c = dict.fromkeys(REQ_KINDS, 0)
    for r in registry:
        if r.status == 401:
            c["401"] += 1
        if "/manifests/" in r.path:
            c["head" if r.method == "HEAD" else "get"] += 1
        elif r.path.rstrip("/") == "/v2":
            c["ping"] += 1
        else:
            c["other"] += 1  # blobs, tag lists
    c["token"] = len(token)
    c["401"] += sum(1 for r in token if r.status == 401)
    return c


def start_registries(stack: contextlib.ExitStack, modes: Sequence[str], n_images: int, binary: str,
                     work: Path) -> dict[str, Registry]:
    """The anonymous registry, seeded, and (if asked) a token-auth registry serving the same storage."""
    regs: dict[str, Registry] = {}
    storage: Path | None = None
    for mode in ["anonymous", *(m for m in modes if m != "anonymous")]:
        t0 = time.perf_counter()
        workdir = work / f"registry-{mode}"
        workdir.mkdir()
        if storage is not None:
            (workdir / "storage").symlink_to(storage, target_is_directory=True)  # same images, no second seeding
        server = RegistryServer(mode, binary=binary, allow_anonymous_tokens=True, workdir=workdir)
        stack.callback(server.cleanup)
        server.start()
        storage = storage or workdir / "storage"
        token_proxy = None
        rewrites: dict[str, str] = {}
        if server.token_server is not None:
            token_proxy = LatencyProxy(f"http://{server.token_server.host}")
            stack.callback(token_proxy.stop)
            token_proxy.start()
            # go-containerregistry (pindock) refuses a token realm on a literal loopback IP; a name is fine.
            rewrites[f"http://{server.token_server.host}"] = f"http://localhost:{token_proxy.port}"
        proxy = LatencyProxy(server.url, rewrites=rewrites)
        stack.callback(proxy.stop)
        proxy.start()
        reg = regs[mode] = Registry(mode, server, proxy, token_proxy)
        session = requests.Session()
        for i in range(n_images):
            repo, tag = f"bench/img{i:03d}", f"{1 + i % 4}.{i}"
            if mode == "anonymous":
                seeded = seed_image(server.url, repo, tag, KINDS[i % len(KINDS)], platforms=("linux/amd64",),
                                    session=session)
                digest = seeded.digest
            else:
                digest = regs["anonymous"].digests[regs["anonymous"].images[i]]
            image = f"{proxy.host}/{repo}:{tag}"
            reg.images.append(image)
            reg.digests[image] = digest
        session.close()
        log(f"{mode} registry {server.url} behind {proxy.url}: {n_images} images ready in "
            f"{time.perf_counter() - t0:.1f}s")
    return regs


# ------------------------------------------------------------------------------------------------- running tools


@dataclass
class Run:
    wall: float
    rss_mib: float
    code: int
    counts: dict[str, int]
    stats: dict[str, int] = field(default_factory=dict)
    audit: dict[str, int] = field(default_factory=dict)


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


@dataclass
class Measured:
    wall: float  # spawn to exit, seconds
    rss_mib: float  # the command's own peak RSS
    cpu: float  # user + system seconds of the command and its children
    code: int
    stdout: Path


def timed(cmd: Sequence[str], env: dict[str, str], cwd: Path, log_dir: Path, timeout: float = RUN_TIMEOUT,
          stdin: Path | None = None) -> Measured:
    """Run ``cmd`` and measure it.

    Peak RSS comes from GNU time when present: wait4's ru_maxrss of a child forked from this (large) process
    reports the parent's size, since Linux carries the high-water mark across exec.
    """
    out, err, res = log_dir / "stdout", log_dir / "stderr", log_dir / "time"
    res.unlink(missing_ok=True)
    argv = [GNU_TIME, "-f", "%M %U %S", "-o", str(res), *cmd] if GNU_TIME else list(cmd)
    with open(out, "wb") as fo, open(err, "wb") as fe, open(stdin or os.devnull, "rb") as fi:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=fi, stdout=fo, stderr=fe, env=env, cwd=cwd)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C: never leave the child behind
            proc.kill()
            with contextlib.suppress(ChildProcessError):
                os.wait4(proc.pid, 0)
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code < 0:
        raise RuntimeError(f"{cmd[0]} killed by signal {-code} (timeout {timeout}s?); stderr:\n{tail(err)}")
    rss, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields_ = res.read_text().split()
        rss, cpu = int(fields_[-3]) / 1024, float(fields_[-2]) + float(fields_[-1])
    return Measured(wall, rss, cpu, code, out)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def snapshot(work: Path) -> Path:
    """Copy pin_images/ aside: every run of one benchmark measures the same code, even while the tree is edited."""
    src = work / "src"
    shutil.copytree(ROOT / "pin_images", src / "pin_images", ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(src, quiet=1)  # as an installed package has: the first run must not pay for compiling
    return src


def code_version() -> str:
    """HEAD's short hash, plus the pin_images files that differ from it."""
    head = version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "pin_images"], capture_output=True,
                           text=True, timeout=30, check=False).stdout.split("\n")
    changed = [line[3:] for line in dirty if line.strip()]
    return head + (f" + uncommitted changes to {', '.join(changed)}" if changed else "")


def clean_env(home: Path, src: Path) -> dict[str, str]:
    """The caller's environment without credentials, CA bundles or proxies that would change what is measured."""
    drop = re.compile(r"(?i)^(.*_proxy|docker_config|registry_auth_file|requests_ca_bundle|curl_ca_bundle|"
                      r"ssl_cert_(file|dir)|xdg_.*|pythonpath|google_application_credentials)$")
    env = {k: v for k, v in os.environ.items() if not drop.match(k)}
    env.update(HOME=str(home), PYTHONPATH=str(src))
    return env


def find_pindock() -> str | None:
    """The Go binary inside the pindock wheel (not its Python launcher, which would add an interpreter start)."""
    spec = importlib.util.find_spec("pindock")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / "bin" / "pindock"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    return shutil.which("pindock")


@dataclass
class Tools:
    env: dict[str, str]
    work: Path
    pindock: str | None
    skopeo: str | None


def run_pin_images(tools: Tools, reg: Registry, repo: Path, jobs: int) -> Run:
    stats_path = tools.work / "stats.json"
    stats_path.unlink(missing_ok=True)
    env = {**tools.env, "PIN_IMAGES_BENCH_STATS": str(stats_path)}
    reg.reset()
    m = timed([PYTHON, str(BENCH / "_pin_runner.py"), "-q", "--jobs", str(jobs), "."], env, repo, tools.work)
    if m.code not in (0, 1):
        raise RuntimeError(f"pin-images exited {m.code}:\n{tail(tools.work / 'stderr')}")
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    return Run(m.wall, m.rss_mib, m.code, reg.counts(), stats, dict(audit(repo, reg.digests)))


def run_pindock(tools: Tools, reg: Registry, repo: Path) -> Run:
    assert tools.pindock is not None
    reg.reset()
    m = timed([tools.pindock, "run"], tools.env, repo, tools.work)
    if m.code not in (0, 1):
        raise RuntimeError(f"pindock exited {m.code}:\n{tail(tools.work / 'stderr')}")
    return Run(m.wall, m.rss_mib, m.code, reg.counts(), {}, dict(audit(repo, reg.digests)))


SKOPEO_LOOP = 'while read -r ref; do skopeo inspect --tls-verify=false --format "{{.Digest}}" "docker://$ref"; done'


def run_skopeo(tools: Tools, reg: Registry, images: Sequence[str]) -> Run:
    refs = tools.work / "refs.txt"
    refs.write_text("".join(f"{i}\n" for i in images))
    reg.reset()
    m = timed(["bash", "-c", SKOPEO_LOOP], tools.env, tools.work, tools.work, stdin=refs)
    if m.code != 0:
        raise RuntimeError(f"skopeo loop exited {m.code}:\n{tail(tools.work / 'stderr')}")
    got = m.stdout.read_text().split()
    ok = sum(1 for image, digest in zip(images, got) if reg.digests[image] == digest)
    return Run(m.wall, m.rss_mib, m.code, reg.counts(), {}, {"ok": ok, "wrong": len(images) - ok})


# ------------------------------------------------------------------------------------------------- the matrix


@dataclass
class Cell:
    """All runs of one tool on one (mode, latency, files, images) case."""

    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> Run:
        ordered = sorted(self.runs, key=lambda r: r.wall)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)


def floor_seconds(n: int, jobs: int, latency: float, mode: str) -> float:
    """ceil(N / jobs) manifest round trips, plus (token mode) one 401 and ceil(N / chunk) token round trips."""
    token_trips = 1 + math.ceil(n / TOKEN_CHUNK) if mode == "token" else 0
    return (math.ceil(n / jobs) + token_trips) * latency


def fresh_copy(template: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(template, dest)
    return dest


def run_matrix(args: argparse.Namespace, tools: Tools, regs: dict[str, Registry],
               results: dict[tuple[Any, ...], Cell]) -> None:
    templates: dict[tuple[int, int], tuple[Path, int]] = {}
    for f in args.files:
        for n in args.images:
            uses = plan_uses(f, regs["anonymous"].images[:n], seed=f * 1000 + n)
            path = tools.work / "templates" / f"f{f}-n{n}"
            total = write_repo(path, uses)
            templates[(f, n)] = (path, total)
    for mode in args.modes:
        reg = regs[mode]
        for latency in args.latencies:
            reg.set_latency(latency)
            for rep in range(args.runs):
                log(f"{mode} registry, {latency * 1000:.0f} ms: run {rep + 1}/{args.runs}")
                for n in args.images:
                    images = reg.images[:n]
                    slow_ok = n <= 50 or rep < args.slow_runs
                    if mode == "anonymous" and tools.skopeo and slow_ok:
                        # The loop resolves the unique references, so it does not depend on the file count.
                        results.setdefault(("skopeo", mode, latency, n), Cell()).runs.append(
                            run_skopeo(tools, reg, images))
                    for f in args.files:
                        template, _ = templates[(f, n)]
                        if mode != "anonymous":
                            template = retarget(template, regs["anonymous"], reg, tools.work / "retargeted")
                        key = (mode, latency, f, n)
                        repo = tools.work / "repo"
                        names = ["pin"]
                        if mode == "anonymous" and slow_ok:
                            names.append("pin1")
                        if tools.pindock and (mode == "anonymous" or rep < args.slow_runs):
                            names.append("pindock")
                        for name in names:
                            copy = fresh_copy(template, repo)
                            if name == "pindock":
                                run = run_pindock(tools, reg, copy)
                            else:
                                run = run_pin_images(tools, reg, copy, JOBS if name == "pin" else 1)
                            if run.audit.get("wrong") or run.audit.get("unpinned"):
                                log(f"  warning: {name} {key}: {run.audit}")
                            results.setdefault((name, *key), Cell()).runs.append(run)
                        log(f"  F={f:<4} N={n:<3} pin {results[('pin', *key)].runs[-1].wall:6.2f}s" + "".join(
                            f"  {name} {results[(name, *key)].runs[-1].wall:6.2f}s" for name in names[1:]))


def retarget(template: Path, src: Registry, dst: Registry, dest_root: Path) -> Path:
    """The same repository with the anonymous registry's host replaced by ``dst``'s (cached per template)."""
    dest = dest_root / template.name
    if not dest.exists():
        old, new = src.proxy.host, dst.proxy.host
        for path in template.rglob("Dockerfile"):
            target = dest / path.relative_to(template)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text().replace(old, new))
    return dest


# ------------------------------------------------------------------------------------------------- --check


@dataclass
class CheckResult:
    files: int
    uses: int
    walls: list[float]
    rss: list[float]
    cpus: list[float]
    codes: list[int]
    import_top: list[tuple[int, int, str]]  # (self us, cumulative us, module) of `-X importtime -c import cli`
    heavy: list[str]  # heavy modules imported by an actual --check run


HEAVY = ("requests", "urllib3", "google.auth", "google", "certifi", "charset_normalizer", "idna", "ssl")


def run_check(args: argparse.Namespace, tools: Tools, reg: Registry) -> CheckResult:
    files = args.check_files
    uses = plan_uses(files, reg.images, seed=7)
    repo = tools.work / "pinned"
    total = write_repo(repo, uses, reg.digests)
    cmd = [PYTHON, "-m", "pin_images", "--check", "-q", "."]
    walls, rss, cpus, codes = [], [], [], []
    for _ in range(args.check_runs):
        m = timed(cmd, tools.env, repo, tools.work)
        walls.append(m.wall)
        rss.append(m.rss_mib)
        cpus.append(m.cpu)
        codes.append(m.code)
    # Modules an actual --check run imports (importtime lists every module imported, whoever imports it).
    proc = subprocess.run([PYTHON, "-X", "importtime", "-m", "pin_images", "--check", "-q", "."], cwd=repo,
                          env=tools.env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    run_mods = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    site_mods = site_imports(tools)
    heavy = sorted(m for m in run_mods - site_mods if any(m == h or m.startswith(h + ".") for h in HEAVY))
    proc = subprocess.run([PYTHON, "-X", "importtime", "-c", "import pin_images.cli"], cwd=ROOT, env=tools.env,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    entries = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            entries.append((int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)))
    # pin_images.cli itself and what it imports directly (one level down in the tree), by cumulative time.
    top: list[tuple[int, int, str]] = []
    group: list[tuple[int, int, str]] = []  # children are printed before their parent
    for self_us, cum_us, indent, name in entries:
        if len(indent) == 3:
            group.append((self_us, cum_us, name))
        elif len(indent) == 1:
            if name == "pin_images.cli":
                top = [(self_us, cum_us, name), *sorted(group, key=lambda e: -e[1])[:12]]
            group = []
    return CheckResult(files, total, walls, rss, cpus, codes, top, heavy)


def site_imports(tools: Tools) -> set[str]:
    """Modules the interpreter imports before any user code (site-packages .pth files of this machine)."""
    proc = subprocess.run([PYTHON, "-X", "importtime", "-c", "pass"], env=tools.env, capture_output=True, text=True,
                          timeout=60, check=False)
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


# ------------------------------------------------------------------------------------------------- report


def fmt_counts(c: dict[str, int]) -> str:
    text = f"{c['head']}/{c['get']}/{c['ping']}/{c['token']}/{c['401']}"
    return text + (f" +{c['other']}" if c["other"] else "")


def wall_text(cell: Cell | None, runs: int) -> str:
    if cell is None:
        return "n/a"
    n = len(cell.runs)
    return f"{cell.wall:.2f}" + ("" if n >= runs else f" ({n} run{'s' * (n != 1)})")


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "n/a"


def report(args: argparse.Namespace, tools: Tools, results: dict[tuple[Any, ...], Cell],
           check: CheckResult | None, machine: dict[str, str]) -> str:
    out: list[str] = []
    w = out.append
    w(f"Machine: {machine['cpus']} CPUs ({machine['cpu']}), shared and noisy; Python {machine['python']}; "
      f"`python -c pass` {machine['python_start']}; docker-registry {machine['registry']}; "
      f"pindock {machine['pindock']}; skopeo {machine['skopeo']}. pin-images at {machine['code']}.")
    w("")
    w(f"Wall seconds are medians of {args.runs} runs; pin-images runs as a subprocess (`python bench/_pin_runner.py`, "
      "i.e. `python -m pin_images` plus a stats dump), so interpreter start and imports count, as they do for the "
      "peers. Requests are counted by the proxy, as HEAD/GET manifest / `GET /v2/` / token / 401 (+other: blobs, "
      "tag lists).")
    for mode in ("anonymous", "token"):
        if mode not in args.modes:
            continue
        for latency in args.latencies:
            ms = f"{latency * 1000:.0f} ms"
            w("")
            w(f"### {mode} registry, {ms} per request, jobs {JOBS}")
            w("")
            head = ["F", "N", "floor s", "pin-images s", "x floor", "pin requests", "client stats", "RSS MiB"]
            if mode == "anonymous":
                head += ["--jobs 1 s"]
            if tools.pindock:
                head += ["pindock s", "pindock requests"]
            if mode == "anonymous" and tools.skopeo:
                head += ["skopeo loop s", "skopeo requests", "skopeo / pin"]
            if tools.pindock:
                head += ["pin / pindock"]
            w("| " + " | ".join(head) + " |")
            w("|" + "|".join("---:" for _ in head) + "|")
            for f in args.files:
                for n in args.images:
                    key = (mode, latency, f, n)
                    pin = results.get(("pin", *key))
                    if pin is None:
                        continue
                    fl = floor_seconds(n, JOBS, latency, mode)
                    m = pin.median
                    st = m.stats
                    stats = (f"{st.get('manifest_head', 0)}/{st.get('manifest_get', 0)}/{st.get('ping', 0)}/"
                             f"{st.get('token', 0)}/{st.get('unauthorized', 0)}") if st else "n/a"
                    row = [str(f), str(n), f"{fl:.2f}", f"{pin.wall:.2f}", ratio(pin.wall, fl), fmt_counts(m.counts),
                           stats, f"{max(r.rss_mib for r in pin.runs):.0f}"]
                    if mode == "anonymous":
                        row += [wall_text(results.get(("pin1", *key)), args.runs)]
                    pd = results.get(("pindock", *key))
                    if tools.pindock:
                        row += [wall_text(pd, args.runs), fmt_counts(pd.median.counts) if pd else "n/a"]
                    if mode == "anonymous" and tools.skopeo:
                        sk = results.get(("skopeo", mode, latency, n))
                        row += [wall_text(sk, args.runs), fmt_counts(sk.median.counts) if sk else "n/a",
                                ratio(sk.wall if sk else None, pin.wall)]
                    if tools.pindock:
                        row += [ratio(pin.wall, pd.wall if pd else None)]
                    w("| " + " | ".join(row) + " |")
    if not tools.skopeo:
        w("")
        w("skopeo not installed (`apt-get install -y skopeo`): its columns are left out.")
    if not tools.pindock:
        w("")
        w("pindock not installed (`pip install pindock`): its columns are left out.")
    if check is not None:
        w("")
        w(f"### `pin-images --check` on {check.files} pinned files ({check.uses} references)")
        w("")
        w(f"Wall (subprocess, `python -m pin_images --check -q .`): median {statistics.median(check.walls):.3f} s, "
          f"min {min(check.walls):.3f} s over {len(check.walls)} runs; CPU (user+sys) median "
          f"{statistics.median(check.cpus):.3f} s; peak RSS {max(check.rss):.1f} MiB; "
          f"exit codes {sorted(set(check.codes))}.")
        w("")
        w("Heavy modules imported by the --check run (beyond what the interpreter's site imports anyway): "
          + (", ".join(check.heavy) if check.heavy else "none (no requests, urllib3, google.auth)") + ".")
        w("")
        w("`python -X importtime -c \"import pin_images.cli\"`: the module and its direct imports by cumulative time "
          "(the interpreter's own start, with this machine's site-packages hooks, is in `python -c pass` above):")
        w("")
        w("| module | self ms | cumulative ms |")
        w("|---|---:|---:|")
        for self_us, cum_us, name in check.import_top:
            w(f"| {name} | {self_us / 1000:.1f} | {cum_us / 1000:.1f} |")
    w("")
    w("### Targets")
    w("")
    for line in targets(args, tools, results, check):
        w(f"- {line}")
    return "\n".join(out) + "\n"


def targets(args: argparse.Namespace, tools: Tools, results: dict[tuple[Any, ...], Cell],
            check: CheckResult | None) -> Iterator[str]:
    def verdict(ok: bool) -> str:
        return "MET" if ok else "MISSED"

    lat = 0.05 if 0.05 in args.latencies else max(args.latencies)
    n = max(args.images)
    if (n, lat) != (200, 0.05):
        yield (f"(the wall-time targets are defined at N=200, 50 ms; this run's largest case, N={n} at "
               f"{lat * 1000:.0f} ms, is shown for orientation only)")
    for mode in args.modes:
        for f in args.files:
            pin = results.get(("pin", mode, lat, f, n))
            if pin is None:
                continue
            fl = floor_seconds(n, JOBS, lat, mode)
            yield (f"{verdict(pin.wall <= 1.5 * fl)}: wall <= 1.5x floor ({mode}, {lat * 1000:.0f} ms, F={f}, N={n}): "
                   f"{pin.wall:.2f} s vs floor {fl:.2f} s = {pin.wall / fl:.2f}x")
            sk = results.get(("skopeo", mode, lat, n))
            if sk is not None:
                yield (f"{verdict(sk.wall >= 10 * pin.wall)}: >= 10x faster than skopeo ({mode}, F={f}, N={n}): "
                       f"{sk.wall / pin.wall:.1f}x")
            pd = results.get(("pindock", mode, lat, f, n))
            if pd is not None:
                yield (f"{verdict(pin.wall <= 0.6 * pd.wall)}: <= 0.6x pindock ({mode}, F={f}, N={n}): "
                       f"{pin.wall / pd.wall:.2f}x")
    bad: list[str] = []
    for key, cell in results.items():
        if key[0] != "pin":
            continue
        _, mode, _lat, f, n = key
        for r in cell.runs:
            c = r.counts
            if c["head"] + c["get"] != n:
                bad.append(f"{mode} F={f} N={n}: {c['head'] + c['get']} manifest requests")
            if c["token"] > math.ceil(n / TOKEN_CHUNK):
                bad.append(f"{mode} F={f} N={n}: {c['token']} token requests")
            if c["401"] > 1:
                bad.append(f"{mode} F={f} N={n}: {c['401']} 401s")
            if r.audit.get("wrong") or r.audit.get("unpinned"):
                bad.append(f"{mode} F={f} N={n}: output {r.audit}")
    pins = [k for k in results if k[0] == "pin"]
    yield (f"{verdict(not bad)}: request counts in all {sum(len(results[k].runs) for k in pins)} pin-images runs "
           "(manifest requests == unique refs, token requests <= ceil(repos/50), 401s <= 1 registry)"
           + ("" if not bad else ": " + "; ".join(sorted(set(bad))[:8])))
    if check is not None:
        wall = statistics.median(check.walls)
        yield f"{verdict(wall < 0.5)}: --check on {check.files} files < 0.5 s: {wall:.3f} s"
        yield f"{verdict(max(check.rss) < 60)}: --check peak RSS < 60 MiB: {max(check.rss):.1f} MiB"
        yield (f"{verdict(not any(m.startswith(('requests', 'google.auth')) for m in check.heavy))}: --check imports "
               "neither requests nor google.auth")


# ------------------------------------------------------------------------------------------------- main


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def version(cmd: Sequence[str]) -> str:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return text[0].strip() if text else "n/a"


def machine_facts(tools: Tools, registry_bin: str) -> dict[str, str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    starts = []
    for _ in range(5):
        starts.append(timed([PYTHON, "-c", "pass"], tools.env, tools.work, tools.work).wall)
    pindock = "n/a"
    if tools.pindock:
        with contextlib.suppress(Exception):
            from importlib.metadata import version as dist_version

            pindock = dist_version("pindock")
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "python_start": f"{statistics.median(starts) * 1000:.0f} ms",
        "registry": version([registry_bin, "--version"]).split()[-1] if registry_bin else "n/a",
        "pindock": pindock,
        "skopeo": version([tools.skopeo, "--version"]).split()[-1] if tools.skopeo else "n/a",
        "code": code_version(),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small subset for a fast check (~1 min)")
    p.add_argument("--runs", type=int, help="runs per case, median reported (default 3; 1 with --quick)")
    p.add_argument("--files", type=int, nargs="+", help="Dockerfile counts F (default 10 100 1000)")
    p.add_argument("--images", type=int, nargs="+", help="unique image counts N (default 10 50 200)")
    p.add_argument("--latency-ms", type=float, nargs="+", help="proxy latency per request (default 20 50)")
    p.add_argument("--modes", nargs="+", choices=("anonymous", "token"), help="registry modes (default both)")
    p.add_argument("--slow-runs", type=int, default=1,
                   help="runs of the slow columns (skopeo loop and --jobs 1 for N > 50, pindock on the token "
                   "registry) (default 1)")
    p.add_argument("--check-files", type=int, default=1000, help="pinned files for the --check timing")
    p.add_argument("--no-peers", action="store_true", help="skip pindock and skopeo")
    p.add_argument("--markdown", type=Path, help="also write the report (markdown) to this file")
    args = p.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.files = args.files or ([100] if args.quick else [10, 100, 1000])
    args.images = args.images or ([10, 50] if args.quick else [10, 50, 200])
    args.latencies = [ms / 1000 for ms in (args.latency_ms or ([50] if args.quick else [20, 50]))]
    args.modes = args.modes or ["anonymous", "token"]
    args.check_runs = 3 if args.quick else 7
    if min(args.files + args.images + [args.runs]) < 1:
        p.error("counts must be positive")
    if max(args.images) > 999:
        p.error("at most 999 images")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    registry_bin = find_registry_bin()
    if registry_bin is None:
        log("docker-registry not found (apt-get install docker-registry, or set PIN_IMAGES_REGISTRY_BIN)")
        return 2

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="pin-images-bench-"))
        stack.callback(shutil.rmtree, work, True)
        home = work / "home"
        home.mkdir()
        tools = Tools(clean_env(home, snapshot(work)), work, None if args.no_peers else find_pindock(),
                      None if args.no_peers else shutil.which("skopeo"))
        try:
            # The anonymous registry always runs: templates are written against its names.
            regs = start_registries(stack, args.modes, max(args.images), registry_bin, work)
            machine = machine_facts(tools, registry_bin)
            results: dict[tuple[Any, ...], Cell] = {}
            run_matrix(args, tools, regs, results)
            regs["anonymous"].set_latency(0.0)
            check = run_check(args, tools, regs["anonymous"]) if args.check_files else None
        except KeyboardInterrupt:
            log("interrupted; stopping the registry and proxies")
            return 130
        text = report(args, tools, results, check, machine)
    print(text)
    print(f"Command: python bench/bench.py {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip())
    print(f"Total time: {time.perf_counter() - started:.0f} s")
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
