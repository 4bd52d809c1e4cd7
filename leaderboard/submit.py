"""``dialog-bench submit``: verify a results file by replay and store it in the leaderboard.

>>> import tempfile, pathlib
>>> from leaderboard.episodes import get_episode_set
>>> from leaderboard.evaluate import evaluate_agent
>>> from leaderboard.results import write_results
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> path = write_results(tmp / "r.json", evaluate_agent(
...     "expert", get_episode_set("Dialog-v1", "dev", limit=3), progress=False))
>>> outcome = submit_results_file(path, LeaderboardStore(tmp / "lb.sqlite"))
>>> outcome.name, outcome.episode_set, outcome.success
('expert', 'Dialog-v1/dev[:3]', 1.0)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from leaderboard.agent_card import check_entry_name
from leaderboard.results import MAX_RESULTS_BYTES, ResultsRejected
from leaderboard.store import DEFAULT_DB, LeaderboardStore, NameTaken
from leaderboard.verify import VerifiedResults, verify_results_file

__all__ = ["SubmitOutcome", "add_parser", "store_verified", "submit_results_file"]


@dataclass(frozen=True)
class SubmitOutcome:
    """An accepted submission: where it went and what the replay measured."""

    entry_id: int
    name: str
    episode_set: str
    episodes: int
    success: float
    mean_return: float

    def summary(self) -> str:
        return (
            f"accepted: {self.name} on {self.episode_set}, {self.episodes} episodes "
            f"verified by replay, success {self.success:.3f}, mean return "
            f"{self.mean_return:.3f}"
        )


def store_verified(
    verified: VerifiedResults,
    store: LeaderboardStore,
    name: str | None = None,
    replace: bool = False,
) -> SubmitOutcome:
    """Store verified results as entry ``name``; a taken name is a rejection."""
    name = name or verified.header["agent"]
    try:
        check_entry_name(name)
    except ValueError as err:
        raise ResultsRejected(f"entry {err}") from None
    try:
        entry_id = store.add(verified, name=name, replace=replace)
    except NameTaken as err:
        raise ResultsRejected(str(err)) from None
    episodes = verified.episodes
    return SubmitOutcome(
        entry_id,
        name,
        verified.episode_set.id,
        len(episodes),
        sum(ep["success"] for ep in episodes) / len(episodes),
        sum(ep["return"] for ep in episodes) / len(episodes),
    )


def submit_results_file(
    path: str | Path,
    store: LeaderboardStore,
    name: str | None = None,
    replace: bool = False,
    progress: bool | Callable[[int], None] = False,
    max_bytes: int = MAX_RESULTS_BYTES,
) -> SubmitOutcome:
    """Verify ``path`` by replay and store it; raise ``ResultsRejected`` (nothing stored)."""
    verified = verify_results_file(path, max_bytes=max_bytes, progress=progress)
    return store_verified(verified, store, name=name, replace=replace)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "submit",
        help="verify a results file by replay and add it to the leaderboard",
        description="Replay every episode of RESULTS (reset with its seed, feed the agent's "
        "messages) and store the submission in the SQLite leaderboard only if every turn, "
        "reward, return, success and metric matches. A rejection prints one line and "
        f"stores nothing. Results files are limited to {MAX_RESULTS_BYTES // 2**20} MiB.",
    )
    p.add_argument("results", type=Path, metavar="RESULTS", help="results file (JSON)")
    p.add_argument(
        "--db",
        type=Path,
        default=DEFAULT_DB,
        help=f"SQLite database (default: {DEFAULT_DB}; created if missing)",
    )
    p.add_argument(
        "--name", default=None, help="entry name on the leaderboard (default: the header's agent)"
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="replace an existing entry of the same name on the same episode set",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        outcome = submit_results_file(
            args.results,
            LeaderboardStore(args.db),
            name=args.name,
            replace=args.replace,
            progress=not args.quiet,
        )
    except ResultsRejected as err:
        print(f"rejected: {err}", file=sys.stderr)
        return 1
    print(outcome.summary())
    return 0
