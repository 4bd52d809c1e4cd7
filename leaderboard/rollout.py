"""Playing episodes of an episode set, many side by side: shared by evaluation and replay.

Whoever writes the assistant's messages is a :class:`MessageSource`: an agent when a
results file is made (:class:`AgentMessages`), the recorded messages of a results file
when it is verified (``leaderboard.verify``). Both go through :func:`play_episodes`, so
a replay steps the envs exactly as the evaluation did, and both get the same records
from :func:`episode_record`.

Up to ``source.batch_size`` episodes run in lockstep: the source is asked once per step
for the messages of every running episode, and a slot whose episode ended takes the next
seed. Each episode has its own env reset with its own seed, so an episode's course does
not depend on which others share the batch. This loop is the one place that steps envs
for the leaderboard; a batched vector env (one LM decode per step for all slots) slots in
here once it can reset a single sub-env with a chosen seed.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from leaderboard.episodes import EpisodeSet

__all__ = [
    "AGENT_SEED",
    "AgentMessages",
    "MessageSource",
    "episode_record",
    "episode_return",
    "make_episode_env",
    "play_episodes",
]

#: Seeds the agent once per evaluation when episodes are played in lockstep.
AGENT_SEED = 0


class MessageSource(Protocol):
    """Writes the assistant's messages for the episodes that are running."""

    batch_size: int  # episodes that may run side by side

    def start(self, index: int, seed: int) -> None:
        """Episode ``index`` of the play list begins, with ``seed``."""

    def messages(self, running: Sequence[tuple[int, str]]) -> list[str]:
        """The next message of each running episode, given as ``(index, observation)``."""


class AgentMessages:
    """An agent as a message source.

    With ``batch_size > 1`` and an agent that has ``act_batch``, the agent is asked once
    per step for every running episode and is seeded once with ``AGENT_SEED``. Otherwise
    episodes run one at a time and the agent is reset with each episode's seed, as
    ``reset(seed)`` promises.
    """

    def __init__(self, agent, batch_size: int):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.agent = agent
        self.name = str(getattr(agent, "name", type(agent).__name__))
        self.lockstep = batch_size > 1 and callable(getattr(agent, "act_batch", None))
        self.batch_size = batch_size if self.lockstep else 1
        if self.lockstep:
            agent.reset(seed=AGENT_SEED)

    def start(self, index: int, seed: int) -> None:
        if not self.lockstep:
            self.agent.reset(seed=seed)

    def messages(self, running: Sequence[tuple[int, str]]) -> list[str]:
        observations = [obs for _, obs in running]
        if self.lockstep:
            out = list(self.agent.act_batch(observations))
        else:
            out = [self.agent.act(observations[0])]
        if len(out) != len(running):
            raise ValueError(
                f"agent {self.name!r} answered {len(out)} messages for {len(running)} observations"
            )
        for message in out:
            if not isinstance(message, str):
                raise TypeError(
                    f"agent {self.name!r} returned a {type(message).__name__}, not a message str"
                )
        return out


def make_episode_env(episode_set: EpisodeSet):
    """A fresh env built exactly as ``episode_set``'s hash says (kwargs resolved)."""
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)

    return gym.make(episode_set.env_id, **episode_set.env_kwargs)


def episode_return(rewards: list[float]) -> float:
    """The return of an episode, summed the same way by the evaluator and the verifier."""
    return math.fsum(rewards)


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _plain(value: Any) -> Any:
    """``value`` as JSON reads it back, so that records compare equal after a round trip."""
    return json.loads(json.dumps(value, allow_nan=False, default=_json_default))


def episode_record(
    env, seed: int, rewards: list[float], info: dict, terminated: bool, truncated: bool
) -> dict[str, Any]:
    """The results-file record of a finished episode (DESIGN §7)."""
    if "metrics" in info:
        success, metrics = bool(info["success"]), info["metrics"]
    else:  # truncated by the time limit: the user never left, so no success
        success, metrics = False, env.unwrapped.episode_summary()[1]
    return {
        "seed": int(seed),
        "turns": _plain(info["turns"]),
        "rewards": [float(r) for r in rewards],
        "return": episode_return(rewards),
        "success": success,
        "terminated": bool(terminated),
        "truncated": bool(truncated),
        "metrics": _plain(metrics),
    }


@dataclass
class _RunningEpisode:
    index: int
    seed: int
    observation: str
    rewards: list[float] = field(default_factory=list)


def play_episodes(
    source: MessageSource,
    episode_set: EpisodeSet,
    seeds: Sequence[int] | None = None,
    progress: bool = True,
    desc: str = "",
) -> list[dict[str, Any]]:
    """Play ``seeds`` (default: the set's, in order); records come back in that order."""
    from tqdm.auto import tqdm

    seeds = list(episode_set.seeds if seeds is None else seeds)
    envs = [make_episode_env(episode_set) for _ in range(min(source.batch_size, len(seeds)))]
    pending = iter(enumerate(seeds))
    records: list[dict[str, Any] | None] = [None] * len(seeds)
    running: dict[int, _RunningEpisode] = {}

    def start(slot: int) -> None:
        nxt = next(pending, None)
        if nxt is not None:
            index, seed = nxt
            observation, _ = envs[slot].reset(seed=seed)
            source.start(index, seed)
            running[slot] = _RunningEpisode(index, seed, observation)

    bar = tqdm(
        total=len(seeds),
        desc=desc or episode_set.id,
        unit="ep",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        for slot in range(len(envs)):
            start(slot)
        while running:
            slots = sorted(running)
            messages = source.messages([(running[s].index, running[s].observation) for s in slots])
            for slot, message in zip(slots, messages, strict=True):
                episode = running[slot]
                obs, reward, terminated, truncated, info = envs[slot].step(message)
                episode.observation = obs
                episode.rewards.append(float(reward))
                if terminated or truncated:
                    records[episode.index] = episode_record(
                        envs[slot], episode.seed, episode.rewards, info, terminated, truncated
                    )
                    del running[slot]
                    bar.update(1)
                    start(slot)
    finally:
        bar.close()
        for env in envs:
            env.close()
    return [r for r in records if r is not None]
