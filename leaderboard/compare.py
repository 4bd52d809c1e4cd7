"""``dialog-bench compare``: is a gap between two agents real? Paired, on identical episodes.

The leaderboard ranks entries by their own CIs; a training experiment asks a sharper
question: did the RL run beat its SFT start *on the same episodes*? Pairing removes what
the episodes share (a hard goal is hard for both agents), so the CI of the difference is
as narrow as the data allow. Each CANDIDATE results file is compared with BASELINE::

    dialog-bench evaluate runs/ckpt/grpo-seed0 --out runs/grpo-seed0.json
    dialog-bench compare leaderboard/results/Dialog-v1/sft-noisy.json runs/grpo-seed*.json

prints, per candidate, success and mean return with the paired difference (candidate
minus baseline) and its 95% bootstrap CI, and whether the CI excludes 0. Where every
episode of both files carries a gold score (a judge-scored task, ``Dialog-Chat-v1``:
metrics ``mean_gold``), the gold scores and their paired difference are shown too, and
the verdict is read on gold (the return there is a learned reward model's proxy). The
files must hold the same env id, episode set and seeds (in order); ``--json`` writes the
figures.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from leaderboard.render import md_text
from leaderboard.results import read_results
from leaderboard.stats import Interval, paired_difference

__all__ = ["PairedComparison", "add_parser", "compare_results", "main"]


@dataclass(frozen=True)
class PairedComparison:
    """One candidate against the baseline on the same episodes."""

    candidate: str
    baseline: str
    episodes: int
    candidate_success: float
    baseline_success: float
    success_difference: Interval  # candidate minus baseline
    return_difference: Interval
    #: Mean gold scores and their paired difference, where both files' episodes carry gold.
    candidate_gold: float | None = None
    baseline_gold: float | None = None
    gold_difference: Interval | None = None

    @property
    def verdict(self) -> str:
        """Better, worse or no clear difference, on gold where there is gold, else success."""
        d = self.gold_difference or self.success_difference
        if d.low > 0:
            return "better (CI excludes 0)"
        if d.high < 0:
            return "worse (CI excludes 0)"
        return "no clear difference"


def _outcomes(results: dict) -> tuple[tuple, np.ndarray, np.ndarray, np.ndarray | None]:
    """Seeds, successes, returns and gold scores (None unless every episode has one)."""
    episodes = results["episodes"]
    seeds = tuple(int(e["seed"]) for e in episodes)
    success = np.array([bool(e["success"]) for e in episodes], dtype=float)
    returns = np.array([float(e["return"]) for e in episodes])
    golds = [(e.get("metrics") or {}).get("mean_gold") for e in episodes]
    numbers = all(isinstance(g, int | float) and not isinstance(g, bool) for g in golds)
    gold = np.array(golds, dtype=float) if golds and numbers else None
    return seeds, success, returns, gold


def compare_results(baseline: str | Path, candidates: list[str | Path]) -> list[PairedComparison]:
    """Each candidate results file against ``baseline``, paired episode by episode."""
    base = read_results(baseline)
    key = (base["header"]["env_id"], base["header"]["episode_set"])
    base_seeds, base_success, base_returns, base_gold = _outcomes(base)
    out = []
    for path in candidates:
        other = read_results(path)
        other_key = (other["header"]["env_id"], other["header"]["episode_set"])
        seeds, success, returns, gold = _outcomes(other)
        if other_key != key or seeds != base_seeds:
            raise ValueError(
                f"{path} holds {other_key[1]} of {other_key[0]} ({len(seeds)} episodes), "
                f"{baseline} holds {key[1]} of {key[0]} ({len(base_seeds)} episodes): a "
                "paired comparison needs the same episodes in the same order"
            )
        out.append(
            PairedComparison(
                candidate=other["header"]["agent"],
                baseline=base["header"]["agent"],
                episodes=len(seeds),
                candidate_success=float(success.mean()),
                baseline_success=float(base_success.mean()),
                success_difference=paired_difference(success, base_success),
                return_difference=paired_difference(returns, base_returns),
                **_gold_figures(gold, base_gold),
            )
        )
    return out


def _gold_figures(gold: np.ndarray | None, base_gold: np.ndarray | None) -> dict:
    """The gold fields of a comparison: empty unless both sides carry gold."""
    if gold is None or base_gold is None:
        return {}
    return {
        "candidate_gold": float(gold.mean()),
        "baseline_gold": float(base_gold.mean()),
        "gold_difference": paired_difference(gold, base_gold),
    }


def _interval(d: Interval) -> str:
    return f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"


def format_table(comparisons: list[PairedComparison]) -> str:
    """A Markdown table, one line per candidate; gold columns where the episodes carry gold."""
    gold = any(c.gold_difference is not None for c in comparisons)
    names = ["candidate", "baseline", "episodes"]
    names += ["gold", "baseline gold", "gold difference [95% CI]"] if gold else []
    names += [
        "success",
        "baseline success",
        "success difference [95% CI]",
        "return difference [95% CI]",
        "verdict",
    ]
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join(" --- " for _ in names) + "|"]
    for c in comparisons:
        cells = [md_text(c.candidate), md_text(c.baseline), str(c.episodes)]
        if gold:
            cells += (
                [f"{c.candidate_gold:.3f}", f"{c.baseline_gold:.3f}", _interval(c.gold_difference)]
                if c.gold_difference is not None
                else ["-", "-", "-"]
            )
        cells += [
            f"{c.candidate_success:.3f}",
            f"{c.baseline_success:.3f}",
            _interval(c.success_difference),
            _interval(c.return_difference),
            c.verdict,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="paired difference of results files on identical episodes (bootstrap CI)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("baseline", metavar="BASELINE", help="results file to compare against")
    p.add_argument("candidates", metavar="CANDIDATE", nargs="+", help="results files")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the figures")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    comparisons = compare_results(args.baseline, args.candidates)
    print(format_table(comparisons))
    if args.json:
        figures = [asdict(c) | {"verdict": c.verdict} for c in comparisons]
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0
