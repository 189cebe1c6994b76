"""A web hook on 127.0.0.1 for the tests of --notify-url: a real HTTP server in a thread that
records every POST (its path, content type and body) and answers 204, after `delay` seconds."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Post:
    path: str
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Webhook:
    url: str  # the server's root: http://127.0.0.1:PORT
    posts: list[Post] = field(default_factory=list)


@contextmanager
def webhook(delay: float = 0.0) -> Iterator[Webhook]:
    hook = Webhook("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hook.posts.append(Post(self.path, self.headers.get("Content-Type", ""), body))
            time.sleep(delay)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
