"""Best-of-n from one pool of samples per context (``baselines.bon_pool``) and the
``python -m baselines.bon_curve`` command that writes its curves."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from agents.best_of_n import BestOfNAgent
from agents.lm_agent import LMAgent
from baselines.bon_curve import main
from baselines.bon_pool import (
    Context,
    curve_points,
    expected_best_of_n,
    kl_bon,
    proxy_scores,
    sample_pools,
)
from dialog_env.lm import TINY_MODEL_DIR
from dialog_env.lm.loading import load_causal_lm
from dialog_env.tasks.chat.requests import ChatAct
from dialog_env.tasks.chat.reward_model import SHIPPED_RM_DIR, RewardModel
from dialog_env.text import parse_transcript

OBSERVATION = (
    "user: What is the phone number of The Amber Fig?\n"
    'tool: [result] search name="The Amber Fig": 1 found, showing 1 | name="The Amber Fig" '
    'area=north food=thai price=cheap phone="01223 356164" address="30 Victoria Lane" '
    'postcode="cb2 3te"'
)
ASK = ChatAct("describe", names=("The Amber Fig",), asks=("phone",))
POINT_KEYS = {
    "n",
    "kl",
    "sqrt_kl",
    "dev_gold",
    "dev_gold_se",
    "dev_return",
    "dev_return_se",
    "context_gold",
}


def _brute_force(proxy: np.ndarray, values: np.ndarray, n: int) -> float:
    """The mean value of the proxy's pick over every n-subset of one pool; of equal
    proxies the earlier candidate is picked (np.argmax keeps the first)."""
    picks = [
        values[list(s)][int(np.argmax(proxy[list(s)]))]
        for s in itertools.combinations(range(len(proxy)), n)
    ]
    return float(np.mean(picks))


def test_the_estimator_is_the_mean_over_every_n_subset_of_the_pool():
    rng = np.random.default_rng(0)
    for _ in range(20):
        # scores on a coarse grid: most pools hold ties, the case the rank rule settles
        proxy = rng.integers(0, 3, size=(4, 6)).astype(float)
        gold = rng.random((4, 6))
        for n in range(1, 7):
            want = [_brute_force(p, g, n) for p, g in zip(proxy, gold, strict=True)]
            assert expected_best_of_n(proxy, gold, n) == pytest.approx(want, abs=1e-12)


def test_n_1_is_the_pool_mean_and_n_N_the_proxys_best():
    rng = np.random.default_rng(1)
    proxy, gold = rng.normal(size=(5, 8)), rng.random((5, 8))
    assert expected_best_of_n(proxy, gold, 1) == pytest.approx(gold.mean(axis=1))
    best = gold[np.arange(5), proxy.argmax(axis=1)]
    assert expected_best_of_n(proxy, gold, 8) == pytest.approx(best)
    # the proxy's own expected best never falls as n grows
    ups = [expected_best_of_n(proxy, proxy, n) for n in range(1, 9)]
    assert all((b >= a - 1e-12).all() for a, b in itertools.pairwise(ups))


@pytest.mark.parametrize("n", [0, 7, True, 2.0])
def test_an_n_outside_the_pool_is_refused(n):
    with pytest.raises(ValueError, match=r"n must be an int in 1\.\.6 \(the pool\)"):
        expected_best_of_n(np.zeros((1, 6)), np.zeros((1, 6)), n)


def test_a_curves_points_carry_the_keys_the_overopt_reader_reads():
    rng = np.random.default_rng(2)
    proxy, gold = rng.normal(size=(3, 4)), rng.random((3, 4))
    points = curve_points(proxy, gold, [1, 2, 4])
    assert [p["n"] for p in points] == [1, 2, 4] and all(set(p) == POINT_KEYS for p in points)
    for p in points:
        assert p["kl"] == kl_bon(p["n"]) and p["sqrt_kl"] == math.sqrt(p["kl"])
    each = expected_best_of_n(proxy, gold, 2)
    assert points[1]["dev_gold"] == pytest.approx(each.mean())
    assert points[1]["dev_gold_se"] == pytest.approx(each.std(ddof=1) / math.sqrt(3))
    # per context, for a paired test of two n: each context's own expected gold, in order
    assert points[1]["context_gold"] == pytest.approx(each, abs=5e-7)
    for p in points:
        assert len(p["context_gold"]) == 3
        assert np.mean(p["context_gold"]) == pytest.approx(p["dev_gold"], abs=1e-6)


@pytest.fixture(scope="module")
def base():
    lm = load_causal_lm(TINY_MODEL_DIR)
    return LMAgent(lm.model, lm.tokenizer, name="tiny")


def _contexts(*observations: str) -> list[Context]:
    return [
        Context(0, o, tuple(t.as_dict() for t in parse_transcript(o)), ASK, "")
        for o in observations
    ]


def test_the_pool_is_best_of_ns_draws_each_as_from_a_prefill_of_its_own(base):
    """The pool's draws (one prefill per context, several contexts per decode) are the
    draws each would be alone, from a prefill of its own, in any chunking; draw j is
    best-of-n's candidate j + 2."""
    contexts = _contexts(OBSERVATION, OBSERVATION + "\nuser: thanks! and the address?")
    pools = sample_pools(base, contexts, 5, temperature=1.5)
    assert sample_pools(base, contexts, 5, temperature=1.5, rows_per_decode=5) == pools
    assert len({tuple(p) for p in pools}) == 2 and len(set(pools[0])) > 2  # real draws
    sampler = BestOfNAgent(base, None, n=1, temperature=1.5)
    alone = BestOfNAgent(base, None, n=1, temperature=1.5)
    for j, draw in enumerate(pools[0]):
        alone._draw_seed = lambda o, _, j=j: sampler._draw_seed(o, j)
        assert alone.sample_replies([OBSERVATION], 1) == [[draw]]
    agent = BestOfNAgent(base, RewardModel.load(), n=4, temperature=1.5)
    assert agent.candidates(OBSERVATION)[1:] == pools[0][:3]


def test_batched_proxy_scores_are_the_envs_batch_1_scores(base):
    contexts = _contexts(OBSERVATION, OBSERVATION + "\nuser: thanks! and the address?")
    pools = sample_pools(base, contexts, 6, temperature=1.5)
    pools[0][1] = pools[0][0]  # a repeat is scored once, the same number
    rm = RewardModel.load()
    scores = proxy_scores(rm, contexts, pools, batch_size=4)
    assert scores.shape == (2, 6) and scores[0, 1] == scores[0, 0]
    for c, pool in enumerate(pools):
        alone = [rm.score_one(contexts[c].turns, text) for text in pool]
        assert scores[c] == pytest.approx(alone, abs=1e-5)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--proxy", "runs/rm"], "--proxy 'runs/rm': write NAME=DIR"),
        (["--proxy", "small=/no/such/rm"], "no reward model directory at /no/such/rm"),
        (["--proxy", "shipped", "--proxy", "shipped=shipped"], "shipped given twice"),
        (["--proxy", "shipped", "--ensemble", "e=shipped,x:mean"], "x is no --proxy name"),
        (["--proxy", "shipped", "--ensemble", "e=shipped:mean"], "two or more distinct"),
        (["--proxy", "shipped", "--ensemble", "e=shipped,shipped:best"], "write NAME=A,B"),
        (["--estimator", "play", "--proxy", "shipped"], "--estimator play takes --rm"),
    ],
)
def test_a_bad_proxy_spec_is_one_line_and_status_2(tmp_path, capsys, flags, message):
    out = tmp_path / "curve.json"
    argv = ["--init", str(tmp_path), *flags, "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m baselines.bon_curve: error: ")
    assert message in err and not out.exists()


@pytest.mark.slow
def test_the_command_writes_every_proxys_curve_from_one_pool(tmp_path, capsys):
    """sft-chat on 2 dev episodes, the shipped RM under two names and their ensemble:
    one pool, three curves, and the same RM gives the same curve under any name."""
    from conftest import REPO_ROOT

    out = tmp_path / "curve.json"
    init = str(REPO_ROOT / "baselines" / "checkpoints" / "sft-chat")
    argv = ["--init", init, "--limit", "2", "--n", "1", "2", "4", "--out", str(out)]
    flags = ["--proxy", "shipped", "--proxy", f"copy={SHIPPED_RM_DIR}"]
    assert main([*argv, *flags, "--ensemble", "both=shipped,copy:worst"]) == 0
    curve = json.loads(out.read_text())
    assert {
        "kind",
        "estimator",
        "env_id",
        "episode_set",
        "episode_set_sha256",
        "init",
        "temperature",
        "pool",
        "contexts",
        "tool_call_candidates",
        "command",
        "seconds",
        "curves",
    } <= set(curve)
    assert (curve["kind"], curve["estimator"], curve["pool"]) == ("best-of-n curve", "pool", 4)
    assert curve["episode_set"] == "Dialog-Chat-v1/dev[:2]" and curve["contexts"] >= 4
    assert 0.0 <= curve["tool_call_candidates"] <= 1.0
    assert list(curve["curves"]) == ["shipped", "copy", "both"]
    assert curve["curves"]["shipped"]["proxy"] == {"rm": ["shipped"], "combine": None}
    assert curve["curves"]["both"]["proxy"]["combine"] == "worst"
    points = {name: c["points"] for name, c in curve["curves"].items()}
    assert points["shipped"] == points["copy"] == points["both"]
    assert all(set(p) == POINT_KEYS for p in points["shipped"])
    returns = [p["dev_return"] for p in points["shipped"]]
    assert returns == sorted(returns) and returns[-1] > returns[0]
    assert "shipped n=4: gold" in capsys.readouterr().out


@pytest.mark.slow
def test_the_contexts_are_the_replies_the_env_scored():
    """Each context's request and transcript are those the env scored the base's reply
    by: per episode, the gold and RM scores of the contexts' replies make the record's."""
    from conftest import REPO_ROOT

    from baselines.bon_pool import collect_contexts
    from dialog_env.tasks.booking.domain import load_database
    from dialog_env.tasks.chat.judge import gold_terms
    from leaderboard.episodes import get_episode_set
    from leaderboard.rollout import AgentMessages, play_episodes

    base = LMAgent.load(REPO_ROOT / "baselines" / "checkpoints" / "sft-chat")
    episodes = get_episode_set("Dialog-Chat-v1", "dev", 3)
    contexts = collect_contexts(base, episodes, batch_size=2)
    records = play_episodes(AgentMessages(lambda: base, 2), episodes, progress=False)
    db, rm = load_database()[0], RewardModel.load()
    assert {c.seed for c in contexts} == {r["seed"] for r in records}
    for record in records:
        mine = [c for c in contexts if c.seed == record["seed"]]
        metrics = record["metrics"]
        assert len(mine) == metrics["answered"]
        gold = sum(gold_terms(c.reply, c.request, db)["gold"] for c in mine)
        assert gold / metrics["requests"] == metrics["mean_gold"]
        proxy = sum(rm.score_one(c.turns, c.reply) for c in mine)
        assert proxy / metrics["requests"] == pytest.approx(metrics["mean_rm"], abs=1e-12)
        for c in mine:  # what the base read is the transcript before its reply
            assert [t.as_dict() for t in parse_transcript(c.observation)] == list(c.turns)
