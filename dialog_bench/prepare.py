"""What the CLI checks and settles before a command starts, so that a mistake costs one
line and no work: env ids that exist, names of shipped checkpoints resolved to their
directories, the env a checkpoint plays, data that fits the task, files that are there,
optional extras that are installed, and one torch thread for the tiny models.

Each step reads and may rewrite the parsed ``argparse.Namespace``; a problem is a
``ValueError`` (or ``FileNotFoundError``) with a one-line message, shown by the CLI.
"""

from __future__ import annotations

import argparse

__all__ = ["DECODING_COMMANDS", "check_env_ids", "prepare", "set_threads"]

#: Commands that decode with an LM agent: one torch thread unless ``--threads`` says more.
DECODING_COMMANDS = ("play", "diagnose", "evaluate", "submit")


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
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def prepare(args: argparse.Namespace) -> None:
    """Settle ``args`` for its command (see the module docstring), or raise one line."""
    check_env_ids(args)
    set_threads(args)
