"""Standings: the statistics of every stored entry, grouped by episode set, ready to render.

Per episode set, each entry gets its success rate and mean return with 95% bootstrap CIs,
the IQM of its returns (with CI), its mean number of turns, a rank and the entries it is
tied with (overlapping success CIs), and what of it the board checked: a row the board
played has its weights, interface, env and episodes checked, its paradigm, budget and
training data declared (the manifest's word) unless tied to a checked row
(:mod:`leaderboard.lineage`); a replayed results file has only its episodes checked.

The headline SFT-vs-RL lines compare rows of one lineage (one demonstrator's demos and
every row trained from them): "SFT->RL vs its SFT start" and "RL vs filtered SFT on the
same demos", each a paired bootstrap on the same episodes, then "best-of-n vs its base"
(its base checked by hash); where no RL row starts from an SFT row of the board, the
line says so. Best RL against best SFT (highest success,
then mean return) is shown after them, labelled "across lineages, not a verdict": at the
language level (interfaces ``text`` and ``token``), and for RL through the ``act``
interface (whose templates write the text) on a line of its own. Declared entries stand
in there only for a family with no played entry, and the line says so; a row with the
weights of a row of another paradigm is left out of it.
On a task scored by a hidden gold judge (``Dialog-Chat-v1``: each episode's metrics hold
``mean_gold``), entries are ranked, tied and compared by their gold score instead of
success, since the return there is a learned reward model's (a proxy that RL can
over-optimize); the proxy return is shown beside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from leaderboard.budget import budget_terms, format_budget
from leaderboard.lineage import (
    RL_FAMILY,
    SFT_FAMILY,
    LineagePair,
    Provenance,
    board_provenance,
    difference_outcome,
    label_status,
    lineage_name,
    lineage_of,
    lineage_pairs,
    no_pair_line,
    same_weights,
    start_of,
)
from leaderboard.stats import (
    BOOTSTRAP_SEED,
    CONFIDENCE,
    N_RESAMPLES,
    Interval,
    bootstrap_ci,
    paired_difference,
    rank_with_ties,
)
from leaderboard.store import DECLARED, VERIFIED, StoredEntry

__all__ = [
    "RL_FAMILY",
    "SFT_FAMILY",
    "EntryStanding",
    "FamilyComparison",
    "LineagePair",
    "LANGUAGE_INTERFACES",
    "SetStandings",
    "compute_standings",
    "format_budget",
    "standings_to_json",
]

#: Interfaces at which the agent writes the text itself (the ``act`` interface does not).
LANGUAGE_INTERFACES = ("text", "token")


@dataclass(frozen=True)
class EntryStanding:
    """One entry's line on the leaderboard."""

    name: str
    agent: str
    paradigm: str
    interface: str
    budget: dict
    labels: str  # "verified" or "declared": whose word paradigm, interface and budget are
    episodes: int
    success: Interval
    mean_return: Interval
    iqm_return: Interval
    mean_turns: float
    rank: int = 0
    tied_with: tuple[str, ...] = ()
    #: Success rate over the episodes of each goal kind (``"booking"``, ``"inform"``).
    success_by_goal: dict[str, float] = field(default_factory=dict)
    #: Mean gold score of the replies (a judge-scored task only), with its CI.
    gold: Interval | None = None
    #: The labels the board checked (``weights``, ``interface``, ``env``, ``episodes``,
    #: ``start``) and those it takes on the manifest's or the submitter's word.
    checked: tuple[str, ...] = ()
    declared: tuple[str, ...] = ()
    #: Played rows whose weights are identical to this one's.
    same_weights_as: tuple[str, ...] = ()
    #: The row of the board this one was trained from (its start, checked by weights hash).
    start: str | None = None
    #: The lineage (demos) this row descends from, by name; None when none is known.
    lineage: str | None = None
    #: A best-of-n row's base, whose budget is its own.
    base: str | None = None

    @property
    def budget_text(self) -> str:
        """The budget in the board's vocabulary (:func:`leaderboard.budget.format_budget`)."""
        return format_budget(self.budget, self.paradigm, self.start, self.base)

    def score(self, measure: str) -> Interval:
        """The interval an entry is ranked by: ``"success"`` or ``"gold"``."""
        return self.gold if measure == "gold" and self.gold is not None else self.success

    def budget_amount(self, unit: str) -> float | None:
        """The budget in ``unit`` of the board's vocabulary (``"env_steps"``,
        ``"trained_tokens"``...); None if unstated. A best-of-n row trained nothing."""
        if self.paradigm == "best-of-n":
            return None
        value = budget_terms(self.budget, self.paradigm).get(unit)
        return float(value) if value else None


@dataclass(frozen=True)
class FamilyComparison:
    """Best RL-family entry against best SFT-family entry, paired on the same episodes."""

    sft: str | None
    rl: str | None
    episodes: int = 0
    success_difference: Interval | None = None  # RL minus SFT
    return_difference: Interval | None = None
    labels: str = VERIFIED  # "declared": a side of the comparison has declared labels
    left_out: tuple[str, ...] = ()  # declared SFT- or RL-family entries not compared
    scope: str = "language"  # "language": text and token entries; "act": act-interface RL
    measure: str = "success"  # what decides: "success", or "gold" on a judge-scored task
    gold_difference: Interval | None = None  # RL minus SFT, when measure is "gold"
    twins: tuple[str, ...] = ()  # rows left out: their weights are another row's

    @property
    def verdict(self) -> str:
        """The comparison, labelled as one across lineages: never a verdict."""
        text = "Across lineages, not a verdict (other demos, recipes and budgets): " + (
            self._comparison()
        )
        if self.twins:
            text += f" Left out, the weights of another row: {', '.join(self.twins)}."
        return text

    def _comparison(self) -> str:
        where = (
            "at the language level (text and token entries)"
            if self.scope == "language"
            else "through the act interface (its templates write the text)"
        )
        if self.sft is None or self.rl is None:
            missing = [
                f"no {fam}-family entry yet (paradigms {', '.join(members)})"
                for fam, members, have in (
                    ("SFT", SFT_FAMILY, self.sft),
                    ("RL", RL_FAMILY, self.rl),
                )
                if have is None
            ]
            return f"{where}, no SFT vs RL comparison: " + " and ".join(missing) + "."
        d = self.gold_difference if self.measure == "gold" else self.success_difference
        outcome = difference_outcome(d, self.rl, self.sft)
        text = (
            f"{where}: best RL {self.rl} vs best SFT {self.sft} on {self.episodes} paired "
            f"episodes: {self.measure} difference (RL - SFT) {d.estimate:+.3f} "
            f"[{d.low:+.3f}, {d.high:+.3f}]: {outcome}. Declared (the manifests' or the "
            "submitters' word): paradigms, budgets, data."
        )
        if self.labels == DECLARED:
            text = (
                "On declared labels only (a family has no verified entry, so its paradigm "
                f"is the submitter's word): {text}"
            )
        if self.left_out:
            text += f" Declared entries not compared: {', '.join(self.left_out)}."
        return text


@dataclass(frozen=True)
class SetStandings:
    """The leaderboard of one episode set of one env id."""

    env_id: str
    episode_set: str
    episodes: int
    entries: list[EntryStanding] = field(default_factory=list)
    comparison: FamilyComparison = field(default_factory=lambda: FamilyComparison(None, None))
    act_comparison: FamilyComparison | None = None  # only when an act-interface RL entry exists
    ranked_by: str = "success"  # or "gold": every entry of the set has gold scores
    #: The verdicts inside one lineage (the headline); empty when the board has none.
    lineage_pairs: list[LineagePair] = field(default_factory=list)
    #: Why the board has no lineage pair (its headline then), else "".
    no_pair: str = ""

    @property
    def verdicts(self) -> list[str]:
        """The SFT vs RL lines: the lineage verdicts first (or why there are none), then
        the comparisons across lineages, labelled as such: language level, act interface."""
        headline = [p.verdict for p in self.lineage_pairs] or [self.no_pair or no_pair_line({}, {})]
        pairs = {(p.rl, p.sft) for p in self.lineage_pairs}
        across = [self.comparison, *([self.act_comparison] if self.act_comparison else [])]
        # best vs best that is a lineage pair already is said once, as the verdict
        return [*headline, *(c.verdict for c in across if (c.rl, c.sft) not in pairs)]


def _entry_standing(
    entry: StoredEntry, provenance: dict[str, Provenance], twins: dict[str, tuple[str, ...]]
) -> EntryStanding:
    returns = np.asarray(entry.returns)
    start = start_of(entry.name, provenance)
    checked, declared = label_status(entry.labels, entry.paradigm, entry.budget, bool(start))
    lineage = lineage_of(entry.name, provenance)
    own = provenance.get(entry.name)
    return EntryStanding(
        name=entry.name,
        agent=entry.agent,
        paradigm=entry.paradigm,
        interface=entry.interface,
        budget=dict(entry.budget),
        labels=entry.labels,
        episodes=len(entry.seeds),
        success=bootstrap_ci(np.asarray(entry.successes, dtype=float)),
        mean_return=bootstrap_ci(returns),
        iqm_return=bootstrap_ci(returns, "iqm"),
        mean_turns=float(np.mean(entry.steps)),
        success_by_goal=_success_by_goal(entry),
        gold=bootstrap_ci(np.asarray(entry.gold)) if entry.gold else None,
        checked=checked,
        declared=declared,
        same_weights_as=twins.get(entry.name, ()),
        start=start,
        lineage=lineage_name(lineage, provenance) if lineage else None,
        base=own.base if own is not None else None,
    )


def _success_by_goal(entry: StoredEntry) -> dict[str, float]:
    if not entry.goal_kinds:
        return {}
    kinds, success = np.asarray(entry.goal_kinds), np.asarray(entry.successes, dtype=float)
    return {kind: float(success[kinds == kind].mean()) for kind in sorted(set(kinds))}


def _best(
    standings: list[EntryStanding], family: tuple[str, ...], measure: str = "success"
) -> EntryStanding | None:
    members = [s for s in standings if s.paradigm in family]
    return max(
        members, key=lambda s: (s.score(measure).estimate, s.mean_return.estimate), default=None
    )


def _compare(
    entries: dict[str, StoredEntry],
    standings: list[EntryStanding],
    rl_standings: list[EntryStanding] | None = None,
    scope: str = "language",
    measure: str = "success",
) -> FamilyComparison:
    """Best RL (of ``rl_standings``, default ``standings``) against best SFT among verified
    entries; a declared one only stands in for a family that has no verified entry."""
    rl_standings = standings if rl_standings is None else rl_standings
    verified = [s for s in standings if s.labels == VERIFIED]
    verified_rl = [s for s in rl_standings if s.labels == VERIFIED]
    sft = _best(verified, SFT_FAMILY, measure) or _best(standings, SFT_FAMILY, measure)
    rl = _best(verified_rl, RL_FAMILY, measure) or _best(rl_standings, RL_FAMILY, measure)
    if sft is None or rl is None:
        return FamilyComparison(sft and sft.name, rl and rl.name, scope=scope, measure=measure)
    settled = SFT_FAMILY * (sft.labels == VERIFIED) + RL_FAMILY * (rl.labels == VERIFIED)
    compared = {s.name: s for s in [*standings, *rl_standings]}  # the act line adds its RL
    left_out = tuple(
        s.name for s in compared.values() if s.labels == DECLARED and s.paradigm in settled
    )
    a, b = entries[rl.name], entries[sft.name]
    if a.seeds != b.seeds:  # cannot happen for verified entries of one set; guard anyway
        raise ValueError(f"entries {rl.name} and {sft.name} were not played on the same seeds")
    return FamilyComparison(
        sft.name,
        rl.name,
        len(a.seeds),
        paired_difference(np.asarray(a.successes, float), np.asarray(b.successes, float)),
        paired_difference(np.asarray(a.returns), np.asarray(b.returns)),
        DECLARED if DECLARED in (sft.labels, rl.labels) else VERIFIED,
        left_out,
        scope,
        measure,
        paired_difference(np.asarray(a.gold), np.asarray(b.gold)) if measure == "gold" else None,
    )


def _relabelled(entry: EntryStanding, paradigm: dict[str, str]) -> bool:
    """Whether ``entry`` shares its weights with a row of another paradigm and is the one
    of them that claims RL (or, when none does, any of them)."""
    others = [paradigm[t] for t in entry.same_weights_as if t in paradigm]
    if not any(p != entry.paradigm for p in others):
        return False
    return entry.paradigm in RL_FAMILY or not any(p in RL_FAMILY for p in others)


def _set_provenance(
    group: list[StoredEntry],
    checkpoints: dict[str, Path] | None,
    provenance: dict[str, Provenance] | None,
) -> dict[str, Provenance]:
    """The provenance of one set's played entries: given, or read from ``checkpoints``
    (default: the shipped ones)."""
    if provenance is None:
        from agents import shipped_checkpoints

        found = shipped_checkpoints() if checkpoints is None else checkpoints
        return board_provenance(group, found)
    return {
        e.name: provenance[e.name] for e in group if e.labels == VERIFIED and e.name in provenance
    }


def compute_standings(
    entries: Iterable[StoredEntry],
    checkpoints: dict[str, Path] | None = None,
    provenance: dict[str, Provenance] | None = None,
) -> list[SetStandings]:
    """Standings of every episode set that has entries, sets ordered by env id and name.

    The lineage of each played entry is read from its checkpoint's manifest:
    ``checkpoints`` maps entry names to checkpoint directories (default: the shipped
    ones); ``provenance`` gives it directly instead (entry name -> :class:`Provenance`).
    """
    by_set: dict[str, list[StoredEntry]] = {}
    for entry in entries:
        by_set.setdefault(entry.episode_set, []).append(entry)
    out = []
    for set_id in sorted(by_set):
        group = by_set[set_id]
        known = _set_provenance(group, checkpoints, provenance)
        # trained rows the board played with one model hash are one model (a built-in
        # agent's hash is its source file's, shared by the agents a file defines)
        models = {
            e.name: e.model_sha256 for e in group if e.labels == VERIFIED and any(e.budget.values())
        }
        twins = same_weights(known, models)
        measure = "gold" if all(e.gold for e in group) else "success"
        standings = sorted(
            (_entry_standing(e, known, twins) for e in group),
            key=lambda s: (-s.score(measure).estimate, -s.mean_return.estimate, s.name),
        )
        ranks = rank_with_ties([s.score(measure) for s in standings])
        standings = [
            EntryStanding(
                **{**s.__dict__, "rank": rank, "tied_with": tuple(standings[j].name for j in tied)}
            )
            for s, (rank, tied) in zip(standings, ranks, strict=True)
        ]
        by_name = {e.name: e for e in group}
        paradigm = {s.name: s.paradigm for s in standings}
        # A row with the weights of a row of another paradigm is that row relabelled (an
        # RL claim on untrained weights): no side of a comparison across lineages. A
        # lineage pair needs a checked start, which a relabelled copy does not have.
        relabelled = tuple(s.name for s in standings if _relabelled(s, paradigm))
        compared = [s for s in standings if s.name not in relabelled]
        language = [s for s in compared if s.interface in LANGUAGE_INTERFACES]
        act_rl = [
            s
            for s in compared
            if s.interface not in LANGUAGE_INTERFACES and s.paradigm in RL_FAMILY
        ]
        played = {n: p for n, p in paradigm.items() if n in known}
        out.append(
            SetStandings(
                group[0].env_id,
                set_id,
                len(group[0].seeds),
                standings,
                replace(_compare(by_name, language, measure=measure), twins=relabelled),
                _compare(by_name, language, act_rl, "act", measure) if act_rl else None,
                measure,
                lineage_pairs(by_name, played, known, measure),
                no_pair_line(played, known),
            )
        )
    return out


def _comparison_json(c: FamilyComparison) -> dict:
    return {
        **asdict(c),
        "left_out": list(c.left_out),
        "twins": list(c.twins),
        "verdict": c.verdict,
        "across_lineages": True,
    }


def _pair_json(p: LineagePair) -> dict:
    return {**asdict(p), "declared": list(p.declared), "verdict": p.verdict}


def _entry_json(e: EntryStanding) -> dict:
    return {
        **asdict(e),
        "tied_with": list(e.tied_with),
        "checked": list(e.checked),
        "declared": list(e.declared),
        "same_weights_as": list(e.same_weights_as),
        "budget_terms": budget_terms(e.budget, e.paradigm),
        "budget_text": e.budget_text,
    }


def standings_to_json(all_standings: list[SetStandings]) -> dict:
    """A JSON-ready dict of the standings (what ``--format json`` prints)."""
    sets = []
    for s in all_standings:
        sets.append(
            {
                "env_id": s.env_id,
                "episode_set": s.episode_set,
                "episodes": s.episodes,
                "entries": [_entry_json(e) for e in s.entries],
                "lineage_verdicts": [_pair_json(p) for p in s.lineage_pairs],
                "no_lineage_pair": s.no_pair if not s.lineage_pairs else None,
                "verdicts": s.verdicts,
                "sft_vs_rl": _comparison_json(s.comparison),
                "act_sft_vs_rl": s.act_comparison and _comparison_json(s.act_comparison),
                "ranked_by": s.ranked_by,
            }
        )
    return {
        "confidence": CONFIDENCE,
        "bootstrap": {"resamples": N_RESAMPLES, "seed": BOOTSTRAP_SEED},
        "sets": sets,
    }
