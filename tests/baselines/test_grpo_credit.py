"""``train grpo --credit``: with ``turn`` each message is credited with its own return
from that message on, against the group's other rollouts at the same turn index; with
``episode`` (the default) every message carries its episode's advantage, as before the
flag existed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lm_helpers import needs_lm, short_grpo_run

from baselines import grpo
from baselines.common.rollout import Message
from baselines.grpo_config import GRPOConfig
from baselines.grpo_groups import (
    GroupEpisode,
    group_advantages,
    returns_to_go,
    set_advantages,
    signal_groups,
    turn_advantages,
)
from baselines.train import parse_train_command, rebuild_differences
from dialog_env.lm import TINY_MODEL_DIR


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs with one torch thread."""


def episode(rewards: list[float], tokens: int = 3, seed: int = 0) -> GroupEpisode:
    """An episode of one message per reward, each of ``tokens`` tokens (more for later
    messages, so that token counts differ), its return the sum of its rewards."""
    z = np.zeros(0)
    messages = [
        Message([1], [2] * (tokens + t), z, z, r, t == len(rewards) - 1)
        for t, r in enumerate(rewards)
    ]
    return GroupEpisode(seed, messages, math.fsum(rewards), rewards[-1] > 0, "")


def advantages_per_message(episodes: list[GroupEpisode]) -> list[list[float]]:
    """Each message's advantage, checked to be the same on every one of its tokens."""
    out = []
    for e in episodes:
        out.append([])
        for m in e.messages:
            assert len(m.advantages) == len(m.tokens) and np.ptp(m.advantages) == 0
            out[-1].append(float(m.advantages[0]))
    return out


# The booking reward: -0.02 per message, +1 on success at the last one.
STEP, WIN = -0.02, 0.98
#: Two groups of three, of unequal lengths: A wins in 2 messages, B fails in 4, C wins
#: in 3; D and F fail in 1, E in 2.
GROUPS = [[STEP, WIN], [STEP] * 4, [STEP, STEP, WIN], [STEP], [STEP, STEP], [STEP]]


def test_returns_to_go_are_the_rewards_from_each_message_on():
    np.testing.assert_allclose(returns_to_go(GROUPS[1]), [-0.08, -0.06, -0.04, -0.02])
    np.testing.assert_allclose(returns_to_go(GROUPS[2]), [0.94, 0.96, 0.98])
    assert returns_to_go(GROUPS[2])[0] == math.fsum(GROUPS[2])  # G_0 is the return, exactly


def test_rloo_turn_credit_is_the_return_to_go_minus_the_others_at_that_index():
    episodes = [episode(r) for r in GROUPS]
    set_advantages(episodes, GRPOConfig(groups=2, group_size=3, credit="turn", advantage="rloo"))
    # Returns-to-go: A [0.96, 0.98], B [-0.08, -0.06, -0.04, -0.02], C [0.94, 0.96, 0.98];
    # D [-0.02], E [-0.04, -0.02], F [-0.02]. Index 0: each against the mean of the
    # other two; index 2: B and C only; index 3 (B) and index 1 of the second group (E)
    # are reached by one rollout alone: no baseline, advantage 0.
    expected = [
        [0.96 - (-0.08 + 0.94) / 2, 0.98 - (-0.06 + 0.96) / 2],
        [-0.08 - (0.96 + 0.94) / 2, -0.06 - (0.98 + 0.96) / 2, -0.04 - 0.98, 0.0],
        [0.94 - (0.96 - 0.08) / 2, 0.96 - (0.98 - 0.06) / 2, 0.98 + 0.04],
        [-0.02 - (-0.04 - 0.02) / 2],
        [-0.04 - (-0.02 - 0.02) / 2, 0.0],
        [-0.02 - (-0.02 - 0.04) / 2],
    ]
    got = advantages_per_message(episodes)
    assert [len(a) for a in got] == [2, 4, 3, 1, 2, 1]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=1e-12)
    # The decisive message: B's third, where B (failing) and C (winning) part.
    assert got[1][2] == pytest.approx(-1.02) and got[2][2] == pytest.approx(1.02)


def test_grpo_turn_credit_normalizes_by_the_std_at_each_index():
    episodes = [episode(r) for r in GROUPS[:3]]
    set_advantages(episodes, GRPOConfig(groups=1, group_size=3, credit="turn", advantage="grpo"))
    got = advantages_per_message(episodes)

    def normalized(cell: list[float]) -> np.ndarray:
        c = np.array(cell)
        return (c - c.mean()) / (c.std() + 1e-8)

    first, second = normalized([0.96, -0.08, 0.94]), normalized([0.98, -0.06, 0.96])
    np.testing.assert_allclose([a[0] for a in got], first, atol=1e-12)
    np.testing.assert_allclose([a[1] for a in got], second, atol=1e-12)
    np.testing.assert_allclose([got[1][2], got[2][2]], [-1.0, 1.0], atol=1e-6)  # two: +-1
    assert got[1][3] == 0.0  # B alone at index 3


def test_a_batch_baseline_takes_the_round_at_each_index():
    rtg = [returns_to_go(r) for r in GROUPS]
    got = turn_advantages(rtg, signal_groups(6, 1, "batch"), "batch")
    firsts = np.array([r[0] for r in rtg])
    np.testing.assert_allclose([a[0] for a in got], group_advantages(firsts, np.zeros(6), "rloo"))
    # index 1: A, B, C, E; index 3: B alone
    seconds = np.array([rtg[i][1] for i in (0, 1, 2, 4)])
    expected = group_advantages(seconds, np.zeros(4), "rloo")
    np.testing.assert_allclose([got[i][1] for i in (0, 1, 2, 4)], expected)
    assert got[1][3] == 0.0


def test_rloo_turn_credit_is_unbiased_but_for_the_messages_alone_at_their_index():
    """Exactly, on a toy the policy decides the length of: each message says go on (prob
    q) or stop; stopping at message 0, 1 or 2 wins 0, 1 or 0.5, every message costs
    0.02, and a third "go on" ends the episode unwon. Over every group of 3 rollouts, the
    expected turn-credit gradient is the true policy gradient less only the terms of the
    messages alone at their index (which the fallback leaves untrained): the baseline
    that the rollouts still talking set at later indices adds no bias of its own. The
    construction verl #7244 warns of (per-index baselines on the rewards, summed over
    the rollout's own remaining turns) is biased beyond that."""
    import itertools

    q = 0.6
    trajectories = [
        ("s", [STEP]),
        ("gs", [STEP, STEP + 1.0]),
        ("ggs", [STEP, STEP, STEP + 0.5]),
        ("ggg", [STEP] * 3),
    ]

    def probability(actions: str) -> float:
        return math.prod(q if a == "g" else 1 - q for a in actions)

    def score(action: str) -> float:  # d log pi(action) / d logit(q)
        return 1 - q if action == "g" else -q

    true = sum(probability(a) * math.fsum(r) * sum(score(x) for x in a) for a, r in trajectories)
    expected, summed, lone = 0.0, 0.0, 0.0
    for group in itertools.product(trajectories, repeat=3):
        p = math.prod(probability(a) for a, _ in group)
        rtg = [returns_to_go(r) for _, r in group]
        advantages = turn_advantages(rtg, np.zeros(3), "rloo")
        per_reward = turn_advantages([np.array(r) for _, r in group], np.zeros(3), "rloo")
        for i, (actions, _) in enumerate(group):
            for t, action in enumerate(actions):
                expected += p * advantages[i][t] * score(action) / 3
                summed += p * per_reward[i][t:].sum() * score(action) / 3
                if all(len(other) <= t for j, (other, _) in enumerate(group) if j != i):
                    lone += p * rtg[i][t] * score(action) / 3
    assert expected == pytest.approx(true - lone, abs=1e-12)
    assert abs(lone) > 1e-3  # the fallback's bias is real, and this test could see it
    assert abs(summed - (true - lone)) > 0.1


def test_the_bias_diagnostic_splits_ending_and_continuing_messages():
    from baselines.turn_credit_bias import credit_by_index, length_figures

    episodes = [episode(r) for r in GROUPS]
    config = GRPOConfig(groups=2, group_size=3, advantage="rloo")
    figures = credit_by_index(episodes, config)
    # Group 1 reaches indices 0-3 (index 2 by B and C, 3 by B alone), group 2 indices
    # 0-1 (index 1 by E alone): 6 cells, 3 partial; B's 4th and E's 2nd message alone.
    assert figures["cells"] == {
        "cells": 6,
        "partial": 3,
        "share_partial": 0.5,
        "messages": 13,
        "messages_alone": 2,
        "share_messages_alone": 2 / 13,
        # Every message costs the same, so where the whole group is still talking the
        # two credits agree; they differ at the partly reached indices only: B's and
        # C's third, B's fourth, E's second.
        "messages_credited_otherwise": 4,
        "share_credited_otherwise": 4 / 13,
    }
    by_index = {p["index"]: p for p in figures["by_index"]}
    assert by_index[3] == {
        "index": 3,
        "ends": {"n": 1, "turn": 0.0, "episode": pytest.approx(-1.03)},
    }
    assert by_index[2]["ends"] == {
        "n": 1,
        "turn": pytest.approx(1.02),
        "episode": pytest.approx(0.5),
    }
    assert by_index[1]["ends"] == {
        "n": 2,
        "turn": pytest.approx((0.53 + 0.0) / 2),
        "episode": pytest.approx((0.53 - 0.02) / 2),
    }
    assert by_index[0]["continues"]["n"] == 4 and by_index[0]["ends"]["n"] == 2
    assert figures["overall"]["ends"]["n"] + figures["overall"]["continues"]["n"] == 13
    lengths = length_figures(episodes, 3)
    assert lengths["histogram"] == {"1": 2, "2": 2, "3": 1, "4": 1}
    assert lengths["mean_range_in_group"] == 1.5 and lengths["share_groups_unequal"] == 1.0


def test_the_bias_diagnostic_writes_its_figures(tmp_path, monkeypatch, capsys):
    from baselines import turn_credit_bias

    episodes = [episode(r) for r in GROUPS]
    played = episodes + [episode([STEP])] * 3  # a third group, without a spread
    monkeypatch.setattr(turn_credit_bias, "sample_groups", lambda config: (played, episodes))
    out = tmp_path / "bias.json"
    argv = ["--init", "base", "--groups", "3", "--group-size", "3", "--out", str(out)]
    figures = turn_credit_bias.main(argv)
    assert json.loads(out.read_text()) == json.loads(json.dumps(figures))
    assert (figures["groups_played"], figures["groups_trained"]) == (3, 2)
    assert figures["settings"]["advantage"] == "rloo" and figures["cells"]["partial"] == 3
    assert figures["lengths_played"]["episodes"] == 9
    assert "cells reached by fewer than all: 3 of 6" in capsys.readouterr().out


# Groups of episodes whose messages carry rewards as the booking env gives them, or any.
rewards = st.one_of(
    st.builds(lambda n, win: [STEP] * n + [STEP + win], st.integers(0, 6), st.sampled_from([0, 1])),
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=6),
)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(2, 4),
    st.data(),
    st.sampled_from(["grpo", "rloo", "batch"]),
)
def test_episode_credit_is_exactly_the_episode_advantage_on_every_token(k, g, data, kind):
    """``--credit episode`` (the default) gives every token of an episode exactly what the
    trainer gave it before the flag: the group advantage of the episode's return; turn
    credit gives the first message exactly that too."""
    drawn = [data.draw(rewards) for _ in range(k * g)]
    episodes = [episode(r) for r in drawn]
    config = GRPOConfig(groups=k, group_size=g, advantage=kind)
    assert config.credit == "episode"
    set_advantages(episodes, config)
    returns = np.array([e.env_return for e in episodes])
    expected = group_advantages(returns, signal_groups(k * g, g, kind), kind, config.adv_eps)
    for e, advantage in zip(episodes, expected, strict=True):
        for m in e.messages:
            np.testing.assert_array_equal(m.advantages, np.full(len(m.tokens), advantage))

    turn = [episode(r) for r in drawn]
    set_advantages(turn, GRPOConfig(groups=k, group_size=g, advantage=kind, credit="turn"))
    assert [e.messages[0].advantages[0] for e in turn] == expected.tolist()


def test_credit_is_checked_and_reaches_the_config_from_the_command_line():
    with pytest.raises(ValueError, match="credit must be one of"):
        GRPOConfig(credit="token")
    config = parse_train_command("dialog-bench train grpo --credit turn --advantage rloo")
    assert (config.credit, config.advantage) == ("turn", "rloo")
    assert parse_train_command("dialog-bench train grpo").credit == "episode"
    # A manifest written before the flag existed rebuilds: absent means episode.
    old = {"command": "dialog-bench train grpo", "config": {}}
    assert "credit" not in rebuild_differences(old)


def test_the_lineage_comparison_command_parses():
    """The command that the rl-careless comparison runs with turn credit (docs)."""
    command = (
        "dialog-bench train grpo --init runs/ckpt/sft-careless --out runs/ckpt/rl-careless-turn"
        " --iterations 20 --groups 8 --group-size 8 --advantage rloo --temperature 1.0"
        " --epochs 2 --lr 5e-5 --beta 0.05 --kl-estimator k2 --resample-rounds 1"
        " --seeds greedy-fails --eval-every 5 --eval-episodes 200 --keep best --threads 1"
        " --seed 0 --credit turn"
    )
    config = parse_train_command(command)
    assert (config.credit, config.advantage, config.seeds) == ("turn", "rloo", "greedy-fails")
    assert (config.iterations, config.groups, config.group_size, config.epochs) == (20, 8, 8, 2)


@needs_lm
def test_a_turn_credit_iteration_raises_the_log_prob_of_what_its_advantages_favour(
    tmp_path_factory, monkeypatch
):
    """One iteration with ``--credit turn`` from the base LM: the update moves the policy
    up the advantage-weighted log-likelihood of the messages it trained on (to first
    order, what a policy-gradient step does), the weights change, and the manifest
    records the credit and rebuilds from its command."""
    seen = {}

    def spy(policy, optimizer, rows, config, rng):
        def scores() -> np.ndarray:
            with torch.no_grad():
                logprobs, _, _ = policy.evaluate_spans(
                    [r.ids for r in rows], [r.spans for r in rows]
                )
            return logprobs.double().numpy()

        before = scores()
        out = update(policy, optimizer, rows, config, rng)
        messages = [m for r in rows for m in r.messages]
        seen.update(before=before, after=scores(), messages=messages)
        return out

    update = grpo.grpo_update
    monkeypatch.setattr(grpo, "grpo_update", spy)
    out = short_grpo_run(
        tmp_path_factory,
        credit="turn",
        advantage="rloo",
        iterations=1,
        resample_rounds=3,
        lr=1e-4,
        beta=0.0,
        user_model="template",
        eval_episodes=0,
    )
    advantages = np.concatenate([m.advantages for m in seen["messages"]])
    assert (advantages > 0).any() and (advantages < 0).any()
    moved = float(np.dot(advantages, seen["after"] - seen["before"]))
    assert moved > 0

    from safetensors.torch import load_file

    before = load_file(str(TINY_MODEL_DIR / "model.safetensors"))
    after = load_file(str(out / "lm" / "model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["credit"] == "turn" and "--credit turn" in manifest["command"]
    assert rebuild_differences(manifest) == {}
