"""RLlib: ``register_env`` builds dialog-bench envs, and PPO runs on Dialog-Acts-v1 (slow,
and not in CI: it checks that RLlib's PPO plays our episodes, not that it learns)."""

from __future__ import annotations

import importlib.util
import math

import pytest
from conftest import REPO_ROOT

from dialog_env.integrations.rllib import make_env

EXAMPLE = REPO_ROOT / "examples" / "rllib_ppo.py"


def test_the_creator_passes_env_config_on_as_env_kwargs():
    config = {"observation": "state", "user_model": "template", "split": "test"}
    env = make_env(config)
    assert env.spec.id == "Dialog-Acts-v1" and env.unwrapped.split == "test"
    first, _ = env.reset(seed=3)
    again, _ = make_env(dict(config)).reset(seed=3)
    assert env.observation_space.contains(first) and (first == again).all()


@pytest.mark.slow
def test_rllib_ppo_runs_on_dialog_acts_for_a_few_iterations():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.rllib")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        spec = importlib.util.spec_from_file_location("rllib_ppo", EXAMPLE)
        example = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(example)
        returns = example.main(["--iterations", "3", "--batch", "400"])
    finally:
        ray.shutdown()
    assert len(returns) == 3 and all(math.isfinite(r) for r in returns)
    # every return is one of our episodes': a step cost each turn, a bonus at success
    assert all(-5.0 < r < 2.0 for r in returns)
