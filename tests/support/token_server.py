"""A small Docker token-auth server (distribution's ``auth: token``) that signs JWTs the registry accepts."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from .loopback import LoopbackServer
from .pki import KeyPair


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server answered."""

    method: str
    path: str
    scopes: tuple[str, ...]
    service: str | None
    username: str | None  # the authenticated user, None when anonymous or rejected
    had_authorization: bool
    grant_type: str | None  # POST (OAuth2) requests only
    status: int


def parse_scope(scope: str) -> tuple[str, str, list[str]]:
    """``repository:a/b:pull,push`` -> ``("repository", "a/b", ["pull", "push"])``."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    return kind, name, [a for a in actions.split(",") if a]


class TokenServer(LoopbackServer):
    """Threaded token endpoint on 127.0.0.1 (``GET``/``POST`` ``/token``).

    Registry tokens are RS256 JWTs with an ``x5c`` header holding the self-signed signing certificate, which is also
    the registry's ``rootcertbundle`` (distribution 2.8 verifies ``x5c`` chains with ``ExtKeyUsageAny``).
    Authenticated users get every action they ask for; anonymous callers get ``pull`` only when
    ``allow_anonymous`` is true, otherwise a 401. ``max_scopes`` (if set) grants only the first N scopes of a request,
    to exercise clients' fallback to one token per repository. Attributes may be changed while running.
    """

    name = "token-server"

    def __init__(
        self,
        signer: KeyPair,
        *,
        service: str = "pin-images-test",
        issuer: str = "pin-images-test-issuer",
        users: Mapping[str, str] | None = None,
        allow_anonymous: bool = False,
        max_scopes: int | None = None,
        expires_in: int = 300,
        refresh_tokens: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.signer = signer
        self.service = service
        self.issuer = issuer
        self.users: dict[str, str] = dict(users or {})
        self.allow_anonymous = allow_anonymous
        self.max_scopes = max_scopes
        self.expires_in = expires_in
        self.refresh_tokens: dict[str, str] = dict(refresh_tokens or {})  # refresh token -> username
        self._lock = threading.Lock()
        self._requests: list[TokenRequest] = []

    @property
    def realm(self) -> str:
        return f"http://{self.host}/token"

    # -- counting --------------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[TokenRequest]:
        """A snapshot of every request so far."""
        with self._lock:
            return list(self._requests)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, req: TokenRequest) -> None:
        with self._lock:
            self._requests.append(req)

    # -- tokens ----------------------------------------------------------------------------------------------
    def mint(self, scopes: Iterable[str], subject: str = "") -> str:
        """Sign a registry token granting exactly ``scopes`` (no HTTP, not counted)."""
        access: list[dict[str, object]] = []
        for scope in scopes:
            kind, name, actions = parse_scope(scope)
            access.append({"type": kind, "name": name, "actions": actions})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 5,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        headers = {"typ": "JWT", "x5c": [base64.b64encode(self.signer.cert_der).decode("ascii")]}
        import jwt  # test extra; imported here so the demo (pip install . only) can load the registry helpers

        # The key object, not its PEM: PyJWT would re-parse and re-validate the RSA key for every token (~70 ms).
        return jwt.encode(claims, self.signer.key, algorithm="RS256", headers=headers)

    def token_getter(self, actions: Sequence[str] = ("pull", "push")) -> Callable[[str], str]:
        """A ``repo -> token`` callable for :mod:`tests.support.seed` (mints directly, not counted)."""

        def get(repo: str) -> str:
            return self.mint([f"repository:{repo}:{','.join(actions)}"], subject="seed")

        return get

    def _grant(self, scopes: Sequence[str], username: str | None) -> list[str]:
        granted: list[str] = []
        for scope in scopes:
            kind, name, actions = parse_scope(scope)
            if username is None:
                actions = [a for a in actions if a == "pull"]
            if actions:
                granted.append(f"{kind}:{name}:{','.join(actions)}")
        if self.max_scopes is not None:
            granted = granted[: self.max_scopes]
        return granted


class _TokenHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_obj: TokenServer

    def log_message(self, format: str, *args: object) -> None:  # silence stderr
        pass

    def _basic_user(self) -> tuple[bool, str | None, bool]:
        """(header present, authenticated username, credentials were wrong)."""
        header = self.headers.get("Authorization")
        if not header:
            return False, None, False
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return True, None, True
        try:
            user, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return True, None, True
        if self.server_obj.users.get(user) == password and user in self.server_obj.users:
            return True, user, False
        return True, None, True

    def _send_json(self, status: int, body: dict[str, object], extra: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, scopes: list[str], service: str | None, username: str | None, had_auth: bool, bad: bool,
                grant_type: str | None) -> None:
        srv = self.server_obj
        path = urlsplit(self.path).path
        extra: dict[str, str] = {}
        body: dict[str, object]
        if path != "/token":
            status, body = 404, {"errors": [{"code": "NOT_FOUND"}]}
        elif bad or (username is None and not srv.allow_anonymous):
            status, body = 401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
            extra["WWW-Authenticate"] = 'Basic realm="pin-images-test-token"'
        elif service is not None and service != srv.service:
            status, body = 400, {"errors": [{"code": "INVALID_SERVICE", "message": service}]}
        else:
            token = srv.mint(srv._grant(scopes, username), subject=username or "")
            status, body = 200, {
                "token": token,
                "access_token": token,
                "expires_in": srv.expires_in,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        # Record before answering, so a client that has its response always sees its request counted.
        srv._record(TokenRequest(self.command, path, tuple(scopes), service, username if status == 200 else None,
                                 had_auth, grant_type, status))
        self._send_json(status, body, extra)

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        had_auth, username, bad = self._basic_user()
        self._answer(query.get("scope", []), (query.get("service") or [None])[0], username, had_auth, bad, None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode("utf-8")) if length else {}
        grant_type = (form.get("grant_type") or [None])[0]
        had_auth, username, bad = self._basic_user()
        scopes = [s for value in form.get("scope", []) for s in value.split(" ") if s]
        srv = self.server_obj
        if grant_type == "password":
            user = (form.get("username") or [""])[0]
            ok = user in srv.users and srv.users[user] == (form.get("password") or [""])[0]
            username, bad = (user, False) if ok else (None, True)
        elif grant_type == "refresh_token":
            user = srv.refresh_tokens.get((form.get("refresh_token") or [""])[0])
            username, bad = (user, False) if user else (None, True)
        else:
            bad = True
        self._answer(scopes, (form.get("service") or [None])[0], username, had_auth, bad, grant_type)


TokenServer.handler_class = _TokenHandler
