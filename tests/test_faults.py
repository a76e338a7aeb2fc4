"""Fault injection without a server: `responses` registries and monkeypatched I/O; a fault never writes a wrong
digest, never damages a file and never leaks a secret.

Three parts: the client under faults (retries counted, waits injected), ``main()`` over `responses` with seeded
credentials scanned out of every output, and ``main()`` with writes failing or files changing under it.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import re
import secrets
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
import responses

from pin_images import files, run
from pin_images import manifest as mf
from pin_images.cli import main
from pin_images.credentials import Credential
from pin_images.errors import BadResponseError, DockerfileError, RegistryConnectionError, RegistryError
from pin_images.reference import parse
from pin_images.registry import RegistryClient
from pin_images.transport import Transport
from tests.conftest import fake_digest

REG = "https://registry.example.com"
HOST = "registry.example.com"
URL = f"{REG}/v2/app/manifests/1"
REF = parse(f"{HOST}/app:1")
USER = "pinner"
PASSWORD = "pw-" + secrets.token_hex(8)
TOKEN = "tok-" + secrets.token_hex(8)
REFRESH = "refresh-" + secrets.token_hex(8)
AUTH = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, TOKEN, REFRESH, AUTH)
EVIL = "RUN curl evil | sh"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


BODY = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST, "layers": [],
                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(b"{}"),
                              "size": 2}}).encode()
DIGEST = sha(BODY)
MANIFEST_HEADERS = {"Content-Type": mf.OCI_MANIFEST}


class Keychain:
    def __init__(self, cred: Credential | None = None) -> None:
        self.cred = cred

    def get(self, host: str) -> Credential | None:
        return self.cred

    def tried(self, host: str) -> list[str]:
        return ["auths in /fake/config.json"]


class Waits:
    """Injected sleep and clock: records every wait instead of taking it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def waits() -> Waits:
    return Waits()


def client(waits: Waits, cred: Credential | None = None, **kw) -> RegistryClient:
    # A session: `responses` mocks requests, so the client must send through requests.
    return RegistryClient(Keychain(cred), sleep=waits.sleep, clock=waits.clock, session=requests.Session(), **kw)


def calls(rsps: responses.RequestsMock, method: str = "HEAD", url: str = URL) -> int:
    return sum(1 for c in rsps.calls if c.request.method == method and c.request.url == url)


# ------------------------------------------------------------------------------------------------ client: retries


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_three_times_with_backoff(rsps, waits, status):
    rsps.add("HEAD", URL, status=status)
    with pytest.raises(RegistryConnectionError, match=rf"answered HTTP {status} \(after 3 tries\)"):
        client(waits).resolve(REF)
    assert calls(rsps) == 3
    assert waits.sleeps == [0.5, 1.0]


def test_501_is_not_retried(rsps, waits):
    rsps.add("HEAD", URL, status=501)
    rsps.add("GET", URL, status=501)
    with pytest.raises(BadResponseError, match="HTTP 501"):
        client(waits).resolve(REF)
    assert calls(rsps) == 1 and calls(rsps, "GET") == 1
    assert waits.sleeps == []


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("2", [2.0, 2.0]),
        (None, [0.5, 1.0]),  # no header: the normal backoff
        ("86400", [30.0, 30.0]),  # bounded by max_retry_wait: a git hook must not wait a day
        ("\u00b2", [0.5, 1.0]),  # "²".isdigit() is True but it is no number (regression: crashed float())
        ("soon", [0.5, 1.0]),
        ("-5", [0.5, 1.0]),
    ],
)
def test_429_waits_for_retry_after_bounded(rsps, waits, retry_after, expected):
    rsps.add("HEAD", URL, status=429, headers={"Retry-After": retry_after} if retry_after else {})
    with pytest.raises(RegistryConnectionError, match=r"rate limited by registry.example.com \(HTTP 429, after 3"):
        client(waits).resolve(REF)
    assert calls(rsps) == 3
    assert waits.sleeps == expected


def test_429_retry_after_as_http_date(rsps, waits):
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=5), usegmt=True)
    rsps.add("HEAD", URL, status=429, headers={"Retry-After": when})
    rsps.add("HEAD", URL, headers={**MANIFEST_HEADERS, "Docker-Content-Digest": DIGEST})
    assert client(waits).resolve(REF).digest == DIGEST
    assert len(waits.sleeps) == 1 and 3.0 < waits.sleeps[0] <= 5.0


def test_429_small_max_retry_wait(rsps, waits):
    rsps.add("HEAD", URL, status=429, headers={"Retry-After": "600"})
    with pytest.raises(RegistryConnectionError):
        client(waits, max_retry_wait=2.0).resolve(REF)
    assert waits.sleeps == [2.0, 2.0]


# ---------------------------------------------------------------------------------------------- client: bodies, headers


@pytest.mark.parametrize(
    "header",
    [
        f"sha256:abc\n{EVIL}",
        f"{DIGEST}\n{EVIL}",  # a correct digest with shell text after a newline is still not a digest
        f"{DIGEST}\r\n{EVIL}",
        f"{DIGEST} {EVIL}",
        f"{DIGEST}\n",
    ],
)
@pytest.mark.parametrize("via", ["HEAD", "GET"])
def test_digest_header_with_newline_or_shell_text(rsps, waits, header, via):
    if via == "HEAD":
        rsps.add("HEAD", URL, headers={**MANIFEST_HEADERS, "Docker-Content-Digest": header})
    else:
        rsps.add("HEAD", URL, status=405)
    rsps.add("GET", URL, body=BODY, headers={**MANIFEST_HEADERS, "Docker-Content-Digest": header})
    with pytest.raises(BadResponseError) as info:
        client(waits).resolve(REF)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message and "curl" not in message
    assert "Docker-Content-Digest" in message


@pytest.mark.parametrize("length", [True, False])
def test_20_mib_manifest_is_capped_at_4_mib(rsps, waits, length):
    big = b'{"schemaVersion": 2, "x": "' + b"a" * (20 * 1024 * 1024) + b'"}'
    rsps.add("HEAD", URL, status=405)
    rsps.add("GET", URL, body=big, headers=MANIFEST_HEADERS, auto_calculate_content_length=length)
    with pytest.raises(BadResponseError, match="manifest larger than 4 MiB"):
        client(waits).resolve(REF)


def test_content_length_with_a_superscript_digit_is_not_a_crash(rsps, waits):
    """Regression: "²".isdigit() is True, int("²") raises ValueError, which escaped the client."""
    rsps.add("HEAD", URL, status=405)
    rsps.add("GET", URL, body=BODY, headers={**MANIFEST_HEADERS, "Content-Length": "\u00b2"})
    assert client(waits).resolve(REF).digest == DIGEST


@pytest.mark.parametrize("what", ["manifest", "token"])
def test_deeply_nested_json_is_bad_json_not_a_crash(rsps, waits, what):
    """Regression: json.loads raises RecursionError (not ValueError) on "[[[[...", which escaped the client."""
    nested = b"[" * 200_000
    if what == "manifest":
        rsps.add("HEAD", URL, status=405)
        rsps.add("GET", URL, body=nested, headers=MANIFEST_HEADERS)
        match = "manifest is not valid JSON"
    else:
        rsps.add("HEAD", URL, status=401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.example.com/t"'})
        rsps.add("GET", "https://auth.example.com/t", body=nested)
        match = "token response is not JSON"
    with pytest.raises(BadResponseError, match=match):
        client(waits).resolve(REF)


@pytest.mark.parametrize(
    "location",
    [
        "http://[::1/x",  # urlsplit: "Invalid IPv6 URL" (ValueError)
        "http://h:\u00b2/x",  # requests decodes Location as UTF-8 even with allow_redirects=False
        "\u00ff\u00fe://x",
    ],
)
def test_malformed_redirect_location_is_bad_response_not_a_crash(rsps, waits, location):
    """Regression: these escaped as ValueError/UnicodeDecodeError and killed the run with a traceback."""
    rsps.add("HEAD", URL, status=302, headers={"Location": location})
    with pytest.raises(BadResponseError, match=r"bad registry response from registry\.example\.com"):
        client(waits).resolve(REF)


def test_malformed_realm_is_bad_response_not_a_crash(rsps, waits):
    """Regression: a realm with an unclosed IPv6 bracket raised ValueError out of the client."""
    rsps.add("HEAD", URL, status=401, headers={"WWW-Authenticate": 'Bearer realm="https://[::1/token"'})
    with pytest.raises(BadResponseError, match="no usable realm URL"):
        client(waits).resolve(REF)


# ------------------------------------------------------------------------------------------------ client: credentials


def test_authorization_is_dropped_on_a_redirect_to_another_host(rsps, waits):
    rsps.add("HEAD", URL, status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    rsps.add("HEAD", URL, status=307, headers={"Location": "https://storage.example.net/blob?sig=1"})
    rsps.add("HEAD", "https://storage.example.net/blob", headers={**MANIFEST_HEADERS, "Docker-Content-Digest": DIGEST})
    assert client(waits, Credential(USER, PASSWORD, "test")).resolve(REF).digest == DIGEST
    sent = [(c.request.url, c.request.headers.get("Authorization")) for c in rsps.calls]
    assert (URL, f"Basic {AUTH}") in sent
    assert [auth for url, auth in sent if "storage.example.net" in url] == [None]


@pytest.mark.parametrize("cred", [Credential(USER, PASSWORD, "t"), Credential("<token>", REFRESH, "t")],
                         ids=["password", "identity-token"])
def test_no_credentials_to_a_plain_http_realm_on_another_host(rsps, waits, cred):
    """An https registry's plain-http realm is not asked at all (it once was, anonymously)."""
    realm = "http://auth.example.net/token"
    rsps.add("HEAD", URL, status=401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="s"'})
    rsps.add("GET", realm, json={"token": "anonymous"})
    rsps.add("POST", realm, json={"token": "should-not-happen"})
    with pytest.raises(RegistryError, match=r"refused Bearer realm to http://auth\.example\.net/token: not https"):
        client(waits, cred).resolve(REF)
    assert not [c.request for c in rsps.calls if c.request.url.startswith(realm)]


# ------------------------------------------------------------------------------------------------ main(): secrets


@pytest.fixture
def logged_in(tmp_path, monkeypatch):
    """A temp HOME and DOCKER_CONFIG holding base64 ``auth`` for registry.example.com; millisecond backoff."""
    for name in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    config = home / ".docker"
    config.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.setattr(Transport, "_backoff", staticmethod(lambda attempt: 0.0))

    def write(entry: dict[str, str]) -> None:
        (config / "config.json").write_text(json.dumps({"auths": {HOST: entry}}))

    write({"auth": AUTH})
    return write


def _echo(request: requests.PreparedRequest) -> str:
    """What a hostile server quotes back: every header and the query, secrets included."""
    return json.dumps({"headers": dict(request.headers), "url": request.url})


def _basic_challenge(rsps):
    def cb(request):
        return 401, {"WWW-Authenticate": f'Basic realm="{_echo(request)[:200]}"'}, _echo(request)

    rsps.add_callback("HEAD", URL, callback=cb)
    rsps.add_callback("GET", URL, callback=cb)
    rsps.add_callback("GET", f"{REG}/v2/", callback=cb)


def _bearer(rsps, token_status=200, token_body=None, registry_status=401):
    realm = "https://auth.example.com/token"
    challenge = f'Bearer realm="{realm}",service="{HOST}"'

    def registry(request):
        echo = _echo(request)
        if registry_status == 401:
            quoted = f'{challenge},error="invalid_token",error_description="{echo[:300]}"'
            return 401, {"WWW-Authenticate": quoted}, echo
        return registry_status, {"X-Echo": request.headers.get("Authorization", "")}, echo

    def token(request):
        body = token_body if token_body is not None else json.dumps({"token": TOKEN, "echo": _echo(request)})
        return token_status, {"X-Echo": request.headers.get("Authorization", "")}, body

    for method in ("HEAD", "GET"):
        rsps.add_callback(method, URL, callback=registry)
    rsps.add_callback("GET", f"{REG}/v2/", callback=lambda r: (401, {"WWW-Authenticate": challenge}, ""))
    rsps.add_callback("GET", re.compile(re.escape(realm) + ".*"), callback=token)
    rsps.add_callback("POST", realm, callback=token)


SCENARIOS = {
    "basic-refused": _basic_challenge,
    "token-rejected": lambda rsps: _bearer(rsps),
    "token-server-401": lambda rsps: _bearer(rsps, token_status=401),
    "token-server-junk": lambda rsps: _bearer(rsps, token_body=f"<html>{TOKEN} {PASSWORD}</html>"),
    "token-no-token": lambda rsps: _bearer(rsps, token_body=json.dumps({"access": TOKEN})),
    "403-after-token": lambda rsps: _bearer(rsps, registry_status=403),
    "500-after-token": lambda rsps: _bearer(rsps, registry_status=500),
    "404-after-token": lambda rsps: _bearer(rsps, registry_status=404),
    "429-after-token": lambda rsps: _bearer(rsps, registry_status=429),
}


@pytest.mark.parametrize("credential", ["auth", "password-fields", "identity-token"])
@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_secrets_never_reach_the_output(tmp_path, logged_in, rsps, capsys, scenario, fmt, credential):
    if credential == "identity-token":
        logged_in({"identitytoken": REFRESH})
    elif credential == "password-fields":
        logged_in({"username": USER, "password": PASSWORD})
    SCENARIOS[scenario](rsps)
    dockerfile_path = tmp_path / "Dockerfile"
    dockerfile_path.write_text(f"FROM {HOST}/app:1\n")
    args = ["--format", "json"] if fmt == "json" else ["-v"]
    rc = main([*args, str(dockerfile_path)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert rc == 2, text
    for secret in SECRETS:
        assert secret not in text
    assert dockerfile_path.read_text() == f"FROM {HOST}/app:1\n"
    sent = " ".join(f"{c.request.headers.get('Authorization')} {c.request.url} {c.request.body}" for c in rsps.calls)
    if not (scenario == "basic-refused" and credential == "identity-token"):  # Basic cannot use a refresh token
        assert AUTH in sent or REFRESH in sent  # the credential was really used, so the scan means something
    if fmt == "json":
        [error] = [r["message"] for r in json.loads(out.out)["references"]]
        assert "\n" not in error


def test_secrets_never_reach_verbose_output_on_success(tmp_path, logged_in, rsps, capsys):
    def registry(request):
        if request.headers.get("Authorization") != f"Basic {AUTH}":
            return 401, {"WWW-Authenticate": 'Basic realm="r"'}, ""
        return 200, {**MANIFEST_HEADERS, "Docker-Content-Digest": DIGEST}, ""

    rsps.add_callback("HEAD", URL, callback=registry)
    rsps.add_callback("GET", f"{REG}/v2/", callback=registry)
    path = tmp_path / "Dockerfile"
    path.write_text(f"FROM {HOST}/app:1\nFROM {HOST}/app:1@{DIGEST}\n")
    assert main(["-v", str(path)]) == 1
    text = "".join(capsys.readouterr())
    assert all(secret not in text for secret in SECRETS)
    assert path.read_text() == f"FROM {HOST}/app:1@{DIGEST}\nFROM {HOST}/app:1@{DIGEST}\n"


# ----------------------------------------------------------------------------------------- main(): nothing half-written


@pytest.fixture
def three(tmp_path: Path) -> dict[str, Path]:
    """a, b and c, each with one distinct image; written in that order."""
    paths = {}
    for name in "abc":
        path = tmp_path / name / "Dockerfile"
        path.parent.mkdir()
        path.write_bytes(f"FROM {name}-image:1 AS {name}\r\nRUN echo {name}\r\n".encode())
        paths[name] = path
    return paths


def original(name: str) -> bytes:
    return f"FROM {name}-image:1 AS {name}\r\nRUN echo {name}\r\n".encode()


def pinned(name: str) -> bytes:
    digest = fake_digest(f"docker.io/library/{name}-image:1")
    return f"FROM {name}-image:1@{digest} AS {name}\r\nRUN echo {name}\r\n".encode()


def assert_state(paths: dict[str, Path], new: str = "", old: str = "") -> None:
    """Files in ``new`` have their complete new bytes, those in ``old`` their old bytes; no temp files anywhere."""
    for name in new:
        assert paths[name].read_bytes() == pinned(name), name
    for name in old:
        assert paths[name].read_bytes() == original(name), name
    root = paths["a"].parent.parent
    assert not list(root.rglob(".pin-images-*")), "temp file left behind"


def error_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    return [line for line in err.splitlines() if line]


def test_one_failed_lookup_leaves_that_file_alone(three, resolver, capsys):
    resolver.errors["docker.io/library/b-image:1"] = RegistryError("registry-1.docker.io answered HTTP 503")
    assert main(["-q", str(three["a"].parent.parent)]) == 2
    assert_state(three, new="ac", old="b")
    [line] = error_lines(capsys)
    assert line.startswith(f"{three['b']}:1: ") and "HTTP 503" in line


@pytest.mark.parametrize("exc", [RuntimeError("resolver bug"), KeyboardInterrupt()])
def test_resolver_blowing_up_mid_run_leaves_every_file_whole(three, resolver, monkeypatch, capsys, exc):
    real = resolver.resolve

    def resolve(ref, platform=None):
        if ref.repository == "library/b-image":
            raise exc
        return real(ref, platform)

    monkeypatch.setattr(resolver, "resolve", resolve)
    if isinstance(exc, KeyboardInterrupt):
        assert main(["-q", str(three["a"].parent.parent)]) == 130
        assert "interrupted" in capsys.readouterr().err
    else:
        assert main(["-q", str(three["a"].parent.parent)]) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("pin-images: internal error: RuntimeError: resolver bug (a bug: please report it")
        monkeypatch.setenv("PIN_IMAGES_DEBUG", "1")
        with pytest.raises(RuntimeError):
            main(["-q", str(three["a"].parent.parent)])
    # Files whose references all resolved before the failure may already be written (writes overlap the
    # network); each is whole either way, and the file whose lookup blew up is untouched.
    assert_state(three, old="b")
    for name in "ac":
        assert three[name].read_bytes() in (pinned(name), original(name)), name


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def _fail_for(name: str, make_error, monkeypatch, where: str) -> list[str]:
    """Make one step of replace_file (write, fsync, chmod, replace) fail for the temp file of ``<name>/Dockerfile``."""
    hit: list[str] = []
    marker = f"{os.sep}{name}{os.sep}.pin-images-"
    if where == "write":
        real_fdopen = os.fdopen

        class DiskFull:
            """Half of the bytes reach the disk, then ENOSPC."""

            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, data):
                self.f.write(data[: len(data) // 2])
                self.f.flush()
                hit.append(name)
                raise make_error()

        def fdopen(fd, *args, **kwargs):
            f = real_fdopen(fd, *args, **kwargs)
            return DiskFull(f) if marker in _fd_path(fd) else f

        monkeypatch.setattr(files.os, "fdopen", fdopen)
        return hit
    real = {"fsync": os.fsync, "chmod": os.chmod, "replace": os.replace}[where]

    def failing(first, *args, **kwargs):
        path = _fd_path(first) if isinstance(first, int) else str(first)
        if marker in path:
            hit.append(name)
            raise make_error()
        return real(first, *args, **kwargs)

    monkeypatch.setattr(files.os, where, failing)
    return hit


@pytest.mark.parametrize(
    ("where", "make_error", "message"),
    [
        ("write", lambda: OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        ("fsync", lambda: OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        ("fsync", lambda: OSError(errno.EIO, "Input/output error"), "Input/output error"),
        ("chmod", lambda: PermissionError(errno.EPERM, "Operation not permitted"), "Operation not permitted"),
        ("replace", lambda: PermissionError(errno.EACCES, "Permission denied"), "Permission denied"),
        ("replace", lambda: OSError(errno.EXDEV, "Invalid cross-device link"), "Invalid cross-device link"),
    ],
    ids=["enospc-write", "enospc-fsync", "eio", "chmod-eperm", "replace-eacces", "replace-exdev"],
)
def test_a_failing_write_leaves_old_bytes_and_no_temp_file(three, resolver, monkeypatch, capsys, where,
                                                           make_error, message):
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to tell temp files apart")
    hit = _fail_for("b", make_error, monkeypatch, where)
    assert main(["-q", str(three["a"].parent.parent)]) == 2
    assert hit == ["b"]
    assert_state(three, new="ac", old="b")
    [line] = error_lines(capsys)
    assert line == f"{three['b']}: cannot write: {message}"


def test_keyboard_interrupt_while_writing_leaves_whole_files(three, resolver, monkeypatch, capsys):
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to tell temp files apart")
    _fail_for("b", KeyboardInterrupt, monkeypatch, "replace")
    assert main(["-q", str(three["a"].parent.parent)]) == 130
    assert "files already written are complete, the rest untouched" in capsys.readouterr().err
    assert_state(three, new="a", old="b")
    # Files are written in parallel, so c may or may not have been written before the interrupt: whole either way.
    assert three["c"].read_bytes() in (pinned("c"), original("c"))


@pytest.mark.parametrize("change", ["edit", "delete", "same-size-edit"])
def test_a_file_changed_during_resolution_is_reported_not_overwritten(three, resolver, monkeypatch, capsys,
                                                                       change):
    real = resolver.resolve
    edited = b"FROM b-image:2 AS b\r\nRUN echo b\r\n" if change == "edit" else original("b").replace(b"b", b"B", 1)

    def resolve(ref, platform=None):
        if ref.repository == "library/b-image":
            if change == "delete":
                three["b"].unlink()
            else:
                three["b"].write_bytes(edited)  # someone saved the file in an editor meanwhile
        return real(ref, platform)

    monkeypatch.setattr(resolver, "resolve", resolve)
    assert main(["-q", str(three["a"].parent.parent)]) == 2
    assert_state(three, new="ac")
    if change == "delete":
        assert not three["b"].exists()  # not recreated
    else:
        assert three["b"].read_bytes() == edited
    [line] = error_lines(capsys)
    assert str(three["b"]) in line
    assert ("changed on disk" in line and "not overwritten" in line) or "cannot read" in line


def test_a_file_changed_between_the_check_and_the_write_is_not_overwritten(three, resolver, monkeypatch, capsys):
    """The last moment: after run() compared the bytes, before replace_file() does. replace_file compares again."""
    real_apply = run.apply

    def apply(data, edits):
        if b"b-image" in data:
            three["b"].write_bytes(b"FROM b-image:9\r\n")
        return real_apply(data, edits)

    monkeypatch.setattr(run, "apply", apply)
    assert main(["-q", str(three["a"].parent.parent)]) == 2
    assert_state(three, new="ac")
    assert three["b"].read_bytes() == b"FROM b-image:9\r\n"
    [line] = error_lines(capsys)
    assert line.startswith(str(three["b"])) and "changed on disk" in line


def test_replace_file_never_leaves_a_partial_target(tmp_path, monkeypatch):
    """Unit view of the same promise: whatever step fails, the target is old or new, never in between."""
    target = tmp_path / "Dockerfile"
    old, new = b"FROM a:1\n" * 1000, b"FROM a:1@sha256:" + b"0" * 64 + b"\n"
    for step in ("fsync", "chmod", "replace"):
        target.write_bytes(old)
        real = getattr(os, step)

        def boom(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(files.os, step, boom)
        with pytest.raises(DockerfileError, match="No space left on device"):
            files.replace_file(str(target), new, files.digest_bytes(old))
        monkeypatch.setattr(files.os, step, real)
        assert target.read_bytes() == old
        assert [p.name for p in tmp_path.iterdir()] == ["Dockerfile"]
    files.replace_file(str(target), new, files.digest_bytes(old))
    assert target.read_bytes() == new
