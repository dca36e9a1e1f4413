"""A tiny HTTP server on 127.0.0.1 for download tests: serves bytes from a dict and can misbehave on purpose."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    """Serves `files` (name -> bytes) at /<name>; names in `truncate` get half the bytes then a closed socket.

    `requests` lists the paths asked for, so tests can tell whether a download happened.
    """

    def __init__(self, files: dict[str, bytes], truncate: frozenset = frozenset()):
        self.files = dict(files)
        self.truncate = set(truncate)
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def __enter__(self) -> "FileServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                name = self.path.lstrip("/")
                owner.requests.append(name)
                data = owner.files.get(name)
                if data is None:
                    self.send_error(404, "not here")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                if name in owner.truncate:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                else:
                    self.wfile.write(data)
                self.close_connection = True

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        return Handler


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens, so connecting is refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
