"""``dialog-bench train grpo``: group-relative token-level RL (GRPO / RLOO) of an LM agent.

Critic-free: the baseline of an episode's return is the return of other episodes that
started from the very same state. An episode is reproducible from a seed, so a group is
simply ``group_size`` sub-envs reset with one seed. ``--env-id`` picks the env (a text
id: ``Dialog-v1``, booking, or ``Dialog-Chat-v1``, chat, whose reward is ``--env-kwargs
'{"reward": "gold"}'`` or ``"rm"``); the reward trained on is whatever the env returns.
One iteration:

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
   :meth:`TokenPolicy.sample_incremental`, batched, each episode keeping its KV cache
   between messages, recording each token's log-prob.
2. **Advantages** (:func:`group_advantages`) from the group's episode returns: ``grpo``
   normalizes them, ``(r - mean) / (std + eps)``; ``rloo`` subtracts the mean of the
   other G-1 returns. An episode's advantage goes to every token the agent wrote in it
   (user and tool turns are prompt, never trained). A group whose returns are all equal
   carries no signal: it is left out of the loss and counted (``zero_spread_share``).
   With ``spread="success"`` a group must also differ in success to be trained (DAPO
   filters prompts whose accuracy is 0 or 1): where no rollout of a seed succeeds, its
   returns differ by step costs only, and training on them teaches failing sooner.
3. **Update** (:mod:`baselines.grpo_update`). ``epochs`` passes of shuffled minibatches
   of packed rows (an episode's messages in one row wherever each message's prompt is the
   row up to it, so a transcript is read once, not once per message;
   :func:`pack_episode`), one optimizer step per pass with the gradients accumulated over
   its minibatches (so that a group's advantages cancel on the tokens its rollouts share;
   :func:`grpo_update`): PPO's clipped importance ratio, averaged over tokens, plus
   ``beta`` times an estimate of the KL to the frozen init from ``q = log pi_ref - log
   pi`` on the sampled tokens (:func:`kl_penalty`: ``k2 = q^2 / 2`` by default, or
   DeepSeekMath's ``k3``). The reference scores the iteration's rows once, in a no-grad
   forward before the update (it is frozen, so every epoch would get the same numbers; no
   lockstep decode); with ``beta = 0`` and ``--no-track-kl`` it is never loaded.
   Gradients clipped to ``max_grad_norm``; Adam.

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

Every ``eval_every`` iterations, and before the first, the greedy agent plays the first
``eval_episodes`` dev episodes of ``env_id`` (the leaderboard's seeds, the env built
with ``--env-kwargs``; ``token_ppo.dev_records``); the best on dev (success, then
return), or with ``--keep last`` the final policy, is saved as an LM agent checkpoint
(its config names ``env_id``) whose manifest holds ``env_id``, ``env_kwargs`` and the
learning ``curve``, one point per eval::

    {"iteration": 10, "env_steps": 2210,   # updates so far; env steps trained on
     "dev_success": 0.4, "dev_return": 0.61, # return: the proxy when reward="rm"
     "dev_gold": 0.55,                       # episodes' mean_gold (chat only)
     "dev_rm": 0.61,                         # episodes' mean_rm, where the env has it
     "kl": 3.2, "kl_token": 0.04}            # KL from the init (--track-kl)

A point's ``kl`` is that of the policy it scored, measured on the rollouts that policy
samples next (those of iteration ``i + 1``; for the last point, one more round of K*G
rollouts played for nothing else, counted as ``budget.kl_probe_env_steps``); iteration
0 is the init itself, KL 0. ``baselines.overopt`` reads such curves (gold and proxy
against KL). TensorBoard logs go to ``--logdir``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from baselines.demos import parse_env_kwargs
from baselines.grpo_update import (
    KL_ESTIMATORS,
    Row,
    grpo_loss,
    grpo_step,
    grpo_update,
    kl_penalty,
    pack_episode,
    row_minibatches,
    score_reference,
)
from baselines.ppo_rollout import Message, _strip_end
from baselines.seed_screen import SEED_CHOICES, screen_seeds, screen_summary
from baselines.token_ppo import dev_records, resolve_init
from baselines.train import LoRAOptions, add_config_arguments, config_from_args
from dialog_env.lm.sessions import ConversationCache
from dialog_env.registration import TEXT_ENV_IDS

__all__ = [
    "ADVANTAGES",
    "KL_ESTIMATORS",
    "GRPOConfig",
    "GroupEpisode",
    "Row",
    "add_parser",
    "collect_groups",
    "draw_group_seeds",
    "grpo_loss",
    "grpo_step",
    "grpo_update",
    "group_advantages",
    "kl_penalty",
    "main",
    "pack_episode",
    "play_groups",
    "rollout_kl",
    "row_minibatches",
    "score_means",
    "score_reference",
    "untrained_groups",
    "zero_spread",
]

ADVANTAGES = ("grpo", "rloo", "batch")
#: What a group must vary in to be trained (``--spread``): its returns, or its successes.
SPREADS = ("return", "success")
#: Env kwargs that have a field of their own, or that a run fixes (train split).
_FIXED_ENV_KWARGS = ("split", "user_model", "task", "interface", "num_envs")


@dataclass
class GRPOConfig(LoRAOptions):
    """Everything a run depends on."""

    init: str = field(default="base", metadata={"help": "base | sft | an LM dir/checkpoint"})
    env_id: str = field(
        default="Dialog-v1",
        metadata={"help": "the env trained on and evaluated on", "choices": TEXT_ENV_IDS},
    )
    env_kwargs: str = field(
        default="",
        metadata={
            "help": "JSON object of further env kwargs, for the training and the dev envs, "
            'e.g. \'{"reward": "gold"}\' (chat: the reward, gold | rm)'
        },
    )
    train_env_kwargs: str = field(
        default="",
        metadata={
            "help": "JSON object of env kwargs for the training envs only, over --env-kwargs, "
            'e.g. \'{"venue_names": "shuffled"}\' (booking: venue names drawn anew each '
            "episode, so they must be read, not remembered); dev episodes never get them"
        },
    )
    out: Path | None = field(
        default=None,
        metadata={
            "help": "checkpoint dir (default: baselines/checkpoints/<advantage>-base, or "
            "<advantage>-<init dir name> when the init is an SFT agent; then "
            "-<env> for an env other than Dialog-v1, e.g. grpo-base-chat-v1)"
        },
    )
    iterations: int = field(default=40, metadata={"help": "rollout + update iterations"})
    groups: int = field(default=8, metadata={"help": "K: distinct seeds per iteration"})
    group_size: int = field(default=8, metadata={"help": "G: rollouts per seed (>= 2)"})
    advantage: str = field(
        default="grpo",
        metadata={
            "help": "grpo | rloo: from the returns of each seed's group | batch: r minus the "
            "mean of the round's other returns (for starts whose rollouts of a seed are "
            "copies: the signal is across seeds; --group-size 1 allowed)",
            "choices": ADVANTAGES,
        },
    )
    adv_eps: float = field(default=1e-8, metadata={"help": "grpo: eps in (r-mean)/(std+eps)"})
    temperature: float = field(
        default=1.0, metadata={"help": "sampling temperature (log-probs stay at T=1)"}
    )
    max_new_tokens: int = field(default=0, metadata={"help": "longest message (0: the init's)"})
    epochs: int = field(default=1, metadata={"help": "passes over each rollout"})
    minibatch_rows: int = field(
        default=16, metadata={"help": "packed rows (an episode or a part of one) per minibatch"}
    )
    step_over: str = field(
        default="pass",
        metadata={
            "help": "pass: one optimizer step per pass over the rollout (a group's "
            "advantages cancel on shared tokens) | minibatch: a step per minibatch",
            "choices": ("pass", "minibatch"),
        },
    )
    group_by_length: bool = field(default=True, metadata={"help": "minibatch similar lengths"})
    lr: float = field(default=2e-5, metadata={"help": "Adam learning rate"})
    clip: float = field(default=0.2, metadata={"help": "importance ratio clip"})
    beta: float = field(default=0.02, metadata={"help": "KL penalty to the init (0: none)"})
    kl_estimator: str = field(
        default="k2",
        metadata={
            "help": "k2: q^2/2 (gradient linear in q) | k3: exp(q)-q-1 (unbounded)",
            "choices": KL_ESTIMATORS,
        },
    )
    resample_rounds: int = field(
        default=0,
        metadata={
            "help": "dynamic sampling: up to this many extra rounds of K fresh seeds per "
            "iteration, to replace groups with zero return spread (DAPO)"
        },
    )
    spread: str = field(
        default="return",
        metadata={
            "help": "which spread makes a group worth training: return (any difference) | "
            "success (DAPO's accuracy filter: a group that all fails or all succeeds is "
            "skipped and counted, even where step costs make its returns differ; on a seed "
            "no rollout solves, those differences only teach failing sooner)",
            "choices": SPREADS,
        },
    )
    seeds: str = field(
        default="random",
        metadata={
            "help": "random: each round's K train seeds drawn at random | greedy-fails: "
            "K*G candidates drawn, each played once by the greedy policy, and the K "
            "groups played on those it fails (then on solved ones, if too few fail); "
            "the screen's episodes count in the env-step budget",
            "choices": SEED_CHOICES,
        },
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient norm clip"})
    user_model: str = field(
        default="",
        metadata={
            "help": "the training envs' user voice (empty: the env's own, tiny on Dialog-v1, "
            "template on Dialog-Chat-v1; dev episodes always use the env's own)"
        },
    )
    track_kl: bool = field(
        default=True,
        metadata={
            "help": "score every rollout with the frozen init to record the KL from it (in "
            "the curve; loads the init also at beta 0)"
        },
    )
    seed: int = field(default=0, metadata={"help": "episode seeds, sampling and shuffling"})
    eval_every: int = field(default=10, metadata={"help": "iterations between dev evals"})
    eval_episodes: int = field(default=50, metadata={"help": "dev episodes per eval (0: none)"})
    keep: str = field(
        default="best",
        metadata={
            "help": "best (on dev) | last: the policy the checkpoint holds",
            "choices": ("best", "last"),
        },
    )
    threads: int = field(default=1, metadata={"help": "torch CPU threads (a tiny LM: 1)"})
    logdir: Path = field(default=Path("runs"), metadata={"help": "TensorBoard log dir"})
    progress: bool = field(default=True, metadata={"help": "show progress bars"})

    def __post_init__(self) -> None:
        if self.advantage not in ADVANTAGES:
            raise ValueError(f"advantage must be one of {ADVANTAGES}, got {self.advantage!r}")
        smallest = 1 if self.advantage == "batch" else 2
        if self.group_size < smallest or self.groups < 1:
            raise ValueError(
                f"need groups >= 1 and group_size >= {smallest} (a baseline needs others)"
            )
        if self.advantage == "batch" and self.groups * self.group_size < 2:
            raise ValueError("advantage batch needs groups x group_size >= 2")
        if self.keep not in ("best", "last"):
            raise ValueError(f"keep must be best or last, got {self.keep!r}")
        if not self.temperature > 0 or self.beta < 0:
            raise ValueError("need temperature > 0 and beta >= 0")
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ValueError(
                f"kl_estimator must be one of {KL_ESTIMATORS}, got {self.kl_estimator!r}"
            )
        if self.step_over not in ("pass", "minibatch"):
            raise ValueError(f"step_over must be pass or minibatch, got {self.step_over!r}")
        if self.seeds not in SEED_CHOICES:
            raise ValueError(f"seeds must be one of {SEED_CHOICES}, got {self.seeds!r}")
        if self.seeds == "greedy-fails" and self.advantage == "batch":
            raise ValueError("seeds greedy-fails trains seeded groups: not with advantage batch")
        if self.spread not in SPREADS:
            raise ValueError(f"spread must be one of {SPREADS}, got {self.spread!r}")
        if self.resample_rounds < 0:
            raise ValueError(f"resample_rounds must be >= 0, got {self.resample_rounds}")
        if self.env_id not in TEXT_ENV_IDS:
            raise ValueError(f"env_id must be one of {TEXT_ENV_IDS}, got {self.env_id!r}")
        # A malformed --env-kwargs / --train-env-kwargs fails now, not after the first eval.
        self.env_overrides()
        self.env_overrides("train_env_kwargs")

    def env_overrides(self, name: str = "env_kwargs") -> dict[str, Any]:
        """The JSON field ``name`` (``env_kwargs`` or ``train_env_kwargs``) as a dict
        (``{}`` when empty).

        >>> GRPOConfig(env_id="Dialog-Chat-v1", env_kwargs='{"reward": "gold"}').env_overrides()
        {'reward': 'gold'}
        """
        kwargs = parse_env_kwargs(getattr(self, name), name)
        fixed = sorted(set(kwargs) & set(_FIXED_ENV_KWARGS))
        if fixed:
            raise ValueError(f"{name} may not set {', '.join(fixed)} (a run fixes them)")
        return kwargs

    def training_env_kwargs(self) -> dict[str, Any]:
        """What ``gymnasium.make_vec(env_id, ...)`` gets for the training envs.

        >>> GRPOConfig(train_env_kwargs='{"venue_names": "shuffled"}').training_env_kwargs()
        {'split': 'train', 'venue_names': 'shuffled'}
        """
        voice = {"user_model": self.user_model} if self.user_model else {}
        return {
            "split": "train",
            **self.env_overrides(),
            **self.env_overrides("train_env_kwargs"),
            **voice,
        }


# -- advantages ------------------------------------------------------------------------
def zero_spread(returns: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per episode: whether every return of its group is the same (no signal).

    >>> zero_spread(np.array([1.0, 1.0, 0.0, 1.0]), np.array([0, 0, 1, 1])).tolist()
    [True, True, False, False]
    """
    returns, groups = np.asarray(returns, dtype=float), np.asarray(groups)
    out = np.zeros(len(returns), dtype=bool)
    for g in np.unique(groups):
        members = groups == g
        out[members] = np.ptp(returns[members]) == 0
    return out


def untrained_groups(episodes, groups: np.ndarray, spread: str = "return") -> np.ndarray:
    """Per episode: whether its group is left out of the update, for lack of a spread in
    its returns (``spread="return"``) or in its successes (``"success"``; a group whose
    returns are all equal has equal successes too, so it is left out under both)."""
    returns = np.array([e.env_return for e in episodes])
    flat = zero_spread(returns, groups)
    if spread == "success":
        flat |= zero_spread(np.array([float(e.success) for e in episodes]), groups)
    return flat


def group_advantages(
    returns: np.ndarray, groups: np.ndarray, kind: str = "grpo", eps: float = 1e-8
) -> np.ndarray:
    """Each episode's advantage from the returns of its group (``groups[i]``: its id).

    ``grpo``: ``(r - mean) / (std + eps)`` over the group (population std; DeepSeekMath,
    TRL). ``rloo``: ``r_i`` minus the mean of the group's other returns (Ahmadian et al.
    2024). ``batch``: ``rloo`` over every episode given, whatever its group (REINFORCE
    with a leave-one-out baseline of the whole round: the signal between seeds, for a
    policy whose rollouts of one seed are copies). Each sums to 0 over a group (``batch``:
    over all); a group of equal returns gets 0 everywhere.

    >>> r, g = np.array([1.0, 0.0, -0.1, -0.1, 0.5, 0.5]), np.array([0, 0, 1, 1, 2, 2])
    >>> group_advantages(r, g, "grpo").round(6).tolist()
    [1.0, -1.0, 0.0, 0.0, 0.0, 0.0]
    >>> group_advantages(np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(4), "rloo").round(6).tolist()
    [1.0, -0.333333, -0.333333, -0.333333]
    """
    if kind not in ADVANTAGES:
        raise ValueError(f"kind must be one of {ADVANTAGES}, got {kind!r}")
    returns, groups = np.asarray(returns, dtype=float), np.asarray(groups)
    if kind == "batch":
        kind, groups = "rloo", np.zeros(len(returns), dtype=int)
    advantages = np.zeros(len(returns))
    for g in np.unique(groups):
        members = groups == g
        r = returns[members]
        if len(r) < 2:
            raise ValueError(f"group {g!r} has {len(r)} episode: a baseline needs >= 2")
        if np.ptp(r) == 0:
            continue
        if kind == "grpo":
            advantages[members] = (r - r.mean()) / (r.std() + eps)
        else:
            advantages[members] = r - (r.sum() - r) / (len(r) - 1)
    return advantages


# -- rollout ---------------------------------------------------------------------------
@dataclass
class GroupEpisode:
    """One played episode: its seed, the agent's messages, return and outcome; its
    ``metrics`` are the env's episode metrics (chat: ``mean_gold``, and ``mean_rm``
    where the env reports RM scores)."""

    seed: int
    messages: list[Message]
    env_return: float
    success: bool
    first_observation: str
    metrics: dict[str, Any] = field(default_factory=dict)


def draw_group_seeds(rng: np.random.Generator, k: int) -> list[int]:
    """``k`` distinct train seeds, all below ``EVAL_SEED_FLOOR`` (never a dev or test one)."""
    from leaderboard.episodes import EVAL_SEED_FLOOR

    seeds: list[int] = []
    while len(seeds) < k:
        seed = int(rng.integers(0, EVAL_SEED_FLOOR))
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def play_groups(
    envs, policy, seeds: Sequence[int], group_size: int, generator, temperature: float = 1.0
) -> list[GroupEpisode]:
    """One episode per sub-env of ``envs`` (``len(seeds) * group_size`` of them), sub-envs
    ``[k * G, (k + 1) * G)`` on ``seeds[k]``; episodes in sub-env order.

    Only the sub-envs whose episode runs are stepped (``envs.step_subenvs``): a finished
    one is left as it is until the next reset, since no message is harmless on every
    task (a chat user leaves after ``patience`` tool calls in a row)."""
    n = len(seeds) * group_size
    if envs.num_envs != n:
        raise ValueError(
            f"{len(seeds)} groups of {group_size} need {n} sub-envs, not {envs.num_envs}"
        )
    episode_seeds = [int(s) for s in seeds for _ in range(group_size)]
    observations, _ = envs.reset(seed=episode_seeds)
    observations = list(observations)
    first = list(observations)
    messages: list[list[Message]] = [[] for _ in range(n)]
    success = [False] * n
    metrics: list[dict[str, Any]] = [{} for _ in range(n)]
    rm_scores: list[list[float]] = [[] for _ in range(n)]
    running = list(range(n))
    # Each episode keeps its KV cache between messages (the weights are fixed during the
    # rollout): a message costs its new turns, not the transcript.
    sessions = ConversationCache(policy.codec.pad_id, max_conversations=max(1, n))
    while running:
        prompts = [policy.encode(observations[i]) for i in running]
        sampled = policy.sample_incremental(
            prompts, running, sessions, generator, temperature=temperature
        )
        actions = [policy.codec.decode_message(_strip_end(policy, t)) for t in sampled.tokens]
        results = envs.step_subenvs(running, actions)
        ended = []
        for j, (i, (obs, reward, terminated, truncated, info)) in enumerate(
            zip(running, results, strict=True)
        ):
            done = terminated or truncated
            messages[i].append(
                Message(
                    prompts[j],
                    sampled.tokens[j],
                    np.array(sampled.logprobs[j]),
                    np.zeros(0),  # the reference is scored at update time
                    np.array(sampled.values[j]),
                    np.array(sampled.entropies[j]),
                    reward,
                    done,
                )
            )
            observations[i] = obs
            if "rm" in info:  # a reply's reward-model score, beside its gold terms
                rm_scores[i].append(float(info["rm"]))
            if done:  # a time-limit truncation ends the episode without success
                success[i] = bool(info.get("success", False))
                metrics[i] = _episode_metrics(info, envs.envs[i], rm_scores[i])
                ended.append(i)
        for i in ended:
            sessions.drop(i)
        running = [i for i in running if i not in ended]
    return [
        GroupEpisode(
            episode_seeds[i],
            messages[i],
            math.fsum(m.reward for m in messages[i]),
            success[i],
            first[i],
            metrics[i],
        )
        for i in range(n)
    ]


def _episode_metrics(info: dict, env, rm_scores: list[float]) -> dict[str, Any]:
    """The env's metrics of an ended episode (read off the env when the time limit cut
    it), with ``mean_rm`` (summed per request, as ``mean_gold`` is) from the replies'
    ``info["rm"]`` when the env reports those but not the mean."""
    metrics = dict(info["metrics"] if "metrics" in info else env.unwrapped.episode_summary()[1])
    if rm_scores and "mean_rm" not in metrics:
        metrics["mean_rm"] = math.fsum(rm_scores) / metrics.get("requests", len(rm_scores))
    return metrics


def score_means(
    returns: Sequence[float], successes: Sequence[bool], metrics: Sequence[dict]
) -> dict[str, float]:
    """Mean success and return of some episodes, and their mean ``gold`` and ``rm``
    scores where every episode's metrics hold them (``mean_gold``, ``mean_rm``).

    >>> score_means([0.5, 1.0], [False, True], [{"mean_gold": 0.4}, {"mean_gold": 1.0}])
    {'success': 0.5, 'return': 0.75, 'gold': 0.7}
    >>> score_means([-0.1], [False], [{"f1": 0.0}])
    {'success': 0.0, 'return': -0.1}
    """
    out = {"success": float(np.mean(successes)), "return": float(np.mean(returns))}
    for name, key in (("gold", "mean_gold"), ("rm", "mean_rm")):
        if metrics and all(key in m for m in metrics):
            out[name] = float(np.mean([m[key] for m in metrics]))
    return out


def rollout_kl(episodes: Sequence[GroupEpisode]) -> dict[str, float]:
    """The sampled episodes' KL from the reference: per episode, the sum over the agent's
    tokens of ``log pi - log pi_ref`` on the sampled tokens (k1, in nats), averaged over
    the episodes (``kl/episode``), and the same sum over all tokens per token
    (``kl/token``). Needs every message's ``ref_logprobs`` (:func:`score_reference`).

    k1 is unbiased for KL(pi || pi_ref) on tokens drawn from pi, so it may come out
    slightly negative; drawn at ``temperature != 1`` it is the log-ratio averaged over the
    tempered draw instead.

    >>> from baselines.ppo_rollout import Message
    >>> z = np.zeros(0)
    >>> m = Message([1], [2, 3], np.log([0.5, 0.5]), np.log([0.25, 0.5]), z, z, 0.0, True)
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


def collect_groups(envs, policy, rng, generator, config: GRPOConfig, choose_seeds=draw_group_seeds):
    """Play rounds of ``groups`` seeded groups until ``groups`` of them have a return
    spread, or ``1 + resample_rounds`` rounds are played (DAPO's dynamic sampling: a
    group of equal returns trains nothing, so its place goes to a fresh seed). Each
    round's seeds are ``choose_seeds(rng, groups)`` (:func:`draw_group_seeds`, or a
    screen of them: :mod:`baselines.seed_screen`).

    Sets each trained episode's per-token ``advantages`` (:func:`group_advantages`; the
    agent's tokens only: prompts are not trained). Returns every episode played, the
    episodes to train on (at most ``groups`` groups, in play order) and the rounds played.
    """
    K, G = config.groups, config.group_size
    played: list[GroupEpisode] = []
    kept: list[GroupEpisode] = []
    rounds = 0
    while rounds <= config.resample_rounds and len(kept) < K * G:
        episodes = play_groups(envs, policy, choose_seeds(rng, K), G, generator, config.temperature)
        rounds += 1
        played += episodes
        returns = np.array([e.env_return for e in episodes])
        groups = _signal_groups(len(episodes), G, config.advantage)
        advantages = group_advantages(returns, groups, config.advantage, config.adv_eps)
        flat = untrained_groups(episodes, groups, config.spread)
        for k in range(K):
            if flat[k * G] or len(kept) >= K * G:
                continue
            for j in range(k * G, (k + 1) * G):
                for m in episodes[j].messages:
                    m.advantages = np.full(len(m.tokens), advantages[j])
                kept.append(episodes[j])
    return played, kept, rounds


# -- the training loop -----------------------------------------------------------------
def main(config: GRPOConfig) -> Path:
    """Train as ``config`` says; write the best-on-dev checkpoint; return its directory."""
    import gymnasium as gym
    import torch
    from torch.utils.tensorboard import SummaryWriter
    from tqdm.auto import tqdm

    import dialog_env  # noqa: F401  (registers the ids)
    from agents.checkpoint import write_manifest
    from agents.token_policy import TokenPolicy, load_lm_dir
    from baselines.token_ppo import _portable, _sha256

    started = time.time()
    init_dir, paradigm = resolve_init(config.init)
    policy = TokenPolicy.load(init_dir)
    policy.model = config.wrap(policy.model)  # --lora: only the adapters train
    policy.model.eval()  # no dropout: sampling and update must score tokens alike
    if config.max_new_tokens:
        policy.max_new_tokens = config.max_new_tokens
    reference = None  # the frozen init: the KL penalty and the KL curve read it
    if config.beta > 0 or config.track_kl:
        reference = TokenPolicy.load(init_dir).requires_grad_(False).eval()
    generator = torch.Generator(next(policy.parameters()).device).manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    optimizer = torch.optim.Adam(policy.model.parameters(), lr=config.lr, eps=1e-5)
    K, G = config.groups, config.group_size
    envs = gym.make_vec(config.env_id, num_envs=K * G, **config.training_env_kwargs())
    name = "base" if paradigm == "rl" else Path(init_dir).name
    if config.env_id != "Dialog-v1":
        name += "-" + config.env_id.removeprefix("Dialog-").lower()
    out = Path(config.out or f"baselines/checkpoints/{config.advantage}-{name}")
    writer = SummaryWriter(str(Path(config.logdir) / f"{config.advantage}-{out.name}"))

    best: dict[str, Any] = {"score": (-1.0, -math.inf), "iteration": None, "state": None}
    curve: list[dict[str, float]] = []
    # The curve point whose policy's KL is still to come: that of the next rollouts,
    # which the very policy it scored samples.
    pending: list[dict[str, float]] = []
    env_steps = sampled_tokens = trained_tokens = probe_steps = screen_steps = 0
    screened: list[dict[str, float]] = []  # this iteration's screens (greedy-fails)

    def choose_seeds(rng: np.random.Generator, k: int) -> list[int]:
        if config.seeds == "random":
            return draw_group_seeds(rng, k)
        candidates = draw_group_seeds(rng, K * G)
        env_kwargs = config.training_env_kwargs()
        chosen, stats = screen_seeds(policy.agent, config.env_id, env_kwargs, candidates, k)
        screened.append(stats)
        return chosen

    def evaluate(iteration: int) -> None:
        records = dev_records(
            policy.agent(paradigm),
            config.eval_episodes,
            config.progress,
            config.env_id,
            config.env_overrides(),
        )
        scores = score_means(
            [r["return"] for r in records],
            [r["success"] for r in records],
            [r["metrics"] for r in records],
        )
        point = {"iteration": iteration, "env_steps": env_steps}
        point |= {f"dev_{key}": value for key, value in scores.items()}
        for key, value in scores.items():
            writer.add_scalar(f"eval/dev_{key}", value, env_steps)
        if config.track_kl and iteration == 0:  # the init itself
            record_kl(point, {"kl/episode": 0.0, "kl/token": 0.0})
        elif config.track_kl:
            pending.append(point)
        curve.append(point)
        shown = ", ".join(f"{key} {value:.3f}" for key, value in scores.items())
        tqdm.write(f"iteration {iteration}: dev {shown}")
        success, ret = scores["success"], scores["return"]
        if (success, ret) > best["score"]:
            best.update(
                score=(success, ret), iteration=iteration, state=copy.deepcopy(policy.state_dict())
            )

    def record_kl(point: dict[str, float], kl: dict[str, float]) -> None:
        point.update(kl=kl["kl/episode"], kl_token=kl["kl/token"])
        writer.add_scalar("eval/kl", point["kl"], point["env_steps"])

    def score_kl(episodes: list[GroupEpisode]) -> dict[str, float]:
        rows = [row for e in episodes for row in pack_episode(e.messages)]
        score_reference(reference, rows, config.minibatch_rows)
        return rollout_kl(episodes)

    with _torch_threads(config.threads):
        if config.eval_episodes:
            evaluate(0)
        bar = tqdm(
            range(1, config.iterations + 1), desc=config.advantage, disable=not config.progress
        )
        for iteration in bar:
            t0 = time.perf_counter()
            screened.clear()
            episodes, kept, rounds = collect_groups(
                envs, policy, rng, generator, config, choose_seeds
            )
            t1 = time.perf_counter()  # the update's time includes the reference's scoring
            kl = score_kl(episodes) if config.track_kl else {}
            if pending:
                record_kl(pending.pop(), kl)
            returns = np.array([e.env_return for e in episodes])
            flat = untrained_groups(
                episodes, _signal_groups(len(episodes), G, config.advantage), config.spread
            )
            rows = [row for e in kept for row in pack_episode(e.messages)]
            update = grpo_update(policy, reference, optimizer, rows, config, rng) if rows else {}
            t2 = time.perf_counter()

            every = [m for e in episodes for m in e.messages]
            n_tokens = sum(len(m.tokens) for m in every)
            screen = screen_summary(screened)
            screen_steps += screen.get("screen/env_steps", 0)
            env_steps += len(every) + screen.get("screen/env_steps", 0)
            sampled_tokens += n_tokens
            trained_tokens += int(update.get("update/tokens", 0))
            scalars = {
                **update,
                **kl,
                **screen,
                **{
                    f"rollout/{key}": value
                    for key, value in score_means(
                        returns, [e.success for e in episodes], [e.metrics for e in episodes]
                    ).items()
                },
                "rollout/episode_messages": len(every) / len(episodes),
                "rollout/message_tokens": n_tokens / len(every),
                "rollout/entropy": float(np.concatenate([m.entropies for m in every]).mean()),
                "rollout/distinct_per_group": _distinct_per_group(episodes, G),
                "rollout/return_std_in_group": float(returns.reshape(-1, G).std(1).mean()),
                "groups/zero_spread_share": float(flat.reshape(-1, G)[:, 0].mean()),
                "groups/trained": len(kept) // G,
                "groups/rounds": rounds,
                "time/rollout_s": t1 - t0,
                "time/update_s": t2 - t1,
                "speed/episodes_per_s": len(episodes) / (t1 - t0),
                "speed/sampled_tokens_per_s": n_tokens / (t1 - t0),
                "budget/env_steps": env_steps,
            }
            for key, value in scalars.items():
                writer.add_scalar(key, value, iteration)
            bar.set_postfix(
                ret=f"{scalars['rollout/return']:.3f}",
                succ=f"{scalars['rollout/success']:.2f}",
                zero=f"{scalars['groups/zero_spread_share']:.2f}",
                kl=f"{kl.get('kl/episode', 0.0):.3f}",
                **({"greedy": f"{screen['screen/greedy_success']:.2f}"} if screen else {}),
            )
            if config.eval_episodes and (
                iteration % config.eval_every == 0 or iteration == config.iterations
            ):
                evaluate(iteration)
        if pending:  # the final policy's KL: one more round of rollouts, not trained on
            probe = play_groups(
                envs, policy, draw_group_seeds(rng, K), G, generator, config.temperature
            )
            probe_steps = sum(len(e.messages) for e in probe)
            record_kl(pending.pop(), score_kl(probe))
    writer.close()
    envs.close()
    if config.keep == "best" and best["state"] is not None:
        policy.load_state_dict(best["state"])
    policy.save(out, paradigm, env_id=config.env_id)
    write_manifest(
        out,
        seed=config.seed,
        budget={
            "env_steps": env_steps,
            "tokens": sampled_tokens,
            "trained_tokens": trained_tokens,
            "kl_probe_env_steps": probe_steps,
            "screen_env_steps": screen_steps,
        },
        started=started,
        env_id=config.env_id,
        env_kwargs=config.training_env_kwargs(),
        config={
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()
        },
        init=_portable(init_dir),
        init_weights_sha256=_sha256(load_lm_dir(init_dir)[0] / "model.safetensors"),
        kept=config.keep,
        best_iteration=best["iteration"],
        dev_success=best["score"][0] if best["iteration"] is not None else None,
        dev_return=best["score"][1] if best["iteration"] is not None else None,
        dev_episodes=config.eval_episodes,
        curve=curve,
    )
    return out


def _signal_groups(n: int, group_size: int, advantage: str) -> np.ndarray:
    """Per episode, the group its baseline comes from: its seed's group of ``group_size``,
    or (``batch``) the whole round of ``n``."""
    if advantage == "batch":
        return np.zeros(n, dtype=int)
    return np.repeat(np.arange(n // group_size), group_size)


def _distinct_per_group(episodes: list[GroupEpisode], group_size: int) -> float:
    """Mean number of distinct transcripts (the agent's token ids) in a group."""
    keys = [tuple(tuple(m.tokens) for m in e.messages) for e in episodes]
    return float(
        np.mean([len(set(keys[k : k + group_size])) for k in range(0, len(keys), group_size)])
    )


@contextlib.contextmanager
def _torch_threads(n: int):
    # A ~1M-parameter LM's matrices are too small to share: on a busy 2-core machine one
    # thread samples ~10x faster than two that wait on each other.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
