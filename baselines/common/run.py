"""What every training run does around its algorithm: find its start, log, and write a
manifest that makes the checkpoint again.

- :func:`resolve_init`: the directory ``--init`` names (``base``: the shipped tiny LM,
  ``sft``: the shipped ``sft-expert``, or a path), the paradigm of the agent trained from
  it, and its weights' sha256, refused when ``--init-sha256`` records another one.
- :func:`tensorboard_writer`: TensorBoard scalars under ``<logdir>/<checkpoint name>``;
  :func:`torch_threads` (:mod:`dialog_env.lm.threads`): the torch thread count for the run's block.
- :func:`copy_checkpoint`: a checkpoint copied (or shipped) elsewhere than the directory its
  command made, its manifest saying so in ``copied_from``.
- :func:`write_run_manifest`: the one manifest writer. ``command`` is the command line
  with every flag resolved (:func:`baselines.common.config.config_command`), defaults and
  the init's weights hash included, so that it gives the recorded ``config`` whatever the
  defaults become and refuses a start that is no longer the one trained from; beside it
  the seed, data hash, budget, wall time, the init and the selection by the one rule
  (:class:`baselines.common.evaluation.KeepBest`).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path, PurePosixPath
from typing import Any

from baselines.common.config import config_command, config_dict
from dialog_env.lm.threads import torch_threads  # re-exported: the trainers' run kit

__all__ = [
    "SHIPPED_INITS",
    "check_init_sha256",
    "copy_checkpoint",
    "init_weights_sha256",
    "portable_path",
    "resolve_init",
    "shipped_start",
    "shipped_with_weights",
    "tensorboard_writer",
    "torch_threads",
    "write_run_manifest",
]

#: ``--init`` aliases of the token trainers -> the shipped checkpoint they name, found
#: where the package is installed, from any directory (``base`` is the packaged tiny LM).
SHIPPED_INITS = {"sft": "sft-expert"}


def init_weights_sha256(init_dir: str | Path) -> str:
    """The sha256 of the start's weights: its LM's ``model.safetensors``, or for a start
    without one (a LoRA adapter checkpoint) the whole directory's hash."""
    from baselines.common.policy import load_lm_dir
    from dialog_env.lm.model_files import directory_sha256, file_sha256

    weights = load_lm_dir(init_dir)[0] / "model.safetensors"
    return file_sha256(weights) if weights.is_file() else directory_sha256(init_dir)


def check_init_sha256(init_dir: Path, expected: str, what: str) -> str:
    """The start's weights hash, or a one-line ``ValueError`` when ``expected`` (non-empty)
    differs: the command names a start that is not the one it recorded."""
    found = init_weights_sha256(init_dir)
    if expected and found != expected:
        raise ValueError(
            f"--init {what}: {init_dir} holds weights {found[:12]}..., not the "
            f"{expected[:12]}... that --init-sha256 records; this start is not the one the "
            "command was made from (restore that checkpoint, or drop --init-sha256)"
        )
    return found


def resolve_init(init: str, expected_sha256: str = "") -> tuple[Path, str, str]:
    """The directory ``--init`` names, the paradigm of the agent trained from it (``"rl"``
    from a plain LM (the base) or an RL checkpoint, ``"sft-rl"`` from an SFT one) and its
    weights' sha256, checked against ``expected_sha256`` when that is given."""
    from baselines.common.policy import load_lm_dir
    from dialog_env.lm import TINY_MODEL_DIR

    path = TINY_MODEL_DIR if init == "base" else Path(init)
    if not path.is_dir():
        path = shipped_start(SHIPPED_INITS.get(init, init)) or path
    if not path.is_dir() and expected_sha256:
        path = shipped_with_weights(expected_sha256) or path
    if not path.is_dir():
        raise ValueError(
            f"--init {init}: no directory at {path}, and no shipped checkpoint of that name "
            "(`dialog-bench agents` lists them)"
        )
    _, config = load_lm_dir(path)
    paradigm = "rl" if config.get("paradigm", "rl") == "rl" else "sft-rl"
    return path, paradigm, check_init_sha256(path, expected_sha256, init)


def shipped_start(init: str) -> Path | None:
    """The shipped checkpoint that ``init`` names, by its name (``"sft-careless"``) or by
    its path in a checkout (``"baselines/checkpoints/sft-chat"``), or by the run
    directory it was copied from (its manifest's ``copied_from``, e.g.
    ``"runs/ckpt/sft-careless"``: a shipped row's manifest names the directory its start
    was trained in, which a fresh checkout does not have); ``None`` if none does. The
    start's recorded weights hash still decides whether it is the same start."""
    from agents import shipped_checkpoints
    from agents.checkpoint import MANIFEST

    shipped = shipped_checkpoints()
    if init in shipped:
        return shipped[init]
    path = PurePosixPath(init)
    if path.parent.as_posix().endswith("baselines/checkpoints") and path.name in shipped:
        return shipped[path.name]  # a checkout's path to it, from another directory
    for directory in shipped.values():
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and manifest.get("copied_from") == init:
            return directory
    return None


def shipped_with_weights(sha256: str) -> Path | None:
    """The first shipped LM checkpoint (by name) whose weights hash is ``sha256``, or
    ``None``: a start recorded by its hash is found where a run directory that a fresh
    checkout lacks held it (a run copy of a shipped row, ``runs/ckpt/sft-chat-new``)."""
    from agents import shipped_checkpoints

    for _, directory in sorted(shipped_checkpoints().items()):
        try:
            if init_weights_sha256(directory) == sha256:
                return directory
        except (OSError, ValueError):
            continue  # not an LM checkpoint (a rule-based or SB3 agent)
    return None


def portable_path(path: str | Path) -> str:
    """``path`` relative to the working directory when inside it (manifests travel)."""
    path, here = Path(path).resolve(), Path.cwd().resolve()
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)


def tensorboard_writer(logdir: str | Path, out: str | Path):
    """A TensorBoard ``SummaryWriter`` for the run writing checkpoint ``out``: its scalars
    go to ``<logdir>/<name of out>``."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(Path(logdir) / Path(out).name))


def write_run_manifest(
    out: str | Path,
    command: list[str],
    config: Any,
    *,
    started: float,
    budget: dict[str, Any],
    keep: Any = None,
    init_dir: str | Path | None = None,
    data_sha256: str | None = None,
    skip: tuple[str, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    """Write ``<out>/manifest.json`` and return it.

    Args:
        command: the command's words before its flags (``["dialog-bench", "train",
            "ppo"]``); the flags are ``config``'s, every one (but ``skip``: fields that
            follow from others), so the line rebuilds ``config``.
        config: the run's config dataclass, every default resolved (``out``, and the
            init's hash in ``init_sha256`` where the config has that field).
        started: ``time.time()`` when the run began (the manifest's ``wall_time_s``).
        budget: what the run spent, in the trainer's units.
        keep: the run's :class:`~baselines.common.evaluation.KeepBest` (rule, kept step,
            score and curve), if it evaluated.
        init_dir: the directory the weights started from (its portable path and weights
            hash are recorded).
        **extra: the trainer's own fields.
    """
    from agents.checkpoint import MANIFEST

    manifest: dict[str, Any] = {
        "command": config_command(command, config, skip),
        "seed": getattr(config, "seed", None),
        "data_sha256": data_sha256,
        "budget": {**budget, "wall_time_s": round(time.time() - started, 1)},
        "python": platform.python_version(),
        "config": config_dict(config),
    }
    if init_dir is not None:
        manifest["init"] = portable_path(init_dir)
        manifest["init_weights_sha256"] = init_weights_sha256(init_dir)
    if keep is not None:
        manifest |= keep.manifest()
    manifest |= extra
    Path(out).mkdir(parents=True, exist_ok=True)
    Path(out, MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def copy_checkpoint(source: str | Path, dest: str | Path) -> Path:
    """Copy checkpoint ``source`` to the new directory ``dest``; the copy's manifest says
    where it was made (``copied_from``: the ``out`` its command wrote), so its command,
    which names that directory, is not read as having made this one."""
    import shutil

    from agents.checkpoint import MANIFEST

    source, dest = Path(source), Path(dest)
    if dest.exists():
        raise ValueError(f"{dest} exists: copy a checkpoint into a new directory")
    manifest = json.loads((source / MANIFEST).read_text())
    made_in = (manifest.get("config") or {}).get("out") or str(source)
    shutil.copytree(source, dest)
    manifest["copied_from"] = manifest.get("copied_from", made_in)
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return dest
