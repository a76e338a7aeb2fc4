"""Authentication against `responses` fakes: challenges, Basic and Bearer, the token cache and its single flight,
multi-scope prefetch, and what a refusal says."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from pin_images import manifest as mf
from pin_images.credentials import Credential
from pin_images.errors import AuthError, BadResponseError, RegistryConnectionError
from pin_images.reference import parse
from tests.support.fake_registry import (
    AMD64,
    HUB,
    HUB_REALM,
    REG,
    FakeDNS,
    FakeKeychain,
    FakeRegistry,
    FakeTime,
    make_client,
    push_multiarch,
)

# ------------------------------------------------------------------------------------------------ bearer


def test_bearer_flow_and_token_cache(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    python, _ = push_multiarch(registry, "library/python", "3.12")
    alpine, _ = push_multiarch(registry, "library/alpine", "3.20")
    client = make_client(clock)

    assert client.resolve(parse("python:3.12")).digest == python
    assert (client.stats.manifest_head, client.stats.token, client.stats.unauthorized) == (2, 1, 1)
    token_request = registry.token_requests[0]
    query = parse_qs(urlsplit(token_request.url).query)
    assert query == {"service": ["registry.docker.io"], "scope": ["repository:library/python:pull"]}
    assert "Authorization" not in token_request.headers  # anonymous token

    # A second repository on the same registry: the challenge is known, so no 401 round trip.
    assert client.resolve(parse("alpine:3.20")).digest == alpine
    assert (client.stats.manifest_head, client.stats.token, client.stats.unauthorized) == (3, 2, 1)

    # The same repository again: the token is reused.
    client.resolve(parse("python:3.12"))
    assert (client.stats.manifest_head, client.stats.token, client.stats.unauthorized) == (4, 2, 1)

    # After expiry (300 s minus slack) a fresh token is fetched up front, still without a 401.
    clock.now += 291
    client.resolve(parse("python:3.12"))
    assert (client.stats.manifest_head, client.stats.token, client.stats.unauthorized) == (5, 3, 1)


def test_token_default_lifetime_without_expires_in(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, "https://ghcr.io", auth="bearer", realm="https://ghcr.io/token",
                            service="ghcr.io", expires_in=None)
    registry.push_image("owner/img", AMD64, "v1")
    client = make_client(clock)
    ref = parse("ghcr.io/owner/img:v1")
    client.resolve(ref)
    clock.now += 49
    client.resolve(ref)
    assert client.stats.token == 1
    clock.now += 2  # 60 s default minus 10 s slack
    client.resolve(ref)
    assert client.stats.token == 2


def test_revoked_cached_token_is_refetched(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    registry.push_image("library/python", AMD64, "3.12")
    client = make_client(clock)
    client.resolve(parse("python:3.12"))
    registry.tokens.clear()  # the registry forgot every token it issued
    client.resolve(parse("python:3.12"))
    assert client.stats.token == 2
    assert client.stats.unauthorized == 2


def test_access_token_field(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/v1", status=401,
             headers={"WWW-Authenticate": f'Bearer realm="{REG}/oauth2/token",service="reg"'})
    rsps.add("GET", f"{REG}/oauth2/token", json={"access_token": "abc.def"})
    rsps.add("HEAD", f"{REG}/v2/app/manifests/v1", headers={"Content-Type": mf.OCI_INDEX,
                                                         "Docker-Content-Digest": "sha256:" + "a" * 64},
             match=[responses.matchers.header_matcher({"Authorization": "Bearer abc.def"})])
    assert make_client(clock).resolve(parse("registry.example.com/app:v1")).digest == "sha256:" + "a" * 64


@pytest.mark.parametrize("body", [b"<html>", b"[]", b'{"token": ""}', b'{"token": "a\\r\\nX-Evil: 1"}', b"{}"])
def test_bad_token_response(rsps: responses.RequestsMock, clock: FakeTime, body: bytes) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/v1", status=401,
             headers={"WWW-Authenticate": f'Bearer realm="{REG}/token"'})
    rsps.add("GET", f"{REG}/token", body=body)
    with pytest.raises(BadResponseError, match=r"bad registry response from registry.example.com: token response"):
        make_client(clock).resolve(parse("registry.example.com/app:v1"))


def test_401_without_usable_challenge(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/v1", status=401, headers={"WWW-Authenticate": "Negotiate"})
    with pytest.raises(AuthError, match="no usable WWW-Authenticate challenge"):
        make_client(clock).resolve(parse("registry.example.com/app:v1"))


def test_concurrent_first_contact_single_flight(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    digest = registry.push_image("library/python", AMD64, "3.12")[1]
    client = make_client(clock)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: client.resolve(parse("python:3.12")).digest, range(16)))
    assert set(results) == {digest}
    # One thread met the 401 while the others waited; one token fetch served them all.
    assert client.stats.unauthorized == 1
    assert client.stats.token == 1
    assert client.stats.manifest_head == 17


# ------------------------------------------------------------------------------------------------ prefetch


def test_prefetch_one_token_for_many_repositories(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    names = ["python", "alpine", "debian"]
    for name in names:
        registry.push_image(f"library/{name}", AMD64, "1")
    client = make_client(clock)
    refs = [parse(f"{name}:1") for name in [*names, "python"]]
    client.prefetch(refs)
    assert (client.stats.ping, client.stats.unauthorized, client.stats.token) == (1, 1, 1)
    query = parse_qs(urlsplit(registry.token_requests[0].url).query)
    assert query["scope"] == [f"repository:library/{n}:pull" for n in names]
    for ref in refs:
        client.resolve(ref)
    # N manifest requests, one token, one 401 for the whole registry.
    stats = client.stats.as_dict()
    assert (stats["manifest_head"], stats["manifest_get"], stats["token"], stats["unauthorized"]) == (4, 0, 1, 1)


def test_learned_challenge_is_not_pinged_again(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    registry.push_image("library/python", AMD64, "1")
    client = make_client(clock)
    client.prefetch([parse("python:1"), parse("library/python:2")])
    assert (client.stats.ping, client.stats.unauthorized, client.stats.token) == (1, 1, 1)
    client.prefetch([parse("python:1")])
    client.resolve(parse("python:1"))
    stats = client.stats.as_dict()
    assert (stats["ping"], stats["unauthorized"], stats["token"], stats["manifest_head"]) == (1, 1, 1, 1)


def test_prefetch_chunks_scopes(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer")
    client = make_client(clock)
    client.prefetch([parse(f"team/image-number-{i}:1") for i in range(100)])
    assert 2 <= client.stats.token <= 3
    for request in registry.token_requests:
        assert len(request.url or "") <= 4000
    assert sum(len(parse_qs(urlsplit(r.url).query)["scope"]) for r in registry.token_requests) == 100


def test_prefetch_granted_fewer_scopes_falls_back(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer", token_scopes_limit=1)
    python = registry.push_image("library/python", AMD64, "1")[1]
    alpine = registry.push_image("library/alpine", AMD64, "1")[1]
    client = make_client(clock)
    client.prefetch([parse("python:1"), parse("alpine:1")])
    assert client.resolve(parse("python:1")).digest == python
    assert client.resolve(parse("alpine:1")).digest == alpine  # 401 with the shared token, then its own token
    assert client.stats.token == 2


def test_prefetch_is_harmless_when_it_fails(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("GET", f"{REG}/v2/", body=requests.ConnectionError("Connection refused"))
    client = make_client(clock)
    client.prefetch([parse("registry.example.com/app:1")])  # no exception
    # ... and the failure is remembered: the lookup fails with it at once, without another round of tries.
    with pytest.raises(RegistryConnectionError, match="connection refused \\(after 3 tries\\)"):
        client.resolve(parse("registry.example.com/app:1"))
    assert len(rsps.calls) == 3


def test_prefetch_open_registry(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, REG)
    registry.push_image("app", AMD64, "1")
    client = make_client(clock)
    client.prefetch([parse("registry.example.com/app:1")])
    client.resolve(parse("registry.example.com/app:1"))
    assert (client.stats.ping, client.stats.token, client.stats.manifest_head) == (1, 0, 1)


# ------------------------------------------------------------------------------------------------ credentials


def test_basic_auth(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, REG, auth="basic", basic=("alice", "s3cret"))
    registry.push_image("team/app", AMD64, "1")
    registry.push_image("team/other", AMD64, "1")
    keychain = FakeKeychain({"registry.example.com": Credential("alice", "s3cret", "docker config auths")})
    client = make_client(clock, keychain)
    client.resolve(parse("registry.example.com/team/app:1"))
    client.resolve(parse("registry.example.com/team/other:1"))
    assert client.stats.unauthorized == 1  # the second repository sends Basic straight away
    assert client.stats.token == 0
    assert registry.requests[-1].headers["Authorization"].startswith("Basic ")


def test_bearer_with_basic_credentials_to_token_server(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, HUB, auth="bearer", basic=("bob", "pw"))
    registry.push_image("bob/private", AMD64, "1")
    keychain = FakeKeychain({"docker.io": Credential("bob", "pw", "credential helper desktop")})
    make_client(clock, keychain).resolve(parse("bob/private:1"))
    expected = "Basic " + base64.b64encode(b"bob:pw").decode()
    assert registry.token_requests[0].headers["Authorization"] == expected
    assert keychain.asked == ["docker.io"]


def test_identity_token_uses_refresh_grant(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, REG, auth="bearer", realm=f"{REG}/oauth2/token", service="registry.example.com")
    registry.push_image("app", AMD64, "1")
    keychain = FakeKeychain({"registry.example.com": Credential("<token>", "refresh-xyz", "auths identitytoken")})
    make_client(clock, keychain).resolve(parse("registry.example.com/app:1"))
    (token_request,) = registry.token_requests
    assert token_request.method == "POST"
    form = parse_qs(token_request.body if isinstance(token_request.body, str) else token_request.body.decode())
    assert form == {"grant_type": ["refresh_token"], "refresh_token": ["refresh-xyz"], "client_id": ["pin-images"],
                    "scope": ["repository:app:pull"], "service": ["registry.example.com"]}
    assert "Authorization" not in token_request.headers


def test_401_after_auth_names_sources_not_secrets(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, REG, auth="basic", basic=("alice", "right"))
    registry.push_image("app", AMD64, "1")
    keychain = FakeKeychain({"registry.example.com": Credential("alice", "wrong-pw", "credential helper pass")})
    with pytest.raises(AuthError) as info:
        make_client(clock, keychain).resolve(parse("registry.example.com/app:1"))
    message = str(info.value)
    assert "registry.example.com" in message
    assert "credential helper pass" in message
    assert "docker login registry.example.com" in message
    assert "wrong-pw" not in message
    assert base64.b64encode(b"alice:wrong-pw").decode() not in message
    assert "\n" not in message


def test_token_server_refuses_credentials(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    FakeRegistry(rsps, HUB, auth="bearer", basic=("bob", "pw"))
    keychain = FakeKeychain({"docker.io": Credential("bob", "bad", "docker config auths")})
    with pytest.raises(AuthError) as info:
        make_client(clock, keychain).resolve(parse("bob/private:1"))
    assert "docker config auths" in str(info.value)
    assert "`docker login`" in str(info.value)
    assert "bad" not in str(info.value).replace("bad registry", "")


def test_anonymous_denied(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    FakeRegistry(rsps, HUB, auth="bearer", token_scopes_limit=None)
    rsps.replace("GET", HUB_REALM, json={"token": "anon"})  # a token without the private repository's scope
    with pytest.raises(AuthError) as info:
        make_client(clock).resolve(parse("bob/private:1"))
    assert str(info.value) == (
        "docker.io requires authentication (HTTP 401) for bob/private; no credentials found (looked in: "
        "/home/u/.docker/config.json (no entry)); log in with `docker login`, and check that the repository "
        "exists and you may pull it"
    )


def test_403(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", status=403)
    with pytest.raises(AuthError, match=r"registry.example.com denied access \(HTTP 403\) for app"):
        make_client(clock).resolve(parse("registry.example.com/app:1"))


def test_credential_source_failure_is_a_registry_error(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    from pin_images.errors import CredentialError

    class BrokenKeychain(FakeKeychain):
        def get(self, host: str) -> Credential | None:
            raise CredentialError("docker-credential-desktop failed: exit 1")

    FakeRegistry(rsps, REG, auth="basic", basic=("a", "b"))
    with pytest.raises(AuthError, match="docker-credential-desktop failed"):
        make_client(clock, BrokenKeychain()).resolve(parse("registry.example.com/app:1"))


def test_plain_http_realm_of_an_https_registry_is_refused(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    """Once this realm was asked anonymously; now it is not asked at all: an https registry's realm must be https."""
    registry = FakeRegistry(rsps, REG, auth="bearer", realm="http://auth.example.net/token", service="s")
    registry.push_image("app", AMD64, "1")
    keychain = FakeKeychain({"registry.example.com": Credential("alice", "pw", "docker config")})
    with pytest.raises(BadResponseError) as info:
        make_client(clock, keychain).resolve(parse("registry.example.com/app:1"))
    message = str(info.value)
    assert "registry.example.com" in message and "http://auth.example.net" in message and "not https" in message
    assert registry.token_requests == []


@pytest.mark.parametrize(
    ("realm", "address", "why"),
    [
        ("https://127.0.0.1:8443/token", None, "a loopback address"),
        ("https://localhost/token", None, "a loopback address"),
        ("https://169.254.169.254/latest/meta-data/", None, "a link-local address"),
        ("https://[fe80::1]/token", None, "a link-local address"),
        ("https://10.1.2.3/token", None, "a private address"),
        ("https://172.16.0.9/token", None, "a private address"),
        ("https://192.168.0.1/token", None, "a private address"),
        ("https://[fc00::1]/token", None, "a private address"),
        ("https://0.0.0.0/token", None, "an unspecified address"),
        ("https://auth.internal.example/token", "10.9.8.7", "a private address"),  # a name is judged by its address
    ],
)
def test_internal_realm_of_a_public_registry_is_refused(rsps: responses.RequestsMock, clock: FakeTime, dns: FakeDNS,
                                                        realm: str, address: str | None, why: str) -> None:
    if address:
        dns.addresses["auth.internal.example"] = address
    registry = FakeRegistry(rsps, REG, auth="bearer", realm=realm, service="s")
    registry.push_image("app", AMD64, "1")
    with pytest.raises(BadResponseError) as info:
        make_client(clock).resolve(parse("registry.example.com/app:1"))
    message = str(info.value)
    assert "registry.example.com" in message and urlsplit(realm).netloc in message and why in message
    assert registry.token_requests == []


def test_internal_realm_of_an_internal_registry_is_allowed(rsps: responses.RequestsMock, clock: FakeTime,
                                                           dns: FakeDNS) -> None:
    """A company registry on 10.0.0.2 with its token service on 10.0.0.3: both inside, nothing to protect."""
    dns.addresses.update({"registry.corp.example": "10.0.0.2", "auth.corp.example": "10.0.0.3"})
    registry = FakeRegistry(rsps, "https://registry.corp.example", auth="bearer",
                            realm="https://auth.corp.example/token", service="s")
    digest = registry.push_image("app", AMD64, "1")[1]
    assert make_client(clock).resolve(parse("registry.corp.example/app:1")).digest == digest


def test_realm_on_the_registrys_own_host_is_allowed(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, "https://10.0.0.2:5000", auth="bearer", realm="https://10.0.0.2:5001/token",
                            service="s")
    digest = registry.push_image("app", AMD64, "1")[1]
    assert make_client(clock).resolve(parse("10.0.0.2:5000/app:1")).digest == digest


def test_realm_of_a_loopback_registry_may_not_be_link_local(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    """Being on this machine allows realms on this machine, not the cloud metadata service."""
    registry = FakeRegistry(rsps, "http://127.0.0.1:5000", auth="bearer",
                            realm="http://169.254.169.254/latest/meta-data/", service="s")
    registry.push_image("app", AMD64, "1")
    with pytest.raises(BadResponseError, match=r"169\.254\.169\.254.*a link-local address"):
        make_client(clock).resolve(parse("127.0.0.1:5000/app:1"))
    assert registry.token_requests == []


def test_loopback_http_realm_gets_credentials(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    registry = FakeRegistry(rsps, "http://127.0.0.1:5000", auth="bearer", realm="http://127.0.0.1:5001/token",
                            service="s", basic=("u", "p"))
    registry.push_image("app", AMD64, "1")
    keychain = FakeKeychain({"127.0.0.1:5000": Credential("u", "p", "docker config")})
    make_client(clock, keychain).resolve(parse("127.0.0.1:5000/app:1"))
    assert registry.token_requests[0].headers["Authorization"].startswith("Basic ")

