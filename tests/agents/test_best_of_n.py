"""Best-of-n against the chat reward model (``agents.best_of_n``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.best_of_n import BestOfNAgent
from agents.checkpoint import load_checkpoint
from agents.lm_agent import LMAgent, encode_context
from baselines.sft import save_lm_checkpoint
from dialog_env.lm import TINY_MODEL_DIR
from dialog_env.lm.loading import load_causal_lm
from dialog_env.tasks.chat.reward_model import RewardModel
from dialog_env.text import parse_transcript

OBSERVATION = (
    "user: What is the phone number of The Amber Fig?\n"
    'tool: [result] search name="The Amber Fig": 1 found, showing 1 | name="The Amber Fig" '
    'area=north food=thai price=cheap phone="01223 356164" address="30 Victoria Lane" '
    'postcode="cb2 3te"'
)


@pytest.fixture(scope="module")
def base():
    lm = load_causal_lm(TINY_MODEL_DIR)
    return LMAgent(lm.model, lm.tokenizer, name="tiny")


@pytest.fixture(scope="module")
def reward_model():
    return RewardModel.load()


class _Fixed(BestOfNAgent):
    """Candidates given by the test (the ranking is what is under test)."""

    def __init__(self, reward_model, texts):
        super().__init__(None, reward_model, n=len(texts))
        self.texts = texts

    def candidates(self, observation):
        return list(self.texts)


def test_it_sends_the_reply_the_reward_model_scores_highest(reward_model):
    """Ranked by the env's own reward score (``score_one``): the reply sent is the one
    whose reward is the highest of the candidates'."""
    replies = [
        "Happy to help! The phone number of The Amber Fig is 01223 356164.",
        "ok",
        "Sure, that is a lovely place.",
    ]
    context = [{"role": t.role, "text": t.text} for t in parse_transcript(OBSERVATION)]
    scores = [reward_model.score_one(context, r) for r in replies]
    best = replies[int(np.argmax(scores))]
    assert _Fixed(reward_model, replies).act(OBSERVATION) == best
    # A tool call is not a reply: when the first (greedy) candidate is one, it is sent.
    call = '[search] name="The Amber Fig"'
    assert _Fixed(reward_model, [call, *replies]).act(OBSERVATION) == call
    assert _Fixed(reward_model, [replies[1], call, *replies]).act(OBSERVATION) == best


def test_one_distinct_reply_is_sent_unscored(reward_model, monkeypatch):
    """A near-deterministic base draws the same reply n times: there is nothing to rank,
    and the scores could not change the choice."""
    reply = "Happy to help! The phone number of The Amber Fig is 01223 356164."
    call = '[search] name="The Amber Fig"'
    agent = _Fixed(reward_model, [reply, reply, call, reply])
    for method in ("score", "score_one"):
        monkeypatch.setattr(reward_model, method, lambda *a, **k: pytest.fail("scored"))
    assert agent.act(OBSERVATION) == reply


def test_the_candidates_are_the_greedy_message_then_seeded_draws(base, reward_model):
    agent = BestOfNAgent(base, reward_model, n=6, temperature=1.5)
    candidates = agent.candidates(OBSERVATION)
    assert len(candidates) == 6 and candidates[0] == base.act_batch([OBSERVATION])[0]
    # The draws are a function of the conversation (and the sample seed) alone.
    agent.reset(seed=4)
    assert agent.candidates(OBSERVATION) == candidates
    other = BestOfNAgent(base, reward_model, n=6, temperature=1.5, sample_seed=1)
    assert other.candidates(OBSERVATION)[1:] != candidates[1:]


def test_a_batch_gives_what_one_at_a_time_gives(base, reward_model):
    agent = BestOfNAgent(base, reward_model, n=4, temperature=1.5)
    calls = [f"user: Tell me about The Amber Fig, please. ({i})" for i in range(3)]
    observations = [OBSERVATION, *calls, OBSERVATION + "\nuser: thanks!"]
    alone = [agent.act(o) for o in observations]
    assert agent.act_batch(observations) == alone
    assert agent.act_batch(observations, keys=list(range(len(observations)))) == alone


def test_keyed_draws_read_each_prompt_once_and_keep_no_forks(base, reward_model):
    class Replying(BestOfNAgent):  # the greedy decode runs, its message counts as a reply
        def _greedy(self, observations, keys=None):
            super()._greedy(observations, keys)
            return ["Happy to help."] * len(observations)

    agent = Replying(base, reward_model, n=4, temperature=1.5)
    observations = [OBSERVATION, OBSERVATION + "\nuser: thanks!"]
    prompts = [
        encode_context(base.codec, o, base.context, base.max_new_tokens) for o in observations
    ]
    base.sessions.clear()
    reused = base.sessions.stats["reused"]
    agent.act_batch(observations, keys=["a", "b"])
    # the greedy decode reuses nothing (new conversations); each of the 3 draws all of its
    # prompt but the last token, fed for its logits
    assert base.sessions.stats["reused"] - reused == sum(3 * (len(p) - 1) for p in prompts)
    assert sorted(base.sessions._kept) == ["a", "b"]  # the draws' forks are gone
    agent.end_episode("a"), agent.end_episode("b")
    assert len(base.sessions) == 0


def _prompt_columns(model, run) -> tuple[object, int]:
    """``run()``'s result and the prompt columns its forward calls read (calls that feed
    more than one token per row: prefills, not decode steps)."""
    read = []

    def count(module, args, kwargs):
        ids = kwargs.get("input", args[0] if args else None)
        if ids is not None and ids.shape[1] > 1:
            read.append(ids.shape[0] * ids.shape[1])

    # the token embedding: what every forward reads, a prefill of keys and values too
    hook = model.get_input_embeddings().register_forward_pre_hook(count, with_kwargs=True)
    try:
        return run(), sum(read)
    finally:
        hook.remove()


def test_one_prefill_gives_the_candidates_of_n_separate_prefills(base):
    """Best-of-n's draws read the context once and copy its keys and values n ways; given
    the same uniforms, they are the very candidates of n separate prefills."""
    import torch

    from dialog_env.lm.generation import batched_decode, inverse_cdf
    from dialog_env.lm.sessions import decode_from_one_prefill

    n, stops = 16, sorted(base.codec.end_ids)
    prompts = [
        encode_context(base.codec, o, base.context, base.max_new_tokens)
        for o in (OBSERVATION, OBSERVATION + "\nuser: thanks! and the address?")
    ]
    uniforms = torch.rand(
        (2 * n, base.max_new_tokens),
        generator=torch.Generator().manual_seed(5),
        dtype=torch.float64,
    )
    shared, read_once = _prompt_columns(
        base.model,
        lambda: decode_from_one_prefill(
            base.model, prompts, n, base.max_new_tokens, stops, inverse_cdf(uniforms, 1.5)
        ),
    )
    rows = [p for p in prompts for _ in range(n)]
    separate, read_n = _prompt_columns(
        base.model,
        lambda: batched_decode(
            base.model,
            rows,
            base.max_new_tokens,
            stops,
            base.codec.pad_id,
            inverse_cdf(uniforms, 1.5),
            retire=True,
        ),
    )
    assert shared.tokens == separate.tokens
    assert len({tuple(t) for t in shared.tokens[:n]}) > n // 2  # real, distinct samples
    longest = max(len(p) for p in prompts)
    assert read_once == 2 * (longest - 1)  # each prompt once (padded to the longer)
    assert read_n == 2 * n * longest


def test_the_agents_draws_are_those_of_separate_prefills(base, reward_model):
    agent = BestOfNAgent(base, reward_model, n=8, temperature=1.5)
    (draws,), read = _prompt_columns(base.model, lambda: agent._draws([OBSERVATION]))
    prompt = encode_context(base.codec, OBSERVATION, base.context, base.max_new_tokens)
    assert read == len(prompt) - 1  # 7 draws, one read of the context
    # each draw again, alone (its own prefill), from the same uniforms
    alone = BestOfNAgent(base, reward_model, n=2, temperature=1.5)
    for j, draw in enumerate(draws):
        alone._draw_seed = lambda o, _, j=j: agent._draw_seed(o, j)
        assert alone._draws([OBSERVATION]) == [[draw]]


def test_n_1_is_the_base_agent(base, reward_model):
    agent = BestOfNAgent(base, reward_model, n=1)
    agent.reset(seed=0)
    assert agent.act(OBSERVATION) == base.act_batch([OBSERVATION])[0]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"n": 0}, r"n must be an integer in 1-64, got 0"),
        ({"n": 65}, r"n must be an integer in 1-64, got 65"),
        ({"n": True}, r"n must be an integer in 1-64, got True"),
        ({"temperature": 0.0}, r"temperature must be > 0, got 0\.0"),
    ],
)
def test_bad_settings_are_refused(base, reward_model, bad, message):
    with pytest.raises(ValueError, match=message):
        BestOfNAgent(base, reward_model, **bad)


def _checkpoints(tmp_path, config):
    """A best-of-n checkpoint ``bon`` with its base LM checkpoint inside it (``base-lm``),
    and another LM checkpoint beside it (``sibling``), which it may not name."""
    lm = load_causal_lm(TINY_MODEL_DIR)
    (tmp_path / "bon").mkdir()
    for where in (tmp_path / "bon" / "base-lm", tmp_path / "sibling"):
        save_lm_checkpoint(where, lm.model, lm.tokenizer, {"paradigm": "sft"})
    (tmp_path / "bon" / "config.json").write_text(json.dumps(config))
    return tmp_path / "bon"


def test_a_checkpoint_names_its_base_and_its_hash_covers_base_and_reward_model(tmp_path):
    path = _checkpoints(tmp_path, {"agent": "best-of-n", "base": "base-lm", "n": 3})
    agent = load_checkpoint(path)
    assert (agent.n, agent.paradigm, agent.tasks) == (3, "best-of-n", ("chat",))
    before = agent.model_sha256
    (path / "base-lm" / "lm" / "extra.txt").write_text("another base")
    assert load_checkpoint(path).model_sha256 != before


@pytest.mark.parametrize(
    "config, message",
    [
        ({"agent": "best-of-n", "base": "../outside"}, "base must be the name of a shipped"),
        ({"agent": "best-of-n", "base": "base-lm", "n": 1000}, "n must be an integer in 1-64"),
        ({"agent": "best-of-n", "base": "absent"}, "base 'absent' names neither a shipped"),
        ({"agent": "best-of-n", "base": "sibling"}, "base 'sibling' names neither a shipped"),
        ({"agent": "best-of-n", "base": "base-lm", "paradigm": "sft"}, "paradigm must be"),
    ],
)
def test_a_bad_config_is_a_clear_error(tmp_path, config, message):
    with pytest.raises(ValueError, match=message):
        load_checkpoint(_checkpoints(tmp_path, config))
