"""``python -m baselines.turn_credit_bias``: does verl #7244's warning bite here?

A per-turn-index baseline (``train grpo --credit turn``,
:func:`baselines.grpo_groups.turn_advantages`) compares a message with the other
rollouts of its group at the same turn index. When the policy decides how long an
episode runs, the rollouts that ended early leave the later indices' baselines to the
ones that run long, and a rollout alone at an index has no baseline at all. This
samples groups from a checkpoint as ``train grpo`` does (same env kwargs, seeds drawn
from ``--seed``, optionally ``--seeds greedy-fails``, one round, no update) and
reports, over the groups an update would train (those with a return spread):

- ``lengths``: the episode lengths (agent messages) of every episode played, and per
  group their range;
- ``cells``: the (group, turn index) cells, the share that fewer than all of the group
  reach, the share of messages alone at their index (turn credit gives them 0), and
  the share whose turn credit differs from their episode credit at all;
- ``by_index``: per index, the mean advantage of the messages that end their episode
  there and of those after which it continues, under turn credit and under episode
  credit (every message of an episode carrying the episode's advantage); ``overall``
  the same over all indices.

If the per-index baseline favoured running long (the hidden bonus #7244 derives for
per-index-normalized rewards summed over the remaining turns), the "continues" messages
would gain under turn credit against episode credit, the "ends" ones lose. Writes the
figures as JSON to ``--out`` and prints a summary::

    python -m baselines.turn_credit_bias --init baselines/checkpoints/sft-careless \\
        --groups 8 --group-size 8 --seed 0 --out runs/turn-credit-bias.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines.grpo_config import ADVANTAGES, GRPOConfig
from baselines.grpo_groups import GroupEpisode, message_advantages, signal_groups
from baselines.seed_screen import SEED_CHOICES

__all__ = ["SETTINGS", "credit_by_index", "length_figures", "main", "sample_groups"]

#: The ``train grpo`` settings that the sampling takes from the command line.
SETTINGS = ("init", "groups", "group_size", "advantage", "temperature", "seeds", "seed")


def sample_groups(config: GRPOConfig) -> tuple[list[GroupEpisode], list[GroupEpisode]]:
    """One round of ``config.groups`` groups played by ``config.init`` as ``train grpo``
    plays its first iteration (the same seeds for the same ``config.seed``); returns
    every episode played and those of the groups an update would train."""
    import functools

    import gymnasium as gym
    import torch

    import dialog_env  # noqa: F401  (registers the ids)
    from baselines.common.policy import TokenPolicy
    from baselines.common.run import resolve_init
    from baselines.grpo_groups import collect_groups, screened_seeds

    init_dir, _, _ = resolve_init(config.init, config.init_sha256)
    policy = TokenPolicy.load(init_dir)
    policy.model.eval()
    if config.max_new_tokens:
        policy.max_new_tokens = config.max_new_tokens
    generator = torch.Generator(next(policy.parameters()).device).manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    envs = gym.make_vec(
        config.env_id, num_envs=config.groups * config.group_size, **config.training_env_kwargs()
    )
    choose_seeds = None
    if config.seeds == "greedy-fails":
        choose_seeds = functools.partial(screened_seeds, policy=policy, config=config, stats=[])
    played, kept, _ = collect_groups(envs, policy, rng, generator, config, choose_seeds)
    envs.close()
    return played, kept


def length_figures(episodes: Sequence[GroupEpisode], group_size: int) -> dict[str, Any]:
    """The episode lengths (agent messages): their histogram and mean, and per group of
    ``group_size`` the range (longest - shortest) and whether they differ.

    >>> from baselines.common.rollout import Message
    >>> def e(n):
    ...     return GroupEpisode(0, [Message([1], [2], np.zeros(1))] * n, 0.0, False, "")
    >>> f = length_figures([e(2), e(4), e(3), e(3)], 2)
    >>> f["histogram"], f["mean_range_in_group"], f["share_groups_unequal"]
    ({'2': 1, '3': 2, '4': 1}, 1.0, 0.5)
    """
    lengths = np.array([len(e.messages) for e in episodes])
    by_group = lengths.reshape(-1, group_size) if len(lengths) else np.zeros((0, group_size))
    ranges = np.ptp(by_group, axis=1) if len(by_group) else np.zeros(0)
    return {
        "episodes": len(lengths),
        "histogram": {str(n): c for n, c in sorted(Counter(lengths.tolist()).items())},
        "mean": float(lengths.mean()) if len(lengths) else 0.0,
        "mean_range_in_group": float(ranges.mean()) if len(ranges) else 0.0,
        "share_groups_unequal": float((ranges > 0).mean()) if len(ranges) else 0.0,
    }


def credit_by_index(episodes: Sequence[GroupEpisode], config: GRPOConfig) -> dict[str, Any]:
    """Over ``episodes`` (whole groups), the cells that not every rollout of a group
    reaches, and per turn index the mean turn-credit and episode-credit advantage of the
    messages that end their episode there (``ends``) and of the others (``continues``)."""
    turn = message_advantages(episodes, config, "turn")
    whole = message_advantages(episodes, config, "episode")
    groups = signal_groups(len(episodes), config.group_size, config.advantage)
    reach: Counter = Counter()  # (group, index) -> rollouts that write an index-th message
    for g, e in zip(groups, episodes, strict=True):
        reach.update((int(g), t) for t in range(len(e.messages)))
    members = Counter(groups.tolist())
    partial = sum(n < members[g] for (g, _), n in reach.items())
    rows: dict[tuple[int, str], list[tuple[float, float]]] = {}
    alone = 0
    for g, e, a_turn, a_whole in zip(groups, episodes, turn, whole, strict=True):
        for t in range(len(e.messages)):
            side = "ends" if t == len(e.messages) - 1 else "continues"
            rows.setdefault((t, side), []).append((a_turn[t], a_whole[t]))
            alone += reach[(int(g), t)] == 1
    messages = sum(reach.values())
    differing = sum(int(np.sum(np.abs(a - b) > 1e-9)) for a, b in zip(turn, whole, strict=True))

    def summary(pairs: list[tuple[float, float]]) -> dict[str, float]:
        a = np.array(pairs).reshape(-1, 2)
        return {"n": len(a), "turn": float(a[:, 0].mean()), "episode": float(a[:, 1].mean())}

    by_index = []
    for t in range(max((t for t, _ in rows), default=-1) + 1):
        point: dict[str, Any] = {"index": t}
        for side in ("ends", "continues"):
            if (t, side) in rows:
                point[side] = summary(rows[(t, side)])
        by_index.append(point)
    overall = {
        side: summary([p for (_, s), pairs in rows.items() if s == side for p in pairs])
        for side in ("ends", "continues")
    }
    return {
        "cells": {
            "cells": len(reach),
            "partial": partial,
            "share_partial": partial / max(len(reach), 1),
            "messages": messages,
            "messages_alone": alone,
            "share_messages_alone": alone / max(messages, 1),
            "messages_credited_otherwise": differing,
            "share_credited_otherwise": differing / max(messages, 1),
        },
        "by_index": by_index,
        "overall": overall,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Sample, measure, write ``--out`` and print a summary; return the figures."""
    from baselines.common.run import torch_threads

    args = _parser().parse_args(argv)
    settings = {name: getattr(args, name) for name in SETTINGS}
    config = GRPOConfig(**settings, threads=args.threads, eval_episodes=0, progress=False)
    started = time.time()
    with torch_threads(config.threads):
        played, kept = sample_groups(config)
    figures = {
        "settings": settings,
        "groups_played": len(played) // config.group_size,
        "groups_trained": len(kept) // config.group_size,
        "lengths_played": length_figures(played, config.group_size),
        "lengths_trained": length_figures(kept, config.group_size),
        **credit_by_index(kept, config),
        "wall_time_s": round(time.time() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    _print_summary(figures)
    print(f"wrote {args.out}")
    return figures


def _print_summary(figures: dict[str, Any]) -> None:
    cells, lengths = figures["cells"], figures["lengths_played"]
    print(
        f"groups: {figures['groups_trained']} of {figures['groups_played']} trained; "
        f"lengths {lengths['histogram']} (mean {lengths['mean']:.2f}, range in group "
        f"{lengths['mean_range_in_group']:.2f}, unequal in {lengths['share_groups_unequal']:.0%})"
    )
    print(
        f"cells reached by fewer than all: {cells['partial']} of {cells['cells']} "
        f"({cells['share_partial']:.0%}); messages alone at their index: "
        f"{cells['messages_alone']} of {cells['messages']}; credited otherwise than by "
        f"episode credit: {cells['messages_credited_otherwise']}"
    )
    print("index  ends: n turn episode | continues: n turn episode")
    for point in [*figures["by_index"], {"index": "all", **figures["overall"]}]:
        sides = [point.get(s, {"n": 0, "turn": 0.0, "episode": 0.0}) for s in ("ends", "continues")]
        print(
            f"{point['index']!s:>5}  "
            + " | ".join(f"{s['n']:4d} {s['turn']:+.3f} {s['episode']:+.3f}" for s in sides)
        )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m baselines.turn_credit_bias",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--init", default="baselines/checkpoints/sft-careless", help="checkpoint")
    p.add_argument("--groups", type=int, default=8, help="K: seeds (default: 8)")
    p.add_argument("--group-size", type=int, default=8, help="G: rollouts per seed (default: 8)")
    p.add_argument("--advantage", default="rloo", choices=ADVANTAGES, help="(default: rloo)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling (default: 1.0)")
    p.add_argument("--seeds", default="random", choices=SEED_CHOICES, help="(default: random)")
    p.add_argument("--seed", type=int, default=0, help="seeds and sampling (default: 0)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    p.add_argument(
        "--out", type=Path, default=Path("runs/turn-credit-bias.json"), help="the JSON written"
    )
    return p


if __name__ == "__main__":
    main()
