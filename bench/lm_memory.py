"""Does the LM voice leak? RSS over thousands of episodes (issue 3: < 50 MB growth).

    python -m bench.lm_memory                       # 5,000 episodes, the tiny LM
    python -m bench.lm_memory --episodes 1000 --warmup 100 --agent random

Plays ``--episodes`` episodes in one env voiced by ``--user-model`` and reads the
process's resident set size (``/proc/self/status``) every ``--every`` episodes. The
figure is the growth between episode ``--warmup`` (caches, allocator pools and the
model are warm by then) and the last episode. Exit status 1 when it is over the limit.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

__all__ = ["main", "rss_mb"]


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
    p.add_argument("--warmup", type=int, default=500, help="episode that RSS growth starts at")
    p.add_argument("--every", type=int, default=250, help="report every N episodes")
    p.add_argument("--agent", default="expert", help="built-in agent that plays")
    p.add_argument("--user-model", default="tiny")
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--limit-mb", type=float, default=50.0)
    args = p.parse_args(argv)

    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)
    from agents import load_agent

    env = gym.make("Dialog-v1", split=args.split, user_model=args.user_model)
    agent = load_agent(args.agent)
    start, base = time.time(), None
    turns = fallbacks = 0
    print(f"{'episode':>8} {'rss MiB':>9} {'user turns':>11} {'fallbacks':>10} {'s':>7}")
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
    growth = rss - (base if base is not None else rss)
    ok = growth < args.limit_mb
    print(
        f"RSS growth from episode {args.warmup} to {args.episodes}: {growth:+.1f} MiB "
        f"(limit {args.limit_mb:.0f} MiB): {'ok' if ok else 'OVER'}; "
        f"fallback share {fallbacks / max(1, turns):.2%}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
