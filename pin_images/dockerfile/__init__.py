"""The Dockerfile file kind: every image reference with its exact character span, and the byte-exact splice.

``lexer`` follows BuildKit's parser (we pin what `docker build` reads), ``expand`` its shell-style ARG expansion,
``scan`` decides what is an image reference.
"""

from __future__ import annotations

from ..uses import IGNORED, INVALID, OK, OVERRIDDEN, PLATFORM_ARG, UNRESOLVED, Edit, ImageUse, Status, apply
from .lexer import KNOWN_INSTRUCTIONS, Heredoc, Instruction, instructions
from .scan import PLATFORM_ARGS, scan, scan_file, scan_uses
from .words import Token

__all__ = [
    "IGNORED", "INVALID", "KNOWN_INSTRUCTIONS", "OK", "OVERRIDDEN", "PLATFORM_ARG", "PLATFORM_ARGS", "UNRESOLVED",
    "Edit", "Heredoc", "ImageUse", "Instruction", "Status", "Token", "apply", "instructions", "scan", "scan_file",
    "scan_uses",
]  # fmt: skip
