"""The tokenizer: sentencepiece BPE trained on the corpus, wrapped as a transformers tokenizer.

Choices, from a measurement on this corpus (issue 3): a small vocabulary (~1.3k pieces
besides the 256 byte pieces) that the corpus fills, pieces split at spaces, digits split
(times and phone numbers are spelled digit by digit), byte fallback so that any text
encodes without ``<unk>``, and the typed placeholders (``[area]``: the task's, given by
its template voice's ``placeholder_tokens``) and role/control tokens as single pieces.
The wrapper is transformers' ``LlamaTokenizer`` (a BPE with byte fallback over
sentencepiece's pieces and merges), so a saved directory loads with plain
``AutoTokenizer.from_pretrained`` and no remote code.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from dialog_env.lm.format import (
    BOS,
    CONTROL_TOKENS,
    EOS,
    PAD,
    SPECIAL_TOKENS,
    UNK,
)

__all__ = ["SPM_FILE", "build_tokenizer", "missing_special_tokens", "train_sentencepiece"]

SPM_FILE = "tokenizer.model"
_SPECIAL_SPLIT = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))


def _training_sentences(documents: Iterable[str]) -> Iterable[str]:
    # sentencepiece learns from plain text: the special tokens are given to it as symbols,
    # so the documents are cut at them and each piece of text is one sentence.
    for doc in documents:
        for piece in _SPECIAL_SPLIT.split(doc):
            piece = piece.strip()
            if piece:
                yield piece


def train_sentencepiece(
    documents: Iterable[str],
    vocab_size: int = 1536,
    seed: int = 0,
    *,
    placeholder_tokens: Sequence[str],
) -> bytes:
    """Train the sentencepiece BPE model on ``documents``; return its serialized bytes.

    ``placeholder_tokens`` are the task's typed placeholders, each kept one piece.

    ``vocab_size`` counts every piece: specials, placeholders and the 256 byte pieces too.
    Training is single-threaded and seeded, so equal documents give an equal model.
    """
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_training_sentences(documents)),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        character_coverage=1.0,
        byte_fallback=True,
        split_digits=True,
        split_by_whitespace=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=3,
        unk_piece=UNK,
        bos_piece=BOS,
        eos_piece=EOS,
        pad_piece=PAD,
        user_defined_symbols=[*CONTROL_TOKENS, *placeholder_tokens],
        max_sentence_length=16384,
        input_sentence_size=2_000_000,
        shuffle_input_sentence=False,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def build_tokenizer(spm_file: str | Path, *, placeholder_tokens: Sequence[str]):
    """A transformers tokenizer over a trained sentencepiece model file.

    It adds ``<s>`` in front of every encoded text and nothing behind, like Llama's;
    the role, control and (the task's) placeholder tokens are single tokens that text
    cannot split.
    """
    from transformers import LlamaTokenizer
    from transformers.tokenization_utils_sentencepiece import SentencePieceExtractor

    vocab, _, merges = SentencePieceExtractor(str(spm_file)).extract()
    tok = LlamaTokenizer(
        vocab=vocab,
        merges=merges,
        vocab_file=str(spm_file),
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        add_bos_token=True,
        add_eos_token=False,
        extra_special_tokens=list(CONTROL_TOKENS),
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tok.add_tokens(list(placeholder_tokens))
    return tok


def missing_special_tokens(tokenizer, placeholder_tokens: Sequence[str] = ()) -> list[str]:
    """The tokens of our format (and the given placeholders) that ``tokenizer`` does not
    hold as single tokens."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in (*CONTROL_TOKENS, *placeholder_tokens) if t not in vocab]
    for attr in ("bos_token", "eos_token", "pad_token"):
        if getattr(tokenizer, attr, None) is None:
            missing.append(attr)
    return missing
