"""A website that sends its bytes slowly, to see what waits on a slow site and what does not."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def trickling_site() -> Iterator[tuple[str, list[str], threading.Event]]:
    """A server that answers every GET with headers, then one byte every 0.2 s, for ever (until the
    client hangs up or the test ends); yields its URL, the paths asked, and an event set once the
    first byte of a body went out."""
    asked: list[str] = []
    done, trickling = threading.Event(), threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            if self.path == "/robots.txt":
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", "1000000")
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):
                while not done.is_set():
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    trickling.set()
                    done.wait(0.2)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked, trickling
    finally:
        done.set()
        server.shutdown()
        server.server_close()
