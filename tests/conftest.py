"""Shared fixtures: the registered env ids and the voices every contract test runs with."""

from __future__ import annotations

import gymnasium as gym
import pytest

import dialog_env
from dialog_env.registration import ENV_IDS

ALL_ENV_IDS = sorted(ENV_IDS)


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


def run_episode(env: gym.Env, agent, seed: int) -> tuple[list[str], dict, float]:
    """Play one episode; return the agent's messages, the last info and the return."""
    obs, info = env.reset(seed=seed)
    agent.reset(seed=seed)
    messages, total = [], 0.0
    while True:
        message = agent.act(obs)
        messages.append(message)
        obs, reward, terminated, truncated, info = env.step(message)
        total += reward
        if terminated or truncated:
            return messages, info, total


@pytest.fixture(params=ALL_ENV_IDS)
def env_id(request) -> str:
    return request.param


assert dialog_env.ENV_IDS  # the package registered something
