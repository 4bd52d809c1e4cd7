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
  disk still hashes to the model hash the board played (:func:`read_provenance`, in
  :mod:`leaderboard.provenance`);
- an RL row's start is *checked* when its manifest's init weights hash is the weights hash
  of another played row of the board: then the pair is a lineage verdict
  (:func:`lineage_pairs`). A start whose weights are not on the board (a retired SFT) is
  no verdict pair;
- a best-of-n row's base is *checked* when the base its config names is the very
  checkpoint another row of the board played (:func:`base_of`: the base's directory hash,
  inside the best-of-n's model hash, is that row's model hash): then best-of-n vs its base
  is a lineage verdict too;
- two played rows with the same weights are flagged (:func:`same_weights`), so that a copy
  relabelled "rl" is never read as a trained RL row.

Reads JSON and hashes files; runs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leaderboard.provenance import Provenance, board_provenance, read_provenance
from leaderboard.stats import Interval, paired_difference
from leaderboard.store import VERIFIED

__all__ = [
    "CHECKED_PLAYED",
    "CHECKED_REPLAYED",
    "LineagePair",
    "RL_FAMILY",
    "SFT_FAMILY",
    "Provenance",
    "base_of",
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
#: The paradigm of a row that picks among its base's samples (:mod:`agents.best_of_n`).
BEST_OF_N = "best-of-n"


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


def base_of(
    name: str, provenance: Mapping[str, Provenance], models: Mapping[str, str]
) -> str | None:
    """The entry of the board that the best-of-n row ``name`` samples from: the one the
    board played with the model hash of the base ``name``'s config names (checked
    against ``name``'s own model hash, :func:`~leaderboard.provenance.read_provenance`);
    else None. ``models``: entry name -> the model hash the board played.

    >>> board = {"bon": Provenance(base="sft", base_sha256="m1"), "sft": Provenance("w1")}
    >>> base_of("bon", board, {"sft": "m1", "bon": "m2"}), base_of("bon", board, {"sft": "m3"})
    ('sft', None)
    """
    p = provenance.get(name)
    if p is None or not p.base_sha256:
        return None
    for other, model in sorted(models.items()):
        if other != name and model == p.base_sha256:
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


def difference_outcome(
    d: Interval, rl: str, sft: str, sides: tuple[str, str] = ("RL", "SFT")
) -> str:
    """What a paired difference (RL minus SFT) with its CI says, in words; ``sides``
    names the two (best-of-n against its base: ``("best-of-n", "its base")``).

    >>> difference_outcome(Interval(0.1, 0.05, 0.15), "grpo", "sft")
    'RL (grpo) is ahead'
    >>> difference_outcome(Interval(0.0, -0.1, 0.1), "grpo", "sft")
    'no clear difference (the CI contains 0)'
    >>> difference_outcome(Interval(-0.1, -0.2, -0.05), "bon", "sft", ("best-of-n", "its base"))
    'its base (sft) is ahead'
    """
    if d.low > 0:
        return f"{sides[0]} ({rl}) is ahead"
    if d.high < 0:
        return f"{sides[1]} ({sft}) is ahead"
    return "no clear difference (the CI contains 0)"


#: Per kind of lineage pair: what it compares, what of it is checked (``{rl}``, ``{sft}``:
#: the two rows), the names of its two sides and its difference's label.
_KINDS = {
    "start": (
        "SFT->RL vs its SFT start",
        "checked: {rl} starts from {sft}'s weights (hash)",
        ("RL", "SFT"),
        "RL - SFT",
    ),
    "filtered": (
        "RL vs filtered SFT on the same demos",
        "checked: the weights, interfaces and episodes of both",
        ("RL", "SFT"),
        "RL - SFT",
    ),
    "base": (
        "best-of-n vs its base",
        "checked: {rl} samples from the very checkpoint {sft} played (hash)",
        ("best-of-n", "its base"),
        "best-of-n - base",
    ),
}


@dataclass(frozen=True)
class LineagePair:
    """A verdict inside one lineage: an RL row against an SFT-family row of the same
    demos, or a best-of-n row against its base, paired on the same episodes.

    ``kind``: ``"start"`` (SFT->RL vs its SFT start, the start checked by weights hash),
    ``"filtered"`` (RL vs filtered SFT on the same demos, the demos' sameness declared by
    the manifests' data hashes) or ``"base"`` (best-of-n vs its base, the base checked by
    its directory hash: then ``rl`` is the best-of-n row and ``sft`` its base);
    ``difference``: ``rl`` minus ``sft`` on ``measure``.
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
        what, checked, sides, label = _KINDS[self.kind]
        outcome = difference_outcome(d, self.rl, self.sft, sides)
        checked = checked.format(rl=self.rl, sft=self.sft)
        text = (
            f"{what}, {self.lineage}: {self.rl} vs {self.sft} on {self.episodes} paired "
            f"episodes: {self.measure} difference ({label}) {d.estimate:+.3f} "
            f"[{d.low:+.3f}, {d.high:+.3f}]: {outcome}. {checked.capitalize()}; "
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
    weights = provenance[rl].weights_sha256
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
        weights is not None and weights == provenance[sft].weights_sha256,
    )


def lineage_pairs(
    entries: Mapping,
    paradigms: Mapping[str, str],
    provenance: Mapping[str, Provenance],
    measure: str = "success",
) -> list[LineagePair]:
    """Every lineage verdict of one episode set: each RL-family row whose start is a
    checked SFT-family row of the board against that start, then each RL-family row
    against every filtered-SFT row of its lineage that is not its start; last, each
    best-of-n row against its checked base (:func:`base_of`).

    ``entries``: name -> stored entry (seeds, successes, returns, gold, model hash);
    ``paradigms``: name -> declared paradigm, for the entries the board played;
    ``provenance``: as :func:`board_provenance` gives it.
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
    models = {n: entries[n].model_sha256 for n in paradigms}
    for bon in sorted(n for n, p in paradigms.items() if p == BEST_OF_N and n in provenance):
        base = base_of(bon, provenance, models)
        if base is None:
            continue
        lineage = lineage_of(base, provenance)
        name = lineage_name(lineage, provenance) if lineage else "a lineage without demos"
        pairs.append(_pair("base", bon, base, name, entries, measure, provenance))
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
