"""Token-level PPO: the actor-critic's two views agree, GAE and the KL controller do what
the papers say, and a short training run changes the policy and saves one that plays."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from lm_helpers import needs_lm, tiny_ppo_config

from agents import load_agent
from baselines.common.rollout import Message, pack_episode, score_rows
from baselines.common.run import resolve_init
from baselines.ppo_rollout import Rollout
from baselines.token_ppo import (
    AdaptiveKLController,
    assign_advantages,
    gae,
    kl_stats,
    train_ppo,
)
from dialog_env.lm import TINY_MODEL_DIR

OBSERVATIONS = [
    "user: I'm looking for a restaurant in the north.",
    "user: I want thai food in the centre.\nassistant: [search] food=thai area=centre\n"
    "tool: [result] 2 venues: The Amber Fig, The Blue Spoon",
    "user: Could you book a table for 4 on friday at 19:00?",
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs with one torch thread."""


@pytest.fixture(scope="module")
def policy():
    from baselines.common.policy import TokenPolicy

    return TokenPolicy.load(TINY_MODEL_DIR)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    config = tiny_ppo_config(
        tmp_path_factory.mktemp("ppo"), num_envs=3, epochs=2, minibatch_messages=3
    )
    return train_ppo(config)


@needs_lm
def test_policy_kl_to_itself_is_zero_and_both_views_agree(policy):
    """The reference and the values are scored after the rollout, packed, without
    gradients: a reference that is the policy's own init gives every sampled token a KL
    of 0, and the values are those the update's forward reads."""
    from baselines.common.policy import TokenPolicy
    from dialog_env.lm.sessions import ConversationCache

    reference = TokenPolicy.load(TINY_MODEL_DIR).requires_grad_(False).eval()
    prompts = [policy.encode(o) for o in OBSERVATIONS]
    keys = list(range(len(prompts)))

    def sample():
        sessions = ConversationCache(policy.codec.pad_id)
        return policy.sample(prompts, keys, sessions, torch.Generator().manual_seed(0))

    sampled = sample()
    assert all(len(t) >= 1 for t in sampled.tokens)
    messages = [
        Message(p, t, np.array(lp), np.array(h))
        for p, t, lp, h in zip(
            prompts, sampled.tokens, sampled.logprobs, sampled.entropies, strict=True
        )
    ]
    rows = [row for m in messages for row in pack_episode([m])]
    score_rows(reference, rows, 2)
    score_rows(policy, rows, 2, into="values")
    stats = kl_stats(messages)
    assert all(abs(v) < 1e-5 for v in stats.values()), stats
    # The update's batched forward scores the sampled tokens as the KV-cached decode did.
    with torch.no_grad():
        logprobs, entropy, values = policy.evaluate(prompts, sampled.tokens)
    np.testing.assert_allclose(logprobs, np.concatenate(sampled.logprobs), atol=1e-4)
    np.testing.assert_allclose(entropy, np.concatenate(sampled.entropies), atol=1e-4)
    np.testing.assert_allclose(values, np.concatenate([m.values for m in messages]), atol=1e-5)
    # Sampling draws from the generator only: the same seed gives the same messages.
    assert sample().tokens == sampled.tokens


def test_gae_matches_a_hand_computation():
    # Episode A: tokens 0-2 (ends after token 2); episode B: tokens 3-4, runs on (V=0.8).
    rewards = np.array([0.0, -0.1, 1.0, 0.0, -0.02])
    values = np.array([0.2, 0.4, 0.6, 0.1, 0.3])
    ends = np.array([False, False, True, False, False])
    adv, ret = gae(rewards, values, ends, last_value=0.8, gamma=0.9, lam=0.5)
    d4 = -0.02 + 0.9 * 0.8 - 0.3  # 0.4
    d3 = 0.0 + 0.9 * 0.3 - 0.1  # 0.17
    d2 = 1.0 - 0.6  # 0.4 (no bootstrap past the end of episode A)
    d1 = -0.1 + 0.9 * 0.6 - 0.4  # 0.04
    d0 = 0.0 + 0.9 * 0.4 - 0.2  # 0.16
    a4, a2 = d4, d2
    a3 = d3 + 0.45 * a4
    a1 = d1 + 0.45 * a2
    a0 = d0 + 0.45 * a1
    np.testing.assert_allclose(adv, [a0, a1, a2, a3, a4])
    np.testing.assert_allclose(ret, adv + values)
    # gamma = lambda = 1: the advantage is the return-to-go minus the value.
    adv, _ = gae(rewards, values, ends, last_value=0.8, gamma=1.0, lam=1.0)
    np.testing.assert_allclose(adv[:3], [0.9 - 0.2, 0.9 - 0.4, 1.0 - 0.6])
    np.testing.assert_allclose(adv[3:], [-0.02 + 0.8 - 0.1, -0.02 + 0.8 - 0.3])


def test_rewards_penalize_kl_per_token_and_pay_the_env_reward_on_the_last_token():
    m = Message(
        [1], [5, 6], np.array([-1.0, -2.0]), ref_logprobs=np.array([-1.5, -1.0]), values=np.zeros(2)
    )
    m.reward, m.ends_episode = 1.0, True
    assign_advantages(Rollout([[m]], [123.0], []), beta=0.1, gamma=1.0, lam=1.0)
    # rewards: -0.1 * 0.5 = -0.05, then -0.1 * -1.0 + 1.0 = 1.1; values 0; no bootstrap
    np.testing.assert_allclose(m.returns, [1.05, 1.1])


def test_adaptive_kl_controller_moves_beta_toward_the_target():
    kl = AdaptiveKLController(0.1, target=2.0, horizon=100)
    assert kl.update(2.2, 10) == pytest.approx(0.1 * (1 + 0.1 * 10 / 100))  # 10% above
    assert kl.update(100.0, 10) == pytest.approx(0.101 * 1.02)  # error clipped at +20%
    high = kl.value
    assert kl.update(1.9, 10) < high  # below the target: beta shrinks
    assert kl.update(2.0, 500) == pytest.approx(kl.value)  # on target: it stays
    low = AdaptiveKLController(0.1, target=2.0, horizon=100)
    assert low.update(0.0, 100) == pytest.approx(0.08)  # error clipped at -20%
    with pytest.raises(ValueError, match="target > 0"):
        AdaptiveKLController(0.1, target=0.0, horizon=100)


def test_kl_stats_flag_a_negative_sampled_estimate_while_k3_stays_positive():
    m = Message([1], [5], np.array([-2.0]), ref_logprobs=np.array([-1.0]), values=np.zeros(1))
    stats = kl_stats([m])
    assert stats["kl/token"] == -1.0 and stats["kl/k3_token"] > 0


@needs_lm
def test_training_changes_the_policy_and_the_checkpoint_plays(trained, policy):
    from safetensors.torch import load_file

    assert sorted(p.name for p in trained.iterdir()) == [
        "config.json",
        "lm",
        "manifest.json",
        "value_head.safetensors",
    ]
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["budget"]["env_steps"] == 2 * 3 * 2 and manifest["budget"]["tokens"] >= 12
    assert manifest["seed"] == 0 and manifest["command"]
    before = load_file(str(TINY_MODEL_DIR / "model.safetensors"))
    after = load_file(str(trained / "lm" / "model.safetensors"))
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert load_file(str(trained / "value_head.safetensors"))["weight"].abs().sum() > 0

    agent = load_agent(trained)
    assert (agent.paradigm, agent.interface) == ("rl", "token")
    assert all(isinstance(a, str) for a in agent.act_batch(OBSERVATIONS))


@needs_lm
def test_checkpoint_round_trip_gives_identical_actions_and_values(trained, tmp_path):
    from baselines.common.policy import TokenPolicy

    loaded = TokenPolicy.load(trained)
    loaded.save(tmp_path / "again", "rl")
    again = TokenPolicy.load(tmp_path / "again")
    prompts = [loaded.encode(o) for o in OBSERVATIONS]
    assert loaded.prompt_values(prompts) == again.prompt_values(prompts)
    actions = loaded.agent().act_batch(OBSERVATIONS)
    assert actions == load_agent(tmp_path / "again").act_batch(OBSERVATIONS)
    assert actions == load_agent(trained).act_batch(OBSERVATIONS)
    assert [load_agent(trained).act(o) for o in OBSERVATIONS] == actions


@needs_lm
def test_init_names_the_paradigm(tmp_path, policy):
    assert resolve_init("base")[:2] == (TINY_MODEL_DIR, "rl")
    policy.save(tmp_path / "sft", "sft")
    assert resolve_init(str(tmp_path / "sft"))[1] == "sft-rl"
    with pytest.raises(ValueError, match="no directory"):
        resolve_init(str(tmp_path / "missing"))


@needs_lm
def test_a_pickle_in_a_policy_checkpoint_is_refused(trained, tmp_path):
    import shutil

    from baselines.common.policy import TokenPolicy

    copy = shutil.copytree(trained, tmp_path / "ckpt")
    (copy / "value_head.pt").write_bytes(b"not opened")
    with pytest.raises(ValueError, match="unpickling"):
        TokenPolicy.load(copy)
    with pytest.raises(ValueError, match="unpickling"):
        load_agent(copy)


@needs_lm
def test_ppo_from_the_sft_init_is_sft_rl_with_its_kl_to_the_sft_model(tmp_path, monkeypatch):
    """``--init sft``: the policy starts from ``sft-expert`` and the KL penalty holds it to
    ``sft-expert``, not to the base LM; the checkpoint is an ``sft-rl`` agent."""
    import hashlib

    from safetensors.torch import load_file

    from baselines import token_ppo

    repo = REPO_ROOT
    sft_weights = repo / "baselines/checkpoints/sft-expert/lm/model.safetensors"
    sft = load_file(str(sft_weights))
    base = load_file(str(TINY_MODEL_DIR / "model.safetensors"))
    assert any(not torch.equal(sft[k], base[k]) for k in sft)  # the two inits differ

    seen = []
    score_rollout = token_ppo.score_rollout

    def recording(policy, reference, rollout, batch_size):
        score_rollout(policy, reference, rollout, batch_size)
        seen.append(({k: v.clone() for k, v in reference.model.state_dict().items()}, rollout))

    monkeypatch.setattr(token_ppo, "score_rollout", recording)
    monkeypatch.chdir(repo)  # "--init sft" names baselines/checkpoints/sft-expert
    out = train_ppo(tiny_ppo_config(tmp_path, init="sft"))
    for reference, _ in seen:  # the reference is the SFT model, frozen, at every iteration
        assert set(sft) <= set(reference)
        assert all(torch.equal(reference[k], sft[k]) for k in sft)
    # Before any update the policy is its init: every token's KL to the reference is 0.
    first = seen[0][1].messages
    np.testing.assert_allclose(
        np.concatenate([m.logprobs for m in first]),
        np.concatenate([m.ref_logprobs for m in first]),
        atol=1e-5,
    )
    # After an update at lr 1e-3 the policy has moved away from it.
    assert kl_stats(seen[1][1].messages)["kl/k3_token"] > 0

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["init"] == "baselines/checkpoints/sft-expert"
    assert manifest["init_weights_sha256"] == hashlib.sha256(sft_weights.read_bytes()).hexdigest()
    agent = load_agent(out)
    assert (agent.paradigm, agent.interface) == ("sft-rl", "token")


@needs_lm
def test_every_dev_point_records_the_env_steps_trained_on_so_far(tmp_path, monkeypatch):
    """The manifest's ``curve`` places each eval by its budget (what the learning curves
    on the leaderboard page plot), ending at the run's total env steps."""
    from leaderboard.learning_curves import learning_curve

    scores = iter([(0.0, -0.1), (0.5, 0.2), (0.25, 0.1)])

    def fake_dev(*args, **kwargs):
        success, ret = next(scores)
        return {"dev_success": success, "dev_return": ret}

    monkeypatch.setattr("baselines.token_ppo.evaluate_on_dev", fake_dev)
    out = train_ppo(tiny_ppo_config(tmp_path, eval_episodes=1, eval_every=1))
    manifest = json.loads((out / "manifest.json").read_text())
    # 2 iterations of 2 messages in each of 2 sub-envs, the first eval before any.
    assert [(p["iteration"], p["env_steps"]) for p in manifest["curve"]] == [
        (0, 0),
        (1, 4),
        (2, 8),
    ]
    assert manifest["budget"]["env_steps"] == 8
    assert learning_curve(manifest).points == {"env_steps": [(0.0, 0.0), (4.0, 0.5), (8.0, 0.25)]}
