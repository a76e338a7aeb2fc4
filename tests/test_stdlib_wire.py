"""The standard library wire against real loopback servers: keep-alive, body caps, header folding, URL quoting,
and every failure classified the way the transport's retry rules expect."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pin_images.stdlib_wire import StdlibWire, open_connection
from pin_images.wire import SMALL_BODY, ConnectionFailure, Headers, RequestFailure, TLSFailure, ca_file_for
from tests.support import pki
from tests.support.hostile import HostileServer, Reply, closed_port

T = (5.0, 5.0)


@pytest.fixture
def wire() -> Iterator[StdlibWire]:
    w = StdlibWire(env={})
    yield w
    w.close()


def test_headers_ignore_case_and_join_repeated_values() -> None:
    h = Headers([("WWW-Authenticate", 'Bearer realm="a"'), ("Content-Type", "x"), ("www-authenticate", "Basic")])
    assert h["www-authenticate"] == 'Bearer realm="a", Basic'
    assert h.get("CONTENT-TYPE") == "x" and "content-type" in h and len(h) == 2
    assert h.get("Location") is None


def test_requests_share_one_kept_alive_connection(wire: StdlibWire) -> None:
    with HostileServer(lambda seen: Reply(200, [("Docker-Content-Digest", "d")], b"{}")) as server:
        for _ in range(3):
            resp = wire.send("GET", f"{server.url}/v2/", {}, None, T, None, None)
            assert resp.status_code == 200 and resp.body == b"{}"
        head = wire.send("HEAD", f"{server.url}/v2/a/manifests/1", {}, None, T, None, None)
        assert head.headers["docker-content-digest"] == "d"
        assert len({s.peer for s in server.requests}) == 1


def test_a_kept_alive_connection_the_server_drops_as_it_is_reused_is_replaced(wire: StdlibWire) -> None:
    # The race every keep-alive client meets: the server closes an idle connection just as a request goes out.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2)
    port = listener.getsockname()[1]
    peers: list[int] = []

    def serve() -> None:
        first, addr = listener.accept()
        peers.append(addr[1])
        first.recv(65536)
        first.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
        first.recv(65536)  # the second request arrives on the kept-alive connection ...
        first.close()  # ... and is dropped unanswered
        second, addr = listener.accept()
        peers.append(addr[1])
        with second:
            second.recv(65536)
            second.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        assert wire.send("GET", f"http://127.0.0.1:{port}/1", {}, None, T, None, None).body == b"a"
        assert wire.send("GET", f"http://127.0.0.1:{port}/2", {}, None, T, None, None).body == b"b"
        assert len(set(peers)) == 2
    finally:
        t.join(5)
        listener.close()


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "read-until-close"])
def test_a_200_body_over_the_cap_is_truncated_not_kept(wire: StdlibWire, length: bool) -> None:
    with HostileServer(lambda seen: Reply(200, [], b"x" * 100_000, length=length)) as server:
        resp = wire.send("GET", f"{server.url}/big", {}, None, T, None, 1000)
        assert resp.truncated and len(resp.body) <= 1000 + 16 * 1024
        ok = wire.send("GET", f"{server.url}/big", {}, None, T, None, 200_000)
        assert not ok.truncated and ok.body == b"x" * 100_000


def test_an_error_body_is_kept_only_in_part(wire: StdlibWire) -> None:
    with HostileServer(lambda seen: Reply(404, [], b"e" * (SMALL_BODY * 3))) as server:
        resp = wire.send("GET", f"{server.url}/missing", {}, None, T, None, 4 * 1024 * 1024)
        assert resp.status_code == 404 and not resp.truncated
        assert SMALL_BODY <= len(resp.body) < SMALL_BODY * 2


def test_a_target_with_spaces_or_non_ascii_is_percent_encoded(wire: StdlibWire) -> None:
    with HostileServer(lambda seen: Reply(200, [], b"")) as server:
        wire.send("GET", f"{server.url}/v2/a b/é?scope=x y", {}, None, T, None, None)
        [seen] = server.requests
        assert (seen.path, seen.query) == ("/v2/a%20b/%C3%A9", "scope=x%20y")


def test_a_form_body_and_headers_are_sent_as_given(wire: StdlibWire) -> None:
    with HostileServer(lambda seen: Reply(200, [], b"{}")) as server:
        wire.send("POST", f"{server.url}/token", {"Content-Type": "application/x-www-form-urlencoded",
                                                  "User-Agent": "ua"}, b"a=1&b=2", T, None, None)
        [seen] = server.requests
        assert (seen.method, seen.body, seen.headers["user-agent"]) == ("POST", b"a=1&b=2", "ua")


def test_refused_connection_is_worth_a_retry(wire: StdlibWire) -> None:
    with pytest.raises(ConnectionFailure) as caught:
        wire.send("GET", f"http://127.0.0.1:{closed_port()}/v2/", {}, None, T, None, None)
    assert caught.value.failure == "connection refused" and not caught.value.lookup


def test_a_silent_server_times_out(wire: StdlibWire) -> None:
    with HostileServer(lambda seen: Reply(hang=True)) as server, pytest.raises(ConnectionFailure) as caught:
        wire.send("GET", f"{server.url}/v2/", {}, None, (1.0, 0.3), None, None)
    assert caught.value.failure == "timed out waiting for a response"


def test_an_invalid_url_is_not_sent(wire: StdlibWire) -> None:
    for url in ("http://[::1/x", "http://h:\xb2/x", "ftp://127.0.0.1/x", "http:///x"):
        with pytest.raises(RequestFailure):
            wire.send("GET", url, {}, None, T, None, None)


def test_tls_is_verified_against_the_given_ca(tmp_path: Path, wire: StdlibWire) -> None:
    context, ca = pki.server_context(tmp_path)
    with HostileServer(lambda seen: Reply(200, [], b"ok"), ssl_context=context) as server:
        assert wire.send("GET", f"{server.url}/v2/", {}, None, T, str(ca), None).body == b"ok"
        other = StdlibWire(env={})  # certifi's bundle: our test CA is not in it
        with pytest.raises(TLSFailure) as caught:
            other.send("GET", f"{server.url}/v2/", {}, None, T, None, None)
        assert caught.value.untrusted
        trusting = StdlibWire(env={"REQUESTS_CA_BUNDLE": str(ca)})  # as requests reads it
        assert trusting.send("GET", f"{server.url}/v2/", {}, None, T, None, None).body == b"ok"
        assert len(server.requests) == 2


def test_tls_to_a_plain_http_server_is_a_handshake_failure(wire: StdlibWire, tmp_path: Path) -> None:
    _, ca = pki.server_context(tmp_path)
    with HostileServer(lambda seen: Reply(200, [], b"")) as server:
        with pytest.raises(TLSFailure) as caught:
            wire.send("GET", f"https://{server.host}/v2/", {}, None, T, str(ca), None)
        assert not caught.value.untrusted


def test_a_garbled_status_line_is_a_connection_failure(wire: StdlibWire) -> None:
    with HostileServer(lambda seen: Reply(raw=b"NONSENSE\r\n\r\n")) as server, pytest.raises(ConnectionFailure):
        wire.send("GET", f"{server.url}/v2/", {}, None, T, None, None)


def test_close_closes_idle_connections(wire: StdlibWire) -> None:
    with HostileServer(lambda seen: Reply(200, [], b"")) as server:
        wire.send("GET", f"{server.url}/v2/", {}, None, T, None, None)
        wire.close()
        # A closed wire keeps nothing: the next request opens a new connection and it is not pooled.
        wire.send("GET", f"{server.url}/v2/", {}, None, T, None, None)
        wire.send("GET", f"{server.url}/v2/", {}, None, T, None, None)
        assert len({s.peer for s in server.requests}) == 3


def test_the_default_trust_is_certifis_bundle_as_requests_uses_it() -> None:
    import certifi

    from pin_images.stdlib_wire import trust

    assert trust(None, {}) == certifi.where()
    assert trust(None, {"CURL_CA_BUNDLE": "/b.pem"}) == "/b.pem"
    assert trust(None, {"REQUESTS_CA_BUNDLE": "/a.pem", "CURL_CA_BUNDLE": "/b.pem"}) == "/a.pem"
    assert trust("/certs.d/ca.crt", {"REQUESTS_CA_BUNDLE": "/a.pem"}) == "/certs.d/ca.crt"


def test_connections_opened_at_once_share_one_tls_context(tmp_path: Path) -> None:
    from pin_images.stdlib_wire import tls_context

    _, ca = pki.server_context(tmp_path)
    got: list[ssl.SSLContext] = []
    threads = [threading.Thread(target=lambda: got.append(tls_context(str(ca)))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in got}) == 1


def test_a_handed_over_connection_the_server_closed_is_closed_not_kept(wire: StdlibWire) -> None:
    with HostileServer(lambda seen: Reply(200, [], b"")) as server:
        host, port = server.host.split(":")
        live = open_connection("http", host, int(port), None, 5.0)
        dead = open_connection("http", host, int(port), None, 5.0)
        dead.request("GET", "/v2/")  # left unread: an answer nobody will ask for waits on this one
        time.sleep(0.2)
        assert wire.adopt("http", server.host, [live, dead], None) == 1
        assert dead.sock is None  # closed, not left for the garbage collector
        wire.send("GET", f"{server.url}/v2/x", {}, None, T, None, None)
        assert server.requests[-1].peer == live.sock.getsockname()[1]  # type: ignore[union-attr]


def test_ca_file_for_prefers_certs_d(tmp_path: Path) -> None:
    (tmp_path / "b" / "reg:5000").mkdir(parents=True)
    (tmp_path / "b" / "reg:5000" / "ca.crt").write_text("x")
    dirs = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert ca_file_for("reg:5000", dirs, "/bundle.pem") == str(tmp_path / "b" / "reg:5000" / "ca.crt")
    assert ca_file_for("other:5000", dirs, "/bundle.pem") == "/bundle.pem"
    assert ca_file_for("other:5000", dirs, None) is None
