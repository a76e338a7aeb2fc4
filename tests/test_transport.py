"""Transport against `responses` fakes: TLS trust, hand-followed redirects, retries, backoff and Retry-After."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests
import responses

from pin_images import manifest as mf
from pin_images.credentials import Credential
from pin_images.errors import BadResponseError, RegistryConnectionError
from pin_images.reference import parse
from pin_images.registry import RegistryClient
from tests.support.fake_registry import (
    AMD64,
    HUB,
    REG,
    FakeDNS,
    FakeKeychain,
    FakeRegistry,
    FakeTime,
    RecordingSession,
    make_client,
)

# ------------------------------------------------------------------------------------------------ TLS


def test_certs_d_verify_path(rsps: responses.RequestsMock, clock: FakeTime, tmp_path: Any) -> None:
    other = tmp_path / "empty"
    other.mkdir()
    ca = tmp_path / "certs.d" / "registry.example.com:5000" / "ca.crt"
    ca.parent.mkdir(parents=True)
    ca.write_text("dummy")
    url = "https://registry.example.com:5000/v2/app/manifests/1"
    rsps.add("HEAD", url, headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", headers={"Content-Type": mf.OCI_INDEX,
                                                        "Docker-Content-Digest": "sha256:" + "b" * 64})
    session = RecordingSession()
    client = make_client(clock, session=session, ca_dirs=[str(other), str(tmp_path / "certs.d")])
    client.resolve(parse("registry.example.com:5000/app:1"))
    client.resolve(parse("registry.example.com/app:1"))
    assert session.calls[0]["verify"] == str(ca)
    assert session.calls[1]["verify"] is None  # session / REQUESTS_CA_BUNDLE decide


def test_tls_failure_message(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", body=requests.exceptions.SSLError("certificate verify failed"))
    client = make_client(clock, ca_dirs=["/etc/docker/certs.d"])
    with pytest.raises(RegistryConnectionError) as info:
        client.resolve(parse("registry.example.com/app:1"))
    message = str(info.value)
    assert "registry.example.com" in message
    assert "/etc/docker/certs.d/registry.example.com/ca.crt" in message
    assert "REQUESTS_CA_BUNDLE" in message
    assert clock.sleeps == []  # a TLS failure is not temporary

# ------------------------------------------------------------------------------------------------ redirects


def _redirecting(rsps: responses.RequestsMock, first: str, target: str, *,
                 basic: bool = False) -> list[requests.PreparedRequest]:
    """``first`` redirects to ``target``, which serves a manifest; with ``basic``, ``first`` first asks for Basic
    credentials (that 401 is not recorded). Returns the requests seen after any challenge."""
    seen: list[requests.PreparedRequest] = []

    def redirect(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        if basic and "Authorization" not in request.headers:
            return 401, {"WWW-Authenticate": 'Basic realm="Registry Realm"'}, b""
        seen.append(request)
        return 307, {"Location": target}, b""

    def final(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        seen.append(request)
        return 200, {"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64}, b""

    rsps.add_callback("HEAD", first, callback=redirect)
    absolute = urljoin(first, target).split("?")[0]
    rsps.add_callback("HEAD", re.compile(re.escape(absolute) + ".*"), callback=final)
    return seen


def _basic_client(clock: FakeTime) -> RegistryClient:
    keychain = FakeKeychain({"registry.example.com": Credential("u", "p", "docker config")})
    return make_client(clock, keychain)


def test_redirect_same_host_keeps_auth(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    seen = _redirecting(rsps, f"{REG}/v2/app/manifests/1", f"{REG}/storage/abc", basic=True)
    _basic_client(clock).resolve(parse("registry.example.com/app:1"))
    assert [r.headers.get("Authorization", "")[:6] for r in seen] == ["Basic ", "Basic "]


def test_redirect_other_host_drops_auth(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    seen = _redirecting(rsps, f"{REG}/v2/app/manifests/1", "https://cdn.example.net/blob?sig=1", basic=True)
    _basic_client(clock).resolve(parse("registry.example.com/app:1"))
    assert "Authorization" in seen[0].headers
    assert "Authorization" not in seen[1].headers
    assert seen[1].url == "https://cdn.example.net/blob?sig=1"


def test_redirect_relative_location(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    seen = _redirecting(rsps, f"{REG}/v2/app/manifests/1", "/elsewhere/1")
    make_client(clock).resolve(parse("registry.example.com/app:1"))
    assert seen[1].url == f"{REG}/elsewhere/1"


def test_redirect_loop(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", status=302, headers={"Location": f"{REG}/b"})
    rsps.add("HEAD", f"{REG}/b", status=302, headers={"Location": f"{REG}/v2/app/manifests/1"})
    with pytest.raises(BadResponseError, match="redirect loop"):
        make_client(clock).resolve(parse("registry.example.com/app:1"))


def test_too_many_redirects(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", status=302, headers={"Location": f"{REG}/r0"})
    for i in range(10):
        rsps.add("HEAD", f"{REG}/r{i}", status=302, headers={"Location": f"{REG}/r{i + 1}"})
    with pytest.raises(BadResponseError, match="more than 5 redirects"):
        make_client(clock).resolve(parse("registry.example.com/app:1"))


# ------------------------------------------------------------------------------------------------ retries


def test_retry_5xx_then_success(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/1"
    rsps.add("HEAD", url, status=503)
    rsps.add("HEAD", url, status=502)
    rsps.add("HEAD", url, headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    client = make_client(clock)
    assert client.resolve(parse("registry.example.com/app:1")).digest == "sha256:" + "a" * 64
    assert clock.sleeps == [0.5, 1.0]
    assert client.stats.retries == 2


def test_retry_5xx_exhausted(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", status=500)
    with pytest.raises(RegistryConnectionError, match=r"registry.example.com answered HTTP 500 \(after 3 tries\)"):
        make_client(clock).resolve(parse("registry.example.com/app:1"))
    assert clock.sleeps == [0.5, 1.0]


def test_429_retry_after_is_per_host(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/1"
    rsps.add("HEAD", url, status=429, headers={"Retry-After": "7"})
    rsps.add("HEAD", url, headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    rsps.add("HEAD", "https://other.example.com/v2/app/manifests/1",
             headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "b" * 64})
    client = make_client(clock)
    assert client.resolve(parse("registry.example.com/app:1")).digest == "sha256:" + "a" * 64
    assert clock.sleeps == [7.0]
    assert client.stats.rate_limited == 1
    client.resolve(parse("other.example.com/app:1"))
    assert clock.sleeps == [7.0]


def test_429_blocks_other_requests_to_same_host_only(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", status=429, headers={"Retry-After": "20"})
    rsps.add("HEAD", re.compile(r"https://(registry|other)\.example\.com/v2/.*"),
             headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    client = make_client(clock, retries=1)
    with pytest.raises(RegistryConnectionError, match=r"rate limited by registry.example.com"):
        client.resolve(parse("registry.example.com/app:1"))
    client.resolve(parse("other.example.com/x:1"))
    assert clock.sleeps == []
    client.resolve(parse("registry.example.com/y:1"))
    assert clock.sleeps == [20.0]  # the host's back-off applies to its other requests


def test_retry_after_http_date_capped(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/1"
    rsps.add("HEAD", url, status=503, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    rsps.add("HEAD", url, headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    client = make_client(clock, max_retry_wait=12.5)
    client.resolve(parse("registry.example.com/app:1"))
    assert clock.sleeps == [12.5]


def test_retry_after_past_date(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/1"
    rsps.add("HEAD", url, status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    rsps.add("HEAD", url, headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    client = make_client(clock)
    client.resolve(parse("registry.example.com/app:1"))
    assert clock.sleeps == []


def test_429_exhausted_message(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{HUB}/v2/library/python/manifests/3", status=429,
             headers={"ratelimit-remaining": "0;w=21600"})
    with pytest.raises(RegistryConnectionError, match=r"rate limited by registry-1.docker.io.*0;w=21600"):
        make_client(clock).resolve(parse("python:3"))
    assert clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (requests.ConnectionError("[Errno 111] Connection refused"), "connection refused"),
        (requests.exceptions.ConnectTimeout("timed out"), "connection timed out"),
        (requests.exceptions.ReadTimeout("read timed out"), "timed out waiting for a response"),
    ],
)
def test_connection_errors_are_wrapped(rsps: responses.RequestsMock, clock: FakeTime, exc: Exception,
                                       text: str) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", body=exc)
    with pytest.raises(RegistryConnectionError, match=f"cannot reach registry.example.com: {text}"):
        make_client(clock).resolve(parse("registry.example.com/app:1"))
    assert clock.sleeps == [0.5, 1.0]


def test_other_requests_exception_is_wrapped(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1", body=requests.exceptions.InvalidHeader("value 'secret'"))
    with pytest.raises(RegistryConnectionError) as info:
        make_client(clock).resolve(parse("registry.example.com/app:1"))
    assert "secret" not in str(info.value)


def test_connection_error_then_success(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    url = f"{REG}/v2/app/manifests/1"
    rsps.add("HEAD", url, body=requests.ConnectionError("reset"))
    rsps.add("HEAD", url, headers={"Content-Type": mf.OCI_INDEX, "Docker-Content-Digest": "sha256:" + "a" * 64})
    client = make_client(clock)
    assert client.resolve(parse("registry.example.com/app:1")).digest == "sha256:" + "a" * 64
    assert clock.sleeps == [0.5]



def test_a_host_name_that_does_not_resolve_is_not_retried(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    """An offline laptop: asking again in half a second will not make the name resolve; say so at once."""
    rsps.add("HEAD", f"{REG}/v2/app/manifests/1",
             body=requests.ConnectionError("Failed to resolve: [Errno -2] Name or service not known"))
    with pytest.raises(RegistryConnectionError, match=r"cannot reach registry\.example\.com: host name lookup failed$"):
        make_client(clock).resolve(parse("registry.example.com/app:1"))
    assert clock.sleeps == []
    assert len(rsps.calls) == 1


# ------------------------------------------------------------------------------------------------ redirect targets


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://registry.example.com/storage/1", "https to http"),
        ("http://cdn.example.net/storage/1", "https to http"),
        ("https://10.0.0.5:8080/admin", "a private address"),
        ("https://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("https://127.0.0.1/x", "a loopback address"),
        ("https://[::1]/x", "a loopback address"),
        ("https://[::]:80/x", "an unspecified address"),
    ],
)
def test_redirect_to_a_refused_target_is_not_followed(rsps: responses.RequestsMock, clock: FakeTime,
                                                      location: str, why: str) -> None:
    seen = _redirecting(rsps, f"{REG}/v2/app/manifests/1", location)
    with pytest.raises(BadResponseError) as info:
        make_client(clock).resolve(parse("registry.example.com/app:1"))
    message = str(info.value)
    assert "registry.example.com" in message and "redirect" in message and why in message
    assert urlsplit(location).netloc in message
    assert len(seen) == 1, "the refused target was fetched"


def test_redirect_to_a_name_that_resolves_inside_is_refused(rsps: responses.RequestsMock, clock: FakeTime,
                                                           dns: FakeDNS) -> None:
    dns.addresses["storage.example.net"] = "192.168.7.7"
    seen = _redirecting(rsps, f"{REG}/v2/app/manifests/1", "https://storage.example.net/blob")
    with pytest.raises(BadResponseError, match=r"storage\.example\.net.* a private address"):
        make_client(clock).resolve(parse("registry.example.com/app:1"))
    assert len(seen) == 1


def test_plain_http_registry_may_redirect_over_http(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    seen = _redirecting(rsps, "http://registry.lan:5000/v2/app/manifests/1", "http://registry.lan:5000/blob/1")
    make_client(clock, insecure=["registry.lan:5000"]).resolve(parse("registry.lan:5000/app:1"))
    assert len(seen) == 2


def test_a_body_is_never_redirected_to_another_origin(rsps: responses.RequestsMock, clock: FakeTime) -> None:
    """A 307 to another origin would re-send the refresh token in the POST body to whoever the server names."""
    collected: list[requests.PreparedRequest] = []
    rsps.add("POST", "https://auth.example.com/token", status=307,
             headers={"Location": "https://collector.example.net/steal"})  # registered first: it wins
    registry = FakeRegistry(rsps, REG, auth="bearer", realm="https://auth.example.com/token", service="s")
    registry.push_image("app", AMD64, "1")
    rsps.add_callback("POST", "https://collector.example.net/steal",
                      callback=lambda request: (collected.append(request), (200, {}, b'{"token": "t"}'))[1])
    keychain = FakeKeychain({"registry.example.com": Credential("<token>", "refresh-secret", "docker config")})
    with pytest.raises(BadResponseError) as info:
        make_client(clock, keychain).resolve(parse("registry.example.com/app:1"))
    assert "collector.example.net" in str(info.value) and "refresh-secret" not in str(info.value)
    assert collected == []
