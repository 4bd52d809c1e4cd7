"""``dialog-bench train grpo``: group-relative token-level RL (GRPO / RLOO) of an LM agent.

Critic-free: the baseline of an episode's return is the return of other episodes that
started from the very same state. An episode is reproducible from a seed, so a group is
simply ``group_size`` sub-envs reset with one seed. ``--env-id`` picks the env (a text
id: ``Dialog-v1``, booking, or ``Dialog-Chat-v1``, chat, whose reward is ``--env-kwargs
'{"reward": "gold"}'`` or ``"rm"``); the reward trained on is whatever the env returns.
The settings are :class:`~baselines.grpo_config.GRPOConfig`. One iteration:

1. **Rollout.** ``groups`` (K) distinct train seeds, drawn below ``EVAL_SEED_FLOOR`` from
   the run's seed; ``group_size`` (G) sub-envs per seed in one ``DialogVectorEnv`` of K*G
   sub-envs (one batched user-voice decode per step), the G sub-envs of a group reset
   with the same seed, so they open with the same goal and the same user turn and differ
   only by what the policy samples. With ``--seeds greedy-fails`` the K seeds are those,
   among K*G drawn, on which the greedy policy fails (:mod:`baselines.seed_screen`).
   Every episode is played to its end (terminated or truncated). A sub-env whose episode
   ended waits, not stepped (``DialogVectorEnv.step_subenvs`` steps the running ones), so
   exactly one episode per sub-env counts; no message would be a harmless wait on every
   task (a chat user leaves after four tool calls in a row). Messages are sampled with
   :meth:`~baselines.common.policy.TokenPolicy.sample`, batched, each episode keeping
   its KV cache between messages, recording each token's log-prob
   (:mod:`baselines.grpo_groups`).
2. **Advantages** (:func:`~baselines.grpo_groups.group_advantages`) from the group's
   episode returns: ``grpo`` normalizes them, ``(r - mean) / (std + eps)``; ``rloo``
   subtracts the mean of the other G-1 returns. An episode's advantage goes to every
   token the agent wrote in it (user and tool turns are prompt, never trained). With
   ``--credit turn`` each message gets its own instead, from its return-to-go and the
   group's other rollouts at the same turn index
   (:func:`~baselines.grpo_groups.turn_advantages`; docs/turn-credit.md). A group
   whose returns are all equal carries no signal: it is left out of the loss and counted
   (``zero_spread_share``). With ``spread="success"`` a group must also differ in success
   to be trained (DAPO filters prompts whose accuracy is 0 or 1): where no rollout of a
   seed succeeds, its returns differ by step costs only, and training on them teaches
   failing sooner.
3. **Update** (:mod:`baselines.grpo_update`). ``epochs`` passes of shuffled minibatches
   of packed rows (an episode's messages in one row wherever each message's prompt is the
   row up to it, so a transcript is read once, not once per message;
   :func:`~baselines.common.rollout.pack_episode`), one optimizer step per pass with the
   gradients accumulated over its minibatches (so that a group's advantages cancel on
   the tokens its rollouts share): PPO's clipped importance ratio, averaged over tokens,
   plus ``beta`` times an estimate of the KL to the frozen init from ``q = log pi_ref -
   log pi`` on the sampled tokens (``k2 = q^2 / 2`` by default, or DeepSeekMath's
   ``k3``). The reference scores the iteration's rows once, in a no-grad forward before
   the update (it is frozen, so every epoch would get the same numbers; no lockstep
   decode: :func:`baselines.common.rollout.score_rows`, the one way both token trainers
   score it); with ``beta = 0`` and ``--no-track-kl`` it is never loaded. Gradients
   clipped to ``max_grad_norm``; Adam.

**KL from the init** (``--track-kl``, on by default): the reference scores every rollout
of an iteration (the trained groups and the zero-spread ones) in that no-grad forward,
and :func:`rollout_kl` gives the mean per-episode sum over the agent's tokens of
``log pi - log pi_ref`` on the sampled tokens (k1, nats per episode; also per token),
logged as ``kl/episode`` and ``kl/token``. It costs a forward over the rollout (at
``beta > 0`` most of it was paid anyway), never a gradient.

**Tempered sampling.** A policy fresh from SFT has almost no entropy (0.001 nats per
token for ``sft-spelled``, since retired): its G rollouts are G copies, and every group
has zero spread. ``temperature > 1`` draws tokens from ``softmax(logits / T)`` to
diversify a group. The log-probs in the importance ratio stay those of the policy at
temperature 1 (recorded at sampling, rescored at update), so the ratio measures how far
the update moved the policy being trained, and the clip bounds exactly that; the
evaluated agent is that policy, greedy. The tempered draw is not importance-corrected:
the behaviour policy differs from pi, and weighting each token by pi / pi_T would be the
off-policy correction, with a variance that grows with the message. Tempering is
exploration, as in TRL's GRPO, whose ``temperature`` is a sampling setting; but TRL also
divides the logits of its ratio by ``T``, scoring the tempered policy, which is not the
one evaluated here.

Every ``eval_every`` iterations, before the first and after the last, the greedy agent
plays the first ``eval_episodes`` dev episodes of ``env_id`` (the leaderboard's seeds,
the env built with ``--env-kwargs``), and the checkpoint keeps the evaluation that the one
keep-best rule of every trainer keeps (:mod:`baselines.common.evaluation`: the board
metric, then return; ``--keep last``: the final policy). It is an LM agent checkpoint
(its config names ``env_id``) under ``runs/`` unless ``--out`` says otherwise, whose
manifest holds the rule, the kept iteration (``kept_start`` when it is the init),
``env_id``, ``env_kwargs`` and the learning ``curve``, one point per eval::

    {"iteration": 10, "env_steps": 2210,   # updates so far; env steps trained on
     "dev_success": 0.4, "dev_return": 0.61, # return: the proxy when reward="rm"
     "dev_gold": 0.55,                       # episodes' mean_gold (chat only)
     "dev_rm": 0.61,                         # episodes' mean_rm, where the env has it
     "context_gold": [0.9, 0.0, ...],        # each dev episode's gold (chat only)
     "episode_success": [1, 0, ...],         # each dev episode's success (booking)
     "kl": 3.2, "kl_token": 0.04}            # KL from the init (--track-kl)

A point's ``kl`` is that of the policy it scored, measured on the rollouts that policy
samples next (those of iteration ``i + 1``; for the last point, one more round of K*G
rollouts played for nothing else, counted as ``budget.kl_probe_env_steps``); iteration
0 is the init itself, KL 0. ``leaderboard.overoptimization`` reads such curves (gold and proxy
against KL). TensorBoard logs go to ``--logdir``.

**Remembered turns** (``--remember-turns``, off by default): the LM voice's sentences
(and the chat RM's scores) are remembered for the run (``leaderboard.workers.remembering``),
so a turn met again is voiced once: the first turn of a group's rollouts, a screened seed's
turns met again by its groups, the dev episodes every evaluation replays. A remembered
sentence is the one its first batch gave; the voice's batch can change a token only where a
uniform falls within float error of a CDF step (``dialog_env.lm.voice``), hence off by
default. Two more levers are off by default for the same reason: ``--merge-twins`` (the
update reads a group's identical rows once, weighted: :mod:`baselines.grpo_update`) and
``--screen-chunk`` (the screen stops once it has its K failing seeds:
:mod:`baselines.seed_screen`). With all three, the careless lineage's science run trained
the same learning curve, episode for episode, at 1.19x the training episodes per
CPU-hour (``python -m bench.grpo_curves``); ``python -m bench.grpo_speed`` times a whole
run by part (docs/throughput.md).

**Why the text env and not ``Dialog-Tokens-v1``.** The token interface makes every token
an env step with a fixed-size window of ids as its observation, so a policy would re-read
its window once per token, and the user's voice would run once per sub-env as each
message ends. Here a whole message is sampled against the conversation's KV cache and the
text env steps once per message, all sub-envs' voices in one batched decode: the same
episodes (a turn is sent at ``<|end|>`` or the length cap, as there) for a fraction of
the cost. The trainer also keeps its policy's own codec, which writes codes one
character per word for an SFT start trained with ``--spell-codes``; the token interface's
codec does not.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines.common.config import add_config_arguments, config_from_args
from baselines.common.evaluation import (
    DEV_RULE,
    LAST_RULE,
    KeepBest,
    dev_scores,
    evaluate_on_dev,
)
from baselines.common.rollout import pack_episode, score_rows
from baselines.common.run import (
    resolve_init,
    tensorboard_writer,
    torch_threads,
    write_run_manifest,
)
from baselines.grpo_config import GRPOConfig
from baselines.grpo_groups import (
    GroupEpisode,
    collect_groups,
    draw_group_seeds,
    play_groups,
    screened_seeds,
    set_advantages,
    signal_groups,
    untrained_groups,
)
from baselines.grpo_update import grpo_update
from baselines.seed_screen import screen_summary

__all__ = [
    "Budget",
    "add_parser",
    "evaluate",
    "iteration_scalars",
    "main",
    "probe_kl",
    "rollout_kl",
    "score_kl",
]


def rollout_kl(episodes: Sequence[GroupEpisode]) -> dict[str, float]:
    """The sampled episodes' KL from the reference: per episode, the sum over the agent's
    tokens of ``log pi - log pi_ref`` on the sampled tokens (k1, in nats), averaged over
    the episodes (``kl/episode``), and the same sum over all tokens per token
    (``kl/token``). Needs every message's ``ref_logprobs`` (:func:`score_kl`).

    k1 is unbiased for KL(pi || pi_ref) on tokens drawn from pi, so it may come out
    slightly negative; drawn at ``temperature != 1`` it is the log-ratio averaged over the
    tempered draw instead.

    >>> from baselines.common.rollout import Message
    >>> m = Message([1], [2, 3], np.log([0.5, 0.5]), ref_logprobs=np.log([0.25, 0.5]))
    >>> e = GroupEpisode(0, [m], 0.0, False, "")
    >>> {k: round(v, 4) for k, v in rollout_kl([e, GroupEpisode(0, [], 0.0, False, "")]).items()}
    {'kl/episode': 0.3466, 'kl/token': 0.3466}
    """
    per_episode = [
        math.fsum(np.sum(m.logprobs - m.ref_logprobs) for m in e.messages) for e in episodes
    ]
    tokens = sum(len(m.tokens) for e in episodes for m in e.messages)
    return {
        "kl/episode": float(np.mean(per_episode)),
        "kl/token": math.fsum(per_episode) / max(tokens, 1),
    }


@dataclasses.dataclass
class Budget:
    """What a run has spent so far (the manifest's ``budget``)."""

    env_steps: int = 0  # every env step played: rollouts and screens
    episodes: int = 0  # rollout episodes played (K x G a round): the run's training episodes
    cpu_time_s: float = 0.0  # the run's CPU time (this process, from load to save)
    tokens: int = 0  # agent tokens sampled
    trained_tokens: int = 0  # tokens read by the update's forward passes
    kl_probe_env_steps: int = 0  # the last policy's KL probe (played, not trained on)
    screen_env_steps: int = 0  # --seeds greedy-fails's greedy episodes

    def add(self, episodes: list[GroupEpisode], update: dict, screen: dict) -> None:
        """Count an iteration: its rollouts, the screen's episodes and the update."""
        screen_steps = int(screen.get("screen/env_steps", 0))
        self.screen_env_steps += screen_steps
        self.env_steps += sum(len(e.messages) for e in episodes) + screen_steps
        self.episodes += len(episodes)
        self.tokens += sum(len(m.tokens) for e in episodes for m in e.messages)
        self.trained_tokens += int(update.get("update/tokens", 0))


# -- the training loop -----------------------------------------------------------------
def main(config: GRPOConfig) -> Path:
    """Train as ``config`` says; write the checkpoint the keep-best rule keeps (or with
    ``keep="last"`` the final policy); return its directory.

    One function on purpose, as cleanrl's ``ppo.py``: load, then one loop of collect
    groups -> score -> advantages -> update -> log -> evaluate, then save, read top to
    bottom; each step is a call into the module that holds it."""
    import gymnasium as gym
    import torch
    from tqdm.auto import tqdm

    import dialog_env  # noqa: F401  (registers the ids)
    from baselines.common.policy import TokenPolicy
    from leaderboard.workers import remembering

    # -- load: the policy, the frozen reference, the envs; every default resolved
    started, cpu_started = time.time(), time.process_time()
    init_dir, paradigm, init_sha256 = resolve_init(config.init, config.init_sha256)
    out = config.out or config.default_out(init_dir, paradigm)
    config = dataclasses.replace(config, out=out, init_sha256=init_sha256)
    policy = TokenPolicy.load(init_dir)
    policy.model = config.wrap(policy.model)  # --lora: only the adapters train
    policy.model.eval()  # no dropout: sampling and update must score tokens alike
    if config.max_new_tokens:
        policy.max_new_tokens = config.max_new_tokens
    reference = (  # the frozen init: the KL penalty and the KL curve read it
        TokenPolicy.load(init_dir).requires_grad_(False).eval()
        if config.beta > 0 or config.track_kl
        else None
    )
    generator = torch.Generator(next(policy.parameters()).device).manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    optimizer = torch.optim.Adam(policy.model.parameters(), lr=config.lr, eps=1e-5)
    G = config.group_size
    envs = gym.make_vec(config.env_id, num_envs=config.groups * G, **config.training_env_kwargs())
    writer = tensorboard_writer(config.logdir, out)
    rule = LAST_RULE if config.keep == "last" else DEV_RULE
    keep = KeepBest(rule, step_key="iteration", start_evaluated=config.eval_episodes > 0)
    budget, screened = Budget(), []
    choose_seeds = None
    if config.seeds == "greedy-fails":
        choose_seeds = functools.partial(
            screened_seeds, policy=policy, config=config, stats=screened
        )
    kl_due: list[dict[str, Any]] = []  # the eval point whose KL the next rollouts measure

    memo = remembering() if config.remember_turns else contextlib.nullcontext()
    with torch_threads(config.threads), memo:
        if config.eval_episodes:
            kl_due = evaluate(policy, paradigm, config, keep, writer, 0, budget.env_steps)
        bar = tqdm(
            range(1, config.iterations + 1), desc=config.advantage, disable=not config.progress
        )
        for iteration in bar:
            # -- collect groups
            t0 = time.perf_counter()
            screened.clear()
            episodes, kept, rounds = collect_groups(
                envs, policy, rng, generator, config, choose_seeds
            )
            t1 = time.perf_counter()  # the update's time includes the reference's scoring
            # -- score: the reference reads the rollouts once, packed, without gradients
            rows = [row for e in kept for row in pack_episode(e.messages)]
            kl = score_kl(reference, episodes, config) if config.track_kl else {}
            if reference is not None and config.beta > 0:
                score_rows(reference, rows, config.minibatch_rows)
            for point in kl_due:  # the last eval's policy sampled these rollouts
                point.update(kl=kl["kl/episode"], kl_token=kl["kl/token"])
            kl_due = []
            # -- advantages and update
            set_advantages(kept, config)
            update = grpo_update(policy, optimizer, rows, config, rng) if rows else {}
            t2 = time.perf_counter()
            # -- log
            screen = screen_summary(screened)
            budget.add(episodes, update, screen)
            scalars = iteration_scalars(episodes, kept, rounds, config, (t0, t1, t2))
            scalars |= update | kl | screen | {"budget/env_steps": budget.env_steps}
            for key, value in scalars.items():
                writer.add_scalar(key, value, iteration)
            bar.set_postfix(
                ret=f"{scalars['rollout/return']:.3f}", kl=f"{kl.get('kl/episode', 0.0):.3f}"
            )
            # -- evaluate
            if config.eval_episodes and (
                iteration % config.eval_every == 0 or iteration == config.iterations
            ):
                kl_due = evaluate(
                    policy, paradigm, config, keep, writer, iteration, budget.env_steps
                )
        if kl_due:  # the final policy's KL: one more round of rollouts, not trained on
            budget.kl_probe_env_steps = probe_kl(
                envs, policy, reference, rng, generator, config, kl_due
            )
    writer.close()
    envs.close()

    # -- save
    if keep.state is not None:  # --keep last: the last evaluation is of the final policy
        policy.load_state_dict(keep.state)
    policy.save(out, paradigm, env_id=config.env_id)
    budget.cpu_time_s = round(time.process_time() - cpu_started, 1)
    write_run_manifest(
        out,
        ["dialog-bench", "train", "grpo"],
        config,
        started=started,
        budget=dataclasses.asdict(budget),
        keep=keep,
        init_dir=init_dir,
        env_id=config.env_id,
        env_kwargs=config.training_env_kwargs(),
        kept=config.keep,
    )
    return out


def probe_kl(envs, policy, reference, rng, generator, config: GRPOConfig, points) -> int:
    """Give ``points`` (the last evaluation's) the KL from the init of the final policy,
    measured on one round of ``groups`` groups that it plays for nothing else (the other
    points get theirs from the next iteration's rollouts); return the round's env steps."""
    seeds = draw_group_seeds(rng, config.groups)
    probe = play_groups(envs, policy, seeds, config.group_size, generator, config.temperature)
    kl = score_kl(reference, probe, config)
    for point in points:
        point.update(kl=kl["kl/episode"], kl_token=kl["kl/token"])
    return sum(len(e.messages) for e in probe)


def evaluate(policy, paradigm, config, keep, writer, iteration, env_steps) -> list[dict]:
    """Score the greedy agent on dev, offer the point to the keep-best rule and log it.
    Returns the points whose KL is still to come (with ``--track-kl``): this one, whose
    policy samples the next rollouts; at iteration 0 (the init itself) its KL is 0."""
    from tqdm.auto import tqdm

    scores = evaluate_on_dev(
        policy.agent(paradigm),
        config.env_id,
        config.eval_episodes,
        config.env_overrides(),
        config.progress,
        per_episode=True,  # each episode's gold or success: two points compare paired
    )
    point = {"iteration": iteration, "env_steps": env_steps, **scores}
    keep.offer(point, policy.state_dict)
    scalars = {k: v for k, v in scores.items() if isinstance(v, float)}
    for key, value in scalars.items():
        writer.add_scalar(f"eval/{key}", value, env_steps)
    tqdm.write(f"iteration {iteration}: " + ", ".join(f"{k} {v:.3f}" for k, v in scalars.items()))
    if not config.track_kl:
        return []
    if iteration == 0:
        point.update(kl=0.0, kl_token=0.0)
        return []
    return [point]


def score_kl(reference, episodes: list[GroupEpisode], config: GRPOConfig) -> dict[str, float]:
    """Score every rollout with the frozen reference (packed, no grad) and return its KL
    from it (:func:`rollout_kl`)."""
    rows = [row for e in episodes for row in pack_episode(e.messages)]
    score_rows(reference, rows, config.minibatch_rows)
    return rollout_kl(episodes)


def iteration_scalars(episodes, kept, rounds, config: GRPOConfig, times) -> dict[str, float]:
    """The rollout's TensorBoard scalars: its scores, sizes, spread and speed."""
    returns = np.array([e.env_return for e in episodes])
    every = [m for e in episodes for m in e.messages]
    n_tokens = sum(len(m.tokens) for m in every)
    records = [
        {"success": e.success, "return": e.env_return, "metrics": e.metrics} for e in episodes
    ]
    group_size = config.group_size
    groups = signal_groups(len(episodes), group_size, config.advantage)
    flat = untrained_groups(episodes, groups, config.spread)
    t0, t1, t2 = times
    return {
        **{f"rollout/{key}": value for key, value in dev_scores(records).items()},
        "rollout/episode_messages": len(every) / len(episodes),
        "rollout/message_tokens": n_tokens / len(every),
        "rollout/entropy": float(np.concatenate([m.entropies for m in every]).mean()),
        "rollout/distinct_per_group": _distinct_per_group(episodes, group_size),
        "rollout/return_std_in_group": float(returns.reshape(-1, group_size).std(1).mean()),
        "groups/zero_spread_share": float(flat.reshape(-1, group_size)[:, 0].mean()),
        "groups/trained": len(kept) // group_size,
        "groups/rounds": rounds,
        "time/rollout_s": t1 - t0,
        "time/update_s": t2 - t1,
        "speed/episodes_per_s": len(episodes) / (t1 - t0),
        "speed/sampled_tokens_per_s": n_tokens / (t1 - t0),
    }


def _distinct_per_group(episodes: list[GroupEpisode], group_size: int) -> float:
    """Mean number of distinct transcripts (the agent's token ids) in a group."""
    keys = [tuple(tuple(m.tokens) for m in e.messages) for e in episodes]
    return float(
        np.mean([len(set(keys[k : k + group_size])) for k in range(0, len(keys), group_size)])
    )


# -- command line ----------------------------------------------------------------------
def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "grpo",
        help="group-relative token-level RL (GRPO / RLOO) from the base LM or an SFT agent",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p, GRPOConfig)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    print(f"wrote {main(config_from_args(args, GRPOConfig))}")
    return 0
