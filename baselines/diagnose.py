"""``dialog-bench diagnose``: what an LM agent copies right, slot by slot.

Success says whether an agent served the user; this says where a text agent breaks. On
demonstrations it has not trained on, each agent is given the gold conversation up to
each assistant turn (teacher-forced, greedy) and scored on every value it must copy:

- tool-call arguments (``search.food``, ``book.day``, ...), copied from the user's words;
- message values (the venue ``name`` offered, its ``phone``, ``address``, ``postcode``,
  the booking ``ref``), copied from a tool result, as the user's own parser reads them.

    dialog-bench demos --generator expert --episodes 200 --first-seed 900000 \\
        --out runs/demos/diagnose.jsonl
    dialog-bench diagnose baselines/checkpoints/sft-expert baselines/checkpoints/sft-noisy \\
        --demos runs/demos/diagnose.jsonl

Prints one table, one column per agent; ``--json FILE`` writes the figures too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["add_parser", "diagnose", "main"]


def diagnose(agent_paths: list[str], demos_path: str | Path, limit: int | None = None) -> dict:
    """``{agent: {"tool_call": {slot: acc}, "message": {field: acc}}}`` on the demos."""
    from agents import load_agent
    from agents.lm_agent import LMAgent
    from baselines.demos import load_demos
    from baselines.sft import message_copy_accuracy, tool_call_slot_accuracy

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
    p.add_argument("agents", nargs="+", help="text agent checkpoint dirs (or names)")
    p.add_argument("--demos", type=Path, required=True, help="demo JSONL not trained on")
    p.add_argument("--limit", type=int, default=None, help="use the first N demos")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        results = diagnose(args.agents, args.demos, args.limit)
    except (OSError, ValueError) as error:
        print(f"dialog-bench diagnose: error: {error}", file=sys.stderr)
        return 2
    print(format_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 0
