"""``user_model=`` of ``DialogEnv``: which voice speaks for the simulated user.

- ``"tiny"`` (the default): the shipped LM in :data:`dialog_env.lm.TINY_MODEL_DIR`.
- ``"template"``: no LM, the task's template voice (one canonical sentence per act).
- a path: any local transformers causal-LM directory (see :mod:`dialog_env.lm.loading`).

Torch is imported only when an LM is asked for.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from dialog_env.voicing import UserVoice

if TYPE_CHECKING:  # the protocol only; dialog_env.lm imports no task
    from dialog_env.tasks import Task

__all__ = ["make_user_voice", "model_dir"]

_DEVICE_RE = re.compile(r"cpu|cuda(?::\d+)?")


def model_dir(user_model: str | os.PathLike) -> Path | None:
    """The model directory ``user_model`` names, or ``None`` for ``"template"``."""
    from dialog_env.lm import TINY_MODEL_DIR

    if not isinstance(user_model, (str, os.PathLike)):
        raise TypeError(
            f"user_model must be 'tiny', 'template' or a model directory path, got {user_model!r}"
        )
    if str(user_model) == "template":
        return None
    if str(user_model) == "tiny":
        return TINY_MODEL_DIR
    return Path(user_model)


def make_user_voice(user_model: str | os.PathLike, task: Task, device: str = "cpu") -> UserVoice:
    """The voice for ``user_model`` of ``task``'s user on ``device`` (the model is loaded,
    and checked, now): ``"template"`` is the task's own template voice, an LM checks its
    sentences with it and falls back to it."""
    if not isinstance(device, str) or not _DEVICE_RE.fullmatch(device):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    path = model_dir(user_model)
    if path is None:
        return task.template_voice
    from dialog_env.lm.voice import LMVoice

    return LMVoice(path, task.template_voice, device=device)
