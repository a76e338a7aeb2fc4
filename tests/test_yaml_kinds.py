"""Tests for the YAML file kinds (Compose, Kubernetes, GitHub Actions, GitLab CI) and their shared yamlscan core:
which values are references, the exact span of each, and that pinning changes nothing but the inserted digest."""

from __future__ import annotations

import sys
import time

import pytest

from pin_images import kinds
from pin_images.errors import FileFormatError
from pin_images.uses import OK, SKIP, Edit, ScanOptions, apply

DIGEST = "sha256:" + "ab" * 32


def scan(kind: str, src: str | bytes, path: str = "f.yaml"):
    data = src.encode() if isinstance(src, str) else src
    return kinds.scan_file(kind, data, path, ScanOptions())


def found(kind: str, src: str | bytes, path: str = "f.yaml") -> list[tuple[object, ...]]:
    """(line, where, image or note, text of the span) for every use."""
    data = src.encode() if isinstance(src, str) else src
    text = data.decode("utf-8")
    out = []
    for u in scan(kind, data, path).uses:
        assert u.kind == kind
        out.append((u.line, u.instruction, u.image if u.status == OK else u.note, text[u.start : u.end]))
    return out


def pinned(kind: str, src: str | bytes, path: str = "f.yaml") -> bytes:
    data = src.encode() if isinstance(src, str) else src
    uses = scan(kind, data, path).uses
    return apply(data, [Edit(u.end, u.end, "@" + DIGEST) for u in uses if u.status == OK])


D = "@" + DIGEST

# --------------------------------------------------------------------------------------------------------------
# Compose
# --------------------------------------------------------------------------------------------------------------

COMPOSE_CASES = [
    # plain, with a trailing comment: the digest goes right after the reference
    ("services:\n  web:\n    image: nginx:1.27   # proxy\n",
     "services:\n  web:\n    image: nginx:1.27" + D + "   # proxy\n"),
    # quoted: inside the quotes
    ('services:\n  db:\n    image: "redis:7.4"\n', 'services:\n  db:\n    image: "redis:7.4' + D + '"\n'),
    ("services:\n  db:\n    image: 'redis:7.4'\n", "services:\n  db:\n    image: 'redis:7.4" + D + "'\n"),
    # flow style
    ('services: {db: {image: "x:1", ports: [1]}}\n', 'services: {db: {image: "x:1' + D + '", ports: [1]}}\n'),
    ("services: {db: {image: x:1}}\n", "services: {db: {image: x:1" + D + "}}\n"),
    # CRLF and a BOM stay
    ("\ufeffservices:\r\n  web:\r\n    image: nginx:1\r\n",
     "\ufeffservices:\r\n  web:\r\n    image: nginx:1" + D + "\r\n"),
    # an anchor and a tag before the value are not part of it
    ("services:\n  a:\n    image: &img nginx:1\n  b:\n    image: *img\n",
     "services:\n  a:\n    image: &img nginx:1" + D + "\n  b:\n    image: *img\n"),
    ("services:\n  a:\n    image: !!str nginx:1\n", "services:\n  a:\n    image: !!str nginx:1" + D + "\n"),
    ("services:\n  a:\n    image: &i !!str 'nginx:1'\n", "services:\n  a:\n    image: &i !!str 'nginx:1" + D + "'\n"),
    # a value on the next line
    ("services:\n  a:\n    image:\n      nginx:1\n", "services:\n  a:\n    image:\n      nginx:1" + D + "\n"),
    # already pinned values are the engine's business: the span is the whole reference
    ("services:\n  a:\n    image: nginx:1@" + DIGEST + "\n",
     "services:\n  a:\n    image: nginx:1@" + DIGEST + D + "\n"),
    # non-ASCII elsewhere in the file does not shift the span
    ("# café ☕ 😀\nservices:\n  a: {image: 'x:1'}  # ü\n",
     "# café ☕ 😀\nservices:\n  a: {image: 'x:1" + D + "'}  # ü\n"),
    # no final newline
    ("services:\n  a:\n    image: x:1", "services:\n  a:\n    image: x:1" + D),
]  # fmt: skip


@pytest.mark.parametrize(("src", "expected"), COMPOSE_CASES)
def test_compose_pins_exactly_the_reference(src, expected):
    assert pinned("compose", src, "compose.yaml") == expected.encode()


def test_compose_merge_keys_pin_the_anchored_scalar_once_where_it_is_written():
    src = (
        "x-common: &common\n"
        '  image: "redis:7.4"   # shared\n'
        "  restart: always\n"
        "services:\n"
        "  a:\n"
        "    <<: *common\n"
        "  b:\n"
        "    <<: [*common]\n"
        "  c:\n"
        "    <<: *common\n"
        "    image: own:1\n"
        "  d: *common\n"
    )
    assert found("compose", src) == [
        (2, "services.a.image", "redis:7.4", "redis:7.4"),
        (11, "services.c.image", "own:1", "own:1"),
    ]
    assert pinned("compose", src).count(b"@sha256:") == 2


def test_compose_anchor_not_reached_by_a_service_is_not_a_reference():
    assert found("compose", "x-unused: &u\n  image: a:1\nservices:\n  web:\n    image: b:1\n") == [
        (5, "services.web.image", "b:1", "b:1")
    ]


def test_compose_service_that_builds_its_image_is_skipped_with_a_note():
    src = "services:\n  app:\n    build: .\n    image: me/app:dev\n  db:\n    image: postgres:16\n"
    assert found("compose", src) == [
        (4, "services.app.image", "the service builds this image (build:); not pinned", ""),
        (6, "services.db.image", "postgres:16", "postgres:16"),
    ]


def test_compose_build_through_a_merge_key_also_skips():
    src = "x: &b\n  build: .\nservices:\n  app:\n    <<: *b\n    image: me/app:dev\n"
    assert [u.status for u in scan("compose", src).uses] == [SKIP]


SKIPPED_VALUES = [
    ("${IMAGE}", "holds a variable"),
    ("${IMAGE:-nginx:1}", "holds a variable"),
    ("nginx:${TAG}", "holds a variable"),
    ("$IMAGE", "holds a variable"),
    ('""', "empty value"),
    ("", "empty value"),
    ("~", "empty value"),
    ("null", "empty value"),
    ("'{{ img }}'", "holds a template expression"),
    ('"nginx:\\u0031"', "a double-quoted value with escape sequences"),
    ("'it''s'", "a single-quoted value with an escaped quote"),
    ("|\n      nginx:1", "a block scalar"),
    (">-\n      nginx:1", "a block scalar"),
    ("nginx\n      :1", "a value written over several lines"),
    ('"nginx\n      :1"', "a value written over several lines"),
]


@pytest.mark.parametrize(("value", "why"), SKIPPED_VALUES)
def test_values_that_are_not_a_plain_reference_are_skipped_with_a_note(value, why):
    src = f"services:\n  a:\n    image: {value}\n"
    uses = scan("compose", src).uses
    assert [(u.status, u.image) for u in uses] == [(SKIP, None)]
    assert uses[0].note.startswith(why)
    assert pinned("compose", src) == src.encode()


@pytest.mark.parametrize("value", ["3", "1.5", "true", "{a: b}", "[x]"])
def test_values_that_are_not_strings_are_not_references(value):
    assert scan("compose", f"services:\n  a:\n    image: {value}\n").uses == ()


def test_compose_with_no_services_or_of_another_shape_yields_nothing():
    for src in ("", "# only a comment\n", "version: '3'\n", "- a\n- b\n", "services: [a, b]\n", "services:\n  a: x\n"):
        assert scan("compose", src).uses == ()


def test_compose_multi_document_stream():
    src = "services:\n  a: {image: x:1}\n---\nservices:\n  b: {image: y:2}\n"
    assert [u.image for u in scan("compose", src).uses] == ["x:1", "y:2"]


# --------------------------------------------------------------------------------------------------------------
# Kubernetes
# --------------------------------------------------------------------------------------------------------------

K8S = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: busybox:1.36
      containers:
        - name: web
          image: "nginx:1.27"   # proxy
          env: [{name: image, value: not-me}]
"""


def test_kubernetes_every_image_key_in_a_manifest():
    assert found("kubernetes", K8S) == [
        (9, "spec.template.spec.initContainers[0].image", "busybox:1.36", "busybox:1.36"),
        (12, "spec.template.spec.containers[0].image", "nginx:1.27", "nginx:1.27"),
    ]


def test_kubernetes_multi_document_list_and_crds():
    src = (
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: Pod\n  spec: {containers: [{name: a, image: 'a:1'}]}\n"
        "---\n"
        "# an Argo Workflow: a CRD with images in its own places\n"
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n"
        "  - name: s\n    script:\n      image: python:3.12\n"
        "  - name: p\n    container:\n      image: '{{inputs.parameters.image}}'\n"
        "---\n"
        "apiVersion: tekton.dev/v1\nkind: Task\nspec:\n  steps:\n  - name: x\n    image: $(params.image)\n"
        "  - name: y\n    image: alpine:3.20\n"
        "...\n"
    )
    got = [(u.line, u.image, u.status) for u in scan("kubernetes", src).uses]
    assert got == [(6, "a:1", OK), (15, "python:3.12", OK), (18, None, SKIP), (25, None, SKIP), (27, "alpine:3.20", OK)]


def test_kubernetes_documents_without_apiversion_and_kind_are_left_alone():
    src = "kind: Pod\nimage: a:1\n---\napiVersion: v1\nimage: b:1\n---\napiVersion: v1\nkind: Pod\nimage: c:1\n"
    assert [u.image for u in scan("kubernetes", src).uses] == ["c:1"]


def test_kustomize_images_entries_are_untouched():
    src = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml]\n"
        "images:\n- name: nginx\n  newName: my.registry/nginx\n  newTag: '1.27'\n"
    )
    assert scan("kubernetes", src).uses == ()


@pytest.mark.parametrize(
    "src",
    [
        "image: a:1\n",  # an app's config.yaml
        "apiVersion: v1\nkind: Config\n",  # no image at all
        "apiVersion: v1\nkind: Pod\nspec: {containers: [{image: a:1}\n",  # broken YAML
        "apiVersion: v1\nkind: Pod\nimage: a:1\n\t\tbad: [\n",
        b"apiVersion: v1\nkind: Pod\nimage: \xff\n",  # not UTF-8
    ],
)
def test_other_yaml_files_yield_nothing_and_no_error(src):
    assert scan("kubernetes", src) == kinds.FileScan("kubernetes")


def test_helm_templates_are_left_alone_with_a_note():
    src = (
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n"
        "        - image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n"
        "        - image: nginx:1\n"
        "{{- if .Values.sidecar }}\n        - image: envoy:1\n{{- end }}\n"
    )
    result = scan("kubernetes", src, "chart/templates/deployment.yaml")
    assert result.uses == ()
    assert [n.line for n in result.notes] == [7]
    assert "template" in result.notes[0].message
    # The same text anywhere else does not parse: still a note, never an error.
    result = scan("kubernetes", src, "deploy.yaml")
    assert result.uses == () and len(result.notes) == 1
    # A Helm template that happens to parse is left alone too, because it lies in templates/.
    parses = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: nginx:1\n    name: '{{ .Release.Name }}'\n"
    assert scan("kubernetes", parses, "chart/templates/pod.yaml").uses == ()


# --------------------------------------------------------------------------------------------------------------
# GitHub Actions
# --------------------------------------------------------------------------------------------------------------

WORKFLOW = """\
name: ci
on:
  push:
    branches: [main]
jobs:
  test:
    runs-on: ubuntu-latest
    container: node:20-bookworm
    services:
      postgres:
        image: postgres:16   # db
      redis: {image: "redis:7"}
    steps:
      - uses: actions/checkout@v4
      - uses: docker://alpine:3.20
        with: {args: echo hi}
      - uses: 'docker://ghcr.io/owner/tool:1.2'
      - uses: docker://${{ matrix.image }}
  build:
    container:
      image: ubuntu:24.04
      options: --cpus 1
  matrix:
    container: ${{ matrix.container }}
  call:
    uses: owner/repo/.github/workflows/reusable.yml@main
"""


def test_workflow_references():
    assert found("github", WORKFLOW, ".github/workflows/ci.yml") == [
        (8, "jobs.test.container", "node:20-bookworm", "node:20-bookworm"),
        (11, "jobs.test.services.postgres.image", "postgres:16", "postgres:16"),
        (12, "jobs.test.services.redis.image", "redis:7", "redis:7"),
        (15, "jobs.test.steps[1].uses", "alpine:3.20", "alpine:3.20"),
        (17, "jobs.test.steps[2].uses", "ghcr.io/owner/tool:1.2", "ghcr.io/owner/tool:1.2"),
        (18, "jobs.test.steps[3].uses", "holds a variable; not pinned", ""),
        (21, "jobs.build.container.image", "ubuntu:24.04", "ubuntu:24.04"),
        (24, "jobs.matrix.container", "holds a variable; not pinned", ""),
    ]
    out = pinned("github", WORKFLOW, ".github/workflows/ci.yml").decode()
    assert "uses: docker://alpine:3.20" + D + "\n" in out
    assert "uses: 'docker://ghcr.io/owner/tool:1.2" + D + "'\n" in out


@pytest.mark.parametrize("on", ["on", "'on'", "true", "yes", "on: push\non"])
def test_workflow_on_key_read_as_a_boolean_does_not_matter(on):
    # YAML 1.1 reads `on` (and yes/true) as the boolean true; the jobs are found either way.
    src = f"{on}:\n  push: {{}}\njobs:\n  a:\n    container: node:20\n"
    if on.startswith("on: push"):
        src = "on: push\n" + src.split("\n", 1)[1]
    assert [u.image for u in scan("github", src, ".github/workflows/x.yml").uses] == ["node:20"]


def test_action_metadata_docker_image():
    src = "name: x\nruns:\n  using: docker\n  image: docker://debian:12-slim\n  args: [a]\n"
    assert found("github", src, "action.yml") == [(4, "runs.image", "debian:12-slim", "debian:12-slim")]
    assert pinned("github", src, "action.yml") == src.replace("12-slim", "12-slim" + D).encode()
    # A Dockerfile action builds its image: left alone.
    assert scan("github", "runs:\n  using: docker\n  image: Dockerfile\n", "action.yaml").uses == ()
    # A composite action's steps may run docker:// actions.
    composite = "runs:\n  using: composite\n  steps:\n    - uses: docker://alpine:3\n"
    assert [u.image for u in scan("github", composite, "sub/action.yml").uses] == ["alpine:3"]


# --------------------------------------------------------------------------------------------------------------
# GitLab CI
# --------------------------------------------------------------------------------------------------------------

GITLAB = """\
image: ruby:3.3
services:
  - postgres:16
variables:
  image: not-a-reference
  IMAGE: also-not
default:
  image: {name: "python:3.12", entrypoint: [""]}
  services: [{name: redis:7, alias: cache}, docker:24-dind]
stages: [test]
.template: &tmpl
  image: node:20
  services:
    - name: mysql:8
test:
  <<: *tmpl
  script: [make test]
release:
  extends: .template
  image: $CI_REGISTRY_IMAGE:latest
include:
  - template: Jobs/SAST.gitlab-ci.yml
"""


def test_gitlab_images_and_services_everywhere():
    assert found("gitlab", GITLAB, ".gitlab-ci.yml") == [
        (1, "image", "ruby:3.3", "ruby:3.3"),
        (3, "services[0]", "postgres:16", "postgres:16"),
        (8, "default.image.name", "python:3.12", "python:3.12"),
        (9, "default.services[0].name", "redis:7", "redis:7"),
        (9, "default.services[1]", "docker:24-dind", "docker:24-dind"),
        (12, ".template.image", "node:20", "node:20"),
        (14, ".template.services[0].name", "mysql:8", "mysql:8"),
        (20, "release.image", "holds a variable; not pinned", ""),
    ]


# --------------------------------------------------------------------------------------------------------------
# Errors, and files whose kind comes from their name
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "path", "src", "line"),
    [
        ("compose", "compose.yaml", "services:\n  a:\n    image: x:1\n  b: [\n", 5),
        ("compose", "compose.yaml", "services:\n  a: b: c\n", 2),
        ("github", ".github/workflows/ci.yml", "jobs:\n  a:\n\tcontainer: x\n", 3),
        ("gitlab", ".gitlab-ci.yml", "a: 1\na: *undefined\n", 2),
        ("compose", "compose.yaml", b"services:\n  a: {image: \xff}\n", 2),
        ("compose", "compose.yaml", "services:\n  a: {image: \x07}\n", 2),
    ],
)
def test_named_kinds_that_do_not_parse_raise_one_line_errors(kind, path, src, line):
    with pytest.raises(FileFormatError) as err:
        scan(kind, src, path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: not a ")
    assert "\n" not in message


def test_named_kind_with_template_syntax_is_a_note_not_an_error():
    src = "services:\n  web:\n    image: {{ .Image }}\n{% if x %}\n"
    result = scan("compose", src, "docker-compose.yml")
    assert result.uses == () and [n.line for n in result.notes] == [3]


@pytest.mark.parametrize("libyaml", [True, False])
@pytest.mark.parametrize(
    "src",
    [
        "services: " + "[" * 200_000 + "]" * 200_000 + "\n",
        "services: " + "{a: " * 100_000 + "\n",
        "services:\n" + "- " * 100_000 + "x\n",
        "services:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 600)),
    ],
    ids=["flow-sequences", "flow-mappings", "block-sequences", "block-mappings"],
)
def test_deep_nesting_is_a_quick_error_not_a_crash(src, libyaml, monkeypatch):
    # PyYAML's composers recurse per level: libyaml's crashes the process (a hostile file must not kill the hook).
    import yaml

    if not libyaml:
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    with pytest.raises(FileFormatError) as err:
        scan("compose", src, "compose.yaml")
    message = str(err.value)
    assert message.startswith("compose.yaml:")
    assert "\n" not in message
    # Our own cap of 500 levels, or, for flow collections, the nesting limit that newer libyaml builds (PyYAML
    # 6.0.4's wheels) enforce before it: either way one line, quickly, and the process lives.
    assert message.endswith(
        (": not a valid Compose file: nested more than 500 levels deep",
         ": not a valid Compose file: while increasing flow level exceeded maximum nesting depth")
    )


def test_alias_bomb_is_linear():
    # Billion laughs: 2**40 paths to one scalar through nested aliases; each node must be visited once.
    lines = ["  a0: &a0 {image: 'x:1', build: {}}"]
    lines += [f"  a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 40)]
    lines += [f"  m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}" if i else "  m0: &m0 {image: 'y:1'}" for i in range(40)]
    bomb = "\n".join(lines) + "\n"
    cases = [
        ("kubernetes", "apiVersion: v1\nkind: List\nitems:\n" + bomb, ["x:1", "y:1"]),
        ("compose", "x:\n" + bomb + "services:\n  s: *m39\n  t: {<<: [*m39, *m38]}\n", ["y:1"]),
        ("gitlab", "x:\n" + bomb + "job:\n  <<: *m39\n", ["y:1"]),
    ]
    for kind, src, images in cases:
        started = time.monotonic()
        assert [u.image for u in scan(kind, src).uses] == images, kind
        assert time.monotonic() - started < 20  # a hang guard, not a timing assertion


def test_yaml_is_imported_only_when_a_yaml_file_is_scanned():
    import subprocess

    code = (
        "import sys\n"
        "from pin_images import kinds\n"
        "from pin_images.uses import ScanOptions\n"
        "kinds.scan_file('dockerfile', b'FROM alpine:3\\n', 'Dockerfile', ScanOptions())\n"
        "kinds.kind_for_name('compose.yaml'); kinds.kind_for_named_file('x.yaml', b'a: 1')\n"
        "assert 'yaml' not in sys.modules, 'yaml imported'\n"
        "kinds.scan_file('kubernetes', b'a: 1', 'x.yaml', ScanOptions())\n"
        "assert 'yaml' not in sys.modules, 'yaml imported for a file that cannot be a manifest'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------------------------
# The C composer and the pure-Python one agree on every span
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("src", "expected"), COMPOSE_CASES)
def test_python_composer_gives_the_same_spans(src, expected, monkeypatch):
    import yaml

    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    assert pinned("compose", src, "compose.yaml") == expected.encode()


def test_c_composer_with_wrong_marks_falls_back_to_python(monkeypatch):
    import yaml

    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("no libyaml")

    class Shifted(yaml.CSafeLoader):  # marks one character off, as a libyaml that counted bytes would give
        def get_event(self):
            event = super().get_event()
            if isinstance(event, yaml.ScalarEvent):
                event.start_mark = yaml.Mark("", event.start_mark.index + 1, 0, 0, None, None)
                event.end_mark = yaml.Mark("", event.end_mark.index + 1, 0, 0, None, None)
            return event

    monkeypatch.setattr(yaml, "CSafeLoader", Shifted)
    src = "# é\nservices:\n  a: {image: 'x:1'}\n"
    assert pinned("compose", src) == src.replace("x:1", "x:1" + D).encode()


def test_unquoted_template_expression_that_parses_leaves_the_file_alone():
    # `{{replicas}}` is valid YAML (a mapping inside a mapping), but the file is a template all the same.
    src = "apiVersion: v1\nkind: ReplicationController\nspec:\n  replicas: {{replicas}}\n  template:\n" \
          "    spec: {containers: [{image: 'etcd:3'}]}\n"  # fmt: skip
    result = scan("kubernetes", src, "etcd-controller-template.yaml")
    assert result.uses == () and [n.line for n in result.notes] == [4]
    result = scan("compose", "services:\n  a:\n    image: x:1\n    replicas: {{ n }}\n", "compose.yaml")
    assert result.uses == () and [n.line for n in result.notes] == [4]


def test_tool_configurations_shaped_like_manifests_are_not_kubernetes():
    # Skaffold's `image:` entries name the images it builds.
    src = "apiVersion: skaffold/v4beta6\nkind: Config\nbuild:\n  artifacts:\n  - image: emailservice\n"
    assert scan("kubernetes", src, "skaffold.yaml").uses == ()


def test_gitlab_reference_tags_name_keys_not_images():
    src = ".svc: &s\n  - name: redis:7\njob:\n  services: !reference [.svc]\n  image: !reference [.base, image]\n"
    assert scan("gitlab", src, ".gitlab-ci.yml").uses == ()


def test_workflow_without_containers_is_not_parsed():
    import subprocess

    code = (
        "import sys\n"
        "from pin_images import kinds\n"
        "from pin_images.uses import ScanOptions\n"
        "data = b'on: [push]\\njobs:\\n  a:\\n    steps: [{uses: actions/checkout@v4}]\\n'\n"
        "assert kinds.scan_file('github', data, '.github/workflows/ci.yml', ScanOptions()).uses == ()\n"
        "assert 'yaml' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_values_libyaml_cannot_pin_verbatim_are_not_parsed_twice(monkeypatch):
    import yaml

    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("no libyaml")
    parsed = []

    class Counting(yaml.SafeLoader):
        def __init__(self, stream):
            parsed.append(stream)
            super().__init__(stream)

    monkeypatch.setattr(yaml, "SafeLoader", Counting)
    src = 'services:\n  a: {image: "x\\u0031"}\n  b:\n    image: |\n      y:1\n  c:\n    image: x\n      :1\n'
    assert [u.status for u in scan("compose", src).uses] == [SKIP, SKIP, SKIP]
    assert parsed == []  # libyaml's marks were enough: the pure-Python parser never ran
