"""``dialog-bench compare``: is a gap between two agents real? Paired, on identical episodes.

The leaderboard ranks entries by their own CIs; a training experiment asks a sharper
question: did the RL run beat its SFT start *on the same episodes*? Pairing removes what
the episodes share (a hard goal is hard for both agents), so the CI of the difference is
as narrow as the data allow. Each CANDIDATE results file is compared with BASELINE::

    dialog-bench evaluate runs/ckpt/grpo-seed0 --out runs/grpo-seed0.json
    dialog-bench compare leaderboard/results/Dialog-v1/sft-noisy.json runs/grpo-seed*.json

prints, per candidate, success and mean return with the paired difference (candidate
minus baseline) and its 95% bootstrap CI, and whether the CI excludes 0. The files must
hold the same env id, episode set and seeds (in order); ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

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

    @property
    def verdict(self) -> str:
        d = self.success_difference
        if d.low > 0:
            return "better (CI excludes 0)"
        if d.high < 0:
            return "worse (CI excludes 0)"
        return "no clear difference"


def _outcomes(results: dict) -> tuple[tuple, np.ndarray, np.ndarray]:
    episodes = results["episodes"]
    seeds = tuple(int(e["seed"]) for e in episodes)
    success = np.array([bool(e["success"]) for e in episodes], dtype=float)
    returns = np.array([float(e["return"]) for e in episodes])
    return seeds, success, returns


def compare_results(baseline: str | Path, candidates: list[str | Path]) -> list[PairedComparison]:
    """Each candidate results file against ``baseline``, paired episode by episode."""
    base = read_results(baseline)
    key = (base["header"]["env_id"], base["header"]["episode_set"])
    base_seeds, base_success, base_returns = _outcomes(base)
    out = []
    for path in candidates:
        other = read_results(path)
        other_key = (other["header"]["env_id"], other["header"]["episode_set"])
        seeds, success, returns = _outcomes(other)
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
            )
        )
    return out


def _interval(d: Interval) -> str:
    return f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"


def format_table(comparisons: list[PairedComparison]) -> str:
    """A Markdown table, one line per candidate."""
    lines = [
        "| candidate | baseline | episodes | success | baseline success | "
        "success difference [95% CI] | return difference [95% CI] | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in comparisons:
        lines.append(
            f"| {c.candidate} | {c.baseline} | {c.episodes} | {c.candidate_success:.3f} | "
            f"{c.baseline_success:.3f} | {_interval(c.success_difference)} | "
            f"{_interval(c.return_difference)} | {c.verdict} |"
        )
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
