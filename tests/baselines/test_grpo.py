"""Group-relative RL: advantages are the group-normalized (or leave-one-out) returns, the
rollouts of a group start from one episode, and a short run trains and saves an agent;
on the chat task too, its curve recording dev gold, proxy and the KL from the init."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import run_episode
from hypothesis import given, settings
from hypothesis import strategies as st
from lm_helpers import needs_lm, short_grpo_run

import dialog_env  # noqa: F401  (registers the ids)
from agents import load_agent
from agents.checkpoint import check_config
from baselines import grpo, grpo_groups
from baselines.common.rollout import Message, pack_episode, score_rows
from baselines.grpo import rollout_kl
from baselines.grpo_config import GRPOConfig
from baselines.grpo_groups import (
    GroupEpisode,
    collect_groups,
    group_advantages,
    play_groups,
    set_advantages,
    signal_groups,
    untrained_groups,
    zero_spread,
)
from baselines.train import rebuild_differences
from dialog_env.core import DialogEnv
from dialog_env.lm import TINY_MODEL_DIR
from leaderboard.episodes import EVAL_SEED_FLOOR
from leaderboard.overoptimization import overoptimization_summary


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs with one torch thread."""


@pytest.fixture(scope="module")
def policy():
    from baselines.common.policy import TokenPolicy

    policy = TokenPolicy.load(TINY_MODEL_DIR)
    policy.max_new_tokens = 8
    return policy


def sessions(policy):
    """A fresh KV cache per conversation, as a rollout starts with."""
    from dialog_env.lm.sessions import ConversationCache

    return ConversationCache(policy.codec.pad_id)


# -- advantages ------------------------------------------------------------------------
# A group's returns as the env makes them: -0.02 per message, +1 on success.
episode_returns = st.builds(
    lambda steps, success: -0.02 * steps + success,
    st.integers(1, 50),
    st.booleans(),
)
batches = st.lists(st.lists(episode_returns, min_size=2, max_size=8), min_size=1, max_size=6)


def _flatten(batch: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    returns = np.array([r for group in batch for r in group])
    groups = np.array([k for k, group in enumerate(batch) for _ in group])
    return returns, groups


@settings(max_examples=200, deadline=None)
@given(batches, st.sampled_from(["grpo", "rloo"]))
def test_group_advantages_sum_to_zero_and_vanish_without_spread(batch, kind):
    returns, groups = _flatten(batch)
    advantages = group_advantages(returns, groups, kind)
    flat = zero_spread(returns, groups)
    for k in range(len(batch)):
        members = groups == k
        scale = max(1.0, np.abs(advantages[members]).max())
        assert abs(advantages[members].sum()) <= 1e-9 * scale * members.sum()
        if len(set(returns[members].tolist())) == 1:
            assert flat[members].all() and (advantages[members] == 0).all()
        else:
            assert not flat[members].any() and (advantages[members] != 0).any()


@settings(max_examples=200, deadline=None)
@given(batches)
def test_grpo_advantages_are_exactly_the_group_normalized_returns(batch):
    returns, groups = _flatten(batch)
    advantages = group_advantages(returns, groups, "grpo", eps=1e-8)
    for k, group in enumerate(batch):
        r = np.array(group)
        expected = np.zeros(len(r)) if np.ptp(r) == 0 else (r - r.mean()) / (r.std() + 1e-8)
        np.testing.assert_array_equal(advantages[groups == k], expected)


@settings(max_examples=100, deadline=None)
@given(batches)
def test_rloo_advantage_is_the_return_minus_the_mean_of_the_others(batch):
    returns, groups = _flatten(batch)
    advantages = group_advantages(returns, groups, "rloo")
    for k, group in enumerate(batch):
        if len(set(group)) == 1:
            continue
        for i, r in enumerate(group):
            others = group[:i] + group[i + 1 :]
            assert advantages[groups == k][i] == pytest.approx(r - np.mean(others), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(batches)
def test_batch_advantage_is_the_return_minus_the_mean_of_every_other_episode(batch):
    returns, groups = _flatten(batch)
    advantages = group_advantages(returns, groups, "batch")
    if np.ptp(returns) == 0 or len(returns) < 2:
        assert (advantages == 0).all()
        return
    assert abs(advantages.sum()) <= 1e-9 * max(1.0, np.abs(advantages).max()) * len(returns)
    for i, r in enumerate(returns):
        others = np.delete(returns, i)
        assert advantages[i] == pytest.approx(r - others.mean(), abs=1e-12)


def test_a_batch_baseline_trains_groups_of_one_and_is_counted_over_the_round():
    assert GRPOConfig(advantage="batch", group_size=1, groups=4).group_size == 1
    with pytest.raises(ValueError, match=">= 2"):
        GRPOConfig(advantage="batch", group_size=1, groups=1)
    assert signal_groups(4, 1, "batch").tolist() == [0, 0, 0, 0]
    assert signal_groups(4, 2, "rloo").tolist() == [0, 0, 1, 1]


@needs_lm
def test_a_batch_baseline_run_of_single_rollouts_changes_the_policy(tmp_path_factory):
    from safetensors.torch import load_file

    out = short_grpo_run(
        tmp_path_factory,
        advantage="batch",
        groups=4,
        group_size=1,
        iterations=1,
        lr=1e-3,
        user_model="template",
        eval_episodes=0,
    )
    before = load_file(str(TINY_MODEL_DIR / "model.safetensors"))
    after = load_file(str(out / "lm" / "model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert json.loads((out / "manifest.json").read_text())["config"]["group_size"] == 1


def test_group_advantages_refuse_what_has_no_baseline():
    with pytest.raises(ValueError, match="kind must be one of"):
        group_advantages(np.zeros(2), np.zeros(2), "gae")
    with pytest.raises(ValueError, match="a baseline needs >= 2"):
        group_advantages(np.array([1.0, 0.0, 1.0]), np.array([0, 0, 1]), "rloo")
    with pytest.raises(ValueError, match="group_size >= 2"):
        GRPOConfig(group_size=1)


# -- rollouts --------------------------------------------------------------------------
@pytest.fixture
def resets(monkeypatch) -> list[tuple[int, int | None, dict]]:
    """``(env id, seed, goal)`` of every ``DialogEnv`` reset from here on."""
    seen = []
    reset_steps = DialogEnv.reset_steps

    def recording(self, *, seed=None, options=None):
        result = yield from reset_steps(self, seed=seed, options=options)
        seen.append((id(self), seed, self.episode_summary()[0]))
        return result

    monkeypatch.setattr(DialogEnv, "reset_steps", recording)
    return seen


@needs_lm
def test_the_rollouts_of_a_group_start_from_one_episode_and_play_it_to_its_end(policy, resets):
    K, G = 3, 3
    envs = gym.make_vec("Dialog-v1", num_envs=K * G, split="train", user_model="template")
    generator = torch.Generator().manual_seed(0)
    episodes = play_groups(envs, policy, [11, 22, 33], G, generator, temperature=1.5)
    first = resets[: K * G]  # the reset of the whole batch
    assert [seed for _, seed, _ in first] == [11, 11, 11, 22, 22, 22, 33, 33, 33]
    for k in range(K):
        goals = [goal for _, _, goal in first[k * G : (k + 1) * G]]
        openings = [e.first_observation for e in episodes[k * G : (k + 1) * G]]
        assert goals[0] == goals[1] == goals[2] and openings[0] == openings[1] == openings[2]
        assert [e.seed for e in episodes[k * G : (k + 1) * G]] == [11 * (k + 1)] * G
    assert len({e.first_observation for e in episodes}) == K  # the groups differ
    # One episode per sub-env: each ends at its last message, and its return is its own.
    for e in episodes:
        assert [m.ends_episode for m in e.messages] == [False] * (len(e.messages) - 1) + [True]
        assert e.env_return == pytest.approx(sum(m.reward for m in e.messages))
        assert e.env_return <= 1.0 - 0.02 * len(e.messages) + 1e-9
    # A finished sub-env waits, not stepped: nothing resets it (no stray episode starts).
    assert len(resets) == K * G
    assert all(0 <= seed < EVAL_SEED_FLOOR for _, seed, _ in resets)
    envs.close()


@pytest.fixture(scope="module")
def sft_policy():
    """A policy fresh from SFT (the board's ``sft-careless``): nearly greedy at T = 1, so
    a group's rollouts write the same messages for several turns."""
    from baselines.common.policy import TokenPolicy

    return TokenPolicy.load(Path(__file__).parents[2] / "baselines/checkpoints/sft-careless")


def _played(policy, share: bool, monkeypatch) -> tuple[list, dict]:
    """Two groups of eight rollouts (template voice, seeded), prefilling and decoding
    twin rows once (``share``) or every row itself; the messages and the KV cache's
    counts, with ``twin_decodes``: the decode calls that ran twins as one row."""
    import dialog_env.lm.twin_decode as twin_decode
    from dialog_env.lm.sessions import ConversationCache

    caches, decodes = [], []
    decode_twins = twin_decode.decode_twins

    def cache(*args, **kwargs):
        caches.append(ConversationCache(*args, **kwargs, share_prefills=share))
        return caches[-1]

    def counted(*args, **kwargs):
        decodes.append(1)
        return decode_twins(*args, **kwargs)

    monkeypatch.setattr(grpo_groups, "ConversationCache", cache)
    monkeypatch.setattr(twin_decode, "decode_twins", counted)
    envs = gym.make_vec("Dialog-v1", num_envs=16, split="train", user_model="template")
    episodes = play_groups(envs, policy, [3, 4], 8, torch.Generator().manual_seed(0), 1.0)
    envs.close()
    return episodes, caches[0].stats | {"twin_decodes": len(decodes)}


@needs_lm
def test_twin_rows_of_a_group_are_read_once_and_sample_the_very_same_messages(
    sft_policy, monkeypatch
):
    """A group's rollouts that hold the same transcript prefill it once and decode as one
    row while they draw alike, and sample the same tokens with the same log-probs and
    entropies, to the bit, as when every row is prefilled and decoded alone; the
    reference scores their identical rows once, to the same bits."""
    (shared, counts), (alone, alone_counts) = (
        _played(sft_policy, share, monkeypatch) for share in (True, False)
    )
    fields = [
        [(m.tokens, m.logprobs.tolist(), m.entropies.tolist()) for m in e.messages] for e in shared
    ]
    assert fields == [
        [(m.tokens, m.logprobs.tolist(), m.entropies.tolist()) for m in e.messages] for e in alone
    ]
    assert alone_counts["shared"] == alone_counts["twin_decodes"] == 0
    assert counts["fed"] == alone_counts["fed"] and counts["twin_decodes"] > 1
    # Twins went on past the opening (7 twins per group, each its prompt but one token).
    opening = sum(7 * (len(shared[k].messages[0].prompt) - 1) for k in (0, 8))
    assert counts["shared"] > opening
    scored = []
    for episodes, distinct in ((shared, True), (alone, False)):
        if not distinct:  # every row scored in its own right
            monkeypatch.setattr(
                "baselines.common.rollout.distinct_rows", lambda batch: (list(batch), [])
            )
        rows = [row for e in episodes for row in pack_episode(e.messages)]
        assert distinct is False or len({tuple(r.ids) for r in rows}) < len(rows)
        score_rows(sft_policy, rows, batch_size=8)
        scored.append([m.ref_logprobs.tolist() for e in episodes for m in e.messages])
    assert scored[0] == scored[1]


@needs_lm
def test_same_episode_and_same_messages_give_identical_returns_and_no_signal(policy):
    """Nearly greedy sampling writes the same messages in every rollout of a group: the
    episodes are then identical, the group has zero spread and its advantages are 0."""
    K, G = 2, 3
    envs = gym.make_vec("Dialog-v1", num_envs=K * G, split="train", user_model="template")
    generator = torch.Generator().manual_seed(0)
    episodes = play_groups(envs, policy, [5, 6], G, generator, temperature=1e-4)
    for k in range(K):
        group = episodes[k * G : (k + 1) * G]
        transcripts = {tuple(tuple(m.tokens) for m in e.messages) for e in group}
        assert len(transcripts) == 1 and len({e.env_return for e in group}) == 1
    returns, groups = np.array([e.env_return for e in episodes]), np.repeat(np.arange(K), G)
    assert zero_spread(returns, groups).all()
    assert (group_advantages(returns, groups, "grpo") == 0).all()
    envs.close()


def test_dynamic_sampling_replaces_groups_without_spread_by_fresh_seeds(monkeypatch):
    """Rounds of K groups are played until K groups with a return spread are found (or
    the rounds run out); only those are trained, each token carrying its advantage."""
    z = np.zeros(0)
    # Round by round, which of the K = 2 groups of G = 2 succeed in each rollout.
    outcomes = iter([[(1, 1), (0, 1)], [(0, 0), (1, 1)], [(1, 0), (0, 1)]])
    seeds_drawn = []

    def fake_play(envs, policy, seeds, group_size, generator, temperature):
        seeds_drawn.append(list(seeds))
        return [
            GroupEpisode(s, [Message([1], [2, 3], z, z, float(r), True)], float(r), r, "")
            for s, group in zip(seeds, next(outcomes), strict=True)
            for r in group
        ]

    monkeypatch.setattr(grpo_groups, "play_groups", fake_play)
    config = GRPOConfig(groups=2, group_size=2, resample_rounds=5)
    played, kept, rounds = collect_groups(None, None, np.random.default_rng(0), None, config)
    assert rounds == 3 and len(played) == 12  # round 2 had no spread at all
    assert [e.seed for e in kept] == [seeds_drawn[0][1]] * 2 + [seeds_drawn[2][0]] * 2
    set_advantages(kept, config)
    advantages = [m.advantages for e in kept for m in e.messages]
    np.testing.assert_allclose(advantages, [[-1, -1], [1, 1], [1, 1], [-1, -1]], rtol=1e-6)
    assert len({s for seeds in seeds_drawn for s in seeds}) == 6  # fresh seeds each round

    outcomes = iter([[(1, 1), (0, 0)]])
    played, kept, rounds = collect_groups(
        None, None, np.random.default_rng(0), None, dataclasses.replace(config, resample_rounds=0)
    )
    assert (len(played), kept, rounds) == (4, [], 1)  # no extra round allowed


def test_a_success_spread_skips_groups_whose_returns_differ_by_step_costs_only(monkeypatch):
    """``spread="success"`` (DAPO's accuracy filter): a group that all fails (or all
    succeeds) is not trained even though its returns differ; ``"return"`` trains it."""
    z = np.zeros(0)
    # Round by round, the K = 2 groups of G = 2 as (return, success) per rollout.
    rounds_played = [
        [((-0.1, False), (-0.3, False)), ((0.9, True), (-0.2, False))],
        [((0.8, True), (0.9, True)), ((0.7, True), (-0.1, False))],
    ]

    def fake_play(envs, policy, seeds, group_size, generator, temperature):
        return [
            GroupEpisode(s, [Message([1], [2, 3], z, z, r, True)], r, ok, "")
            for s, group in zip(seeds, outcomes.pop(0), strict=True)
            for r, ok in group
        ]

    monkeypatch.setattr(grpo_groups, "play_groups", fake_play)
    by_return = GRPOConfig(groups=2, group_size=2, resample_rounds=1, advantage="rloo")
    for spread, want_rounds, want_kept in (("return", 1, [0, 1]), ("success", 2, [1, 3])):
        outcomes = list(rounds_played)
        config = dataclasses.replace(by_return, spread=spread)
        played, kept, rounds = collect_groups(None, None, np.random.default_rng(0), None, config)
        assert rounds == want_rounds
        index = {id(e): i // 2 for i, e in enumerate(played)}  # the group of each episode
        assert sorted({index[id(e)] for e in kept}) == want_kept, spread
    flat = untrained_groups(played, np.repeat(np.arange(4), 2), "success")
    assert flat.tolist() == [True, True, False, False, True, True, False, False]
    with pytest.raises(ValueError, match="spread must be one of"):
        GRPOConfig(spread="returns")


@needs_lm
def test_tempered_sampling_records_the_log_probs_of_the_policy_itself(policy):
    prompts = [policy.encode("user: I'm looking for a restaurant in the north.")] * 4
    sampled = policy.sample(
        prompts, [0, 1, 2, 3], sessions(policy), torch.Generator().manual_seed(0), temperature=2.0
    )
    with torch.no_grad():
        logprobs, entropy, _ = policy.evaluate(prompts, sampled.tokens)
    np.testing.assert_allclose(logprobs, np.concatenate(sampled.logprobs), atol=1e-4)
    np.testing.assert_allclose(entropy, np.concatenate(sampled.entropies), atol=1e-4)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        policy.sample(prompts, [0, 1, 2, 3], sessions(policy), torch.Generator(), temperature=0.0)


@needs_lm
def test_packed_rows_score_every_message_as_its_own_prompt_does(policy):
    envs = gym.make_vec("Dialog-v1", num_envs=2, split="train", user_model="template")
    episodes = play_groups(envs, policy, [3], 2, torch.Generator().manual_seed(1), 1.5)
    envs.close()
    messages = [m for e in episodes for m in e.messages]
    rows = [row for e in episodes for row in pack_episode(e.messages)]
    assert len(rows) < len(messages)  # a conversation is read once, not once per message
    with torch.no_grad():
        packed, _, _ = policy.evaluate_spans([r.ids for r in rows], [r.spans for r in rows])
        alone, _, _ = policy.evaluate([m.prompt for m in messages], [m.tokens for m in messages])
    np.testing.assert_allclose(packed, alone, atol=1e-4)
    np.testing.assert_allclose(packed, np.concatenate([m.logprobs for m in messages]), atol=1e-4)


@needs_lm
@pytest.mark.parametrize("step_over", ["pass", "minibatch"])
def test_one_step_per_pass_cancels_a_group_on_the_tokens_its_rollouts_share(policy, step_over):
    """Two rollouts that wrote the same tokens, advantages +1 and -1: one step over the
    pass adds their gradients up to exactly 0 and leaves the policy as it was; a step per
    minibatch (one row each) moves it, first one way and then not quite back."""
    import copy

    from baselines.grpo import grpo_update

    policy = copy.deepcopy(policy)
    prompt = policy.encode("user: I'm looking for a restaurant in the north.")
    tokens = policy.encode("assistant: Sure. What type of food would you like?")[-8:]
    logprobs, _, _ = policy.evaluate_spans([[*prompt, *tokens]], [[(len(prompt), len(prompt) + 8)]])
    rows = []
    for advantage in (1.0, -1.0):
        z = np.zeros(0)
        m = Message(prompt, tokens, logprobs.detach().double().numpy(), z, 0.0, True)
        m.advantages = np.full(len(tokens), advantage)
        rows += pack_episode([m])
    config = GRPOConfig(beta=0.0, lr=1e-3, minibatch_rows=1, step_over=step_over)
    before = copy.deepcopy(policy.state_dict())
    optimizer = torch.optim.Adam(policy.model.parameters(), lr=config.lr, eps=1e-5)
    stats = grpo_update(policy, optimizer, rows, config, np.random.default_rng(0))
    after = policy.state_dict()
    unchanged = all(torch.equal(before[k], after[k]) for k in before)
    assert unchanged == (step_over == "pass")
    assert stats["update/optimizer_steps"] == (1 if step_over == "pass" else 2)


@needs_lm
@pytest.mark.parametrize("step_over", ["pass", "minibatch"])
def test_merged_twin_rows_take_the_same_step_as_reading_every_row(policy, step_over):
    """``--merge-twins``: a group whose rollouts copy each other is read once per distinct
    row of a minibatch, weighted by its count; each step (of a pass, or of a minibatch)
    lands where reading every row does, up to float rounding, with the same loss and
    diagnostics (the second pass's ratios moved off 1, so the clip counts), and the
    run's generator draws the same numbers after it, so the next seeds are the same."""
    import copy

    from baselines.grpo import grpo_update

    rows = []
    for text, advantage, copies in (("a table for two", 1.0, 3), ("nothing", -0.5, 2)):
        prompt = policy.encode("user: I'm looking for a restaurant in the north.")
        tokens = policy.encode(f"assistant: {text}")[-6:]
        spans = [(len(prompt), len(prompt) + len(tokens))]
        logprobs, _, _ = policy.evaluate_spans([[*prompt, *tokens]], [spans])
        for _ in range(copies):
            m = Message(prompt, tokens, logprobs.detach().double().numpy(), np.zeros(0))
            m.advantages = np.full(len(tokens), advantage)
            m.ref_logprobs = m.logprobs - 0.1
            rows += pack_episode([m])
    stepped = []
    for merge in (False, True):
        trained, rng = copy.deepcopy(policy), np.random.default_rng(0)
        config = GRPOConfig(
            beta=0.05,
            lr=3e-2,
            epochs=2,
            step_over=step_over,
            minibatch_rows=2,
            merge_twins=merge,
        )
        optimizer = torch.optim.Adam(trained.model.parameters(), lr=config.lr, eps=1e-5)
        stats = grpo_update(trained, optimizer, rows, config, rng)
        stepped.append((trained.state_dict(), stats, rng.integers(1 << 62)))
    (plain, plain_stats, plain_next), (merged, merged_stats, merged_next) = stepped
    assert plain_next == merged_next
    assert plain_stats["update/rows_read"] == 5
    if step_over == "pass":  # one step a pass: each set of twins read once
        assert merged_stats["update/rows_read"] == 2
    else:  # a step a minibatch: twins that a shuffle put apart are read in each
        assert 2 < merged_stats["update/rows_read"] < 5
    assert merged_stats["update/rows"] == plain_stats["update/rows"] == 5
    assert plain_stats["update/clipfrac"] > 0 and plain_stats["update/approx_kl"] > 0
    keys = ("loss/policy", "loss/entropy", "kl/k2_token", "update/grad_norm")
    for key in (*keys, "update/clipfrac", "update/approx_kl"):
        assert merged_stats[key] == pytest.approx(plain_stats[key], rel=1e-4, abs=1e-7)
    moved = max(float((plain[k] - policy.state_dict()[k]).abs().max()) for k in plain)
    apart = max(float((merged[k] - plain[k]).abs().max()) for k in plain)
    assert moved > 1e-2 and apart < 1e-3 * moved  # Adam's steps, apart by rounding only


# -- screened seeds --------------------------------------------------------------------
def test_the_screen_keeps_the_seeds_the_greedy_agent_fails_with_the_env_s_verdict():
    """On the real env: the expert fails no seed; the screen's verdict on the noisy
    expert is the one a separate episode on each seed gives."""
    import gymnasium as gym

    from agents import load_agent
    from baselines.seed_screen import greedy_successes, screen_seeds

    seeds, kwargs = [11, 12, 13, 14], {"user_model": "template"}
    expert_ok, steps = greedy_successes(lambda: load_agent("expert"), "Dialog-v1", kwargs, seeds)
    assert expert_ok == [True] * 4 and steps >= 4 * 2

    def noisy():
        return load_agent("noisy-expert")

    noisy_ok, _ = greedy_successes(noisy, "Dialog-v1", kwargs, seeds)
    env = gym.make("Dialog-v1", split="train", user_model="template")
    for seed, ok in zip(seeds, noisy_ok, strict=True):
        _, info, _ = run_episode(env, load_agent("noisy-expert"), seed)
        assert ok == bool(info["success"]), seed
    chosen, stats = screen_seeds(noisy, "Dialog-v1", kwargs, seeds, 2)
    failing = [s for s, ok in zip(seeds, noisy_ok, strict=True) if not ok]
    assert chosen == (failing + [s for s in seeds if s not in failing])[:2]
    assert stats["screen/greedy_success"] == np.mean(noisy_ok)
    with pytest.raises(ValueError, match="training seeds must lie in"):
        greedy_successes(noisy, "Dialog-v1", kwargs, [EVAL_SEED_FLOOR])
    with pytest.raises(ValueError, match="need 1 <= k <= 4"):
        screen_seeds(noisy, "Dialog-v1", kwargs, seeds, 5)


def _noisy_expert():
    return load_agent("noisy-expert")


def test_a_chunked_screen_stops_at_k_failing_seeds_with_the_full_screen_s_picks():
    """``chunk=4``: the candidates are played 4 at a time and the screen stops in the
    chunk where the K-th failure falls, before the last candidate, keeping the seeds the
    whole screen keeps; its figures cover only the candidates it played."""
    from baselines.seed_screen import greedy_successes, screen_seeds

    seeds, kwargs, k = list(range(11, 23)), {"user_model": "template"}, 2
    ok, _ = greedy_successes(_noisy_expert, "Dialog-v1", kwargs, seeds)
    kth_failure = [i for i, solved in enumerate(ok) if not solved][k - 1]
    expected_played = (kth_failure // 4 + 1) * 4
    assert expected_played < len(seeds)  # the seeds make the early stop stop early

    full, full_stats = screen_seeds(_noisy_expert, "Dialog-v1", kwargs, seeds, k)
    chunked, stats = screen_seeds(_noisy_expert, "Dialog-v1", kwargs, seeds, k, chunk=4)
    assert chunked == full
    assert full_stats["screen/candidates"] == len(seeds)
    assert stats["screen/candidates"] == expected_played
    assert stats["screen/greedy_success"] == np.mean(ok[:expected_played])
    assert 0 < stats["screen/env_steps"] < full_stats["screen/env_steps"]
    assert stats["screen/failing_share_kept"] == 1.0


def test_a_chunked_screen_with_too_few_failing_seeds_plays_them_all_and_falls_back_alike():
    """Fewer than K fail: every candidate is played (the last chunk a short one) and the
    picks, the failing ones then the first solved, are the whole screen's."""
    from baselines.seed_screen import greedy_successes, screen_seeds

    seeds, kwargs = list(range(11, 23)), {"user_model": "template"}
    ok, _ = greedy_successes(_noisy_expert, "Dialog-v1", kwargs, seeds)
    k = ok.count(False) + 1
    full, full_stats = screen_seeds(_noisy_expert, "Dialog-v1", kwargs, seeds, k)
    chunked, stats = screen_seeds(_noisy_expert, "Dialog-v1", kwargs, seeds, k, chunk=5)
    assert chunked == full and ok[seeds.index(chunked[-1])]  # the fallback: a solved seed
    assert stats == full_stats and stats["screen/candidates"] == len(seeds)
    with pytest.raises(ValueError, match="chunk must be >= 0"):
        screen_seeds(_noisy_expert, "Dialog-v1", kwargs, seeds, k, chunk=-1)
    with pytest.raises(ValueError, match="screen_chunk must be >= 0"):
        GRPOConfig(seeds="greedy-fails", screen_chunk=-1)


def test_screened_seeds_need_seeded_groups():
    with pytest.raises(ValueError, match="not with advantage batch"):
        GRPOConfig(seeds="greedy-fails", advantage="batch", group_size=1)
    with pytest.raises(ValueError, match="seeds must be one of"):
        GRPOConfig(seeds="hardest")


# -- the trainer -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return short_grpo_run(
        tmp_path_factory,
        iterations=2,
        lr=1e-3,
        user_model="template",
        eval_every=2,
        eval_episodes=1,
    )


@needs_lm
def test_a_short_run_changes_the_policy_and_writes_a_checkpoint_that_plays(trained):
    from safetensors.torch import load_file

    before = load_file(str(TINY_MODEL_DIR / "model.safetensors"))
    after = load_file(str(trained / "lm" / "model.safetensors"))
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)

    manifest = json.loads((trained / "manifest.json").read_text())
    assert rebuild_differences(manifest) == {}  # its command rebuilds its config
    assert manifest["seed"] == 0 and manifest["command"]
    assert manifest["budget"]["env_steps"] >= 2 * 2 * 2 and manifest["budget"]["tokens"] > 0
    assert manifest["budget"]["trained_tokens"] > 0 and manifest["budget"]["wall_time_s"] > 0
    curve = manifest["curve"]
    assert [point["iteration"] for point in curve] == [0, 2]
    assert curve[0]["env_steps"] == 0 < curve[1]["env_steps"] == manifest["budget"]["env_steps"]
    assert all(0 <= point["dev_success"] <= 1 for point in curve)
    assert curve[0]["kl"] == 0.0 and np.isfinite(curve[1]["kl"])  # booking tracks it too
    assert "dev_gold" not in curve[0]  # booking has no gold judge
    assert manifest["kept_step"] in (0, 2) and manifest["config"]["groups"] == 2

    agent = load_agent(trained)
    assert (agent.paradigm, agent.interface) == ("rl", "token")
    assert isinstance(agent.act("user: I want thai food in the centre."), str)


@needs_lm
def test_a_screened_run_counts_the_screen_in_its_budget(tmp_path_factory):
    run = short_grpo_run(
        tmp_path_factory, iterations=1, seeds="greedy-fails", user_model="template", eval_episodes=0
    )
    budget = json.loads((run / "manifest.json").read_text())["budget"]
    assert budget["screen_env_steps"] >= 2 * 2  # K*G candidates, a message or more each
    assert budget["env_steps"] >= budget["screen_env_steps"] + 2 * 2


@needs_lm
def test_a_chunked_screen_trains_the_same_weights_for_no_more_screen_steps(tmp_path_factory):
    """``--screen-chunk 2`` (2 of the 4 candidates at a time) picks the seeds the whole
    screen picks, so the run trains the very same weights; its budget counts only the
    screen episodes it played."""
    import hashlib

    runs = [
        short_grpo_run(
            tmp_path_factory,
            iterations=2,
            seeds="greedy-fails",
            user_model="template",
            eval_episodes=0,
            screen_chunk=chunk,
        )
        for chunk in (0, 2)
    ]
    weights = [hashlib.sha256((r / "lm" / "model.safetensors").read_bytes()).digest() for r in runs]
    budgets = [json.loads((r / "manifest.json").read_text())["budget"] for r in runs]
    assert weights[0] == weights[1]
    # The base LM fails every seed greedily: the chunked screen stops after its first chunk.
    assert 0 < budgets[1]["screen_env_steps"] < budgets[0]["screen_env_steps"]
    rollouts = [b["env_steps"] - b["screen_env_steps"] for b in budgets]
    assert rollouts[0] == rollouts[1]  # the same groups were played


def test_every_config_field_reaches_the_command_line():
    from baselines.common.config import config_from_args
    from baselines.train import TRAINERS
    from dialog_bench.cli import build_parser

    assert TRAINERS["grpo"] == "baselines.grpo"
    changed = {
        "init": "sft",
        "init_sha256": "ab" * 32,
        "out": Path("somewhere"),
        "advantage": "rloo",
        "credit": "turn",
        "kl_estimator": "k3",
        "step_over": "minibatch",
        "keep": "last",
        "user_model": "template",
        "env_id": "Dialog-Chat-v1",
        "env_kwargs": '{"reward": "gold"}',
        "train_env_kwargs": '{"venue_names": "shuffled"}',
        "seeds": "greedy-fails",
        "spread": "success",
        "logdir": Path("elsewhere"),
    }
    argv = ["train", "grpo"]
    for f in dataclasses.fields(GRPOConfig):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            changed[f.name] = not f.default
            argv.append(flag if changed[f.name] else "--no-" + f.name.replace("_", "-"))
            continue
        if f.name not in changed:
            changed[f.name] = f.default * 3 + 1
        argv += [flag, str(changed[f.name])]
    config = config_from_args(build_parser().parse_args(argv), GRPOConfig)
    assert config == GRPOConfig(**changed)
    assert config != GRPOConfig()


def test_incremental_sampling_records_the_log_probs_the_update_scores(one_torch_thread):
    import torch

    from baselines.common.policy import TokenPolicy
    from dialog_env.lm import TINY_MODEL_DIR
    from dialog_env.lm.sessions import ConversationCache

    policy = TokenPolicy.load(TINY_MODEL_DIR)
    policy.max_new_tokens = 8
    sessions = ConversationCache(policy.codec.pad_id)
    generator = torch.Generator().manual_seed(0)
    prompts = [policy.encode("user: I want thai food."), policy.encode("user: Hello.")]
    first = policy.sample(prompts, [0, 1], sessions, generator, temperature=1.5)
    follow = [[*prompts[0], *first.tokens[0], *policy.encode("user: ok")[1:]], prompts[1]]
    second = policy.sample(follow, [0, 1], sessions, generator)
    assert sessions.stats["reused"] >= len(prompts[0]) + len(prompts[1]) - 1
    for sampled, rows in ((first, prompts), (second, follow)):
        with torch.no_grad():
            logprobs, entropy, _ = policy.evaluate(rows, sampled.tokens)
        recorded = [lp for row in sampled.logprobs for lp in row]
        assert torch.allclose(logprobs, torch.tensor(recorded, dtype=logprobs.dtype), atol=1e-4)
        spread = [h for row in sampled.entropies for h in row]
        assert torch.allclose(entropy, torch.tensor(spread, dtype=entropy.dtype), atol=1e-4)


# -- the chat task ---------------------------------------------------------------------
def test_each_env_gets_its_own_user_voice_unless_one_is_asked_for():
    booking = gym.make("Dialog-v1", **GRPOConfig().training_env_kwargs())
    chat = gym.make("Dialog-Chat-v1", **GRPOConfig(env_id="Dialog-Chat-v1").training_env_kwargs())
    assert (booking.unwrapped.user_model, chat.unwrapped.user_model) == ("tiny", "template")
    assert booking.unwrapped.split == chat.unwrapped.split == "train"
    asked = GRPOConfig(env_id="Dialog-Chat-v1", user_model="tiny", env_kwargs='{"reward": "gold"}')
    assert asked.training_env_kwargs() == {"split": "train", "reward": "gold", "user_model": "tiny"}


def test_train_env_kwargs_reach_the_training_envs_and_never_the_dev_ones(monkeypatch):

    seen = {}

    def fake_dev(agent, env_id, episodes, env_kwargs=None, progress=False, per_episode=False):
        seen["dev"] = env_kwargs
        raise StopIteration  # enough: the training envs were made before the first eval

    made = {}
    real_make_vec = gym.make_vec

    def spy_make_vec(env_id, num_envs, **kwargs):
        made["train"] = kwargs
        return real_make_vec(env_id, num_envs=num_envs, **kwargs)

    monkeypatch.setattr(grpo, "evaluate_on_dev", fake_dev)
    monkeypatch.setattr(gym, "make_vec", spy_make_vec)
    config = GRPOConfig(
        groups=1,
        group_size=2,
        iterations=1,
        eval_episodes=2,
        user_model="template",
        train_env_kwargs='{"venue_names": "shuffled"}',
    )
    with pytest.raises(StopIteration):
        grpo.main(config)
    assert made["train"]["venue_names"] == "shuffled" and made["train"]["split"] == "train"
    assert not (seen["dev"] or {}).get("venue_names")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"env_id": "Dialog-Acts-v1"}, "env_id must be one of"),
        ({"env_kwargs": "{reward: gold}"}, "not JSON"),
        ({"env_kwargs": '["rm"]'}, "a JSON object"),
        ({"env_kwargs": '{"split": "test"}'}, "may not set split"),
        ({"train_env_kwargs": '{"split": "test"}'}, "train_env_kwargs may not set split"),
        ({"train_env_kwargs": "[1]"}, "train_env_kwargs must be a JSON object"),
    ],
)
def test_a_config_refuses_envs_it_cannot_train_on(changes, message):
    with pytest.raises(ValueError, match=message):
        GRPOConfig(**changes)


def test_an_lm_checkpoint_config_names_only_a_text_env():
    config = {"agent": "lm", "interface": "token", "env_id": "Dialog-Chat-v1"}
    assert check_config(config, "config.json") == config
    with pytest.raises(ValueError, match="env_id must be one of Dialog-v1"):
        check_config({**config, "env_id": "Dialog-Acts-v1"}, "config.json")


@needs_lm
def test_chat_groups_play_one_episode_each_and_finished_ones_are_left_alone(policy, resets):
    envs = gym.make_vec("Dialog-Chat-v1", num_envs=4, split="train", reward="gold")
    episodes = play_groups(envs, policy, [1, 2], 2, torch.Generator().manual_seed(0), 1.5)
    envs.close()
    # no wait reset, no autoreset: no stray episode
    assert [seed for _, seed, _ in resets] == [1, 1, 2, 2]
    for e in episodes:
        assert [m.ends_episode for m in e.messages] == [False] * (len(e.messages) - 1) + [True]
        # reward="gold": the return is the episode's mean gold score, its own
        assert e.env_return == pytest.approx(e.metrics["mean_gold"])
        assert e.metrics["answered"] + e.metrics["tool_calls"] == len(e.messages)

    # The KL from the init of the init itself: 0, up to the sampler's float error.
    score_rows(policy, [row for e in episodes for row in pack_episode(e.messages)], 4)
    kl = rollout_kl(episodes)
    assert abs(kl["kl/episode"]) < 1e-3 and abs(kl["kl/token"]) < 1e-4


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory):
    return short_grpo_run(
        tmp_path_factory,
        env_id="Dialog-Chat-v1",
        env_kwargs='{"reward": "gold"}',
        iterations=1,
        lr=0.0,  # the policy stays the init: its KL from the init must come out 0
        eval_every=1,
        eval_episodes=2,
    )


@needs_lm
def test_a_chat_run_records_gold_proxy_and_kl_from_iteration_0(chat_run):
    manifest = json.loads((chat_run / "manifest.json").read_text())
    assert manifest["env_id"] == "Dialog-Chat-v1"
    assert manifest["env_kwargs"] == {"split": "train", "reward": "gold"}
    curve = manifest["curve"]
    assert [p["iteration"] for p in curve] == [0, 1]
    for point in curve:
        assert {"dev_success", "dev_return", "dev_gold", "kl", "kl_token"} <= point.keys()
        assert 0 <= point["dev_gold"] <= 1
        assert point["dev_return"] == pytest.approx(point["dev_gold"])  # reward="gold"
        # Each dev episode's gold, in the set's order: two points compare paired.
        assert len(point["context_gold"]) == 2
        assert point["dev_gold"] == pytest.approx(np.mean(point["context_gold"]), abs=1e-6)
    # lr 0: the same policy plays the same dev episodes, so every episode's gold repeats.
    assert curve[1]["context_gold"] == curve[0]["context_gold"]
    assert curve[0]["kl"] == curve[0]["kl_token"] == 0.0  # the init itself
    # The last point's KL is measured on a round played by the policy it scored.
    assert manifest["budget"]["kl_probe_env_steps"] >= 4
    assert np.isfinite(curve[1]["kl"]) and abs(curve[1]["kl"]) < 1e-3  # lr 0: not moved
    summary = overoptimization_summary(curve)
    assert summary["peak_kl"] == 0.0 or summary["peak_gold"] > curve[0]["dev_gold"]

    agent = load_agent(chat_run)
    assert json.loads((chat_run / "config.json").read_text())["env_id"] == "Dialog-Chat-v1"
    assert isinstance(agent.act("user: What is the phone number of The Amber Fig?"), str)


@needs_lm
def test_remembered_turns_train_the_same_weights_as_voicing_every_turn(tmp_path_factory):
    """``--remember-turns`` voices a turn met again once (a group's rollouts of one seed,
    the screened seeds, the dev episodes of every evaluation) and trains the very same
    policy: the weights and the curve equal those of a run that voices every turn."""
    import hashlib

    from dialog_env.lm.voice import remember_turns

    runs = [
        short_grpo_run(
            tmp_path_factory,
            iterations=1,
            seeds="greedy-fails",
            eval_every=1,
            eval_episodes=2,
            remember_turns=remember,
        )
        for remember in (False, True)
    ]
    weights = [hashlib.sha256((r / "lm" / "model.safetensors").read_bytes()).digest() for r in runs]
    curves = [json.loads((r / "manifest.json").read_text())["curve"] for r in runs]
    assert weights[0] == weights[1] and curves[0] == curves[1]
    assert remember_turns(False) is False  # the run switched the memo back off
