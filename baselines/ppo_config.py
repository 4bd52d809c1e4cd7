"""The settings of ``dialog-bench train ppo`` (:mod:`baselines.token_ppo`): one
dataclass, one ``--flag`` per field (:mod:`baselines.common.config`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from baselines.common.config import LoRAOptions, init_sha256_field, logdir_field, run_dir
from dialog_env.registration import TEXT_ENV_IDS

__all__ = ["PPOConfig"]


@dataclass
class PPOConfig(LoRAOptions):
    """Everything a run depends on (the shipped ``ppo-base`` was made before ``env_id``,
    ``init_sha256`` and ``target_kl`` existed, at ``lr`` 1e-4: its manifest's config)."""

    init: str = field(default="base", metadata={"help": "base | sft | an LM dir/checkpoint"})
    init_sha256: str = init_sha256_field()
    env_id: str = field(
        default="Dialog-v1",
        metadata={
            "absent_means": "Dialog-v1",
            "help": "the env trained on and evaluated on",
            "choices": TEXT_ENV_IDS,
        },
    )
    out: Path | None = field(
        default=None,
        metadata={
            "help": "checkpoint dir (default: runs/ppo-base, or runs/ppo-sft when the init "
            "is an SFT agent; then -<env> for an env other than Dialog-v1)"
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
        default=0.02,
        metadata={
            "absent_means": 0.0,
            "help": "stop an update past 1.5x this approx KL (0: never)",
        },
    )
    kl_init: float = field(default=0.02, metadata={"help": "initial KL penalty beta"})
    kl_target: float = field(default=2.0, metadata={"help": "target KL, nats per message"})
    kl_horizon: int = field(default=1000, metadata={"help": "KL controller horizon, messages"})
    user_model: str = field(default="tiny", metadata={"help": "the training envs' user voice"})
    seed: int = field(default=0, metadata={"help": "sampling, seeds and shuffling"})
    eval_every: int = field(default=15, metadata={"help": "iterations between dev evals"})
    eval_episodes: int = field(default=50, metadata={"help": "dev episodes per eval (0: none)"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads (a tiny LM: 1)"})
    logdir: Path = logdir_field()
    progress: bool = field(default=True, metadata={"help": "show progress bars"})

    def __post_init__(self) -> None:
        if self.env_id not in TEXT_ENV_IDS:
            raise ValueError(f"env_id must be one of {TEXT_ENV_IDS}, got {self.env_id!r}")

    def default_out(self, paradigm: str) -> Path:
        """Where a run without ``--out`` writes: ``runs/ppo-base`` from the base LM (or an
        RL checkpoint), ``runs/ppo-sft`` from an SFT agent; ``-<env>`` after it for an env
        other than ``Dialog-v1``.

        >>> PPOConfig().default_out("sft-rl").as_posix()
        'runs/ppo-sft'
        """
        name = "ppo-" + ("base" if paradigm == "rl" else "sft")
        if self.env_id != "Dialog-v1":
            name += "-" + self.env_id.removeprefix("Dialog-").lower()
        return run_dir(name)
