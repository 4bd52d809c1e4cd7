"""Rollouts for token-level PPO: the policy's conversations in the batched vector env.

:class:`Conversations` keeps ``num_envs`` training conversations going between
iterations. Each :meth:`Conversations.collect` plays a fixed number of messages per
sub-env: one batched sampling of every sub-env's next message (each conversation keeping
its KV cache between messages for the rollout, while the weights stay fixed), then one
``DialogVectorEnv.step`` that voices all user turns in one batch. A finished episode is
replaced at once, through ``reset_subenvs``, by a new one on a train-split seed drawn
below ``EVAL_SEED_FLOOR``: no dev or test episode is ever trained on, and the seeds of a
run follow from its seed. After the rollout, :func:`score_rollout` gives every message
the values of its states (the policy, as it sampled) and the frozen reference's
log-probs, in no-grad forwards over packed rows (:mod:`baselines.common.rollout`), as
GRPO scores its reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from baselines.common.rollout import Message, pack_episode, score_rows

__all__ = ["Conversations", "Episode", "Rollout", "score_rollout"]


class Episode(NamedTuple):
    """A training episode that ended during a rollout."""

    env_return: float
    success: bool
    messages: int


@dataclass
class Rollout:
    """An iteration's messages, per sub-env in time order, and what PPO's GAE needs."""

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
        env_id: the text env id trained on.
        **env_kwargs: for ``gymnasium.make_vec(env_id, ...)`` (``user_model``...);
            ``split`` is always ``"train"``.
    """

    def __init__(self, num_envs: int, seed: int, env_id: str = "Dialog-v1", **env_kwargs: Any):
        import gymnasium as gym

        import dialog_env  # noqa: F401  (registers the ids)

        self.envs = gym.make_vec(env_id, num_envs=num_envs, **env_kwargs, split="train")
        self.rng = np.random.default_rng(seed)
        obs, _ = self.envs.reset(seed=self.draw_seeds(num_envs))
        self.observations = list(obs)
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, dtype=int)
        self.messages = 0  # env steps so far

    def draw_seeds(self, n: int) -> list[int]:
        """``n`` train seeds from the run's stream, all below ``EVAL_SEED_FLOOR``."""
        from leaderboard.episodes import EVAL_SEED_FLOOR

        return [int(s) for s in self.rng.integers(0, EVAL_SEED_FLOOR, size=n)]

    def collect(self, policy, generator, steps: int) -> Rollout:
        """``steps`` messages per sub-env, sampled from ``policy`` with ``generator``."""
        from dialog_env.lm.sessions import ConversationCache

        n = len(self.observations)
        sessions = ConversationCache(policy.codec.pad_id, max_conversations=max(1, n))
        streams: list[list[Message]] = [[] for _ in range(n)]
        finished: list[Episode] = []
        for _ in range(steps):
            prompts = [policy.encode(o) for o in self.observations]
            sampled = policy.sample(prompts, list(range(n)), sessions, generator)
            texts = [policy.message_text(t) for t in sampled.tokens]
            obs, rewards, terminated, truncated, infos = self.envs.step(texts)
            self.observations = list(obs)
            self.messages += n
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
                    sessions.drop(i)
        last_values = policy.prompt_values([policy.encode(o) for o in self.observations])
        return Rollout(streams, last_values, finished)

    def close(self) -> None:
        self.envs.close()


def score_rollout(policy, reference, rollout: Rollout, batch_size: int) -> None:
    """Give every message of ``rollout`` its states' values (``policy``, the weights that
    sampled it) and the frozen ``reference``'s log-probs of its tokens: two no-grad
    forwards over the rollout's packed rows (:func:`baselines.common.rollout.score_rows`)."""
    rows = [row for stream in rollout.streams for row in pack_episode(stream)]
    score_rows(policy, rows, batch_size, into="values")
    score_rows(reference, rows, batch_size)
