"""The two SFT variants of docs/training.md, each through its command line in a tiny real run:

- ``--filter success``: trained on the successful demos only, the ``filtered-sft`` row;
- ``--spell-codes``: codes read and written one character per word, round trip exact,
  and the checkpoint keeps the choice.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents import load_agent
from baselines.demos import generate_demos, load_demos, write_demos
from baselines.sft import tokenize_demo
from dialog_bench.cli import main
from dialog_env.lm import TINY_MODEL_DIR
from dialog_env.lm.codec import CODE_RE, MessageCodec
from dialog_env.lm.loading import load_causal_lm

TINY_RUN = ["--steps", "2", "--batch-size", "2", "--eval-every", "2", "--eval-episodes", "1"]
# --heldout 0: every demo trains, so the budget counts exactly the demos the filter kept.
TINY_RUN += ["--heldout", "0", "--no-progress"]


def demo_file(tmp_path_factory, generator: str, seeds: range):
    records, meta = generate_demos(generator, seeds, progress=False, user_model="template")
    path = tmp_path_factory.mktemp("demos") / f"{generator}.jsonl"
    write_demos(path, records, meta, "test")
    return path


def train(tmp_path_factory, demos, *flags: str):
    out = tmp_path_factory.mktemp("ckpt") / "sft"
    logdir = tmp_path_factory.mktemp("runs")
    argv = ["train", "sft", "--demos", str(demos), *flags, *TINY_RUN]
    assert main([*argv, "--out", str(out), "--logdir", str(logdir)]) == 0
    return out, json.loads((out / "manifest.json").read_text())


def epoch_tokens(codec, records) -> int:
    context = 512  # the tiny LM's
    return sum(len(ids) for r in records for ids, _ in tokenize_demo(codec, r["turns"], context))


@pytest.fixture(scope="module")
def tokenizer():
    return load_causal_lm(TINY_MODEL_DIR).tokenizer


@pytest.fixture(scope="module")
def noisy_demos(tmp_path_factory):
    return demo_file(tmp_path_factory, "noisy-expert", range(30))


@pytest.fixture(scope="module")
def expert_demos(tmp_path_factory):
    return demo_file(tmp_path_factory, "expert", range(30))


def test_filter_success_trains_filtered_sft_on_the_successful_demos_only(
    noisy_demos, tmp_path_factory, tokenizer, one_torch_thread
):
    records = list(load_demos(noisy_demos)[0])
    kept = [r for r in records if r["success"]]
    assert 0 < len(kept) < len(records)  # some noisy demos fail: there is something to drop
    out, manifest = train(tmp_path_factory, noisy_demos, "--filter", "success")
    assert manifest["budget"]["demo_episodes"] == len(kept)
    assert manifest["tokens_per_epoch"] == epoch_tokens(MessageCodec(tokenizer), kept)
    assert manifest["config"]["filter"] == "success"
    assert json.loads((out / "config.json").read_text())["paradigm"] == "filtered-sft"
    agent = load_agent(out)
    assert (agent.paradigm, agent.interface) == ("filtered-sft", "text")


def test_spell_codes_run_trains_on_spelled_codes_and_keeps_them(
    expert_demos, tmp_path_factory, tokenizer, one_torch_thread
):
    records = list(load_demos(expert_demos)[0])
    spelled, plain = MessageCodec(tokenizer, spell_codes=True), MessageCodec(tokenizer)
    assert any(CODE_RE.search(t["text"]) for r in records for t in r["turns"])  # a booking
    out, manifest = train(tmp_path_factory, expert_demos, "--spell-codes")
    assert manifest["tokens_per_epoch"] == epoch_tokens(spelled, records)
    assert manifest["tokens_per_epoch"] > epoch_tokens(plain, records)
    assert manifest["config"]["spell_codes"] is True
    assert json.loads((out / "config.json").read_text())["spell_codes"] is True
    assert load_agent(out).codec.spell_codes


def test_every_demo_message_with_a_code_round_trips_through_the_spelled_codec(
    expert_demos, tokenizer
):
    """What the agent is taught to write decodes to what the expert wrote."""
    codec = MessageCodec(tokenizer, spell_codes=True)
    messages = [
        t["text"]
        for r in load_demos(expert_demos)[0]
        for t in r["turns"]
        if t["role"] == "assistant" and CODE_RE.search(t["text"])
    ]
    assert messages
    for text in messages:
        ids = codec.message_ids(text)
        code = CODE_RE.search(text)[0]
        assert codec.decode_message(ids) == text
        # the code is written one token per character (digits after a lone "▁")
        pieces = [p for p in (tokenizer.decode([i]).strip() for i in ids) if p]
        starts = range(len(pieces) - len(code) + 1)
        assert any(pieces[k : k + len(code)] == list(code) for k in starts), pieces


CODES = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=6, max_size=10).filter(
    lambda c: CODE_RE.fullmatch(c) is not None
)


@given(code=CODES, words=st.sampled_from(["Your reference is", "Booked, ref", "ok:"]))
def test_a_sentence_with_any_code_round_trips_through_the_spelled_codec(code, words):
    codec = MessageCodec(load_causal_lm(TINY_MODEL_DIR).tokenizer, spell_codes=True)  # cached
    text = f"{words} {code}. Anything else?"
    assert codec.decode_message(codec.message_ids(text)) == text
    assert len(codec.message_ids(code)) >= len(code)  # spelled: no piece spans two characters
