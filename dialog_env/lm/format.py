"""How dialogues and voicing requests are written for the LM: its special tokens and layouts.

Two kinds of documents make up the pretraining corpus, and the voice prompts the LM with
the second::

    <s><|user|> I want thai food.<|end|><|assistant|> [search] food=thai<|end|>...</s>
    <s><|act|> inform(food=[food])<|say|> I want [food] food.<|end|></s>

The placeholders (``[food]``) are the task's (its template voice's ``placeholder_tokens``);
this module knows no task. Torch-free, so the corpus, the tokenizer trainer and the env
share it cheaply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from dialog_env.text import Turn

__all__ = [
    "ACT",
    "BOS",
    "CONTROL_TOKENS",
    "END",
    "EOS",
    "PAD",
    "ROLE_TOKENS",
    "SAY",
    "SPECIAL_TOKENS",
    "UNK",
    "corpus_sha256",
    "dialogue_document",
    "voice_document",
    "voice_prompt",
]

UNK, BOS, EOS, PAD = "<unk>", "<s>", "</s>", "<pad>"
ROLE_TOKENS = {"user": "<|user|>", "assistant": "<|assistant|>", "tool": "<|tool|>"}
ACT, SAY, END = "<|act|>", "<|say|>", "<|end|>"
#: Tokens a model directory's tokenizer must know to be used in our format.
CONTROL_TOKENS = (*ROLE_TOKENS.values(), ACT, SAY, END)
SPECIAL_TOKENS = (UNK, BOS, EOS, PAD, *CONTROL_TOKENS)


def dialogue_document(turns: Sequence[Turn]) -> str:
    """A whole conversation as one document.

    >>> dialogue_document([Turn("user", "hi"), Turn("assistant", "hello")])
    '<s><|user|> hi<|end|><|assistant|> hello<|end|></s>'
    """
    body = "".join(f"{ROLE_TOKENS[t.role]} {t.text}{END}" for t in turns)
    return f"{BOS}{body}{EOS}"


def voice_prompt(delexicalized_acts: str) -> str:
    """What the LM is given to voice a turn; it continues with the sentence and ``<|end|>``.

    >>> voice_prompt("inform(area=[area])")
    '<s><|act|> inform(area=[area])<|say|>'
    """
    return f"{BOS}{ACT} {delexicalized_acts}{SAY}"


def voice_document(delexicalized_acts: str, sentence: str) -> str:
    """One act -> sentence training pair.

    >>> voice_document("affirm()", "Sounds great.")
    '<s><|act|> affirm()<|say|> Sounds great.<|end|></s>'
    """
    return f"{voice_prompt(delexicalized_acts)} {sentence}{END}{EOS}"


def corpus_sha256(documents: Sequence[str]) -> str:
    r"""The hash a manifest records: sha256 of the documents joined by newlines.

    >>> corpus_sha256(["a", "b"]) == corpus_sha256(["a\nb"])
    True
    """
    h = hashlib.sha256()
    for doc in documents:
        h.update(doc.encode("utf-8") + b"\n")
    return h.hexdigest()
