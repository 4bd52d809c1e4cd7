"""The reply generators of ``dialog-bench prefs`` (``dialog_env.tasks.chat.answers``): the
``sampled`` negative is what the seed's loop sends, so the reward model trains on it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import dialog_env  # noqa: F401  (registers the ids)
from dialog_env.tasks.booking.domain import load_database
from dialog_env.tasks.chat.answers import REPLY_GENERATORS, SAMPLED_MAX_CHARS, make_reply
from dialog_env.tasks.chat.judge import gold_terms
from dialog_env.tasks.chat.requests import ChatAct
from dialog_env.text import normalize_message

DB, _ = load_database()
ASK = ChatAct("describe", names=("The Amber Fig",), asks=("phone",))


def test_sampled_writes_what_the_seeds_loop_sends():
    env = gym.make("ChatGPT-v1")
    assert env.action_space.max_length == SAMPLED_MAX_CHARS  # the law is the env's
    lengths = []
    for seed in range(20):
        env.action_space.seed(seed)  # the space's generator is default_rng(seed)'s twin
        sent = normalize_message(env.action_space.sample(), SAMPLED_MAX_CHARS)[0]
        written = make_reply("sampled", ASK, DB, np.random.default_rng(seed))
        assert written == sent, seed
        assert gold_terms(written, ASK, DB)["gold"] == 0.0  # it answers nothing
        lengths.append(len(written))
    assert max(lengths) > 200 and any(c.isupper() for c in written)  # not random's letters


def test_every_generator_is_a_choice_of_the_prefs_command():
    from baselines.prefs import generate_prefs

    pairs, meta = generate_prefs(range(6))  # the default: every generator
    assert meta["generators"] == list(REPLY_GENERATORS) and "sampled" in REPLY_GENERATORS
    sampled = [p[s] for p in pairs for s in "ab" if p[s]["generator"] == "sampled"]
    assert sampled and all(side["gold"] == 0.0 for side in sampled)
