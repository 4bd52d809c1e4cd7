"""SB3 PPO steps per second on ``Dialog-Acts-v1`` (state observation), with the template
voice and with the LM voice, beside SB3 PPO on CartPole-v1, measured in one run.

Every side runs the same PPO (``MlpPolicy``, the settings below, seed 0) on the same
number of sub-envs behind the same monitor, ``VecMonitor``, as ``dialog-bench train sb3``
does: the dialog envs through the batched ``SB3VecEnv`` adapter, CartPole through SB3's
``DummyVecEnv`` of ``gymnasium.make`` envs. (Earlier versions built CartPole with
``make_vec_env``, which puts a ``Monitor`` on each sub-env: a cost only CartPole paid.)
The rate is the timesteps SB3 counted (``num_timesteps``, whole rollouts) over the time
of ``learn()``, rollouts and updates both, after one warm-up rollout + update. The
reference, CartPole, is the floor of an env under PPO: its step is a few arithmetic
operations, so its rate is SB3's own cost per step. ::

    python -m bench.sb3_speed [--steps 8192] [--n-envs 16] [--n-steps 256] [--batch-size 256]
    python -m bench.sb3_speed --smoke
"""

from __future__ import annotations

import argparse
import time

from bench import parse_args
from bench.record import BenchRecord, add_out_argument

__all__ = ["main", "ppo_rate"]

PPO_KWARGS = {"n_epochs": 4, "seed": 0, "verbose": 0}
SMOKE = {"steps": 64, "n_envs": 2, "n_steps": 32, "batch_size": 32}


def ppo_rate(venv, steps: int, n_steps: int, batch_size: int) -> float:
    """Timesteps per second of ``PPO.learn`` over at least ``steps`` timesteps on ``venv``."""
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=batch_size, **PPO_KWARGS)
    model.learn(venv.num_envs * n_steps)  # warm-up: first rollout and update
    before, start = model.num_timesteps, time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return (model.num_timesteps - before) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and run the bench (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=8192, help="timed timesteps (whole rollouts)")
    p.add_argument("--n-envs", type=int, default=16)
    p.add_argument("--n-steps", type=int, default=256, help="PPO rollout length per sub-env")
    p.add_argument("--batch-size", type=int, default=256, help="PPO minibatch size")
    add_out_argument(p)
    args = parse_args(p, argv, SMOKE)
    with BenchRecord("sb3_speed", argv, args) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: BenchRecord) -> None:
    """Time SB3's PPO on CartPole and on the dialog env with each voice; print the ratios."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from dialog_env.integrations.sb3 import make_sb3_vec_env

    n, shape = args.n_envs, (args.steps, args.n_steps, args.batch_size)

    def dialog(voice: str):
        return make_sb3_vec_env(
            "Dialog-Acts-v1", n, monitor=True, observation="state", user_model=voice
        )

    cartpole = VecMonitor(DummyVecEnv([lambda: gym.make("CartPole-v1")] * n))
    rates = {"CartPole-v1": ppo_rate(cartpole, *shape)}
    rates["Dialog-Acts-v1, template voice"] = ppo_rate(dialog("template"), *shape)
    rates["Dialog-Acts-v1, LM voice"] = ppo_rate(dialog("tiny"), *shape)
    cart = rates.pop("CartPole-v1")
    print(
        f"SB3 PPO, {n} envs x {args.n_steps} steps a rollout, minibatch {args.batch_size}, "
        f"{args.steps} timed steps each (after one warm-up rollout + update), VecMonitor "
        "on every side"
    )
    print(f"{'env':<34}{'steps/s':>10}")
    print(f"{'CartPole-v1':<34}{cart:>10,.0f}")
    for name, rate in rates.items():
        print(f"{name:<34}{rate:>10,.0f}")
    record.figures["cartpole_steps_s"] = cart
    for (name, rate), key in zip(rates.items(), ("template", "lm"), strict=True):
        record.figures[f"{key}_steps_s"] = rate
        record.ratio(key, f"{name} / CartPole-v1", rate / cart, "", 4)


if __name__ == "__main__":
    main()
