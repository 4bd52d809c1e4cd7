"""SB3 PPO steps per second on ``Dialog-Acts-v1`` (state observation), with the template
voice and with the LM voice, beside SB3 PPO on CartPole-v1, measured in one run.

The same PPO settings and 16 sub-envs everywhere: the dialog envs through the batched
``SB3VecEnv`` adapter, CartPole through SB3's ``DummyVecEnv``. ::

    python -m bench.sb3_speed [--steps 8192]
"""

from __future__ import annotations

import argparse
import time

N_ENVS = 16
PPO_KWARGS = {"n_steps": 256, "batch_size": 256, "n_epochs": 4, "seed": 0, "verbose": 0}


def ppo_rate(venv, steps: int) -> float:
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", venv, **PPO_KWARGS)
    model.learn(N_ENVS * PPO_KWARGS["n_steps"])  # warm-up: first rollout and update
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    from stable_baselines3.common.env_util import make_vec_env

    from dialog_env.wrappers.sb3 import make_sb3_vec_env

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=8192)
    args = p.parse_args(argv)
    rates = {
        "CartPole-v1": ppo_rate(make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=0), args.steps),
        "Dialog-Acts-v1, template voice": ppo_rate(
            make_sb3_vec_env("Dialog-Acts-v1", N_ENVS, user_model="template"), args.steps
        ),
        "Dialog-Acts-v1, LM voice": ppo_rate(
            make_sb3_vec_env("Dialog-Acts-v1", N_ENVS, user_model="tiny"), args.steps
        ),
    }
    cart = rates["CartPole-v1"]
    print(f"SB3 PPO, {N_ENVS} envs, {args.steps} steps each (after one warm-up rollout)")
    print(f"{'env':<34}{'steps/s':>10}{'vs CartPole':>13}")
    for name, rate in rates.items():
        print(f"{name:<34}{rate:>10,.0f}{rate / cart:>13.2f}")


if __name__ == "__main__":
    main()
