"""Run a piece of the CLI as another user: permission tests mean nothing as root, and the suite runs as root.

The child is forked (not exec'd) because the interpreter may live where `nobody` cannot read it; it drops to
nobody:nogroup, calls the function with stdout and stderr captured, and sends back (result, stdout, stderr).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

NOBODY_UID = 65534
NOGROUP_GID = 65534


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def run_as_nobody(fn: Callable[..., Any], *args: Any) -> tuple[Any, str, str]:
    """``fn(*args)`` in a child running as nobody (as the current user when not root): (result, stdout, stderr)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            out, err = io.StringIO(), io.StringIO()
            if is_root():
                os.setgroups([])
                os.setgid(NOGROUP_GID)
                os.setuid(NOBODY_UID)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                result = fn(*args)
            payload = [result, out.getvalue(), err.getvalue()]
        except BaseException:
            payload = ["child failed", "", traceback.format_exc()]
        with os.fdopen(write_end, "w") as pipe:
            pipe.write(json.dumps(payload, default=str))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    result, out, err = json.loads(data)
    if result == "child failed":
        raise AssertionError(f"the child running as nobody failed:\n{err}")
    return result, out, err


@contextlib.contextmanager
def shared_tmp() -> Iterator[Path]:
    """A temporary directory that nobody can enter (pytest's tmp_path lives under a root-only directory)."""
    path = Path(tempfile.mkdtemp(prefix="pin-images-test-", dir="/tmp"))
    try:
        path.chmod(0o777)
        yield path
    finally:
        for dirpath, dirnames, _ in os.walk(path):
            for d in dirnames:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(dirpath, d), 0o755)
        shutil.rmtree(path, ignore_errors=True)
