"""Agents for dialog-bench: the protocol, the reference agents, and ``load_agent``.

>>> from agents import load_agent
>>> load_agent("expert").paradigm
'reference'
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from agents.base import INTERFACES, PARADIGMS, Agent, BaseAgent

__all__ = ["AGENTS", "INTERFACES", "PARADIGMS", "Agent", "BaseAgent", "load_agent"]

#: Built-in agents by name -> "module:class".
AGENTS = {
    "expert": "agents.expert:ExpertAgent",
    "random": "agents.random_agent:RandomAgent",
    "noisy-expert": "agents.noisy_expert:NoisyExpertAgent",
}


def load_agent(name_or_path: str | Path) -> Agent:
    """A built-in agent by name (``"expert"``, ``"random"``) or one saved in a directory."""
    key = str(name_or_path)
    if key in AGENTS:
        module, cls = AGENTS[key].split(":")
        return getattr(import_module(module), cls)()
    path = Path(key)
    if path.is_dir():
        from agents.checkpoint import load_checkpoint

        return load_checkpoint(path)
    raise ValueError(
        f"unknown agent {key!r}: give one of {', '.join(sorted(AGENTS))} or a checkpoint directory"
    )
