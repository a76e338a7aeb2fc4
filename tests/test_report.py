"""Output through main(): the JSON document against docs/output.schema.json, SARIF against the official schema,
GitHub workflow commands, the text summary, and colour only where it belongs.

tests/data/sarif-schema-2.1.0.json is the OASIS SARIF 2.1.0 schema, copied verbatim from
https://github.com/oasis-tcs/sarif-spec/blob/0a8091f7d4057e57b6d8d9b56129e5f918747b34/Schemata/sarif-schema-2.1.0.json
("id": https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from pin_images.cli import main
from pin_images.errors import AuthError, DockerfileError, NotFoundError
from pin_images.report import Report, github_lines, to_json, to_sarif, write_report
from pin_images.resolve import ERROR, PINNED, SKIPPED, UNPINNED, Finding

from .conftest import fake_digest

ROOT = Path(__file__).resolve().parent.parent
PY = fake_digest("docker.io/library/python:3.12")
ALPINE = fake_digest("docker.io/library/alpine:3.20")
OLD = "sha256:" + "0" * 64


@pytest.fixture(scope="module")
def output_schema() -> jsonschema.protocols.Validator:
    schema = json.loads((ROOT / "docs" / "output.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def sarif_schema() -> jsonschema.protocols.Validator:
    schema = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def run_json(args: list[str], capsys, validator) -> tuple[int, dict]:
    code = main([*args, "--format", "json"])
    out = capsys.readouterr().out
    doc = json.loads(out)  # the whole of stdout is one document, whatever happened
    validator.validate(doc)
    assert doc["exit_code"] == code
    return code, doc


def statuses(doc: dict) -> list[tuple[int, str]]:
    return [(r["line"], r["status"]) for r in doc["references"]]


# -- JSON ----------------------------------------------------------------------------------------------------------
def test_json_write_then_up_to_date(tmp_path, resolver, capsys, output_schema):
    f = write(tmp_path, "Dockerfile", "FROM python:3.12 AS build\nFROM alpine:3.20\nCOPY --from=build /a /a\n")
    code, doc = run_json([str(f)], capsys, output_schema)
    assert code == 1
    assert doc["mode"] == "write" and doc["update"] is False and doc["platform"] is None
    assert statuses(doc) == [(1, "pinned"), (2, "pinned")]
    assert doc["files_changed"] == [str(f)] and doc["files_scanned"] == 1
    first = doc["references"][0]
    assert first.pop("kind") == "dockerfile"
    assert first.pop("column") == 6  # of "python:3.12"
    assert first == {
        "file": str(f),
        "line": 1,
        "reference": "python:3.12",
        "image": "python:3.12",
        "name": "docker.io/library/python",
        "status": "pinned",
        "old_digest": None,
        "new_digest": PY,
        "message": None,
    }
    assert doc["summary"] == "pinned 2 references in 1 file"

    code, doc = run_json([str(f)], capsys, output_schema)
    assert code == 0
    assert statuses(doc) == [(1, "up-to-date"), (2, "up-to-date")]
    assert doc["references"][0]["old_digest"] == PY
    assert doc["files_changed"] == []


def test_json_check_mode(tmp_path, no_network, capsys, output_schema):
    f = write(tmp_path, "Dockerfile", f"FROM python:3.12@{PY}\nFROM alpine:3.20\n")
    code, doc = run_json(["--check", str(f)], capsys, output_schema)
    assert code == 1
    assert doc["mode"] == "check"
    assert statuses(doc) == [(1, "up-to-date"), (2, "unpinned")]
    assert doc["references"][1]["message"] == "is not pinned"
    assert doc["summary"] == "1 reference unpinned"


def test_json_dry_run_writes_nothing(tmp_path, resolver, capsys, output_schema):
    f = write(tmp_path, "Dockerfile", "FROM python:3.12\n")
    code, doc = run_json(["--dry-run", str(f)], capsys, output_schema)
    assert code == 1
    assert doc["mode"] == "dry-run"
    assert statuses(doc) == [(1, "pinned")]
    assert doc["files_changed"] == [str(f)]
    assert doc["summary"] == "would pin 1 reference in 1 file"
    assert f.read_text() == "FROM python:3.12\n"


def test_json_update_and_stale(tmp_path, resolver, capsys, output_schema):
    f = write(tmp_path, "Dockerfile", f"FROM python:3.12@{OLD}\nFROM alpine:3.20@{ALPINE}\n")
    code, doc = run_json(["--check", "--update", str(f)], capsys, output_schema)
    assert code == 1
    assert doc["update"] is True
    assert statuses(doc) == [(1, "stale"), (2, "up-to-date")]
    stale = doc["references"][0]
    assert (stale["old_digest"], stale["new_digest"]) == (OLD, PY)

    code, doc = run_json(["--update", str(f)], capsys, output_schema)
    assert code == 1
    assert statuses(doc) == [(1, "updated"), (2, "up-to-date")]
    assert doc["summary"] == "updated 1 reference in 1 file"
    assert f.read_text() == f"FROM python:3.12@{PY}\nFROM alpine:3.20@{ALPINE}\n"


def test_json_errors_stay_valid(tmp_path, resolver, capsys, output_schema):
    resolver.errors["docker.io/library/alpine:3.20"] = NotFoundError(
        'docker.io/library/alpine:3.20: manifest unknown "quoted"\nsecond line', "registry-1.docker.io"
    )
    f = write(tmp_path, "Dockerfile", "FROM python:3.12\nFROM alpine:3.20\nFROM Not_Valid:x\n")
    code, doc = run_json([str(f), str(tmp_path / "missing")], capsys, output_schema)
    assert code == 2
    assert statuses(doc) == [(1, "unpinned"), (2, "error"), (3, "error")]  # held back by the failures
    assert doc["references"][1]["message"].endswith("second line")
    assert doc["references"][2]["name"] is None  # an unparsable reference has no normalised name
    assert len(doc["errors"]) == 1 and "missing" in doc["errors"][0]
    assert doc["files_changed"] == []  # a file with a failed reference is left untouched
    assert doc["summary"] == "1 reference unpinned, 3 errors"


def test_json_skipped_references(tmp_path, resolver, capsys, output_schema):
    f = write(
        tmp_path,
        "Dockerfile",
        "# pin-images: ignore\nFROM python:3.12\n"
        "FROM registry.internal/team/base:1\n"
        "ARG TARGETARCH\nFROM ${TARGETARCH}/alpine:3.20\n"
        "ARG NOPE\nFROM ${NOPE}\n"
        "FROM alpine:3.20\n",
    )
    code, doc = run_json(["--ignore-image", "registry.internal/*", str(f)], capsys, output_schema)
    assert code == 1
    assert statuses(doc) == [(2, "skipped"), (3, "skipped"), (5, "skipped"), (7, "skipped"), (8, "pinned")]
    arg = doc["references"][3]
    assert arg["reference"] == "${NOPE}" and arg["image"] is None and "NOPE" in arg["message"]

    code, doc = run_json(["--check", "--ignore-image", "registry.internal/*", str(f)], capsys, output_schema)
    assert code == 1
    assert dict(statuses(doc))[7] == "unpinned"  # an ARG without a value cannot pass a check


def test_json_platform_is_reported(tmp_path, resolver, capsys, output_schema):
    f = write(tmp_path, "Dockerfile", "FROM python:3.12\n")
    _, doc = run_json(["--platform", "linux/arm64", "--dry-run", str(f)], capsys, output_schema)
    assert doc["platform"].startswith("linux/arm64")


def test_json_document_even_when_the_run_cannot_start(tmp_path, monkeypatch, capsys, output_schema):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".pin-images.toml").write_text("jobs = 0\n")
    code, doc = run_json(["--check"], capsys, output_schema)
    assert code == 2
    assert doc["references"] == [] and len(doc["errors"]) == 1 and "jobs" in doc["errors"][0]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("version",), 2),
        (("references", 0, "status"), "fresh"),
        (("references", 0, "new_digest"), "sha256:abc"),
        (("references", 0, "line"), 0),
        (("mode",), "fix"),
    ],
)
def test_schema_rejects_what_the_tool_never_prints(tmp_path, resolver, capsys, output_schema, path, value):
    f = write(tmp_path, "Dockerfile", "FROM python:3.12\n")
    _, doc = run_json(["--dry-run", str(f)], capsys, output_schema)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert not output_schema.is_valid(doc)


# -- SARIF ---------------------------------------------------------------------------------------------------------
def test_sarif_validates_and_has_one_result_per_problem(tmp_path, resolver, capsys, sarif_schema):
    resolver.errors["docker.io/library/node:20"] = AuthError("denied: log in to docker.io", "registry-1.docker.io")
    f = write(tmp_path, "Dockerfile", f"FROM python:3.12@{OLD}\nFROM alpine:3.20@{ALPINE}\nFROM node:20@{OLD}\n")
    g = write(tmp_path, "sub/Containerfile", "FROM alpine:3.20\nARG NOPE\nFROM ${NOPE}\n")
    assert main(["--check", "--update", "--format", "sarif", str(f), str(g), str(tmp_path / "missing")]) == 2
    doc = json.loads(capsys.readouterr().out)
    sarif_schema.validate(doc)
    assert doc["version"] == "2.1.0"
    (run,) = doc["runs"]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    found = []
    for r in run["results"]:
        where = r["locations"][0]["physicalLocation"] if r.get("locations") else {}
        uri = where.get("artifactLocation", {}).get("uri", "")
        found.append((r["ruleId"], r["level"], uri, where.get("region", {}).get("startLine", 0)))
    # The files lie outside the working directory's repository: absolute file: URIs.
    f, g = f.as_uri(), g.as_uri()
    assert sorted(found) == sorted(
        [
            ("stale-pin", "error", f, 1),
            ("resolution-error", "error", f, 3),
            ("unpinned-image", "error", g, 1),
            ("unpinned-image", "warning", g, 3),  # ARG without a value: a warning, still a result
            ("resolution-error", "error", (tmp_path / "missing").as_uri(), 0),  # a path but no line
        ]
    )
    for r in run["results"]:
        assert rules[r["ruleIndex"]] == r["ruleId"]


def test_sarif_uris_are_percent_encoded(tmp_path, no_network, capsys, sarif_schema, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "odd dir/a#1%.Dockerfile", "FROM python:3.12\n")
    assert main(["--check", "--format", "sarif", "odd dir/a#1%.Dockerfile"]) == 1
    doc = json.loads(capsys.readouterr().out)
    sarif_schema.validate(doc)
    (result,) = doc["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "odd%20dir/a%231%25.Dockerfile"


def test_sarif_with_nothing_to_report_is_valid(tmp_path, no_network, capsys, sarif_schema):
    f = write(tmp_path, "Dockerfile", f"FROM python:3.12@{PY}\n")
    assert main(["--check", "--format", "sarif", str(f)]) == 0
    doc = json.loads(capsys.readouterr().out)
    sarif_schema.validate(doc)
    assert doc["runs"][0]["results"] == []


def test_sarif_document_even_when_the_run_cannot_start(tmp_path, capsys, sarif_schema):
    assert main(["--format", "sarif", "--check", "--config", str(tmp_path / "nope.toml")]) == 2
    doc = json.loads(capsys.readouterr().out)
    sarif_schema.validate(doc)
    assert "nope.toml" in doc["runs"][0]["results"][0]["message"]["text"]


# -- GitHub workflow commands --------------------------------------------------------------------------------------
def test_github_check_failures_are_error_annotations(tmp_path, no_network, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "Dockerfile", f"FROM python:3.12@{PY}\nFROM alpine:3.20\n")
    assert main(["--check", "--format", "github", "Dockerfile"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "::error file=Dockerfile,line=2,col=6,title=pin-images::Dockerfile:2: alpine:3.20 is not pinned",
        "1 reference unpinned",
    ]


def test_github_escapes_properties_and_messages():
    # Properties escape % \r \n : , ; the message escapes % \r \n only (GitHub's escapeProperty / escapeData).
    path = "odd dir/a,b:c%d/Dockerfile"
    report = Report(
        findings=[
            Finding(path=path, line=3, written="x", image="x", status=ERROR, message="100% broken\r\nsee: a, b"),
            Finding(path=path, line=4, written="y:1", image="y:1", status=PINNED, new_digest=PY),
            Finding(
                path=path, line=5, written="${A}", image=None, status=SKIPPED, message="A has no value", warning=True
            ),
            Finding(
                path=path, line=6, written="${A}", image=None, status=UNPINNED, message="A has no value", warning=True
            ),
        ],
        file_errors=[DockerfileError("not UTF-8", "b%,:.Dockerfile", 7), DockerfileError("gone\nreally")],
    )
    prop = "odd dir/a%2Cb%3Ac%25d/Dockerfile"
    shown = "odd dir/a,b:c%25d/Dockerfile"
    assert github_lines(report) == [
        "::error file=b%25%2C%3A.Dockerfile,line=7::b%25,:.Dockerfile:7: not UTF-8",
        "::error::<input>: gone%0Areally",
        "::error file=odd dir/a%2Cb%3Ac%25d/Dockerfile,line=3,title=pin-images::"
        "odd dir/a,b:c%25d/Dockerfile:3: 100%25 broken%0D%0Asee: a, b",
        f"::notice file={prop},line=4,title=pin-images::{shown}:4: y:1 -> y:1@{PY}",
        f"::warning file={prop},line=5,title=pin-images::{shown}:5: warning: ${{A}} skipped: A has no value",
        f"::warning file={prop},line=6,title=pin-images::{shown}:6: ${{A}} is not pinned: A has no value",
    ]


def test_github_stale_pins_for_a_scheduled_job(tmp_path, resolver, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "Dockerfile", f"FROM python:3.12@{OLD}\n")
    assert main(["--check", "--update", "--format", "github", "Dockerfile"]) == 1
    first, summary = capsys.readouterr().out.splitlines()
    assert first == (
        f"::error file=Dockerfile,line=1,col=6,title=pin-images::Dockerfile:1: python:3.12 is stale: pinned {OLD}, "
        f"the tag now points to {PY}"
    )
    assert summary == "1 stale"


# -- text ----------------------------------------------------------------------------------------------------------
def test_text_summary_counts_references_and_files(tmp_path, resolver, capsys):
    images = ["python:3.12", "alpine:3.20", "node:20", "golang:1.22", "debian:12", "ubuntu:24.04"]
    for i in range(5):
        # 12 references over 5 files: 3, 3, 2, 2, 2
        count = 3 if i < 2 else 2
        body = "".join(f"FROM {images[(i + j) % len(images)]}\n" for j in range(count))
        write(tmp_path, f"svc{i}/Dockerfile", body)
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "pinned 12 references in 5 files"
    assert len(out) == 13  # one line per finding, then the summary

    assert main(["--check", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["all 12 references pinned (5 files scanned)"]


def test_text_summary_does_not_count_skipped_references_as_pinned(tmp_path, no_network, capsys):
    f = write(tmp_path, "Dockerfile", f"# pin-images: ignore\nFROM python:3.12\nFROM alpine:3.20@{ALPINE}\n")
    assert main(["--check", str(f)]) == 0
    assert capsys.readouterr().out == "all 1 reference pinned, 1 skipped (1 file scanned)\n"
    f.write_text("# pin-images: ignore\nFROM python:3.12\n")
    assert main(["--check", str(f)]) == 0
    assert capsys.readouterr().out == "1 reference skipped (1 file scanned)\n"


def test_text_summary_for_a_failed_check(tmp_path, no_network, capsys):
    f = write(tmp_path, "Dockerfile", "FROM python:3.12\nFROM alpine:3.20\nFROM node:20\n")
    assert main(["--check", str(f)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{f}:{n}: {img} is not pinned" for n, img in enumerate(["python:3.12", "alpine:3.20", "node:20"], 1)
    ] + ["3 references unpinned"]


def test_text_findings_are_grouped_by_file(tmp_path, resolver, capsys):
    a = write(tmp_path, "a/Dockerfile", "FROM python:3.12\nFROM alpine:3.20\n")
    b = write(tmp_path, "b/Dockerfile", "FROM alpine:3.20\n")
    assert main([str(b), str(a)]) == 1
    files = [line.split(":", 1)[0] for line in capsys.readouterr().out.splitlines()[:-1]]
    assert files == [str(b), str(a), str(a)]


# -- colour --------------------------------------------------------------------------------------------------------
class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def colour_report() -> Report:
    return Report(
        findings=[
            Finding(path="D", line=1, written="a", image="a", status=PINNED, new_digest=PY),
            Finding(path="D", line=2, written="b", image="b", status=UNPINNED, message="is not pinned"),
            Finding(path="D", line=3, written="${A}", image=None, status=SKIPPED, message="no value", warning=True),
            Finding(path="D", line=4, written="c", image="c", status=ERROR, message="denied"),
        ],
        mode="write",
    )


def test_write_report_colours_only_when_asked():
    out, err = io.StringIO(), io.StringIO()
    write_report(colour_report(), "text", out, err, color=True)
    assert f"\033[32mD:1: a -> a@{PY}\033[0m" in out.getvalue()
    assert "\033[31mD:2: b is not pinned\033[0m" in out.getvalue()
    assert "\033[33mD:3: warning: ${A} skipped: no value\033[0m" in err.getvalue()
    assert "\033[31mD:4: denied\033[0m" in err.getvalue()
    assert "\033[" not in out.getvalue().splitlines()[-1]  # the summary stays plain

    out, err = io.StringIO(), io.StringIO()
    write_report(colour_report(), "text", out, err)
    assert "\033[" not in out.getvalue() + err.getvalue()


@pytest.mark.parametrize("fmt", ["json", "sarif", "github"])
def test_machine_formats_never_get_colour(fmt):
    out, err = io.StringIO(), io.StringIO()
    write_report(colour_report(), fmt, out, err, color=True)
    assert "\033[" not in out.getvalue() + err.getvalue()


def test_main_colours_a_terminal_but_not_with_no_color(tmp_path, resolver, monkeypatch):
    f = write(tmp_path, "Dockerfile", "FROM python:3.12\n")
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty = FakeTTY()
    monkeypatch.setattr("sys.stdout", tty)
    assert main(["--dry-run", str(f)]) == 1
    assert "\033[32m" in tty.getvalue()

    monkeypatch.setenv("NO_COLOR", "1")
    tty = FakeTTY()
    monkeypatch.setattr("sys.stdout", tty)
    assert main(["--dry-run", str(f)]) == 1
    assert "\033[" not in tty.getvalue()


def test_main_never_colours_a_pipe(tmp_path, resolver, monkeypatch, capsys):
    monkeypatch.delenv("NO_COLOR", raising=False)
    f = write(tmp_path, "Dockerfile", "FROM python:3.12\n")
    assert main(["--dry-run", str(f)]) == 1
    captured = capsys.readouterr()
    assert "\033[" not in captured.out + captured.err


def test_main_json_on_a_terminal_is_plain_json(tmp_path, resolver, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    f = write(tmp_path, "Dockerfile", "FROM python:3.12\n")
    tty = FakeTTY()
    monkeypatch.setattr("sys.stdout", tty)
    assert main(["--dry-run", "--format", "json", str(f)]) == 1
    assert json.loads(tty.getvalue())["references"][0]["status"] == "pinned"


# -- paths as CI tools need them, columns, quiet -------------------------------------------------------------------
def git_repo(path: Path) -> Path:
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def test_no_dot_slash_in_any_format(tmp_path, no_network, capsys, monkeypatch, output_schema, sarif_schema):
    repo = git_repo(tmp_path / "repo")
    write(repo, "go-service/Dockerfile", "FROM golang:1.22\n")
    monkeypatch.chdir(repo)
    for argv in (["--check"], ["--check", "."], ["--check", "./go-service/"]):
        assert main(argv) == 1
        assert capsys.readouterr().out.splitlines()[0] == "go-service/Dockerfile:1: golang:1.22 is not pinned"
        assert main([*argv, "--format", "github"]) == 1
        assert capsys.readouterr().out.startswith("::error file=go-service/Dockerfile,line=1,")
        _, doc = run_json(argv, capsys, output_schema)
        assert doc["references"][0]["file"] == "go-service/Dockerfile"
        assert main([*argv, "--format", "sarif"]) == 1
        doc = json.loads(capsys.readouterr().out)
        sarif_schema.validate(doc)
        location = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "go-service/Dockerfile"


def test_sarif_uris_are_relative_to_the_repository_root(tmp_path, no_network, capsys, monkeypatch, sarif_schema):
    repo = git_repo(tmp_path / "repo")
    write(repo, "python-app/Dockerfile", "FROM python:3.12\n")
    write(repo, "go-service/Dockerfile", "FROM golang:1.22\n")
    monkeypatch.chdir(repo / "go-service")
    assert main(["--check", "--format", "sarif", ".."]) == 1
    doc = json.loads(capsys.readouterr().out)
    sarif_schema.validate(doc)
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]]
    assert uris == ["go-service/Dockerfile", "python-app/Dockerfile"]
    # Text and JSON stay relative to the working directory.
    assert main(["--check", ".."]) == 1
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()[:-1]] == [
        "../go-service/Dockerfile", "../python-app/Dockerfile",
    ]


def test_columns_in_every_format(sarif_schema):
    report = Report(
        findings=[Finding(path="svc/Dockerfile", line=3, written="rust:1.80", image="rust:1.80", status=UNPINNED,
                          message="is not pinned", column=5)],
        mode="check",
    )
    assert github_lines(report) == [
        "::error file=svc/Dockerfile,line=3,col=5,title=pin-images::svc/Dockerfile:3: rust:1.80 is not pinned"
    ]
    out, err = io.StringIO(), io.StringIO()
    write_report(report, "text", out, err)
    assert out.getvalue().splitlines()[0] == "svc/Dockerfile:3: rust:1.80 is not pinned"
    sarif = to_sarif(report, root=".")
    sarif_schema.validate(sarif)
    assert sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 3, "startColumn": 5,
    }
    (ref,) = to_json(report)["references"]
    assert (ref["line"], ref["column"], ref["kind"]) == (3, 5, "dockerfile")


def test_quiet_check_still_says_why_it_failed(tmp_path, no_network, capsys):
    f = write(tmp_path, "Dockerfile", f"FROM python:3.12@{PY}\nFROM alpine:3.20\nARG B\nFROM $B\n")
    assert main(["--check", "-q", str(f)]) == 1
    out, err = capsys.readouterr()
    assert out == f"{f}:2: alpine:3.20 is not pinned\n"  # no summary, no pinned reference
    assert err == (
        f"{f}:4: $B is not pinned: depends on ARG B, which is declared only inside a stage (line 3); "
        "FROM sees only ARGs declared before the first FROM\n"
    )
    g = write(tmp_path, "ok/Dockerfile", f"FROM python:3.12@{PY}\n# pin-images: ignore\nFROM x:1\n")
    assert main(["--check", "-q", str(g)]) == 0
    assert capsys.readouterr() == ("", "")  # success and its warnings stay quiet


def test_columns_through_main_for_a_kind_that_reports_them(tmp_path, no_network, capsys, monkeypatch, sarif_schema,
                                                           output_schema):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: python:3.12\n")
    assert main(["--check", "--format", "github", "compose.yaml"]) == 1
    assert capsys.readouterr().out.splitlines()[0].startswith("::error file=compose.yaml,line=3,col=12,title=")
    assert main(["--check", "--format", "sarif", "compose.yaml"]) == 1
    doc = json.loads(capsys.readouterr().out)
    sarif_schema.validate(doc)
    assert doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 3, "startColumn": 12,
    }
    _, doc = run_json(["--check", "compose.yaml"], capsys, output_schema)
    ref = doc["references"][0]
    assert (ref["file"], ref["line"], ref["column"], ref["kind"]) == ("compose.yaml", 3, 12, "compose")


def test_a_continued_reference_is_located_where_its_text_is(tmp_path, no_network, capsys, monkeypatch, sarif_schema):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "Dockerfile", "FROM \\\n  --platform=$BUILDPLATFORM \\\n  rust:1.80-slim-bookworm \\\n  AS build\n")
    assert main(["--check", "--format", "github"]) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        "::error file=Dockerfile,line=3,col=3,title=pin-images::Dockerfile:3: rust:1.80-slim-bookworm is not pinned"
    )
    assert main(["--check", "--format", "sarif"]) == 1
    doc = json.loads(capsys.readouterr().out)
    sarif_schema.validate(doc)
    assert doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 3, "startColumn": 3,
    }
    assert main(["--check"]) == 1
    assert capsys.readouterr().out.startswith("Dockerfile:3: rust:1.80-slim-bookworm is not pinned\n")
