"""An OpenAI-compatible endpoint as an agent (agents.openai_agent), against stub servers."""

from __future__ import annotations

import json
import threading
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from http_helpers import served

import agents.openai_agent as openai_agent
from agents import load_agent
from agents.hf_chat import booking_system_prompt, transcript_messages
from agents.openai_agent import DEFAULT_BASE_URL, EndpointError, OpenAIChatAgent

OBSERVATION = "user: I want thai food.\nassistant: [search] food=thai\ntool: [result] 0 found"


class Stub(ThreadingHTTPServer):
    """Answers each POST with the next of ``script``: ``(status, body, headers)``; the
    last one repeats. ``requests`` keeps every request's headers and JSON body."""

    daemon_threads = True

    def __init__(self, script: list[tuple[int, object, dict]]):
        self.script, self.requests = list(script), []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), StubHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class StubHandler(BaseHTTPRequestHandler):
    server: Stub

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.requests.append((self.path, dict(self.headers), body))
            status, payload, headers = self.server.script[
                min(len(self.server.requests), len(self.server.script)) - 1
            ]
        data = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in {"Content-Length": str(len(data)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def completion(content: str) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


RATE_LIMITED = (429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})


@pytest.fixture
def stub():
    """``stub(*script)``: a :class:`Stub` serving on a free loopback port for the test."""
    with ExitStack() as stack:
        yield lambda *script: stack.enter_context(served(Stub(list(script))))


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The backoff waits, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr(openai_agent.time, "sleep", waited.append)
    return waited


def test_rate_limits_are_retried_with_exponential_backoff(stub, sleeps):
    server = stub(RATE_LIMITED, RATE_LIMITED, (200, completion("Hello! [search] x"), {}))
    agent = OpenAIChatAgent("m", base_url=server.url, backoff_s=0.25, api_key="k")
    agent.reset(seed=7)
    assert agent.act(OBSERVATION) == "Hello! [search] x"
    assert sleeps == [0.25, 0.5]
    assert len(server.requests) == 3
    path, headers, body = server.requests[-1]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer k"
    assert body["messages"] == transcript_messages(OBSERVATION, booking_system_prompt())
    assert (body["model"], body["temperature"], body["seed"]) == ("m", 0.0, 7)


def test_a_tool_call_line_is_what_is_sent(stub, sleeps):
    server = stub((200, completion("Let me look.\n`[search] food=thai`"), {}))
    assert OpenAIChatAgent("m", base_url=server.url).act(OBSERVATION) == "[search] food=thai"


def test_server_errors_are_retried_a_bounded_number_of_times(stub, sleeps):
    server = stub((503, {"error": {"message": "overloaded"}}, {}))
    agent = OpenAIChatAgent("m", base_url=server.url, retries=3, backoff_s=1.0)
    with pytest.raises(EndpointError, match=r"gave up after 4 tries, last: HTTP 503: overloaded"):
        agent.act(OBSERVATION)
    assert len(server.requests) == 4 and sleeps == [1.0, 2.0, 4.0]


def test_a_server_asking_for_patience_is_heard_within_the_cap(stub, sleeps):
    server = stub((429, {}, {"Retry-After": "3"}), (429, {}, {"Retry-After": "999"}),
                  (200, completion("ok"), {}))  # fmt: skip
    assert OpenAIChatAgent("m", base_url=server.url, backoff_s=0.1).act(OBSERVATION) == "ok"
    assert sleeps == [3.0, openai_agent.MAX_BACKOFF_S]


def test_a_refusal_is_not_retried_and_says_why(stub, sleeps):
    server = stub((400, {"error": {"message": "'messages' must be a list"}}, {}))
    with pytest.raises(EndpointError, match=r"HTTP 400: 'messages' must be a list"):
        OpenAIChatAgent("m", base_url=server.url).act(OBSERVATION)
    assert len(server.requests) == 1 and sleeps == []


def test_an_unreachable_endpoint_is_retried_then_reported(sleeps):
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    agent = OpenAIChatAgent("m", base_url=f"http://127.0.0.1:{port}/v1", retries=2)
    with pytest.raises(EndpointError, match=r"gave up after 3 tries, last: URLError"):
        agent.act(OBSERVATION)
    assert len(sleeps) == 2


def test_an_episode_that_outlasts_its_timeout_stops(stub, monkeypatch):
    server = stub((503, {}, {}))
    clock = iter(range(0, 1000, 10))  # every look at the clock: 10 s later
    monkeypatch.setattr(openai_agent.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(openai_agent.time, "sleep", lambda s: None)
    agent = OpenAIChatAgent("m", base_url=server.url, retries=20, episode_timeout=35)
    with pytest.raises(EndpointError, match=r"the episode took over 35 s"):
        agent.act_batch([OBSERVATION], keys=[0])
    assert 1 <= len(server.requests) < 21


def test_act_batch_answers_in_order_with_bounded_concurrency(stub, sleeps):
    server = stub((200, completion("same"), {}))
    agent = OpenAIChatAgent("m", base_url=server.url, concurrency=3)
    observations = [f"user: request {i}" for i in range(7)]
    assert agent.act_batch(observations, keys=list(range(7))) == ["same"] * 7
    sent = sorted(body["messages"][-1]["content"] for _, _, body in server.requests)
    assert sent == sorted(f"request {i}" for i in range(7))


def test_load_agent_reads_the_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    agent = load_agent("openai:meta-llama/Llama-3.1-8B-Instruct")
    assert (agent.base_url, agent.api_key) == (DEFAULT_BASE_URL, None)
    assert (agent.name, agent.paradigm, agent.interface) == (
        "Llama-3.1-8B-Instruct",
        "zero-shot",
        "text",
    )
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.0.0.2:9000/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", "secret")
    agent = load_agent("openai:m")
    assert (agent.base_url, agent.api_key) == ("http://10.0.0.2:9000/v1", "secret")
    assert load_agent("openai:m", base_url="http://h:1/v1").base_url == "http://h:1/v1"


@pytest.mark.parametrize(
    "spec, options, says",
    [
        ("openai:", {}, "needs a model name"),
        ("openai:m", {"base_url": "localhost:8000"}, "base URL"),
        ("openai:m", {"retries": 100}, "retries"),
        ("expert", {"base_url": "http://h/v1"}, "takes no options"),
    ],
)
def test_bad_options_are_refused_in_one_line(spec, options, says):
    with pytest.raises(ValueError, match=says):
        load_agent(spec, **options)


def test_the_declared_model_hash_names_what_was_asked_for():
    from leaderboard.agent_card import describe_agent

    card = describe_agent(load_agent("openai:m", base_url="http://h/v1"), "openai:m")
    assert card.model_sha256 == load_agent("openai:m", base_url="http://other/v1").model_sha256
    assert card.model_sha256 != load_agent("openai:n", base_url="http://h/v1").model_sha256
    assert (card.name, card.paradigm, dict(card.budget)) == ("m", "zero-shot", {})
