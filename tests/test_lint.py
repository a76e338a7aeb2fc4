"""The linters run with the tests, so README's one test command (and CI through it) checks them too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(module: str) -> list[str]:
    """The command for a linter installed with the test extra; skipped locally when missing, a failure under CI."""
    found = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0
    if found:
        return [sys.executable, "-m", module]
    if shutil.which(module):
        return [str(shutil.which(module))]
    message = f"{module} is not installed (pip install -e '.[test]')"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def test_ruff_is_clean():
    proc = subprocess.run([*_tool("ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_is_clean():
    # Settings (strict, the package) come from pyproject's [tool.mypy]; no cache, so a stale one cannot hide errors.
    proc = subprocess.run([*_tool("mypy"), "--no-incremental", "--cache-dir", os.devnull, "pin_images"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
