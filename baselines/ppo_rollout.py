"""Rollouts for token-level PPO: the policy's conversations in the batched vector env.

:class:`Conversations` keeps ``num_envs`` training conversations going between
iterations. Each :meth:`Conversations.collect` plays a fixed number of messages per
sub-env: one batched, KV-cached sampling of every sub-env's next message (with the
reference LM in lockstep), then one ``DialogVectorEnv.step`` that voices all user turns
in one batch. A finished episode is replaced at once, through ``reset_subenvs``, by a new
one on a train-split seed drawn below ``EVAL_SEED_FLOOR``: no dev or test episode is
ever trained on, and the seeds of a run follow from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Conversations", "Episode", "Message", "Rollout"]


@dataclass
class Message:
    """One sampled message and what PPO needs of each of its tokens."""

    prompt: list[int]
    tokens: list[int]
    logprobs: np.ndarray  # log pi(token | state) when sampled
    ref_logprobs: np.ndarray  # log pi_ref(token | state)
    values: np.ndarray  # V(state) when sampled
    entropies: np.ndarray = field(default_factory=lambda: np.zeros(0))  # of pi(. | state)
    reward: float = 0.0  # the env's reward for the message
    ends_episode: bool = False  # terminated or truncated after it
    advantages: np.ndarray = field(default_factory=lambda: np.zeros(0))
    returns: np.ndarray = field(default_factory=lambda: np.zeros(0))


class Episode(NamedTuple):
    """A training episode that ended during a rollout."""

    env_return: float
    success: bool
    messages: int


@dataclass
class Rollout:
    streams: list[list[Message]]  # per sub-env, its messages in time order
    last_values: list[float]  # per sub-env, V(its next prompt): the bootstrap
    finished: list[Episode]

    @property
    def messages(self) -> list[Message]:
        return [m for stream in self.streams for m in stream]


class Conversations:
    """The training envs, where each conversation stands, and the train seeds to come.

    Args:
        num_envs: conversations side by side (sub-envs of one ``DialogVectorEnv``).
        seed: seeds the stream of episode seeds.
        **env_kwargs: for ``gymnasium.make_vec("Dialog-v1", ...)`` (``user_model``...);
            ``split`` is always ``"train"``.
    """

    def __init__(self, num_envs: int, seed: int, **env_kwargs: Any):
        import gymnasium as gym

        import dialog_env  # noqa: F401  (registers the ids)

        self.envs = gym.make_vec("Dialog-v1", num_envs=num_envs, **env_kwargs, split="train")
        self.rng = np.random.default_rng(seed)
        obs, _ = self.envs.reset(seed=self.draw_seeds(num_envs))
        self.observations = list(obs)
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, dtype=int)
        self.messages = 0  # env steps so far

    def draw_seeds(self, n: int) -> list[int]:
        from leaderboard.episodes import EVAL_SEED_FLOOR

        return [int(s) for s in self.rng.integers(0, EVAL_SEED_FLOOR, size=n)]

    def collect(self, policy, reference, generator, steps: int) -> Rollout:
        """``steps`` messages per sub-env, sampled from ``policy`` with ``generator``."""
        streams: list[list[Message]] = [[] for _ in self.observations]
        finished: list[Episode] = []
        for _ in range(steps):
            prompts = [policy.encode(o) for o in self.observations]
            sampled = policy.sample(prompts, generator, reference)
            texts = [policy.codec.decode_message(_strip_end(policy, t)) for t in sampled.tokens]
            obs, rewards, terminated, truncated, infos = self.envs.step(texts)
            self.observations = list(obs)
            self.messages += len(texts)
            self.returns += rewards
            self.lengths += 1
            ended = []
            for i, prompt in enumerate(prompts):
                done = bool(terminated[i] or truncated[i])
                streams[i].append(
                    Message(
                        prompt,
                        sampled.tokens[i],
                        np.array(sampled.logprobs[i]),
                        np.array(sampled.ref_logprobs[i]),
                        np.array(sampled.values[i]),
                        np.array(sampled.entropies[i]),
                        float(rewards[i]),
                        done,
                    )
                )
                if done:  # a time-limit truncation ends the episode without success
                    success = "success" in infos and infos["_success"][i] and infos["success"][i]
                    finished.append(
                        Episode(float(self.returns[i]), bool(success), int(self.lengths[i]))
                    )
                    self.returns[i], self.lengths[i] = 0.0, 0
                    ended.append(i)
            if ended:  # new episodes on seeds we choose, in place of the autoreset's
                restarted = self.envs.reset_subenvs(ended, self.draw_seeds(len(ended)))
                for i, (observation, _) in zip(ended, restarted, strict=True):
                    self.observations[i] = observation
        last_values = policy.prompt_values([policy.encode(o) for o in self.observations])
        return Rollout(streams, last_values, finished)

    def close(self) -> None:
        self.envs.close()


def _strip_end(policy, tokens: list[int]) -> list[int]:
    return tokens[:-1] if tokens and tokens[-1] in policy.codec.end_ids else tokens
