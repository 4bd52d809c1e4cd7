"""What a results header says about an agent: name, paradigm, interface, model hash, budget.

The model hash identifies what played: for a checkpoint directory, the sha256 over its
files (relative path and content hash of each, in sorted order); for a built-in agent,
the sha256 of the source file of its class; for an endpoint (``openai:MODEL``), whose
weights the board cannot see, the agent's own ``model_sha256`` of what it declared.
The training budget is read from the checkpoint's ``manifest.json`` (its ``budget``
object of non-negative counts, e.g. ``env_steps``, ``demo_episodes``, ``tokens``,
``wall_time_s``); built-in agents are untrained and have the empty budget. Nothing is
executed or unpickled here: the manifest is read as JSON.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dialog_env.bounded_json import read_json_file
from dialog_env.lm.model_files import directory_sha256, file_sha256

__all__ = [
    "ENTRY_NAME",
    "MAX_BUDGET",
    "AgentCard",
    "check_entry_name",
    "describe_agent",
    "manifest_budget",
    "read_budget",
]

MANIFEST = "manifest.json"
#: A manifest larger than this is refused unread.
MAX_MANIFEST_BYTES = 1 << 20
#: Every budget count is below this (the results schema's bound): a figure any renderer
#: can print and plot, where 1e308 or a 400-digit integer broke every page.
MAX_BUDGET = 1e15
#: What an agent or leaderboard entry may be called (the schema's ``header.agent``).
ENTRY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
_BUDGET_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_INTEGER_BUDGET_KEYS = ("env_steps", "demo_episodes", "tokens")


@dataclass(frozen=True)
class AgentCard:
    """The header fields that describe an agent."""

    name: str
    paradigm: str
    interface: str
    model_sha256: str
    budget: Mapping[str, float] = field(default_factory=dict)


def read_budget(checkpoint_dir: str | Path) -> dict[str, float]:
    """The ``budget`` of a checkpoint's manifest, checked; ``{}`` when there is no manifest.

    Each count is a finite number in ``[0, MAX_BUDGET)`` (``env_steps``, ``demo_episodes``
    and ``tokens`` whole numbers), as the results schema requires of a header's budget.

    >>> read_budget("/nonexistent")
    {}
    """
    path = Path(checkpoint_dir) / MANIFEST
    if not path.is_file():
        return {}
    return manifest_budget(read_json_file(path, MAX_MANIFEST_BYTES), path)


def manifest_budget(manifest: object, path: str | Path = MANIFEST) -> dict[str, float]:
    """The checked ``budget`` of a parsed manifest (:func:`read_budget`'s checks; ``path``
    only names the file in errors), for a reader that needs the rest of it too.

    An SFT->RL manifest's ``start_budget`` (its start's budget, an object of counts) comes
    back flattened into ``start_<key>`` counts, as a results header holds them.

    >>> manifest_budget({"budget": {"env_steps": 10, "start_budget": {"trained_tokens": 5}}})
    {'env_steps': 10, 'start_trained_tokens': 5}
    """
    budget = manifest.get("budget", {}) if isinstance(manifest, dict) else None
    if not isinstance(budget, dict):
        raise ValueError(f"{path}: 'budget' must be an object of non-negative counts")
    start = budget.get("start_budget")
    if isinstance(start, dict):  # SFT->RL: the start's budget, flattened to start_* counts
        budget = {k: v for k, v in budget.items() if k != "start_budget"}
        budget.update({f"start_{k}": v for k, v in start.items()})
    if len(budget) > 16:
        raise ValueError(f"{path}: budget has {len(budget)} entries, more than 16")
    checked: dict[str, float] = {}
    for key, value in budget.items():
        if not _BUDGET_KEY.fullmatch(str(key)):
            raise ValueError(f"{path}: budget key {key!r} is not a lower_snake_case name")
        number = not isinstance(value, bool) and isinstance(value, (int, float))
        if not number or not 0 <= value < MAX_BUDGET:
            raise ValueError(
                f"{path}: budget {key} must be a non-negative number below 1e15, got {value!r}"
            )
        if key in _INTEGER_BUDGET_KEYS and value != int(value):
            raise ValueError(f"{path}: budget {key} must be a whole number, got {value!r}")
        checked[key] = int(value) if key in _INTEGER_BUDGET_KEYS else value
    return checked


def describe_agent(agent, source: str | Path) -> AgentCard:
    """The card of ``agent``, loaded from ``source`` (a built-in name or a checkpoint dir)."""
    from agents import INTERFACES, PARADIGMS, checkpoint_dir

    paradigm = getattr(agent, "paradigm", None)
    interface = getattr(agent, "interface", None)
    if paradigm not in PARADIGMS:
        raise ValueError(
            f"agent {source!s} declares paradigm {paradigm!r}; the leaderboard "
            f"knows {', '.join(PARADIGMS)}"
        )
    if interface not in INTERFACES:
        raise ValueError(
            f"agent {source!s} declares interface {interface!r}; the "
            f"leaderboard knows {', '.join(INTERFACES)}"
        )
    # An agent loaded from a plain model directory (``hf:PATH``) names it: that is what played.
    # A shipped checkpoint named by its name is its directory (``load_agent`` did the same).
    path = Path(getattr(agent, "source_directory", None) or checkpoint_dir(source))
    if path.is_dir():
        name, model_sha256, budget = path.resolve().name, directory_sha256(path), read_budget(path)
        # an agent built of several directories (best-of-n: base LM and reward model) says
        model_sha256 = getattr(agent, "model_sha256", None) or model_sha256
    else:
        name = str(getattr(agent, "name", source))
        # an endpoint agent (``openai:MODEL``) hashes what it asked for: no file is what ran
        model_sha256 = getattr(agent, "model_sha256", None) or file_sha256(
            Path(inspect.getsourcefile(type(agent)))
        )
        budget = {}
    return AgentCard(check_entry_name(name), paradigm, interface, model_sha256, budget)


def check_entry_name(name: str) -> str:
    """``name`` if it is a valid agent or entry name, else a ``ValueError`` that says why.

    The whole name must match: ``"expert\\n"`` is refused (a pattern's ``$`` alone would
    let a final newline through, and a look-alike second ``expert`` onto the board).

    >>> check_entry_name("sft-rl.v2")
    'sft-rl.v2'
    >>> check_entry_name("expert\\n")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: name 'expert\\n' must be 1-64 letters, digits or _.+- and start with ...
    """
    if not isinstance(name, str) or not ENTRY_NAME.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise ValueError(
            f"name {shown} must be 1-64 letters, digits or _.+- and start with a letter or digit"
        )
    return name
