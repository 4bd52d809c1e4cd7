"""Playing episodes of an episode set, many side by side: shared by evaluation and replay.

Whoever writes the assistant's messages is a :class:`MessageSource`: an agent when a
results file is made (:class:`AgentMessages`), the recorded messages of a results file
when it is verified (``leaderboard.verify``). Both go through :func:`play_episodes`, so
a replay steps the envs exactly as the evaluation did, and both get the same records
from :func:`episode_record`.

Up to ``source.batch_size`` episodes run in lockstep: the source is asked once per step
for the messages of every running episode, and a slot whose episode ended takes the next
seed. The slots are those of the env id's batched vector env where it has one (one LM
decode per step for all slots; ``leaderboard.env_slots``), each reset with its
episode's own seed, so an episode's course does not depend on which others share the
batch. This loop is the one place that steps envs for the leaderboard.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from leaderboard.env_slots import open_env_slots
from leaderboard.episodes import EpisodeSet

__all__ = [
    "AGENT_SEED",
    "AgentMessages",
    "MessageSource",
    "has_own_act_batch",
    "episode_record",
    "episode_return",
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

    # Optional: ``finish(index)``, told when episode ``index`` ended.


def has_own_act_batch(agent) -> bool:
    """Whether ``agent`` answers a batch in one call of its own (e.g. one batched forward
    pass), rather than by ``BaseAgent``'s loop over ``act``."""
    from agents.base import BaseAgent

    method = getattr(type(agent), "act_batch", None)
    return callable(method) and method is not BaseAgent.act_batch


class AgentMessages:
    """An agent as a message source; ``calls`` says how it is asked.

    ``make_agent`` builds an agent (e.g. ``lambda: load_agent("expert")``).

    - ``"act_batch"``: an agent with a batched ``act_batch`` of its own is asked once per
      step for every running episode; one instance, seeded once with ``AGENT_SEED``.
      If its ``act_batch`` takes ``keys``, each observation comes with its episode's
      index (an LM agent then keeps each episode's KV cache between messages), and its
      ``end_episode(index)``, if it has one, is told when the episode ends.
    - ``"act"``: otherwise every slot has its own instance, reset with the seed of each
      episode it plays, as ``reset(seed)`` promises, so the messages do not depend on the
      batch size. The envs are batched either way.
    """

    def __init__(self, make_agent: Callable[[], Any], batch_size: int):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.make_agent = make_agent
        self.agent = make_agent()
        self.name = str(getattr(self.agent, "name", type(self.agent).__name__))
        self.batch_size = batch_size
        self.calls = "act_batch" if batch_size > 1 and has_own_act_batch(self.agent) else "act"
        self._free = [self.agent]
        self._playing: dict[int, Any] = {}
        self._keyed = self.calls == "act_batch" and _takes_keys(self.agent)
        if self.calls == "act_batch":
            self.agent.reset(seed=AGENT_SEED)

    def start(self, index: int, seed: int) -> None:
        if self.calls == "act":
            agent = self._free.pop() if self._free else self.make_agent()
            agent.reset(seed=seed)
            self._playing[index] = agent

    def finish(self, index: int) -> None:
        """Episode ``index`` ended: its instance is free for the next episode."""
        agent = self._playing.pop(index, None)
        if agent is not None:
            self._free.append(agent)
        end_episode = getattr(self.agent, "end_episode", None)
        if self._keyed and callable(end_episode):
            end_episode(index)

    def messages(self, running: Sequence[tuple[int, str]]) -> list[str]:
        if self._keyed:
            keys = [index for index, _ in running]
            out = list(self.agent.act_batch([obs for _, obs in running], keys=keys))
        elif self.calls == "act_batch":
            out = list(self.agent.act_batch([obs for _, obs in running]))
        else:
            out = [self._playing[index].act(obs) for index, obs in running]
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


def _takes_keys(agent) -> bool:
    import inspect

    try:
        return "keys" in inspect.signature(agent.act_batch).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return False


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
    progress: bool | Callable[[int], None] = True,
    desc: str = "",
) -> list[dict[str, Any]]:
    """Play ``seeds`` (default: the set's, in order); records come back in that order.

    ``progress``: a progress bar (True), none (False), or a callable told how many more
    episodes finished (a caller's own bar over several runs, e.g. ``dialog-bench run``).
    """
    from tqdm.auto import tqdm

    seeds = list(episode_set.seeds if seeds is None else seeds)
    envs = open_env_slots(episode_set, max(1, min(source.batch_size, len(seeds))))
    finish = getattr(source, "finish", None)  # optional in a message source
    pending = iter(enumerate(seeds))
    records: list[dict[str, Any] | None] = [None] * len(seeds)
    running: dict[int, _RunningEpisode] = {}

    def start(free: Sequence[int]) -> None:
        """Give free slots the next seeds; their openings are voiced in one batch."""
        starts = [(slot, nxt) for slot in free if (nxt := next(pending, None)) is not None]
        if not starts:
            return
        observations = envs.reset([slot for slot, _ in starts], [seed for _, (_, seed) in starts])
        for (slot, (index, seed)), observation in zip(starts, observations, strict=True):
            source.start(index, seed)
            running[slot] = _RunningEpisode(index, seed, observation)

    bar = tqdm(
        total=len(seeds),
        desc=desc or episode_set.id,
        unit="ep",
        file=sys.stderr,
        disable=progress is not True,
        dynamic_ncols=True,
    )
    try:
        start(range(envs.size))
        while running:
            slots = sorted(running)
            messages = source.messages([(running[s].index, running[s].observation) for s in slots])
            finished = []
            for slot, (obs, reward, terminated, truncated, info) in zip(
                slots, envs.step(slots, messages), strict=True
            ):
                episode = running[slot]
                episode.observation = obs
                episode.rewards.append(float(reward))
                if terminated or truncated:
                    records[episode.index] = episode_record(
                        envs.env(slot), episode.seed, episode.rewards, info, terminated, truncated
                    )
                    del running[slot]
                    if finish is not None:
                        finish(episode.index)
                    finished.append(slot)
            bar.update(len(finished))
            if callable(progress) and finished:
                progress(len(finished))
            start(finished)
    finally:
        bar.close()
        envs.close()
    return [r for r in records if r is not None]
