"""Tests for pin_images.credentials: config formats, helper protocol, precedence, Google ADC, thread safety."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pin_images.credentials import (
    GOOGLE_SOURCE,
    Credential,
    Keychain,
    default_keychain,
    is_google_host,
)
from pin_images.errors import CredentialError

ROOT = Path(__file__).resolve().parent.parent
FAKE_HELPER = Path(__file__).resolve().parent / "data" / "credentials" / "fake_helper.py"
SECRET = "hunter2-S3CRET-do-not-print"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def no_adc(**kwargs: Any) -> Any:
    # The default for every test: the machine's real ADC must never be used (refreshing it needs the network).
    from google.auth.exceptions import DefaultCredentialsError

    raise DefaultCredentialsError("not configured")


class Setup:
    """A temp HOME, DOCKER_CONFIG, helper bin dir and the env mapping handed to the keychain."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.docker_dir = tmp_path / "docker"
        self.docker_dir.mkdir()
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "helper.log"
        self.env: dict[str, str] = {
            "PATH": str(self.bin),
            "HOME": str(self.home),
            "DOCKER_CONFIG": str(self.docker_dir),
            "FAKE_HELPER_LOG": str(self.log),
            "FAKE_HELPER_SECRET": SECRET,
        }

    @property
    def config_path(self) -> str:
        return str(self.docker_dir / "config.json")

    def config(self, data: Any) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        Path(self.config_path).write_text(text)

    def helper(self, name: str = "test") -> None:
        path = self.bin / f"docker-credential-{name}"
        path.write_text(f"#!{sys.executable}\n" + FAKE_HELPER.read_text())
        path.chmod(0o755)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def keychain(self, timeout: float = 10.0, google_default: Any = no_adc) -> Keychain:
        return default_keychain(self.env, home=str(self.home), helper_timeout=timeout, google_default=google_default)


@pytest.fixture
def s(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def assert_no_secret(err: BaseException) -> None:
    assert SECRET not in str(err)
    assert SECRET not in repr(err)
    assert "\n" not in str(err)


# --- Credential -------------------------------------------------------------------------------------------------


def test_credential_never_shows_password() -> None:
    cred = Credential("alice", SECRET, source="auths[quay.io] in /x/config.json")
    assert SECRET not in repr(cred)
    assert SECRET not in str(cred)
    assert "alice" in repr(cred)
    assert not cred.identity_token
    assert Credential("<token>", SECRET, source="x").identity_token


def test_import_does_not_load_google_auth_or_requests() -> None:
    code = (
        "import pin_images.credentials, sys; "
        "assert 'google.auth' not in sys.modules, 'google.auth'; assert 'requests' not in sys.modules, 'requests'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- docker config auths ----------------------------------------------------------------------------------------


def test_auths_base64(s: Setup) -> None:
    s.config({"auths": {"quay.io": {"auth": b64(f"alice:{SECRET}")}}})
    cred = s.keychain().get("quay.io")
    assert cred == Credential("alice", SECRET, source=f"auths[quay.io] in {s.config_path}")


def test_auths_password_may_contain_colons(s: Setup) -> None:
    s.config({"auths": {"quay.io": {"auth": b64("alice:a:b:c")}}})
    cred = s.keychain().get("quay.io")
    assert cred is not None
    assert (cred.username, cred.password) == ("alice", "a:b:c")


def test_auths_username_password(s: Setup) -> None:
    s.config({"auths": {"quay.io": {"username": "bob", "password": SECRET}}})
    cred = s.keychain().get("quay.io")
    assert cred is not None
    assert (cred.username, cred.password) == ("bob", SECRET)


def test_auths_identitytoken(s: Setup) -> None:
    s.config({"auths": {"myacr.azurecr.io": {"auth": b64("00000000-0000:"), "identitytoken": SECRET}}})
    cred = s.keychain().get("myacr.azurecr.io")
    assert cred is not None
    assert cred.identity_token
    assert (cred.username, cred.password) == ("<token>", SECRET)


@pytest.mark.parametrize("host", ["docker.io", "index.docker.io", "registry-1.docker.io"])
@pytest.mark.parametrize(
    "key", ["https://index.docker.io/v1/", "https://index.docker.io/v1", "index.docker.io", "docker.io"]
)
def test_docker_hub_keys(s: Setup, host: str, key: str) -> None:
    s.config({"auths": {key: {"auth": b64("hubuser:" + SECRET)}}})
    cred = s.keychain().get(host)
    assert cred is not None
    assert cred.username == "hubuser"


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("quay.io", "quay.io"),
        ("https://quay.io", "quay.io"),
        ("http://quay.io", "quay.io"),
        ("https://quay.io/v1/", "quay.io"),
        ("https://quay.io/v2/", "quay.io"),
        ("HTTPS://Quay.IO/v2", "quay.io"),  # hosts are case-insensitive
        ("quay.io/some/namespace", "quay.io"),  # docker keeps only the host of any key
        ("http://localhost:5000/v2/", "localhost:5000"),
        ("127.0.0.1:41234", "127.0.0.1:41234"),
    ],
)
def test_auths_key_spellings(s: Setup, key: str, host: str) -> None:
    s.config({"auths": {key: {"auth": b64("u:" + SECRET)}}})
    cred = s.keychain().get(host)
    assert cred is not None
    assert cred.source == f"auths[{key}] in {s.config_path}"


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("quay.io", "quay.io.evil.example"),
        ("evil.quay.io", "quay.io"),
        ("localhost:5000", "localhost:5001"),
        ("localhost:5000", "localhost"),
        ("https://index.docker.io/v1/", "quay.io"),
        ("quay.io", "docker.io"),
    ],
)
def test_auths_other_hosts_do_not_match(s: Setup, key: str, host: str) -> None:
    s.config({"auths": {key: {"auth": b64("u:" + SECRET)}}})
    assert s.keychain().get(host) is None


def test_exact_key_beats_normalised_key(s: Setup) -> None:
    s.config({"auths": {"https://quay.io/v1/": {"auth": b64("old:x")}, "quay.io": {"auth": b64("new:y")}}})
    cred = s.keychain().get("quay.io")
    assert cred is not None
    assert cred.username == "new"


@pytest.mark.parametrize(
    "entry",
    [
        {},  # what docker writes next to a credsStore
        {"auth": ""},
        {"auth": "", "username": "", "password": ""},
        {"password": "orphan"},
        {"auth": None},
    ],
)
def test_empty_entries_are_no_credential(s: Setup, entry: dict[str, Any]) -> None:
    s.config({"auths": {"quay.io": entry}})
    assert s.keychain().get("quay.io") is None


def test_missing_config_is_anonymous(s: Setup) -> None:
    """Every file looked in is named, the containers auth file too, so a 401 says where a login would go."""
    keychain = s.keychain()
    assert keychain.get("quay.io") is None
    assert keychain.tried("quay.io") == [
        f"auths in {s.config_path} (no such file)",
        f"auths in {s.home / '.config' / 'containers' / 'auth.json'} (no such file)",
    ]


def test_every_containers_auth_file_looked_in_is_named(s: Setup, tmp_path: Path) -> None:
    s.env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    assert s.keychain().tried("quay.io") == [
        f"auths in {s.config_path} (no such file)",
        f"auths in {tmp_path / 'run' / 'containers' / 'auth.json'} (no such file)",
        f"auths in {s.home / '.config' / 'containers' / 'auth.json'} (no such file)",
    ]


@pytest.mark.parametrize("text", ["", "  \n"])
def test_empty_config_file_is_anonymous(s: Setup, text: str) -> None:
    s.config(text)
    assert s.keychain().get("quay.io") is None


def test_config_found_through_home_without_docker_config(s: Setup) -> None:
    del s.env["DOCKER_CONFIG"]
    (s.home / ".docker").mkdir()
    (s.home / ".docker" / "config.json").write_text(json.dumps({"auths": {"quay.io": {"auth": b64("h:x")}}}))
    cred = s.keychain().get("quay.io")
    assert cred is not None
    assert cred.source == f"auths[quay.io] in {s.home / '.docker' / 'config.json'}"
    # home defaults to env["HOME"], never to os.environ
    cred = default_keychain(s.env, google_default=no_adc).get("quay.io")
    assert cred is not None
    assert cred.username == "h"


def test_malformed_json_names_the_file(s: Setup) -> None:
    s.config('{"auths": {"quay.io": {"auth": "' + SECRET + '"}},, }')
    with pytest.raises(CredentialError) as info:
        s.keychain().get("quay.io")
    assert s.config_path in str(info.value)
    assert "malformed JSON" in str(info.value)
    assert_no_secret(info.value)


def test_deeply_nested_json_is_a_credential_error(s: Setup) -> None:
    s.config('{"auths": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(CredentialError, match="nested too deeply") as info:
        s.keychain().get("quay.io")
    assert s.config_path in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        ["not", "an", "object"],
        {"auths": ["quay.io"]},
        {"auths": {"quay.io": "auth"}},
        {"auths": {"quay.io": {"auth": 12}}},
        {"auths": {"quay.io": {"auth": "%%%" + SECRET}}},  # not base64
        {"auths": {"quay.io": {"auth": b64(SECRET)}}},  # no colon
        {"credsStore": 1},
        {"credHelpers": {"quay.io": ["test"]}},
    ],
)
def test_malformed_config_values(s: Setup, data: Any) -> None:
    s.config(data)
    with pytest.raises(CredentialError) as info:
        s.keychain().get("quay.io")
    assert s.config_path in str(info.value)
    assert_no_secret(info.value)


# --- credential helpers -----------------------------------------------------------------------------------------


def test_cred_helper_success(s: Setup) -> None:
    s.helper("test")
    s.config({"credHelpers": {"gcr.io": "test"}})
    cred = s.keychain().get("gcr.io")
    assert cred == Credential(
        "test-user", SECRET, source=f"credHelpers[gcr.io] (docker-credential-test) in {s.config_path}"
    )
    assert s.calls() == ["test get gcr.io"]  # the server URL arrives on stdin, exactly


def test_cred_helper_gets_hub_v1_url(s: Setup) -> None:
    s.helper("test")
    s.config({"credHelpers": {"docker.io": "test"}})
    assert s.keychain().get("registry-1.docker.io") is not None
    assert s.calls() == ["test get https://index.docker.io/v1/"]


def test_cred_helper_identity_token(s: Setup) -> None:
    s.helper("test")
    s.env["FAKE_HELPER_MODE"] = "token"
    s.config({"credsStore": "test"})
    cred = s.keychain().get("myacr.azurecr.io")
    assert cred is not None
    assert cred.identity_token
    assert cred.password == SECRET


def test_cred_helpers_beat_creds_store_beat_auths(s: Setup) -> None:
    s.helper("test")
    s.helper("store")
    s.config(
        {
            "credHelpers": {"gcr.io": "test"},
            "credsStore": "store",
            "auths": {"gcr.io": {"auth": b64("fileuser:x")}, "quay.io": {"auth": b64("fileuser:x")}},
        }
    )
    keychain = s.keychain()
    cred = keychain.get("gcr.io")
    assert cred is not None
    assert cred.username == "test-user"
    cred = keychain.get("quay.io")
    assert cred is not None
    assert cred.username == "store-user"
    assert cred.source == f"credsStore (docker-credential-store) in {s.config_path}"
    assert s.calls() == ["test get gcr.io", "store get quay.io"]


def test_not_found_falls_through_the_chain(s: Setup) -> None:
    s.helper("test")
    s.helper("store")
    s.env["FAKE_HELPER_MODE"] = "notfound"
    s.config({"credHelpers": {"gcr.io": "test"}, "credsStore": "store", "auths": {"gcr.io": {"auth": b64("f:x")}}})
    keychain = s.keychain()
    cred = keychain.get("gcr.io")
    assert cred is not None
    assert cred.username == "f"
    assert keychain.tried("gcr.io") == [
        f"credHelpers[gcr.io] (docker-credential-test) in {s.config_path}",
        f"credsStore (docker-credential-store) in {s.config_path}",
        f"auths in {s.config_path}",
    ]


def test_not_found_everywhere_is_anonymous(s: Setup) -> None:
    s.helper("store")
    s.env["FAKE_HELPER_MODE"] = "notfound"
    s.config({"credsStore": "store"})
    assert s.keychain().get("quay.io") is None


def test_empty_helper_answer_is_anonymous(s: Setup) -> None:
    s.helper("store")
    s.env["FAKE_HELPER_MODE"] = "empty"
    s.config({"credsStore": "store"})
    assert s.keychain().get("quay.io") is None


def test_helper_gets_the_given_env_not_os_environ(s: Setup) -> None:
    # FAKE_HELPER_SECRET only exists in the mapping; the helper answering with it proves the env was passed.
    assert "FAKE_HELPER_SECRET" not in os.environ
    s.helper("test")
    s.config({"credsStore": "test"})
    cred = s.keychain().get("quay.io")
    assert cred is not None
    assert cred.password == SECRET


def test_helper_junk_output(s: Setup) -> None:
    s.helper("test")
    s.env["FAKE_HELPER_MODE"] = "junk"
    s.config({"credHelpers": {"gcr.io": "test"}})
    with pytest.raises(CredentialError) as info:
        s.keychain().get("gcr.io")
    message = str(info.value)
    assert "docker-credential-test" in message
    assert s.config_path in message
    assert "malformed output" in message
    assert_no_secret(info.value)


def test_helper_failure_shows_its_message(s: Setup) -> None:
    s.helper("test")
    s.env["FAKE_HELPER_MODE"] = "fail"
    s.config({"credsStore": "test"})
    with pytest.raises(CredentialError) as info:
        s.keychain().get("quay.io")
    message = str(info.value)
    assert "docker-credential-test" in message
    assert "exit status 3" in message
    assert "keychain is locked" in message
    assert s.config_path in message


def test_helper_failure_output_with_secret_is_withheld(s: Setup) -> None:
    s.helper("test")
    s.env["FAKE_HELPER_MODE"] = "leaky_fail"
    s.config({"credsStore": "test"})
    with pytest.raises(CredentialError) as info:
        s.keychain().get("quay.io")
    assert "output withheld" in str(info.value)
    assert_no_secret(info.value)


def test_missing_helper_binary(s: Setup) -> None:
    s.config({"credHelpers": {"gcr.io": "nope"}})
    with pytest.raises(CredentialError) as info:
        s.keychain().get("gcr.io")
    message = str(info.value)
    assert "docker-credential-nope" in message
    assert "not found on PATH" in message
    assert s.config_path in message


def test_helper_name_cannot_escape_path(s: Setup) -> None:
    s.config({"credsStore": "../../bin/sh"})
    with pytest.raises(CredentialError, match="invalid credential helper name"):
        s.keychain().get("quay.io")


def test_helper_hang_times_out(s: Setup) -> None:
    s.helper("test")
    s.env["FAKE_HELPER_MODE"] = "hang"
    s.config({"credHelpers": {"gcr.io": "test"}})
    start = time.monotonic()
    with pytest.raises(CredentialError) as info:
        s.keychain(timeout=1).get("gcr.io")
    assert time.monotonic() - start < 8
    message = str(info.value)
    assert "docker-credential-test" in message
    assert "within 1s" in message
    assert s.config_path in message


def test_errors_are_cached_per_host(s: Setup) -> None:
    s.helper("test")
    s.env["FAKE_HELPER_MODE"] = "fail"
    s.config({"credsStore": "test"})
    keychain = s.keychain()
    for _ in range(3):
        with pytest.raises(CredentialError):
            keychain.get("quay.io")
    assert keychain.tried("quay.io") == [f"credsStore (docker-credential-test) in {s.config_path}"]
    assert len(s.calls()) == 1


def test_concurrent_gets_run_the_helper_once(s: Setup) -> None:
    s.helper("test")
    s.env["FAKE_HELPER_SLEEP"] = "0.3"  # keep the first lookup in flight while the others arrive
    s.config({"credHelpers": {"gcr.io": "test"}})
    keychain = s.keychain()
    barrier = threading.Barrier(20)
    results: list[Credential | None] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(keychain.get("gcr.io"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 20
    assert all(r is not None and r.password == SECRET for r in results)
    assert s.calls() == ["test get gcr.io"]


def test_hub_aliases_share_one_cache_entry(s: Setup) -> None:
    s.helper("test")
    s.config({"credsStore": "test"})
    keychain = s.keychain()
    for host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert keychain.get(host) is not None
    assert len(s.calls()) == 1


# --- containers auth file ---------------------------------------------------------------------------------------


def write_auth(path: Path, data: Any) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return str(path)


def test_registry_auth_file(s: Setup, tmp_path: Path) -> None:
    path = write_auth(tmp_path / "auth.json", {"auths": {"quay.io": {"auth": b64("podman:" + SECRET)}}})
    s.env["REGISTRY_AUTH_FILE"] = path
    cred = s.keychain().get("quay.io")
    assert cred == Credential("podman", SECRET, source=f"auths[quay.io] in {path}")


def test_registry_auth_file_overrides_xdg(s: Setup, tmp_path: Path) -> None:
    path = write_auth(tmp_path / "auth.json", {"auths": {"quay.io": {"auth": b64("explicit:x")}}})
    write_auth(tmp_path / "run" / "containers" / "auth.json", {"auths": {"quay.io": {"auth": b64("xdg:x")}}})
    s.env["REGISTRY_AUTH_FILE"] = path
    s.env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    cred = s.keychain().get("quay.io")
    assert cred is not None
    assert cred.username == "explicit"


def test_xdg_runtime_dir_then_dot_config(s: Setup, tmp_path: Path) -> None:
    s.env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    run = write_auth(tmp_path / "run" / "containers" / "auth.json", {"auths": {"quay.io": {"auth": b64("xdg:x")}}})
    config = write_auth(
        s.home / ".config" / "containers" / "auth.json",
        {"auths": {"quay.io": {"auth": b64("cfg:x")}, "docker.io": {"auth": b64("cfghub:x")}}},
    )
    keychain = s.keychain()
    cred = keychain.get("quay.io")
    assert cred is not None
    assert cred.username == "xdg"
    cred = keychain.get("docker.io")
    assert cred is not None
    assert cred.username == "cfghub"
    assert keychain.tried("docker.io") == [
        f"auths in {s.config_path} (no such file)",
        f"auths in {run}",
        f"auths in {config}",
    ]


def test_docker_config_beats_containers_auth_file(s: Setup, tmp_path: Path) -> None:
    s.config({"auths": {"quay.io": {"auth": b64("docker:x")}}})
    s.env["REGISTRY_AUTH_FILE"] = write_auth(tmp_path / "auth.json", {"auths": {"quay.io": {"auth": b64("podman:x")}}})
    cred = s.keychain().get("quay.io")
    assert cred is not None
    assert cred.username == "docker"


def test_containers_namespace_keys_are_not_host_credentials(s: Setup, tmp_path: Path) -> None:
    s.env["REGISTRY_AUTH_FILE"] = write_auth(
        tmp_path / "auth.json", {"auths": {"quay.io/team": {"auth": b64("team:x")}}}
    )
    assert s.keychain().get("quay.io") is None


def test_containers_auth_file_malformed(s: Setup, tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text("{" + SECRET)
    s.env["REGISTRY_AUTH_FILE"] = str(path)
    with pytest.raises(CredentialError) as info:
        s.keychain().get("quay.io")
    assert str(path) in str(info.value)
    assert_no_secret(info.value)


# --- Google application default credentials ---------------------------------------------------------------------


class FakeGoogleCredentials:
    def __init__(self, token: str = SECRET, error: Exception | None = None) -> None:
        self.token: str | None = None
        self._new_token = token
        self._error = error
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        if self._error is not None:
            raise self._error
        self.token = self._new_token


class FakeDefault:
    def __init__(self, credentials: FakeGoogleCredentials | None = None, error: Exception | None = None) -> None:
        self.credentials = credentials or FakeGoogleCredentials()
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> tuple[FakeGoogleCredentials, str]:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return self.credentials, "my-project"


@pytest.mark.parametrize(
    ("host", "google"),
    [
        ("gcr.io", True),
        ("eu.gcr.io", True),
        ("us.gcr.io", True),
        ("europe-docker.pkg.dev", True),
        ("us-central1-docker.pkg.dev", True),
        ("gcr.io:443", True),
        ("mirror.gcr.io", True),
        ("docker.io", False),
        ("notgcr.io", False),
        ("gcr.io.evil.example", False),
        ("pkg.dev.evil.example", False),
        ("localhost:5000", False),
    ],
)
def test_is_google_host(host: str, google: bool) -> None:
    assert is_google_host(host) is google


def test_google_adc(s: Setup) -> None:
    fake = FakeDefault()
    keychain = s.keychain(google_default=fake)
    for host in ("gcr.io", "europe-docker.pkg.dev"):
        cred = keychain.get(host)
        assert cred == Credential("oauth2accesstoken", SECRET, source=GOOGLE_SOURCE)
    assert fake.calls == [{"scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]
    assert fake.credentials.refreshes == 1  # one token serves every Google host
    assert keychain.tried("gcr.io")[-1] == GOOGLE_SOURCE


def test_google_source_only_for_google_hosts(s: Setup) -> None:
    fake = FakeDefault()
    keychain = s.keychain(google_default=fake)
    assert keychain.get("quay.io") is None
    assert fake.calls == []
    assert GOOGLE_SOURCE not in keychain.tried("quay.io")


def test_docker_config_beats_google(s: Setup) -> None:
    s.config({"auths": {"gcr.io": {"auth": b64("_json_key:x")}}})
    fake = FakeDefault()
    cred = s.keychain(google_default=fake).get("gcr.io")
    assert cred is not None
    assert cred.username == "_json_key"
    assert fake.calls == []


def test_google_adc_not_configured_is_anonymous(s: Setup) -> None:
    from google.auth.exceptions import DefaultCredentialsError

    keychain = s.keychain(google_default=FakeDefault(error=DefaultCredentialsError("no ADC")))
    assert keychain.get("gcr.io") is None
    assert keychain.tried("gcr.io") == [
        f"auths in {s.config_path} (no such file)",
        f"auths in {s.home / '.config' / 'containers' / 'auth.json'} (no such file)",
        GOOGLE_SOURCE,
    ]


def test_google_refresh_failure_is_an_error_with_a_hint(s: Setup) -> None:
    from google.auth.exceptions import RefreshError

    creds = FakeGoogleCredentials(error=RefreshError("invalid_grant: Token has been expired or revoked."))
    with pytest.raises(CredentialError) as info:
        s.keychain(google_default=FakeDefault(creds)).get("us-docker.pkg.dev")
    message = str(info.value)
    assert "RefreshError" in message
    assert "invalid_grant" in message
    assert "gcloud auth application-default login" in message
    assert_no_secret(info.value)


def test_google_default_other_error(s: Setup) -> None:
    from google.auth.exceptions import TransportError

    with pytest.raises(CredentialError, match="gcloud auth application-default login"):
        s.keychain(google_default=FakeDefault(error=TransportError("metadata server unreachable"))).get("gcr.io")


def test_google_without_token(s: Setup) -> None:
    creds = FakeGoogleCredentials(token="")
    with pytest.raises(CredentialError, match="no access token"):
        s.keychain(google_default=FakeDefault(creds)).get("gcr.io")


# --- Keychain with custom sources -------------------------------------------------------------------------------


class StaticSource:
    def __init__(self, name: str, answers: dict[str, Credential]) -> None:
        self.name = name
        self.answers = answers
        self.asked: list[str] = []

    def describe(self, host: str) -> str | None:
        return self.name

    def get(self, host: str) -> Credential | None:
        self.asked.append(host)
        return self.answers.get(host)


def test_first_answer_wins_and_later_sources_are_skipped() -> None:
    first = StaticSource("first", {"a.example": Credential("one", "p1", source="first")})
    second = StaticSource(
        "second", {"a.example": Credential("two", "p2", source="second"), "b.example": Credential("b", "p", "second")}
    )
    keychain = Keychain([first, second])
    cred = keychain.get("a.example")
    assert cred is not None
    assert cred.username == "one"
    assert second.asked == []
    assert keychain.tried("a.example") == ["first"]
    cred = keychain.get("b.example")
    assert cred is not None
    assert cred.username == "b"
    assert keychain.tried("b.example") == ["first", "second"]
    keychain.get("b.example")
    assert first.asked == ["a.example", "b.example"]  # cached: asked once per host


def test_tried_before_get_performs_the_lookup() -> None:
    source = StaticSource("only", {})
    keychain = Keychain([source])
    assert keychain.tried("c.example") == ["only"]
    assert keychain.get("c.example") is None
    assert source.asked == ["c.example"]


@pytest.mark.parametrize("path", ["", ".", ":", "::", ".:{bin}", ":{bin}", "{bin}:", "{bin}:.", "bin"])
def test_helper_is_never_run_from_the_current_directory(s: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        path: str) -> None:
    """In a hook the current directory is the repository under check: a helper found there is the attacker's.
    Like docker (Go's exec.LookPath), only absolute PATH entries are searched."""
    repo = tmp_path / "repo"
    (repo / "bin").mkdir(parents=True)
    ran = tmp_path / "ran"
    for where in (repo, repo / "bin"):
        script = where / "docker-credential-x"
        script.write_text(f"#!/bin/sh\ntouch {ran}\necho '{{\"Username\":\"u\",\"Secret\":\"s\"}}'\n")
        script.chmod(0o755)
    monkeypatch.chdir(repo)
    s.env["PATH"] = path.format(bin=s.bin)
    s.config({"credHelpers": {"quay.io": "x"}})
    with pytest.raises(CredentialError, match="not found on PATH"):
        s.keychain().get("quay.io")
    assert not ran.exists(), "a credential helper from the current directory ran"


def test_helper_from_an_absolute_path_entry_still_runs(s: Setup, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The control for the test above: the same helper in an absolute PATH entry (after relative ones) is used."""
    s.helper("test")
    monkeypatch.chdir(tmp_path)
    s.env["PATH"] = f".::{s.bin}"
    s.config({"credHelpers": {"quay.io": "test"}})
    assert s.keychain().get("quay.io") is not None
