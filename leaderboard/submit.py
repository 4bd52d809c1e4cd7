"""``dialog-bench submit``: two ways onto the leaderboard.

- ``dialog-bench submit RESULTS``: a results file, verified by replay. The transcripts
  are proven; who wrote them is not, so the entry's paradigm, interface, budget and model
  hash are shown as *declared*.
- ``dialog-bench submit --checkpoint DIR``: the leaderboard loads the checkpoint itself
  (a known agent kind, safetensors and JSON only, no code run), from a private copy that
  it hashes, so the model hash covers exactly what it loaded; it plays the episode set,
  reads the budget from the manifest, replays its own results as any submission, and
  marks the entry *verified*.

>>> import tempfile, pathlib
>>> from leaderboard.episodes import get_episode_set
>>> from leaderboard.evaluate import evaluate_agent
>>> from leaderboard.results import write_results
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> path = write_results(tmp / "r.json", evaluate_agent(
...     "expert", get_episode_set("Dialog-v1", "dev", limit=3), progress=False))
>>> outcome = submit_results_file(path, LeaderboardStore(tmp / "lb.sqlite"))
>>> outcome.name, outcome.episode_set, outcome.success, outcome.labels
('expert', 'Dialog-v1/dev[:3]', 1.0, 'declared')
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dialog_env.lm.model_files import copy_checked
from leaderboard.agent_card import check_entry_name
from leaderboard.episodes import get_episode_set
from leaderboard.evaluate import DEFAULT_BATCH_SIZE, add_episode_set_arguments, evaluate_agent
from leaderboard.results import MAX_RESULTS_BYTES, ResultsRejected
from leaderboard.store import DECLARED, DEFAULT_DB, VERIFIED, LeaderboardStore, NameTaken
from leaderboard.verify import VerifiedResults, verify_results, verify_results_file

__all__ = [
    "SubmitOutcome",
    "add_parser",
    "store_verified",
    "submit_checkpoint",
    "submit_results_file",
]


@dataclass(frozen=True)
class SubmitOutcome:
    """An accepted submission: where it went and what the replay measured."""

    entry_id: int
    name: str
    episode_set: str
    episodes: int
    success: float
    mean_return: float
    labels: str = DECLARED

    def summary(self) -> str:
        return (
            f"accepted: {self.name} on {self.episode_set}, {self.episodes} episodes "
            f"verified by replay, success {self.success:.3f}, mean return "
            f"{self.mean_return:.3f}; labels {self.labels}"
        )


def store_verified(
    verified: VerifiedResults,
    store: LeaderboardStore,
    name: str | None = None,
    replace: bool = False,
    labels: str = DECLARED,
) -> SubmitOutcome:
    """Store verified results as entry ``name``; a taken name is a rejection.

    ``labels`` is :data:`~leaderboard.store.VERIFIED` only for episodes the leaderboard
    played itself (``submit_checkpoint``, ``dialog-bench run``).
    """
    name = name or verified.header["agent"]
    try:
        check_entry_name(name)
    except ValueError as err:
        raise ResultsRejected(f"entry {err}") from None
    try:
        entry_id = store.add(verified, name=name, replace=replace, labels=labels)
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
        labels,
    )


def submit_results_file(
    path: str | Path,
    store: LeaderboardStore,
    name: str | None = None,
    replace: bool = False,
    progress: bool | Callable[[int], None] = False,
    max_bytes: int = MAX_RESULTS_BYTES,
) -> SubmitOutcome:
    """Verify ``path`` by replay and store it; raise ``ResultsRejected`` (nothing stored).
    A database that cannot take it is a :class:`~leaderboard.store.StoreError` before
    the replay."""
    store.check_writable()
    verified = verify_results_file(path, max_bytes=max_bytes, progress=progress)
    return store_verified(verified, store, name=name, replace=replace)


def submit_checkpoint(
    directory: str | Path,
    store: LeaderboardStore,
    env_id: str = "Dialog-v1",
    episodes: str = "test",
    limit: int | None = None,
    name: str | None = None,
    replace: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | Callable[[int], None] = False,
) -> SubmitOutcome:
    """Load checkpoint ``directory``, play the episode set, store it as a verified entry.

    Only a checkpoint directory of a known agent kind (``agents.checkpoint.KINDS``) is
    taken, read as safetensors and JSON; it is copied first, and the copy is hashed,
    loaded and played. Its own results then pass the same replay as any submission.
    Raises :class:`ResultsRejected` (nothing stored) for anything that goes wrong, and
    :class:`~leaderboard.store.StoreError` for a database that cannot take it, before
    anything is loaded.
    """
    store.check_writable()
    directory = Path(directory)
    if not directory.is_dir():
        raise ResultsRejected(f"no checkpoint directory at {directory}")
    entry = name or directory.resolve().name
    try:
        check_entry_name(entry)
    except ValueError as err:
        raise ResultsRejected(f"entry {err}; give one with --name") from None
    try:
        episode_set = get_episode_set(env_id, episodes, limit=limit)
    except ValueError as err:
        raise ResultsRejected(str(err)) from None
    with tempfile.TemporaryDirectory(prefix="dialog-bench-checkpoint-") as tmp:
        try:
            # A private copy: what is hashed is what is loaded, whatever happens to the
            # original meanwhile.
            snapshot = copy_checked(directory, Path(tmp) / entry)
            results = evaluate_agent(
                snapshot, episode_set, batch_size=batch_size, progress=progress
            )
        except ValueError as err:  # refused by the loader: a one-line reason already
            raise ResultsRejected(f"checkpoint {directory}: {err}") from None
        except Exception as err:  # the agent broke while playing: still one line
            raise ResultsRejected(
                f"checkpoint {directory} failed while playing: {type(err).__name__}: {err}"
            ) from None
    verified = verify_results(results, progress=progress)
    return store_verified(verified, store, name=entry, replace=replace, labels=VERIFIED)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "submit",
        help="add a results file (verified by replay) or a checkpoint (played here) to the "
        "leaderboard",
        description="RESULTS: replay every episode of the results file (reset with its "
        "seed, feed the agent's messages) and store the submission in the SQLite "
        "leaderboard only if every turn, reward, return, success and metric matches; its "
        "paradigm, interface, budget and model hash are shown as declared. --checkpoint "
        "DIR: load the checkpoint (safetensors and JSON only, a known agent kind), play the "
        "episode set, hash what was loaded, read the budget from its manifest and store "
        "the entry as verified. A rejection prints one line and stores nothing. Results "
        f"files are limited to {MAX_RESULTS_BYTES // 2**20} MiB.",
    )
    p.add_argument("results", type=Path, nargs="?", metavar="RESULTS", help="results file (JSON)")
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="DIR",
        help="a checkpoint directory to load and play here, instead of a results file",
    )
    p.add_argument(
        "--db",
        type=Path,
        default=DEFAULT_DB,
        help=f"SQLite database (default: {DEFAULT_DB}; created if missing)",
    )
    p.add_argument(
        "--name",
        default=None,
        help="entry name on the leaderboard (default: the header's agent, or the "
        "checkpoint directory's name)",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="replace an existing entry of the same name on the same episode set",
    )
    add_episode_set_arguments(p, applies="--checkpoint: ")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if (args.results is None) == (args.checkpoint is None):
        raise ValueError("give either RESULTS (a results file) or --checkpoint DIR")
    store = LeaderboardStore(args.db)
    try:
        if args.checkpoint is not None:
            outcome = submit_checkpoint(
                args.checkpoint,
                store,
                env_id=args.env_id or "Dialog-v1",
                episodes=args.episodes,
                limit=args.limit,
                name=args.name,
                replace=args.replace,
                batch_size=args.batch_size,
                progress=not args.quiet,
            )
        else:
            outcome = submit_results_file(
                args.results, store, name=args.name, replace=args.replace, progress=not args.quiet
            )
    except ResultsRejected as err:
        print(f"rejected: {err}", file=sys.stderr)
        return 1
    print(outcome.summary())
    return 0
