"""Group-relative RL speed against the floor of its update's forward + backward, in one run.

Each measured iteration of ``dialog-bench train grpo`` (its default shapes: 8 seeds x 8
rollouts in one vector env of 64 sub-envs, the LM voice) is timed in two parts: the
rollout (:func:`baselines.grpo_groups.collect_groups`: batched incremental sampling, the
vector env's steps, the group advantages) and the update (the frozen reference's
scoring, :func:`baselines.common.rollout.score_rows`, then
:func:`baselines.grpo_update.grpo_update`: every minibatch step with
:meth:`~baselines.common.policy.TokenPolicy.evaluate_spans`, the clipped loss, the KL
term, backward, clipping, Adam).

Right after it, the same packed rows, in the same minibatches, get the floor of what
``evaluate_spans`` + ``backward()`` must compute (:func:`bench.floor_forward_backward`):
the LM body over every column of the left-padded rows, the output layer only at the
columns that predict a message token (:func:`baselines.common.policy.span_reads`), a
cross-entropy on them, one ``backward()``. No value head: GRPO has no critic. What the
update does beyond it is its own cost: the float log-softmax and entropy at each read,
the ratio and KL terms, the reference's no-grad forward, clipping and Adam.

Tokens are the real (non-pad) tokens of the trained rows over all epochs, so both sides
count the same tokens; GRPO's figure also pays for its rollout. The ratio is the share of
the floor's training speed that the whole iteration keeps (aim: >= 0.7). ::

    python -m bench.grpo_speed [--measured 2] [--groups 8] [--group-size 8] [any GRPO flag]
    python -m bench.grpo_speed --smoke    # seconds: 2 seeds x 2 rollouts, template voice
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from baselines.common.config import add_config_arguments, config_from_args
from baselines.common.rollout import Row, pack_episode, score_rows
from baselines.common.run import resolve_init
from baselines.grpo_config import GRPOConfig
from baselines.grpo_groups import collect_groups, set_advantages
from baselines.grpo_update import grpo_update, row_minibatches
from bench import floor_forward_backward, parse_args, report_rl_speed
from dialog_env.lm.threads import torch_threads


def raw_forward_backward(policy, batch: list[Row]) -> float:
    """The floor of ``policy.evaluate_spans`` + ``backward()`` on ``batch``."""
    from baselines.common.policy import span_reads
    from dialog_env.lm.generation import left_pad

    device = next(policy.parameters()).device
    sequences, spans = [r.ids for r in batch], [r.spans for r in batch]
    ids, mask, positions = left_pad(sequences, policy.codec.pad_id, device)
    reads = span_reads(sequences, spans, ids.shape[1], device)
    targets = ids[:, 1:][reads[:, :-1]]
    return floor_forward_backward(policy.model, ids, mask, positions, reads, targets)


def measure(config: GRPOConfig, iterations: int) -> dict[str, float]:
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)
    from baselines.common.policy import TokenPolicy

    init_dir, _, _ = resolve_init(config.init)
    policy = TokenPolicy.load(init_dir)
    policy.model.eval()
    if config.max_new_tokens:
        policy.max_new_tokens = config.max_new_tokens
    reference = TokenPolicy.load(init_dir).requires_grad_(False).eval() if config.beta else None
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    optimizer = torch.optim.Adam(policy.model.parameters(), lr=config.lr, eps=1e-5)
    envs = gym.make_vec(
        config.env_id, num_envs=config.groups * config.group_size, **config.training_env_kwargs()
    )
    totals = dict.fromkeys(("rollout", "update", "raw", "tokens", "padded", "sampled"), 0.0)
    for it in range(iterations + 1):  # the first iteration warms up and is not counted
        t0 = time.perf_counter()
        played, kept, _ = collect_groups(envs, policy, rng, generator, config)
        t1 = time.perf_counter()
        rows = [row for e in kept for row in pack_episode(e.messages)]
        set_advantages(kept, config)
        if reference is not None:
            score_rows(reference, rows, config.minibatch_rows)
        # The update's own minibatches, drawn from a copy of its generator state, so the
        # floor replays exactly the batches (and shapes) the update trained on.
        batches = row_minibatches(rows, config, copy.deepcopy(rng))
        if rows:
            grpo_update(policy, optimizer, rows, config, rng)
        t2 = time.perf_counter()
        for batch in batches:
            raw_forward_backward(policy, batch)
        t3 = time.perf_counter()
        if it == 0:
            continue
        totals["rollout"] += t1 - t0
        totals["update"] += t2 - t1
        totals["raw"] += t3 - t2
        totals["sampled"] += sum(len(m.tokens) for e in played for m in e.messages)
        for batch in batches:
            lengths = [len(r.ids) for r in batch]
            totals["tokens"] += sum(lengths)
            totals["padded"] += max(lengths) * len(lengths)
    envs.close()
    return totals


SMOKE = {
    "measured": 1,
    "groups": 2,
    "group_size": 2,
    "max_new_tokens": 8,
    "temperature": 1.5,
    "resample_rounds": 3,
    "user_model": "template",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measured", type=int, default=2, help="measured iterations")
    skip = (
        "init_sha256",
        "out",
        "iterations",
        "eval_every",
        "eval_episodes",
        "keep",
        "logdir",
        "progress",
    )
    skip += ("track_kl",)  # the bench times the update, not the KL curve's extra forward
    add_config_arguments(parser, GRPOConfig, skip)
    args = parse_args(parser, argv, SMOKE)
    config = config_from_args(args, GRPOConfig)
    with torch_threads(config.threads):
        t = measure(config, args.measured)
    if not t["tokens"]:
        raise SystemExit("no group had a return spread: nothing was trained (try more groups)")
    setup = (
        f"GRPO, {args.measured} iterations x {config.groups} seeds x {config.group_size} "
        f"rollouts, {config.epochs} epoch(s), minibatch {config.minibatch_rows} rows, "
        f"init {config.init}, T={config.temperature}, "
        f"user voice {config.user_model or 'the env default'}, "
        f"{config.threads} thread(s)"
    )
    report_rl_speed("GRPO", setup, t, "reference + steps", 0.7)


if __name__ == "__main__":
    main()
