"""The chat reward model: its loss, a seeded training run, safe loading, and the env's
``reward="rm"`` (``baselines.reward_model``, ``dialog_env.tasks.chat.reward_model``)."""

from __future__ import annotations

import json
import math
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import dialog_env  # noqa: F401  (registers the ids)
from baselines.prefs import generate_prefs, write_prefs
from baselines.reward_model import RMConfig, pairwise_loss, split_by_seed, train_rm
from baselines.train import rebuild_differences
from dialog_env.lm import TINY_MODEL_DIR
from dialog_env.lm.loading import ModelLoadError, load_sequence_scorer
from dialog_env.lm.threads import torch_threads
from dialog_env.tasks.chat.reward_model import SHIPPED_RM_DIR, RewardModel
from dialog_env.text import Turn

REPLIES = ["[search] food=thai", "Happy to help! I recommend The Amber Fig.", "No idea.", "Bye."]


def test_the_pairwise_loss_is_minus_log_sigmoid_of_the_margin():
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    expected = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(1.0))) / 2
    assert float(pairwise_loss(chosen, rejected)) == pytest.approx(expected, rel=1e-6)


@pytest.fixture(scope="module")
def small_prefs(tmp_path_factory):
    path = tmp_path_factory.mktemp("prefs") / "p.jsonl"
    pairs, meta = generate_prefs(range(10), label_seed=1)
    write_prefs(path, pairs, meta, "test")
    return path, pairs


def _config(prefs, out, **kw) -> RMConfig:
    settings = dict(epochs=3, batch_size=6, max_tokens=128, norm_replies=10_000, eval_every=100)
    logdir = out.parent / "tb"
    return RMConfig(prefs=prefs, out=out, logdir=logdir, progress=False, **settings, **kw)


def _mean_loss(rm: RewardModel, pairs: list[dict]) -> float:
    contexts = [p["context"] for p in pairs]
    chosen = torch.tensor(rm.score(contexts, [p["chosen"] for p in pairs]))
    rejected = torch.tensor(rm.score(contexts, [p["rejected"] for p in pairs]))
    return float(pairwise_loss(chosen * rm.std, rejected * rm.std))  # on the raw scale


@pytest.fixture(scope="module")
def trained(small_prefs, tmp_path_factory):
    prefs, _ = small_prefs
    root = tmp_path_factory.mktemp("rm")
    return [train_rm(_config(prefs, root / name)) for name in ("one", "two")]


def test_a_tiny_run_lowers_the_training_loss(small_prefs, trained):
    _, pairs = small_prefs
    train, heldout = split_by_seed(pairs, 0.1)
    assert heldout and {p["seed"] for p in heldout} == {9}
    torch.manual_seed(0)  # the untrained model: the same head init as the run
    model, tokenizer = load_sequence_scorer(TINY_MODEL_DIR)
    before = _mean_loss(RewardModel(model, tokenizer, max_tokens=128), train)
    after = _mean_loss(RewardModel.load(trained[0]), train)
    assert after < before - 0.05, (before, after)
    manifest = json.loads((trained[0] / "manifest.json").read_text())
    assert rebuild_differences(manifest) == {}  # its command rebuilds its config
    assert manifest["max_tokens"] == 128 and manifest["budget"]["train_pairs"] == len(train)
    assert set(manifest["heldout"]) >= {"pair_accuracy_labels", "pearson_gold", "spearman_gold"}
    assert manifest["data_sha256"] == manifest["prefs"]["sha256"] and manifest["curve"]


def test_the_same_seed_gives_the_same_weights(trained):
    one, two = (d / "model.safetensors" for d in trained)
    assert one.read_bytes() == two.read_bytes()
    names = {p.name for p in trained[0].iterdir()}
    assert {"model.safetensors", "config.json", "manifest.json", "tokenizer.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)


def test_training_replies_are_normalized_to_mean_0_std_1(small_prefs, trained):
    train, _ = split_by_seed(small_prefs[1], 0.1)
    rm = RewardModel.load(trained[0])
    contexts = [p["context"] for p in train for _ in "ab"]
    scores = rm.score(contexts, [p[side]["text"] for p in train for side in "ab"])
    assert scores.mean() == pytest.approx(0.0, abs=1e-6)
    assert scores.std() == pytest.approx(1.0, abs=1e-6) and rm.max_tokens == 128


def test_a_save_load_round_trip_scores_bitwise_the_same(tmp_path):
    shipped = RewardModel.load()
    copy = tmp_path / "rm"
    shipped.model.save_pretrained(copy, safe_serialization=True)
    shipped.tokenizer.save_pretrained(copy)
    shutil.copy(SHIPPED_RM_DIR / "manifest.json", copy / "manifest.json")
    loaded = RewardModel.load(copy)
    assert loaded is not shipped
    contexts = [[Turn("user", "What food does The Amber Fig serve?")]] * 3
    replies = ["Happy to help! The Amber Fig serves thai food.", "No.", "xq"]
    assert np.array_equal(loaded.score(contexts, replies), shipped.score(contexts, replies))
    assert loaded.score_one(contexts[0], replies[0]) == shipped.score_one(contexts[0], replies[0])


@pytest.mark.parametrize(
    "name", ["pytorch_model.bin", "head.pt", "extra/state.pkl", "policy.zip", "scaler.joblib"]
)
def test_a_directory_with_a_pickle_is_refused(tmp_path, name):
    copy = tmp_path / "rm"
    shutil.copytree(SHIPPED_RM_DIR, copy)
    (copy / name).parent.mkdir(exist_ok=True)
    (copy / name).write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ModelLoadError, match="holds pickled files"):
        RewardModel.load(copy)


def test_a_directory_without_normalization_is_refused(tmp_path):
    copy = tmp_path / "rm"
    shutil.copytree(SHIPPED_RM_DIR, copy)
    (copy / "manifest.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="has no normalization"):
        RewardModel.load(copy)
    with pytest.raises(ModelLoadError, match="no reward model directory"):
        RewardModel.load(tmp_path / "nowhere")


def test_batched_scores_match_batch_one_closely():
    rm = RewardModel.load()
    contexts = [[{"role": "user", "text": "Any thai food in the north?"}]] * 2
    replies = ["Happy to help! I recommend The Amber Fig.", "no"]
    alone = [rm.score_one(c, r) for c, r in zip(contexts, replies, strict=True)]
    assert rm.score(contexts, replies) == pytest.approx(alone, abs=1e-5)


def test_score_one_remembers_a_loaded_models_scores_and_they_are_the_computed_ones():
    from dialog_env.tasks.chat.reward_model import remember_scores

    assert remember_scores(True) is False  # off unless asked for (dialog-bench run asks)
    rm = RewardModel.load()
    context = [{"role": "user", "text": "What is the phone number of The Amber Fig?"}]
    reply = "The phone number is 01223 480715, I believe."  # scored by no other test
    computed = float(rm.score([context], [reply], batch_size=1)[0])
    calls = []
    alone = rm._score_alone  # the one place a score is computed (either forward)
    rm._score_alone = lambda *a, **k: calls.append(1) or alone(*a, **k)
    try:
        assert rm.score_one(context, reply) == computed and len(calls) == 1
        assert rm.score_one(list(context), reply) == computed and len(calls) == 1  # remembered
        assert rm.score_one(context, reply + "!") != computed and len(calls) == 2
        remember_scores(False)
        assert rm.score_one(context, reply) == computed and len(calls) == 3  # off: scored
    finally:
        del rm._score_alone
        remember_scores(False)
    fresh = RewardModel(rm.model, rm.tokenizer, rm.mean, rm.std, rm.max_tokens)
    assert fresh._memo_scope is None  # built directly (a trainer's): never remembered
    assert fresh.score_one(context, reply) == computed


def _play(env, seed: int) -> list:
    obs, info = env.reset(seed=seed)
    steps = [obs]
    for reply in REPLIES:
        obs, reward, terminated, truncated, info = env.step(reply)
        steps.append((obs, reward, info.get("rm"), info.get("gold")))
        if terminated or truncated:
            break
    return steps


def test_the_rm_reward_is_the_score_over_the_requests():
    env = gym.make("Dialog-Chat-v1")
    assert env.spec.kwargs["reward"] == "rm"
    _, info = env.reset(seed=3)
    rm, task = RewardModel.load(), env.unwrapped.task
    _, reward, *_, info = env.step(REPLIES[0])
    assert info["reward_terms"] == {"rm": 0.0} and "rm" not in info and "gold" not in info
    context = info["turns"]
    _, reward, *_, info = env.step(REPLIES[1])
    assert info["rm"] == rm.score_one(context, REPLIES[1])
    assert reward == info["rm"] / len(task.goal) and info["reward_terms"] == {"rm": reward}
    assert set(info["gold"]) >= {"gold", "answered"}


def test_reward_gold_still_reports_the_rm_score():
    rm_env, gold_env = gym.make("Dialog-Chat-v1"), gym.make("Dialog-Chat-v1", reward="gold")
    for env in (rm_env, gold_env):
        env.reset(seed=3)
    rm_step, gold_step = rm_env.step(REPLIES[1]), gold_env.step(REPLIES[1])
    assert rm_step[4]["rm"] == gold_step[4]["rm"] and rm_step[4]["gold"] == gold_step[4]["gold"]
    assert gold_step[1] == gold_step[4]["gold"]["gold"] / len(gold_env.unwrapped.task.goal)


def test_same_seed_same_rewards_in_two_envs_and_two_processes():
    first, second = gym.make("Dialog-Chat-v1"), gym.make("Dialog-Chat-v1")
    runs = [_play(first, 5), _play(second, 5)]
    assert runs[0] == runs[1]
    here = str(Path(__file__).resolve().parent)  # this file, imported by the child
    script = (
        f"import sys; sys.path.insert(0, {here!r})\n"
        "import json, gymnasium as gym, dialog_env, test_reward_model as t\n"
        "steps = t._play(gym.make('Dialog-Chat-v1'), 5)\n"
        "print(json.dumps([s[1].hex() for s in steps[1:]]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.splitlines()[-1]) == [s[1].hex() for s in runs[0][1:]]


def test_an_env_with_the_reward_model_pickles():
    env = gym.make("Dialog-Chat-v1")
    env.reset(seed=1)
    clone = pickle.loads(pickle.dumps(env))
    assert clone.step(REPLIES[1])[1] == env.step(REPLIES[1])[1]


def test_the_rm_reward_does_not_depend_on_the_thread_count():
    """torch splits a matmul by its thread count, which moves a score's last bits; the
    env's reward is scored on one thread whatever the process's setting."""
    from agents import load_agent
    from leaderboard.episodes import get_episode_set
    from leaderboard.rollout import AgentMessages, play_episodes

    episodes = get_episode_set("Dialog-Chat-v1", "test", limit=3)
    rewards = []
    for threads in (1, 2):
        with torch_threads(threads):
            source = AgentMessages(lambda: load_agent("chat-expert"), 8)
            played = play_episodes(source, episodes, progress=False)
            rewards.append([e["rewards"] for e in played])
            assert torch.get_num_threads() == threads  # the caller's setting is left alone
    assert rewards[0] == rewards[1]
