"""``dialog-bench agents``: every agent that loads by name, with what the board knows of it.

Built-in agents and the shipped checkpoints (``agents.shipped_checkpoints``), each with
its paradigm, interface, training budget (from its manifest) and, where a published
results file exists, its test success. Nothing is loaded but configs and manifests.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "agent_rows", "main"]

#: Agents of a checkpoint's ``agent`` kind that fix their paradigm and interface.
_FIXED = {"sb3": ("rl", "act")}


def agent_rows() -> list[tuple[str, str, str, str, str]]:
    """``(name, paradigm, interface, budget, test success)`` of each agent, built-ins first.

    >>> rows = agent_rows()
    >>> rows[0][:3]
    ('expert', 'reference', 'text')
    """
    from agents import AGENTS, shipped_checkpoints
    from agents.checkpoint import read_config
    from dialog_env.entry_points import load_entry_point
    from leaderboard.agent_card import read_budget
    from leaderboard.results import read_results
    from leaderboard.run import PUBLISHED_DIR
    from leaderboard.standings import format_budget

    def published_success(name: str) -> str:
        path = PUBLISHED_DIR / "results" / f"{name}.json"
        if not path.is_file():
            return "-"
        episodes = read_results(path)["episodes"]
        return f"{sum(e['success'] for e in episodes) / len(episodes):.3f}"

    rows = []
    for name, target in AGENTS.items():
        agent_class = load_entry_point(target)
        kinds = (agent_class.paradigm, agent_class.interface)
        rows.append((name, *kinds, "none", published_success(name)))
    for name, path in shipped_checkpoints().items():
        config = read_config(Path(path))
        paradigm, interface = _FIXED.get(
            config.get("agent"), (config.get("paradigm", "sft"), config.get("interface", "text"))
        )
        budget = format_budget(read_budget(path)) or "none"
        rows.append((name, paradigm, interface, budget, published_success(name)))
    return rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "agents",
        help="list the agents that load by name",
        description="List the built-in agents and the shipped checkpoints, which load by "
        "name (load_agent, --agent): paradigm, interface, training budget and test success "
        "on the published leaderboard.",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    rows = [("agent", "paradigm", "interface", "budget", "test success"), *agent_rows()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
