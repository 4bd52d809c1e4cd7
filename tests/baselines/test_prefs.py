"""``dialog-bench prefs``: the file round trip, grounded contexts, Bradley-Terry labels,
train seeds only."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

from baselines.prefs import (
    bt_probability,
    generate_prefs,
    label_pair,
    load_prefs,
    noisy_label,
    write_prefs,
)
from dialog_bench.cli import main as cli_main
from dialog_env.tasks.booking.domain import load_database
from dialog_env.tasks.chat.answers import good_reply
from dialog_env.tasks.chat.judge import gold_terms
from dialog_env.tasks.chat.requests import ChatAct
from dialog_env.tasks.chat.tracker import ChatTracker
from leaderboard.episodes import EVAL_SEED_FLOOR


@pytest.fixture(scope="module")
def prefs():
    return generate_prefs(range(150), label_seed=3)


def test_the_cli_writes_a_file_that_loads_back(tmp_path, prefs):
    out = tmp_path / "prefs.jsonl"
    assert cli_main(["prefs", "--episodes", "150", "--label-seed", "3", "--out", str(out)]) == 0
    pairs, meta = load_prefs(out)
    assert pairs == json.loads(json.dumps(prefs[0]))  # the same pairs as the library call
    assert meta["format"] == "dialog-bench prefs v2" and meta["env_id"] == "Dialog-Chat-v1"
    assert meta["pairs"] == len(pairs) and meta["seeds"] == {"first": 0, "last": 149, "count": 150}
    assert meta["env_spec"]["kwargs"]["split"] == "train" and meta["tau"] == 0.1
    assert meta["env_spec"]["kwargs"]["reward"] == "gold"
    assert meta["command"].startswith("dialog-bench")


def test_a_record_holds_two_judged_replies_to_one_context(prefs):
    db, _ = load_database()
    for pair in prefs[0][:100]:
        assert pair["a"]["generator"] != pair["b"]["generator"]
        assert pair["context"][0]["role"] == "user"
        request = ChatAct(
            pair["request"]["intent"],
            tuple(pair["request"]["wishes"].items()),
            tuple(pair["request"]["names"]),
            tuple(pair["request"]["asks"]),
        )
        for side in "ab":
            assert pair[side]["gold"] == gold_terms(pair[side]["text"], request, db)["gold"]
        chosen, rejected = ("a", "b") if pair["label"] == "a" else ("b", "a")
        assert (pair["chosen"], pair["rejected"]) == (pair[chosen]["text"], pair[rejected]["text"])
        assert pair["p_a"] == bt_probability(pair["a"]["gold"], pair["b"]["gold"], 0.1)


def _shown_venues(context: list[dict]) -> dict:
    tracker = ChatTracker(load_database()[0])
    return tracker.sync(context).known


def test_a_context_holds_the_searches_and_the_good_reply_answers_from_them(prefs):
    db, _ = load_database()
    ended_with_results = 0
    for pair in prefs[0]:
        context, request = pair["context"], pair["request"]
        known = _shown_venues(context)
        # what the request names (or a venue that fits its wishes) the context has shown
        if request["intent"] == "recommend":
            assert any(v.matches(request["wishes"]) for v in known.values()), context
        else:
            assert {n.lower() for n in request["names"]} <= set(known), context
        if context[-1]["role"] == "tool":
            ended_with_results += 1
            call = context[-2]
            assert call["role"] == "assistant" and call["text"].startswith("[search] ")
            if request["intent"] != "recommend":
                assert call["text"].startswith('[search] name="')
        for side in "ab":
            if pair[side]["generator"] == "good":
                request_act = ChatAct(
                    request["intent"],
                    tuple(request["wishes"].items()),
                    tuple(request["names"]),
                    tuple(request["asks"]),
                )
                assert pair[side]["text"] == good_reply(request_act, known)
                assert gold_terms(pair[side]["text"], request_act, db)["gold"] >= 0.8
    assert ended_with_results > 0.8 * len(prefs[0])  # most requests need a fresh search


def test_labels_follow_the_bradley_terry_probability(prefs):
    pairs = prefs[0]
    assert len(pairs) > 300
    expected = sum(p["p_a"] for p in pairs)
    sigma = math.sqrt(sum(p["p_a"] * (1 - p["p_a"]) for p in pairs))
    observed = sum(p["label"] == "a" for p in pairs)
    assert abs(observed - expected) < 4 * sigma
    # and at one fixed probability, far more often than the pairs above give
    rng = np.random.default_rng(0)
    draws = [label_pair(0.6, 0.5, 0.1, rng) == "a" for _ in range(20_000)]
    assert np.mean(draws) == pytest.approx(1 / (1 + math.exp(-1)), abs=0.015)


def test_the_same_label_seed_gives_the_same_file_and_another_does_not(prefs):
    again, _ = generate_prefs(range(150), label_seed=3)
    other, _ = generate_prefs(range(150), label_seed=4)
    assert again == prefs[0] and other != prefs[0]


def test_only_train_seeds():
    with pytest.raises(ValueError, match="training seeds must lie in"):
        generate_prefs([EVAL_SEED_FLOOR])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tau": 0.0}, "tau must be positive"), ({"generators": ["good"]}, "at least two")],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_prefs(range(2), **kwargs)


def test_a_tampered_or_pickled_file_is_refused(tmp_path, prefs):
    path = tmp_path / "p.jsonl"
    write_prefs(path, prefs[0][:5], prefs[1], "test")
    assert len(load_prefs(path)[0]) == 5
    path.write_bytes(pickle.dumps(prefs[0][:5]))  # never unpickled: the sha256 check refuses
    with pytest.raises(ValueError, match="does not match the sha256"):
        load_prefs(path)


def test_the_annotator_slip_flips_labels_at_its_documented_rate():
    # tau tiny: the Bradley-Terry label is always the higher-gold side, so every label on
    # the lower side is a slip; 20,000 seeded draws put the share within 0.01 of the rate
    rng = np.random.default_rng(7)
    draws = [noisy_label(0.9, 0.1, 1e-3, 0.25, rng) for _ in range(20_000)]
    flipped = np.mean([f for _, f in draws])
    assert flipped == pytest.approx(0.25, abs=0.01)
    assert np.mean([label == "b" for label, _ in draws]) == flipped  # a flip is a "b" here
    # no slip: the labels are label_pair's, draw for draw (the default's bytes stay)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert [noisy_label(0.6, 0.5, 0.1, 0.0, a)[0] for _ in range(500)] == [
        label_pair(0.6, 0.5, 0.1, b) for _ in range(500)
    ]


def test_a_noisy_file_records_its_flips_and_labels_the_other_side(prefs):
    noisy, meta = generate_prefs(range(150), label_seed=3, flip_rate=0.25)
    assert meta["flip_rate"] == 0.25 and meta["flipped"] == pytest.approx(0.25, abs=0.06)
    assert meta["flipped"] == np.mean([p["flipped"] for p in noisy])
    assert "flipped" not in prefs[0][0] and prefs[1]["flip_rate"] == 0.0
    for pair in noisy:  # chosen is the label's side, whether or not it slipped
        assert pair["chosen"] == pair[pair["label"]]["text"]
    with pytest.raises(ValueError, match="flip_rate must lie in"):
        generate_prefs(range(2), flip_rate=1.5)
