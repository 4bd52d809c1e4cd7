"""``dialog-bench agents``: every agent that loads by name, with what the board knows of it.

Built-in agents and the shipped checkpoints (``agents.shipped_checkpoints``), each with
its paradigm, interface, training budget (from its manifest) and, where a published
results file exists, its test score on each task it plays. Nothing is loaded but configs
and manifests.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "agent_rows", "main"]

#: A checkpoint kind's paradigm and interface where its config names none (an SB3 policy:
#: RL through the act interface; a modular one says ``"modular"``).
_KIND_DEFAULTS = {"sb3": ("rl", "act")}


def agent_rows() -> list[tuple[str, str, str, str, str]]:
    """``(name, paradigm, interface, budget, published)`` of each agent, built-ins first;
    ``published``: per env id it plays (``leaderboard.run.RUN_ENV_IDS``) its test score on
    the published board (success, or gold on a judged task), ``-`` where none is.

    >>> rows = {row[0]: row for row in agent_rows()}
    >>> rows["expert"][:3], rows["expert"][4]
    (('expert', 'reference', 'text'), 'Dialog-v1 success 1.000')
    >>> rows["chat-expert"][4]
    'Dialog-Chat-v1 gold 1.000'
    """
    from agents import AGENTS, agent_tasks, shipped_checkpoints
    from agents.checkpoint import read_config
    from dialog_env.entry_points import load_entry_point
    from dialog_env.registration import task_of
    from leaderboard.agent_card import read_budget
    from leaderboard.budget import format_budget
    from leaderboard.episodes import RUN_ENV_IDS
    from leaderboard.publish import PUBLISHED_DIR, published_path
    from leaderboard.results import read_results

    def published(name: str, source) -> str:
        tasks = agent_tasks(source)
        scores = []
        for env_id in RUN_ENV_IDS:
            path = published_path(PUBLISHED_DIR, env_id, name)
            if task_of(env_id) not in tasks or not path.is_file():
                continue
            episodes = read_results(path)["episodes"]
            if all("mean_gold" in e["metrics"] for e in episodes):
                what, score = "gold", sum(e["metrics"]["mean_gold"] for e in episodes)
            else:
                what, score = "success", sum(e["success"] for e in episodes)
            scores.append(f"{env_id} {what} {score / len(episodes):.3f}")
        return "; ".join(scores) or "-"

    rows = []
    for name, target in AGENTS.items():
        agent_class = load_entry_point(target)
        kinds = (agent_class.paradigm, agent_class.interface)
        rows.append((name, *kinds, "none", published(name, name)))
    for name, path in shipped_checkpoints().items():
        config = read_config(Path(path))
        default = _KIND_DEFAULTS.get(config.get("agent"), ("sft", "text"))
        paradigm = config.get("paradigm", default[0])
        interface = config.get("interface", default[1])
        base = config.get("base") if isinstance(config.get("base"), str) else None
        budget = format_budget(
            read_budget(path), paradigm, base=base, no_start="its budget unstated"
        )
        rows.append((name, paradigm, interface, budget, published(name, path)))
    return rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "agents",
        help="list the agents that load by name",
        description="List the built-in agents and the shipped checkpoints, which load by "
        "name (load_agent, --agent): paradigm, interface, training budget and test score "
        "on the published leaderboard (success; gold on the chat task).",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    rows = [("agent", "paradigm", "interface", "budget", "published test score"), *agent_rows()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
