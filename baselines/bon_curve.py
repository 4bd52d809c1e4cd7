"""Best-of-n's over-optimization curve: gold and proxy against n, on the chat episodes.

Each point holds, for one ``n``, the mean gold score of the reply best-of-n sends
(``dev_gold``, the hidden judge) and its mean proxy score (``dev_return``), each with its
standard error, and the analytic KL of best-of-n from its base (Stiennon et al. 2020;
Gao et al. 2023)::

    KL_bon(n) = log n - (n - 1) / n      (nats per reply),   d = sqrt(KL_bon)

So the points are those of :mod:`leaderboard.overoptimization` (``kl``, ``dev_gold``,
``dev_return``), which fits and draws them. Two estimators (``--estimator``):

- ``pool`` (the default; :mod:`baselines.bon_pool`): the base plays the first
  ``--limit`` episodes greedily; at each of its replies to the user, ``N = max(--n)``
  candidates are sampled at ``--temperature`` from one prefill of the context and scored
  once by the gold judge and by every proxy; the expected gold and proxy of best-of-``n``
  for every ``n <= N`` is read off the pool exactly,
  ``sum_i g_(i) C(i - 1, n - 1) / C(N, n)`` over the candidates ranked by the proxy
  (ties by draw number). Means and standard errors are over the contexts (replies). One
  sampling pass gives the curve of every proxy at every ``n``: proxies are ``--proxy
  NAME=DIR`` (repeated; ``shipped``: the env's default RM) and ``--ensemble
  NAME=A,B:mean|worst`` (the mean or the worst of those proxies' scores, Coste et al.
  2024). All candidates are sampled, none greedy, so ``KL_bon`` is exact for distinct
  draws. Cost: one greedy play, ``N`` draws and ``N`` scores per reply and reward model
  (the play estimator took 2,249 s for 10 dev episodes and n in 1-64, one proxy).
- ``play``: for each ``n`` the best-of-n agent (:class:`agents.best_of_n.BestOfNAgent`:
  the base's greedy reply and ``n - 1`` sampled ones, the one the proxy scores highest
  sent) plays the episodes as the leaderboard plays an agent; the point is the episodes'
  mean gold and return (their standard error over episodes). Its first candidate is the
  greedy reply and draws may repeat, so ``KL_bon`` is an upper bound of its KL. The proxy
  is the shipped RM, ``--rm DIR`` another, two or more ``--rm`` an ensemble
  (``--combine``), which the env scores with (``reward="rm-ensemble"``). Its JSON holds one
  curve (``points``); the pool's one per proxy (``curves``).

::

    python -m baselines.bon_curve --init baselines/checkpoints/sft-chat \\
        --n 1 2 4 8 16 32 64 --episodes dev --limit 50 \\
        --proxy shipped --proxy small=runs/rm-small --ensemble both=shipped,small:worst \\
        --out runs/bon-curve.json
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines.bon_pool import ENV_ID, kl_bon, mean_se

__all__ = ["ESTIMATORS", "bon_curve", "bon_point", "kl_bon", "main"]

PROG = "python -m baselines.bon_curve"
DEFAULT_NS = (1, 2, 4, 8, 16, 32, 64)
#: ``--estimator``: one pool of samples per context (the default), or a play per n.
ESTIMATORS = ("pool", "play")


def bon_point(n: int, records: Sequence[dict], proxy_metric: str) -> dict[str, Any]:
    """One point of the curve from the episode records of best-of-``n``.

    >>> recs = [{"metrics": {"mean_gold": g, "mean_rm": r, "answered": 2}}
    ...         for g, r in ((0.2, 0.5), (0.4, 0.7))]
    >>> p = bon_point(2, recs, "mean_rm")
    >>> p["n"], round(p["dev_gold"], 6), round(p["dev_return"], 6), p["replies_per_episode"]
    (2, 0.3, 0.6, 2.0)
    """
    gold, gold_se = mean_se([r["metrics"]["mean_gold"] for r in records])
    proxy, proxy_se = mean_se([r["metrics"][proxy_metric] for r in records])
    kl = kl_bon(n)
    return {
        "n": n,
        "kl": kl,
        "sqrt_kl": math.sqrt(kl),
        "dev_gold": gold,
        "dev_gold_se": gold_se,
        "dev_return": proxy,
        "dev_return_se": proxy_se,
        "replies_per_episode": float(np.mean([r["metrics"]["answered"] for r in records])),
        "episodes": len(records),
    }


def _proxy(rm_dirs: Sequence[Path], combine: str) -> tuple[Any, dict[str, Any], str]:
    """The agent's proxy, the env kwargs that make the env score with it, and the
    episode metric that holds its mean score."""
    from dialog_env.tasks.chat.reward_model import RewardEnsemble, RewardModel

    if not rm_dirs:
        return RewardModel.load(), {}, "mean_rm"
    if len(rm_dirs) == 1:
        return RewardModel.load(rm_dirs[0]), {"reward_model": str(rm_dirs[0])}, "mean_rm"
    paths = [str(p) for p in rm_dirs]
    kwargs = {"reward": "rm-ensemble", "reward_models": paths, "ensemble": combine}
    return RewardEnsemble.load(paths, combine), kwargs, "mean_rm_ensemble"


def bon_curve(
    init: Path,
    ns: Sequence[int] = DEFAULT_NS,
    episodes: str = "dev",
    limit: int | None = 50,
    temperature: float = 1.0,
    rm_dirs: Sequence[Path] = (),
    combine: str = "mean",
    batch_size: int = 16,
) -> dict[str, Any]:
    """The curve (module docstring): ``{"points": [...], ...}`` with one point per n."""
    from agents.best_of_n import BestOfNAgent
    from agents.lm_agent import LMAgent
    from leaderboard.episodes import get_episode_set
    from leaderboard.rollout import AgentMessages, play_episodes

    base = LMAgent.load(Path(init))
    proxy, env_kwargs, metric = _proxy(rm_dirs, combine)
    episode_set = get_episode_set(ENV_ID, episodes, limit)
    played = episode_set.with_env_kwargs(**env_kwargs)
    points = []
    for n in ns:
        started = time.perf_counter()

        def make(n=n):
            return BestOfNAgent(base, proxy, n=n, temperature=temperature)

        records = play_episodes(AgentMessages(make, batch_size), played, progress=False)
        point = bon_point(n, records, metric)
        point["seconds"] = round(time.perf_counter() - started, 1)
        points.append(point)
        print(
            f"n={n}: gold {point['dev_gold']:.3f} +- {point['dev_gold_se']:.3f}, proxy "
            f"{point['dev_return']:.3f} +- {point['dev_return_se']:.3f} (KL_bon "
            f"{point['kl']:.3f}, {point['seconds']} s)",
            flush=True,
        )
    return {
        "kind": "best-of-n curve",
        "estimator": "play",
        "env_id": ENV_ID,
        "episode_set": episode_set.id,
        "episode_set_sha256": episode_set.sha256,
        "init": str(init),
        "temperature": temperature,
        "proxy": {"rm": [str(p) for p in rm_dirs] or ["shipped"], "metric": metric}
        | ({"combine": combine} if len(rm_dirs) > 1 else {}),
        "kl": "KL_bon = log n - (n - 1) / n nats per reply (an upper bound here: the "
        "first candidate is the greedy reply, draws may repeat)",
        "points": points,
    }


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from dialog_env.tasks.chat.reward_model import ENSEMBLE_COMBINES

    p = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--init", type=Path, required=True, help="the base LM agent's checkpoint")
    p.add_argument("--n", type=int, nargs="+", default=list(DEFAULT_NS), help="candidates")
    p.add_argument("--episodes", choices=("dev", "test"), default="dev", help="episode set")
    p.add_argument("--limit", type=int, default=50, help="its first N episodes")
    p.add_argument("--temperature", type=float, default=1.0, help="of the sampled draws")
    p.add_argument("--estimator", choices=ESTIMATORS, default="pool", help="default: pool")
    p.add_argument(
        "--proxy",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="pool: a proxy reward model (repeat; DIR `shipped`: the env's default; "
        "default: shipped)",
    )
    p.add_argument(
        "--ensemble",
        action="append",
        default=[],
        metavar="NAME=A,B:mean|worst",
        help="pool: the mean or worst of --proxy A, B, ... (repeat)",
    )
    p.add_argument("--rm", type=Path, nargs="*", default=[], help="play: proxy RM dir(s)")
    p.add_argument("--combine", choices=ENSEMBLE_COMBINES, default="mean", help="play: rule")
    p.add_argument("--batch-size", type=int, default=16, help="episodes side by side")
    p.add_argument("--out", type=Path, required=True, help="the curve's JSON")
    return p.parse_args(argv)


def _proxies(args: argparse.Namespace) -> list[Any]:
    """The pool's proxies from ``--proxy`` and ``--ensemble`` (ValueError: one line)."""
    from baselines.bon_pool import parse_ensemble, parse_proxy

    if args.estimator == "pool" and args.rm:
        raise ValueError("--rm and --combine are --estimator play's; the pool takes --proxy")
    if args.estimator == "play" and (args.proxy or args.ensemble):
        raise ValueError("--proxy and --ensemble are the pool's; --estimator play takes --rm")
    proxies = [parse_proxy(spec) for spec in args.proxy or ["shipped"]]
    proxies += [parse_ensemble(spec, proxies) for spec in args.ensemble]
    names = [p.name for p in proxies]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"proxy name {', '.join(twice)} given twice: each needs its own name")
    return proxies


def main(argv: Sequence[str] | None = None) -> int:
    """The command (module docstring); a bad spec is one line on stderr and status 2."""
    from baselines.bon_pool import pool_curve

    args = _parse_args(argv)
    started, cpu = time.time(), time.process_time()
    try:
        proxies = _proxies(args)
        if args.estimator == "pool":
            curve = pool_curve(
                args.init,
                args.n,
                proxies,
                args.episodes,
                args.limit,
                args.temperature,
                args.batch_size,
            )
        else:
            curve = bon_curve(
                args.init,
                args.n,
                args.episodes,
                args.limit,
                args.temperature,
                args.rm,
                args.combine,
                args.batch_size,
            )
    except ValueError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    argv = sys.argv[1:] if argv is None else list(argv)
    curve["command"] = shlex.join(["python", "-m", "baselines.bon_curve", *argv])
    curve["seconds"] = round(time.time() - started, 1)
    curve["cpu_seconds"] = round(time.process_time() - cpu, 1)
    for name, c in curve.get("curves", {}).items():
        for point in c["points"]:
            print(
                f"{name} n={point['n']}: gold {point['dev_gold']:.3f} +- "
                f"{point['dev_gold_se']:.3f}, proxy {point['dev_return']:.3f} +- "
                f"{point['dev_return_se']:.3f} (KL_bon {point['kl']:.3f})"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(curve, indent=1) + "\n")
    print(f"wrote {args.out} ({curve['seconds']} s, {curve['cpu_seconds']} s of CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
