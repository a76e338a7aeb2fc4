"""Registry credentials from the places users already keep them: docker config, credential helpers,
the containers auth file and Google application default credentials, as an ordered chain per host."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Protocol, Union

from pin_images.errors import CredentialError
from pin_images.hosts import DOCKER_HUB, canonical_registry

if TYPE_CHECKING:
    import subprocess

    GoogleDefault = Callable[..., Any]

# Docker Hub is stored under its v1 index URL, whatever name the image used (ggcr DefaultAuthKey).
HUB_AUTH_KEY = "https://index.docker.io/v1/"
# Hub keys in the order docker itself would find them; anything else is matched after normalisation.
_HUB_KEYS = (HUB_AUTH_KEY, "https://index.docker.io/v1", "index.docker.io", "docker.io")
IDENTITY_TOKEN_USER = "<token>"
GOOGLE_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
GOOGLE_SOURCE = "Google application default credentials"
GOOGLE_HINT = "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
_MAX_DETAIL = 200


class Credential(NamedTuple):
    """A username/password pair for one registry host and a secret-free note of where it came from."""

    username: str
    password: str
    source: str

    def __repr__(self) -> str:  # the password never reaches a log or a traceback
        return f"Credential(username={self.username!r}, source={self.source!r})"

    @property
    def identity_token(self) -> bool:
        """True when ``password`` is an OAuth2 refresh token (docker's ``identitytoken``), not a password."""
        return self.username == IDENTITY_TOKEN_USER


class CredentialSource(Protocol):
    """One link of the chain. ``describe`` returns None when the source has nothing for ``host``."""

    def describe(self, host: str) -> str | None: ...

    def get(self, host: str) -> Credential | None: ...


def canonical_host(host: str) -> str:
    """Lower-cased host[:port], with Docker Hub's aliases folded into ``docker.io``."""
    return canonical_registry(host)


def _docker_key_host(key: str) -> str:
    """Host a docker config key refers to: scheme and path dropped, as docker's ConvertToHostname does."""
    rest = key.strip()
    for scheme in ("https://", "http://"):
        if rest.lower().startswith(scheme):
            rest = rest[len(scheme) :]
            break
    return canonical_host(rest.split("/", 1)[0])


def _containers_key_host(key: str) -> str | None:
    """Host of a containers auth.json key, or None for a ``host/namespace`` key (we only match whole hosts)."""
    rest = key.strip()
    lower = rest.lower()
    if lower.startswith(("https://", "http://")):
        # Legacy docker-style keys: containers/image keeps only the host of these.
        return _docker_key_host(rest)
    if "/" in rest:
        return None
    return canonical_host(rest)


def _server_url(host: str) -> str:
    """What a credential helper is asked for: Hub's v1 URL, otherwise the host as docker passes it."""
    return HUB_AUTH_KEY if canonical_host(host) == DOCKER_HUB else host


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 3] + "..."


class ConfigFile:
    """A JSON credentials file (docker config.json or containers auth.json), read once, thread-safely."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._loaded = False
        self._data: dict[str, Any] = {}
        self._error: CredentialError | None = None

    @property
    def exists(self) -> bool:
        return os.path.isfile(self.path)

    def data(self) -> dict[str, Any]:
        """The parsed top-level object; {} when the file is absent. Raises CredentialError if it is broken."""
        with self._lock:
            if not self._loaded:
                try:
                    self._data = self._read()
                except CredentialError as exc:
                    self._error = exc
                self._loaded = True
        if self._error is not None:
            raise self._error
        return self._data

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CredentialError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CredentialError(f"{self.path} is not UTF-8 text") from None
        if not text.strip():
            return {}  # docker tolerates an empty config file
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            # exc.msg and the position only: the document itself may hold secrets.
            raise CredentialError(
                f"malformed JSON in {self.path}: {exc.msg} (line {exc.lineno} column {exc.colno})"
            ) from None
        except RecursionError:  # "[[[[..." nested past the interpreter's limit
            raise CredentialError(f"malformed JSON in {self.path}: nested too deeply") from None
        if not isinstance(data, dict):
            raise CredentialError(f"malformed {self.path}: the top level must be a JSON object")
        return data

    def section(self, name: str) -> dict[str, Any]:
        value = self.data().get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise CredentialError(f"malformed {self.path}: {name!r} must be a JSON object")
        return value

    def string(self, name: str) -> str:
        value = self.data().get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise CredentialError(f"malformed {self.path}: {name!r} must be a string")
        return value


def _find_key(section: Mapping[str, Any], host: str, key_host: Callable[[str], str | None]) -> str | None:
    """The key in ``section`` for ``host``: docker's exact spelling first, then any key naming the same host."""
    canon = canonical_host(host)
    preferred = _HUB_KEYS if canon == DOCKER_HUB else (host, canon)
    for key in preferred:
        if key in section:
            return key
    for key in section:
        if key_host(key) == canon:
            return key
    return None


def _look_path(program: str, path: str) -> str | None:
    """``program`` in the absolute entries of ``path`` only, like Go's exec.LookPath, which docker uses.

    An empty, ``.`` or other relative entry would mean the current directory, which in a git hook is the
    repository being checked: a ``docker-credential-*`` file there must never run.
    """
    # Not shutil.which: on Windows it searches the current directory first whatever ``path`` says.
    suffixes = [""]
    if sys.platform == "win32":
        suffixes = [ext.lower() for ext in os.environ.get("PATHEXT", ".COM;.EXE;.BAT;.CMD").split(";") if ext]
    for entry in path.split(os.pathsep):
        if not entry or not os.path.isabs(entry):
            continue
        for suffix in suffixes:
            candidate = os.path.join(entry, program + suffix)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return None


class HelperRunner:
    """Runs ``docker-credential-<name> get`` with the PATH and environment the keychain was given."""

    def __init__(self, env: Mapping[str, str], timeout: float) -> None:
        self._env = dict(env)
        # Never fall back to os.environ's PATH: the caller's mapping is the whole truth.
        self._path = env.get("PATH", os.defpath)
        self.timeout = timeout

    def get(self, name: str, host: str, where: str) -> tuple[str, str] | None:
        """(username, secret) from the helper, None for "credentials not found"; ``where`` names the config entry."""
        program = f"docker-credential-{name}"
        label = f"credential helper {program} ({where})"
        if not name or "/" in name or os.sep in name:
            raise CredentialError(f"invalid credential helper name {name!r} ({where})")
        exe = _look_path(program, self._path)
        if exe is None:
            raise CredentialError(f"{label} not found on PATH; install it or remove the entry")
        import subprocess  # here: most runs read no helper, and the import costs a hook run milliseconds

        try:
            proc = subprocess.Popen(
                [exe, "get"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env,
                # Own process group, so a timeout also kills whatever a shell-script helper started.
                start_new_session=True,
            )
        except OSError as exc:
            raise CredentialError(f"{label} could not be run: {exc.strerror or exc}") from None
        try:
            # No trailing newline: docker sends exactly the server URL.
            out, err = proc.communicate(_server_url(host).encode(), timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            raise CredentialError(
                f"{label} did not answer within {self.timeout:g}s for {host}; check it works: "
                f"echo {_server_url(host)} | {program} get"
            ) from None
        stdout = out.decode("utf-8", "replace")
        stderr = err.decode("utf-8", "replace")
        if proc.returncode != 0:
            output = f"{stdout}\n{stderr}"
            if "credentials not found" in output.lower():
                return None
            detail = _one_line(stderr) or _one_line(stdout)
            # A failing helper's output is shown to help the user, unless it might carry a secret.
            if "{" in detail or "secret" in detail.lower():
                detail = "output withheld"
            suffix = f": {detail}" if detail else ""
            raise CredentialError(f"{label} failed for {host} with exit status {proc.returncode}{suffix}")
        try:
            payload = json.loads(stdout)
        except (ValueError, RecursionError):
            payload = None
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("Username", ""), str)
            or not isinstance(payload.get("Secret"), str)
        ):
            # Never echo the output: it is exactly where a secret would be.
            raise CredentialError(
                f"{label} returned malformed output for {host} (expected JSON with Username and Secret)"
            )
        username, secret = payload.get("Username", ""), payload["Secret"]
        if not secret and not username:
            return None
        return username, secret

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        import signal

        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (AttributeError, OSError):  # no process groups (Windows) or already gone
            proc.kill()
        proc.communicate()


class DockerHelperSource:
    """``credHelpers[host]`` in docker's config.json."""

    def __init__(self, config: ConfigFile, runner: HelperRunner) -> None:
        self._config = config
        self._runner = runner

    def _entry(self, host: str) -> tuple[str, str] | None:
        helpers = self._config.section("credHelpers")
        key = _find_key(helpers, host, _docker_key_host)
        if key is None or not helpers[key]:
            return None
        name = helpers[key]
        if not isinstance(name, str):
            raise CredentialError(f"malformed {self._config.path}: credHelpers[{key!r}] must be a string")
        return key, name

    def describe(self, host: str) -> str | None:
        entry = self._entry(host)
        if entry is None:
            return None
        key, name = entry
        return f"credHelpers[{key}] (docker-credential-{name}) in {self._config.path}"

    def get(self, host: str) -> Credential | None:
        entry = self._entry(host)
        if entry is None:
            return None
        key, name = entry
        got = self._runner.get(name, host, f"credHelpers[{key}] in {self._config.path}")
        return None if got is None else Credential(got[0], got[1], source=self.describe(host) or "")


class DockerStoreSource:
    """``credsStore`` in docker's config.json: the default helper for every host."""

    def __init__(self, config: ConfigFile, runner: HelperRunner) -> None:
        self._config = config
        self._runner = runner

    def describe(self, host: str) -> str | None:
        name = self._config.string("credsStore")
        return f"credsStore (docker-credential-{name}) in {self._config.path}" if name else None

    def get(self, host: str) -> Credential | None:
        name = self._config.string("credsStore")
        if not name:
            return None
        got = self._runner.get(name, host, f"credsStore in {self._config.path}")
        return None if got is None else Credential(got[0], got[1], source=self.describe(host) or "")


class AuthsSource:
    """``auths`` of docker's config.json or of a containers auth.json (the two formats only differ in keys)."""

    def __init__(self, config: ConfigFile, containers: bool = False) -> None:
        self._config = config
        self._key_host = _containers_key_host if containers else _docker_key_host

    def describe(self, host: str) -> str | None:
        # Named even when absent: a 401 then says every place a login could have been stored.
        missing = "" if self._config.exists else " (no such file)"
        return f"auths in {self._config.path}{missing}"

    def get(self, host: str) -> Credential | None:
        auths = self._config.section("auths")
        key = _find_key(auths, host, self._key_host)
        if key is None:
            return None
        entry = auths[key]
        where = f"auths[{key!r}] in {self._config.path}"
        if not isinstance(entry, dict):
            raise CredentialError(f"malformed {where}: must be a JSON object")
        fields = {}
        for name in ("auth", "username", "password", "identitytoken"):
            value = entry.get(name) or ""
            if not isinstance(value, str):
                raise CredentialError(f"malformed {where}: {name!r} must be a string")
            fields[name] = value
        source = f"auths[{key}] in {self._config.path}"
        # An identity token wins over a password, as in ggcr: it is what `docker login` stored last.
        if fields["identitytoken"]:
            return Credential(IDENTITY_TOKEN_USER, fields["identitytoken"], source=source)
        username, password = fields["username"], fields["password"]
        if fields["auth"]:
            username, password = self._decode(fields["auth"], where)
        if not username:
            return None  # e.g. the `{}` placeholders docker writes when a credsStore holds the secret
        return Credential(username, password, source=source)

    @staticmethod
    def _decode(auth: str, where: str) -> tuple[str, str]:
        try:
            decoded = base64.b64decode(auth.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise CredentialError(f"malformed {where}: 'auth' is not base64 of user:password") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise CredentialError(f"malformed {where}: 'auth' is not base64 of user:password")
        return username, password


def is_google_host(host: str) -> bool:
    """gcr.io, its regional hosts and Artifact Registry (``*-docker.pkg.dev``) take Google access tokens."""
    name = host.strip().lower().split(":", 1)[0]
    return name == "gcr.io" or name.endswith((".gcr.io", ".pkg.dev"))


class GoogleSource:
    """Google application default credentials, for Google hosts only; google-auth is imported on first use."""

    def __init__(self, google_default: GoogleDefault | None = None) -> None:
        # google_default mimics google.auth.default(scopes=...) -> (credentials, project); injectable for tests.
        self._google_default = google_default
        self._lock = threading.Lock()
        self._done = False
        self._token: str | None = None
        self._error: CredentialError | None = None

    def describe(self, host: str) -> str | None:
        return GOOGLE_SOURCE if is_google_host(host) else None

    def get(self, host: str) -> Credential | None:
        if not is_google_host(host):
            return None
        # One refresh serves gcr.io and every pkg.dev host alike.
        with self._lock:
            if not self._done:
                try:
                    self._token = self._fetch()
                except CredentialError as exc:
                    self._error = exc
                self._done = True
        if self._error is not None:
            raise self._error
        return None if self._token is None else Credential("oauth2accesstoken", self._token, source=GOOGLE_SOURCE)

    def _fetch(self) -> str | None:
        try:
            import google.auth
            from google.auth import exceptions as google_exceptions
        except ImportError:
            return None  # google-auth is a dependency, but a stripped install should mean anonymous, not a crash
        google_default = self._google_default or google.auth.default
        expected = (google_exceptions.GoogleAuthError, OSError, ValueError)
        try:
            credentials, _project = google_default(scopes=list(GOOGLE_SCOPES))
        except google_exceptions.DefaultCredentialsError:
            return None  # ADC not configured: anonymous, the registry may well be public
        except expected as exc:
            raise self._failure(exc) from None
        try:
            from google.auth.transport.requests import Request

            credentials.refresh(Request())
        except expected as exc:
            raise self._failure(exc) from None
        token = getattr(credentials, "token", None)
        if not isinstance(token, str) or not token:
            raise CredentialError(f"{GOOGLE_SOURCE} gave no access token; {GOOGLE_HINT}")
        return token

    @staticmethod
    def _failure(exc: BaseException) -> CredentialError:
        detail = _one_line(str(exc))
        return CredentialError(f"{GOOGLE_SOURCE} failed: {type(exc).__name__}: {detail}; {GOOGLE_HINT}")


_Result = Union[Credential, None, CredentialError]


class Keychain:
    """An ordered chain of credential sources: the first answer for a host wins and is cached, thread-safely."""

    def __init__(self, sources: Sequence[CredentialSource]) -> None:
        self._sources = tuple(sources)
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._results: dict[str, _Result] = {}
        self._tried: dict[str, list[str]] = {}

    def get(self, host: str) -> Credential | None:
        """Credential for ``host`` or None for anonymous. Raises CredentialError when a source is broken."""
        key = canonical_host(host)
        with self._lock:
            host_lock = self._host_locks.setdefault(key, threading.Lock())
        # A per-host lock: concurrent callers for one host share one helper run, other hosts don't wait.
        with host_lock:
            if key not in self._results:
                self._results[key] = self._lookup(host, key)
            result = self._results[key]
        if isinstance(result, CredentialError):
            raise result
        return result

    def tried(self, host: str) -> list[str]:
        """Descriptions (never secrets) of the sources consulted for ``host``, for "401 after trying ..."."""
        # A broken source is already recorded in the list; the error itself is for get()'s callers.
        with contextlib.suppress(CredentialError):
            self.get(host)
        return list(self._tried.get(canonical_host(host), []))

    def _lookup(self, host: str, key: str) -> _Result:
        tried: list[str] = []
        self._tried[key] = tried
        try:
            for source in self._sources:
                description = source.describe(host)
                if description is None:
                    continue
                tried.append(description)
                credential = source.get(host)
                if credential is not None:
                    return credential
        except CredentialError as exc:
            return exc
        return None


def docker_config_path(env: Mapping[str, str], home: str) -> str:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    directory = env.get("DOCKER_CONFIG") or os.path.join(home, ".docker")
    return os.path.join(directory, "config.json")


def containers_auth_paths(env: Mapping[str, str], home: str) -> list[str]:
    """The containers (podman/skopeo) auth files to read, in order."""
    if env.get("REGISTRY_AUTH_FILE"):
        return [env["REGISTRY_AUTH_FILE"]]
    paths = []
    if env.get("XDG_RUNTIME_DIR"):
        paths.append(os.path.join(env["XDG_RUNTIME_DIR"], "containers", "auth.json"))
    config_home = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    paths.append(os.path.join(config_home, "containers", "auth.json"))
    return paths


def _passwd_home() -> str:
    # Not os.path.expanduser: that would read os.environ, and the caller's env is the whole truth.
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError, AttributeError):  # Windows, or a uid without a passwd entry
        return os.path.expanduser("~")


def default_keychain(
    env: Mapping[str, str],
    home: str | None = None,
    helper_timeout: float = 10.0,
    *,
    google_default: GoogleDefault | None = None,
) -> Keychain:
    """The chain docker users expect: config.json helpers, store and auths, containers auth files, Google ADC."""
    if home is None:
        home = env.get("HOME") or _passwd_home()
    config = ConfigFile(docker_config_path(env, home))
    runner = HelperRunner(env, helper_timeout)
    sources: list[CredentialSource] = [
        DockerHelperSource(config, runner),
        DockerStoreSource(config, runner),
        AuthsSource(config),
    ]
    sources.extend(AuthsSource(ConfigFile(path), containers=True) for path in containers_auth_paths(env, home))
    sources.append(GoogleSource(google_default))
    return Keychain(sources)
