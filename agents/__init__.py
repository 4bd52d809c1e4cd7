"""Agents for dialog-bench: the protocol, the reference agents, and ``load_agent``.

>>> from agents import load_agent
>>> load_agent("expert").paradigm
'reference'
>>> load_agent("sft-expert").paradigm  # a shipped checkpoint, by name from anywhere
'sft'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.base import INTERFACES, PARADIGMS, Agent, BaseAgent
from dialog_env.entry_points import load_entry_point

__all__ = [
    "AGENTS",
    "INTERFACES",
    "PARADIGMS",
    "Agent",
    "BaseAgent",
    "agent_tasks",
    "checkpoint_dir",
    "load_agent",
    "shipped_checkpoints",
]

#: Built-in agents by name -> "module:class".
AGENTS = {
    "chat-expert": "agents.chat_expert:ChatExpertAgent",
    "expert": "agents.expert:ExpertAgent",
    "random": "agents.random_agent:RandomAgent",
    "noisy-expert": "agents.noisy_expert:NoisyExpertAgent",
    "careless-expert": "agents.careless_expert:CarelessExpert",
    "careless-chat-expert": "agents.careless_chat_expert:CarelessChatExpert",
}


def shipped_checkpoints(root: Path | None = None) -> dict[str, Path]:
    """The checkpoints shipped as package data (``baselines/checkpoints/NAME``), by name;
    or those under ``root``: directories with a ``manifest.json`` or ``config.json``.

    Found where the installed ``baselines`` package lies (located, not imported: no
    training code runs), so they load by name from any directory and from a
    non-editable install.
    """
    from importlib.util import find_spec

    if root is None:
        spec = find_spec("baselines")
        if spec is None or not spec.submodule_search_locations:
            return {}
        root = Path(next(iter(spec.submodule_search_locations))) / "checkpoints"
    if not root.is_dir():
        return {}
    markers = ("manifest.json", "config.json")
    return {
        d.name: d
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".") and any((d / m).is_file() for m in markers)
    }


def agent_tasks(name_or_path: str | Path) -> tuple[str, ...]:
    """The tasks an agent plays (a built-in agent's class says; a checkpoint's config
    names its env id), without building it."""
    key = str(name_or_path)
    if key in AGENTS:
        return tuple(load_entry_point(AGENTS[key]).tasks)
    from agents.checkpoint import checkpoint_task

    return (checkpoint_task(checkpoint_dir(key)),)


def checkpoint_dir(key: str | Path) -> Path:
    """``key`` as a directory path, or the shipped checkpoint of that name if it is not one."""
    key = str(key)
    path = Path(key)
    shipped = shipped_checkpoints()
    return shipped[key] if not path.is_dir() and key in shipped else path


def load_agent(name_or_path: str | Path, **options: Any) -> Agent:
    """An agent: a built-in one by name (``"expert"``, ``"random"``, ``"noisy-expert"``),
    any local chat model as ``"hf:PATH"`` (a transformers directory, prompted with its
    chat template: :mod:`agents.hf_chat`), any OpenAI-compatible endpoint's model as
    ``"openai:MODEL"`` (:mod:`agents.openai_agent`), one saved in a checkpoint directory
    (a path), or a shipped checkpoint by name (``"sft-expert"``: see
    :func:`shipped_checkpoints`), in that order. ``options`` go to an ``hf:`` or
    ``openai:`` agent's constructor (e.g. ``base_url=``); other agents take none."""
    key = str(name_or_path)
    if key.startswith("hf:"):
        from agents.hf_chat import HFChatAgent

        return HFChatAgent.from_pretrained(key[len("hf:") :], **options)
    if key.startswith("openai:"):
        from agents.openai_agent import OpenAIChatAgent

        return OpenAIChatAgent(key[len("openai:") :], **options)
    if options:
        raise ValueError(
            f"agent {key!r} takes no options ({', '.join(sorted(options))}): only hf: and "
            "openai: agents do"
        )
    if key in AGENTS:
        return load_entry_point(AGENTS[key])()
    path = checkpoint_dir(key)
    if path.is_dir():
        from agents.checkpoint import load_checkpoint

        return load_checkpoint(path)
    raise ValueError(
        f"unknown agent {key!r}: give a built-in agent ({', '.join(sorted(AGENTS))}), "
        "hf:PATH for a local chat model, openai:MODEL for an endpoint, a shipped checkpoint "
        f"({', '.join(shipped_checkpoints()) or 'none installed'}) or a checkpoint directory"
    )
