"""Dialog envs over OpenEnv (``dialog-bench serve-env``), driven by openenv's own client
on loopback: sessions replay ``gym.make`` exactly, and the server keeps its bounds."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import urllib.request

import gymnasium as gym
import pytest

pytest.importorskip("openenv")
pytest.importorskip("uvicorn")

from conftest import REPO_ROOT  # noqa: E402
from http_helpers import served_asgi  # noqa: E402

from agents import load_agent  # noqa: E402
from dialog_bench.cli import main  # noqa: E402
from dialog_env.integrations.openenv import (  # noqa: E402
    DialogAction,
    DialogEnvClient,
    make_server,
)

SEEDS = list(range(100, 108))  # 8 concurrent sessions


def local_episode(seed: int, messages: list[str]) -> dict:
    """What ``gym.make`` gives for ``seed`` and ``messages``."""
    env = gym.make("Dialog-v1")
    observation, info = env.reset(seed=seed)
    record = {"observations": [observation], "rewards": [], "infos": [info], "ends": []}
    for message in messages:
        observation, reward, terminated, truncated, info = env.step(message)
        record["observations"].append(observation)
        record["rewards"].append(reward)
        record["infos"].append(info)
        record["ends"].append((terminated, truncated))
    env.close()
    return record


async def served_episode(url: str, seed: int) -> tuple[list[str], dict]:
    """The expert (seeded) plays ``seed`` through an openenv session; its messages and
    what the session returned."""
    expert = load_agent("expert")
    expert.reset(seed=seed)
    messages: list[str] = []
    async with DialogEnvClient(base_url=url) as env:
        result = await env.reset(seed=seed)
        observation = result.observation
        record = {"observations": [observation.observation], "rewards": [], "ends": []}
        record["infos"] = [observation.info]
        while not result.done:
            messages.append(expert.act(observation.observation))
            result = await env.step(DialogAction(message=messages[-1]))
            observation = result.observation
            record["observations"].append(observation.observation)
            record["rewards"].append(result.reward)
            record["infos"].append(observation.info)
            record["ends"].append((observation.terminated, observation.truncated))
        state = await env.state()
        assert (state.seed, state.step_count, state.done) == (seed, len(messages), True)
    return messages, record


def test_eight_concurrent_sessions_replay_gym_make_exactly():
    app, server = make_server("Dialog-v1", max_sessions=8)

    async def play_all(url: str):
        return await asyncio.gather(*(served_episode(url, seed) for seed in SEEDS))

    with served_asgi(app) as url:
        played = asyncio.run(play_all(url))
        deadline = time.monotonic() + 10
        while server.active_sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.active_sessions == 0  # every session was closed with its client
    for seed, (messages, served) in zip(SEEDS, played, strict=True):
        assert 2 <= len(messages) < 50
        local = local_episode(seed, messages)
        assert served == local, f"seed {seed}: the session differs from gym.make"
        assert served["infos"][-1]["success"] in (True, False)  # the end's info came too


def test_the_session_cap_refuses_with_a_clear_error_and_frees_on_disconnect():
    app, server = make_server("Dialog-v1", max_sessions=2, user_model="template")

    async def scenario(url: str) -> None:
        first, second = DialogEnvClient(base_url=url), DialogEnvClient(base_url=url)
        for client in (first, second):
            await client.connect()
            await client.reset(seed=0)
        with pytest.raises(RuntimeError, match="at capacity: 2/2 .*CAPACITY_REACHED"):
            async with DialogEnvClient(base_url=url) as third:
                await asyncio.sleep(0.5)  # the server has refused and closed: still said why
                await third.reset(seed=0)
        await first.close()
        deadline = time.monotonic() + 10
        while server.active_sessions > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        async with DialogEnvClient(base_url=url) as third:
            assert (await third.reset(seed=0)).observation.observation.startswith("user: ")
        await second.close()

    with served_asgi(app) as url:
        asyncio.run(scenario(url))


def test_an_idle_session_is_closed_and_says_so():
    app, server = make_server("Dialog-v1", idle_timeout_s=0.5, user_model="template")
    with served_asgi(app) as url, DialogEnvClient(base_url=url).sync() as env:
        env.reset(seed=0)
        deadline = time.monotonic() + 15  # openenv's reaper looks every 5 s at most
        while server.active_sessions and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.active_sessions == 0
        with pytest.raises(RuntimeError, match="closed .*connect again"):
            env.step("hello")


def test_misuse_gets_the_envs_own_error_and_the_session_goes_on():
    app, _ = make_server("Dialog-v1", user_model="template")
    with served_asgi(app) as url, DialogEnvClient(base_url=url).sync() as env:
        with pytest.raises(RuntimeError, match="reset"):
            env.step("hello")  # before reset
        with pytest.raises(RuntimeError, match="VALIDATION_ERROR|message"):
            env.step(DialogAction.model_construct(message=None, action_id=None))
        env.reset(seed=1)
        result = env.step("Goodbye!")
        assert result.done and result.reward == pytest.approx(-0.02)
        with pytest.raises(RuntimeError, match="(?i)ended|after"):
            env.step("hello again")  # after the end: raise, never resurrect


def test_an_act_id_session_takes_integer_actions():
    app, _ = make_server("Dialog-Acts-v1", user_model="template")
    local = gym.make("Dialog-Acts-v1", user_model="template")
    expected, _ = local.reset(seed=3)
    with served_asgi(app) as url, DialogEnvClient(base_url=url).sync() as env:
        assert env.reset(seed=3).observation.observation == expected.tolist()
        result = env.step(0)
    observation, reward, *_ = local.step(0)
    assert (result.observation.observation, result.reward) == (observation.tolist(), reward)


def test_serve_env_refuses_an_unknown_id_in_one_line(capsys):
    assert main(["serve-env", "Dialog-v9"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Dialog-v9" in err and len(err.splitlines()) == 1


def test_the_serve_env_command_serves_a_session_to_openenvs_client():
    with socket.socket() as probe:  # a free port for the child to bind
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "dialog_bench", "serve-env", "Dialog-v1"]
    command += ["--port", str(port), "--user-model", "template", "--max-sessions", "2"]
    child = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert "serving Dialog-v1 over OpenEnv" in child.stdout.readline()
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while True:  # uvicorn binds after the line is printed
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as reply:
                    assert reply.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline and child.poll() is None
                time.sleep(0.2)
        local = gym.make("Dialog-v1", user_model="template")
        with DialogEnvClient(base_url=url).sync() as env:
            assert env.reset(seed=5).observation.observation == local.reset(seed=5)[0]
            result = env.step("Goodbye!")
        assert (result.reward, result.done) == (local.step("Goodbye!")[1], True)
    finally:
        child.terminate()
        child.wait(timeout=30)
