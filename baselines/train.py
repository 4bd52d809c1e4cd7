"""``dialog-bench train {sft,sb3,ppo,grpo,rm}``: the training commands, one module each.

A trainer whose settings are a config dataclass gets its flags from
:func:`add_config_arguments` and its config back from :func:`config_from_args`: one
``--flag`` per field, so no field is out of the command line's reach.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dialog_env.entry_points import load_entry_point

__all__ = ["TRAINERS", "LoRAOptions", "add_config_arguments", "add_parser", "config_from_args"]

#: trainer name -> module with its own ``add_parser(subparsers)`` and ``main(args)``.
TRAINERS = {
    "sft": "baselines.sft",
    "sb3": "baselines.sb3_train",
    "ppo": "baselines.token_ppo",
    "grpo": "baselines.grpo",
    "rm": "baselines.reward_model",
}

Config = TypeVar("Config")


@dataclasses.dataclass
class LoRAOptions:
    """The LoRA flags an LM trainer's config inherits (``agents.lora``; extra ``[peft]``)."""

    lora: int = dataclasses.field(
        default=0,
        metadata={"help": "LoRA rank: train adapters on the frozen base (0: all parameters)"},
    )
    lora_alpha: float = dataclasses.field(
        default=0.0, metadata={"help": "LoRA scale alpha (0: 2 x rank)"}
    )
    lora_dropout: float = dataclasses.field(default=0.0, metadata={"help": "LoRA dropout"})

    def wrap(self, model: Any) -> Any:
        """``model`` with LoRA adapters when ``lora`` > 0 (only they train), else itself."""
        if self.lora < 0:
            raise ValueError(f"--lora must be a rank >= 1 (or 0 for none), got {self.lora}")
        if not self.lora:
            return model
        from agents.lora import add_lora

        if self.lora_alpha < 0:
            raise ValueError(f"--lora-alpha must be >= 0 (0: 2 x rank), got {self.lora_alpha}")
        return add_lora(model, self.lora, self.lora_alpha or None, self.lora_dropout)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=f"train a baseline agent ({', '.join(TRAINERS)})")
    trainers = p.add_subparsers(dest="trainer", metavar="TRAINER", required=True)
    for module in TRAINERS.values():
        load_entry_point(f"{module}:add_parser")(trainers)


def add_config_arguments(
    parser: argparse.ArgumentParser, config_class: type, skip: tuple[str, ...] = ()
) -> None:
    """One ``--flag`` per field of the dataclass ``config_class``, with its help and default.

    A field's type picks the flag's: ``bool`` gives ``--flag/--no-flag``, ``int``,
    ``float``, ``str`` and ``Path`` (also ``... | None``) parse as such, ``list[X]`` and
    ``tuple[X, ...]`` take one or more values. The field's metadata holds its ``help``
    and, where needed, ``choices``, ``required`` (no default on the command line) and
    ``aliases`` (further flag names, kept for old command lines).

    >>> @dataclasses.dataclass
    ... class Demo:
    ...     batch_size: int = dataclasses.field(default=8, metadata={"help": "rows"})
    ...     fast: bool = dataclasses.field(default=True, metadata={"help": "go fast"})
    ...     sizes: tuple[int, ...] = dataclasses.field(default=(1,), metadata={"help": "sizes"})
    >>> parser = argparse.ArgumentParser()
    >>> add_config_arguments(parser, Demo)
    >>> argv = ["--batch-size", "3", "--no-fast", "--sizes", "4", "5"]
    >>> config_from_args(parser.parse_args(argv), Demo)
    Demo(batch_size=3, fast=False, sizes=(4, 5))
    """
    for f in dataclasses.fields(config_class):
        if f.name in skip:
            continue
        flags = ["--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ())]
        default = _default(f)
        text = f.metadata["help"]
        text = text if default is None else f"{text} (default: {_shown(default)})"
        type_name = _type_name(f)
        options: dict[str, Any] = {"dest": f.name, "help": text}
        if f.metadata.get("required"):
            options["required"] = True
        else:
            options["default"] = default
        if "choices" in f.metadata:
            options["choices"] = f.metadata["choices"]
        if type_name == "bool":
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, **options)
            continue
        many = _SEQUENCE_RE.fullmatch(type_name)
        if many:
            type_name, options["nargs"] = many[1] or many[2], "+"
        parser.add_argument(*flags, type=_PARSERS.get(type_name.split(" |")[0], str), **options)


def config_from_args(args: argparse.Namespace, config_class: type[Config]) -> Config:
    """The ``config_class`` of parsed arguments (fields not given keep their default)."""
    values = {}
    for f in dataclasses.fields(config_class):
        if hasattr(args, f.name):
            value = getattr(args, f.name)
            if isinstance(value, list) and _type_name(f).startswith("tuple["):
                value = tuple(value)
            values[f.name] = value
    return config_class(**values)


_PARSERS: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str, "Path": Path}
#: ``list[X]`` or ``tuple[X, ...]``: the flag takes one or more X.
_SEQUENCE_RE = re.compile(r"(?:list\[(\w+)\]|tuple\[(\w+), \.\.\.\])")


def _type_name(f: dataclasses.Field) -> str:
    """The field's annotation as written (``"list[Path]"``), also without postponed ones."""
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _shown(default: Any) -> str:
    if isinstance(default, (list, tuple)):
        return " ".join(map(str, default)) or "none"
    return str(default)
