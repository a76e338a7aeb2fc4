"""The integration infrastructure itself: real registries in every mode, seeding, the counting proxy.

Also pins down how distribution 2.8 answers manifest requests whose Accept lacks a type, which the client relies on.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.support.proxy import LatencyProxy
from tests.support.registry_server import RegistryServer
from tests.support.seed import (
    ACCEPT_ALL,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    KINDS,
    OCI_INDEX,
    OCI_MANIFEST,
    BearerAuth,
    seed_image,
    sha256_digest,
)

MODES = ["registry", "htpasswd_registry", "token_registry", "tls_registry"]


def fetch_token(server: RegistryServer, scopes: list[str], auth: Any = "default") -> requests.Response:
    """GET the token realm with repeated ``scope`` parameters (basic credentials of the fixture by default)."""
    assert server.token_server is not None
    creds = (server.username, server.password) if auth == "default" else auth
    params = [("service", server.token_server.service), *(("scope", s) for s in scopes)]
    return requests.get(server.token_server.realm, params=params, auth=creds, timeout=5)


def pull_auth(server: RegistryServer, *repos: str) -> Any:
    """Credentials a client would end up with to pull ``repos`` from ``server``."""
    if server.mode == "htpasswd":
        return (server.username, server.password)
    if server.mode == "token":
        resp = fetch_token(server, [f"repository:{repo}:pull" for repo in repos])
        assert resp.status_code == 200, resp.text
        return BearerAuth(resp.json()["token"])
    return None


def head(server: RegistryServer | LatencyProxy, repo: str, ref: str, accept: str | None = ACCEPT_ALL,
         auth: Any = None, verify: bool | str = True, session: Any = requests) -> requests.Response:
    headers = {"Accept": accept} if accept else {}
    return session.head(f"{server.url}/v2/{repo}/manifests/{ref}", headers=headers, auth=auth, verify=verify,
                        timeout=5)


@pytest.mark.parametrize("fixture", MODES)
@pytest.mark.parametrize("kind", ["oci-index", "docker-list"])
def test_each_mode_serves_a_seeded_multi_arch_index(request: pytest.FixtureRequest, fixture: str, kind: str) -> None:
    server: RegistryServer = request.getfixturevalue(fixture)
    repo = f"mode-check/{kind}/app"
    image = seed_image(server.url, repo, "1.0", kind=kind, auth=server.push_auth, verify=server.verify)
    assert set(image.children) == {"linux/amd64", "linux/arm64/v8", "linux/arm/v7"}
    auth = pull_auth(server, repo)

    resp = head(server, repo, "1.0", auth=auth, verify=server.verify)
    assert resp.status_code == 200
    assert resp.headers["Docker-Content-Digest"] == image.digest == sha256_digest(image.body)
    assert resp.headers["Content-Type"] == image.media_type == (OCI_INDEX if kind == "oci-index" else DOCKER_LIST)
    for child in image.children.values():
        child_resp = head(server, repo, child, auth=auth, verify=server.verify)
        assert child_resp.status_code == 200
        assert child_resp.headers["Docker-Content-Digest"] == child
        assert child_resp.headers["Content-Type"] == image.child_media_type


@pytest.mark.parametrize("kind", KINDS)
def test_all_four_media_types_round_trip_byte_exact(registry: RegistryServer, kind: str) -> None:
    repo = f"kinds/deeply/nested/{kind}"
    image = seed_image(registry.url, repo, "latest", kind=kind)
    resp = head(registry, repo, "latest")
    assert (resp.headers["Docker-Content-Digest"], resp.headers["Content-Type"]) == (image.digest, image.media_type)
    body = requests.get(f"{registry.url}/v2/{repo}/manifests/latest", headers={"Accept": ACCEPT_ALL}, timeout=5)
    assert body.content == image.body
    if kind.endswith("manifest"):
        assert image.children == {}
        config = requests.get(f"{registry.url}/v2/{repo}/blobs/{body.json()['config']['digest']}", timeout=5).json()
        assert (config["os"], config["architecture"]) == ("linux", "amd64")


def test_htpasswd_rejects_wrong_or_missing_password(htpasswd_registry: RegistryServer) -> None:
    server = htpasswd_registry
    image = seed_image(server.url, "private/app", "v1", auth=server.push_auth)
    assert head(server, "private/app", "v1").status_code == 401
    resp = head(server, "private/app", "v1", auth=(server.username, "wrong"))
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="pin-images-test"'
    assert head(server, "private/app", "v1", auth=(server.username, server.password)).headers[
        "Docker-Content-Digest"] == image.digest


def test_token_mode_challenge_and_anonymous_denial(token_registry: RegistryServer) -> None:
    server, tokens = token_registry, token_registry.token_server
    assert tokens is not None
    seed_image(server.url, "tok/anon", "v1", auth=server.push_auth)
    resp = head(server, "tok/anon", "v1")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == (
        f'Bearer realm="{tokens.realm}",service="{tokens.service}",scope="repository:tok/anon:pull"'
    )
    tokens.reset()
    assert fetch_token(server, ["repository:tok/anon:pull"], auth=None).status_code == 401
    assert fetch_token(server, ["repository:tok/anon:pull"], auth=(server.username, "wrong")).status_code == 401
    assert [(r.status, r.had_authorization) for r in tokens.requests] == [(401, False), (401, True)]

    tokens.allow_anonymous = True
    try:
        resp = fetch_token(server, ["repository:tok/anon:pull,push"], auth=None)
    finally:
        tokens.allow_anonymous = False
    assert resp.status_code == 200
    assert head(server, "tok/anon", "v1", auth=BearerAuth(resp.json()["token"])).status_code == 200
    # Anonymous tokens carry pull only: pushing with one is refused.
    upload = requests.post(f"{server.url}/v2/tok/anon/blobs/uploads/", auth=BearerAuth(resp.json()["token"]),
                           timeout=5)
    assert upload.status_code == 401


def test_token_with_repeated_scopes_covers_two_repositories(token_registry: RegistryServer) -> None:
    server, tokens = token_registry, token_registry.token_server
    assert tokens is not None
    one = seed_image(server.url, "tok/one", "v1", kind="docker-list", auth=server.push_auth)
    two = seed_image(server.url, "tok/nested/two", "v1", kind="oci-manifest", auth=server.push_auth)
    tokens.reset()
    resp = fetch_token(server, ["repository:tok/one:pull", "repository:tok/nested/two:pull"])
    assert resp.status_code == 200
    body = resp.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == tokens.expires_in
    auth = BearerAuth(body["token"])
    assert head(server, "tok/one", "v1", auth=auth).headers["Docker-Content-Digest"] == one.digest
    assert head(server, "tok/nested/two", "v1", auth=auth).headers["Docker-Content-Digest"] == two.digest
    assert head(server, "tok/other", "v1", auth=auth).status_code == 401  # not in the token
    [record] = tokens.requests
    assert record.scopes == ("repository:tok/one:pull", "repository:tok/nested/two:pull")
    assert record.username == server.username and record.status == 200

    # max_scopes lets tests emulate a registry that grants fewer scopes than asked.
    tokens.max_scopes = 1
    try:
        partial = BearerAuth(fetch_token(server, ["repository:tok/one:pull", "repository:tok/nested/two:pull"])
                             .json()["token"])
    finally:
        tokens.max_scopes = None
    assert head(server, "tok/one", "v1", auth=partial).status_code == 200
    assert head(server, "tok/nested/two", "v1", auth=partial).status_code == 401


def test_token_oauth2_post(token_registry: RegistryServer) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    tokens.refresh_tokens["refresh-123"] = "pinner"
    form = {"grant_type": "refresh_token", "refresh_token": "refresh-123", "service": tokens.service,
            "scope": "repository:tok/one:pull", "client_id": "pin-images"}
    assert requests.post(tokens.realm, data=form, timeout=5).json()["access_token"]
    assert requests.post(tokens.realm, data={**form, "refresh_token": "nope"}, timeout=5).status_code == 401


def test_tls_needs_the_ca(tls_registry: RegistryServer) -> None:
    assert tls_registry.url.startswith("https://127.0.0.1:") and tls_registry.ca_path is not None
    image = seed_image(tls_registry.url, "secure/app", "v1", verify=str(tls_registry.ca_path))
    ok = head(tls_registry, "secure/app", "v1", verify=str(tls_registry.ca_path))
    assert ok.headers["Docker-Content-Digest"] == image.digest
    with pytest.raises(requests.exceptions.SSLError):
        head(tls_registry, "secure/app", "v1", verify=True)


def test_proxy_counts_requests_and_keeps_clients_on_it(registry: RegistryServer) -> None:
    latency = 0.02
    with LatencyProxy(registry.url, latency=latency) as proxy:
        image = seed_image(proxy.url, "proxied/app", "v1", kind="docker-list")
        # 3 platforms x (layer + config) blobs, POST + PUT each; uploads' absolute Location was rewritten to the proxy.
        assert proxy.count("POST", path_contains="/blobs/uploads/") == 6
        assert proxy.count("PUT", path_contains="/blobs/uploads/") == 6
        assert proxy.count("PUT", path_contains="/manifests/") == 4
        proxy.reset()
        assert proxy.count() == 0

        session = requests.Session()  # one kept-alive connection through the proxy
        started = time.monotonic()
        for _ in range(3):
            assert head(proxy, "proxied/app", "v1", session=session).headers["Docker-Content-Digest"] == image.digest
        assert head(proxy, "proxied/app", "missing", session=session).status_code == 404
        assert time.monotonic() - started >= 4 * latency  # a lower bound cannot flake
        assert proxy.count() == 4
        assert proxy.count("HEAD", status=200) == 3
        assert proxy.count(status=404) == 1
        assert {r.path for r in proxy.requests} == {"/v2/proxied/app/manifests/v1", "/v2/proxied/app/manifests/missing"}
        assert not any(r.authorization for r in proxy.requests)


def test_proxy_in_front_of_token_auth(token_registry: RegistryServer) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    seed_image(token_registry.url, "tok/proxied", "v1", auth=token_registry.push_auth)
    with LatencyProxy(tokens.realm) as token_proxy, LatencyProxy(
        token_registry.url, rewrites={tokens.realm: f"{token_proxy.url}/token"}
    ) as proxy:
        challenge = head(proxy, "tok/proxied", "v1").headers["WWW-Authenticate"]
        assert f'realm="{token_proxy.url}/token"' in challenge  # realm rewritten to the token proxy on request
        resp = requests.get(f"{token_proxy.url}/token", params={"scope": "repository:tok/proxied:pull"},
                            auth=(token_registry.username, token_registry.password), timeout=5)
        assert head(proxy, "tok/proxied", "v1", auth=BearerAuth(resp.json()["token"])).status_code == 200
        assert [(r.status, r.auth_scheme) for r in proxy.requests] == [(401, None), (200, "Bearer")]
        assert [(r.path, r.status, r.auth_scheme) for r in token_proxy.requests] == [("/token", 200, "Basic")]


def test_repointing_a_tag_changes_its_digest(registry: RegistryServer) -> None:
    first = seed_image(registry.url, "moving/app", "stable", salt="one")
    assert head(registry, "moving/app", "stable").headers["Docker-Content-Digest"] == first.digest
    second = seed_image(registry.url, "moving/app", "stable", salt="two")
    assert second.digest != first.digest and set(second.children.values()).isdisjoint(first.children.values())
    assert head(registry, "moving/app", "stable").headers["Docker-Content-Digest"] == second.digest
    assert head(registry, "moving/app", first.digest).status_code == 200  # the old index stays pullable by digest


# -- Facts about distribution 2.8 that the client's Accept header depends on ----------------------------------------
def test_docker_list_without_list_accept_answers_the_linux_amd64_child(registry: RegistryServer) -> None:
    image = seed_image(registry.url, "facts/list", "v1", kind="docker-list",
                       platforms=("linux/arm64/v8", "linux/amd64", "linux/arm/v7"))
    for accept in (DOCKER_MANIFEST, f"{OCI_INDEX}, {OCI_MANIFEST}, {DOCKER_MANIFEST}"):
        resp = head(registry, "facts/list", "v1", accept=accept)
        # Not the first child: the linux/amd64 one, silently, with a 200 (the wrong pin for a multi-arch tag).
        assert resp.status_code == 200
        assert resp.headers["Docker-Content-Digest"] == image.children["linux/amd64"]
        assert resp.headers["Content-Type"] == DOCKER_MANIFEST
    # By digest there is no conversion: the list itself comes back.
    by_digest = head(registry, "facts/list", image.digest, accept=DOCKER_MANIFEST)
    assert by_digest.headers["Docker-Content-Digest"] == image.digest
    assert by_digest.headers["Content-Type"] == DOCKER_LIST


def test_docker_list_without_amd64_child_is_404_without_list_accept(registry: RegistryServer) -> None:
    seed_image(registry.url, "facts/armonly", "v1", kind="docker-list", platforms=("linux/arm64/v8", "linux/arm/v7"))
    resp = requests.get(f"{registry.url}/v2/facts/armonly/manifests/v1", headers={"Accept": DOCKER_MANIFEST},
                        timeout=5)
    assert resp.status_code == 404 and resp.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


@pytest.mark.parametrize("accept", [None, "*/*", OCI_MANIFEST])
def test_docker_tag_without_docker_accept_is_converted_to_schema1(registry: RegistryServer, accept: str | None,
                                                                  ) -> None:
    image = seed_image(registry.url, "facts/schema1", "v1", kind="docker-list")
    resp = requests.get(f"{registry.url}/v2/facts/schema1/manifests/v1", headers={"Accept": accept} if accept else {},
                        timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v1+prettyjws"
    digest = resp.headers["Docker-Content-Digest"]
    assert digest != image.digest and digest not in image.children.values()
    # The header digest is of the unsigned payload, so it never equals sha256 of the signed body.
    assert sha256_digest(resp.content) != digest


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("oci-index", "OCI index found, but accept header does not support OCI indexes"),
        ("oci-manifest", "OCI manifest found, but accept header does not support OCI manifests"),
    ],
)
def test_oci_content_without_oci_accept_is_404_even_by_digest(registry: RegistryServer, kind: str, message: str,
                                                              ) -> None:
    image = seed_image(registry.url, f"facts/{kind}", "v1", kind=kind)
    no_oci = f"{DOCKER_LIST}, {DOCKER_MANIFEST}"
    for ref in ("v1", image.digest):
        assert head(registry, f"facts/{kind}", ref, accept=no_oci).status_code == 404
        resp = requests.get(f"{registry.url}/v2/facts/{kind}/manifests/{ref}", headers={"Accept": no_oci}, timeout=5)
        assert resp.json()["errors"] == [{"code": "MANIFEST_UNKNOWN", "message": message}]


def test_missing_tag_and_repository_are_both_manifest_unknown(registry: RegistryServer) -> None:
    seed_image(registry.url, "facts/exists", "v1", kind="oci-manifest")
    for repo in ("facts/exists", "facts/never-pushed"):
        resp = requests.get(f"{registry.url}/v2/{repo}/manifests/nope", headers={"Accept": ACCEPT_ALL}, timeout=5)
        assert resp.status_code == 404
        assert resp.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        assert head(registry, repo, "nope").status_code == 404
