"""Every file kind end to end against the real registry: Compose, Kubernetes, GitHub Actions, GitLab CI and
devcontainer files are pinned byte-exact next to Dockerfiles, each unique reference resolved once across all of them;
--update moves YAML pins; --check needs no network and never imports an HTTP library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pin_images.cli import main
from tests.support.proxy import LatencyProxy
from tests.support.registry_server import RegistryServer
from tests.support.seed import SeededImage, seed_image

ROOT = Path(__file__).resolve().parents[2]

# Each file marks the end of a reference with <name>; the pinned file has @digest there and is otherwise identical.
TREE = {
    "app/Dockerfile": (
        "FROM python:3.12-slim<python> AS build\nRUN --mount=type=bind,from=alpine:3.20<alpine>,target=/a true\n"
    ),
    "compose.yaml": (
        "x-base: &base\n"
        "  image: \"python:3.12-slim<python>\"   # shared with the Dockerfile\n"
        "services:\n"
        "  web:\r\n"  # a CRLF line among LF ones stays as it is
        "    image: nginx:1.27<nginx>  # proxy\n"
        "  worker:\n"
        "    <<: *base\n"
        "  jobs: {<<: *base, command: [rq]}\n"
        "  db: {image: 'postgres:16<postgres>'}\n"
        "  app:\n"
        "    build: ./app\n"
        "    image: example/app:dev\n"
        "  env:\n"
        "    image: ${IMAGE:-nginx:1.27}\n"
    ),
    "deploy/k8s.yaml": (
        "\ufeffapiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: apps/v1\n  kind: Deployment\n  spec:\n    template:\n      spec:\n        containers:\n"
        "        - {name: web, image: nginx:1.27<nginx>}\n"
        "        - name: sidecar\n          image: \"alpine:3.20<alpine>\"\n"
        "---\n"
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n"
        "  - {name: a, container: {image: postgres:16<postgres>}}\n"
    ),
    "deploy/config.yaml": "image: nginx:1.27\nreplicas: 3\n",  # no kind: left alone
    ".github/workflows/ci.yml": (
        "on: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    container: python:3.12-slim<python>\n"
        "    services:\n      db:\n        image: postgres:16<postgres>\n"
        "    steps:\n      - uses: docker://alpine:3.20<alpine>\n      - uses: actions/checkout@v4\n"
        "  matrix:\n    container: ${{ matrix.image }}\n"
    ),
    "ci/.gitlab-ci.yml": (
        "default:\n  image: python:3.12-slim<python>\n"
        ".db: &db\n  services: [{name: postgres:16<postgres>, alias: db}]\n"
        "test:\n  <<: *db\n  script: [make]\nrelease:\n  image: $CI_REGISTRY_IMAGE\n  script: [make]\n"
    ),
    ".devcontainer/devcontainer.json": (
        "// dev\n{\n  \"image\": \"mcr.microsoft.com/devcontainers/python:1-3.12<mcr>\", // base\n"
        "  \"features\": {},\n}\n"
    ),
}
REFS = {  # marker -> (registry, repository, tag)
    "python": ("docker.io", "library/python", "3.12-slim"),
    "alpine": ("docker.io", "library/alpine", "3.20"),
    "nginx": ("docker.io", "library/nginx", "1.27"),
    "postgres": ("docker.io", "library/postgres", "16"),
    "mcr": ("mcr.microsoft.com", "devcontainers/python", "1-3.12"),
}


def write_tree(root: Path, digests: dict[str, str]) -> dict[Path, bytes]:
    """Write TREE below ``root``; returns each file's expected bytes once pinned with ``digests``."""
    expected = {}
    for rel, template in TREE.items():
        before, after = template, template
        for marker in REFS:
            before = before.replace(f"<{marker}>", "")
            after = after.replace(f"<{marker}>", f"@{digests[marker]}")
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(before.encode())
        expected[path] = after.encode()
    return expected


@pytest.fixture(scope="module")
def images(registry: RegistryServer) -> dict[str, SeededImage]:
    return {m: seed_image(registry.url, repo, tag, kind="oci-index") for m, (_, repo, tag) in REFS.items()}


@pytest.fixture(scope="module")
def _proxy(registry: RegistryServer) -> Iterator[LatencyProxy]:
    with LatencyProxy(registry.url) as p:
        yield p


@pytest.fixture
def proxy(_proxy: LatencyProxy, images: dict[str, SeededImage]) -> LatencyProxy:
    _proxy.reset()
    return _proxy


def mirrors(url: str) -> list[str]:
    return ["--registry-mirror", f"docker.io={url}", "--registry-mirror", f"mcr.microsoft.com={url}"]


def test_every_kind_pinned_byte_exact_with_one_request_per_unique_reference(
    proxy: LatencyProxy, images: dict[str, SeededImage], cli_home: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    expected = write_tree(tmp_path, {m: i.digest for m, i in images.items()})
    untouched = (tmp_path / "deploy/config.yaml").read_bytes()

    assert main(["--no-config", *mirrors(proxy.url), str(tmp_path)]) == 1
    for path, data in expected.items():
        assert path.read_bytes() == data, path
    assert (tmp_path / "deploy/config.yaml").read_bytes() == untouched

    # Five unique references across six files of six kinds: five manifest requests, one per reference.
    heads = sorted(r.path for r in proxy.requests if "/manifests/" in r.path)
    assert heads == sorted(f"/v2/{repo}/manifests/{tag}" for _, repo, tag in REFS.values())
    capsys.readouterr()

    # Now pinned: --check passes, and the skipped values (a build, variables) do not fail it.
    proxy.reset()
    assert main(["--no-config", "--check", str(tmp_path)]) == 0, capsys.readouterr()
    assert proxy.requests == []


def test_check_reports_each_kind_and_line_as_json(
    images: dict[str, SeededImage], cli_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    write_tree(tmp_path, {m: i.digest for m, i in images.items()})
    monkeypatch.chdir(tmp_path)
    assert main(["--no-config", "--check", "--format", "json", "."]) == 1
    findings = json.loads(capsys.readouterr().out)["references"]
    by_file: dict[str, set[tuple[int, str]]] = {}
    for f in findings:
        by_file.setdefault(f["file"], set()).add((f["line"], f["status"]))
    assert by_file["compose.yaml"] == {(2, "unpinned"), (5, "unpinned"), (9, "unpinned"), (12, "skipped"),
                                       (14, "skipped")}  # fmt: skip
    assert by_file[".github/workflows/ci.yml"] == {(5, "unpinned"), (8, "unpinned"), (10, "unpinned"),
                                                   (13, "skipped")}  # fmt: skip
    assert by_file[".devcontainer/devcontainer.json"] == {(3, "unpinned")}
    assert "deploy/config.yaml" not in by_file
    kinds = {f["file"]: f["kind"] for f in findings}
    assert kinds == {
        "app/Dockerfile": "dockerfile", "compose.yaml": "compose", "deploy/k8s.yaml": "kubernetes",
        ".github/workflows/ci.yml": "github", "ci/.gitlab-ci.yml": "gitlab",
        ".devcontainer/devcontainer.json": "devcontainer",
    }  # fmt: skip
    columns = {(f["file"], f["line"]): f["column"] for f in findings}
    assert columns[("compose.yaml", 2)] == 11  # inside the quotes
    assert columns[(".github/workflows/ci.yml", 10)] == 24  # after docker://


def test_update_moves_yaml_pins(registry: RegistryServer, cli_home: Path, tmp_path: Path) -> None:
    old = seed_image(registry.url, "kinds/update/web", "1", kind="oci-index", salt="old")
    compose = tmp_path / "compose.yaml"
    k8s = tmp_path / "pod.yaml"
    compose.write_bytes(f"services:\n  web: {{image: \"kinds/update/web:1@{old.digest}\"}}  # pinned\n".encode())
    k8s.write_bytes(f"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: kinds/update/web:1@{old.digest}\n"
                    .encode())  # fmt: skip
    new = seed_image(registry.url, "kinds/update/web", "1", kind="oci-index", salt="new")
    assert new.digest != old.digest
    args = ["--no-config", "--registry-mirror", f"docker.io={registry.url}", str(tmp_path)]
    assert main(["--check", "--update", *args]) == 1  # stale
    assert main(["--update", *args]) == 1
    pinned = f"services:\n  web: {{image: \"kinds/update/web:1@{new.digest}\"}}  # pinned\n"
    assert compose.read_bytes() == pinned.encode()
    assert k8s.read_bytes().endswith(f"  - image: kinds/update/web:1@{new.digest}\n".encode())
    assert main(["--check", "--update", *args]) == 0


def test_named_compose_file_is_pinned_not_read_as_a_dockerfile(
    images: dict[str, SeededImage], registry: RegistryServer, cli_home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    Path("docker-compose.yml").write_text("services:\n  web:\n    image: nginx:1.27\n")
    Path("values.yaml").write_text("image: nginx:1.27\n")  # named, but of no kind: skipped quietly
    Path("package.json").write_text('{"image": "nginx:1.27"}\n')
    args = ["--no-config", *mirrors(registry.url)]
    assert main([*args, "docker-compose.yml", "values.yaml", "package.json"]) == 1
    out = capsys.readouterr()
    assert "unknown instruction" not in out.out + out.err
    pinned = f"services:\n  web:\n    image: nginx:1.27@{images['nginx'].digest}\n"
    assert Path("docker-compose.yml").read_text() == pinned
    assert Path("values.yaml").read_text() == "image: nginx:1.27\n"
    assert Path("package.json").read_text() == '{"image": "nginx:1.27"}\n'


def test_broken_compose_file_is_an_error_and_the_others_are_still_pinned(
    images: dict[str, SeededImage], registry: RegistryServer, cli_home: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    broken = tmp_path / "a" / "compose.yaml"
    broken.parent.mkdir()
    broken.write_text("services:\n  web:\n    image: nginx:1.27\n  db: [\n")
    good = tmp_path / "b" / "compose.yaml"
    good.parent.mkdir()
    good.write_text("services:\n  web:\n    image: nginx:1.27\n")
    assert main(["--no-config", *mirrors(registry.url), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "a/compose.yaml" in line]
    assert len(lines) == 1 and ":5: not a valid Compose file: " in lines[0], err
    assert broken.read_text() == "services:\n  web:\n    image: nginx:1.27\n  db: [\n"
    assert good.read_text() == f"services:\n  web:\n    image: nginx:1.27@{images['nginx'].digest}\n"


def test_check_on_yaml_files_imports_no_http_library(
    images: dict[str, SeededImage], cli_home: Path, tmp_path: Path
) -> None:
    write_tree(tmp_path, {m: i.digest for m, i in images.items()})
    code = (
        "import sys\n"
        "from pin_images.cli import main\n"
        f"code = main(['--no-config', '--check', {str(tmp_path)!r}])\n"
        "loaded = [m for m in ('requests', 'urllib3', 'http.client', 'google.auth') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "assert 'yaml' in sys.modules  # the YAML files were read\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr  # unpinned references fail the check
    assert "Traceback" not in done.stderr
