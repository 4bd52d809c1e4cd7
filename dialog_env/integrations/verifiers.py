"""Dialog envs as a verifiers ``MultiTurnEnv`` (optional extra ``verifiers``).

`verifiers <https://github.com/PrimeIntellect-ai/verifiers>`_ runs a model against an
environment through any OpenAI-compatible endpoint (``vf-eval``, its trainers, prime-rl).
:func:`load_environment` is its entry point for our ids:

- the dataset is the seeds: one row per episode, its ``prompt`` the system prompt and
  the episode's opening (the user's first turn) as chat messages, its ``info`` the seed;
- each assistant message goes to the env as its next action (``env.step``), and what
  came back, the user's reply or a tool's result, is the environment's response, in
  the message format of :mod:`dialog_env.chat_messages` (a tool result is a ``user``
  message ``Tool result: ...``, so ``dialog-bench serve`` reads the conversation back
  into the very transcript the env holds);
- the rollout ends when the env's episode does (the user left, or the time limit);
- the rubric is the env's own reward: ``episode_return``, the sum of the episode's step
  rewards (weight 1), with the env's ``success`` as a metric (weight 0).

A rollout's env is made in ``setup_state`` and closed at cleanup; its calls run on the
event loop, one at a time, so that episodes that share the user LM do not depend on each
other. The classic ``MultiTurnEnv`` API is the one of verifiers 0.3 (``import verifiers
as vf``); 0.4 removed it.

>>> env = load_environment("Dialog-v1", num_episodes=2, user_model="template")
>>> list(env.get_eval_dataset()["info"])
[{'seed': 0}, {'seed': 1}]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import verifiers as vf
from datasets import Dataset

import dialog_env  # noqa: F401  (registers the ids)
from dialog_env.chat_messages import booking_system_prompt, turns_messages
from dialog_env.registration import ALIASES, TEXT_ENV_IDS, check_env_id, task_of
from dialog_env.text import Turn

__all__ = ["DialogMultiTurnEnv", "episode_return", "episode_success", "load_environment"]

if not hasattr(vf, "MultiTurnEnv"):  # verifiers >= 0.4: the v1 stack only
    raise ImportError(
        f"dialog_env.integrations.verifiers needs verifiers' MultiTurnEnv (verifiers 0.3), "
        f"not verifiers {getattr(vf, '__version__', '?')}: pip install 'dialog-bench[verifiers]'"
    )


def episode_return(state: Any, **kwargs: Any) -> float:
    """The rubric's reward: the episode's return, summed as the leaderboard sums it."""
    return math.fsum(state.get("dialog_rewards") or [])


def episode_success(state: Any, **kwargs: Any) -> float:
    """A metric: 1.0 when the env reported the episode a success."""
    return float(bool((state.get("dialog_info") or {}).get("success", False)))


def _turns(info: dict[str, Any]) -> list[Turn]:
    return [Turn(turn["role"], turn["text"]) for turn in info["turns"]]


def _content(message: Any) -> str:
    """A message's text, whether verifiers hands it as a dict or as its own model."""
    content = message.get("content") if isinstance(message, dict) else message.content
    if isinstance(content, list):  # text parts
        return "".join(p.get("text", "") if isinstance(p, dict) else p.text for p in content)
    return content or ""


class DialogMultiTurnEnv(vf.MultiTurnEnv):
    """A verifiers ``MultiTurnEnv`` over ``gymnasium.make(env_id, **env_kwargs)`` episodes,
    one per seed of ``seeds`` (see the module docstring)."""

    def __init__(
        self,
        env_id: str = "Dialog-v1",
        seeds: Sequence[int] = range(20),
        env_kwargs: dict[str, Any] | None = None,
        system_prompt: str | None = None,
        tool_role: str = "user",
        **kwargs: Any,
    ):
        check_env_id(env_id, "the verifiers env id")
        if ALIASES.get(env_id, env_id) not in TEXT_ENV_IDS:
            raise ValueError(
                f"{env_id} is not a text id: verifiers talks in messages, use one of "
                f"{', '.join(TEXT_ENV_IDS)}"
            )
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs or {})
        self.tool_role = tool_role
        if system_prompt is None and task_of(env_id) == "booking":
            system_prompt = booking_system_prompt()
        seeds = [int(seed) for seed in seeds]
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise ValueError(f"seeds must be distinct non-negative ints, got {seeds[:10]}")
        rubric = vf.Rubric(funcs=[episode_return, episode_success], weights=[1.0, 0.0])
        super().__init__(
            eval_dataset=self._seed_dataset(seeds, system_prompt),
            rubric=rubric,
            env_id=env_id,
            env_args={"seeds": seeds, **self.env_kwargs},
            **kwargs,
        )

    def _seed_dataset(self, seeds: list[int], system_prompt: str | None) -> Dataset:
        """One row per seed: the prompt (system prompt and the episode's opening)."""
        system = [{"role": "system", "content": system_prompt}] if system_prompt else []
        env = gym.make(self.env_id, **self.env_kwargs)
        rows = []
        for seed in seeds:
            _, info = env.reset(seed=seed)
            opening = turns_messages(_turns(info), self.tool_role)
            rows.append({"prompt": system + opening, "info": {"seed": seed}})
        env.close()
        return Dataset.from_list(rows)

    async def setup_state(self, state: Any) -> Any:
        """The rollout's own env, reset with its row's seed."""
        env = gym.make(self.env_id, **self.env_kwargs)
        _, info = env.reset(seed=int(state["info"]["seed"]))
        state["dialog_env"], state["dialog_info"] = env, info
        state["dialog_rewards"] = []
        return state

    async def env_response(self, messages: Any, state: Any, **kwargs: Any) -> list[dict]:
        """Step the env with the assistant's message; the turns that came back."""
        env, before = state["dialog_env"], len(state["dialog_info"]["turns"])
        _, reward, terminated, truncated, info = env.step(_content(messages[-1]))
        state["dialog_rewards"].append(float(reward))
        state["dialog_info"] = info
        response = turns_messages(_turns(info)[before + 1 :], self.tool_role)
        if terminated or truncated:
            state["final_env_response"] = response
        return response

    @vf.cleanup
    async def close_dialog_env(self, state: Any) -> None:
        """Close the rollout's env (the rubric reads only the rewards and info)."""
        env = state.pop("dialog_env", None)
        if env is not None:
            env.close()


def load_environment(
    env_id: str = "Dialog-v1",
    split: str = "test",
    num_episodes: int = 20,
    seeds: Sequence[int] | None = None,
    system_prompt: str | None = None,
    tool_role: str = "user",
    **env_kwargs: Any,
) -> DialogMultiTurnEnv:
    """verifiers' entry point: ``num_episodes`` episodes of ``env_id`` on ``split``'s goals
    (seeds ``0..num_episodes-1``, or ``seeds``), as a :class:`DialogMultiTurnEnv`.

    ``system_prompt`` defaults to the booking task's (:func:`~dialog_env.chat_messages.
    booking_system_prompt`) on the booking ids and none on the others; ``env_kwargs``
    (``user_model=...``) go to ``gymnasium.make``.
    """
    if seeds is None:
        if isinstance(num_episodes, bool) or not isinstance(num_episodes, int):
            raise ValueError(f"num_episodes must be a positive int, got {num_episodes!r}")
        if num_episodes < 1:
            raise ValueError(f"num_episodes must be a positive int, got {num_episodes!r}")
        seeds = range(num_episodes)
    return DialogMultiTurnEnv(
        env_id,
        seeds,
        {**env_kwargs, "split": split},
        system_prompt=system_prompt,
        tool_role=tool_role,
    )
