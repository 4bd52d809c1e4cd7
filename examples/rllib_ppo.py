"""PPO from RLlib on ``Dialog-Acts-v1``, registered through ``ray.tune.register_env``.

    pip install 'dialog-bench[rllib]'
    python examples/rllib_ppo.py --iterations 5              # a Ray on this machine
    RAY_ADDRESS=auto python examples/rllib_ppo.py --runners 8   # a cluster (docs/integrations.md)

Prints each iteration's mean episode return and the env steps sampled so far.
"""

from __future__ import annotations

import argparse

from dialog_env.integrations.rllib import ppo_config


def main(argv: list[str] | None = None) -> list[float]:
    """Train for ``--iterations``; return each iteration's mean episode return."""
    import ray

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--batch", type=int, default=1000, help="env steps per iteration")
    p.add_argument("--runners", type=int, default=0, help="RLlib env runners (0: the driver)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    algo = ppo_config(train_batch_size=args.batch, seed=args.seed, num_env_runners=args.runners)
    algo = algo.build_algo()
    returns = []
    try:
        for i in range(1, args.iterations + 1):
            result = algo.train()
            runners = result["env_runners"]
            returns.append(float(runners["episode_return_mean"]))
            steps = result.get(
                "num_env_steps_sampled_lifetime", runners.get("num_env_steps_sampled_lifetime")
            )
            print(f"iteration {i}: mean return {returns[-1]:.3f}, env steps {steps}")
    finally:
        algo.stop()
    return returns


if __name__ == "__main__":
    main()
