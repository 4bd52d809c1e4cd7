"""``dialog-bench serve AGENT``: any agent behind an OpenAI-compatible chat-completions API.

``POST /v1/chat/completions`` takes the conversation as chat messages, turns them back
into the transcript the env would show the agent (:func:`dialog_bench.chat_api.
messages_transcript`) and answers with the agent's next message; ``GET /v1/models``
lists the one served model. Any client of such an API (the ``openai`` package, vLLM's
and SGLang's clients, ``load_agent("openai:MODEL")``, verifiers) can then talk to a
shipped row, a checkpoint directory, an ``hf:`` model or a rule-based agent.

- Batched: a collector thread gathers the requests that arrive within a short window
  (``--batch-window-ms``, up to ``--max-batch``) into one ``act_batch`` call. An LM
  agent's ``act_batch`` without keys re-reads each transcript whole (no conversation
  cache is kept between requests, which carry no conversation id) and its greedy
  replies do not depend on which requests share the batch.
- Deterministic: a request may carry OpenAI's ``seed`` (default 0); the agent is reset
  with it before it answers, so the same request gets the same reply.
- Bounded and robust: bodies over ``--max-request-bytes`` get 413 unread; malformed
  input gets a 4xx with OpenAI's error object (400 bad JSON or fields, 404 unknown
  path or model, 405 wrong method, 411 no Content-Length); a client that disconnects
  mid-request costs its own connection only. Binds to loopback unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import queue
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from dialog_bench.chat_api import (
    RequestError,
    completion_body,
    error_body,
    models_body,
    parse_completion_request,
)

__all__ = [
    "CHAT_PATH",
    "DEFAULT_MAX_REQUEST_BYTES",
    "MODELS_PATH",
    "AgentServer",
    "BatchingAgent",
    "add_parser",
    "main",
]

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
DEFAULT_MAX_REQUEST_BYTES = 1 << 20
#: A connection idle this long (mid-request or between keep-alive requests) is closed.
SOCKET_TIMEOUT_S = 30.0
#: After refusing a body unread, what is read and dropped so the client sees the answer.
LINGER_S, LINGER_BYTES = 2.0, 4 << 20


@dataclass
class _Pending:
    observation: str
    seed: int
    done: threading.Event = field(default_factory=threading.Event)
    reply: str | None = None
    error: str | None = None


class BatchingAgent:
    """An agent answered from one thread, the requests of a short window in one batch.

    ``reply(observation, seed)`` may be called from any number of threads; the agent is
    only ever called from the collector thread. Requests of one batch are grouped by
    seed: the agent is reset with the seed, then answers the group with its own
    ``act_batch`` (or, for an agent without one, reset and ``act`` per request).
    ``batch_sizes`` records the size of every batch answered.
    """

    def __init__(self, agent: Any, max_batch: int = 16, window_s: float = 0.005):
        from leaderboard.rollout import has_own_act_batch

        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive int, got {max_batch!r}")
        if not 0 <= window_s <= 10:
            raise ValueError(f"the batch window must be in [0, 10] s, got {window_s!r}")
        self.agent, self.max_batch, self.window_s = agent, max_batch, window_s
        self.batched = has_own_act_batch(agent)
        self.batch_sizes: list[int] = []
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._collect, name="agent-batches", daemon=True)
        self._thread.start()

    def reply(self, observation: str, seed: int = 0) -> str:
        """The agent's next message for ``observation``; raises ``RuntimeError`` if the
        agent failed on it."""
        pending = _Pending(observation, seed)
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise RuntimeError(pending.error)
        return str(pending.reply)

    def close(self) -> None:
        """Stop the collector once the requests already queued are answered."""
        self._queue.put(None)
        self._thread.join()

    def _collect(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, deadline = [first], time.monotonic() + self.window_s
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self.batch_sizes.append(len(batch))
            self._answer(batch)
            if stop:
                return

    def _answer(self, batch: Sequence[_Pending]) -> None:
        groups: dict[int, list[_Pending]] = {}
        for pending in batch:
            groups.setdefault(pending.seed, []).append(pending)
        for seed, group in groups.items():
            try:
                replies = self._replies(seed, [p.observation for p in group])
            except Exception as err:  # the agent broke: each request says so, the server lives
                for pending in group:
                    pending.error = f"the agent failed: {type(err).__name__}: {err}"
            else:
                for pending, reply in zip(group, replies, strict=True):
                    pending.reply = reply
            for pending in group:
                pending.done.set()

    def _replies(self, seed: int, observations: list[str]) -> list[str]:
        if self.batched:
            self.agent.reset(seed=seed)
            replies = list(self.agent.act_batch(observations))
        else:
            replies = []
            for observation in observations:
                self.agent.reset(seed=seed)
                replies.append(self.agent.act(observation))
        if len(replies) != len(observations) or not all(isinstance(r, str) for r in replies):
            raise TypeError(f"the agent gave {replies!r} for {len(observations)} observations")
        return replies


class _Handler(BaseHTTPRequestHandler):
    """One connection: routes, bounds and answers requests (HTTP/1.1, keep-alive)."""

    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S
    server: AgentServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._route("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._route("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._route("DELETE")

    def _route(self, method: str) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        routes = {MODELS_PATH: "GET", CHAT_PATH: "POST"}
        try:
            if routes.get(path) != method:
                self.close_connection = True  # its body, if any, is left unread
            if path not in routes:
                raise RequestError(404, f"no such path {path[:100]!r}: try {CHAT_PATH}")
            if method != routes[path]:
                raise RequestError(405, f"{path} takes {routes[path]}, not {method}")
            if method == "GET":
                self._send(200, models_body(self.server.model_id))
                return
            body = self._read_body()
            if body is None:  # the client left mid-request: nobody to answer
                self.close_connection = True
                return
            request = parse_completion_request(body, self.server.model_id)
        except RequestError as err:
            self._send(err.status, error_body(err.message, err.status, err.code))
            if self.close_connection:
                self._linger()
            return
        try:
            reply = self.server.agent.reply(request.observation, request.seed)
        except RuntimeError as err:
            self._send(500, error_body(str(err), 500))
            return
        self._send(200, completion_body(request, reply, self.server.model_id))

    def _read_body(self) -> bytes | None:
        """The request body, bounded; ``None`` when the client disconnected before all of
        it came."""
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise RequestError(411, "send the body with a Content-Length header")
        try:
            size = int(length)
        except ValueError:
            size = -1
        if size < 0:
            self.close_connection = True
            raise RequestError(400, f"Content-Length {length[:40]!r} is not a byte count")
        if size > self.server.max_request_bytes:
            self.close_connection = True  # the body is left unread
            limit = self.server.max_request_bytes
            raise RequestError(413, f"the body has {size} bytes, over this server's {limit}")
        try:
            body = self.rfile.read(size)
        except OSError:  # reset or timed out mid-body
            return None
        return body if len(body) == size else None

    def _linger(self) -> None:
        """Let a client still sending a refused body read the answer: half-close, then
        drop what it sends for a moment (bounded), so that the close is not a reset that
        would destroy the answer unread."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_S)
            left = LINGER_BYTES
            while left > 0:
                chunk = self.connection.recv(min(1 << 16, left))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client is gone (broken pipe, reset): its loss alone
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.verbose:
            super().log_message(format, *args)


class AgentServer(ThreadingHTTPServer):
    """The chat-completions server over ``agent``, a thread per connection.

    ``AgentServer(agent, ("127.0.0.1", 0))`` binds a free port (``server_address``);
    ``serve_forever()`` serves until ``shutdown()``; ``server_close()`` also stops the
    collector.
    """

    daemon_threads = True

    def __init__(
        self,
        agent: Any,
        address: tuple[str, int] = ("127.0.0.1", 8000),
        model_id: str | None = None,
        max_batch: int = 16,
        window_s: float = 0.005,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        verbose: bool = False,
    ):
        if max_request_bytes < 1:
            raise ValueError(f"max_request_bytes must be positive, got {max_request_bytes}")
        self.model_id = model_id or str(getattr(agent, "name", type(agent).__name__))
        self.max_request_bytes, self.verbose = max_request_bytes, verbose
        self.agent = BatchingAgent(agent, max_batch, window_s)
        try:
            super().__init__(address, _Handler)
        except BaseException:
            self.agent.close()
            raise

    @property
    def url(self) -> str:
        """The API's base URL, e.g. ``http://127.0.0.1:8000/v1``."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection's failure is logged (verbose) and ends that connection only."""
        if self.verbose:
            super().handle_error(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        self.agent.close()


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve an agent as an OpenAI-compatible chat-completions endpoint",
        description="Load AGENT (a built-in name, a shipped or local checkpoint, hf:PATH) "
        f"and answer POST {CHAT_PATH} with its next message for the conversation sent "
        f"(system prompt dropped, turns read back into the env's transcript); GET "
        f"{MODELS_PATH} lists it. Concurrent requests are batched into one act_batch "
        "call; a request's seed (default 0) makes its reply reproducible.",
    )
    p.add_argument("agent", metavar="AGENT", help="agent name, checkpoint directory or hf:PATH")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: a free one)")
    p.add_argument(
        "--model-name", default=None, help="the model id clients ask for (default: the agent's)"
    )
    p.add_argument(
        "--max-batch", type=int, default=16, metavar="N", help="requests per act_batch (16)"
    )
    p.add_argument(
        "--batch-window-ms",
        type=float,
        default=5.0,
        metavar="MS",
        help="how long the first request of a batch waits for others (default 5)",
    )
    p.add_argument(
        "--max-request-bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        metavar="N",
        help=f"larger bodies get 413 (default {DEFAULT_MAX_REQUEST_BYTES})",
    )
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from agents import load_agent

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {args.port}")
    agent = load_agent(args.agent)
    server = AgentServer(
        agent,
        (args.host, args.port),
        model_id=args.model_name,
        max_batch=args.max_batch,
        window_s=args.batch_window_ms / 1000,
        max_request_bytes=args.max_request_bytes,
        verbose=args.verbose,
    )
    print(f"serving {server.model_id} at {server.url} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
