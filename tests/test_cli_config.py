"""Project configuration through main(): what the file sets, what the command line overrides, and how errors read.

tests/test_config.py covers finding and validating the file; these tests check that the settings actually reach the
run (the resolver, the file walk, the output) with the command line winning.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pin_images.cli import DEFAULT_JOBS, DEFAULT_TIMEOUT, Settings, main
from pin_images.config import KEYS, find_config, load_config
from pin_images.manifest import Platform

from .conftest import FakeResolver, fake_digest

PY = fake_digest("docker.io/library/python:3.12")
ALPINE = fake_digest("docker.io/library/alpine:3.20")
OLD = "sha256:" + "0" * 64


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    if find_config(str(tmp_path.parent)) is not None:
        pytest.skip("a pin-images config file exists above the temporary directory")


@pytest.fixture
def seen(resolver: FakeResolver, monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """The Settings that main() built the registry client from (one per run that needed the network)."""
    runs: list[Settings] = []

    def record(settings: Settings, env: dict[str, str]) -> FakeResolver:
        runs.append(settings)
        return resolver

    monkeypatch.setattr("pin_images.cli.make_resolver", record)
    return runs


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def dockerfile(text: str = "FROM python:3.12\n", name: str = "Dockerfile") -> Path:
    return write(Path(name), text)


FULL = """\
platform = "linux/arm64"
jobs = 3
timeout = 7.5
exclude = ["legacy/*"]
ignore-images = ["registry.internal/*"]
insecure-registries = ["registry.lan:5000"]

[registry-mirrors]
"docker.io" = ["http://127.0.0.1:5001", "https://mirror.gcr.io"]
"ghcr.io" = "https://ghcr-mirror.example"

[build-args]
BASE = "python:3.12"
"""


def test_every_setting_in_the_file_reaches_the_run(resolver, seen, capsys):
    write(Path(".pin-images.toml"), FULL)
    dockerfile("ARG BASE\nFROM ${BASE}\nFROM registry.internal/team/app:1\n")
    legacy = dockerfile("FROM node:20\n", "legacy/Dockerfile")
    assert main([]) == 1
    (settings,) = seen
    assert settings.mirrors == {
        "docker.io": ["http://127.0.0.1:5001", "https://mirror.gcr.io"],
        "ghcr.io": ["https://ghcr-mirror.example"],
    }
    assert settings.options.jobs == 3
    assert settings.timeout == 7.5
    assert settings.insecure == ["registry.lan:5000"]
    # platform: the resolver is asked for that platform's manifest
    (call,) = resolver.calls
    assert call[1] == "docker.io/library/python:3.12"  # build-args: BASE from the file
    assert call[2] in (Platform("linux", "arm64", "v8"), Platform("linux", "arm64"))
    assert legacy.read_text() == "FROM node:20\n"  # exclude
    out = capsys.readouterr().out
    assert "legacy" not in out
    assert "registry.internal" not in out  # ignore-images: skipped, shown only with -v


def test_defaults_without_a_file(resolver, seen):
    dockerfile()
    assert main([]) == 1
    (settings,) = seen
    assert settings.mirrors == {} and settings.insecure == [] and settings.options.platform is None
    assert (settings.options.jobs, settings.timeout) == (DEFAULT_JOBS, DEFAULT_TIMEOUT)


def test_command_line_overrides_the_file(resolver, seen):
    write(Path(".pin-images.toml"), FULL)
    dockerfile("ARG BASE\nFROM ${BASE}\nFROM registry.internal/team/app:1\nFROM node:20\n")
    code = main(
        [
            "--platform", "linux/amd64",
            "--jobs", "5",
            "--timeout", "2",
            "--registry-mirror", "docker.io=http://127.0.0.1:6000",
            "--build-arg", "BASE=debian:12",
            "--ignore-image", "node",
            "--dry-run",
        ]
    )  # fmt: skip
    assert code == 1
    (settings,) = seen
    # a registry's mirrors on the command line replace the file's list for it; other registries keep the file's
    assert settings.mirrors == {"docker.io": ["http://127.0.0.1:6000"], "ghcr.io": ["https://ghcr-mirror.example"]}
    assert (settings.options.jobs, settings.timeout) == (5, 2.0)
    assert {call[1] for call in resolver.calls} == {"docker.io/library/debian:12"}  # node ignored, internal ignored
    assert {call[2] for call in resolver.calls} == {Platform("linux", "amd64")}
    # lists add up: the file's ignore-images and the command line's
    assert settings.options.ignore_images == ("registry.internal/*", "node")


def test_excludes_add_up(resolver, seen, capsys):
    write(Path(".pin-images.toml"), 'exclude = ["legacy/*"]\n')
    dockerfile()
    dockerfile("FROM node:20\n", "legacy/Dockerfile")
    dockerfile("FROM node:20\n", "vendor/Dockerfile")
    assert main(["--exclude", "vendor/*", "--check"]) == 1
    out = capsys.readouterr().out
    assert "Dockerfile:1: python:3.12 is not pinned" in out
    assert "legacy" not in out and "vendor" not in out


def test_format_from_the_file_and_overridden(resolver, capsys):
    write(Path(".pin-images.toml"), 'format = "json"\n')
    dockerfile()
    assert main(["--check"]) == 1
    assert json.loads(capsys.readouterr().out)["references"][0]["status"] == "unpinned"
    assert main(["--check", "--format", "text"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "1 reference unpinned"


def test_update_from_the_file_and_overridden_by_check_alone(resolver, capsys):
    write(Path(".pin-images.toml"), "update = true\n")
    f = dockerfile(f"FROM python:3.12@{OLD}\n")
    assert main(["--check"]) == 1  # the file turns --check into a stale-pin check
    assert "is stale" in capsys.readouterr().out
    assert main(["--dry-run"]) == 1
    assert "would update 1 reference" in capsys.readouterr().out
    assert f.read_text() == f"FROM python:3.12@{OLD}\n"


def test_pyproject_table_found_from_a_subdirectory(resolver, seen, monkeypatch, tmp_path):
    write(Path("pyproject.toml"), '[project]\nname = "x"\n\n[tool.pin-images]\njobs = 2\nexclude = ["svc/old/*"]\n')
    dockerfile(name="svc/Dockerfile")
    dockerfile("FROM node:20\n", "svc/old/Dockerfile")
    monkeypatch.chdir(tmp_path / "svc")
    assert main([]) == 1
    (settings,) = seen
    assert settings.options.jobs == 2
    # excludes in the file are relative to the file's directory, however deep the run starts
    assert [call[1] for call in resolver.calls] == ["docker.io/library/python:3.12"]


def test_standalone_file_wins_over_pyproject(resolver, seen):
    write(Path("pyproject.toml"), "[tool.pin-images]\njobs = 2\n")
    write(Path(".pin-images.toml"), "jobs = 4\n")
    dockerfile()
    assert main([]) == 1
    assert seen[0].options.jobs == 4


def test_no_config_ignores_the_file(resolver, seen, capsys):
    write(Path(".pin-images.toml"), 'jobs = 3\nformat = "json"\nignore-images = ["python"]\n')
    dockerfile()
    assert main(["--no-config"]) == 1
    assert seen[0].options.jobs == DEFAULT_JOBS
    assert capsys.readouterr().out.startswith("Dockerfile:1: python:3.12 -> ")  # text, not the file's json


def test_no_config_even_skips_a_broken_file(resolver, capsys):
    write(Path(".pin-images.toml"), "jobs = [\n")
    dockerfile()
    assert main(["--no-config", "--check"]) == 1


def test_config_option_reads_another_file(resolver, seen):
    write(Path(".pin-images.toml"), "jobs = 3\n")
    other = write(Path("ci/pin-images.toml"), "jobs = 6\n")
    dockerfile()
    assert main(["--config", str(other)]) == 1
    assert seen[0].options.jobs == 6


def test_config_option_accepts_a_pyproject(resolver, seen):
    other = write(Path("elsewhere/pyproject.toml"), "[tool.pin-images]\njobs = 7\n")
    dockerfile()
    assert main(["--config", str(other)]) == 1
    assert seen[0].options.jobs == 7


def test_config_option_with_a_missing_file(no_network, capsys):
    dockerfile()
    assert main(["--config", "nope.toml"]) == 2
    assert capsys.readouterr().err == "pin-images: error: --config nope.toml: no such file\n"


@pytest.mark.parametrize(
    ("name", "body", "expected"),
    [
        (".pin-images.toml", "job = 4\n", '.pin-images.toml: unknown key "job" (did you mean "jobs"?)'),
        (".pin-images.toml", 'jobs = "4"\n', '.pin-images.toml: jobs: expected an integer >= 1, got "4"'),
        (".pin-images.toml", "timeout = 0\n", ".pin-images.toml: timeout: expected a positive number of seconds"),
        (".pin-images.toml", 'platform = "linux"\n', '.pin-images.toml: platform = "linux"'),
        (".pin-images.toml", 'format = "xml"\n', ".pin-images.toml: format: expected one of"),
        (".pin-images.toml", 'exclude = "legacy/*"\n', ".pin-images.toml: exclude: expected an array of strings"),
        (
            ".pin-images.toml",
            '[registry-mirrors]\n"docker.io" = "ftp://mirror"\n',
            '.pin-images.toml: registry-mirrors."docker.io": expected an http:// or https:// URL, got "ftp://mirror"',
        ),
        (
            ".pin-images.toml",
            "[build-args]\nVERSION = 1.2\n",
            ".pin-images.toml: build-args.VERSION: expected a string (quote it), got 1.2",
        ),
        (".pin-images.toml", "jobs = [\n", ".pin-images.toml: invalid TOML: "),
        (
            "pyproject.toml",
            "[tool.pin-images]\nregistry_mirrors = {}\n",
            'pyproject.toml: [tool.pin-images] unknown key "registry_mirrors" (did you mean "registry-mirrors"?)',
        ),
        ("pyproject.toml", '[tool]\npin-images = "yes"\n', "pyproject.toml: [tool.pin-images]: expected a table"),
    ],
)
def test_bad_config_is_exit_2_with_file_and_key_in_one_line(no_network, capsys, name, body, expected):
    write(Path(name), body)
    dockerfile()
    assert main(["--check"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("pin-images: error: " + expected)


def test_bad_config_found_from_a_subdirectory_names_its_path(no_network, capsys, monkeypatch, tmp_path):
    write(Path(".pin-images.toml"), "jobs = 0\n")
    dockerfile(name="svc/Dockerfile")
    monkeypatch.chdir(tmp_path / "svc")
    assert main(["--check"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("jobs: expected an integer >= 1, got 0")
    assert str(tmp_path / ".pin-images.toml") in err  # outside the working directory: the full path


def test_bad_config_named_by_option(no_network, capsys):
    bad = write(Path("ci/bad.toml"), 'ignore-images = [""]\n')
    dockerfile()
    assert main(["--check", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == 'pin-images: error: ci/bad.toml: ignore-images[0]: expected a non-empty string, got ""\n'


def test_readme_configuration_example_sets_every_key(tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Configuration") :]
    block = section[section.index("```toml\n") + len("```toml\n") : section.index("```\n", section.index("```toml"))]
    cfg = load_config(str(write(tmp_path / "pyproject.toml", block)))
    assert sorted(k for k in KEYS if getattr(cfg, k.replace("-", "_")) in (None, [], {})) == []
    assert cfg.registry_mirrors["docker.io"] == ["https://mirror.gcr.io"]


def test_deadline_default_file_and_command_line(resolver, seen):
    """One limit for the whole run: 50 s by default, so a hook stays under a minute whatever the registries do."""
    dockerfile()
    assert main([]) == 1
    write(Path(".pin-images.toml"), "deadline = 20\n")
    dockerfile()
    assert main([]) == 1
    dockerfile()
    assert main(["--deadline", "7.5"]) == 1
    assert [s.deadline for s in seen] == [50.0, 20.0, 7.5]


@pytest.mark.parametrize("option", ["--timeout", "--deadline"])
@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "-inf"])
def test_time_limits_must_be_positive_and_finite(no_network, capsys, option, value):
    dockerfile()
    assert main([f"{option}={value}"]) == 2
    assert capsys.readouterr().err == (
        f"pin-images: error: {option} {value}: must be a positive, finite number of seconds\n"
    )


@pytest.mark.parametrize("value", ["0", "inf", '"50s"'])
def test_deadline_in_the_file_is_validated(no_network, capsys, value):
    write(Path(".pin-images.toml"), f"deadline = {value}\n")
    dockerfile()
    assert main([]) == 2
    assert "deadline: expected a positive number of seconds" in capsys.readouterr().err
