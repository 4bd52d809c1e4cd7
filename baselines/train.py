"""``dialog-bench train {sft,sb3,ppo,grpo,rm}``: the training commands, one module each.

A trainer whose settings are a config dataclass gets its flags from
:func:`baselines.common.config.add_config_arguments` and its config back from
:func:`~baselines.common.config.config_from_args`: one ``--flag`` per field, so no field
is out of the command line's reach. What the trainers share lives in
:mod:`baselines.common`.
"""

from __future__ import annotations

import argparse

from dialog_env.entry_points import load_entry_point

__all__ = ["TRAINERS", "add_parser"]

#: trainer name -> module with its own ``add_parser(subparsers)`` and ``main(args)``.
TRAINERS = {
    "sft": "baselines.sft",
    "sb3": "baselines.sb3_train",
    "ppo": "baselines.token_ppo",
    "grpo": "baselines.grpo",
    "rm": "baselines.reward_model",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=f"train a baseline agent ({', '.join(TRAINERS)})")
    trainers = p.add_subparsers(dest="trainer", metavar="TRAINER", required=True)
    for module in TRAINERS.values():
        load_entry_point(f"{module}:add_parser")(trainers)
