"""What the CLI checks and settles before a command starts, so that a mistake costs one
line and no work: env ids that exist, names of shipped checkpoints resolved to their
directories, the env a checkpoint plays, data that fits the task, files that are there,
optional extras that are installed, and one torch thread for the tiny models.

Each step reads and may rewrite the parsed ``argparse.Namespace``; a problem is a
``ValueError`` (or ``FileNotFoundError``) with a one-line message, shown by the CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.util import find_spec
from pathlib import Path

__all__ = [
    "DECODING_COMMANDS",
    "agent_env_id",
    "check_agent_task",
    "check_data_task",
    "check_env_ids",
    "OPTIONAL_EXTRAS",
    "check_extras",
    "check_hf_dirs",
    "quiet_progress",
    "require_extra",
    "prepare",
    "resolve_names",
    "set_threads",
]

#: Commands that decode with an LM agent: one torch thread unless ``--threads`` says more.
DECODING_COMMANDS = ("play", "diagnose", "evaluate", "submit")


#: Optional module -> the extra that installs it (``pip install 'dialog-bench[EXTRA]'``).
OPTIONAL_EXTRAS = {
    "peft": "peft",
    "ray": "ray",
    "minari": "minari",
    "trl": "trl",
    "datasets": "datasets",
    "openenv": "openenv",
    "fastapi": "openenv",
    "uvicorn": "openenv",
    "rliable": "stats",
    "seqeval": "tagger",
}


def require_extra(module: str, needed_by: str) -> None:
    """An ``ImportError`` naming the extra to install unless ``module`` can be imported."""
    if find_spec(module) is None:
        raise ImportError(
            f"{needed_by} needs the optional extra {OPTIONAL_EXTRAS[module]}: "
            f"pip install 'dialog-bench[{OPTIONAL_EXTRAS[module]}]'"
        )


def check_extras(args: argparse.Namespace) -> None:
    """The extras a flag needs are installed, before any work (``demos --minari`` used to
    play and write the demos first)."""
    if getattr(args, "minari", None):
        require_extra("minari", "--minari")
    if getattr(args, "ray", None):
        require_extra("ray", "--ray")
    if getattr(args, "lora", 0):
        require_extra("peft", "--lora")
    if getattr(args, "trainer", None) == "tagger":
        require_extra("seqeval", "train tagger")


def check_hf_dirs(args: argparse.Namespace) -> None:
    """An ``hf:PATH`` agent whose directory is missing, said as such."""
    given = [getattr(args, "agent", None), *(getattr(args, "agents", None) or [])]
    for spec in given:
        if isinstance(spec, str) and spec.startswith("hf:"):
            path = Path(spec[len("hf:") :]).expanduser()
            if not path.is_dir():
                raise FileNotFoundError(f"{spec}: no model directory at {path}")


def quiet_progress(args: argparse.Namespace) -> None:
    """``--no-progress``/``--quiet`` also silence transformers' bars (loading shards)."""
    if getattr(args, "progress", True) is not False and not getattr(args, "quiet", False):
        return
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when transformers is imported
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()


def check_env_ids(args: argparse.Namespace) -> None:
    """Every ``--env-id`` given names a registered id (one line naming the known ones)."""
    from dialog_env.registration import task_of

    given = getattr(args, "env_id", None)
    for env_id in given if isinstance(given, list | tuple) else [given]:
        if env_id is not None:
            task_of(env_id)


def set_threads(args: argparse.Namespace) -> None:
    """``--threads N`` torch threads for a command that decodes (default 1: a tiny
    model's matrices are too small to share, and two threads that wait on each other on
    a busy machine cost many times one)."""
    threads = getattr(args, "threads", None)
    if threads is None or args.command not in DECODING_COMMANDS:
        return  # trainers set their own (``train ppo --threads``)
    if args.command == "submit" and getattr(args, "checkpoint", None) is None:
        return  # a results file is replayed, not decoded
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def agent_env_id(agent: str | Path) -> str:
    """The env an agent plays when no ``--env-id`` is given: a checkpoint's ``env_id``,
    the first text id of a built-in agent's task, else ``Dialog-v1`` (also for ``hf:``)."""
    from dialog_env.registration import TEXT_ENV_IDS, task_of

    key = str(agent)
    if key.startswith("hf:"):
        return "Dialog-v1"
    from agents import AGENTS, agent_tasks, checkpoint_dir

    if key not in AGENTS:
        # Read, not checked: a flawed checkpoint is the command's to refuse, in its words.
        try:
            config = json.loads((checkpoint_dir(key) / "config.json").read_text())
        except (OSError, ValueError):
            return "Dialog-v1"
        env_id = config.get("env_id") if isinstance(config, dict) else None
        return env_id if isinstance(env_id, str) else "Dialog-v1"
    tasks = agent_tasks(key)
    return next((i for i in TEXT_ENV_IDS if task_of(i) in tasks), "Dialog-v1")


def resolve_names(args: argparse.Namespace) -> None:
    """Shipped checkpoint names work wherever a checkpoint directory does, from any
    directory: ``submit --checkpoint sft-expert``, ``train ... --init sft-chat``."""
    from agents import checkpoint_dir, shipped_checkpoints

    if getattr(args, "checkpoint", None) is not None:
        args.checkpoint = checkpoint_dir(args.checkpoint)
    init = getattr(args, "init", None)
    if init is not None and not Path(init).exists() and str(init) in shipped_checkpoints():
        args.init = type(init)(checkpoint_dir(init))


def settle_env_id(args: argparse.Namespace) -> None:
    """The agent's own env where ``--env-id`` was left out (play, evaluate, submit)."""
    if args.command not in ("play", "evaluate", "submit") or args.env_id is not None:
        return
    agent = getattr(args, "agent", None) or getattr(args, "checkpoint", None)
    args.env_id = agent_env_id(agent) if agent is not None else "Dialog-v1"


def check_agent_task(args: argparse.Namespace) -> None:
    """``evaluate`` and ``submit --checkpoint`` play an agent on its own task only: the
    booking expert scored on chat episodes is a number that means nothing."""
    if args.command not in ("evaluate", "submit"):
        return
    spec = getattr(args, "agent", None) or getattr(args, "checkpoint", None)
    if spec is None or str(spec).startswith("hf:"):
        return
    from agents import AGENTS, agent_tasks, checkpoint_dir
    from dialog_env.registration import task_of

    if str(spec) not in AGENTS and not (checkpoint_dir(spec) / "config.json").is_file():
        return  # not an agent: the command says so in its own words
    try:
        tasks = agent_tasks(spec)
    except ValueError:
        return  # a flawed checkpoint: likewise
    task = task_of(args.env_id)
    if task not in tasks:
        raise ValueError(
            f"agent {Path(str(spec)).name!r} plays the {'/'.join(tasks)} task, not "
            f"{args.env_id} ({task}): leave out --env-id to play its own"
        )


def check_data_task(args: argparse.Namespace) -> None:
    """Data and task agree: ``train sft --demos`` of the env id's task, a ``demos``
    generator that plays the env id's task (one line each, before any work)."""
    from dialog_env.registration import task_of

    if args.command == "train" and getattr(args, "demos", None):
        from baselines.demos import check_demos_task

        check_demos_task(args.demos, args.env_id)
    if args.command == "demos":
        from agents import agent_tasks

        tasks = agent_tasks(args.generator)
        if task_of(args.env_id) not in tasks:
            raise ValueError(
                f"generator {args.generator} plays the {'/'.join(tasks)} task, not "
                f"{args.env_id} ({task_of(args.env_id)}): chat data comes from "
                "`dialog-bench prefs`"
            )
    if args.command == "diagnose" and getattr(args, "demos", None):
        from baselines.demos import demos_meta_path

        demos_meta_path(args.demos)


def prepare(args: argparse.Namespace) -> None:
    """Settle ``args`` for its command (see the module docstring), or raise one line."""
    check_env_ids(args)
    resolve_names(args)
    settle_env_id(args)
    check_env_ids(args)
    check_agent_task(args)
    check_data_task(args)
    check_extras(args)
    check_hf_dirs(args)
    quiet_progress(args)
    set_threads(args)
