"""Project configuration: where the file is found, what each key accepts, and how errors read."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from pin_images.config import KEYS, FileConfig, find_config, load_config, load_for, matches_ignore
from pin_images.errors import ConfigError


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Messages name files relative to the working directory; a stray config above tmp_path would break the walk.
    monkeypatch.chdir(tmp_path)
    if find_config(str(tmp_path.parent)) is not None:
        pytest.skip("a pin-images config file exists above the temporary directory")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def pyproject(directory: Path, body: str) -> Path:
    return write(directory / "pyproject.toml", "[project]\nname = 'x'\n\n[tool.pin-images]\n" + body)


def standalone(directory: Path, body: str) -> Path:
    return write(directory / ".pin-images.toml", body)


# --- finding the file -------------------------------------------------------------------------------------------


def test_finds_pyproject_upward_from_nested_directory(tmp_path: Path) -> None:
    cfg = pyproject(tmp_path, "jobs = 2\n")
    nested = tmp_path / "a" / "b" / "c"
    nested.mkdir(parents=True)
    assert find_config(str(nested)) == str(cfg)


def test_start_may_be_a_file(tmp_path: Path) -> None:
    cfg = pyproject(tmp_path, "")
    dockerfile = write(tmp_path / "svc" / "Dockerfile", "FROM scratch\n")
    assert find_config(str(dockerfile)) == str(cfg)


def test_relative_start_gives_absolute_path(tmp_path: Path) -> None:
    cfg = standalone(tmp_path, "")
    (tmp_path / "sub").mkdir()
    assert find_config("sub") == str(cfg)


def test_nothing_found(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert find_config(str(tmp_path / "a")) is None
    assert load_for(str(tmp_path / "a")) == FileConfig()
    assert FileConfig().path is None


def test_pyproject_without_table_is_skipped(tmp_path: Path) -> None:
    outer = pyproject(tmp_path, "jobs = 3\n")
    write(tmp_path / "inner" / "pyproject.toml", "[project]\nname = 'inner'\n\n[tool.black]\nline-length = 99\n")
    assert find_config(str(tmp_path / "inner")) == str(outer)
    assert load_for(str(tmp_path / "inner")).jobs == 3


def test_standalone_beats_pyproject_in_same_directory(tmp_path: Path) -> None:
    pyproject(tmp_path, "jobs = 3\n")
    cfg = standalone(tmp_path, "jobs = 4\n")
    assert find_config(str(tmp_path)) == str(cfg)
    assert load_for(str(tmp_path)).jobs == 4


def test_nearer_standalone_beats_farther_pyproject(tmp_path: Path) -> None:
    pyproject(tmp_path, "jobs = 3\n")
    cfg = standalone(tmp_path / "svc", "jobs = 5\n")
    assert find_config(str(tmp_path / "svc" / "deep")) == str(cfg)


def test_nearer_pyproject_beats_farther_standalone(tmp_path: Path) -> None:
    standalone(tmp_path, "jobs = 5\n")
    cfg = pyproject(tmp_path / "svc", "jobs = 3\n")
    assert find_config(str(tmp_path / "svc")) == str(cfg)


def test_empty_standalone_still_counts(tmp_path: Path) -> None:
    # An empty .pin-images.toml is a deliberate "defaults here", shadowing a pyproject farther up.
    pyproject(tmp_path, "jobs = 3\n")
    cfg = standalone(tmp_path / "svc", "")
    assert load_for(str(tmp_path / "svc")) == FileConfig(path=str(cfg))


def test_empty_table_counts(tmp_path: Path) -> None:
    cfg = pyproject(tmp_path, "")
    assert load_for(str(tmp_path)) == FileConfig(path=str(cfg))


def test_search_stops_at_the_repository_root(tmp_path: Path) -> None:
    # A home directory's settings must not configure every repository checked out below it.
    pyproject(tmp_path, 'platform = "linux/arm64"\n')
    repo = tmp_path / "repo"
    (repo / "svc").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    assert find_config(str(repo / "svc")) is None
    cfg = standalone(repo, "jobs = 2\n")
    assert find_config(str(repo / "svc")) == str(cfg)


def test_a_submodule_or_worktree_root_stops_the_search_too(tmp_path: Path) -> None:
    standalone(tmp_path, "jobs = 2\n")
    write(tmp_path / "sub" / ".git", "gitdir: ../.git/modules/sub\n")  # a submodule's .git is a file
    assert find_config(str(tmp_path / "sub")) is None


def test_broken_pyproject_on_the_way_is_an_error(tmp_path: Path) -> None:
    pyproject(tmp_path, "jobs = 3\n")
    write(tmp_path / "svc" / "pyproject.toml", "[project\n")
    with pytest.raises(ConfigError, match=r"svc/pyproject\.toml: invalid TOML: .*line 1"):
        find_config(str(tmp_path / "svc"))


# --- a complete file ------------------------------------------------------------------------------------------

FULL = """\
platform = "linux/arm64/v8"
exclude = ["vendor/*", "**/testdata/*"]
ignore-images = ["registry.internal/*"]
jobs = 4
timeout = 12.5
insecure-registries = ["Registry.Local:5000"]
format = "json"
update = true

[registry-mirrors]
"docker.io" = "https://mirror.gcr.io/"
"ghcr.io" = ["https://a.example", "http://b.example:8080/v2-proxy"]

[build-args]
GO_VERSION = "1.22"
EMPTY = ""
"""


def expected_full(path: Path) -> FileConfig:
    return FileConfig(
        path=str(path),
        registry_mirrors={
            "docker.io": ["https://mirror.gcr.io"],
            "ghcr.io": ["https://a.example", "http://b.example:8080/v2-proxy"],
        },
        platform="linux/arm64/v8",
        exclude=["vendor/*", "**/testdata/*"],
        ignore_images=["registry.internal/*"],
        build_args={"GO_VERSION": "1.22", "EMPTY": ""},
        jobs=4,
        timeout=12.5,
        insecure_registries=["registry.local:5000"],
        format="json",
        update=True,
    )


def test_full_standalone(tmp_path: Path) -> None:
    path = standalone(tmp_path, FULL)
    assert load_config(str(path)) == expected_full(path)


def test_full_pyproject(tmp_path: Path) -> None:
    # Sub-tables of [tool.pin-images] are written as [tool.pin-images.registry-mirrors] in pyproject.toml.
    body = FULL.replace("[registry-mirrors]", "[tool.pin-images.registry-mirrors]")
    body = body.replace("[build-args]", "[tool.pin-images.build-args]")
    path = pyproject(tmp_path, body + "\n[tool.ruff]\nline-length = 120\n")
    assert load_config(str(path)) == expected_full(path)


def test_every_key_is_tested() -> None:
    assert set(KEYS) == {key for key, _, _ in VALID} == {key for key, _, _ in INVALID}


# --- each key: accepted values ---------------------------------------------------------------------------------

VALID = [
    ("registry-mirrors", '{ "docker.io" = "https://m.example" }', {"docker.io": ["https://m.example"]}),
    ("registry-mirrors", '{ "docker.io" = ["https://a.example", "https://b.example"] }',
     {"docker.io": ["https://a.example", "https://b.example"]}),
    # Docker Hub's aliases fold into docker.io, as --registry-mirror does; order within the file is kept.
    ("registry-mirrors", '{ "index.docker.io" = "https://a.example", "docker.io" = "https://b.example" }',
     {"docker.io": ["https://a.example", "https://b.example"]}),
    ("registry-mirrors", "{}", {}),
    ("platform", '"linux/amd64"', "linux/amd64"),
    ("exclude", "[]", []),
    ("exclude", '["a/*", "b"]', ["a/*", "b"]),
    ("ignore-images", '["registry.internal/*", "python"]', ["registry.internal/*", "python"]),
    ("build-args", '{ A = "1", B = "x y" }', {"A": "1", "B": "x y"}),
    ("jobs", "1", 1),
    ("jobs", "32", 32),
    ("timeout", "30", 30.0),  # an integer is fine; stored as float
    ("timeout", "0.5", 0.5),
    ("deadline", "50", 50.0),
    ("deadline", "7.5", 7.5),
    ("insecure-registries", '["localhost:5000", "INDEX.docker.io"]', ["localhost:5000", "docker.io"]),
    ("format", '"text"', "text"),
    ("format", '"github"', "github"),
    ("format", '"sarif"', "sarif"),
    ("update", "false", False),
    ("pin-style", '"tag"', "tag"),
    ("pin-style", '"full"', "full"),
    ("pin-style", '"digest"', "digest"),
    ("pin-syntax", "true", True),
    ("kinds", '["compose", "kubernetes"]', ["compose", "kubernetes"]),
    ("kinds", "[]", []),
]

FIELDS = {
    "registry-mirrors": "registry_mirrors",
    "ignore-images": "ignore_images",
    "build-args": "build_args",
    "insecure-registries": "insecure_registries",
    "pin-style": "pin_style",
    "pin-syntax": "pin_syntax",
}


@pytest.mark.parametrize(("key", "toml", "value"), VALID)
def test_valid_values(tmp_path: Path, key: str, toml: str, value: object) -> None:
    path = standalone(tmp_path, f"{key} = {toml}\n")
    config = load_config(str(path))
    assert getattr(config, FIELDS.get(key, key)) == value
    if key == "timeout":
        assert isinstance(config.timeout, float)


# --- each key: rejected values (message names the file and the key) ---------------------------------------------

INVALID = [
    ("registry-mirrors", '"https://m.example"', r'registry-mirrors: expected a table like .*, got "https://m\.example"'),
    ("registry-mirrors", '{ "docker.io" = 3 }', r'registry-mirrors\."docker\.io": expected a URL string .*got 3'),
    ("registry-mirrors", '{ "docker.io" = [] }',
     r'registry-mirrors\."docker\.io": expected .*non-empty array of URL strings, got an array'),
    ("registry-mirrors", '{ "docker.io" = "mirror.gcr.io" }',
     r'registry-mirrors\."docker\.io": expected an http:// or https:// URL, got "mirror\.gcr\.io"'),
    ("registry-mirrors", '{ "docker.io" = ["https://ok.example", 5] }',
     r'registry-mirrors\."docker\.io"\[1\]: expected an http:// or https:// URL, got 5'),
    ("registry-mirrors", '{ "docker.io" = "ftp://x.example" }',
     r'registry-mirrors\."docker\.io": expected an http:// or https:// URL, got "ftp://x\.example"'),
    ("registry-mirrors", '{ "" = "https://x.example" }', r'registry-mirrors\."": the registry name is empty'),
    ("platform", "3", r"platform: expected a string, got 3"),
    ("platform", '"amd64"', r'platform = "amd64": .*os/architecture.*'),
    ("platform", '"linux/am d64"', r'platform = "linux/am d64": .*'),
    ("exclude", '"vendor/*"', r'exclude: expected an array of strings, got "vendor/\*"'),
    ("exclude", '["a", 1]', r"exclude\[1\]: expected a non-empty string, got 1"),
    ("exclude", '[""]', r'exclude\[0\]: expected a non-empty string, got ""'),
    ("ignore-images", '"registry.internal/*"',
     r'ignore-images: expected an array of strings, got "registry\.internal/\*"'),
    ("ignore-images", "[{}]", r"ignore-images\[0\]: expected a non-empty string, got a table"),
    ("build-args", '["A=1"]', r"build-args: expected a table like .*, got an array"),
    ("build-args", "{ VERSION = 3 }", r"build-args\.VERSION: expected a string \(quote it\), got 3"),
    ("build-args", "{ DEBUG = true }", r"build-args\.DEBUG: expected a string \(quote it\), got true"),
    ("jobs", '"eight"', r'jobs: expected an integer >= 1, got "eight"'),
    ("jobs", "0", r"jobs: expected an integer >= 1, got 0"),
    ("jobs", "-2", r"jobs: expected an integer >= 1, got -2"),
    ("jobs", "2.0", r"jobs: expected an integer >= 1, got 2\.0"),
    # Python's bool is an int; TOML's is not.
    ("jobs", "true", r"jobs: expected an integer >= 1, got true"),
    ("timeout", "0", r"timeout: expected a positive number of seconds, got 0"),
    ("timeout", "-1.5", r"timeout: expected a positive number of seconds, got -1\.5"),
    ("timeout", '"30s"', r'timeout: expected a positive number of seconds, got "30s"'),
    ("timeout", "inf", r"timeout: expected a positive number of seconds, got inf"),
    ("timeout", "nan", r"timeout: expected a positive number of seconds, got nan"),
    ("timeout", "false", r"timeout: expected a positive number of seconds, got false"),
    ("deadline", "0", r"deadline: expected a positive number of seconds, got 0"),
    ("deadline", "inf", r"deadline: expected a positive number of seconds, got inf"),
    ("insecure-registries", '"localhost:5000"',
     r'insecure-registries: expected an array of strings, got "localhost:5000"'),
    ("insecure-registries", "[5000]", r"insecure-registries\[0\]: expected a non-empty string, got 5000"),
    ("format", '"xml"', r'format: expected one of "text", "json", "github", "sarif", got "xml"'),
    ("format", "1", r"format: expected one of .*, got 1"),
    ("format", '["json"]', r"format: expected one of .*, got an array"),
    ("update", '"yes"', r'update: expected true or false, got "yes"'),
    ("update", "1", r"update: expected true or false, got 1"),
    ("update", "2024-01-01", r"update: expected true or false, got a date"),
    ("pin-style", '"short"', r'pin-style: expected one of "tag", "full", "digest", got "short"'),
    ("pin-style", "true", r"pin-style: expected one of .*, got true"),
    ("pin-syntax", '"yes"', r'pin-syntax: expected true or false, got "yes"'),
    ("kinds", '"compose"', r'kinds: expected an array of strings, got "compose"'),
    ("kinds", '["compose", "helm"]',
     r'kinds\[1\]: unknown file kind "helm"; expected one of dockerfile, compose, kubernetes, github, gitlab, '
     r"devcontainer"),
]


@pytest.mark.parametrize(("key", "toml", "message"), INVALID)
def test_invalid_values_standalone(tmp_path: Path, key: str, toml: str, message: str) -> None:
    standalone(tmp_path, f"{key} = {toml}\n")
    with pytest.raises(ConfigError, match=r"^\.pin-images\.toml: " + message + "$"):
        load_for(str(tmp_path))


@pytest.mark.parametrize(("key", "toml", "message"), INVALID)
def test_invalid_values_pyproject(tmp_path: Path, key: str, toml: str, message: str) -> None:
    pyproject(tmp_path, f"{key} = {toml}\n")
    with pytest.raises(ConfigError, match=r"^pyproject\.toml: \[tool\.pin-images\] " + message + "$"):
        load_for(str(tmp_path))


def test_message_from_the_issue(tmp_path: Path) -> None:
    pyproject(tmp_path, 'jobs = "eight"\n')
    with pytest.raises(ConfigError) as err:
        load_for(str(tmp_path))
    assert str(err.value) == 'pyproject.toml: [tool.pin-images] jobs: expected an integer >= 1, got "eight"'


def test_message_names_nested_path(tmp_path: Path) -> None:
    pyproject(tmp_path / "svc", "jobs = 0\n")
    with pytest.raises(ConfigError, match=r"^svc/pyproject\.toml: \[tool\.pin-images\] jobs: "):
        load_for(str(tmp_path / "svc" / "Dockerfile"))


def test_message_keeps_absolute_path_outside_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = standalone(tmp_path / "project", "jobs = 0\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="^" + re.escape(str(path)) + ": jobs: "):
        load_config(str(path))


def test_table_that_is_not_a_table(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool]\npin-images = "yes"\n')
    with pytest.raises(ConfigError, match=r'^pyproject\.toml: \[tool\.pin-images\]: expected a table, got "yes"$'):
        load_for(str(tmp_path))


# --- unknown keys --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("jobz", "jobs"),
        ("registry_mirrors", "registry-mirrors"),  # underscores instead of dashes
        ("registry-mirror", "registry-mirrors"),  # the option's singular spelling
        ("build-arg", "build-args"),
        ("ignore", "ignore-images"),
        ("insecure-registry", "insecure-registries"),
        ("Platform", "platform"),
    ],
)
def test_unknown_key_suggests_closest(tmp_path: Path, key: str, suggestion: str) -> None:
    pyproject(tmp_path, f"{key} = 1\n")
    with pytest.raises(ConfigError) as err:
        load_for(str(tmp_path))
    assert str(err.value) == f'pyproject.toml: [tool.pin-images] unknown key "{key}" (did you mean "{suggestion}"?)'


def test_unknown_key_without_close_match_lists_keys(tmp_path: Path) -> None:
    standalone(tmp_path, "colour = true\n")
    with pytest.raises(ConfigError) as err:
        load_for(str(tmp_path))
    message = str(err.value)
    assert message.startswith('.pin-images.toml: unknown key "colour" (valid keys: registry-mirrors, platform,')
    assert "\n" not in message


def test_pyproject_standalone_syntax_keys_are_not_confused(tmp_path: Path) -> None:
    # A [tool.pin-images] header inside .pin-images.toml is a mistake worth naming: keys are top-level there.
    standalone(tmp_path, "[tool.pin-images]\njobs = 2\n")
    with pytest.raises(ConfigError, match=r'^\.pin-images\.toml: unknown key "tool"'):
        load_for(str(tmp_path))


# --- TOML syntax errors ------------------------------------------------------------------------------------------

def test_syntax_error_names_file_and_line_standalone(tmp_path: Path) -> None:
    standalone(tmp_path, 'jobs = 2\nplatform = "linux/amd64\n')
    with pytest.raises(ConfigError) as err:
        load_for(str(tmp_path))
    message = str(err.value)
    assert message.startswith(".pin-images.toml: invalid TOML: ")
    assert re.search(r"line 2\b", message), message


def test_syntax_error_names_file_and_line_pyproject(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n\n[tool.pin-images]\njobs = = 3\n")
    with pytest.raises(ConfigError, match=r"^pyproject\.toml: invalid TOML: .*line 5"):
        load_for(str(tmp_path))


def test_duplicate_key_is_a_syntax_error(tmp_path: Path) -> None:
    standalone(tmp_path, "jobs = 2\njobs = 3\n")
    with pytest.raises(ConfigError, match=r"^\.pin-images\.toml: invalid TOML: .*line 2"):
        load_for(str(tmp_path))


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / ".pin-images.toml").write_bytes(b'platform = "linux/\xff"\n')
    with pytest.raises(ConfigError, match=r"^\.pin-images\.toml: invalid TOML"):
        load_for(str(tmp_path))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^missing\.toml: cannot read: "):
        load_config(str(tmp_path / "missing.toml"))


# --- ignore-images matching --------------------------------------------------------------------------------------

IGNORE = [
    # (patterns, written, normalised name, ignored?)
    (["registry.internal/*"], "registry.internal/team/app:1.0", "registry.internal/team/app:1.0", True),
    (["registry.internal/*"], "registry.internal:5000/app", "registry.internal:5000/app:latest", False),
    (["registry.internal*/*"], "registry.internal:5000/app", "registry.internal:5000/app:latest", True),
    # Written short, matched by its normalised Docker Hub name.
    (["docker.io/library/*"], "python:3.12", "docker.io/library/python:3.12", True),
    (["docker.io/library/python"], "python:3.12", "docker.io/library/python:3.12", True),
    # A bare name covers every tag and digest of it, written or normalised.
    (["python"], "python:3.12-slim", "docker.io/library/python:3.12-slim", True),
    (["python"], "python@sha256:" + "a" * 64, "docker.io/library/python@sha256:" + "a" * 64, True),
    (["python"], "pythonista:1", "docker.io/library/pythonista:1", False),
    (["python:3.*"], "python:3.12", "docker.io/library/python:3.12", True),
    (["python:3.*"], "python:2.7", "docker.io/library/python:2.7", False),
    # A port is not a tag: stripping must not cut localhost:5000/app down to localhost.
    (["localhost"], "localhost:5000/app", "localhost:5000/app:latest", False),
    (["localhost:5000/*"], "localhost:5000/app", "localhost:5000/app:latest", True),
    # Case-sensitive, as tags are.
    (["Python"], "python:3", "docker.io/library/python:3", False),
    ([], "python:3", "docker.io/library/python:3", False),
    (["nope", "gcr.io/distroless/*"], "gcr.io/distroless/static:nonroot", "gcr.io/distroless/static:nonroot", True),
    # The caller may pass the name without tag (Reference.name) instead of the full normalised form.
    (["docker.io/library/alpine"], "alpine:3.20", "docker.io/library/alpine", True),
    # Written long, matched by the short Docker Hub form, with and without tag.
    (["alpine"], "docker.io/library/alpine:3.20", "docker.io/library/alpine:3.20", True),
    (["alpine:*"], "docker.io/library/alpine:3.20", "docker.io/library/alpine:3.20", True),
    (["alpine:3.20"], "index.docker.io/library/alpine:3.20@sha256:" + "a" * 64,
     "docker.io/library/alpine:3.20@sha256:" + "a" * 64, True),
    (["bitnami/*"], "docker.io/bitnami/redis:7", "docker.io/bitnami/redis:7", True),
    (["library/alpine"], "alpine:3.20", "docker.io/library/alpine:3.20", True),  # docker pull takes it too
    (["alpine"], "ghcr.io/library/alpine:3.20", "ghcr.io/library/alpine:3.20", False),  # only Docker Hub is short
    # A pattern without wildcards is normalised too: docker.io/alpine is docker.io/library/alpine.
    (["docker.io/alpine"], "alpine:3.20", "docker.io/library/alpine:3.20", True),
    (["docker.io/alpine:3.19"], "alpine:3.20", "docker.io/library/alpine:3.20", False),
    (["alpine:3.20"], "alpine", "docker.io/library/alpine:latest", False),
]


@pytest.mark.parametrize(("patterns", "written", "normalized", "ignored"), IGNORE)
def test_matches_ignore(patterns: list[str], written: str, normalized: str, ignored: bool) -> None:
    assert matches_ignore(patterns, written, normalized) is ignored


# --- --build-arg ---------------------------------------------------------------------------------------------------
def test_build_args_take_a_missing_value_from_the_environment() -> None:
    from pin_images.config import parse_build_args

    env = {"FROM_ENV": "python:3.12", "EMPTY": ""}
    assert parse_build_args(["A=1", "B=", "C=x=y", "FROM_ENV", "EMPTY", "UNSET"], env) == {
        "A": "1", "B": "", "C": "x=y", "FROM_ENV": "python:3.12", "EMPTY": "",  # UNSET: not set at all, as docker
    }
    with pytest.raises(ConfigError, match=r"--build-arg '=1': expected NAME=VALUE"):
        parse_build_args(["=1"], env)
