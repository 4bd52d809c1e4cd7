"""The tokenizer: trained with sentencepiece, used through transformers, robust to any text."""

from __future__ import annotations

import pytest

from baselines.pretrain import corpus_documents
from dialog_env.lm import TINY_MODEL_DIR
from dialog_env.lm.format import CONTROL_TOKENS
from dialog_env.lm.tokenizer import build_tokenizer, missing_special_tokens, train_sentencepiece
from dialog_env.tasks.booking.corpus import CorpusConfig
from dialog_env.tasks.booking.domain import SLOT_VALUES
from dialog_env.tasks.booking.voice import PLACEHOLDER_TOKENS

transformers = pytest.importorskip("transformers")

EDGE_TEXTS = [
    "",
    " ",
    "   \n\t  ",
    "x" * 100_000,
    "Caf\u00e9 cr\u00e8me, na\u00efve \u65e5\u672c\u8a9e \U0001f600 \u0645\u0631\u062d\u0628\u0627",
    "\x00\x01 control \x7f",
    "<|user|> a role token typed by hand <|end|>",
]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A tokenizer trained here on a small corpus, and its directory."""
    docs = list(corpus_documents(CorpusConfig(dialogues=40, sampled_turns=400)))
    d = tmp_path_factory.mktemp("tok")
    (d / "tokenizer.model").write_bytes(
        train_sentencepiece(docs, vocab_size=700, placeholder_tokens=PLACEHOLDER_TOKENS)
    )
    tok = build_tokenizer(d / "tokenizer.model", placeholder_tokens=PLACEHOLDER_TOKENS)
    tok.save_pretrained(d / "saved")
    return tok, d / "saved"


def test_training_is_deterministic():
    def train(docs):
        return train_sentencepiece(docs, vocab_size=600, placeholder_tokens=PLACEHOLDER_TOKENS)

    docs = list(corpus_documents(CorpusConfig(dialogues=10, sampled_turns=100)))
    assert train(docs) == train(docs)


def test_auto_tokenizer_round_trip(fresh):
    tok, saved = fresh
    loaded = transformers.AutoTokenizer.from_pretrained(saved)
    text = "<s><|act|> inform(area=[area])<|say|> I want a place in the [area] at 19:30.<|end|>"
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert loaded.get_vocab() == tok.get_vocab()
    assert missing_special_tokens(loaded, PLACEHOLDER_TOKENS) == []


@pytest.mark.parametrize("text", EDGE_TEXTS, ids=range(len(EDGE_TEXTS)))
def test_any_text_encodes_and_decodes(fresh, text):
    tok, _ = fresh
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and all(0 <= i < len(tok) for i in ids)
    out = tok.decode(ids, skip_special_tokens=True)
    if text.strip() and not text.startswith(" ") and "<|" not in text:
        assert out == text  # byte fallback: nothing is lost, not even emoji or NUL
    assert tok.unk_token_id not in ids


def test_special_tokens_are_single_and_unsplittable(fresh):
    tok, _ = fresh
    for token in (*CONTROL_TOKENS, *PLACEHOLDER_TOKENS):
        ids = tok(f"x {token} y", add_special_tokens=False)["input_ids"]
        assert tok.convert_tokens_to_ids(token) in ids


def test_digits_are_split(fresh):
    tok, _ = fresh
    pieces = tok.tokenize("19:30 01223 594025")
    assert all(len(p.strip("\u2581")) <= 1 for p in pieces)


@pytest.mark.skipif(not (TINY_MODEL_DIR / "tokenizer.json").exists(), reason="no shipped model")
def test_shipped_tokenizer_keeps_slot_values_whole():
    tok = transformers.AutoTokenizer.from_pretrained(TINY_MODEL_DIR)
    assert missing_special_tokens(tok, PLACEHOLDER_TOKENS) == []
    for values in SLOT_VALUES.values():
        for value in values:
            assert len(tok.tokenize(f"the {value} one")) == 3, value
