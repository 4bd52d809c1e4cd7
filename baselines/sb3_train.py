"""``dialog-bench train sb3``: Stable-Baselines3 on ``Dialog-Acts-v1`` (state observation).

Rollouts go through the batched vector env (:class:`~dialog_env.wrappers.sb3.SB3VecEnv`)
with ``VecMonitor``; an ``EvalCallback`` scores the policy on held-out episodes every
``eval_every`` steps and the best policy is kept; TensorBoard logs go to ``runs/``. The
checkpoint is the policy's weights in safetensors plus a JSON config, so the leaderboard
loads it without cloudpickle.

The user's voice defaults to the template here. The state observation is voice-invariant
by construction (every voiced turn must parse back to its acts, or it falls back to the
template), and the user's decisions do not depend on wording, so training on the
template voice sees the same act-level episodes as the LM voice, at a fraction of the
cost; the leaderboard evaluates with the env's default voice.
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from baselines.common.config import add_config_arguments, config_from_args

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
    eval_every: int = field(default=10_000, metadata={"help": "steps between evaluations"})
    eval_episodes: int = field(default=100, metadata={"help": "episodes per evaluation"})
    out: Path | None = field(
        default=None, metadata={"help": "checkpoint dir (default: baselines/checkpoints/sb3-ALGO)"}
    )
    logdir: Path = field(default=Path("runs"), metadata={"help": "TensorBoard log dir"})


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
    """Train, keep the best evaluated policy, write the checkpoint; return its directory."""
    import numpy as np
    import stable_baselines3
    import torch
    from safetensors.torch import save_file
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.checkpoint import CONFIG, WEIGHTS, write_manifest
    from agents.sb3_agent import policy_config
    from dialog_env.wrappers.sb3 import make_sb3_vec_env

    started = time.time()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    env_kwargs = {"user_model": config.user_model, "observation": "state", "split": "train"}
    venv = VecMonitor(make_sb3_vec_env("Dialog-Acts-v1", config.n_envs, **env_kwargs))
    eval_env = VecMonitor(make_sb3_vec_env("Dialog-Acts-v1", 8, **env_kwargs))
    eval_env.seed(10_000_000 + config.seed)
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

    best = {"reward": -float("inf"), "state": None}
    curve: list[dict[str, float]] = []

    class KeepBest(EvalCallback):
        """SB3's evaluation, keeping the best policy and the learning curve (the env's
        ``info["success"]`` at episode end is the success SB3 looks for in ``is_success``)."""

        def _log_success_callback(self, locals_: dict, globals_: dict) -> None:
            if locals_["done"]:  # a time-limit truncation carries no success: a failure
                self._is_success_buffer.append(bool(locals_["info"].get("success", False)))

        def _on_step(self) -> bool:
            ok = super()._on_step()
            if self.n_calls % self.eval_freq == 0:
                curve.append(
                    {
                        "env_steps": int(self.num_timesteps),
                        "eval_mean_reward": float(self.last_mean_reward),
                        "eval_success": float(np.mean(self._is_success_buffer)),
                    }
                )
                if self.last_mean_reward > best["reward"]:
                    best["reward"] = self.last_mean_reward
                    best["state"] = copy.deepcopy(self.model.policy.state_dict())
            return ok

    callback = KeepBest(
        eval_env,
        n_eval_episodes=config.eval_episodes,
        eval_freq=max(config.eval_every // config.n_envs, 1),
        deterministic=True,
        verbose=0,
    )
    model.learn(
        config.total_steps, callback=callback, progress_bar=True, tb_log_name=f"sb3-{config.algo}"
    )
    state = best["state"] or model.policy.state_dict()

    out = checkpoint_dir(config)
    out.mkdir(parents=True, exist_ok=True)
    spec = policy_config(config.algo, list(config.net_arch), activation)
    (out / CONFIG).write_text(
        __import__("json").dumps({**spec, "paradigm": "rl", "interface": "act"}, indent=1) + "\n"
    )
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / WEIGHTS))
    write_manifest(
        out,
        seed=config.seed,
        budget={"env_steps": int(model.num_timesteps)},
        started=started,
        config={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        best_eval_mean_reward=float(best["reward"]),
        curve=curve,
    )
    return out


def checkpoint_dir(config: SB3Config) -> Path:
    """Where the run writes its checkpoint: ``config.out``, or one named after the algorithm."""
    return Path(config.out or f"baselines/checkpoints/sb3-{config.algo}")


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
