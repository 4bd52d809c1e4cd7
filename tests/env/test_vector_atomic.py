"""A vector-env step with one bad action raises and leaves every sub-env as it was.

Each test runs a twin vector env that never sees the bad batch; after the refusal both
are compared sub-env by sub-env (the pickled env stack: turns, trackers, token buffers,
random state), then stepped on together and compared again.
"""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialog_env.vector import MAX_NUM_ENVS, DialogVectorEnv

N = 3
SEEDS = [11, 12, 13]
GOOD = {
    "Dialog-v1": ["[search] food=thai", "Hello, how can I help?", "[search] area=north"],
    "Dialog-Acts-v1": np.array([1, 2, 3]),
    "Dialog-Tokens-v1": np.array([5, 6, 7]),
}
BAD = {
    # (bad action, error): each refused by the interface's own check
    "Dialog-v1": [(5, TypeError), (None, TypeError), (b"bytes", TypeError)],
    "Dialog-Acts-v1": [(99, ValueError), (-1, ValueError), (1.5, TypeError), ("1", TypeError)],
    "Dialog-Tokens-v1": [(10**9, ValueError), (-3, ValueError), (2.0, TypeError)],
}


def _twins(env_id: str) -> tuple[DialogVectorEnv, DialogVectorEnv]:
    pair = tuple(gym.make_vec(env_id, num_envs=N, user_model="template") for _ in range(2))
    for envs in pair:
        envs.reset(seed=SEEDS)
        for layer in envs.envs:  # the spaces' own samplers: seeded, so pickles compare
            while layer is not None:
                for value in vars(layer).values():
                    if isinstance(value, gym.Space):
                        value.seed(0)
                layer = getattr(layer, "env", None)
    return pair


def _batch(env_id: str, position: int, bad) -> list:
    actions = list(GOOD[env_id])
    actions[position] = bad
    return actions


def _assert_same(envs: DialogVectorEnv, twin: DialogVectorEnv) -> None:
    for i, (a, b) in enumerate(zip(envs.envs, twin.envs, strict=True)):
        assert pickle.dumps(a) == pickle.dumps(b), f"sub-env {i} changed"
    assert envs._elapsed.tolist() == twin._elapsed.tolist()
    after, after_twin = envs.step(GOOD[envs.spec.id]), twin.step(GOOD[twin.spec.id])
    for x, y in zip(after[:4], after_twin[:4], strict=True):
        for key in x if isinstance(x, dict) else [None]:  # the token interface's obs: a dict
            np.testing.assert_array_equal(
                x if key is None else x[key], y if key is None else y[key]
            )
    assert [list(t) for t in after[4]["turns"]] == [list(t) for t in after_twin[4]["turns"]]


@pytest.mark.parametrize("env_id", sorted(GOOD))
@pytest.mark.parametrize("position", range(N))
def test_a_bad_action_anywhere_changes_no_sub_env(env_id, position):
    envs, twin = _twins(env_id)
    envs.step(GOOD[env_id]), twin.step(GOOD[env_id])  # mid-episode, not just after reset
    for bad, error in BAD[env_id]:
        with pytest.raises(error, match=f"sub-env {position}'s action"):
            envs.step(_batch(env_id, position, bad))
    _assert_same(envs, twin)


def test_the_issue_example_leaves_sub_env_0_without_its_search():
    envs = gym.make_vec("Dialog-v1", num_envs=2, user_model="template")
    envs.reset(seed=[11, 12])
    with pytest.raises(TypeError, match="sub-env 1's action must be a str message, got int"):
        envs.step(["[search] food=thai", 5])
    assert [t["role"] for t in envs.envs[0].unwrapped._turn_dicts()] == ["user"]


def test_step_subenvs_checks_every_action_first():
    envs, twin = _twins("Dialog-Acts-v1")
    with pytest.raises(ValueError, match="sub-env 2's action 99 is out of range"):
        envs.step_subenvs([0, 2], [1, 99])
    _assert_same(envs, twin)


@pytest.mark.parametrize("num_envs", [0, -1, MAX_NUM_ENVS + 1, 10**6, True, 2.0])
def test_num_envs_is_bounded(num_envs):
    with pytest.raises(ValueError, match="num_envs must be"):
        DialogVectorEnv(num_envs, user_model="template")


def test_the_bound_is_checked_before_any_sub_env_is_built():
    with pytest.raises(ValueError, match=f"between 1 and {MAX_NUM_ENVS}, got 1000000"):
        gym.make_vec("Dialog-v1", num_envs=10**6, user_model="template")


BAD_VALUES = st.one_of(
    st.none(),
    st.floats(allow_nan=True),
    st.binary(max_size=4),
    st.integers().filter(lambda v: not 0 <= v < 10),
    st.lists(st.integers(0, 9), min_size=2, max_size=3).map(np.array),
)


@pytest.mark.parametrize("env_id", ["Dialog-v1", "Dialog-Acts-v1"])
def test_fuzz_one_bad_action_changes_no_sub_env(env_id):
    @settings(
        max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(position=st.integers(0, N - 1), bad=BAD_VALUES, steps=st.integers(0, 2))
    def check(position, bad, steps):
        envs, twin = _twins(env_id)
        for _ in range(steps):
            envs.step(GOOD[env_id]), twin.step(GOOD[env_id])
        with pytest.raises((TypeError, ValueError)):
            envs.step(_batch(env_id, position, bad))
        _assert_same(envs, twin)

    check()
