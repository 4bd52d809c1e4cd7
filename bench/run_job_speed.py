"""One baseline's leaderboard job (play, write, verify by replay, store), with and without
the memos of voiced turns and reward-model scores, in one run.

``dialog-bench run`` plays each baseline on its episode set and then replays the written
file to verify it. The replay meets the very user turns (same acts, same seeds) and chat
replies the play computed a moment before; with the memos on (what ``leaderboard.run``
does) it reads them instead of decoding and scoring them again. The reference is the
same job with the memos held off, so every turn is decoded and every reply scored twice.
Both sides must store the same outcome (the bench fails otherwise); a one-episode job
first loads the models on neither side's clock. ::

    python -m bench.run_job_speed [--agent sft-expert] [--env-id Dialog-v1] [--episodes 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench import parse_args


@contextmanager
def _memos_held_off():
    """Within it, ``leaderboard.run`` cannot turn the memos on."""
    from dialog_env.lm import voice
    from dialog_env.tasks.chat import reward_model
    from leaderboard import run

    real = voice.remember_turns, reward_model.remember_scores
    off = lambda on: False  # noqa: E731
    voice.remember_turns = reward_model.remember_scores = off
    try:
        yield run
    finally:
        voice.remember_turns, reward_model.remember_scores = real


def _job(baseline: str, env_id: str, episodes: int, batch_size: int):
    from leaderboard.run import _run_one

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = _run_one(
            baseline,
            Path(tmp) / "lb.sqlite",
            Path(tmp),
            (env_id, "test", episodes),
            batch_size,
            False,
        )
        seconds = time.perf_counter() - start
    if run.error:
        raise SystemExit(f"{baseline}: {run.error}")
    return seconds, (run.outcome.success, run.outcome.mean_return)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", default="sft-expert", help="a baseline name or directory")
    parser.add_argument("--env-id", default="Dialog-v1")
    parser.add_argument("--episodes", type=int, default=128, help="first N test episodes")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parse_args(parser, argv, {"agent": "expert", "episodes": 4, "batch_size": 4})
    with _memos_held_off():
        _job(args.agent, args.env_id, 1, args.batch_size)  # warm-up: models loaded, pools grown
        without, outcome_without = _job(args.agent, args.env_id, args.episodes, args.batch_size)
    with_memos, outcome_with = _job(args.agent, args.env_id, args.episodes, args.batch_size)
    if outcome_with != outcome_without:
        raise SystemExit(f"the memos changed the outcome: {outcome_with} vs {outcome_without}")
    print(
        f"{args.agent} on the first {args.episodes} {args.env_id}/test episodes, play + verify: "
        f"{without:.1f} s with every turn decoded and reply scored twice, {with_memos:.1f} s "
        f"with the memos (success {outcome_with[0]:.3f} both)"
    )
    print(f"ratio job speed with / without the memos = {without / with_memos:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
