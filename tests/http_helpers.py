"""Shared pieces of the HTTP tests: servers run in a thread of the test process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import BaseServer
from typing import TypeVar

__all__ = ["served"]

Server = TypeVar("Server", bound=BaseServer)


@contextmanager
def served(server: Server) -> Iterator[Server]:
    """``server`` serving from a daemon thread; shut down and closed on exit."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
