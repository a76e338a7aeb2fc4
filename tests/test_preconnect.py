"""The warm-up opens connections only where the normal path would, and leaves anything unusual to it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pin_images.pingcache import Ping
from pin_images.preconnect import Warmup, proxy_configured
from pin_images.requests_wire import RequestsWire
from pin_images.stdlib_wire import StdlibWire
from tests.support import pki
from tests.support.hostile import HostileServer, Reply, Seen

CHALLENGE = 'Basic realm="test"'
_OUTER = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(autouse=True)
def _no_outer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests (and so adopt) reads proxies and CA bundles from os.environ: the caller's must not decide here."""
    for name in _OUTER:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def challenge(seen: Seen) -> Reply:
    return Reply(401, [("WWW-Authenticate", CHALLENGE), ("Content-Type", "application/json")], b"{}")


def warmup(env: dict[str, str] | None = None, ca: Path | None = None, **kw: object) -> Warmup:
    return Warmup(ca_file=lambda hostport: str(ca) if ca else None, env=env or {}, timeout=5.0,
                  user_agent="pin-images/test", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"HTTPS_PROXY": "http://proxy:3128"}, True),
        ({"http_proxy": "http://proxy:3128"}, True),
        ({"ALL_PROXY": "socks5://proxy:1080"}, True),
        ({"HTTPS_PROXY": ""}, False),  # set but empty: requests ignores it too
        ({"NO_PROXY": "*"}, False),
    ],
)
def test_proxy_configured(env: dict[str, str], expected: bool) -> None:
    assert proxy_configured(env) is expected


def test_a_plain_http_registry_on_this_machine_is_pinged_once_and_its_connections_kept() -> None:
    with HostileServer(challenge) as server:
        w = warmup()
        w.start(server.host)
        warm = w.take(server.host)
        assert warm is not None and warm.scheme == "http"
        assert warm.ping is not None and (warm.ping.status, warm.ping.www_authenticate) == (401, CHALLENGE)
        assert len(warm.connections) == 2
        assert [s.path for s in server.requests] == ["/v2/"]
        w.discard(warm)


def test_a_tls_registry_is_pinged_over_tls_and_its_connections_adopted(tmp_path: Path) -> None:
    context, ca = pki.server_context(tmp_path)
    with HostileServer(challenge, ssl_context=context) as server:
        w = warmup(ca=ca)
        w.start(server.host)
        warm = w.take(server.host)
        assert warm is not None and warm.scheme == "https"
        ports = {conn.sock.getsockname()[1] for conn in warm.connections}  # type: ignore[attr-defined]
        wire = StdlibWire(env={})
        try:
            assert wire.adopt(warm.scheme, warm.hostport, warm.connections, str(ca)) == 2
            resp = wire.send("GET", f"https://{server.host}/v2/x/manifests/1", {}, None, (5.0, 5.0), str(ca), None)
            assert resp.status_code == 401
        finally:
            wire.close()
        assert [s.path for s in server.requests] == ["/v2/", "/v2/x/manifests/1"]
        assert server.requests[1].peer in ports  # one of the warm-up's connections, not a new one


def test_an_untrusted_certificate_is_left_to_the_normal_path(tmp_path: Path) -> None:
    context, _ = pki.server_context(tmp_path)
    with HostileServer(challenge, ssl_context=context) as server:
        w = warmup()  # the CA is not trusted: certifi's bundle
        w.start(server.host)
        assert w.take(server.host) is None
        assert server.requests == []  # nothing got past the failed handshake


def test_nothing_is_opened_behind_a_proxy_or_for_a_mirrored_registry() -> None:
    with HostileServer(challenge) as server:
        behind = warmup(env={"HTTPS_PROXY": "http://127.0.0.1:9"})
        behind.start(server.host)
        mirrored = warmup(mirrored=[server.host])
        mirrored.start(server.host)
        assert behind.take(server.host) is None and mirrored.take(server.host) is None
        assert server.requests == []


def test_the_requests_wire_closes_connections_handed_to_it() -> None:
    # requests carries a run only behind a proxy, where nothing is opened early; a stray handover is closed.
    with HostileServer(challenge) as server:
        w = warmup()
        w.start(server.host)
        warm = w.take(server.host)
        assert warm is not None
        wire = RequestsWire()
        assert wire.adopt(warm.scheme, warm.hostport, warm.connections, None) == 0
        wire.close()
        assert all(conn.sock is None for conn in warm.connections)  # type: ignore[attr-defined]


def test_a_warm_up_that_hangs_does_not_hold_the_client_for_long() -> None:
    # The server takes the ping and never answers; the warm-up thread waits for its socket timeout (5 s), but the
    # client goes on without it well before that (and sends its own GET /v2/ under its own limits).
    with HostileServer(lambda seen: Reply(hang=True)) as server:
        w = warmup()
        w.start(server.host)
        started = time.monotonic()
        assert w.take(server.host) is None
        assert time.monotonic() - started < 4


def test_only_the_first_registries_are_warmed() -> None:
    with HostileServer(challenge) as first, HostileServer(challenge) as second:
        w = warmup(max_registries=1)
        w.start(first.host)
        w.start(second.host)
        assert w.take(first.host) is not None
        assert w.take(second.host) is None
        assert second.requests == []  # the normal path alone talks to it


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_remembered_token_service_with_a_broken_port_is_skipped_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    # The cache holds what a registry once answered; a realm it cannot even connect to must not print a thread's
    # traceback or stop the registry's own connections.
    with HostileServer(challenge) as server:
        known = {f"http://{server.host}": Ping(401, 'Bearer realm="http://localhost:x/token",service="s"')}
        w = warmup(insecure=[server.host], known=known)
        w.start(server.host)
        warm = w.take(server.host)
        assert warm is not None and warm.remembered and len(warm.connections) == 2 and warm.elsewhere == []
        w.discard(warm)
    assert capsys.readouterr().err == ""
