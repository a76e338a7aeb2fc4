"""Run the real distribution registry (``docker-registry serve``) on 127.0.0.1 for integration tests."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from . import pki
from .token_server import TokenServer

DEFAULT_REGISTRY_BIN = "/usr/bin/docker-registry"
MODES = ("anonymous", "htpasswd", "token", "tls")


class RegistryStartError(RuntimeError):
    """The registry process did not come up; the message carries the tail of its log."""


def find_registry_bin() -> str | None:
    """``$PIN_IMAGES_REGISTRY_BIN`` or ``/usr/bin/docker-registry``, if it is an executable file."""
    candidate = os.environ.get("PIN_IMAGES_REGISTRY_BIN") or DEFAULT_REGISTRY_BIN
    resolved = shutil.which(candidate)
    return resolved if resolved and os.path.isfile(resolved) else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bcrypt_htpasswd_line(username: str, password: str) -> str:
    """An htpasswd line; distribution only accepts bcrypt hashes (golang.org/x/crypto/bcrypt)."""
    import bcrypt  # test extra; imported here so other modes do not need it

    return f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}"


class RegistryServer:
    """Context manager running ``docker-registry serve`` in one of ``MODES``.

    Attributes: ``mode``, ``host`` (``127.0.0.1:PORT``), ``url``, ``port``, ``log_path``, ``workdir``,
    ``config_path``, ``ca_path`` (tls only), ``username``/``password`` (htpasswd and token),
    ``token_server`` (token only).
    """

    def __init__(
        self,
        mode: str = "anonymous",
        *,
        binary: str | None = None,
        username: str = "pinner",
        password: str | None = None,
        allow_anonymous_tokens: bool = False,
        workdir: Path | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown registry mode {mode!r}; expected one of {MODES}")
        self.mode = mode
        self.binary = binary or find_registry_bin() or DEFAULT_REGISTRY_BIN
        self.username: str | None = username if mode in ("htpasswd", "token") else None
        self.password: str | None = (password or secrets.token_urlsafe(12)) if self.username else None
        self.allow_anonymous_tokens = allow_anonymous_tokens
        self.start_timeout = start_timeout
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"pin-images-registry-{mode}-"))
        self.config_path = self.workdir / "config.yml"
        self.log_path = self.workdir / "registry.log"
        self.ca_path: Path | None = None
        self.token_server: TokenServer | None = None
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    # -- addresses -------------------------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return "https" if self.mode == "tls" else "http"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def verify(self) -> bool | str:
        """The ``verify=`` argument requests needs for this registry."""
        return str(self.ca_path) if self.ca_path else True

    @property
    def push_auth(self) -> Any:
        """Credentials for :mod:`tests.support.seed`: None, a (user, password) tuple, or a repo -> token getter."""
        if self.mode == "htpasswd":
            return (self.username, self.password)
        if self.mode == "token":
            assert self.token_server is not None
            return self.token_server.token_getter()
        return None

    # -- configuration ---------------------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        storage = self.workdir / "storage"
        storage.mkdir(exist_ok=True)
        http: dict[str, Any] = {
            "addr": self.host,
            "secret": secrets.token_hex(16),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        }
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http,
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.mode == "htpasswd":
            assert self.username and self.password
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text(bcrypt_htpasswd_line(self.username, self.password) + "\n")
            config["auth"] = {"htpasswd": {"realm": "pin-images-test", "path": str(htpasswd)}}
        elif self.mode == "token":
            assert self.token_server is not None
            config["auth"] = {
                "token": {
                    "realm": self.token_server.realm,
                    "service": self.token_server.service,
                    "issuer": self.token_server.issuer,
                    "rootcertbundle": str(self.token_server.signer.cert_path),
                }
            }
        elif self.mode == "tls":
            ca = pki.make_ca(self.workdir)
            server = pki.make_server_cert(self.workdir, ca)
            self.ca_path = ca.cert_path
            http["tls"] = {"certificate": str(server.cert_path), "key": str(server.key_path)}
        return config

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> RegistryServer:
        if self.mode == "token" and self.token_server is None:
            signer = pki.make_signing_cert(self.workdir)
            assert self.username and self.password
            self.token_server = TokenServer(
                signer, users={self.username: self.password}, allow_anonymous=self.allow_anonymous_tokens
            ).start()
        last_error: RegistryStartError | None = None
        for _attempt in range(3):  # a freshly freed port can be grabbed by someone else: retry on a new one
            self.port = free_port()
            # JSON is YAML, and saves a PyYAML dependency.
            self.config_path.write_text(json.dumps(self._config(), indent=2))
            try:
                self._spawn()
                return self
            except RegistryStartError as exc:
                last_error = exc
                self._kill()
                if "address already in use" not in str(exc):
                    break
        self.stop()
        assert last_error is not None
        raise last_error

    def _spawn(self) -> None:
        # REGISTRY_* variables override the config file: keep the caller's out.
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self._proc = subprocess.Popen(
            [self.binary, "serve", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + self.start_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RegistryStartError(
                    f"{self.binary} exited with {self._proc.returncode} during startup; log tail:\n{self.log_tail()}"
                )
            try:
                resp = requests.get(f"{self.url}/v2/", timeout=1, verify=self.verify)
                if resp.status_code in (200, 401):
                    return
                last = f"HTTP {resp.status_code}"
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.02)
        raise RegistryStartError(
            f"{self.binary} did not answer GET {self.url}/v2/ within {self.start_timeout}s ({last}); "
            f"log tail:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stop(self) -> None:
        self._kill()
        if self.token_server is not None:
            self.token_server.stop()

    def cleanup(self) -> None:
        """Stop and delete the working directory (if this object created it)."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> RegistryServer:
        try:
            return self.start()
        except BaseException:
            self.cleanup()  # __exit__ will not run; the error message already carries the log tail
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"RegistryServer(mode={self.mode!r}, url={self.url!r})"
