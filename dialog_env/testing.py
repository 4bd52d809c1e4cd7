"""A public checker for dialog-bench environments, for our tests and for outside task authors.

``check_dialog_env("Dialog-v1")`` runs Gymnasium's ``check_env`` with warnings as errors,
compares two same-seed rollouts field by field, and checks a pickle round trip in the
middle of an episode. It raises ``AssertionError`` with the first difference it finds.
"""

from __future__ import annotations

import copy
import pickle
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.spaces import Text
from gymnasium.utils.env_checker import check_env, data_equivalence

__all__ = ["check_dialog_env", "rollout", "sampled_policy"]

Policy = Callable[[str, int], str]

_PROBES = (
    "Hello! What can I do for you?",
    "[search] food=italian",
    "Which area would you like, and what price range?",
    "",
    "[book] people=-1 day=never",
    "Is there anything else I can help you with?",
)


def sampled_policy(space: gym.Space, seed: int = 0) -> Policy:
    """Actions drawn from a private, seeded copy of the action space; for a ``Text`` space
    every other message is one of a few plausible probes."""
    space = copy.deepcopy(space)
    space.seed(seed)
    if not isinstance(space, Text):
        return lambda observation, step: space.sample()

    def act(observation: str, step: int) -> str:
        return _PROBES[step % len(_PROBES)] if step % 2 == 0 else space.sample()

    return act


def rollout(env: gym.Env, seed: int, policy: Policy, max_steps: int = 50) -> list[tuple]:
    """``[(obs, reward, terminated, truncated, info), ...]`` of one episode from ``seed``."""
    obs, info = env.reset(seed=seed)
    steps: list[tuple] = [(obs, 0.0, False, False, info)]
    for t in range(max_steps):
        obs, reward, terminated, truncated, info = env.step(policy(obs, t))
        steps.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            obs, info = env.reset()
            steps.append((obs, 0.0, False, False, info))
    return steps


def _assert_same(a: Sequence[Any], b: Sequence[Any], what: str) -> None:
    assert len(a) == len(b), f"{what}: {len(a)} steps vs {len(b)} steps"
    names = ("observation", "reward", "terminated", "truncated", "info")
    for t, (x, y) in enumerate(zip(a, b, strict=True)):
        for name, u, v in zip(names, x, y, strict=True):
            assert data_equivalence(u, v), f"{what}: {name} differs at step {t}: {u!r} != {v!r}"


def check_dialog_env(
    env_id: str, seeds: Sequence[int] = (0, 1), steps: int = 50, **kwargs: Any
) -> None:
    """Check one registered dialog env id (``kwargs`` go to ``gymnasium.make``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # The interface wrappers are part of the env under test, so the checker gets the
        # whole stack (without gymnasium.make's own wrappers); it notes that this is not
        # the bare unwrapped env, which is the one notice allowed here.
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version")
        env = gym.make(env_id, disable_env_checker=True, **kwargs)
        while isinstance(env, (gym.wrappers.TimeLimit, gym.wrappers.OrderEnforcing)):
            env = env.env
        check_env(env, skip_render_check=False)
        env.close()

    for seed in seeds:
        first, second = gym.make(env_id, **kwargs), gym.make(env_id, **kwargs)
        policy_a = sampled_policy(first.action_space, seed)
        policy_b = sampled_policy(second.action_space, seed)
        a, b = rollout(first, seed, policy_a, steps), rollout(second, seed, policy_b, steps)
        _assert_same(a, b, f"{env_id} seed {seed}: two envs")
        for t, (obs, *_rest) in enumerate(a):
            assert first.observation_space.contains(obs), f"observation {t} is outside its space"

        # Pickle in the middle of an episode: the copy must go on exactly like the original.
        env = gym.make(env_id, **kwargs)
        policy = sampled_policy(env.action_space, seed)
        obs, _ = env.reset(seed=seed)
        for t in range(3):
            obs, _, terminated, truncated, _ = env.step(policy(obs, t))
            if terminated or truncated:
                obs, _ = env.reset(seed=seed + 1)
        clone = pickle.loads(pickle.dumps(env))
        follow = sampled_policy(env.action_space, seed + 7)
        follow_clone = sampled_policy(env.action_space, seed + 7)
        for t in range(10):
            x = env.step(follow(obs, t))
            y = clone.step(follow_clone(obs, t))
            _assert_same([x], [y], f"{env_id} seed {seed}: pickled copy")
            obs = x[0]
            if x[2] or x[3]:
                break
