"""Watch pin-images pin the Dockerfiles, Compose, Kubernetes, CI and devcontainer files in examples/ offline.

    pip install . && sudo apt-get install docker-registry    # once
    python demo/run_demo.py                                  # from the root of a clone

It starts the real distribution registry (Debian's ``docker-registry``) on 127.0.0.1 with a free port, seeds every
image that examples/ uses (multi-arch OCI indexes, under the same repository paths), copies examples/ to a temporary
directory and runs pin-images on the copy with ``--registry-mirror REGISTRY=http://127.0.0.1:PORT`` for each registry
the examples name: first ``--dry-run`` (the diff), then for real, then ``--check``. examples/ itself is not touched.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this clone's pin_images and its tests/support helpers

from pin_images import files, kinds  # noqa: E402
from pin_images.errors import PinImagesError  # noqa: E402
from pin_images.reference import Reference, parse  # noqa: E402

EXAMPLES = ROOT / "examples"


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def images_used(examples: Path) -> list[Reference]:
    """Every reference that pin-images would resolve in ``examples``, read the way pin-images reads them."""
    found: dict[str, Reference] = {}
    discovered = files.discover([str(examples)])
    if discovered.errors:
        raise discovered.errors[0]
    for path in discovered.paths:
        kind = kinds.kind_for_named_file(path)
        if kind is None:
            continue
        for use in kinds.scan_file(kind, files.read_file(path), path, kinds.ScanOptions()).uses:
            # Ignored by pragma, built from platform ARGs, from an ARG with no value or a variable: left alone.
            if use.status != "ok" or use.image is None:
                continue
            ref = parse(use.image)
            if ref.digest is None or ref.tag is not None:
                found.setdefault(f"{ref.registry}/{ref.repository}:{ref.tag_or_default}", ref)
    return list(found.values())


def pin_images(args: list[str], cwd: Path, env: dict[str, str]) -> int:
    shown = " ".join(shlex.quote(a) for a in args)
    print(f"$ pin-images {shown}", flush=True)
    done = subprocess.run([sys.executable, "-m", "pin_images", *args], cwd=cwd, env=env)
    print(f"(exit status {done.returncode})", flush=True)
    return done.returncode


def clean_env(tmp: Path) -> dict[str, str]:
    """No docker/podman logins of this machine, no proxy between us and 127.0.0.1, this clone's code."""
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR")}
    (tmp / "docker-config").mkdir()
    env["DOCKER_CONFIG"] = str(tmp / "docker-config")
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keep", action="store_true", help="keep the pinned copy of examples/ and print its path")
    args = parser.parse_args(argv)

    try:
        from tests.support.registry_server import RegistryServer, RegistryStartError, find_registry_bin
        from tests.support.seed import seed_image
    except ImportError as exc:
        print(f"demo: cannot load the registry helpers ({exc}); run `pip install .` in this clone first",
              file=sys.stderr)  # fmt: skip
        return 2
    binary = find_registry_bin()
    if binary is None:
        print("demo: the distribution registry is not installed: sudo apt-get install docker-registry "
              "(or set PIN_IMAGES_REGISTRY_BIN to its path)", file=sys.stderr)  # fmt: skip
        return 2

    try:
        refs = images_used(EXAMPLES)
    except PinImagesError as exc:
        print(f"demo: cannot read examples/: {exc}", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="pin-images-demo-"))
    workdir = tmp / "examples"
    env = clean_env(tmp)
    failures: list[str] = []
    try:
        say(f"starting the distribution registry ({binary}) on 127.0.0.1")
        try:
            (tmp / "registry").mkdir()
            server = RegistryServer("anonymous", binary=binary, workdir=tmp / "registry").start()
        except RegistryStartError as exc:
            print(f"demo: the registry did not start: {exc}", file=sys.stderr)
            return 2
        try:
            print(f"listening at {server.url}")
            say(f"seeding the {len(refs)} images examples/ uses, each a multi-arch OCI index")
            names = {ref: f"{ref.registry}/{ref.repository}:{ref.tag_or_default}" for ref in refs}
            width = max(map(len, names.values()), default=0)
            for ref, name in sorted(names.items(), key=lambda item: item[1]):
                image = seed_image(server.url, ref.repository, ref.tag_or_default)
                print(f"  {name:<{width}}  {image.digest}")

            mirrors: list[str] = []
            for registry in sorted({ref.registry for ref in refs}):
                mirrors += ["--registry-mirror", f"{registry}={server.url}"]

            say(f"copying examples/ to {workdir}")
            shutil.copytree(EXAMPLES, workdir)
            common = ["--no-config", *mirrors, "."]

            say("what would change (--dry-run writes nothing)")
            if pin_images(["--dry-run", *common], workdir, env) != 1:
                failures.append("--dry-run should exit 1 (files would change)")

            say("pinning for real")
            if pin_images(common, workdir, env) != 1:
                failures.append("the rewrite should exit 1 (files changed)")

            say("checking, as CI or the pre-commit hook would (no network)")
            if pin_images(["--check", *common], workdir, env) != 0:
                failures.append("--check should pass after pinning")
        finally:
            say("stopping the registry")
            server.cleanup()
    finally:
        if args.keep:
            print(f"the pinned copy is in {workdir}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if failures:
        print("\ndemo failed: " + "; ".join(failures), file=sys.stderr)
        return 1
    print("\ndemo done: every image in examples/ is pinned to the digest the registry serves")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
