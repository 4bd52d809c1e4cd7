"""``dialog-bench train {sft,sb3,ppo,grpo}``: the training commands, one module each.

A trainer whose settings are a config dataclass gets its flags from
:func:`add_config_arguments` and its config back from :func:`config_from_args`: one
``--flag`` per field, so no field is out of the command line's reach.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TypeVar

from dialog_env.entry_points import load_entry_point

__all__ = ["TRAINERS", "add_config_arguments", "add_parser", "config_from_args"]

#: trainer name -> module with its own ``add_parser(subparsers)`` and ``main(args)``.
TRAINERS = {
    "sft": "baselines.sft",
    "sb3": "baselines.sb3_train",
    "ppo": "baselines.token_ppo",
    "grpo": "baselines.grpo",
}

Config = TypeVar("Config")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=f"train a baseline agent ({', '.join(TRAINERS)})")
    trainers = p.add_subparsers(dest="trainer", metavar="TRAINER", required=True)
    for module in TRAINERS.values():
        load_entry_point(f"{module}:add_parser")(trainers)


def add_config_arguments(
    parser: argparse.ArgumentParser, config_class: type, skip: tuple[str, ...] = ()
) -> None:
    """One ``--flag`` per field of the dataclass ``config_class``, with its help and default.

    >>> @dataclasses.dataclass
    ... class Demo:
    ...     batch_size: int = dataclasses.field(default=8, metadata={"help": "rows"})
    ...     fast: bool = dataclasses.field(default=True, metadata={"help": "go fast"})
    >>> parser = argparse.ArgumentParser()
    >>> add_config_arguments(parser, Demo)
    >>> config_from_args(parser.parse_args(["--batch-size", "3", "--no-fast"]), Demo)
    Demo(batch_size=3, fast=False)
    """
    for f in dataclasses.fields(config_class):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        text = f.metadata["help"]
        text = text if f.default is None else f"{text} (default: {f.default})"
        name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if name == "bool":
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=f.default, help=text
            )
        else:
            kind = Path if "Path" in name else {"int": int, "float": float}.get(name, str)
            parser.add_argument(flag, type=kind, default=f.default, help=text)


def config_from_args(args: argparse.Namespace, config_class: type[Config]) -> Config:
    """The ``config_class`` of parsed arguments (fields not given keep their default)."""
    return config_class(
        **{
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(config_class)
            if hasattr(args, f.name)
        }
    )
