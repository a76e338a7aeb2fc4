"""Fuzz the scanner (scan, instructions, apply of its own edits) and reference.parse for a bounded time.

    python bench/fuzz.py --seconds 60

Runs the fuzz targets and the byte-exactness properties (scan/apply, and main() on real files with the fake
resolver) of tests/test_properties.py under the ``pin-images-fuzz`` hypothesis profile, batch after batch with
fresh seeds, until the time is up. Any exception other than pin_images' own errors is a bug: it is printed with
the (shrunk) input, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("PIN_IMAGES_HYPOTHESIS_PROFILE", "pin-images-fuzz")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests import test_properties as props  # noqa: E402


def targets(batch: int, counter: dict[str, int]):
    run = settings(settings.get_profile("pin-images-fuzz"), max_examples=batch)

    def counted(name, check):
        def body(value):
            counter[name] = counter.get(name, 0) + 1
            check(value)

        return body

    bytes_or_text = st.binary(max_size=2000) | props.dockerish_text.map(lambda t: t.encode("utf-8", "surrogateescape"))
    return {
        "scanner/random": run(given(bytes_or_text)(counted("scanner/random", props.check_scanner))),
        "scanner/dockerfiles": run(
            given(props.dockerfiles().map(lambda c: c[0]))(counted("scanner/dockerfiles", props.check_scanner))
        ),
        "byte-exact/dockerfiles": run(
            given(props.dockerfiles())(
                counted("byte-exact/dockerfiles", props.test_scan_and_apply_insert_only_digests.hypothesis.inner_test)
            )
        ),
        "main/fuzzed-text": run(
            given(st.lists(st.sampled_from(props.FRAGMENTS), max_size=40).map("".join))(
                counted("main/fuzzed-text", lambda t: props.check_main(t.encode("utf-8", "surrogateescape"), []))
            )
        ),
        "main/dockerfiles": run(
            given(props.dockerfiles())(counted("main/dockerfiles", lambda c: props.check_main(*c)))
        ),
        "reference.parse": run(
            given(props.reference_text | st.text(max_size=300))(counted("reference.parse", props.check_reference))
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="how long to run (default 60)")
    p.add_argument("--batch", type=int, default=500, help="examples per target per round (default 500)")
    args = p.parse_args(argv)
    counter: dict[str, int] = {}
    failures = 0
    deadline = time.monotonic() + args.seconds
    funcs = targets(args.batch, counter)
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        for name, fn in funcs.items():
            if time.monotonic() >= deadline:
                break
            try:
                fn()
            except Exception:
                failures += 1
                print(f"FAILURE in {name}:", file=sys.stderr)
                traceback.print_exc()
    total = sum(counter.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counter.items()))
    print(f"fuzz: {total} examples in {args.seconds:g}s ({rounds} rounds): {detail}; {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
