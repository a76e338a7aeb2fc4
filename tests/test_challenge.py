"""Table tests for the WWW-Authenticate parser, from headers real registries send."""

from __future__ import annotations

import pytest

from pin_images.challenge import Challenge, parse_challenges

HUB = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'

CASES = [
    # Docker Hub on /v2/ (no scope) and on a manifest (scope)
    (HUB, [("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io"})]),
    (
        HUB + ',scope="repository:library/python:pull"',
        [("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                     "scope": "repository:library/python:pull"})],
    ),
    # token.md's example: the quoted scope holds a comma, which naive splitting breaks
    (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:samalba/my-app:pull,push"',
        [("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                     "scope": "repository:samalba/my-app:pull,push"})],
    ),
    # ghcr.io
    (
        'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"',
        [("bearer", {"realm": "https://ghcr.io/token", "service": "ghcr.io", "scope": "repository:user/image:pull"})],
    ),
    # gcr.io / Artifact Registry
    (
        'Bearer realm="https://gcr.io/v2/token",service="gcr.io"',
        [("bearer", {"realm": "https://gcr.io/v2/token", "service": "gcr.io"})],
    ),
    (
        'Bearer realm="https://us-docker.pkg.dev/v2/token",service="us-docker.pkg.dev"',
        [("bearer", {"realm": "https://us-docker.pkg.dev/v2/token", "service": "us-docker.pkg.dev"})],
    ),
    # quay.io
    (
        'Bearer realm="https://quay.io/v2/auth",service="quay.io"',
        [("bearer", {"realm": "https://quay.io/v2/auth", "service": "quay.io"})],
    ),
    # ECR: Basic with a realm and a service
    (
        'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
        [("basic", {"realm": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/", "service": "ecr.amazonaws.com"})],
    ),
    # ACR
    (
        'Bearer realm="https://myreg.azurecr.io/oauth2/token",service="myreg.azurecr.io"',
        [("bearer", {"realm": "https://myreg.azurecr.io/oauth2/token", "service": "myreg.azurecr.io"})],
    ),
    # Harbor
    (
        'Bearer realm="https://harbor.example.com/service/token",service="harbor-registry"',
        [("bearer", {"realm": "https://harbor.example.com/service/token", "service": "harbor-registry"})],
    ),
    # distribution with htpasswd
    ('Basic realm="Registry Realm"', [("basic", {"realm": "Registry Realm"})]),
    # two challenges in one header, and two headers joined by requests with ", "
    (
        'Basic realm="basic-realm", Bearer realm="https://t.example/token",service="svc"',
        [("basic", {"realm": "basic-realm"}), ("bearer", {"realm": "https://t.example/token", "service": "svc"})],
    ),
    (
        'Negotiate, Bearer realm="https://t.example/token"',
        [("negotiate", {}), ("bearer", {"realm": "https://t.example/token"})],
    ),
    # escaped quote and backslash inside a quoted string
    (r'Basic realm="say \"hi\" \\ there"', [("basic", {"realm": 'say "hi" \\ there'})]),
    # odd spacing and case: scheme and parameter names are case-insensitive, BWS around '='
    (
        'BEARER   Realm = "https://t.example/token" ,  SERVICE=svc  ,',
        [("bearer", {"realm": "https://t.example/token", "service": "svc"})],
    ),
    # bare (unquoted) realm URL, which is not a valid token but is seen in the wild
    ("Bearer realm=https://t.example/token,service=svc", [("bearer", {"realm": "https://t.example/token",
                                                                     "service": "svc"})]),
    # empty list elements
    (",, Basic realm=x ,,", [("basic", {"realm": "x"})]),
    # scheme alone
    ("Basic", [("basic", {})]),
    # empty quoted value
    ('Bearer realm="",service="x"', [("bearer", {"realm": "", "service": "x"})]),
    # junk: nothing usable
    ("", []),
    ("   ", []),
    ('"unterminated', []),
    ("=x, =y", []),
    # a parameter before any scheme is dropped, the challenge after it survives
    ('realm="orphan", Bearer realm="r"', [("bearer", {"realm": "r"})]),
    # junk inside one challenge does not hide the next challenge
    ('Bearer realm="r" trailing junk, Basic realm="b"', [("bearer", {"realm": "r"}), ("basic", {"realm": "b"})]),
    # unterminated quote runs to the end
    ('Bearer realm="https://x/token', [("bearer", {"realm": "https://x/token"})]),
]


@pytest.mark.parametrize(("header", "expected"), CASES)
def test_parse_challenges(header: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    got = parse_challenges(header)
    assert [(c.scheme, dict(c.params)) for c in got] == expected


def test_token68() -> None:
    (challenge,) = parse_challenges("Negotiate YII5BgYrBgEFBQKg==")
    assert challenge.scheme == "negotiate"
    assert challenge.token68 == "YII5BgYrBgEFBQKg=="
    assert challenge.params == ()


def test_token68_then_another_challenge() -> None:
    first, second = parse_challenges('Negotiate abc==, Basic realm="x"')
    assert first.token68 == "abc=="
    assert (second.scheme, second.get("realm")) == ("basic", "x")


def test_get_is_case_insensitive_and_returns_first() -> None:
    challenge = Challenge("bearer", (("realm", "a"), ("realm", "b")))
    assert challenge.get("REALM") == "a"
    assert challenge.get("service") is None
    assert challenge.get("service", "dflt") == "dflt"


def test_str_leaves_values_out() -> None:
    (challenge,) = parse_challenges('Bearer realm="https://t/token?secret=1",service="s"')
    assert str(challenge) == "bearer realm,service"
