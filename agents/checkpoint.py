"""Checkpoint directories: weights in safetensors, config and manifest in JSON, no pickle.

Every trained agent is a directory::

    config.json        what to build: {"agent": KIND, "paradigm", "interface", ...}
    model.safetensors  the weights
    manifest.json      how it was made: command, seed, data sha256, budget, wall time

``load_checkpoint(path)`` reads ``config.json`` and hands the directory to the loader of
its kind. Files that only pickle can read (``*.zip`` of SB3, ``*.pt``, ``*.bin``,
``*.pkl``) are refused before anything is opened: an outsider's pickle can run code. So
is a directory with a link that leads outside it, or more files or bytes than the
limits allow, and a config with any field that is unknown to its kind or out of bounds
(:data:`CONFIG_FIELDS`): nothing is built from a config that has not been checked.

A config that names another directory (a LoRA adapter's ``base_model``, a best-of-n's
``base``) names a shipped one by its name or a folder inside the checkpoint
(:func:`resolve_named_dir`); nothing outside the checkpoint is opened, not even to say
that it is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from agents.base import INTERFACES, PARADIGMS
from dialog_env.bounded_json import read_json_file
from dialog_env.entry_points import load_entry_point
from dialog_env.registration import TEXT_ENV_IDS, task_of

__all__ = [
    "CONFIG",
    "CONFIG_FIELDS",
    "KINDS",
    "MANIFEST",
    "MAX_NEW_TOKENS",
    "WEIGHTS",
    "check_config",
    "checkpoint_task",
    "load_checkpoint",
    "read_config",
    "resolve_named_dir",
]

CONFIG, MANIFEST, WEIGHTS = "config.json", "manifest.json", "model.safetensors"
#: A checkpoint's ``config.json`` larger than this is refused unread.
MAX_CONFIG_BYTES = 1 << 20

#: agent kind -> "module:class" with a ``load(path)`` classmethod.
KINDS = {
    "sb3": "agents.sb3_agent:SB3Agent",
    "lm": "agents.lm_agent:LMAgent",
    "hf-chat": "agents.hf_chat:HFChatAgent",
    "best-of-n": "agents.best_of_n:BestOfNAgent",
}


def _equals(value: Any) -> Callable[[Any], bool]:
    return lambda v: type(v) is type(value) and v == value


def _one_of(values: tuple) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in values


def _int_in(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _layer_widths(v: Any) -> bool:
    return (
        isinstance(v, list)
        and 1 <= len(v) <= MAX_SB3_LAYERS
        and all(_int_in(1, MAX_SB3_WIDTH)(n) for n in v)
    )


def _sibling_name(v: Any) -> bool:
    """A directory's name (a shipped checkpoint's, or a folder's inside the checkpoint),
    never a path."""
    return (
        isinstance(v, str)
        and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}", v) is not None
        and v not in (".", "..")
    )


def _sha256_hex(v: Any) -> bool:
    return isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)


def _names(v: Any) -> bool:
    return (
        isinstance(v, list)
        and len(v) <= 1000
        and all(isinstance(n, str) and 0 < len(n) <= 100 for n in v)
    )


#: The most candidate replies a best-of-n agent may be configured to draw.
MAX_BEST_OF_N = 64

#: The longest message an LM agent may be configured to write, in tokens.
MAX_NEW_TOKENS = 1024
#: An SB3 policy's layers: at most this many, each at most this wide (two 2048-wide
#: layers are 4M weights per net; net_arch [200000, 200000] asked for 160 GB).
MAX_SB3_LAYERS, MAX_SB3_WIDTH = 8, 2048
SB3_ALGOS = ("ppo", "a2c", "dqn")
SB3_ACTIVATIONS = ("tanh", "relu")
#: What reads user turns for an SB3 policy's tracker: the parser, or the shipped tagger.
SB3_NLUS = ("rule", "tagger")

#: Every field a kind's ``config.json`` may hold: name -> (required, check, what it must
#: be). A field not listed is refused too: nothing in a config goes unchecked.
CONFIG_FIELDS: dict[str, dict[str, tuple[bool, Callable[[Any], bool], str]]] = {
    "sb3": {
        "agent": (True, _equals("sb3"), '"sb3"'),
        "algo": (True, _one_of(SB3_ALGOS), f"one of {', '.join(SB3_ALGOS)}"),
        "net_arch": (
            True,
            _layer_widths,
            f"a list of 1-{MAX_SB3_LAYERS} layer widths, each an integer in 1-{MAX_SB3_WIDTH}",
        ),
        "activation": (True, _one_of(SB3_ACTIVATIONS), f"one of {', '.join(SB3_ACTIVATIONS)}"),
        "observation": (False, _equals("state"), '"state"'),
        "state_features": (True, _names, "a list of feature names"),
        "assistant_acts": (True, _names, "a list of act names"),
        "paradigm": (
            False,
            _one_of(("rl", "modular")),
            '"rl", or "modular" with nlu "tagger" (an SB3 policy is trained by RL)',
        ),
        "interface": (False, _equals("act"), '"act" (an SB3 policy picks acts)'),
        # a modular pipeline: the tracker reads user turns with the shipped slot tagger
        "nlu": (False, _one_of(SB3_NLUS), f"one of {', '.join(SB3_NLUS)}"),
        "nlu_sha256": (False, _sha256_hex, "64 lowercase hex digits"),
    },
    "lm": {
        "agent": (True, _equals("lm"), '"lm"'),
        "paradigm": (False, _one_of(PARADIGMS), f"one of {', '.join(PARADIGMS)}"),
        "interface": (False, _one_of(INTERFACES), f"one of {', '.join(INTERFACES)}"),
        "max_new_tokens": (
            False,
            _int_in(1, MAX_NEW_TOKENS),
            f"an integer in 1-{MAX_NEW_TOKENS}",
        ),
        "spell_codes": (False, lambda v: isinstance(v, bool), "true or false"),
        # a LoRA checkpoint (agents.lora): adapter/ instead of lm/, and the base it adapts
        "base_model": (
            False,
            lambda v: isinstance(v, str) and 0 < len(v) <= 4096,
            '"tiny", a shipped checkpoint\'s name or a folder inside the checkpoint',
        ),
        "base_sha256": (False, _sha256_hex, "64 lowercase hex digits"),
        # the env it was trained for (`train sft|grpo --env-id`) and is evaluated on
        # (absent: Dialog-v1)
        "env_id": (False, _one_of(TEXT_ENV_IDS), f"one of {', '.join(TEXT_ENV_IDS)}"),
    },
    "hf-chat": {  # a chat model in lm/, prompted with its chat template (agents.hf_chat)
        "agent": (True, _equals("hf-chat"), '"hf-chat"'),
        "paradigm": (False, _one_of(PARADIGMS), f"one of {', '.join(PARADIGMS)}"),
        "interface": (False, _equals("text"), '"text"'),
        "temperature": (
            False,
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 5,
            "a number in 0-5 (0: greedy)",
        ),
        "max_new_tokens": (False, _int_in(1, MAX_NEW_TOKENS), f"an integer in 1-{MAX_NEW_TOKENS}"),
        "system_prompt": (
            False,
            lambda v: isinstance(v, str) and len(v) <= 20_000,
            "a string of at most 20000 characters",
        ),
        "tool_role": (False, _one_of(("user", "tool")), '"user" or "tool"'),
    },
    "best-of-n": {  # agents.best_of_n: candidates of a sibling LM checkpoint, ranked by the RM
        "agent": (True, _equals("best-of-n"), '"best-of-n"'),
        "base": (
            True,
            _sibling_name,
            "the name of a shipped checkpoint or of a folder inside the checkpoint",
        ),
        "n": (False, _int_in(1, MAX_BEST_OF_N), f"an integer in 1-{MAX_BEST_OF_N}"),
        "temperature": (
            False,
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 5,
            "a number in (0, 5]",
        ),
        "paradigm": (False, _equals("best-of-n"), '"best-of-n"'),
        "interface": (False, _equals("text"), '"text"'),
        "env_id": (False, _one_of(TEXT_ENV_IDS), f"one of {', '.join(TEXT_ENV_IDS)}"),
    },
}


def checkpoint_task(directory: str | Path) -> str:
    """The task a checkpoint plays: that of its config's ``env_id`` (``"Dialog-v1"``, the
    booking task, when it names none; SB3 policies play booking through the act ids)."""
    config = read_config(directory)
    return task_of(config.get("env_id", "Dialog-v1"))


def resolve_named_dir(
    directory: str | Path, field: str, name: str, shipped: Mapping[str, Path]
) -> Path:
    """The directory that ``name`` (the value of config field ``field``) names: a shipped
    one by its key in ``shipped``, else a folder inside the checkpoint ``directory``.

    Anything else (an absolute path, ``..``, ``~``, a folder that is not there) gets one
    and the same ``ValueError``, decided before anything outside ``directory`` is looked
    at: the answer says nothing of what exists elsewhere. Links inside a checkpoint that
    lead outside it are refused earlier (:func:`read_config`).
    """
    directory = Path(directory)
    if name in shipped:
        return Path(shipped[name])
    rel = PurePosixPath(name)
    inside = (
        bool(name)
        and "\\" not in name
        and "\x00" not in name
        and not rel.is_absolute()
        and not name.startswith("~")
        and all(part not in ("..", ".") for part in rel.parts)
    )
    if inside:
        path = directory.joinpath(*rel.parts)
        inside = path.resolve().is_relative_to(directory.resolve()) and path.is_dir()
    if not inside:
        names = ", ".join(sorted(shipped)) or "none"
        raise ValueError(
            f"{directory / CONFIG}: {field} {name[:80]!r} names neither a shipped directory "
            f"({names}) nor a folder inside the checkpoint"
        )
    return path


def check_config(config: Any, path: Path) -> dict[str, Any]:
    """``config`` if it is a valid config of a known kind, else a one-line ``ValueError``."""
    if not isinstance(config, dict) or not isinstance(config.get("agent"), str):
        config = {}  # e.g. "agent": [] (not a name: no lookup of an unhashable value)
    if config.get("agent") not in KINDS:
        raise ValueError(
            f'{path} must name its agent kind as "agent": one of {", ".join(sorted(KINDS))}'
        )
    fields = CONFIG_FIELDS[config["agent"]]
    for name, value in config.items():
        if name not in fields:
            raise ValueError(
                f"{path}: unknown field {str(name)[:40]!r} (a {config['agent']} config has "
                f"{', '.join(fields)})"
            )
        _, check, what = fields[name]
        if not check(value):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise ValueError(f"{path}: {name} must be {what}, got {shown}")
    missing = [name for name, (required, _, _) in fields.items() if required and name not in config]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    return config


def read_config(directory: str | Path) -> dict[str, Any]:
    """The checked ``config.json`` of a checkpoint directory.

    First the directory as a whole (:func:`~dialog_env.lm.model_files.checked_files`):
    no file outside it reachable through a link, no pickle
    (:func:`~dialog_env.lm.loading.refuse_pickles`), within the size limits.
    Then the config, strict JSON, every field checked against :data:`CONFIG_FIELDS`.
    """
    from dialog_env.lm.loading import refuse_pickles
    from dialog_env.lm.model_files import checked_files

    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"no checkpoint directory at {directory}")
    refuse_pickles(directory, checked_files(directory))
    path = directory / CONFIG
    if not path.is_file():
        raise ValueError(f"{directory} has no {CONFIG}: not a dialog-bench checkpoint")
    try:
        config = read_json_file(path, MAX_CONFIG_BYTES)
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    return check_config(config, path)


def load_checkpoint(directory: str | Path):
    """The agent saved in ``directory``."""
    config = read_config(directory)
    return load_entry_point(KINDS[config["agent"]]).load(Path(directory))
