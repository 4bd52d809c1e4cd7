"""The LM's message codec: turns and messages to token ids and back, in its document format.

The token interface (:mod:`dialog_env.wrappers.tokens`), the LM agents and the trainers
all write and read assistant messages through :class:`MessageCodec`, so a message has the
same ids wherever it is encoded. Torch-free; transformers is imported only by
:func:`load_tokenizer`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dialog_env.lm.format import BOS, END, EOS, ROLE_TOKENS

__all__ = [
    "CODE_RE",
    "MAX_MESSAGE_TOKENS",
    "MessageCodec",
    "join_codes",
    "load_tokenizer",
    "spell_codes",
]

#: Tokens an assistant message may have: the expert's longest (facts and a booking) fits.
MAX_MESSAGE_TOKENS = 128
#: Messages whose ids a codec remembers (an LM agent re-encodes the whole transcript for
#: every message, a reward model the context for every candidate reply).
IDS_KEPT = 65_536


class MessageCodec:
    """Turns and messages to token ids and back, in the LM's document format.

    A conversation reads ``<s><|user|> text<|end|><|assistant|> text<|end|>...``; the
    assistant's next message is what follows ``<|assistant|>``, closed by ``<|end|>``.
    Role and control tokens are special, so each turn's ids are the same whether it is
    encoded alone or inside the whole conversation.
    """

    def __init__(self, tokenizer: Any, spell_codes: bool = False):
        self.tokenizer = tokenizer
        self.spell_codes = spell_codes
        ids = tokenizer.convert_tokens_to_ids
        self.bos_id = ids(BOS)
        self.end_ids = frozenset({ids(END), ids(EOS)})
        self.pad_id = tokenizer.pad_token_id
        self.role_ids = {role: ids(tok) for role, tok in ROLE_TOKENS.items()}
        self.end_id = ids(END)
        self._ids: dict[tuple[bool, str], tuple[int, ...]] = {}

    def turn_ids(self, role: str, text: str) -> list[int]:
        """``<|role|> text<|end|>`` as ids."""
        return [self.role_ids[role], *self.message_ids(text), self.end_id]

    def message_ids(self, text: str) -> list[int]:
        """The ids the model writes for a message (without the closing ``<|end|>``); the
        last :data:`IDS_KEPT` messages' are remembered (a tokenizer is a pure function)."""
        key = (self.spell_codes, text)
        ids = self._ids.get(key)
        if ids is None:
            spelled = spell_codes(text) if self.spell_codes else text
            ids = tuple(self.tokenizer.encode(" " + spelled, add_special_tokens=False))
            if len(self._ids) >= IDS_KEPT:
                self._ids.pop(next(iter(self._ids)))  # the oldest first
            self._ids[key] = ids
        return list(ids)

    def decode_message(self, ids: list[int]) -> str:
        text = self.tokenizer.decode(ids, skip_special_tokens=False).strip()
        return join_codes(text) if self.spell_codes else text


#: A code: six or more upper-case letters and digits, both kinds present (``P4AZLEB4``).
CODE_RE = re.compile(
    r"(?<![A-Za-z0-9])(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{6,}(?![A-Za-z0-9])"
)
_SPELLED_RE = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z0-9] ){5,}[A-Z0-9](?![A-Za-z0-9])")


def spell_codes(text: str) -> str:
    """Write each code one character per word: ``ref=P4AZLEB4`` -> ``ref= P 4 A Z L E B 4``.

    A subword tokenizer cuts a random code into rare pieces, and differently after ``=``
    than after a space (``=`` ``P4``... vs ``▁P`` ``4``...), so a small LM cannot learn to
    copy it from a tool result into a sentence. Spelled out, a code is the same
    sequence of single characters wherever it appears, as digits already are.
    """

    def spell(m: re.Match) -> str:
        glue = " " if m.start() and not text[m.start() - 1].isspace() else ""
        return glue + " ".join(m[0])

    return CODE_RE.sub(spell, text)


def join_codes(text: str) -> str:
    """Undo :func:`spell_codes` in what a model wrote: ``is P 4 A Z L E B 4.`` ->
    ``is P4AZLEB4.`` (runs of six or more single characters, both kinds present)."""

    def join(m: re.Match) -> str:
        code = m[0].replace(" ", "")
        return code if CODE_RE.fullmatch(code) else m[0]

    return _SPELLED_RE.sub(join, text)


def load_tokenizer(tokenizer: Any = None) -> Any:
    """A tokenizer object as given, or loaded from a directory (default: the tiny LM's)."""
    if tokenizer is None or isinstance(tokenizer, (str, Path)):
        from transformers import AutoTokenizer

        from dialog_env.lm import TINY_MODEL_DIR

        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer or TINY_MODEL_DIR))
    return tokenizer
