"""``dialog-bench train ppo``: token-level PPO of an LM agent, with a KL penalty to its init.

Each token of an assistant message is an action (:class:`baselines.common.policy.TokenPolicy`,
the LM plus a value head). One iteration:

1. **Rollout** (:mod:`baselines.ppo_rollout`). ``num_envs`` conversations of
   ``env_id`` run side by side in a ``DialogVectorEnv`` (``split="train"``; one batched
   LM-voice decode per step). Per step the policy samples every sub-env's next message
   in one batched decode, each conversation keeping its KV cache, recording each token's
   log-prob. A finished episode is replaced at once by a new one whose seed is drawn
   below ``EVAL_SEED_FLOOR``, so no dev or test episode is trained on. Episodes run on
   across iterations; each sub-env plays ``messages_per_env`` messages. Then the values
   of the states and the frozen reference's log-probs (the init model) are scored over
   the rollout, packed, without gradients, the one way GRPO scores its reference too
   (:func:`baselines.common.rollout.score_rows`).
2. **Rewards** per token: ``-beta * (log pi - log pi_ref)`` (the sampled-token KL
   estimate), plus the env's reward on the last token of each message (-0.02 per message,
   +1 on success at the end of the episode).
3. **GAE** over each sub-env's tokens in time order, across message boundaries (gamma=1,
   lambda=0.95): the state after a message's last token is the next prompt; an episode's
   end (terminated or truncated) cuts the stream, the end of the rollout bootstraps from
   V(next prompt).
4. **Update.** ``epochs`` passes over the iteration's messages in shuffled minibatches:
   PPO's clipped policy loss, a clipped value loss and an entropy bonus, averaged over
   tokens; gradients clipped to ``max_grad_norm``; the update stops early once the
   approximate KL to the rollout's policy passes ``1.5 * target_kl``.
5. **KL control** (Ziegler et al. 2019, "Fine-Tuning Language Models from Human
   Preferences"): ``beta`` follows the per-message KL toward ``kl_target``.

The sampled-token KL estimate is unbiased, so it can come out negative on a batch, which
a true KL never is: that is reported loudly and counted (``kl/negative_estimates``).
Before the first iteration, every ``eval_every`` iterations and after the last, the
greedy agent plays the first ``eval_episodes`` of the leaderboard's dev episodes of
``env_id``; the checkpoint keeps the evaluation the one keep-best rule of every trainer
keeps (:mod:`baselines.common.evaluation`: the board metric, then return; an exact tie
keeps the earlier), under ``runs/`` unless ``--out`` says otherwise. Its manifest holds
the rule, the kept iteration (``kept_start`` when it is the init) and the ``curve``, one
point per eval, ``{iteration, env_steps, dev_success, dev_return}`` (``env_steps``:
trained on so far; ``dev_gold`` on a chat id). TensorBoard logs go to ``--logdir``.

The trainer plays the text env, not ``Dialog-Tokens-v1``, for the reasons
:mod:`baselines.grpo` gives: a message sampled against a KV cache and one env step per
message play the same episodes as one step per token, for a fraction of the cost, and
the policy keeps its own codec (``--spell-codes`` starts).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from baselines.common.config import add_config_arguments, config_from_args
from baselines.common.evaluation import KeepBest, evaluate_on_dev
from baselines.common.rollout import Message, token_field
from baselines.common.run import (
    resolve_init,
    tensorboard_writer,
    torch_threads,
    write_run_manifest,
)
from baselines.ppo_config import PPOConfig
from baselines.ppo_rollout import Conversations, Episode, Rollout, score_rollout

__all__ = [
    "AdaptiveKLController",
    "add_parser",
    "assign_advantages",
    "gae",
    "kl_stats",
    "main",
    "minibatches",
    "ppo_step",
    "ppo_update",
    "train_ppo",
]


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    ends: np.ndarray,
    last_value: float,
    gamma: float = 1.0,
    lam: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns of one token stream (Schulman et al. 2016).

    ``ends[t]`` says the episode ended after token ``t`` (nothing bootstraps across it);
    ``last_value`` is the value of the state after the stream, when its episode runs on.

    >>> adv, ret = gae(np.array([0.0, 1.0]), np.array([0.5, 0.5]), np.array([False, True]), 9.0)
    >>> adv.round(3).tolist(), ret.round(3).tolist()
    ([0.475, 0.5], [0.975, 1.0])
    """
    advantages = np.zeros(len(rewards))
    next_value, running = last_value, 0.0
    for t in reversed(range(len(rewards))):
        if ends[t]:
            next_value, running = 0.0, 0.0
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        advantages[t] = running
        next_value = values[t]
    return advantages, advantages + values


class AdaptiveKLController:
    """The KL penalty coefficient of Ziegler et al. (2019), section 2.2.

    ``beta *= 1 + clip(KL / target - 1, -0.2, 0.2) * n / horizon`` after ``n`` samples
    with mean KL ``KL``: beta grows while the policy drifts further than the target and
    shrinks while it stays closer.

    >>> kl = AdaptiveKLController(0.1, target=2.0, horizon=100)
    >>> round(kl.update(4.0, 10), 4), round(kl.update(0.0, 10), 4)
    (0.102, 0.1)
    """

    def __init__(self, init: float, target: float, horizon: int):
        if init < 0 or target <= 0 or horizon <= 0:
            raise ValueError("need init >= 0, target > 0 and horizon > 0")
        self.value, self.target, self.horizon = init, target, horizon

    def update(self, kl: float, n: int) -> float:
        error = float(np.clip(kl / self.target - 1.0, -0.2, 0.2))
        self.value *= 1.0 + error * n / self.horizon
        return self.value


# -- one iteration ---------------------------------------------------------------------
def assign_advantages(rollout: Rollout, beta: float, gamma: float, lam: float) -> None:
    """Per-token rewards (KL penalty + env reward on the last token) and GAE over each
    sub-env's stream of tokens; stored in each message's ``advantages`` and ``returns``."""
    for stream, last_value in zip(rollout.streams, rollout.last_values, strict=True):
        rewards, values, ends = [], [], []
        for m in stream:
            r = -beta * (m.logprobs - m.ref_logprobs)
            r[-1] += m.reward
            rewards.append(r)
            values.append(m.values)
            e = np.zeros(len(m.tokens), dtype=bool)
            e[-1] = m.ends_episode
            ends.append(e)
        adv, ret = gae(
            np.concatenate(rewards),
            np.concatenate(values),
            np.concatenate(ends),
            last_value,
            gamma,
            lam,
        )
        start = 0
        for m in stream:
            end = start + len(m.tokens)
            m.advantages, m.returns = adv[start:end], ret[start:end]
            start = end


def minibatches(messages: list[Message], config: PPOConfig, rng) -> list[list[Message]]:
    """The update's minibatches: ``epochs`` passes over ``messages``, each shuffled.

    With ``group_by_length`` each pass sorts the shuffled messages by length before it
    cuts them into minibatches, and shuffles the minibatches: rows of one minibatch are
    padded to its longest, and prompts range from a dozen tokens to the whole context.
    """
    size = config.minibatch_messages
    out = []
    for _ in range(config.epochs):
        order = list(rng.permutation(len(messages)))
        if config.group_by_length:
            order.sort(key=lambda j: len(messages[j].prompt) + len(messages[j].tokens))
        chunks = [order[k : k + size] for k in range(0, len(order), size)]
        out += [[messages[j] for j in chunks[c]] for c in rng.permutation(len(chunks))]
    return out


def ppo_step(policy, optimizer, batch: list[Message], config: PPOConfig, adv_scale) -> dict:
    """One gradient step of clipped PPO on ``batch``; its losses and diagnostics.

    ``adv_scale`` is the ``(mean, std)`` of the whole rollout's advantages, which whiten
    every minibatch alike.
    """
    import torch

    logprobs, entropy, values = policy.evaluate(
        [m.prompt for m in batch], [m.tokens for m in batch]
    )

    def cat(name: str) -> torch.Tensor:
        return token_field(batch, name, logprobs.device)

    old, adv = cat("logprobs"), (cat("advantages") - adv_scale[0]) / adv_scale[1]
    old_values, returns = cat("values"), cat("returns")
    log_ratio = logprobs - old
    ratio = log_ratio.exp()
    pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - config.clip, 1 + config.clip)).mean()
    clipped = old_values + (values - old_values).clamp(-config.vf_clip, config.vf_clip)
    vf_loss = 0.5 * torch.max((values - returns) ** 2, (clipped - returns) ** 2).mean()
    loss = pg_loss + config.vf_coef * vf_loss - config.ent_coef * entropy.mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
    optimizer.step()
    with torch.no_grad():
        return {
            "loss/policy": float(pg_loss),
            "loss/value": float(vf_loss),
            "loss/entropy": float(entropy.mean()),
            "ppo/approx_kl": float(((ratio - 1) - log_ratio).mean()),
            "ppo/clipfrac": float(((ratio - 1).abs() > config.clip).float().mean()),
            "ppo/grad_norm": float(grad_norm),
        }


def ppo_update(policy, optimizer, messages: list[Message], config: PPOConfig, rng) -> dict:
    """``epochs`` passes of clipped PPO over ``messages``; mean losses and diagnostics.

    The update stops early once a minibatch's approximate KL to the rollout policy
    passes ``1.5 * target_kl`` (as Stable-Baselines3 does): clipping alone does not stop
    a low-entropy policy, such as an SFT agent, from moving far within one update.
    """
    advantages = np.concatenate([m.advantages for m in messages])
    scale = (advantages.mean(), advantages.std() + 1e-8)
    batches = minibatches(messages, config, rng)
    steps = []
    for batch in batches:
        steps.append(ppo_step(policy, optimizer, batch, config, scale))
        if config.target_kl and steps[-1]["ppo/approx_kl"] > 1.5 * config.target_kl:
            break
    stats = {k: float(np.mean([s[k] for s in steps])) for k in steps[0]}
    trained = sum(len(m.prompt) + len(m.tokens) for b in batches[: len(steps)] for m in b)
    return stats | {"ppo/update_fraction": len(steps) / len(batches), "ppo/tokens": trained}


def kl_stats(messages: list[Message]) -> dict[str, float]:
    """The rollout's KL to the reference: per token and per message (sampled-token
    estimate, unbiased, may be negative) and the k3 estimate per token (always >= 0)."""
    log_ratio = np.concatenate([m.logprobs - m.ref_logprobs for m in messages])
    return {
        "kl/token": float(log_ratio.mean()),
        "kl/message": float(np.mean([np.sum(m.logprobs - m.ref_logprobs) for m in messages])),
        "kl/k3_token": float(np.mean(np.expm1(-log_ratio) + log_ratio)),
    }


# -- the training loop -----------------------------------------------------------------
def train_ppo(config: PPOConfig) -> Path:
    """Train as ``config`` says; write the checkpoint the keep-best rule keeps; return its
    directory.

    One function on purpose, as cleanrl's ``ppo.py``: load, then one loop of rollout ->
    score -> KL penalty and GAE -> update -> KL control -> log -> evaluate, then save,
    read top to bottom; each step is a call into the module that holds it."""
    import torch
    from tqdm.auto import tqdm

    from baselines.common.policy import TokenPolicy

    # -- load: the policy, the frozen reference, the envs; every default resolved
    started = time.time()
    init_dir, paradigm, init_sha256 = resolve_init(config.init, config.init_sha256)
    out = config.out or config.default_out(paradigm)
    config = dataclasses.replace(config, out=out, init_sha256=init_sha256)
    policy = TokenPolicy.load(init_dir)
    policy.model = config.wrap(policy.model)  # --lora: only the adapters train
    policy.model.eval()  # no dropout: sampling and update must score tokens alike
    reference = TokenPolicy.load(init_dir).requires_grad_(False).eval()
    generator = torch.Generator(next(policy.parameters()).device).manual_seed(config.seed)
    rng = np.random.default_rng(config.seed + 1)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr, eps=1e-5)
    kl_ctl = AdaptiveKLController(config.kl_init, config.kl_target, config.kl_horizon)
    conversations = Conversations(
        config.num_envs, config.seed, config.env_id, user_model=config.user_model
    )
    writer = tensorboard_writer(config.logdir, out)
    keep = KeepBest(step_key="iteration", start_evaluated=config.eval_episodes > 0)
    recent: list[Episode] = []  # the last 100 training episodes, for the progress bar
    negative_kl = sampled_tokens = trained_tokens = 0

    with torch_threads(config.threads):
        if config.eval_episodes:
            evaluate(policy, paradigm, config, keep, writer, 0, conversations.messages)
        bar = tqdm(range(1, config.iterations + 1), desc="ppo", disable=not config.progress)
        for iteration in bar:
            # -- rollout, then its values and the reference's log-probs (packed, no grad)
            t0 = time.perf_counter()
            rollout = conversations.collect(policy, generator, config.messages_per_env)
            score_rollout(policy, reference, rollout, config.minibatch_messages)
            t1 = time.perf_counter()
            messages = rollout.messages
            kl = kl_stats(messages)
            if kl["kl/token"] < 0:
                negative_kl += 1
                warn_negative_kl(iteration, kl, negative_kl)
            # -- per-token rewards (KL penalty + env reward), GAE, update, KL control
            beta = kl_ctl.value
            assign_advantages(rollout, beta, config.gamma, config.lam)
            update = ppo_update(policy, optimizer, messages, config, rng)
            t2 = time.perf_counter()
            kl_ctl.update(kl["kl/message"], len(messages))
            # -- log
            sampled_tokens += sum(len(m.tokens) for m in messages)
            trained_tokens += int(update["ppo/tokens"])
            recent = (recent + rollout.finished)[-100:]
            scalars = iteration_scalars(rollout, (t0, t1, t2)) | kl | update
            scalars |= {"kl/beta": beta, "kl/negative_estimates": negative_kl}
            scalars["budget/env_steps"] = conversations.messages
            for key, value in scalars.items():
                writer.add_scalar(key, value, iteration)
            if recent:
                bar.set_postfix(
                    ret=f"{np.mean([e.env_return for e in recent]):.3f}",
                    succ=f"{np.mean([e.success for e in recent]):.2f}",
                    kl=f"{kl['kl/message']:.2f}",
                    beta=f"{beta:.3f}",
                )
            # -- evaluate
            if config.eval_episodes and (
                iteration % config.eval_every == 0 or iteration == config.iterations
            ):
                evaluate(policy, paradigm, config, keep, writer, iteration, conversations.messages)
    writer.close()
    conversations.close()

    # -- save
    if keep.state is not None:
        policy.load_state_dict(keep.state)
    policy.save(out, paradigm, env_id=config.env_id)
    write_run_manifest(
        out,
        ["dialog-bench", "train", "ppo"],
        config,
        started=started,
        budget={
            "env_steps": conversations.messages,
            "tokens": sampled_tokens,
            "trained_tokens": trained_tokens,
        },
        keep=keep,
        init_dir=init_dir,
        env_id=config.env_id,
        negative_kl_estimates=negative_kl,
        final_beta=kl_ctl.value,
    )
    return out


def evaluate(policy, paradigm, config, keep, writer, iteration: int, env_steps: int) -> None:
    """Score the greedy agent on dev, offer the point to the keep-best rule, log it."""
    from tqdm.auto import tqdm

    scores = evaluate_on_dev(
        policy.agent(paradigm), config.env_id, config.eval_episodes, progress=config.progress
    )
    keep.offer({"iteration": iteration, "env_steps": env_steps, **scores}, policy.state_dict)
    for key, value in scores.items():
        writer.add_scalar(f"eval/{key}", value, iteration)
    tqdm.write(f"iteration {iteration}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))


def iteration_scalars(rollout: Rollout, times: tuple[float, float, float]) -> dict[str, float]:
    """The rollout's TensorBoard scalars: rewards, sizes, entropy, values, speed."""
    messages, finished = rollout.messages, rollout.finished
    n_tokens = sum(len(m.tokens) for m in messages)
    t0, t1, t2 = times
    scalars = {
        "rollout/env_reward_per_message": float(np.mean([m.reward for m in messages])),
        "rollout/message_tokens": n_tokens / len(messages),
        "rollout/entropy": float(np.concatenate([m.entropies for m in messages]).mean()),
        "rollout/value_mean": float(np.mean([m.values.mean() for m in messages])),
        "time/rollout_s": t1 - t0,
        "time/update_s": t2 - t1,
        "speed/sampled_tokens_per_s": n_tokens / (t1 - t0),
    }
    if finished:
        for name, values in zip(Episode._fields, zip(*finished, strict=True), strict=True):
            scalars[f"episode/{name}"] = float(np.mean(values))
    return scalars


def warn_negative_kl(iteration: int, kl: dict[str, float], count: int) -> None:
    """Say loudly that the sampled KL estimate came out negative, which a KL never is."""
    from tqdm.auto import tqdm

    tqdm.write(
        f"WARNING: negative KL estimate at iteration {iteration}: {kl['kl/token']:.4g} "
        f"nats/token (k3 {kl['kl/k3_token']:.4g}); {count} so far. A true KL is never "
        "negative: this one is sampling noise, and while it lasts the KL penalty pays the "
        "policy instead of holding it back. If it repeats, sample more per iteration "
        "(--num-envs, --messages-per-env) or lower --lr",
        file=sys.stderr,
    )


# -- command line ----------------------------------------------------------------------
def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ppo",
        help="token-level PPO from the base LM (RL) or an SFT agent (SFT->RL)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p, PPOConfig)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    print(f"wrote {train_ppo(config_from_args(args, PPOConfig))}")
    return 0
