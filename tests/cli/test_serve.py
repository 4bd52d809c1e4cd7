"""``dialog-bench serve``: the chat-completions server over any agent, on loopback.

The end-to-end test runs a real server (``python -m dialog_bench serve sft-expert``) in
a subprocess and a real client (``evaluate openai:sft-expert --base-url``) against it;
the transcripts must equal ``evaluate sft-expert``'s episode for episode, and the file
submits as a declared entry, verified by replay.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from conftest import REPO_ROOT
from http_helpers import served

from agents import load_agent
from agents.hf_chat import booking_system_prompt, transcript_messages
from dialog_bench.chat_api import messages_transcript
from dialog_bench.serve import CHAT_PATH, AgentServer
from dialog_env.text import Turn, format_transcript
from leaderboard.episodes import get_episode_set
from leaderboard.evaluate import evaluate_agent
from leaderboard.results import read_results
from leaderboard.store import DECLARED, LeaderboardStore
from leaderboard.submit import submit_results_file

ROOT = REPO_ROOT
PUBLISHED = ROOT / "leaderboard" / "results"


def published_observations(env_id: str, agent: str, episodes: int) -> list[tuple[str, str]]:
    """``(observation, message)`` before each assistant turn of published episodes: the
    transcript the agent saw and what it wrote."""
    out = []
    for episode in json.loads((PUBLISHED / env_id / f"{agent}.json").read_text())["episodes"][
        :episodes
    ]:
        turns = [Turn(t["role"], t["text"]) for t in episode["turns"]]
        out += [
            (format_transcript(turns[:k]), turn.text)
            for k, turn in enumerate(turns)
            if turn.role == "assistant"
        ]
    return out


@pytest.mark.parametrize(
    "env_id, agent",
    [
        ("Dialog-v1", "expert"),
        ("Dialog-v1", "random"),  # odd messages: empty ones, brackets, stray tool calls
        ("Dialog-Chat-v1", "chat-expert"),
        ("Dialog-Chat-v1", "rl-chat"),
    ],
)
@pytest.mark.parametrize("tool_role", ["user", "tool"])
def test_messages_read_back_into_the_transcript_the_env_showed(env_id, agent, tool_role):
    observations = published_observations(env_id, agent, episodes=40)
    if agent.endswith("expert"):  # the experts call tools on both tasks: all three roles
        assert any("\ntool: " in obs for obs, _ in observations)
    for observation, _ in observations:
        messages = transcript_messages(observation, booking_system_prompt(), tool_role)
        assert messages_transcript(messages) == observation


def request(url: str, method: str = "GET", body: bytes | None = None, headers=None):
    """``(status, parsed JSON body)`` of one request."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request(method, parts.path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def chat(url: str, messages: list, **fields) -> tuple[int, dict]:
    body = json.dumps({"messages": messages, **fields}).encode()
    return request(url + "/chat/completions", "POST", body)


@pytest.fixture
def serve():
    """``serve(agent, **options)``: an :class:`AgentServer` on a free loopback port for
    the test."""
    with ExitStack() as stack:
        yield lambda agent, **options: stack.enter_context(
            served(AgentServer(agent, ("127.0.0.1", 0), **options))
        )


HELLO = [{"role": "user", "content": "I want cheap thai food in the west."}]


MALFORMED = [
    ("POST", CHAT_PATH, b"{not json", 400, "not JSON"),
    ("POST", CHAT_PATH, b"[]", 400, "JSON object"),
    ("POST", CHAT_PATH, b"{}", 400, "'messages'"),
    ("POST", CHAT_PATH, b'{"messages": "hi"}', 400, "'messages'"),
    ("POST", CHAT_PATH, b'{"messages": [{"role": "user", "content": 3}]}', 400, "content"),
    ("POST", CHAT_PATH, b'{"messages": [{"role": "bot", "content": "x"}]}', 400, "role"),
    ("POST", CHAT_PATH, b'{"messages": [{"role": "system", "content": "x"}]}', 400, "turn"),
    ("POST", CHAT_PATH, json.dumps({"messages": HELLO, "seed": "1"}).encode(), 400, "seed"),
    ("POST", CHAT_PATH, json.dumps({"messages": HELLO, "seed": -1}).encode(), 400, "seed"),
    ("POST", CHAT_PATH, json.dumps({"messages": HELLO, "stream": True}).encode(), 400, "str"),
    ("POST", CHAT_PATH, json.dumps({"messages": HELLO, "n": 2}).encode(), 400, "'n'"),
    ("POST", CHAT_PATH, json.dumps({"messages": HELLO, "model": "x"}).encode(), 404, "'x'"),
    ("POST", "/v1/completions", b"{}", 404, "no such path"),
    ("GET", "/", None, 404, "no such path"),
    ("GET", CHAT_PATH, None, 405, "takes POST"),
    ("POST", "/v1/models", b"{}", 405, "takes GET"),
    ("DELETE", "/v1/models", None, 405, "takes GET"),
    # still being sent when refused: the answer must arrive all the same
    ("POST", CHAT_PATH, b"x" * 3_000_000, 413, "over this server's 4096"),
]


@pytest.mark.parametrize(
    "method, path, body, status, says",
    MALFORMED,
    ids=[f"{m}-{s}-{says}" for m, _, _, s, says in MALFORMED],
)
def test_malformed_requests_get_a_clear_4xx_and_the_server_goes_on(
    serve, method, path, body, status, says
):
    server = serve(load_agent("expert"), max_request_bytes=4096)
    got, payload = request(f"http://127.0.0.1:{server.server_address[1]}{path}", method, body)
    assert got == status
    assert says in payload["error"]["message"]
    assert payload["error"]["type"] == "invalid_request_error"
    assert chat(server.url, HELLO)[0] == 200


def raw(server: AgentServer, data: bytes, read: bool = False) -> bytes:
    """Send ``data`` on a fresh connection and close it (after reading, if ``read``)."""
    with socket.create_connection(server.server_address[:2], timeout=30) as sock:
        sock.sendall(data)
        if read:
            return sock.recv(65536)
    return b""


def test_a_body_without_content_length_gets_411(serve):
    server = serve(load_agent("expert"))
    reply = raw(server, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n{}", read=True)
    assert reply.startswith(b"HTTP/1.1 411") and b"Content-Length" in reply


def test_clients_that_disconnect_mid_request_do_not_hurt_the_server(serve):
    server = serve(load_agent("expert"))
    body = json.dumps({"messages": HELLO}).encode()
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
    raw(server, head % len(body) + body[:10])  # gone halfway through the body
    raw(server, head % len(body) + body)  # gone before the reply
    raw(server, b"POST /v1/chat/comp")  # gone halfway through the request line
    raw(server, b"")  # connected, said nothing
    status, payload = chat(server.url, HELLO)
    assert status == 200
    assert payload["choices"][0]["message"]["content"] == load_agent("expert").act(
        "user: " + HELLO[0]["content"]
    )


def test_the_same_request_gets_the_same_reply_and_the_seed_is_the_agents(serve):
    server = serve(load_agent("noisy-expert"))
    observation, _ = published_observations("Dialog-v1", "noisy-expert", episodes=1)[2]
    messages = transcript_messages(observation, booking_system_prompt())
    for seed in range(6):
        first, second = chat(server.url, messages, seed=seed), chat(server.url, messages, seed=seed)
        assert first[0] == second[0] == 200
        assert first[1]["choices"] == second[1]["choices"] and first[1]["id"] == second[1]["id"]
        expected = load_agent("noisy-expert")
        expected.reset(seed=seed)
        assert first[1]["choices"][0]["message"]["content"] == expected.act(observation)
    status, models = request(server.url + "/models")
    assert status == 200 and [m["id"] for m in models["data"]] == ["noisy-expert"]


def test_an_lm_agents_replies_are_the_same_one_at_a_time_and_batched(serve):
    """Concurrent requests share one act_batch; each reply is what the agent wrote in
    the published evaluation, and what it writes served alone."""
    server = serve(load_agent("sft-expert"), max_batch=8, window_s=0.5)
    cases = published_observations("Dialog-v1", "sft-expert", episodes=3)[:16]
    messages = [transcript_messages(obs, booking_system_prompt()) for obs, _ in cases]

    def reply(m: list) -> str:
        status, payload = chat(server.url, m)
        assert status == 200, payload
        return payload["choices"][0]["message"]["content"]

    with ThreadPoolExecutor(8) as pool:
        batched = list(pool.map(reply, messages))
    assert max(server.agent.batch_sizes) > 1  # they were batched
    alone = [reply(m) for m in messages]
    assert batched == alone == [written for _, written in cases]


def wait_for_server(proc: subprocess.Popen, deadline_s: float = 300.0) -> str:
    """The URL the server prints, once ``GET /v1/models`` answers."""
    line = proc.stdout.readline()
    assert line.startswith("serving"), line + proc.stderr.read()
    url = line.split(" at ")[1].split()[0]
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/models", timeout=5) as r:
                if r.status == 200:
                    return url
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def test_an_endpoint_evaluation_equals_the_agents_own_and_submits_as_declared(tmp_path):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("OPENAI_BASE_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "dialog_bench", "serve", "sft-expert", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = wait_for_server(server)
        out = tmp_path / "endpoint.json"
        evaluated = subprocess.run(
            [sys.executable, "-m", "dialog_bench", "evaluate", "openai:sft-expert"]
            + ["--base-url", url, "--limit", "4", "--out", str(out), "--quiet"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,  # a guard against a hang, not a timing test
        )
        assert evaluated.returncode == 0, evaluated.stderr
    finally:
        server.terminate()
        server.wait(timeout=60)
    endpoint = read_results(out)
    own = evaluate_agent("sft-expert", get_episode_set("Dialog-v1", "test", limit=4), 4, False)
    assert [ep["seed"] for ep in endpoint["episodes"]] == [ep["seed"] for ep in own["episodes"]]
    for mine, theirs in zip(endpoint["episodes"], own["episodes"], strict=True):
        assert mine["turns"] == theirs["turns"] and mine["rewards"] == theirs["rewards"]
    header = endpoint["header"]
    assert (header["agent"], header["paradigm"], header["budget"]) == (
        "sft-expert",
        "zero-shot",
        {},
    )
    assert header["model_sha256"] != own["header"]["model_sha256"]
    outcome = submit_results_file(out, LeaderboardStore(tmp_path / "lb.sqlite"))
    assert outcome.labels == DECLARED and outcome.episodes == 4


def test_an_hf_chat_model_served_answers_as_it_does_in_process(serve, tmp_path):
    """``serve hf:PATH`` and ``openai:`` against it: the client's system prompt is dropped,
    the served agent prompts with its own, and the message is the one it writes itself."""
    from lm_helpers import save_chat_model

    from agents.openai_agent import OpenAIChatAgent

    model = save_chat_model(tmp_path / "tiny-chat")
    server = serve(load_agent(f"hf:{model}", max_new_tokens=8), model_id="tiny-chat")
    observations = [obs for obs, _ in published_observations("Dialog-v1", "expert", 1)[:4]]
    own = load_agent(f"hf:{model}", max_new_tokens=8)
    own.reset(seed=0)
    client = OpenAIChatAgent("tiny-chat", base_url=server.url)
    client.reset(seed=0)
    assert client.act_batch(observations) == own.act_batch(observations)
