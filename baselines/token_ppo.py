"""``dialog-bench train ppo``: token-level PPO of an LM agent, with a KL penalty to its init.

Each token of an assistant message is an action (:class:`agents.token_policy.TokenPolicy`,
the LM plus a value head). One iteration:

1. **Rollout.** ``num_envs`` conversations run side by side in a ``DialogVectorEnv``
   (``split="train"``; one batched LM-voice decode per step). Per step the policy samples
   every sub-env's next message in one batched, KV-cached decode, recording each token's
   log-prob, the value of its state and the frozen reference's log-prob (the init model,
   decoded in lockstep). A finished episode is replaced at once by a new one whose seed
   is drawn below ``EVAL_SEED_FLOOR``, so no dev or test episode is trained on.
   Episodes run on across iterations; each sub-env plays ``messages_per_env`` messages.
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
Every ``eval_every`` iterations the greedy agent plays the leaderboard's dev episodes;
the checkpoint with the best dev success (then return) is kept, and the manifest's
``dev_history`` holds one point per eval, ``{iteration, env_steps, dev_success,
dev_return}`` (``env_steps``: trained on so far). TensorBoard logs go to ``--logdir``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from baselines.ppo_rollout import Conversations, Episode, Message, Rollout
from baselines.train import LoRAOptions

__all__ = [
    "AdaptiveKLController",
    "PPOConfig",
    "add_config_arguments",
    "add_parser",
    "assign_advantages",
    "config_from_args",
    "dev_records",
    "dev_scores",
    "gae",
    "kl_stats",
    "main",
    "minibatches",
    "ppo_step",
    "ppo_update",
    "resolve_init",
    "train_ppo",
]

SFT_CHECKPOINT = Path("baselines/checkpoints/sft-expert")


@dataclass
class PPOConfig(LoRAOptions):
    """Everything a run depends on; the defaults are the shipped ``ppo-base`` run's."""

    init: str = field(default="base", metadata={"help": "base | sft | an LM dir/checkpoint"})
    out: Path | None = field(
        default=None,
        metadata={
            "help": "checkpoint dir (default: baselines/checkpoints/ppo-"
            "base, or ppo-sft when the init is an SFT agent)"
        },
    )
    iterations: int = field(default=60, metadata={"help": "rollout + update iterations"})
    num_envs: int = field(default=16, metadata={"help": "conversations side by side"})
    messages_per_env: int = field(default=4, metadata={"help": "messages per sub-env per iter"})
    epochs: int = field(default=4, metadata={"help": "passes over each rollout"})
    minibatch_messages: int = field(default=16, metadata={"help": "messages per minibatch"})
    group_by_length: bool = field(default=True, metadata={"help": "minibatch similar lengths"})
    lr: float = field(default=5e-5, metadata={"help": "Adam learning rate"})
    gamma: float = field(default=1.0, metadata={"help": "discount per token"})
    lam: float = field(default=0.95, metadata={"help": "GAE lambda"})
    clip: float = field(default=0.2, metadata={"help": "PPO ratio clip"})
    vf_coef: float = field(default=0.1, metadata={"help": "value loss weight"})
    vf_clip: float = field(default=0.2, metadata={"help": "value clip around old values"})
    ent_coef: float = field(default=0.001, metadata={"help": "entropy bonus weight"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient norm clip"})
    target_kl: float = field(
        default=0.02, metadata={"help": "stop an update past 1.5x this approx KL (0: never)"}
    )
    kl_init: float = field(default=0.02, metadata={"help": "initial KL penalty beta"})
    kl_target: float = field(default=2.0, metadata={"help": "target KL, nats per message"})
    kl_horizon: int = field(default=1000, metadata={"help": "KL controller horizon, messages"})
    user_model: str = field(default="tiny", metadata={"help": "the training envs' user voice"})
    seed: int = field(default=0, metadata={"help": "sampling, seeds and shuffling"})
    eval_every: int = field(default=15, metadata={"help": "iterations between dev evals"})
    eval_episodes: int = field(default=50, metadata={"help": "dev episodes per eval (0: none)"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads (a tiny LM: 1)"})
    logdir: Path = field(default=Path("runs"), metadata={"help": "TensorBoard log dir"})
    progress: bool = field(default=True, metadata={"help": "show progress bars"})


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


def resolve_init(init: str) -> tuple[Path, str]:
    """The directory ``--init`` names and the paradigm of the agent trained from it:
    ``"rl"`` from a plain LM (the base) or an RL checkpoint, ``"sft-rl"`` from an SFT one."""
    from agents.token_policy import load_lm_dir
    from dialog_env.lm import TINY_MODEL_DIR

    path = {"base": TINY_MODEL_DIR, "sft": SFT_CHECKPOINT}.get(init, Path(init))
    if not path.is_dir():
        hint = " (train it first with `dialog-bench train sft`)" if init == "sft" else ""
        raise ValueError(f"--init {init}: no directory at {path}{hint}")
    _, config = load_lm_dir(path)
    return path, "rl" if config.get("paradigm", "rl") == "rl" else "sft-rl"


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

    def cat(name: str) -> torch.Tensor:
        return torch.as_tensor(np.concatenate([getattr(m, name) for m in batch])).float()

    logprobs, entropy, values = policy.evaluate(
        [m.prompt for m in batch], [m.tokens for m in batch]
    )
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


def dev_records(
    agent,
    episodes: int,
    progress: bool,
    env_id: str = "Dialog-v1",
    env_kwargs: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The results records of the greedy agent on the first ``episodes`` dev episodes of
    ``env_id``: the leaderboard's seeds, the env built with ``env_kwargs`` over the
    spec's kwargs (e.g. ``{"reward": "gold"}``; the set's hash then says so)."""
    from leaderboard.episodes import get_episode_set
    from leaderboard.rollout import AgentMessages, play_episodes

    episode_set = get_episode_set(env_id, "dev", limit=episodes)
    if env_kwargs:
        spec = episode_set.env_spec
        episode_set = dataclasses.replace(
            episode_set, env_spec={**spec, "kwargs": {**spec["kwargs"], **env_kwargs}}
        )
    return play_episodes(
        AgentMessages(lambda: agent, batch_size=32), episode_set, progress=progress, desc="dev"
    )


def dev_scores(agent, episodes: int, progress: bool) -> tuple[float, float]:
    """Success rate and mean return of the greedy agent on the first dev episodes."""
    records = dev_records(agent, episodes, progress)
    return float(np.mean([r["success"] for r in records])), float(
        np.mean([r["return"] for r in records])
    )


# -- the training loop -----------------------------------------------------------------
def train_ppo(config: PPOConfig) -> Path:
    """Train as ``config`` says; write the checkpoint; return its directory."""
    import torch

    threads = torch.get_num_threads()
    # A ~1M-parameter LM's matrices are too small to share: on a busy 2-core machine one
    # thread samples ~10x faster than two that wait on each other.
    torch.set_num_threads(config.threads)
    try:
        return _train(config)
    finally:
        torch.set_num_threads(threads)


def _train(config: PPOConfig) -> Path:
    import torch
    from torch.utils.tensorboard import SummaryWriter
    from tqdm.auto import tqdm

    from agents.checkpoint import write_manifest
    from agents.token_policy import TokenPolicy, load_lm_dir
    from dialog_env.lm.loading import load_causal_lm

    started = time.time()
    init_dir, paradigm = resolve_init(config.init)
    policy = TokenPolicy.load(init_dir)
    policy.model = config.wrap(policy.model)  # --lora: only the adapters train
    policy.model.eval()  # no dropout: sampling and update must score tokens alike
    reference = load_causal_lm(load_lm_dir(init_dir)[0]).model  # cached, frozen
    generator = torch.Generator(next(policy.parameters()).device).manual_seed(config.seed)
    rng = np.random.default_rng(config.seed + 1)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr, eps=1e-5)
    kl_ctl = AdaptiveKLController(config.kl_init, config.kl_target, config.kl_horizon)
    conversations = Conversations(config.num_envs, config.seed, user_model=config.user_model)
    out = Path(config.out or f"baselines/checkpoints/ppo-{'base' if paradigm == 'rl' else 'sft'}")
    writer = SummaryWriter(str(Path(config.logdir) / f"ppo-{out.name}"))

    best: dict[str, Any] = {"score": (-1.0, -math.inf), "iteration": None, "state": None}
    history: list[dict[str, float]] = []
    recent: list = []  # the last 100 training episodes, for the progress bar
    negative_kl = 0
    sampled_tokens = trained_tokens = 0

    def evaluate(iteration: int) -> None:
        success, ret = dev_scores(policy.agent(paradigm), config.eval_episodes, config.progress)
        writer.add_scalar("eval/dev_success", success, iteration)
        writer.add_scalar("eval/dev_return", ret, iteration)
        history.append(
            {
                "iteration": iteration,
                "env_steps": conversations.messages,  # the budget spent before this eval
                "dev_success": success,
                "dev_return": ret,
            }
        )
        tqdm.write(f"iteration {iteration}: dev success {success:.3f}, return {ret:.3f}")
        if (success, ret) > best["score"]:
            best.update(
                score=(success, ret), iteration=iteration, state=copy.deepcopy(policy.state_dict())
            )

    if config.eval_episodes:
        evaluate(0)
    bar = tqdm(range(1, config.iterations + 1), desc="ppo", disable=not config.progress)
    for iteration in bar:
        t0 = time.perf_counter()
        rollout = conversations.collect(policy, reference, generator, config.messages_per_env)
        t1 = time.perf_counter()
        messages, finished = rollout.messages, rollout.finished
        kl = kl_stats(messages)
        if kl["kl/token"] < 0:
            negative_kl += 1
            tqdm.write(
                f"WARNING: negative KL estimate at iteration {iteration}: {kl['kl/token']:.4g} "
                f"nats/token (k3 {kl['kl/k3_token']:.4g}); {negative_kl} so far. A true KL is "
                "never negative: this one is sampling noise, and while it lasts the KL penalty "
                "pays the policy instead of holding it back. If it repeats, sample more per "
                "iteration (--num-envs, --messages-per-env) or lower --lr",
                file=sys.stderr,
            )
        beta = kl_ctl.value
        assign_advantages(rollout, beta, config.gamma, config.lam)
        update = ppo_update(policy, optimizer, messages, config, rng)
        t2 = time.perf_counter()
        kl_ctl.update(kl["kl/message"], len(messages))

        n_tokens = sum(len(m.tokens) for m in messages)
        sampled_tokens += n_tokens
        trained_tokens += int(update["ppo/tokens"])
        recent = (recent + finished)[-100:]
        scalars = {
            **kl,
            **update,
            "kl/beta": beta,
            "kl/negative_estimates": negative_kl,
            "rollout/env_reward_per_message": float(np.mean([m.reward for m in messages])),
            "rollout/message_tokens": n_tokens / len(messages),
            "rollout/entropy": float(np.concatenate([m.entropies for m in messages]).mean()),
            "rollout/value_mean": float(np.mean([m.values.mean() for m in messages])),
            "time/rollout_s": t1 - t0,
            "time/update_s": t2 - t1,
            "budget/env_steps": conversations.messages,
            "speed/sampled_tokens_per_s": n_tokens / (t1 - t0),
        }
        if finished:
            for name, values in zip(Episode._fields, zip(*finished, strict=True), strict=True):
                scalars[f"episode/{name}"] = float(np.mean(values))
        for key, value in scalars.items():
            writer.add_scalar(key, value, iteration)
        if recent:
            bar.set_postfix(
                ret=f"{np.mean([e.env_return for e in recent]):.3f}",
                succ=f"{np.mean([e.success for e in recent]):.2f}",
                kl=f"{kl['kl/message']:.2f}",
                beta=f"{beta:.3f}",
            )
        if config.eval_episodes and (
            iteration % config.eval_every == 0 or iteration == config.iterations
        ):
            evaluate(iteration)
    writer.close()
    conversations.close()
    if best["state"] is not None:
        policy.load_state_dict(best["state"])
    policy.save(out, paradigm)
    write_manifest(
        out,
        seed=config.seed,
        budget={
            "env_steps": conversations.messages,
            "tokens": sampled_tokens,
            "trained_tokens": trained_tokens,
        },
        started=started,
        config={
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()
        },
        init=_portable(init_dir),
        init_weights_sha256=_sha256(load_lm_dir(init_dir)[0] / "model.safetensors"),
        best_iteration=best["iteration"],
        dev_success=best["score"][0] if best["iteration"] is not None else None,
        dev_return=best["score"][1] if best["iteration"] is not None else None,
        dev_episodes=config.eval_episodes,
        dev_history=history,
        negative_kl_estimates=negative_kl,
        final_beta=kl_ctl.value,
    )
    return out


def _sha256(path: Path) -> str | None:
    """Which init weights a run started from (an SFT checkpoint may be trained again)."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _portable(path: Path) -> str:
    """``path`` relative to the working directory when inside it (manifests travel)."""
    path, here = path.resolve(), Path.cwd().resolve()
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)


# -- command line ----------------------------------------------------------------------
def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ppo",
        help="token-level PPO from the base LM (RL) or an SFT agent (SFT->RL)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p)
    p.set_defaults(func=main)


def add_config_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag`` per :class:`PPOConfig` field, with its help and default."""
    from baselines.train import add_config_arguments as add_fields

    add_fields(parser, PPOConfig, skip)


def config_from_args(args: argparse.Namespace) -> PPOConfig:
    """The :class:`PPOConfig` of parsed arguments (fields not given keep their default)."""
    from baselines.train import config_from_args as read_fields

    return read_fields(args, PPOConfig)


def main(args: argparse.Namespace) -> int:
    print(f"wrote {train_ppo(config_from_args(args))}")
    return 0
