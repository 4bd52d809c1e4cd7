"""One baseline's leaderboard job (play, write, verify by replay, store), with and without
the memos of voiced turns and reward-model scores, in one run.

``dialog-bench run`` plays each baseline on its episode set and then replays the written
file to verify it. The replay meets the very user turns (same acts, same seeds) and chat
replies the play computed a moment before; with the memos on (what ``dialog-bench run``
asks ``leaderboard.workers.run_one`` for) it reads them instead of decoding and scoring
them again. The reference is the same job with ``remember=False``, so every turn is
decoded and every reply scored twice.
Both sides must store the same outcome (the bench fails otherwise); a one-episode job
first loads the models on neither side's clock. ::

    python -m bench.run_job_speed [--agent sft-expert] [--env-id Dialog-v1] [--episodes 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench import parse_args
from bench.record import BenchRecord, add_out_argument


def _job(baseline: str, env_id: str, episodes: int, batch_size: int, remember: bool):
    from leaderboard.workers import run_one

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = run_one(
            baseline,
            Path(tmp) / "lb.sqlite",
            Path(tmp),
            (env_id, "test", episodes),
            batch_size,
            False,
            remember=remember,
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
    add_out_argument(parser)
    args = parse_args(parser, argv, {"agent": "expert", "episodes": 4, "batch_size": 4})
    with BenchRecord("run_job_speed", argv, args) as record:
        measure(args, record)
    return 0


def measure(args: argparse.Namespace, record: BenchRecord) -> None:
    """Time the job without the memos, then with them, and check the outcome is the same."""
    _job(args.agent, args.env_id, 1, args.batch_size, False)  # warm-up: models loaded, pools grown
    without, outcome_without = _job(args.agent, args.env_id, args.episodes, args.batch_size, False)
    with_memos, outcome_with = _job(args.agent, args.env_id, args.episodes, args.batch_size, True)
    if outcome_with != outcome_without:
        raise SystemExit(f"the memos changed the outcome: {outcome_with} vs {outcome_without}")
    print(
        f"{args.agent} on the first {args.episodes} {args.env_id}/test episodes, play + verify: "
        f"{without:.1f} s with every turn decoded and reply scored twice, {with_memos:.1f} s "
        f"with the memos (success {outcome_with[0]:.3f} both)"
    )
    record.figures |= {"seconds_without": without, "seconds_with": with_memos}
    record.ratio("ratio", "job speed with / without the memos", without / with_memos)


if __name__ == "__main__":
    raise SystemExit(main())
