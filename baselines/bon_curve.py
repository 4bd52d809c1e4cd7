"""Best-of-n's over-optimization curve: gold and proxy against n, on the chat episodes.

For each ``n`` the best-of-n agent (:class:`agents.best_of_n.BestOfNAgent`: the base's
greedy reply and ``n - 1`` replies sampled at ``--temperature``, the one the proxy scores
highest sent) plays the first ``--limit`` episodes of an episode set as the leaderboard
plays an agent (:func:`leaderboard.rollout.play_episodes`, episodes side by side; the
draws of a context share one prefill of it). Each point holds the mean gold score
(``dev_gold``, the hidden judge) and the mean proxy score (``dev_return``: the env's
return under the proxy, the mean score over the requests), each with its standard error,
and the analytic KL of best-of-n from its base (Stiennon et al. 2020; Gao et al. 2023):

    KL_bon(n) = log n - (n - 1) / n      (nats per reply),   d = sqrt(KL_bon)

So the points are those of :mod:`leaderboard.overoptimization` (``kl``, ``dev_gold``,
``dev_return``), and ``leaderboard.overoptimization`` fits and draws them. ``KL_bon`` is
the exact KL of picking the best of ``n`` independent draws of a policy with no two draws
alike; here candidate 1 is the base's greedy reply and draws may repeat, so it is an
upper bound of this agent's KL per reply (an episode holds ``replies_per_episode`` of
them).

The proxy is the shipped reward model by default; ``--rm DIR`` another one, and two or
more ``--rm`` an ensemble (``--combine mean`` or ``worst``), which the agent ranks by and
the env scores with (``reward="rm-ensemble"``).

    python -m baselines.bon_curve --init baselines/checkpoints/sft-chat \\
        --n 1 2 4 8 16 32 64 --episodes dev --limit 50 --out runs/bon-curve.json
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

__all__ = ["bon_curve", "bon_point", "kl_bon", "main"]

ENV_ID = "Dialog-Chat-v1"
DEFAULT_NS = (1, 2, 4, 8, 16, 32, 64)


def kl_bon(n: int) -> float:
    """The KL (nats) of best-of-``n`` from the policy it samples: ``log n - (n - 1) / n``.

    >>> kl_bon(1), round(kl_bon(2), 6), round(kl_bon(64), 4)
    (0.0, 0.193147, 3.1745)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return math.log(n) - (n - 1) / n


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(v.mean()), se


def bon_point(n: int, records: Sequence[dict], proxy_metric: str) -> dict[str, Any]:
    """One point of the curve from the episode records of best-of-``n``.

    >>> recs = [{"metrics": {"mean_gold": g, "mean_rm": r, "answered": 2}}
    ...         for g, r in ((0.2, 0.5), (0.4, 0.7))]
    >>> p = bon_point(2, recs, "mean_rm")
    >>> p["n"], round(p["dev_gold"], 6), round(p["dev_return"], 6), p["replies_per_episode"]
    (2, 0.3, 0.6, 2.0)
    """
    gold, gold_se = _mean_se([r["metrics"]["mean_gold"] for r in records])
    proxy, proxy_se = _mean_se([r["metrics"][proxy_metric] for r in records])
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


def main(argv: Sequence[str] | None = None) -> int:
    """The command (module docstring)."""
    from dialog_env.tasks.chat.reward_model import ENSEMBLE_COMBINES

    p = argparse.ArgumentParser(
        prog="python -m baselines.bon_curve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--init", type=Path, required=True, help="the base LM agent's checkpoint")
    p.add_argument("--n", type=int, nargs="+", default=list(DEFAULT_NS), help="candidates")
    p.add_argument("--episodes", choices=("dev", "test"), default="dev", help="episode set")
    p.add_argument("--limit", type=int, default=50, help="its first N episodes")
    p.add_argument("--temperature", type=float, default=1.0, help="of the sampled draws")
    p.add_argument("--rm", type=Path, nargs="*", default=[], help="proxy RM dir(s)")
    p.add_argument("--combine", choices=ENSEMBLE_COMBINES, default="mean", help="ensemble rule")
    p.add_argument("--batch-size", type=int, default=16, help="episodes side by side")
    p.add_argument("--out", type=Path, required=True, help="the curve's JSON")
    args = p.parse_args(argv)
    started = time.time()
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
    argv = sys.argv[1:] if argv is None else list(argv)
    curve["command"] = shlex.join(["python", "-m", "baselines.bon_curve", *argv])
    curve["seconds"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(curve, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
