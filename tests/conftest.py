"""Shared fixtures: the registered env ids and the voices every contract test runs with;
hypothesis's profile."""

from __future__ import annotations

import os
import re
from pathlib import Path

import gymnasium as gym
import pytest
from hypothesis import settings

import dialog_env
from dialog_env.registration import ENV_IDS, TEXT_ENV_IDS

ALL_ENV_IDS = sorted(ENV_IDS)

#: The checkout's root, wherever a test file sits under tests/ and wherever pytest starts.
REPO_ROOT = Path(__file__).resolve().parents[1]

# Hypothesis draws its examples from a fixed seed, so CI finds the same examples on every
# run (a flaky test is worse than a narrow one); `HYPOTHESIS_PROFILE=explore` searches anew.
settings.register_profile("derandomized", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derandomized"))


#: The chat page, where the seed's loop and what it prints are written once.
CHAT_PAGE = REPO_ROOT / "docs" / "chat-task.md"
_SEED_LOOP_PRINTS = re.compile(
    r"It prints `(?P<printed>True|False)` \(a return of (?P<total>-?\d+\.\d+) against the "
    r"threshold (?P<threshold>-?\d+\.\d+)\)"
)


def chat_seed_loop() -> tuple[str, dict[str, str]]:
    """The seed's loop as docs/chat-task.md writes it (the page's first ``python`` block)
    and what the page says it prints: ``printed``, ``total`` (the return) and
    ``threshold``. The figures live on the page alone: a new reward model or threshold
    changes that sentence, and every test that checks them reads it here."""
    page = CHAT_PAGE.read_text()
    block = page.split("```python\n", 1)[1].split("```", 1)[0]
    said = _SEED_LOOP_PRINTS.search(" ".join(page.split()))
    assert 'gym.make("ChatGPT-v1")' in block and said, "docs/chat-task.md: no seed loop"
    return block, said.groupdict()


def available_voices() -> list[str]:
    """``template`` always; the shipped LM voice once its model is in the package."""
    voices = ["template"]
    try:
        from dialog_env.lm import TINY_MODEL_DIR  # arrives with the language-model issue
    except ImportError:
        return voices
    if (TINY_MODEL_DIR / "model.safetensors").exists():
        voices.append("tiny")
    return voices


VOICES = available_voices()


def interface_of(env: gym.Env) -> str:
    return env.spec.kwargs.get("interface", "text") if env.spec else "text"


def expert_action(env: gym.Env, expert, obs, info):
    """The expert's decision in the action form of ``env``'s interface.

    On the token interface the expert's message is fed one token per step, then
    ``<|end|>``: the queue of pending tokens lives on the expert for the episode.
    """
    interface = interface_of(env)
    if interface == "act":
        return expert.act_id(format_transcript_dicts(info["turns"]))
    if interface == "token":
        queue = getattr(expert, "_token_queue", None)
        if not queue:
            codec = _codec_of(env)
            message = expert.act(format_transcript_dicts(info["turns"]))
            queue = expert._token_queue = [*codec.message_ids(message), codec.end_id]
        return queue.pop(0)
    return expert.act(obs)


def _codec_of(env: gym.Env):
    while not hasattr(env, "codec"):
        env = env.env
    return env.codec


def format_transcript_dicts(turns: list[dict]) -> str:
    return "\n".join(f"{t['role']}: {t['text']}" for t in turns)


def run_episode(env: gym.Env, agent, seed: int) -> tuple[list, dict, float]:
    """Play one episode; return the agent's actions, the last info and the return.

    ``agent`` is a text agent, or the expert on any interface.
    """
    obs, info = env.reset(seed=seed)
    agent.reset(seed=seed)
    agent._token_queue = []
    actions, total = [], 0.0
    while True:
        action = (
            expert_action(env, agent, obs, info) if hasattr(agent, "act_id") else (agent.act(obs))
        )
        actions.append(action)
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        if terminated or truncated:
            return actions, info, total


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny matrices: on a shared 2-core machine one torch thread is many times faster than
    two that wait on each other (an SB3 MLP step: 4 ms per linear layer, against 0.1 ms)."""
    from dialog_env.lm.threads import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(params=ALL_ENV_IDS)
def env_id(request) -> str:
    return request.param


@pytest.fixture(params=TEXT_ENV_IDS)
def text_env_id(request) -> str:
    return request.param


assert dialog_env.ENV_IDS  # the package registered something
