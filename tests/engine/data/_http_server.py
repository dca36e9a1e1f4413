"""A tiny HTTP server on 127.0.0.1 for download tests: serves bytes from a dict and can misbehave on purpose.

Misbehaviours are functions ``(handler, data, closing)`` given per file name in ``behave``; the ones
below cover what real mirrors have done: an endless body, one byte now and then, a stall, a closed
socket, an HTTP error. ``closing`` is set when the server stops, so a stalled handler ends with it.
"""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    """Serves `files` (name -> bytes) at /<name>; names in `truncate` get half the bytes then a closed socket.

    `requests` lists the paths asked for, so tests can tell whether a download happened.
    """

    def __init__(self, files: dict[str, bytes], truncate: frozenset = frozenset(), behave: dict | None = None):
        self.files = dict(files)
        self.truncate = set(truncate)
        self.behave = dict(behave or {})
        self.requests: list[str] = []
        self.closing = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
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
        self.closing.set()
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
                self.close_connection = True
                if name in owner.behave:
                    owner.behave[name](self, data or b"", owner.closing)
                    return
                if data is None:
                    self.send_error(404, "not here")
                    return
                send_head(self, len(data))
                if name in owner.truncate:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                else:
                    self.wfile.write(data)

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # a client that gave up mid-body is expected here
        pass


def send_head(handler, length: int | None, status: int = 200) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/octet-stream")
    if length is not None:
        handler.send_header("Content-Length", str(length))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.flush()


def endless(announce: int | None = None):
    """A body that never ends (zeros as fast as the client takes them), announced as `announce` bytes or not."""
    def behave(handler, data, closing) -> None:
        send_head(handler, announce)
        block = bytes(64 * 1024)
        while not closing.is_set():
            handler.wfile.write(block)
    return behave


def drip(every: float):
    """The right header, then one byte every `every` seconds."""
    def behave(handler, data, closing) -> None:
        send_head(handler, len(data))
        for i in range(len(data)):
            if closing.wait(every):
                return
            handler.wfile.write(data[i:i + 1])
            handler.wfile.flush()
    return behave


def stall_after(n: int):
    """The right header and the first `n` bytes, then silence until the server stops."""
    def behave(handler, data, closing) -> None:
        send_head(handler, len(data))
        handler.wfile.write(data[:n])
        handler.wfile.flush()
        closing.wait()
    return behave


def close_after(n: int | None):
    """`n` bytes after the right header then a closed socket; None: close before sending anything at all."""
    def behave(handler, data, closing) -> None:
        if n is not None:
            send_head(handler, len(data))
            handler.wfile.write(data[:n])
            handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)
    return behave


def status(code: int):
    """An HTTP error page instead of the file."""
    def behave(handler, data, closing) -> None:
        handler.send_error(code)
    return behave


def silent_server():
    """A listening socket that accepts connections and never answers: (url, close function)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    host, port = sock.getsockname()
    return f"http://{host}:{port}/", sock.close


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens, so connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"

