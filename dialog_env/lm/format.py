"""How dialogues and voicing requests are written for the LM: its special tokens and layouts.

Two kinds of documents make up the pretraining corpus, and the voice prompts the LM with
the second::

    <s><|user|> I want thai food.<|end|><|assistant|> [search] food=thai<|end|>...</s>
    <s><|act|> inform(food=[food])<|say|> I want [food] food.<|end|></s>

Torch-free, so the corpus, the tokenizer trainer and the env share it cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence

from dialog_env.tasks.booking.voice import PLACEHOLDER_SLOTS
from dialog_env.text import Turn

__all__ = [
    "ACT",
    "BOS",
    "CONTROL_TOKENS",
    "END",
    "EOS",
    "PAD",
    "PLACEHOLDER_TOKENS",
    "ROLE_TOKENS",
    "SAY",
    "SPECIAL_TOKENS",
    "UNK",
    "dialogue_document",
    "voice_document",
    "voice_prompt",
]

UNK, BOS, EOS, PAD = "<unk>", "<s>", "</s>", "<pad>"
ROLE_TOKENS = {"user": "<|user|>", "assistant": "<|assistant|>", "tool": "<|tool|>"}
ACT, SAY, END = "<|act|>", "<|say|>", "<|end|>"
#: Tokens a model directory's tokenizer must know to be used in our format.
CONTROL_TOKENS = (*ROLE_TOKENS.values(), ACT, SAY, END)
#: Typed placeholders of the delexicalized voice, each one token.
PLACEHOLDER_TOKENS = tuple(f"[{slot}]" for slot in PLACEHOLDER_SLOTS)
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
