"""Configs to command lines and back: one ``--flag`` per field of a trainer's config
dataclass (:func:`add_config_arguments`), the config of parsed flags
(:func:`config_from_args`), and the command line that gives a config again, every flag
resolved (:func:`config_command`): what a manifest records, so that a default changed
later cannot change what the command makes. Also :class:`LoRAOptions`, the LoRA flags
an LM trainer's config inherits, and :func:`run_dir`, where a run writes by default.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "RUNS_DIR",
    "LoRAOptions",
    "add_config_arguments",
    "config_argv",
    "config_command",
    "config_dict",
    "config_from_args",
    "field_default",
    "field_type",
    "init_sha256_field",
    "logdir_field",
    "run_dir",
]

Config = TypeVar("Config")

#: Where a command writes what nobody asked it to write elsewhere: relative to the
#: working directory, never inside the package (a shipped checkpoint is replaced only
#: by an explicit ``--out``).
RUNS_DIR = Path("runs")


def run_dir(name: str) -> Path:
    """The default output directory of a run called ``name``: ``runs/<name>``.

    >>> run_dir("ppo-base").as_posix()
    'runs/ppo-base'
    """
    return RUNS_DIR / name


def init_sha256_field() -> Any:
    """The ``init_sha256`` field of a trainer that starts from weights: the start's
    weights hash that a manifest's command records, refused when the start differs."""
    return dataclasses.field(
        default="",
        metadata={
            "absent_means": "",
            "help": "refuse an init whose weights have another sha256 (a manifest's "
            "command records it; empty: any)",
        },
    )


def logdir_field() -> Any:
    """The ``logdir`` field: TensorBoard folders go to ``runs/tb/<checkpoint name>``,
    never into a checkpoint directory under ``runs/``."""
    return dataclasses.field(
        default=Path("runs/tb"), metadata={"help": "TensorBoard log dir (a folder per run)"}
    )


@dataclasses.dataclass
class LoRAOptions:
    """The LoRA flags an LM trainer's config inherits (``agents.lora``; extra ``[peft]``)."""

    lora: int = dataclasses.field(
        default=0,
        metadata={
            "absent_means": 0,
            "help": "LoRA rank: train adapters on the frozen base (0: all parameters)",
        },
    )
    lora_alpha: float = dataclasses.field(
        default=0.0, metadata={"absent_means": 0.0, "help": "LoRA scale alpha (0: 2 x rank)"}
    )
    lora_dropout: float = dataclasses.field(
        default=0.0, metadata={"absent_means": 0.0, "help": "LoRA dropout"}
    )

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
        default = field_default(f)
        text = f.metadata["help"]
        text = text if default is None else f"{text} (default: {_shown(default)})"
        type_name = field_type(f)
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
            if isinstance(value, list) and field_type(f).startswith("tuple["):
                value = tuple(value)
            values[f.name] = value
    return config_class(**values)


_PARSERS: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str, "Path": Path}
#: ``list[X]`` or ``tuple[X, ...]``: the flag takes one or more X.
_SEQUENCE_RE = re.compile(r"(?:list\[(\w+)\]|tuple\[(\w+), \.\.\.\])")


def field_type(f: dataclasses.Field) -> str:
    """The field's annotation as written (``"list[Path]"``), also without postponed ones."""
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def field_default(f: dataclasses.Field) -> Any:
    """The default of a dataclass field (its factory's value), or None without one."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _shown(default: Any) -> str:
    if isinstance(default, (list, tuple)):
        return " ".join(map(str, default)) or "none"
    return str(default)


def config_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as JSON values (``Path`` as ``str``, tuples as lists).

    >>> @dataclasses.dataclass
    ... class Demo:
    ...     out: Path = Path("runs/x")
    ...     sizes: tuple[int, ...] = (1, 2)
    >>> config_dict(Demo())
    {'out': 'runs/x', 'sizes': [1, 2]}
    """

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def config_argv(config: Any, skip: tuple[str, ...] = ()) -> list[str]:
    """The flags that give ``config`` back through :func:`config_from_args`: every field
    (but ``skip``), defaults included, so that the line means the same config whatever
    the defaults become. A field of None (a default that the trainer resolves) or an empty
    sequence has no flag.

    >>> @dataclasses.dataclass
    ... class Demo:
    ...     batch_size: int = dataclasses.field(default=8, metadata={"help": "rows"})
    ...     fast: bool = dataclasses.field(default=True, metadata={"help": "go fast"})
    ...     sizes: tuple[int, ...] = dataclasses.field(default=(1,), metadata={"help": "sizes"})
    >>> config_argv(Demo(batch_size=3, fast=False))
    ['--batch-size', '3', '--no-fast', '--sizes', '1']
    """
    argv: list[str] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name in skip or value is None or value == [] or value == ():
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


def config_command(prefix: list[str], config: Any, skip: tuple[str, ...] = ()) -> str:
    """The shell line ``prefix`` + :func:`config_argv` (``prefix``: e.g.
    ``["dialog-bench", "train", "ppo"]``), quoted for a POSIX shell."""
    return shlex.join([*prefix, *config_argv(config, skip)])
