"""Lineages: which rows of the board were trained from which, and what of that is checked.

A lineage is one demonstrator's demos and every row trained from them: SFT, filtered
SFT, SFT->RL from the SFT row, RL from the filtered row. It is read from each played
checkpoint's ``manifest.json``: its ``init`` (the start's name and weights hash) and its
training data (``data_sha256``, the generator named in ``data_commands``, ``--filter``).

What the board checked and what it takes on the manifest's word:

- a row the board played (labels ``verified``) has its weights hash, interface, env and
  episodes checked: the board loaded and hashed what played. Its paradigm, budget and
  training data are what its manifest says: *declared*;
- its weights are tied to the weights file on disk only when the checkpoint directory on
  disk still hashes to the model hash the board played (:func:`read_provenance`);
- an RL row's start is *checked* when its manifest's init weights hash is the weights hash
  of another played row of the board: then the pair is a lineage verdict
  (:func:`lineage_pairs`). A start whose weights are not on the board (a retired SFT) is
  no verdict pair;
- two played rows with the same weights are flagged (:func:`same_weights`), so that a copy
  relabelled "rl" is never read as a trained RL row.

Reads JSON and hashes files; runs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dialog_env.bounded_json import read_json_file
from dialog_env.lm.model_files import directory_sha256, file_sha256
from leaderboard.stats import Interval, paired_difference
from leaderboard.store import VERIFIED

__all__ = [
    "CHECKED_PLAYED",
    "CHECKED_REPLAYED",
    "LineagePair",
    "RL_FAMILY",
    "SFT_FAMILY",
    "Provenance",
    "board_provenance",
    "difference_outcome",
    "label_status",
    "lineage_name",
    "lineage_of",
    "lineage_pairs",
    "no_pair_line",
    "read_provenance",
    "same_weights",
    "start_of",
]

SFT_FAMILY = ("sft", "filtered-sft")
RL_FAMILY = ("rl", "sft-rl")
#: What the board checked of a row it played itself, and of a replayed results file.
CHECKED_PLAYED = ("weights", "interface", "env", "episodes")
CHECKED_REPLAYED = ("env", "episodes")
_MAX_JSON_BYTES = 1 << 20
#: Where a checkpoint keeps its weights, in order of preference.
_WEIGHTS_FILES = ("lm/model.safetensors", "model.safetensors")
_GENERATOR = re.compile(r"--generator[= ](\S+)")


@dataclass(frozen=True)
class Provenance:
    """What a played checkpoint's manifest says of how it was made, and which of it the
    board could tie to what it checked.

    ``weights_sha256``: the checkpoint's weights file hash, set only when the directory
    on disk is the one the board played (else ``note`` says why not); ``init`` and
    ``init_weights_sha256``: the start as the manifest names it; ``data_sha256`` and
    ``generators``: its training data; ``filtered``: trained on the successful demos
    only; ``base``: the row a best-of-n samples from.
    """

    weights_sha256: str | None = None
    init: str | None = None
    init_weights_sha256: str | None = None
    data_sha256: str | None = None
    generators: tuple[str, ...] = ()
    filtered: bool = False
    base: str | None = None
    note: str = ""


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


def read_provenance(directory: str | Path, played_sha256: str) -> Provenance:
    """The provenance of the checkpoint at ``directory``, which the board played as
    ``played_sha256`` (its model hash). Any unreadable file is a ``note``, never an error:
    one bad manifest must not stop the board."""
    directory = Path(directory)
    try:
        config = directory / "config.json"
        config = read_json_file(config, _MAX_JSON_BYTES) if config.is_file() else {}
        base = _text(config.get("base")) if isinstance(config, dict) else None
        if directory_sha256(directory) != played_sha256:
            # A best-of-n's model hash covers its base and reward model too: its base is
            # named, its own training (none) is all there is to say.
            note = "its checkpoint on disk is not the one the board played"
            return Provenance(base=base, note=note)
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
        base=_text(manifest.get("base")) or base,
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


def same_weights(
    provenance: Mapping[str, Provenance], models: Mapping[str, str] | None = None
) -> dict[str, tuple[str, ...]]:
    """Per entry, the other entries whose weights are identical to its own: the same
    checked weights file (``provenance``), or the same model hash over everything the
    board loaded (``models``: name -> model hash of the entries the board played).

    >>> same_weights({"a": Provenance("h1"), "b": Provenance("h1"), "c": Provenance("h2")})
    {'a': ('b',), 'b': ('a',)}
    >>> same_weights({}, {"x": "m1", "y": "m1", "z": "m2"})
    {'x': ('y',), 'y': ('x',)}
    """
    groups: dict[str, set[str]] = {}
    for name, p in provenance.items():
        if p.weights_sha256:
            groups.setdefault(f"weights {p.weights_sha256}", set()).add(name)
    for name, model in (models or {}).items():
        groups.setdefault(f"model {model}", set()).add(name)
    twins: dict[str, set[str]] = {}
    for names in groups.values():
        for name in names:
            if len(names) > 1:
                twins.setdefault(name, set()).update(names - {name})
    return {name: tuple(sorted(others)) for name, others in sorted(twins.items())}


def start_of(name: str, provenance: Mapping[str, Provenance]) -> str | None:
    """The entry of the board that ``name`` was trained from, when its manifest's init
    weights hash is that entry's checked weights hash (and not its own weights); else None.

    >>> board = {"sft": Provenance("h1"), "rl": Provenance("h2", "ckpt/sft", "h1")}
    >>> start_of("rl", board), start_of("sft", board)
    ('sft', None)
    """
    p = provenance.get(name)
    if p is None or not p.init_weights_sha256:
        return None
    for other, q in sorted(provenance.items()):
        if other != name and q.weights_sha256 == p.init_weights_sha256:
            return other
    return None


def lineage_of(name: str, provenance: Mapping[str, Provenance]) -> str | None:
    """The data hash of the demos ``name`` descends from: its own (a row trained on demos)
    or, through checked starts, its start's; None when no checked chain reaches demos."""
    seen = set()
    while name is not None and name not in seen:
        seen.add(name)
        p = provenance.get(name)
        if p is None:
            return None
        if p.data_sha256:
            return p.data_sha256
        name = start_of(name, provenance)
    return None


def lineage_name(data_sha256: str, provenance: Mapping[str, Provenance]) -> str:
    """How a lineage is called: the demos of its generator(s) and the data hash's start.

    >>> lineage_name("4ed2e83c5373,8fd1", {"s": Provenance(data_sha256="4ed2e83c5373,8fd1",
    ...                                    generators=("noisy-expert",))})
    'demos of noisy-expert (data 4ed2e83c)'
    """
    generators = sorted(
        {g for p in provenance.values() if p.data_sha256 == data_sha256 for g in p.generators}
    )
    who = f"demos of {', '.join(generators)}" if generators else "demos"
    return f"{who} (data {data_sha256[:8]})"


def label_status(labels: str, paradigm: str, budget: Mapping, started: bool) -> tuple:
    """``(checked, declared)``: the labels of an entry the board verified, and those it
    takes on trust. ``labels`` is the store's (``verified``: the board played it);
    ``started``: its start is checked (:func:`start_of`).

    >>> label_status("verified", "sft", {"tokens": 5}, False)
    (('weights', 'interface', 'env', 'episodes'), ('paradigm', 'budget', 'data'))
    >>> label_status("verified", "reference", {}, False)[1]
    ()
    >>> label_status("declared", "rl", {}, False)
    (('env', 'episodes'), ('weights', 'interface', 'paradigm', 'budget', 'data'))
    """
    if labels != VERIFIED:
        return CHECKED_REPLAYED, ("weights", "interface", "paradigm", "budget", "data")
    if paradigm == "reference" and not budget:
        return CHECKED_PLAYED, ()  # an untrained agent the board loaded: nothing to take
    checked = CHECKED_PLAYED + (("start",) if started else ())
    return checked, ("paradigm", "budget", "data")


def difference_outcome(d: Interval, rl: str, sft: str) -> str:
    """What a paired difference (RL minus SFT) with its CI says, in words.

    >>> difference_outcome(Interval(0.1, 0.05, 0.15), "grpo", "sft")
    'RL (grpo) is ahead'
    >>> difference_outcome(Interval(0.0, -0.1, 0.1), "grpo", "sft")
    'no clear difference (the CI contains 0)'
    """
    if d.low > 0:
        return f"RL ({rl}) is ahead"
    if d.high < 0:
        return f"SFT ({sft}) is ahead"
    return "no clear difference (the CI contains 0)"


@dataclass(frozen=True)
class LineagePair:
    """A verdict inside one lineage: an RL row against an SFT-family row of the same
    demos, paired on the same episodes.

    ``kind``: ``"start"`` (SFT->RL vs its SFT start, the start checked by weights hash) or
    ``"filtered"`` (RL vs filtered SFT on the same demos, the demos' sameness declared by
    the manifests' data hashes); ``difference``: RL minus SFT on ``measure``.
    """

    kind: str
    rl: str
    sft: str
    lineage: str
    episodes: int
    measure: str
    difference: Interval
    return_difference: Interval
    declared: tuple[str, ...]
    same_weights: bool = False

    @property
    def verdict(self) -> str:
        """One sentence: the pair, its paired difference with CI, what it rests on."""
        d = self.difference
        outcome = difference_outcome(d, self.rl, self.sft)
        what = (
            f"SFT->RL vs its SFT start, {self.lineage}: {self.rl} vs {self.sft}"
            if self.kind == "start"
            else f"RL vs filtered SFT on the same demos, {self.lineage}: {self.rl} vs {self.sft}"
        )
        checked = (
            f"checked: {self.rl} starts from {self.sft}'s weights (hash)"
            if self.kind == "start"
            else "checked: the weights, interfaces and episodes of both"
        )
        text = (
            f"{what} on {self.episodes} paired episodes: {self.measure} difference (RL - SFT) "
            f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]: {outcome}. {checked.capitalize()}; "
            f"declared (the manifests' word): {', '.join(self.declared)}."
        )
        if self.same_weights:
            text += f" {self.rl} has the very weights of {self.sft}: no training shows."
        return text


def _pair(kind, rl, sft, lineage, entries, measure, provenance) -> LineagePair:
    a, b = entries[rl], entries[sft]
    if a.seeds != b.seeds:
        raise ValueError(f"entries {rl} and {sft} were not played on the same seeds")

    def values(e, what):
        return np.asarray(e.gold if what == "gold" else e.successes, dtype=float)

    declared = ("paradigms", "budgets") + (
        ("that the demos are the same",) if kind == "filtered" else ()
    )
    return LineagePair(
        kind,
        rl,
        sft,
        lineage,
        len(a.seeds),
        measure,
        paired_difference(values(a, measure), values(b, measure)),
        paired_difference(np.asarray(a.returns), np.asarray(b.returns)),
        declared,
        provenance[rl].weights_sha256 == provenance[sft].weights_sha256,
    )


def lineage_pairs(
    entries: Mapping,
    paradigms: Mapping[str, str],
    provenance: Mapping[str, Provenance],
    measure: str = "success",
) -> list[LineagePair]:
    """Every lineage verdict of one episode set: each RL-family row whose start is a
    checked SFT-family row of the board against that start, then each RL-family row
    against every filtered-SFT row of its lineage that is not its start.

    ``entries``: name -> stored entry (seeds, successes, returns, gold); ``paradigms``:
    name -> declared paradigm, for the entries the board played; ``provenance``: as
    :func:`board_provenance` gives it.
    """
    pairs = []
    rl_rows = sorted(n for n, p in paradigms.items() if p in RL_FAMILY and n in provenance)
    for rl in rl_rows:
        start = start_of(rl, provenance)
        lineage = lineage_of(rl, provenance)
        name = lineage_name(lineage, provenance) if lineage else "a lineage without demos"
        if start is not None and paradigms.get(start) in SFT_FAMILY:
            pairs.append(_pair("start", rl, start, name, entries, measure, provenance))
        if lineage is None or start is None:
            continue
        for other in sorted(paradigms):
            filtered = paradigms[other] == "filtered-sft" or (
                other in provenance and provenance[other].filtered
            )
            if other != start and filtered and lineage_of(other, provenance) == lineage:
                pairs.append(_pair("filtered", rl, other, name, entries, measure, provenance))
    return pairs


def no_pair_line(paradigms: Mapping[str, str], provenance: Mapping[str, Provenance]) -> str:
    """The headline of a board without a lineage pair: why no RL row makes one."""
    reasons = []
    for rl in sorted(n for n, p in paradigms.items() if p in RL_FAMILY):
        p = provenance.get(rl)
        if p is None:
            continue
        start = start_of(rl, provenance)
        if start is not None:
            reasons.append(f"{rl} starts from {start}, a {paradigms.get(start, 'unknown')} row")
        elif p.init_weights_sha256:
            reasons.append(
                f"{rl} starts from weights {p.init_weights_sha256[:8]}, not those of any row "
                "on the board"
            )
        elif p.init:
            reasons.append(f"{rl} starts from {Path(p.init).name}, with no weights hash recorded")
    text = "No lineage verdict: no RL row on the board starts from an SFT row on the board"
    return f"{text} ({'; '.join(reasons)})." if reasons else f"{text}."
