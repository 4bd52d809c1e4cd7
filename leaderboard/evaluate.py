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
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from leaderboard.agent_card import AgentCard, describe_agent
from leaderboard.episodes import EPISODE_SET_SIZES, EpisodeSet, get_episode_set
from leaderboard.results import FORMAT, FORMAT_VERSION, write_results
from leaderboard.rollout import AGENT_SEED, AgentMessages, play_episodes

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "add_episode_set_arguments",
    "add_parser",
    "add_ray_arguments",
    "default_results_path",
    "evaluate_agent",
    "results_header",
]

#: Episodes played side by side (the vector env voices their user turns in one batch).
DEFAULT_BATCH_SIZE = 128


def results_header(
    card: AgentCard, episode_set: EpisodeSet, batch_size: int, agent_calls: str
) -> dict:
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
        "evaluation": {
            "batch_size": batch_size,
            "agent_calls": agent_calls,
            "agent_seed": AGENT_SEED if agent_calls == "act_batch" else None,
        },
    }


def evaluate_agent(
    agent_spec: str | Path,
    episode_set: EpisodeSet,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | Callable[[int], None] = True,
    ray: str | None = None,
    ray_actors: int | None = None,
    agent_options: dict | None = None,
) -> dict:
    """Load the agent (a built-in name or a checkpoint dir), play the set, return results.

    ``ray``: an address (``leaderboard.ray_runner``; ``"local"``: a Ray on this machine)
    whose actors play the set in shards, ``ray_actors`` of them (default: one per CPU);
    the results are those of the local run. ``agent_options`` go to ``load_agent`` (an
    ``openai:`` agent's ``base_url``, say).
    """
    from agents import load_agent

    options = dict(agent_options or {})
    if ray is not None and options:
        raise ValueError(f"agent options ({', '.join(sorted(options))}) do not go to Ray actors")
    if ray is not None:
        from leaderboard.ray_runner import play_sharded

        (card, batch_size, calls), episodes = play_sharded(
            agent_spec, episode_set, batch_size, ray, ray_actors, progress
        )
        return {
            "header": results_header(card, episode_set, batch_size, calls),
            "episodes": episodes,
        }
    source = AgentMessages(lambda: load_agent(agent_spec, **options), batch_size)
    card = describe_agent(source.agent, agent_spec)
    episodes = play_episodes(
        source, episode_set, progress=progress, desc=f"{card.name} on {episode_set.id}"
    )
    header = results_header(card, episode_set, source.batch_size, source.calls)
    return {"header": header, "episodes": episodes}


def default_results_path(agent: str, episode_set: EpisodeSet) -> Path:
    """Where ``evaluate`` writes without ``--out``: under ``results/`` of the working
    directory, named by agent, env id and set (``--limit N``: ``SET-firstN``), so that
    runs of one agent on two ids or two sizes do not overwrite each other.

    >>> str(default_results_path("expert", get_episode_set("Dialog-v1", "test", limit=5)))
    'results/expert.Dialog-v1.test-first5.json'
    """
    limited = episode_set.limit is not None
    name = episode_set.name + (f"-first{episode_set.limit}" if limited else "")
    return Path("results") / f"{agent}.{episode_set.env_id}.{name}.json"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="play an agent on an episode set and write a results file",
        description="Play AGENT (a built-in name such as expert or random, a checkpoint "
        "directory, hf:PATH or openai:MODEL) on every episode of an episode set and write a "
        "results file that `dialog-bench submit` can verify.",
    )
    p.add_argument(
        "agent", metavar="AGENT", help="agent name, checkpoint directory, hf:PATH or openai:MODEL"
    )
    add_episode_set_arguments(p)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="PATH",
        help="results file to write (default: results/AGENT.ENV_ID.SET.json, SET-firstN "
        "with --limit N, under the working directory)",
    )
    p.add_argument(
        "--base-url",
        default=None,
        metavar="URL",
        help="openai:MODEL only: the OpenAI-compatible API to ask (default: OPENAI_BASE_URL, "
        "else http://127.0.0.1:8000/v1)",
    )
    add_ray_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def add_ray_arguments(p: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and ``--ray-actors N``: play the episodes on Ray actors."""
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="shard the episodes over Ray actors (extra [ray]): alone, a Ray on this "
        "machine (or RAY_ADDRESS's); 'auto' or ray://HOST:10001 for a cluster. The results "
        "are the local run's",
    )
    p.add_argument(
        "--ray-actors",
        type=int,
        default=None,
        metavar="N",
        help="Ray actors, each with its own agent and env slots and one CPU (default and at "
        "most: the cluster's CPUs)",
    )


def add_episode_set_arguments(p: argparse.ArgumentParser, applies: str = "") -> None:
    """``--episodes``, ``--env-id``, ``--limit`` and ``--batch-size``: what an agent is
    played on, and how many episodes side by side (``applies`` prefixes each help)."""
    p.add_argument(
        "--episodes",
        default="test",
        choices=tuple(EPISODE_SET_SIZES),
        help=f"{applies}episode set (default: test, 500 episodes; dev has 200)",
    )
    p.add_argument(
        "--env-id",
        default=None,
        help=f"{applies}registered env id (default: the agent's own: a checkpoint's env_id, "
        "else Dialog-v1)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help=f"{applies}only the first N episodes of the set (a set of its own)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"{applies}episodes played side by side, their user turns voiced in one batched "
        f"LM call (default: {DEFAULT_BATCH_SIZE})",
    )


def main(args: argparse.Namespace) -> int:
    episode_set = get_episode_set(args.env_id or "Dialog-v1", args.episodes, limit=args.limit)
    results = evaluate_agent(
        args.agent,
        episode_set,
        batch_size=args.batch_size,
        progress=not args.quiet,
        ray=args.ray,
        ray_actors=args.ray_actors,
        agent_options={"base_url": args.base_url} if args.base_url else None,
    )
    header = results["header"]
    out = args.out or default_results_path(header["agent"], episode_set)
    write_results(out, results)
    episodes = results["episodes"]
    success = sum(ep["success"] for ep in episodes) / len(episodes)
    mean_return = sum(ep["return"] for ep in episodes) / len(episodes)
    golds = [ep["metrics"]["mean_gold"] for ep in episodes if "mean_gold" in ep["metrics"]]
    gold = f", mean gold {sum(golds) / len(golds):.3f}" if golds else ""
    print(
        f"wrote {out}: {header['agent']} on {header['episode_set']}, {len(episodes)} "
        f"episodes, success {success:.3f}, mean return {mean_return:.3f}{gold}"
    )
    return 0
