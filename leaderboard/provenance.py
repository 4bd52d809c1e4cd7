"""Provenance: what a played checkpoint's files say of how it was made, tied to what played.

The board hashed what it played (an entry's model hash). Here each played checkpoint's
``manifest.json`` and ``config.json`` are read, and what they say is tied to that hash
where the files on disk allow it:

- a checkpoint's weights file hash (``weights_sha256``) is set only when the directory on
  disk hashes to the model hash the board played: then the manifest's start
  (``init_weights_sha256``) can be matched with another row's weights
  (:func:`leaderboard.lineage.start_of`);
- a best-of-n checkpoint's model hash covers its own directory, its base's and the reward
  model's (:func:`agents.best_of_n.best_of_n_sha256`): its base's directory hash
  (``base_sha256``) is set only when the base its config names, resolved as
  :meth:`agents.best_of_n.BestOfNAgent.load` resolves it, gives back the model hash the
  board played. Then the base is matched with the row the board played with that very
  hash (:func:`leaderboard.lineage.base_of`).

Any unreadable file is a ``note``, never an error: one bad manifest must not stop the
board. Reads JSON and hashes files; runs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dialog_env.bounded_json import read_json_file
from dialog_env.lm.model_files import directory_sha256, file_sha256
from leaderboard.store import VERIFIED

__all__ = ["Provenance", "board_provenance", "read_provenance"]

_MAX_JSON_BYTES = 1 << 20
#: Where a checkpoint keeps its weights, in order of preference.
_WEIGHTS_FILES = ("lm/model.safetensors", "model.safetensors")
_GENERATOR = re.compile(r"--generator[= ](\S+)")
#: The agent kind of a best-of-n checkpoint's config (:data:`agents.checkpoint.KINDS`).
_BEST_OF_N = "best-of-n"
_NOT_PLAYED = "its checkpoint on disk is not the one the board played"


@dataclass(frozen=True)
class Provenance:
    """What a played checkpoint's manifest says of how it was made, and which of it the
    board could tie to what it checked.

    ``weights_sha256``: the checkpoint's weights file hash, set only when the directory
    on disk is the one the board played (else ``note`` says why not); ``init`` and
    ``init_weights_sha256``: the start as the manifest names it; ``data_sha256`` and
    ``generators``: its training data; ``filtered``: trained on the successful demos
    only; ``base``: the row a best-of-n samples from, as its config names it;
    ``base_sha256``: that base's directory hash, set only when the best-of-n checkpoint,
    its base and the reward model on disk hash to the model hash the board played.
    """

    weights_sha256: str | None = None
    init: str | None = None
    init_weights_sha256: str | None = None
    data_sha256: str | None = None
    generators: tuple[str, ...] = ()
    filtered: bool = False
    base: str | None = None
    note: str = ""
    base_sha256: str | None = None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _init_of(manifest: Mapping) -> tuple[str | None, str | None]:
    """The start's name and weights hash, in the old vocabulary (``init`` a path,
    ``init_weights_sha256`` beside it) or the new one (``init`` an object)."""
    init = manifest.get("init")
    if isinstance(init, Mapping):
        name = _text(init.get("name")) or _text(init.get("path"))
        sha = _text(init.get("weights_sha256")) or _text(init.get("sha256"))
        return name, sha
    sha = _text(manifest.get("init_weights_sha256")) or _text(manifest.get("init_sha256"))
    return _text(init), sha


def _data_of(manifest: Mapping) -> tuple[str | None, tuple[str, ...]]:
    """The training data's hash (several files: their hashes joined by commas, sorted) and
    the generators that wrote it."""
    data = manifest.get("data_sha256")
    if isinstance(data, list) and all(isinstance(d, str) for d in data):
        data = ",".join(data)
    sha = ",".join(sorted(data.split(","))) if _text(data) else None
    generators: list[str] = []
    named = manifest.get("generators", manifest.get("generator"))
    for g in [named] if isinstance(named, str) else named if isinstance(named, list) else []:
        if isinstance(g, str) and g not in generators:
            generators.append(g)
    commands = manifest.get("data_commands")
    for command in commands if isinstance(commands, list) else []:
        match = _GENERATOR.search(command) if isinstance(command, str) else None
        if match and match.group(1) not in generators:
            generators.append(match.group(1))
    return sha, tuple(generators)


def _played_base(directory: Path, config: Mapping, played_sha256: str) -> str | None:
    """The directory hash of the base that the best-of-n ``config`` names, when the
    checkpoint with that base (and the reward model) is what the board played as
    ``played_sha256``; else None (not a best-of-n config, or other files than played)."""
    if config.get("agent") != _BEST_OF_N or not _text(config.get("base")):
        return None
    from agents.best_of_n import base_directory, best_of_n_sha256

    try:
        base_dir = base_directory(directory, dict(config))
    except ValueError:  # a base that names nothing here: not what the board played
        return None
    if best_of_n_sha256(directory, base_dir) != played_sha256:
        return None
    return directory_sha256(base_dir)


def read_provenance(directory: str | Path, played_sha256: str) -> Provenance:
    """The provenance of the checkpoint at ``directory``, which the board played as
    ``played_sha256`` (its model hash). Any unreadable file is a ``note``, never an error:
    one bad manifest must not stop the board."""
    directory = Path(directory)
    try:
        config = directory / "config.json"
        config = read_json_file(config, _MAX_JSON_BYTES) if config.is_file() else {}
        config = config if isinstance(config, dict) else {}
        base = _text(config.get("base"))
        base_sha = None
        if directory_sha256(directory) != played_sha256:
            # a best-of-n's model hash covers its base and the reward model too
            base_sha = _played_base(directory, config, played_sha256)
            if base_sha is None:
                return Provenance(base=base, note=_NOT_PLAYED)
        manifest = directory / "manifest.json"
        manifest = read_json_file(manifest, _MAX_JSON_BYTES) if manifest.is_file() else {}
    except (OSError, ValueError) as err:
        return Provenance(note=f"unreadable checkpoint: {err}")
    manifest = manifest if isinstance(manifest, dict) else {}
    weights = next((directory / f for f in _WEIGHTS_FILES if (directory / f).is_file()), None)
    init, init_sha = _init_of(manifest)
    data, generators = _data_of(manifest)
    train_config = manifest.get("config")
    train_config = train_config if isinstance(train_config, dict) else {}
    return Provenance(
        weights_sha256=file_sha256(weights) if weights is not None else None,
        init=init,
        init_weights_sha256=init_sha,
        data_sha256=data,
        generators=generators,
        filtered=train_config.get("filter") == "success",
        # the base of a checked best-of-n is its config's (the one its hash covers)
        base=base if base_sha else _text(manifest.get("base")) or base,
        base_sha256=base_sha,
    )


def board_provenance(entries, checkpoints: Mapping[str, Path]) -> dict[str, Provenance]:
    """The provenance of every played entry (labels ``verified``) that is a checkpoint of
    ``checkpoints`` (entry name -> directory); ``entries`` need ``name``, ``labels`` and
    ``model_sha256``."""
    return {
        e.name: read_provenance(checkpoints[e.name], e.model_sha256)
        for e in entries
        if e.labels == VERIFIED and e.name in checkpoints
    }
