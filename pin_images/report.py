"""Turn a run's findings into output: text lines, JSON, GitHub annotations or SARIF; and the exit code."""

from __future__ import annotations

import os
from typing import IO, Any

from . import __version__, files
from .config import FORMATS as FORMATS  # one list, validated by the config and offered by the CLI
from .errors import PinImagesError
from .resolve import CHANGES, ERROR, FAILS_CHECK, FILE_NOTE, PINNED, SKIPPED, STALE, UNPINNED, UPDATED, Finding

JSON_SCHEMA_VERSION = 1
EXIT_OK, EXIT_CHANGED, EXIT_ERROR = 0, 1, 2
INFO_URI = "https://github.com/pin-images/pin-images"


class Report:
    """Everything a run found and did. A plain class: one per run, and a dataclass costs every run's start-up more."""

    def __init__(
        self,
        findings: list[Finding] | None = None,
        file_errors: list[PinImagesError] | None = None,
        changed_files: list[str] | None = None,
        diffs: list[str] | None = None,
        files_scanned: int = 0,
        mode: str = "write",  # write | check | dry-run
        update: bool = False,
        platform: str | None = None,
        config: str | None = None,  # the configuration file that applied, if any
        excluded: list[str] | None = None,  # named paths an exclude pattern skipped
    ) -> None:
        self.findings = findings if findings is not None else []
        self.file_errors = file_errors if file_errors is not None else []
        self.changed_files = changed_files if changed_files is not None else []
        self.diffs = diffs if diffs is not None else []
        self.files_scanned = files_scanned
        self.mode = mode
        self.update = update
        self.platform = platform
        self.config = config
        self.excluded = excluded if excluded is not None else []


def column_of(f: Finding) -> int | None:
    """1-based column of the reference text, or None when the scanner did not say."""
    return getattr(f, "column", 0) or None


def kind_of(f: Finding) -> str:
    return getattr(f, "kind", None) or "dockerfile"


def exit_code(report: Report) -> int:
    """2 on any error; 1 if files changed, would change, or a check failed; else 0."""
    if report.file_errors or any(f.status == ERROR for f in report.findings):
        return EXIT_ERROR
    if report.changed_files or any(f.status in FAILS_CHECK for f in report.findings):
        return EXIT_CHANGED
    return EXIT_OK


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def finding_line(f: Finding) -> str:
    """One line for one finding, starting with ``path:line:``; an ARG-default reference also says where it is used."""
    line = _finding_text(f)
    return f"{line} ({f.via})" if f.via else line


def _finding_text(f: Finding) -> str:
    where = f"{f.path}:{f.line}"
    if f.written == FILE_NOTE:
        return f"{where}: {'warning' if f.warning else 'note'}: {f.message}"
    name = f.ref.without_digest if f.ref else f.shown
    if f.status in (PINNED, UPDATED):
        old = f.ref.original if f.ref else f.shown
        new = f.pinned_as or f"{name}@{f.new_digest}"
        return f"{where}: {old} -> {new}" + (f" (warning: {f.message})" if f.warning else "")
    if f.status == UNPINNED:
        # Say why when there is more to say than the status (e.g. the failure that held the file back).
        why = f.message if f.message and f.message != "is not pinned" else None
        return f"{where}: {f.shown} is not pinned" + (f": {why}" if why else "")
    if f.status == STALE:
        return f"{where}: {name} is stale: pinned {f.old_digest}, the tag now points to {f.new_digest}"
    if f.status == ERROR:
        return f"{where}: {f.message}" if f.ref is None else f"{where}: {f.shown}: {f.message}"
    if f.status == SKIPPED:
        return f"{where}: {'warning: ' if f.warning else ''}{f.shown} skipped: {f.message}"
    return f"{where}: {f.shown} is pinned"


def summary(report: Report) -> str:
    counts: dict[str, int] = {}
    references = [f for f in report.findings if f.written != FILE_NOTE]  # a file's notes are not references
    for f in references:
        counts[f.status] = counts.get(f.status, 0) + 1
    would = report.mode != "write"
    parts = []
    if counts.get(PINNED):
        parts.append(f"{'would pin' if would else 'pinned'} {_plural(counts[PINNED], 'reference')}")
    if counts.get(UPDATED):
        parts.append(f"{'would update' if would else 'updated'} {_plural(counts[UPDATED], 'reference')}")
    if parts:
        parts[-1] += f" in {_plural(len(report.changed_files), 'file')}"
    if counts.get(UNPINNED):
        parts.append(f"{_plural(counts[UNPINNED], 'reference')} unpinned")
    if counts.get(STALE):
        parts.append(f"{counts[STALE]} stale")
    errors = counts.get(ERROR, 0) + len(report.file_errors)
    if errors:
        parts.append(_plural(errors, "error"))
    if parts:
        return ", ".join(parts)
    # A named path that an exclude skipped is said, so "0 files scanned" never looks like a file that was read.
    excluded = f", {_plural(len(report.excluded), 'named path')} excluded" if report.excluded else ""
    scanned = f" ({_plural(report.files_scanned, 'file')} scanned{excluded})"
    skipped = counts.get(SKIPPED, 0)
    n = len(references) - skipped  # skipped references are not pinned; say so rather than count them
    if n:
        text = f"all {_plural(n, 'reference')} pinned" + (f", {skipped} skipped" if skipped else "")
    else:
        text = f"{_plural(skipped, 'reference')} skipped" if skipped else "no image references found"
    return text + scanned


def to_json(report: Report) -> dict[str, Any]:
    """The ``--format json`` document; its schema is docs/output.schema.json (versioned by ``version``)."""
    return {
        "version": JSON_SCHEMA_VERSION,
        "tool": {"name": "pin-images", "version": __version__},
        "mode": report.mode,
        "update": report.update,
        "platform": report.platform,
        "config": report.config,
        "exit_code": exit_code(report),
        "summary": summary(report),
        "files_scanned": report.files_scanned,
        "files_changed": report.changed_files,
        "references": [
            {
                "file": f.path,
                "line": f.line,
                "column": column_of(f),
                "kind": kind_of(f),
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


def _gh_escape(value: str, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def github_lines(report: Report) -> list[str]:
    """GitHub Actions workflow commands: errors for failures, warnings for warnings, notices for edits."""
    out = []
    for e in report.file_errors:
        path = getattr(e, "path", "") or ""
        line = getattr(e, "line", None)
        props = f"file={_gh_escape(path, True)}" + (f",line={line}" if line else "") if path else ""
        out.append(f"::error {props}::{_gh_escape(str(e))}" if props else f"::error::{_gh_escape(str(e))}")
    for f in report.findings:
        if f.status == ERROR or f.status in FAILS_CHECK:
            level = "warning" if f.warning and f.status != ERROR else "error"
        elif f.status in CHANGES:
            level = "notice"
        elif f.warning:
            level = "warning"
        else:
            continue
        column = column_of(f)
        col = f",col={column}" if column else ""
        kind = kind_of(f)
        title = "pin-images" if kind == "dockerfile" else f"pin-images ({kind})"
        props = f"file={_gh_escape(f.path, True)},line={f.line}{col},title={title}"
        out.append(f"::{level} {props}::{_gh_escape(finding_line(f))}")
    return out


_RULES = {
    UNPINNED: ("unpinned-image", "Image reference is not pinned to a digest",
               "Run pin-images to add the sha256 manifest digest to this reference."),
    STALE: ("stale-pin", "Pinned digest no longer matches its tag",
            "Run pin-images --update to move the digest to what the tag points to now."),
    ERROR: ("resolution-error", "Image reference could not be checked",
            "Fix the reference, the credentials or the registry named in the message."),
}


def _uri(path: str, root: str | None) -> str:
    """Relative to the repository root (what code scanning matches against a pull request's files), percent-encoded
    (spaces, % and #); a file outside the root gets an absolute ``file:`` URI."""
    # Imported here: only SARIF needs them, and a text run (the hook's) should not pay for pathlib.
    from pathlib import Path
    from urllib.parse import quote

    rel = files.root_relative(path, root)
    if os.path.isabs(rel):
        return Path(rel).as_uri()
    return quote(rel, safe="/")


def _region(line: int | None, column: int | None) -> dict[str, int] | None:
    if not line:
        return None
    return {"startLine": line, "startColumn": column} if column else {"startLine": line}


def to_sarif(report: Report, root: str | None = None) -> dict[str, Any]:
    """SARIF 2.1.0: one result per unpinned or stale reference and per error, with file, line and column.

    ``root``: the directory URIs are relative to (default: the git work tree holding the working directory, else
    the working directory).
    """
    rule_ids = [r[0] for r in _RULES.values()]
    results = []
    for f in report.findings:
        if f.status not in _RULES:
            continue
        rule_id = _RULES[f.status][0]
        results.append(
            {
                "ruleId": rule_id,
                "ruleIndex": rule_ids.index(rule_id),
                "level": "warning" if f.warning else "error",
                "message": {"text": finding_line(f).split(": ", 1)[1]},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": _uri(f.path, root)},
                            "region": _region(f.line, column_of(f)),
                        }
                    }
                ],
                "properties": {"kind": kind_of(f)},
            }
        )
    for e in report.file_errors:
        path = getattr(e, "path", "") or ""
        result: dict[str, Any] = {
            "ruleId": _RULES[ERROR][0],
            "ruleIndex": rule_ids.index(_RULES[ERROR][0]),
            "level": "error",
            "message": {"text": str(e)},
        }
        if path:
            region = _region(getattr(e, "line", None), None)
            loc: dict[str, Any] = {"artifactLocation": {"uri": _uri(path, root)}}
            if region:
                loc["region"] = region
            result["locations"] = [{"physicalLocation": loc}]
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pin-images",
                        "version": __version__,
                        "informationUri": INFO_URI,
                        "rules": [
                            {"id": rid, "shortDescription": {"text": short}, "help": {"text": help_text}}
                            for rid, short, help_text in _RULES.values()
                        ],
                    }
                },
                "results": results,
            }
        ],
    }


_RED, _YELLOW, _GREEN = "31", "33", "32"


def _paint(line: str, code: str | None, color: bool) -> str:
    return f"\033[{code}m{line}\033[0m" if color and code else line


def _color_of(f: Finding) -> str | None:
    if f.status == ERROR or f.status in FAILS_CHECK:
        return _YELLOW if f.warning and f.status != ERROR else _RED
    if f.warning:
        return _YELLOW
    return _GREEN if f.status in CHANGES else None


def write_report(report: Report, fmt: str, out: IO[str], err: IO[str], *, quiet: bool = False,
                 verbose: bool = False, color: bool = False, root: str | None = None) -> None:
    """Print ``report`` in ``fmt``; machine formats go to ``out`` alone, text splits errors onto ``err``.

    ``quiet`` hides successes and the summary, never the reason for a failure (an unpinned or stale reference, an
    error). ``color`` adds ANSI colour to text findings (red failures, yellow warnings, green pins); the caller
    decides, from the terminal and ``NO_COLOR``. Machine formats never get colour. ``root``: see ``to_sarif``.
    """
    if fmt in ("json", "sarif"):
        import json  # the default text format never needs it

        json.dump(to_json(report) if fmt == "json" else to_sarif(report, root), out, indent=2)
        out.write("\n")
        return
    if fmt == "github":
        for line in github_lines(report):
            out.write(line + "\n")
        if not quiet:
            out.write(summary(report) + "\n")
        return
    if verbose:
        err.write(f"pin-images: configuration: {report.config or 'none found'}\n")
        for path in report.excluded:
            err.write(f"pin-images: {path}: not read, it matches an exclude pattern\n")
    for e in report.file_errors:
        err.write(_paint(str(e), _RED, color) + "\n")
    for f in report.findings:
        if f.status == ERROR or (f.warning and (not quiet or f.status in FAILS_CHECK)):
            err.write(_paint(finding_line(f), _color_of(f), color) + "\n")
        elif quiet and f.status not in FAILS_CHECK:
            continue
        elif f.status in CHANGES or f.status in FAILS_CHECK or verbose:
            out.write(_paint(finding_line(f), _color_of(f), color) + "\n")
            if verbose and f.status in CHANGES and f.message:
                out.write(f"{f.path}:{f.line}: note: {f.message}\n")
    for d in report.diffs:
        out.write(d)
    if not quiet:
        out.write(summary(report) + "\n")
