"""Checkpoint directories: weights in safetensors, config and manifest in JSON, no pickle.

Every trained agent is a directory::

    config.json        what to build: {"agent": KIND, "paradigm", "interface", ...}
    model.safetensors  the weights
    manifest.json      how it was made: command, seed, data sha256, budget, wall time

``load_checkpoint(path)`` reads ``config.json`` and hands the directory to the loader of
its kind. Files that only pickle can read (``*.zip`` of SB3, ``*.pt``, ``*.bin``,
``*.pkl``) are refused before anything is opened: an outsider's pickle can run code.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import import_module
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG",
    "KINDS",
    "MANIFEST",
    "WEIGHTS",
    "load_checkpoint",
    "read_config",
    "refuse_pickles",
    "write_manifest",
]

CONFIG, MANIFEST, WEIGHTS = "config.json", "manifest.json", "model.safetensors"
PICKLE_SUFFIXES = (".zip", ".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib")

#: agent kind -> "module:class" with a ``load(path)`` classmethod.
KINDS = {
    "sb3": "agents.sb3_agent:SB3Agent",
    "lm": "agents.lm_agent:LMAgent",
}


def refuse_pickles(directory: Path) -> None:
    """Raise ``ValueError`` if ``directory`` holds any pickle-based file."""
    found = sorted(p.name for p in directory.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    if found:
        raise ValueError(
            f"refusing to load {directory}: {', '.join(found)} can only be read by unpickling, "
            "which can run code. dialog-bench checkpoints hold safetensors weights and JSON "
            "configs; convert the model (see baselines/) or load it yourself if you trust it"
        )


def read_config(directory: str | Path) -> dict[str, Any]:
    """The checked ``config.json`` of a checkpoint directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"no checkpoint directory at {directory}")
    refuse_pickles(directory)
    path = directory / CONFIG
    if not path.is_file():
        raise ValueError(f"{directory} has no {CONFIG}: not a dialog-bench checkpoint")
    try:
        config = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(config, dict) or config.get("agent") not in KINDS:
        raise ValueError(
            f'{path} must name its agent kind as "agent": one of {", ".join(sorted(KINDS))}'
        )
    return config


def load_checkpoint(directory: str | Path):
    """The agent saved in ``directory``."""
    config = read_config(directory)
    module, cls = KINDS[config["agent"]].split(":")
    return getattr(import_module(module), cls).load(Path(directory))


def write_manifest(
    directory: str | Path,
    *,
    command: str | None = None,
    seed: int,
    budget: dict[str, float],
    data_sha256: str | None = None,
    started: float,
    **extra: Any,
) -> dict[str, Any]:
    """Write ``manifest.json``: how to make the checkpoint again and what it cost."""
    manifest = {
        "command": command or " ".join(["dialog-bench", *sys.argv[1:]]),
        "seed": seed,
        "data_sha256": data_sha256,
        "budget": {**budget, "wall_time_s": round(time.time() - started, 1)},
        "python": platform.python_version(),
        **extra,
    }
    Path(directory, MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest
