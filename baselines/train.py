"""``dialog-bench train {sft,sb3,ppo,grpo,rm,tagger}``: the training commands, one module each.

A trainer whose settings are a config dataclass gets its flags from
:func:`baselines.common.config.add_config_arguments` and its config back from
:func:`~baselines.common.config.config_from_args`: one ``--flag`` per field, so no field
is out of the command line's reach. What the trainers share lives in
:mod:`baselines.common`.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from dialog_env.entry_points import load_entry_point

__all__ = [
    "CONFIGS",
    "NOT_DECIDING",
    "TRAINERS",
    "add_parser",
    "parse_train_command",
    "rebuild_differences",
]

#: trainer name -> module with its own ``add_parser(subparsers)`` and ``main(args)``.
TRAINERS = {
    "sft": "baselines.sft",
    "sb3": "baselines.sb3_train",
    "ppo": "baselines.token_ppo",
    "grpo": "baselines.grpo",
    "rm": "baselines.reward_model",
    "tagger": "baselines.tagger",
}
#: trainer name -> its config dataclass.
CONFIGS = {
    "sft": "baselines.sft:SFTConfig",
    "sb3": "baselines.sb3_train:SB3Config",
    "ppo": "baselines.ppo_config:PPOConfig",
    "grpo": "baselines.grpo_config:GRPOConfig",
    "rm": "baselines.reward_model:RMConfig",
    "tagger": "baselines.tagger:TaggerConfig",
}
#: Config fields that decide nothing of the weights (where logs go, progress bars).
NOT_DECIDING = ("logdir", "progress")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=f"train a baseline agent ({', '.join(TRAINERS)})")
    trainers = p.add_subparsers(dest="trainer", metavar="TRAINER", required=True)
    for module in TRAINERS.values():
        load_entry_point(f"{module}:add_parser")(trainers)


def parse_train_command(command: str) -> Any:
    """The config that the command line ``command`` (``dialog-bench train TRAINER ...``,
    as a manifest records it) gives a trainer, parsed as ``dialog-bench`` parses it."""
    from baselines.common.config import config_from_args

    words = shlex.split(command)
    if words[:2] != ["dialog-bench", "train"] or len(words) < 3 or words[2] not in TRAINERS:
        raise ValueError(f"not a `dialog-bench train TRAINER` command: {command[:80]!r}")
    parser = argparse.ArgumentParser(prog="dialog-bench")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(words[1:])
    return config_from_args(args, load_entry_point(CONFIGS[words[2]]))


def rebuild_differences(manifest: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Where the config that a manifest's ``command`` gives today differs from the
    ``config`` it recorded: ``{field: (recorded, rebuilt)}``. A field added after the
    run counts as recorded at its metadata's ``absent_means`` (the behaviour before it
    existed, e.g. ``lora`` 0, ``target_kl`` 0: no early stop), or ``"<absent>"`` when it
    has none. Fields in :data:`NOT_DECIDING` are left out; ``{}`` means the command
    rebuilds the config."""
    import dataclasses

    from baselines.common.config import config_dict

    config = parse_train_command(manifest["command"])
    rebuilt = config_dict(config)
    before = {
        f.name: f.metadata["absent_means"]
        for f in dataclasses.fields(config)
        if "absent_means" in f.metadata
    }
    recorded = {**before, **(manifest.get("config") or {})}
    return {
        name: (recorded.get(name, "<absent>"), rebuilt.get(name, "<absent>"))
        for name in sorted(set(recorded) | set(rebuilt))
        if name not in NOT_DECIDING and recorded.get(name, "<absent>") != rebuilt.get(name)
    }
