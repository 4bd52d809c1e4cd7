"""The settings of ``dialog-bench train grpo`` (:mod:`baselines.grpo`): one dataclass,
one ``--flag`` per field (:mod:`baselines.common.config`), as TRL keeps ``GRPOConfig``
beside its trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baselines.common.config import LoRAOptions, init_sha256_field, logdir_field, run_dir
from baselines.demos import parse_env_kwargs
from baselines.seed_screen import SEED_CHOICES
from dialog_env.registration import TEXT_ENV_IDS

__all__ = ["ADVANTAGES", "CREDITS", "KL_ESTIMATORS", "SPREADS", "GRPOConfig"]

#: The KL estimators of the penalty (``baselines.grpo_update.kl_penalty``).
KL_ESTIMATORS = ("k2", "k3")
ADVANTAGES = ("grpo", "rloo", "batch")
#: Which return a message's tokens are credited with (``--credit``).
CREDITS = ("episode", "turn")
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
            "absent_means": "",
            "help": "JSON object of env kwargs for the training envs only, over --env-kwargs, "
            'e.g. \'{"venue_names": "shuffled"}\' (booking: venue names drawn anew each '
            "episode, so they must be read, not remembered); dev episodes never get them",
        },
    )
    init_sha256: str = init_sha256_field()
    out: Path | None = field(
        default=None,
        metadata={
            "help": "checkpoint dir (default: runs/<advantage>-base, or "
            "runs/<advantage>-<init dir name> when the init is an SFT agent; then "
            "-<env> for an env other than Dialog-v1, e.g. runs/grpo-base-chat-v1; then "
            "-turn with --credit turn)"
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
    credit: str = field(
        default="episode",
        metadata={
            "absent_means": "episode",
            "help": "episode: every message of an episode gets the episode's advantage | "
            "turn: each message gets its own, its return-to-go against the group's other "
            "rollouts at the same turn index (baselines.grpo_groups.turn_advantages)",
            "choices": CREDITS,
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
            "absent_means": "return",
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
            "absent_means": "random",
            "help": "random: each round's K train seeds drawn at random | greedy-fails: "
            "K*G candidates drawn, each played once by the greedy policy, and the K "
            "groups played on those it fails (then on solved ones, if too few fail); "
            "the screen's episodes count in the env-step budget",
            "choices": SEED_CHOICES,
        },
    )
    screen_chunk: int = field(
        default=0,
        metadata={
            "absent_means": 0,
            "help": "greedy-fails: play the candidates N at a time in draw order and stop "
            "once K have failed: fewer screen episodes, the same seeds unless a narrower "
            "batch flips a greedy near-tie (baselines.seed_screen) | 0: all in one batch",
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
            "help": "best: the evaluation the one keep-best rule keeps "
            "(baselines.common.evaluation) | last: the final policy",
            "choices": ("best", "last"),
        },
    )
    threads: int = field(default=1, metadata={"help": "torch CPU threads (a tiny LM: 1)"})
    remember_turns: bool = field(
        default=False,
        metadata={
            "absent_means": False,
            "help": "remember the LM voice's sentences (and the chat RM's scores) for the "
            "run, so that a turn met again (the G rollouts of a seed, a screened seed's "
            "groups, the same dev episodes at every evaluation) is voiced once; the same "
            "episodes but where the voice's batch would change a token (a uniform within "
            "float error of a CDF step: dialog_env.lm.voice)",
        },
    )
    merge_twins: bool = field(
        default=False,
        metadata={
            "absent_means": False,
            "help": "read the update's twin rows (a group's rollouts that wrote the same "
            "messages) once, weighted by their count: the same loss, summed in another "
            "float order, so other weights by rounding, judged by the learning curve "
            "(bench.grpo_curves)",
        },
    )
    logdir: Path = logdir_field()
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
        if self.credit not in CREDITS:
            raise ValueError(f"credit must be one of {CREDITS}, got {self.credit!r}")
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
        if self.screen_chunk < 0:
            raise ValueError(f"screen_chunk must be >= 0 (0: one batch), got {self.screen_chunk}")
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

    def default_out(self, init_dir: Path, paradigm: str) -> Path:
        """Where a run without ``--out`` writes: ``runs/<advantage>-<start>[-<env>][-turn]``,
        the start ``base`` for an RL start and the init's directory name for an SFT one;
        ``-turn`` with ``credit="turn"``.

        >>> GRPOConfig(env_id="Dialog-Chat-v1").default_out(Path("tiny"), "rl").as_posix()
        'runs/grpo-base-chat-v1'
        >>> GRPOConfig(credit="turn").default_out(Path("sft-careless"), "sft").as_posix()
        'runs/grpo-sft-careless-turn'
        """
        name = "base" if paradigm == "rl" else Path(init_dir).name
        if self.env_id != "Dialog-v1":
            name += "-" + self.env_id.removeprefix("Dialog-").lower()
        if self.credit == "turn":
            name += "-turn"
        return run_dir(f"{self.advantage}-{name}")
