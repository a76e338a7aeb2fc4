"""The lifecycle the test servers share: a threaded HTTP server on 127.0.0.1, a free port, a clean stop."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

S = TypeVar("S", bound="LoopbackServer")


class QuietHTTPServer(ThreadingHTTPServer):
    """Daemon handler threads, a deep accept backlog, and no tracebacks when a client hangs up on purpose."""

    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when 8+ clients connect at once (a 1 s SYN retry each).
    request_queue_size = 256

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class LoopbackServer:
    """Base for the proxy, token and hostile servers: subclasses set ``handler_class`` and ``name``."""

    handler_class: type[BaseHTTPRequestHandler]
    name = "loopback-server"
    poll_interval = 0.5

    def __init__(self) -> None:
        self._httpd: QuietHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _wrap(self, httpd: QuietHTTPServer) -> None:
        """Hook to adjust the bound server before it serves (e.g. wrap its socket in TLS)."""

    def start(self: S) -> S:
        handler = type(f"_Bound{self.handler_class.__name__}", (self.handler_class,), {"server_obj": self})
        httpd = QuietHTTPServer(("127.0.0.1", 0), handler)
        self._wrap(httpd)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": self.poll_interval}, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def _before_join(self) -> None:
        """Hook run after the listener closed and before joining its thread (e.g. wake idle connections)."""

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        self._before_join()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, f"{self.name} not started"
        return int(self._httpd.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"
