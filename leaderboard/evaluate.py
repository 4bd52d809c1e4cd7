"""Play an agent on an episode set and write a results file: ``dialog-bench evaluate``.

>>> from agents import load_agent
>>> from leaderboard.episodes import get_episode_set
>>> results = evaluate_agent("expert", get_episode_set("Dialog-v1", "test", limit=2),
...                          progress=False)
>>> [ep["seed"] for ep in results["episodes"]] == list(
...     get_episode_set("Dialog-v1", "test", limit=2).seeds)
True
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from leaderboard.agent_card import AgentCard, describe_agent
from leaderboard.episodes import EPISODE_SET_SIZES, EpisodeSet, get_episode_set
from leaderboard.results import FORMAT, FORMAT_VERSION, write_results

__all__ = [
    "AGENT_SEED",
    "DEFAULT_BATCH_SIZE",
    "add_parser",
    "episode_record",
    "episode_return",
    "evaluate_agent",
    "make_episode_env",
    "play_episodes",
]

#: Seeds the agent once per evaluation when episodes are played in lockstep.
AGENT_SEED = 0
#: Episodes played in lockstep when the agent has ``act_batch``.
DEFAULT_BATCH_SIZE = 16


def make_episode_env(episode_set: EpisodeSet):
    """A fresh env built exactly as ``episode_set``'s hash says (kwargs resolved)."""
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)

    return gym.make(episode_set.env_id, **episode_set.env_kwargs)


def episode_return(rewards: list[float]) -> float:
    """The return of an episode, summed the same way by the evaluator and the verifier."""
    return math.fsum(rewards)


def _plain(value: Any) -> Any:
    """``value`` as JSON reads it back, so that records compare equal after a round trip."""
    import json

    return json.loads(json.dumps(value, allow_nan=False, default=_json_default))


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def episode_record(
    env, seed: int, rewards: list[float], info: dict, terminated: bool, truncated: bool
) -> dict[str, Any]:
    """The results-file record of a finished episode (shared with the replay)."""
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
    agent, episode_set: EpisodeSet, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True
) -> list[dict[str, Any]]:
    """Play every episode of the set; records come back in the set's seed order.

    With ``batch_size > 1`` and an agent that has ``act_batch``, up to ``batch_size``
    episodes run in lockstep and the agent is asked once per step for all of them; it is
    seeded once with ``AGENT_SEED``. Otherwise episodes run one at a time and the agent is
    reset with each episode's seed. This is the one place that steps envs for evaluation
    (the batched vector env slots in here).
    """
    from tqdm.auto import tqdm

    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    lockstep = batch_size > 1 and callable(getattr(agent, "act_batch", None))
    envs = [
        make_episode_env(episode_set)
        for _ in range(min(batch_size if lockstep else 1, len(episode_set)))
    ]
    pending = iter(enumerate(episode_set.seeds))
    records: list[dict[str, Any] | None] = [None] * len(episode_set)
    running: dict[int, _RunningEpisode] = {}

    def start(slot: int) -> None:
        nxt = next(pending, None)
        if nxt is not None:
            index, seed = nxt
            observation, _ = envs[slot].reset(seed=seed)
            if not lockstep:
                agent.reset(seed=seed)
            running[slot] = _RunningEpisode(index, seed, observation)

    if lockstep:
        agent.reset(seed=AGENT_SEED)
    name = getattr(agent, "name", type(agent).__name__)
    bar = tqdm(
        total=len(episode_set),
        desc=f"{name} on {episode_set.id}",
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
            observations = [running[s].observation for s in slots]
            messages = agent.act_batch(observations) if lockstep else [agent.act(observations[0])]
            if len(messages) != len(slots):
                raise ValueError(
                    f"agent {name!r} answered {len(messages)} messages for "
                    f"{len(slots)} observations"
                )
            for slot, message in zip(slots, messages, strict=True):
                if not isinstance(message, str):
                    raise TypeError(
                        f"agent {name!r} returned a {type(message).__name__}, not a message str"
                    )
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


def results_header(card: AgentCard, episode_set: EpisodeSet, batch_size: int) -> dict:
    """The header of a results file (DESIGN §7) for ``card`` on ``episode_set``."""
    from dialog_env import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "env_id": episode_set.env_id,
        "env_version": episode_set.env_spec["version"],
        "episode_set": episode_set.id,
        "episode_set_sha256": episode_set.sha256,
        "agent": card.name,
        "paradigm": card.paradigm,
        "interface": card.interface,
        "model_sha256": card.model_sha256,
        "budget": dict(card.budget),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dialog_bench_version": __version__,
        "evaluation": {"batch_size": batch_size, "agent_seed": AGENT_SEED},
    }


def evaluate_agent(
    agent_spec: str | Path,
    episode_set: EpisodeSet,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> dict:
    """Load the agent (a built-in name or a checkpoint dir), play the set, return results."""
    from agents import load_agent

    agent = load_agent(agent_spec)
    card = describe_agent(agent, agent_spec)
    episodes = play_episodes(agent, episode_set, batch_size=batch_size, progress=progress)
    return {"header": results_header(card, episode_set, batch_size), "episodes": episodes}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="play an agent on an episode set and write a results file",
        description="Play AGENT (a built-in name such as expert or random, or a checkpoint "
        "directory) on every episode of an episode set and write a results file that "
        "`dialog-bench submit` can verify.",
    )
    p.add_argument("agent", metavar="AGENT", help="agent name or checkpoint directory")
    p.add_argument(
        "--episodes",
        default="test",
        choices=tuple(EPISODE_SET_SIZES),
        help="episode set (default: test, 500 episodes; dev has 200)",
    )
    p.add_argument("--env-id", default="Dialog-v1", help="registered env id (default: Dialog-v1)")
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="only the first N episodes of the set (a set of its own)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="PATH",
        help="results file to write (default: results/AGENT.SET.json)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"episodes played in lockstep (default: {DEFAULT_BATCH_SIZE}; 1 = "
        "one at a time, the agent reset with each episode's seed)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    episode_set = get_episode_set(args.env_id, args.episodes, limit=args.limit)
    results = evaluate_agent(
        args.agent, episode_set, batch_size=args.batch_size, progress=not args.quiet
    )
    header = results["header"]
    out = args.out or Path("results") / f"{header['agent']}.{args.episodes}.json"
    write_results(out, results)
    episodes = results["episodes"]
    success = sum(ep["success"] for ep in episodes) / len(episodes)
    mean_return = sum(ep["return"] for ep in episodes) / len(episodes)
    print(
        f"wrote {out}: {header['agent']} on {header['episode_set']}, {len(episodes)} "
        f"episodes, success {success:.3f}, mean return {mean_return:.3f}"
    )
    return 0
