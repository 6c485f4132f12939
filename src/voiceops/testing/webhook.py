"""A tiny HTTP server recording JSON POSTs: the receiving end of Alertmanager or voiceops webhooks.

It runs in a thread (not on the test's event loop), so a test blocked in a synchronous wait
still receives deliveries.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from voiceops.testing.procs import poll_until


@dataclass(frozen=True)
class Delivery:
    """One POST received: its path and decoded JSON body (None if the body was not JSON)."""

    path: str
    body: Any


HOST: Final = "127.0.0.1"  # loopback only


class WebhookReceiver:
    """Records every POST to ``url``; start() / stop(), or use as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._server = ThreadingHTTPServer((HOST, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook",
                                        daemon=True)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                receiver._record(Delivery(self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            # quiet test output; the name `format` is the overridden method's
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://{HOST}:{port}/hook"

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def wait_for(self, predicate: Callable[[Delivery], bool], *,
                 timeout_s: float = 30.0) -> Delivery:
        """The first delivery matching ``predicate``, polling until ``timeout_s``."""
        def probe() -> Delivery | None:
            return next((d for d in self.deliveries if predicate(d)), None)
        return poll_until(probe, timeout_s=timeout_s, interval_s=0.1, what="a webhook delivery")

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever on a server never started
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
