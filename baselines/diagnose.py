"""``dialog-bench diagnose``: what an LM agent copies right, slot by slot.

Success says whether an agent served the user; this says where a text agent breaks. On
demonstrations it has not trained on, each agent is given the gold conversation up to
each assistant turn (teacher-forced, greedy) and scored on every value it must copy:

- tool-call arguments (``search.food``, ``book.day``, ...), copied from the user's words;
- message values (the venue ``name`` offered, its ``phone``, ``address``, ``postcode``,
  the booking ``ref``), copied from a tool result, as the user's own parser reads them.

    dialog-bench demos --generator expert --num-episodes 200 --first-seed 900000 \\
        --out runs/demos/diagnose.jsonl
    dialog-bench diagnose baselines/checkpoints/sft-expert baselines/checkpoints/sft-noisy \\
        --demos runs/demos/diagnose.jsonl

Prints one table, one column per agent; ``--json FILE`` writes the figures too.

``--results FILE...`` reads played episodes instead (booking results files, e.g. the
published ones) and counts one failure mode that teacher forcing cannot show: an
assistant message that names a venue (a name of the database's grammar, ``The <word>
<word>``) that no search result of the episode had shown, i.e. a name remembered or made
up rather than read::

    dialog-bench diagnose --results leaderboard/results/Dialog-v1/sft-noisy.json

``--play N`` plays each agent greedily on N train-split episodes (seeds from
``--first-seed``) of an env built with ``--env-kwargs`` and prints its success, e.g.
whether it reads venue names or remembers them::

    dialog-bench diagnose sft-expert --play 64 --env-kwargs '{"venue_names": "shuffled"}'
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["add_parser", "diagnose", "main", "play_train", "unseen_venues"]


def diagnose(agent_paths: list[str], demos_path: str | Path, limit: int | None = None) -> dict:
    """``{agent: {"tool_call": {slot: acc}, "message": {field: acc}}}`` on the demos."""
    from agents import load_agent
    from agents.lm_agent import LMAgent
    from baselines.demos import load_demos
    from baselines.sft_probes import message_copy_accuracy, tool_call_slot_accuracy

    records, _ = load_demos(demos_path)
    demos = list(records)[:limit]
    results = {}
    for path in agent_paths:
        agent = load_agent(path)
        # An LM agent of any interface writes text (the token interface only chops it up).
        if not isinstance(agent, LMAgent) and agent.interface != "text":
            raise ValueError(f"{path}: diagnose needs an agent that writes text")
        results[path] = {
            "tool_call": tool_call_slot_accuracy(agent, demos),
            "message": message_copy_accuracy(agent, demos),
        }
    return results


def play_train(
    agent: str, episodes: int, env_kwargs: dict, first_seed: int = 1_000_000
) -> dict[str, float]:
    """Success and mean return of the greedy ``agent`` on ``episodes`` train-split
    episodes of Dialog-v1 built with ``env_kwargs`` (seeds ``first_seed`` on)."""
    import numpy as np

    from agents import load_agent
    from baselines.demos import train_episodes
    from leaderboard.rollout import AgentMessages, play_episodes

    seeds = range(first_seed, first_seed + episodes)
    records = play_episodes(
        AgentMessages(lambda: load_agent(agent), batch_size=64),
        train_episodes("Dialog-v1", seeds, **env_kwargs),
        progress=False,
    )
    return {
        "episodes": len(records),
        "success": float(np.mean([r["success"] for r in records])),
        "mean_return": float(np.mean([r["return"] for r in records])),
    }


def _venue_name_re():
    import re

    from dialog_env.tasks.booking.generate import NAME_FIRST_WORDS, NAME_SECOND_WORDS

    first, second = "|".join(NAME_FIRST_WORDS), "|".join(NAME_SECOND_WORDS)
    return re.compile(rf"\bThe (?:{first}) (?:{second})\b")


def unseen_venues(path: str | Path) -> dict[str, float | int]:
    """Of a booking results file's episodes: how many failed and succeeded, and how many
    of each had an assistant message naming a venue no earlier search result showed.

    >>> r = unseen_venues("leaderboard/results/Dialog-v1/expert.json")
    >>> r["episodes"], r["failed"], r["succeeded_naming_unseen"]
    (500, 0, 0)
    """
    from dialog_env.tasks.booking.tools import parse_search_result
    from leaderboard.results import read_results

    names = _venue_name_re()
    counts = dict.fromkeys(
        ("episodes", "failed", "failed_naming_unseen", "succeeded_naming_unseen"), 0
    )
    for episode in read_results(path)["episodes"]:
        shown: set[str] = set()
        unseen = False
        for turn in episode["turns"]:
            if turn["role"] == "tool":
                shown |= {v.get("name", "") for v in parse_search_result(turn["text"])[2]}
            elif turn["role"] == "assistant" and not turn["text"].startswith("["):
                unseen |= any(n not in shown for n in names.findall(turn["text"]))
        counts["episodes"] += 1
        outcome = "succeeded" if episode["success"] else "failed"
        counts["failed"] += outcome == "failed"
        counts[f"{outcome}_naming_unseen"] += unseen
    counts["share_of_failures"] = counts["failed_naming_unseen"] / max(1, counts["failed"])
    return counts


def format_table(results: dict) -> str:
    agents = list(results)
    names = [Path(a).name for a in agents]
    rows = sorted(
        {(kind, key) for r in results.values() for kind in r for key in r[kind]},
        key=lambda kv: (kv[0] != "tool_call", kv[1]),
    )
    width = max(len(n) for n in names + ["value"]) + 2
    head = f"{'copied into':<12} {'value':<16}" + "".join(f"{n:>{width}}" for n in names)
    lines = [head, "-" * len(head)]
    for kind, key in rows:
        cells = "".join(
            f"{results[a][kind][key]:>{width}.3f}" if key in results[a][kind] else " " * width
            for a in agents
        )
        lines.append(f"{kind.replace('_', ' '):<12} {key:<16}{cells}")
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diagnose",
        help="per-slot copy accuracy of text agents on held-out demos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("agents", nargs="*", help="text agent checkpoint dirs (or names)")
    p.add_argument("--demos", type=Path, default=None, help="demo JSONL not trained on")
    p.add_argument(
        "--results",
        type=Path,
        nargs="+",
        default=None,
        help="booking results files: count failures that name a venue no result showed",
    )
    p.add_argument("--limit", type=int, default=None, help="use the first N demos")
    p.add_argument("--play", type=int, default=None, help="play N train episodes instead")
    p.add_argument("--env-kwargs", default="{}", help="JSON env kwargs for --play")
    p.add_argument("--first-seed", type=int, default=1_000_000, help="first seed for --play")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.results:
        return _main_results(args)
    if args.play:
        return _main_play(args)
    if not args.agents or args.demos is None:
        print(
            "dialog-bench diagnose: error: give agents and --demos, or --results", file=sys.stderr
        )
        return 2
    try:
        results = diagnose(args.agents, args.demos, args.limit)
    except (OSError, ValueError) as error:
        print(f"dialog-bench diagnose: error: {error}", file=sys.stderr)
        return 2
    print(format_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 0


def _main_results(args: argparse.Namespace) -> int:
    try:
        counts = {str(p): unseen_venues(p) for p in args.results}
    except (OSError, ValueError) as error:
        print(f"dialog-bench diagnose: error: {error}", file=sys.stderr)
        return 2
    head = f"{'results':<28} {'episodes':>8} {'failed':>7} {'of them naming an unseen venue':>31}"
    print(head)
    print("-" * len(head))
    for path, c in counts.items():
        shown = f"{c['failed_naming_unseen']} ({c['share_of_failures']:.2f})"
        print(f"{Path(path).name:<28} {c['episodes']:>8} {c['failed']:>7} {shown:>31}")
    if args.json:
        args.json.write_text(json.dumps(counts, indent=1, sort_keys=True) + "\n")
    return 0


def _main_play(args: argparse.Namespace) -> int:
    from baselines.demos import parse_env_kwargs

    try:
        kwargs = parse_env_kwargs(args.env_kwargs)
        scores = {a: play_train(a, args.play, kwargs, args.first_seed) for a in args.agents}
    except (OSError, ValueError) as error:
        print(f"dialog-bench diagnose: error: {error}", file=sys.stderr)
        return 2
    print(f"{args.play} train episodes, env kwargs {kwargs}")
    for agent, score in scores.items():
        name = Path(agent).name
        print(f"{name:<28} success {score['success']:.3f}  return {score['mean_return']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(scores, indent=1, sort_keys=True) + "\n")
    return 0
