"""Does the LM voice leak? RSS over thousands of episodes (issue 3: < 50 MB growth).

    python -m bench.lm_memory                       # 5,000 episodes, the tiny LM
    python -m bench.lm_memory --episodes 1000 --warmup 100 --agent random
    python -m bench.lm_memory --smoke

Plays ``--episodes`` episodes in one env voiced by ``--user-model`` and reads the
process's resident set size (``/proc/self/status``, after ``gc.collect()``) before the
first episode (the env made and its LM loaded: episode 0 in the table), after the
``--warmup``-th and every ``--every`` episodes. The figure judged against the limit is
the growth over episodes ``warmup+1 .. episodes``: from the reading after the first
``--warmup`` episodes (default 10: the first episode's decode grows the allocator's
pools by some 15 MiB, after which RSS is flat within a MiB; ``--warmup 0`` measures from
before episode 1) to the reading after the last. The same line also gives the growth
from before episode 1, warm-up included. Exit status 1 when the judged figure is over
the limit.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

from bench import parse_args
from bench.record import BenchRecord, add_out_argument

__all__ = ["main", "rss_mb"]

SMOKE = {"episodes": 3, "warmup": 1, "every": 1}


def rss_mb() -> float:
    """Resident set size of this process in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # not Linux: the peak is the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.lm_memory", description=__doc__)
    p.add_argument("--episodes", type=int, default=5000)
    p.add_argument(
        "--warmup", type=int, default=10, help="episodes played before the baseline reading"
    )
    p.add_argument("--every", type=int, default=250, help="report every N episodes")
    p.add_argument("--agent", default="expert", help="built-in agent that plays")
    p.add_argument("--user-model", default="tiny")
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--limit-mb", type=float, default=50.0)
    add_out_argument(p)
    args = parse_args(p, argv, SMOKE)
    if not 0 <= args.warmup < args.episodes:
        p.error("need 0 <= --warmup < --episodes")
    with BenchRecord("lm_memory", argv, args) as record:
        return measure(args, record)


def measure(args: argparse.Namespace, record: BenchRecord) -> int:
    """Play the episodes, read the RSS as the module docstring says; 1 if over the limit."""
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)
    from agents import load_agent

    env = gym.make("Dialog-v1", split=args.split, user_model=args.user_model)
    agent = load_agent(args.agent)
    start, turns, fallbacks = time.time(), 0, 0
    gc.collect()
    first = base = rss_mb()  # before episode 1; the baseline too when --warmup is 0
    print(f"{'episode':>8} {'rss MiB':>9} {'user turns':>11} {'fallbacks':>10} {'s':>7}")
    print(f"{0:>8} {first:>9.1f} {0:>11} {0:>10} {0:>7}")
    for episode in range(1, args.episodes + 1):
        obs, info = env.reset(seed=episode)
        agent.reset(seed=episode)
        terminated = truncated = False
        while not (terminated or truncated):
            obs, _, terminated, truncated, info = env.step(agent.act(obs))
        metrics = info.get("metrics") or {}
        turns += metrics.get("user_turns", 0)
        fallbacks += metrics.get("voice_fallbacks", 0)
        if episode == args.warmup or episode % args.every == 0 or episode == args.episodes:
            gc.collect()
            rss = rss_mb()
            if episode == args.warmup:
                base = rss
            print(
                f"{episode:>8} {rss:>9.1f} {turns:>11} {fallbacks:>10} {time.time() - start:>7.0f}",
                flush=True,
            )
    growth = rss - base
    ok = growth < args.limit_mb
    record.figures |= {"growth_mib": growth, "from_first_mib": rss - first}
    record.figures |= {"fallback_share": fallbacks / max(1, turns), "user_turns": turns}
    print(
        f"RSS growth over episodes {args.warmup + 1}-{args.episodes} (baseline after "
        f"{args.warmup} warm-up episodes): {growth:+.1f} MiB (limit {args.limit_mb:.0f} MiB): "
        f"{'ok' if ok else 'OVER'}; from before episode 1: {rss - first:+.1f} MiB; "
        f"fallback share {fallbacks / max(1, turns):.2%}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
