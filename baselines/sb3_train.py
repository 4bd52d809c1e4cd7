"""``dialog-bench train sb3``: Stable-Baselines3 on ``Dialog-Acts-v1`` (state observation).

Rollouts go through the batched vector env (:class:`~dialog_env.wrappers.sb3.SB3VecEnv`)
with ``VecMonitor``. Every ``eval_every`` steps and at the end, the greedy policy, as the
:class:`~agents.sb3_agent.SB3Agent` the leaderboard plays, plays the first
``eval_episodes`` of the leaderboard's dev episodes of ``Dialog-v1`` (the text id an act
agent is ranked on; voiced by ``--user-model``), and the checkpoint keeps the evaluation
that the one keep-best rule of every trainer keeps (:mod:`baselines.common.evaluation`:
dev success, then return; an exact tie keeps the earlier). TensorBoard logs go to
``--logdir``. The checkpoint (under ``runs/`` unless ``--out`` says otherwise) is the
policy's weights in safetensors plus a JSON config, so the leaderboard loads it without
cloudpickle.

The user's voice defaults to the template here. The state observation is voice-invariant
by construction (every voiced turn must parse back to its acts, or it falls back to the
template), and the user's decisions do not depend on wording, so training on the
template voice sees the same act-level episodes as the LM voice, at a fraction of the
cost; the leaderboard evaluates with the env's default voice.

**A modular pipeline** (``--nlu tagger``): the tracker reads the user's turns with the
shipped slot tagger (``Dialog-Acts-v1`` with ``nlu="tagger"``), in training and in the
dev evaluation, and the checkpoint is a ``modular`` policy that tracks the same way when
it plays (its config records the tagger's weights hash). Its default ``--out`` is
``runs/modular-ALGO``. With the template voice the tagger reads template sentences in
training; the dev evaluation and the board play with the LM voice, where it matters.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from baselines.common.config import add_config_arguments, config_from_args, logdir_field, run_dir

__all__ = ["SB3Config", "add_parser", "checkpoint_dir", "main", "train_sb3"]


@dataclass
class SB3Config:
    """Everything that decides an SB3 run; each field is a ``train sb3`` flag."""

    algo: str = field(
        default="ppo", metadata={"help": "ppo, a2c or dqn", "choices": ("ppo", "a2c", "dqn")}
    )
    total_steps: int = field(
        default=100_000, metadata={"help": "env steps to train for", "aliases": ("--steps",)}
    )
    n_envs: int = field(default=16, metadata={"help": "sub-envs of the vector env"})
    seed: int = field(default=0, metadata={"help": "seed of the policy and the env"})
    net_arch: tuple[int, ...] = field(default=(64, 64), metadata={"help": "hidden layers"})
    user_model: str = field(default="template", metadata={"help": "voice while training"})
    nlu: str = field(
        default="rule",
        metadata={
            "help": "what reads user turns for the tracker: rule (the parser) or tagger "
            "(the shipped slot tagger: a modular pipeline)",
            "choices": ("rule", "tagger"),
            "absent_means": "rule",
        },
    )
    eval_every: int = field(default=10_000, metadata={"help": "steps between evaluations"})
    eval_episodes: int = field(default=100, metadata={"help": "dev episodes per evaluation"})
    out: Path | None = field(
        default=None,
        metadata={
            "help": "checkpoint dir (default: runs/sb3-ALGO; with --nlu tagger, runs/modular-ALGO)"
        },
    )
    logdir: Path = logdir_field()


def _algo_kwargs(algo: str) -> dict:
    if algo == "ppo":
        return {"n_steps": 256, "batch_size": 256, "n_epochs": 4, "ent_coef": 0.01}
    if algo == "a2c":
        return {"n_steps": 16, "ent_coef": 0.01}
    return {
        "learning_starts": 2_000,
        "buffer_size": 50_000,
        "exploration_fraction": 0.3,
        "train_freq": 4,
        "target_update_interval": 2_000,
    }


def train_sb3(config: SB3Config) -> Path:
    """Train, keep the evaluation the keep-best rule keeps, write the checkpoint; return
    its directory."""
    import stable_baselines3
    from safetensors.torch import save_file
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.checkpoint import CONFIG, WEIGHTS
    from agents.sb3_agent import policy_config, tagger_sha256
    from baselines.common.evaluation import KeepBest
    from baselines.common.run import write_run_manifest
    from dialog_env.wrappers.sb3 import make_sb3_vec_env

    started = time.time()
    out = checkpoint_dir(config)
    config = replace(config, out=out)
    env_kwargs = {"user_model": config.user_model, "observation": "state", "split": "train"}
    env_kwargs["nlu"] = config.nlu
    venv = VecMonitor(make_sb3_vec_env("Dialog-Acts-v1", config.n_envs, **env_kwargs))
    algo_cls = getattr(stable_baselines3, config.algo.upper())
    activation = "relu" if config.algo == "dqn" else "tanh"
    model = algo_cls(
        "MlpPolicy",
        venv,
        seed=config.seed,
        policy_kwargs={"net_arch": list(config.net_arch)},
        tensorboard_log=str(config.logdir),
        verbose=0,
        **_algo_kwargs(config.algo),
    )
    keep = KeepBest(step_key="env_steps")
    callback = DevEvaluation(config, keep)
    model.learn(config.total_steps, callback=callback, progress_bar=True, tb_log_name=out.name)
    last = keep.curve[-1]["env_steps"] if keep.curve else None
    if config.eval_episodes and last != model.num_timesteps:
        callback.evaluate(model)  # and at the end
    state = keep.state or model.policy.state_dict()

    out.mkdir(parents=True, exist_ok=True)
    spec = policy_config(config.algo, list(config.net_arch), activation)
    agent_config = {**spec, "paradigm": "rl", "interface": "act"}
    if config.nlu == "tagger":
        agent_config |= {"paradigm": "modular", "nlu": "tagger", "nlu_sha256": tagger_sha256()}
    (out / CONFIG).write_text(json.dumps(agent_config, indent=1) + "\n")
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / WEIGHTS))
    write_run_manifest(
        out,
        ["dialog-bench", "train", "sb3"],
        config,
        started=started,
        budget={"env_steps": int(model.num_timesteps)},
        keep=keep,
        eval_env_id="Dialog-v1",
    )
    return out


class DevEvaluation:
    """SB3's per-step callback (a callable, which SB3 wraps in ``ConvertCallback``):
    every ``eval_every`` env steps, the policy plays the dev episodes as the
    leaderboard's :class:`~agents.sb3_agent.SB3Agent`, and the point goes to ``keep``."""

    def __init__(self, config: SB3Config, keep):
        self.config, self.keep, self.calls = config, keep, 0
        self.every = max(config.eval_every // config.n_envs, 1)

    def __call__(self, locals_: dict, globals_: dict) -> bool:
        self.calls += 1
        if self.config.eval_episodes and self.calls % self.every == 0:
            self.evaluate(locals_["self"])
        return True

    def evaluate(self, model) -> None:
        """Score ``model``'s policy on dev now and offer the point to the keep-best rule."""
        from agents.sb3_agent import SB3Agent
        from baselines.common.evaluation import evaluate_on_dev

        policy = model.policy
        agent = SB3Agent(policy, name=f"sb3-{self.config.algo}", nlu=self.config.nlu)
        voice = {"user_model": self.config.user_model}
        scores = evaluate_on_dev(agent, "Dialog-v1", self.config.eval_episodes, voice)
        policy.set_training_mode(True)  # SB3 sets it again before each update
        steps = int(model.num_timesteps)
        self.keep.offer({"env_steps": steps, **scores}, policy.state_dict)
        for key, value in scores.items():
            model.logger.record(f"eval/{key}", value)


def checkpoint_dir(config: SB3Config) -> Path:
    """Where the run writes its checkpoint: ``config.out``, or ``runs/sb3-<algo>``
    (``runs/modular-<algo>`` with the tagger)."""
    kind = "sb3" if config.nlu == "rule" else "modular"
    return Path(config.out or run_dir(f"{kind}-{config.algo}"))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sb3",
        help="SB3 PPO / A2C / DQN on Dialog-Acts-v1",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p, SB3Config)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = config_from_args(args, SB3Config)
    config = replace(config, out=checkpoint_dir(config))
    out = train_sb3(config)
    print(f"wrote {out}")
    return 0
