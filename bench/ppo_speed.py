"""Token-level PPO speed against the floor of its update's forward + backward, in one run.

Each measured iteration of ``dialog-bench train ppo`` (its default shapes: 16 sub-envs, 4
messages each, 4 epochs of 16-message minibatches, the LM voice) is timed in two parts:
the rollout (batched incremental sampling, the vector env's steps, the bootstrap values,
then the values and the reference's log-probs scored over the packed rollout:
:func:`baselines.ppo_rollout.score_rollout`) and the update (every PPO minibatch step:
:meth:`~baselines.common.policy.TokenPolicy.evaluate`, the losses, backward, clipping,
Adam).

Right after it, the reference replays the very minibatches the update trained on and
computes, per minibatch, exactly the floor of what ``evaluate`` + ``backward()`` must
(:func:`bench.floor_forward_backward`): the same rows left-padded the same way
(``left_pad``, so every message ends in the last column), the LM body over all their
columns, the output layer only at the columns that predict a message token (the
``reads`` of ``evaluate``: one per message token, none at the prompt), a cross-entropy
on those tokens, the value head on the same hidden states with a squared loss, and one
``backward()``. The value head is in because the update trains the critic in the same
backward; it is one ``Linear(128, 1)``, about 1/1536 of the output layer's cost. It is
the floor: a PPO update cannot do less than read each message token's log-prob and
value and backpropagate through them. What the update does beyond it is its own cost:
the float log-softmax and entropy over the vocabulary at each read, the ratio, clipped
and value losses, gradient clipping and Adam (the reference takes no optimizer step).

Tokens are the real (non-pad) tokens of those minibatches, prompt and message, over all
epochs, so both sides count the same tokens; PPO's figure also pays for its rollout.
The ratio PPO / raw is the share of the floor's training speed that PPO keeps (aim:
>= 0.5). ::

    python -m bench.ppo_speed [--measured 3] [--num-envs 16] [--threads 1] [any PPO flag]
    python -m bench.ppo_speed --smoke    # seconds: 2 envs x 1 message, template voice
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from baselines.common.config import add_config_arguments, config_from_args
from baselines.common.rollout import Message
from baselines.ppo_config import PPOConfig
from baselines.ppo_rollout import Conversations, score_rollout
from baselines.token_ppo import AdaptiveKLController, assign_advantages, minibatches, ppo_step
from bench import floor_forward_backward, parse_args, report_rl_speed
from bench.record import BenchRecord, add_out_argument
from dialog_env.lm.threads import torch_threads


def raw_forward_backward(policy, batch: list[Message]) -> float:
    """The floor of ``policy.evaluate`` + ``backward()`` on ``batch`` (see the module);
    returns the mean negative log-prob of the message tokens."""
    from dialog_env.lm.generation import left_pad

    device = next(policy.parameters()).device
    seqs = [[*m.prompt, *m.tokens] for m in batch]
    ids, mask, positions = left_pad(seqs, policy.codec.pad_id, device)
    width = ids.shape[1]
    # The columns TokenPolicy.evaluate reads: each predicts the next message token.
    reads = torch.zeros_like(ids, dtype=torch.bool)
    for row, m in enumerate(batch):
        reads[row, width - len(m.tokens) - 1 : width - 1] = True
    targets = ids[:, 1:][reads[:, :-1]]
    return floor_forward_backward(
        policy.model, ids, mask, positions, reads, targets, policy.value_head
    )


def measure(config: PPOConfig, iterations: int) -> dict[str, float]:
    from baselines.common.policy import TokenPolicy
    from dialog_env.lm import TINY_MODEL_DIR

    policy = TokenPolicy.load(TINY_MODEL_DIR)
    policy.model.eval()  # as in training: sampling and update score tokens alike
    reference = TokenPolicy.load(TINY_MODEL_DIR).requires_grad_(False).eval()
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr, eps=1e-5)
    kl = AdaptiveKLController(config.kl_init, config.kl_target, config.kl_horizon)
    conversations = Conversations(
        config.num_envs, config.seed, config.env_id, user_model=config.user_model
    )
    totals = dict.fromkeys(("rollout", "update", "raw", "tokens", "padded", "sampled"), 0.0)
    for it in range(iterations + 1):  # the first iteration warms up and is not counted
        t0 = time.perf_counter()
        rollout = conversations.collect(policy, generator, config.messages_per_env)
        score_rollout(policy, reference, rollout, config.minibatch_messages)
        t1 = time.perf_counter()
        assign_advantages(rollout, kl.value, config.gamma, config.lam)
        advantages = np.concatenate([m.advantages for m in rollout.messages])
        scale = (advantages.mean(), advantages.std() + 1e-8)
        batches = minibatches(rollout.messages, config, rng)
        for batch in batches:
            ppo_step(policy, optimizer, batch, config, scale)
        t2 = time.perf_counter()
        for batch in batches:
            raw_forward_backward(policy, batch)
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


SMOKE = {
    "measured": 1,
    "num_envs": 2,
    "messages_per_env": 1,
    "epochs": 1,
    "minibatch_messages": 2,
    "user_model": "template",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measured", type=int, default=3, help="measured iterations")
    skip = ("init", "init_sha256", "out", "iterations", "eval_every", "eval_episodes")
    skip += ("logdir", "progress")
    add_config_arguments(parser, PPOConfig, skip)
    add_out_argument(parser)
    args = parse_args(parser, argv, SMOKE)
    config = config_from_args(args, PPOConfig)
    with BenchRecord("ppo_speed", argv, args) as record, torch_threads(args.threads):
        t = measure(config, args.measured)
        setup = (
            f"token-level PPO, {args.measured} iterations x {config.num_envs} envs x "
            f"{config.messages_per_env} messages, {config.epochs} epochs, minibatch "
            f"{config.minibatch_messages}, user voice {config.user_model}, "
            f"{config.threads} thread(s)"
        )
        report_rl_speed("PPO", setup, t, "minibatch steps", 0.5, record)


if __name__ == "__main__":
    main()
