"""Token-level PPO speed against the raw forward + backward of the same model, in one run.

Each measured iteration of ``dialog-bench train ppo`` (its default shapes: 16 sub-envs, 4
messages each, 4 epochs of 16-message minibatches, the LM voice) is timed in two parts:
the rollout (batched sampling with the reference in lockstep, the vector env's steps,
the bootstrap values) and the update (every PPO minibatch step: forward, losses,
backward, clipping, Adam). Right after it, the reference replays the very minibatches
the update trained on, each left-padded to the same shape, as a plain transformers
forward with a causal-LM loss on the message tokens plus ``backward()``: the physical
work an update cannot do without.

Tokens are the real (non-pad) tokens of those minibatches, prompt and message, over all
epochs, so both sides count the same tokens; PPO's figure also pays for its rollout.
The ratio PPO / raw is the share of the raw training speed that PPO keeps (aim: >= 0.5).
::

    python -m bench.ppo_speed [--measured 3] [--num-envs 16] [--threads 1] [any PPO flag]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from baselines.ppo_rollout import Conversations, Message
from baselines.token_ppo import (
    AdaptiveKLController,
    PPOConfig,
    add_config_arguments,
    assign_advantages,
    config_from_args,
    minibatches,
    ppo_step,
)


def raw_forward_backward(model, batch: list[Message], pad_id: int) -> None:
    """The plain causal-LM loss on ``batch``'s message tokens, forward and backward."""
    from dialog_env.lm.generation import left_pad

    seqs = [[*m.prompt, *m.tokens] for m in batch]
    ids, mask, positions = left_pad(seqs, pad_id)
    labels = torch.full_like(ids, -100)
    for row, m in enumerate(batch):
        labels[row, ids.shape[1] - len(m.tokens) :] = ids[row, ids.shape[1] - len(m.tokens) :]
    loss = model(input_ids=ids, attention_mask=mask, position_ids=positions, labels=labels).loss
    loss.backward()
    model.zero_grad(set_to_none=True)


def measure(config: PPOConfig, iterations: int) -> dict[str, float]:
    from agents.token_policy import TokenPolicy
    from dialog_env.lm import TINY_MODEL_DIR
    from dialog_env.lm.loading import load_causal_lm

    policy = TokenPolicy.load(TINY_MODEL_DIR)
    reference = load_causal_lm(TINY_MODEL_DIR).model
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr, eps=1e-5)
    kl = AdaptiveKLController(config.kl_init, config.kl_target, config.kl_horizon)
    conversations = Conversations(config.num_envs, config.seed, user_model=config.user_model)
    totals = dict.fromkeys(("rollout", "update", "raw", "tokens", "padded", "sampled"), 0.0)
    for it in range(iterations + 1):  # the first iteration warms up and is not counted
        t0 = time.perf_counter()
        rollout = conversations.collect(policy, reference, generator, config.messages_per_env)
        t1 = time.perf_counter()
        assign_advantages(rollout, kl.value, config.gamma, config.lam)
        advantages = np.concatenate([m.advantages for m in rollout.messages])
        scale = (advantages.mean(), advantages.std() + 1e-8)
        batches = minibatches(rollout.messages, config, rng)
        for batch in batches:
            ppo_step(policy, optimizer, batch, config, scale)
        t2 = time.perf_counter()
        for batch in batches:
            raw_forward_backward(policy.model, batch, policy.codec.pad_id)
        t3 = time.perf_counter()
        if it == 0:
            continue
        totals["rollout"] += t1 - t0
        totals["update"] += t2 - t1
        totals["raw"] += t3 - t2
        totals["sampled"] += sum(len(m.tokens) for m in rollout.messages)
        for batch in batches:
            lengths = [len(m.prompt) + len(m.tokens) for m in batch]
            totals["tokens"] += sum(lengths)
            totals["padded"] += max(lengths) * len(lengths)
    conversations.close()
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measured", type=int, default=3, help="measured iterations")
    skip = ("init", "out", "iterations", "eval_every", "eval_episodes", "logdir", "progress")
    add_config_arguments(parser, skip)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = config_from_args(args)
    t = measure(config, args.measured)
    tokens = t["tokens"]
    rows = [
        ("raw forward + backward (reference)", t["raw"]),
        ("PPO update (minibatch steps)", t["update"]),
        ("PPO rollout + update", t["rollout"] + t["update"]),
    ]
    print(
        f"token-level PPO, {args.measured} iterations x {config.num_envs} envs x "
        f"{config.messages_per_env} messages, {config.epochs} epochs, minibatch "
        f"{config.minibatch_messages}, user voice {config.user_model}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    print(
        f"trained tokens {tokens:.0f} (padding {1 - tokens / t['padded']:.0%} of the "
        f"batches), sampled {t['sampled']:.0f} message tokens in {t['rollout']:.1f} s of rollout"
    )
    print(f"{'':36} {'seconds':>8} {'tokens/s':>9} {'ratio':>6}")
    for name, seconds in rows:
        print(f"{name:36} {seconds:8.2f} {tokens / seconds:9.0f} {t['raw'] / seconds:6.2f}")


if __name__ == "__main__":
    main()
