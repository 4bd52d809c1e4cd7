"""Where a best-of-n job's play goes: the base's greedy decode, its draws, the reward model.

Plays a best-of-n checkpoint on the first ``--episodes`` test episodes of its env id as
``dialog-bench run`` plays a job (``leaderboard.evaluate.evaluate_agent`` with the memos
of ``leaderboard.workers.remembering`` on, one torch thread), and adds up the CPU seconds
(``time.process_time``) spent inside each part:

- **greedy**: the base LM agent's batched greedy message (``BestOfNAgent._greedy``);
- **draws**: the ``n - 1`` sampled candidates (``BestOfNAgent.sample_replies``);
- **RM, candidates**: the reward model's scores of the candidates (``_best``'s
  ``score_one`` calls that compute, not those the memo answers);
- **RM, env**: the env's scores of the sent replies that the agent did not score (a
  reply sent unscored: a tool call, or candidates all alike);
- **rest**: the env's stepping, the user's voice, the records (the models are loaded
  before the clock starts).

The messages are checked against the published results file's first episodes (the bench
fails if one differs), so a change that moves a message is not timed as a speed-up. ::

    python -m bench.bon_split [--agent bon-chat] [--episodes 100]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import parse_args
from bench.record import BenchRecord, add_out_argument

PARTS = ("greedy", "draws", "rm_candidates", "rm_env")


@contextlib.contextmanager
def _around(owner: type, name: str, block: Callable[[], Any]) -> Iterator[None]:
    """Within the block, every call of ``owner.name`` runs inside ``block()``."""
    method = getattr(owner, name)

    @functools.wraps(method)  # keeps the signature: the evaluator asks it for ``keys``
    def wrapper(*args, **kwargs):
        with block():
            return method(*args, **kwargs)

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, method)


@contextlib.contextmanager
def _clock(seconds: dict[str, float], part: Callable[[], str]) -> Iterator[None]:
    """Add the block's CPU seconds to ``seconds[part()]``."""
    begin = time.process_time()
    try:
        yield
    finally:
        key = part()
        seconds[key] = seconds.get(key, 0.0) + time.process_time() - begin


@contextlib.contextmanager
def _inside(flag: list[bool]) -> Iterator[None]:
    flag.append(True)
    try:
        yield
    finally:
        flag.pop()


def play_split(path: Path, env_id: str, episodes: int) -> tuple[dict[str, float], list[dict]]:
    """The CPU seconds of each part (and ``play``, the whole) of playing the best-of-n
    checkpoint ``path`` on the first ``episodes`` test episodes of ``env_id``, and the
    records."""
    from agents.best_of_n import BestOfNAgent
    from dialog_env.lm.threads import torch_threads
    from dialog_env.tasks.chat.reward_model import RewardModel
    from leaderboard.episodes import get_episode_set
    from leaderboard.evaluate import evaluate_agent
    from leaderboard.workers import remembering

    BestOfNAgent.load(path)  # the base and the RM loaded (cached) on no part's clock
    seconds: dict[str, float] = {}
    choosing: list[bool] = []  # inside _best: the RM's scores are the candidates'

    def rm_part() -> str:
        return "rm_candidates" if choosing else "rm_env"

    with contextlib.ExitStack() as patches:
        for name, part in (("_greedy", "greedy"), ("sample_replies", "draws")):
            block = functools.partial(_clock, seconds, lambda p=part: p)
            patches.enter_context(_around(BestOfNAgent, name, block))
        patches.enter_context(_around(BestOfNAgent, "_best", lambda: _inside(choosing)))
        block = functools.partial(_clock, seconds, rm_part)
        patches.enter_context(_around(RewardModel, "_score_alone", block))
        with remembering(True), torch_threads(1):
            episode_set = get_episode_set(env_id, "test", limit=episodes)
            begin = time.process_time()
            results = evaluate_agent(path, episode_set, progress=False)
            seconds["play"] = time.process_time() - begin
    return seconds, results["episodes"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", default="bon-chat", help="a shipped best-of-n checkpoint")
    parser.add_argument("--episodes", type=int, default=100, help="first N test episodes")
    parser.add_argument(
        "--published",
        type=Path,
        default=None,
        help="the results file to check the messages against (default: the published one)",
    )
    add_out_argument(parser)
    args = parse_args(parser, argv, {"episodes": 2})
    with BenchRecord("bon_split", argv, args) as record:
        measure(args, record)
    return 0


def measure(args: argparse.Namespace, record: BenchRecord) -> None:
    """Play, split, check the messages against the published file's and print the split."""
    from agents import shipped_checkpoints
    from leaderboard.dispatch import PUBLISHED_DIR, published_path

    path = shipped_checkpoints()[args.agent]
    env_id = json.loads((path / "config.json").read_text())["env_id"]
    seconds, records = play_split(path, env_id, args.episodes)
    published = args.published or published_path(PUBLISHED_DIR, env_id, args.agent)
    expected = json.loads(Path(published).read_text())["episodes"][: len(records)]
    if [r["turns"] for r in records] != [r["turns"] for r in expected]:
        raise SystemExit(f"{args.agent}: the messages differ from {published}'s")
    play = seconds["play"]
    rest = play - sum(seconds.get(p, 0.0) for p in PARTS)
    print(f"{args.agent}, first {args.episodes} test episodes, messages as published:")
    for part in (*PARTS, "rest"):
        value = rest if part == "rest" else seconds.get(part, 0.0)
        print(f"  {part:14s} {value:7.2f} CPU s  {100 * value / play:5.1f}%")
        record.figures[f"{part}_s"] = value
    print(f"  {'play':14s} {play:7.2f} CPU s")
    record.figures["play_s"] = play
    rm = seconds.get("rm_candidates", 0.0) + seconds.get("rm_env", 0.0)
    record.ratio("rm_share", "reward model / play CPU seconds", rm / play)


if __name__ == "__main__":
    raise SystemExit(main())
