"""Standings: the statistics of every stored entry, grouped by episode set, ready to render.

Per episode set, each entry gets its success rate and mean return with 95% bootstrap CIs,
the IQM of its returns (with CI), its mean number of turns, a rank and the entries it is
tied with (overlapping success CIs), and its labels: verified or declared (see
``leaderboard.store``). The best entry of the SFT family (paradigms ``sft``,
``filtered-sft``) is compared with the best of the RL family (``rl``, ``sft-rl``) on the
same episodes by a paired bootstrap; "best" means highest success, then mean return.
On a task scored by a hidden gold judge (``Dialog-Chat-v1``: each episode's metrics hold
``mean_gold``), entries are ranked, tied and compared by their gold score instead of
success, since the return there is a learned reward model's (a proxy that RL can
over-optimize); the proxy return is shown beside it.
The comparison is made at the language level: entries whose agent writes the text
(interfaces ``text`` and ``token``). An RL entry of the ``act`` interface picks one of a
few dialogue acts that templates then write out, so what it shows is the interface as
much as the paradigm: it gets a line of its own (``act_comparison``), against the same
best SFT entry. Only verified entries are compared, since a declared paradigm is the
submitter's word; when a family has no verified entry, declared ones stand in and the
verdict says that it rests on declared labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

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
    "LANGUAGE_INTERFACES",
    "SetStandings",
    "compute_standings",
    "format_budget",
    "standings_to_json",
]

SFT_FAMILY = ("sft", "filtered-sft")
#: Interfaces at which the agent writes the text itself (the ``act`` interface does not).
LANGUAGE_INTERFACES = ("text", "token")
RL_FAMILY = ("rl", "sft-rl")
_BUDGET_WORDS = (("env_steps", "env steps"), ("demo_episodes", "demos"), ("tokens", "tokens"))


def format_budget(budget: dict) -> str:
    """A short reading of a training budget; ``"none"`` for an untrained agent.

    >>> format_budget({"env_steps": 2_000_000, "demo_episodes": 40_000})
    '2M env steps, 40k demos'
    >>> format_budget({})
    'none'
    """
    parts = []
    for key, word in _BUDGET_WORDS:
        value = budget.get(key)
        if value:
            for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")):
                if value >= div:
                    parts.append(f"{value / div:.3g}{unit} {word}")
                    break
    return ", ".join(parts) if parts else "none"


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

    def score(self, measure: str) -> Interval:
        """The interval an entry is ranked by: ``"success"`` or ``"gold"``."""
        return self.gold if measure == "gold" and self.gold is not None else self.success

    def budget_amount(self, unit: str) -> float | None:
        """The budget in ``unit`` (``"env_steps"``, ``"demo_episodes"``...); None if unstated."""
        value = self.budget.get(unit)
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

    @property
    def verdict(self) -> str:
        """One sentence that says what the comparison shows."""
        where = (
            "At the language level (text and token entries)"
            if self.scope == "language"
            else "Through the act interface (its templates write the text)"
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
        if d.low > 0:
            outcome = f"RL ({self.rl}) is ahead"
        elif d.high < 0:
            outcome = f"SFT ({self.sft}) is ahead"
        else:
            outcome = "no clear difference (the CI contains 0)"
        text = (
            f"{where}: best RL {self.rl} vs best SFT {self.sft} on {self.episodes} paired "
            f"episodes: {self.measure} difference (RL - SFT) {d.estimate:+.3f} "
            f"[{d.low:+.3f}, {d.high:+.3f}]: {outcome}."
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

    @property
    def verdicts(self) -> list[str]:
        """The SFT vs RL lines: the language level, then the act interface's RL if any."""
        extra = [self.act_comparison.verdict] if self.act_comparison is not None else []
        return [self.comparison.verdict, *extra]


def _entry_standing(entry: StoredEntry) -> EntryStanding:
    returns = np.asarray(entry.returns)
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


def compute_standings(entries: Iterable[StoredEntry]) -> list[SetStandings]:
    """Standings of every episode set that has entries, sets ordered by env id and name."""
    by_set: dict[str, list[StoredEntry]] = {}
    for entry in entries:
        by_set.setdefault(entry.episode_set, []).append(entry)
    out = []
    for set_id in sorted(by_set):
        group = by_set[set_id]
        measure = "gold" if all(e.gold for e in group) else "success"
        standings = sorted(
            (_entry_standing(e) for e in group),
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
        language = [s for s in standings if s.interface in LANGUAGE_INTERFACES]
        act_rl = [
            s
            for s in standings
            if s.interface not in LANGUAGE_INTERFACES and s.paradigm in RL_FAMILY
        ]
        out.append(
            SetStandings(
                group[0].env_id,
                set_id,
                len(group[0].seeds),
                standings,
                _compare(by_name, language, measure=measure),
                _compare(by_name, language, act_rl, "act", measure) if act_rl else None,
                measure,
            )
        )
    return out


def _comparison_json(c: FamilyComparison) -> dict:
    return {**asdict(c), "left_out": list(c.left_out), "verdict": c.verdict}


def standings_to_json(all_standings: list[SetStandings]) -> dict:
    """A JSON-ready dict of the standings (what ``--format json`` prints)."""
    sets = []
    for s in all_standings:
        sets.append(
            {
                "env_id": s.env_id,
                "episode_set": s.episode_set,
                "episodes": s.episodes,
                "entries": [{**asdict(e), "tied_with": list(e.tied_with)} for e in s.entries],
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
