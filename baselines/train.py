"""``dialog-bench train {sft,sb3,ppo}``: the training commands, one module each."""

from __future__ import annotations

import argparse
from importlib import import_module

__all__ = ["TRAINERS", "add_parser"]

#: trainer name -> module with its own ``add_parser(subparsers)`` and ``main(args)``.
TRAINERS = {"sft": "baselines.sft", "sb3": "baselines.sb3_train", "ppo": "baselines.token_ppo"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a baseline agent (sft, sb3, ppo)")
    trainers = p.add_subparsers(dest="trainer", metavar="TRAINER", required=True)
    for module in TRAINERS.values():
        import_module(module).add_parser(trainers)
