"""The paraphrase grammar and the corpus: every phrasing must read back as its act."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest

import dialog_env  # noqa: F401  (registers the ids)
from agents import load_agent
from baselines.pretrain import corpus_documents
from dialog_env.lm.format import END, SAY, corpus_sha256
from dialog_env.tasks.booking.acts import Act, canonical
from dialog_env.tasks.booking.corpus import CorpusConfig, sample_user_turn
from dialog_env.tasks.booking.domain import DAYS, MAX_PEOPLE, SLOT_VALUES, TIMES
from dialog_env.tasks.booking.paraphrase import GrammarVoice, phrasings, turn_phrasing
from dialog_env.tasks.booking.parser import parse_user
from dialog_env.tasks.booking.voice import TemplateVoice, delexicalize, fill, template_text

_VALUES = {
    **SLOT_VALUES,
    "people": tuple(str(n) for n in range(1, MAX_PEOPLE + 1)),
    "day": DAYS,
    "time": TIMES,
}
FIXED = ["reject", "affirm", "negate", "insist", "reqrec", "repeat", "thank_bye", "giveup_bye"]


def act_shapes() -> list[Act]:
    """Every user act shape: fixed intents, informs (named or dontcare), requests, books."""
    shapes = [Act(i) for i in FIXED]
    for n in range(1, 4):
        for slots in itertools.combinations(("area", "food", "price"), n):
            for dontcare in itertools.product((False, True), repeat=n):
                shapes.append(
                    Act.make(
                        "inform",
                        **{
                            s: "dontcare" if d else "*"
                            for s, d in zip(slots, dontcare, strict=True)
                        },
                    )
                )
        for facts in itertools.combinations(("phone", "address", "postcode"), n):
            shapes.append(Act.make("request", **dict.fromkeys(facts, "?")))
    shapes += [Act.make("book", people="*", day="*", time="*"), Act.make("book", time="*")]
    return shapes


def realize(shape: Act, rng: np.random.Generator) -> Act:
    """The act with a random value for every slot that holds one (not ``?``/``dontcare``)."""
    return Act(
        shape.intent,
        tuple(
            (s, v if v in ("?", "dontcare") else str(rng.choice(_VALUES[s])))
            for s, v in shape.slots
        ),
    )


@pytest.mark.parametrize("shape", act_shapes(), ids=str)
def test_every_phrasing_reads_back_with_any_values(shape):
    rng = np.random.default_rng(0)
    options = phrasings(shape)
    assert len(options) >= 4 or shape.intent == "book"
    for text in options:
        for _ in range(4):
            act = realize(shape, rng)
            _, values = delexicalize([act])
            assert parse_user(fill(text, values)) == canonical([act]), text


def test_sampled_turns_read_back():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        acts = [realize(a, rng) for a in sample_user_turn(rng)]
        _, values = delexicalize(acts)
        text = fill(turn_phrasing(acts, rng), values)
        assert parse_user(text) == canonical(acts), text


def test_template_voice_stays_one_sentence_per_act():
    acts = [Act.make("inform", area="north"), Act.make("request", phone="?")]
    said = {TemplateVoice().voice(acts, np.random.default_rng(s)) for s in range(20)}
    assert said == {(fill(template_text(acts), {"area": "north"}), False)}
    grammar = {GrammarVoice().voice(acts, np.random.default_rng(s))[0] for s in range(20)}
    assert len(grammar) > 5


def test_expert_succeeds_with_the_grammar_voice():
    env = gym.make("Dialog-v1", split="test", user_model="template")
    env.unwrapped.voice = GrammarVoice()
    expert, wins, texts = load_agent("expert"), 0, set()
    for seed in range(150):
        obs, info = env.reset(seed=seed)
        expert.reset(seed=seed)
        terminated = truncated = False
        while not (terminated or truncated):
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
        wins += info.get("success", False)
        texts |= {t["text"] for t in info["turns"] if t["role"] == "user"}
    assert wins >= 147  # the expert reads every phrasing: ~100% as with the template
    assert len(texts) > 300


def test_corpus_is_deterministic_and_voices_only_checked_sentences():
    config = CorpusConfig(seed=3, dialogues=30, sampled_turns=200)
    docs = list(corpus_documents(config))
    assert corpus_sha256(docs) == corpus_sha256(list(corpus_documents(config)))
    assert corpus_sha256(docs) != corpus_sha256(
        list(corpus_documents(CorpusConfig(seed=4, dialogues=30, sampled_turns=200)))
    )
    dialogues = [d for d in docs if d.startswith("<s><|user|>")]
    pairs = [d for d in docs if SAY in d]
    assert len(dialogues) == 30 and len(pairs) >= 200
    assert all(d.endswith("</s>") and "\n" not in d for d in docs)
    said = [p.split(SAY)[1].split(END)[0].strip() for p in pairs]
    assert all(s.isascii() and s.isprintable() for s in said)
    assert any("<|tool|> [result]" in d for d in dialogues)
