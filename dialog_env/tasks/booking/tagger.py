"""A learned slot tagger: the booking task's user turns read by a token classifier.

The tagger is the shipped tiny LM with a token-classification head
(``AutoModelForTokenClassification``; ``id2label`` in its config is :data:`TAGS`),
trained by ``dialog-bench train tagger`` on voiced user turns, whose BIO tags come from
the voice's placeholders (:mod:`dialog_env.tasks.booking.tagging`). It reads a sentence
as ``<s>`` and the sentence's tokens, and tags each word (:func:`words`) at the word's
last token: the LM is causal, so that token is the first that has seen the whole word.

As the NLU of the tracker (``BookingTask(nlu="tagger")``), :meth:`SlotTagger.read`
reads a user turn into acts: the slot values of its tagged spans, each checked against
the domain (:func:`~dialog_env.tasks.booking.tagging.slot_value`), and the intents,
``dontcare`` and requests of the rule-based cues
(:func:`~dialog_env.tasks.booking.parser.user_acts`): the tagger replaces the lexicon's
value lookup, nothing else. A turn is tagged alone (batch one, one CPU thread), so its
reading is the same in any process and batch; the readings of the last
:data:`MEMO_SIZE` sentences are kept.

A directory is loaded from safetensors and JSON only: pickled files, remote code, weights
that do not fit their config, or a config whose labels are not :data:`TAGS` are refused
with a :class:`~dialog_env.lm.loading.ModelLoadError`. The shipped tagger is
``dialog_env/assets/tagger`` (:data:`SHIPPED_TAGGER_DIR`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dialog_env.memo import Memo, key
from dialog_env.tasks.booking.acts import Act
from dialog_env.tasks.booking.domain import CONSTRAINT_SLOTS
from dialog_env.tasks.booking.parser import user_acts
from dialog_env.tasks.booking.tagging import TAGS, tagged_values, words

__all__ = ["MEMO_SIZE", "SHIPPED_TAGGER_DIR", "SlotTagger", "encode_words"]

#: The tagger ``nlu="tagger"`` loads, trained by ``dialog-bench train tagger``.
SHIPPED_TAGGER_DIR = Path(__file__).resolve().parents[2] / "assets" / "tagger"
#: Sentences whose readings a loaded tagger keeps (least recently used first out).
MEMO_SIZE = 16_384
_cache: dict[tuple[str, str], SlotTagger] = {}
_lock = threading.Lock()


def encode_words(tokenizer: Any, text: str) -> tuple[list[int], list[int], list[str]]:
    """``(ids, positions, words)``: ``<s>`` and the tokens of ``text``, the index in
    ``ids`` of each word's last token, and the words (:func:`words`)."""
    found = words(text)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = [tokenizer.bos_token_id, *encoded["input_ids"]]
    token_at = [0] * (len(text) + 1)  # char -> 1 + the token that holds it (0: <s>)
    for t, (start, end) in enumerate(encoded["offset_mapping"]):
        token_at[start:end] = [t + 1] * (end - start)
    for i in range(1, len(token_at)):  # a char no token claims: the token before it
        token_at[i] = token_at[i] or token_at[i - 1]
    last = [token_at[end - 1] for _, (_, end) in found]
    return ids, last, [word for word, _ in found]


class SlotTagger:
    """A token classifier over the booking slots' BIO tags (module docstring).

    ``model`` is a transformers token-classification model whose labels are :data:`TAGS`;
    use :meth:`load` for a saved directory.
    """

    def __init__(self, model: Any, tokenizer: Any, path: Path | None = None, device="cpu"):
        labels = tuple(model.config.id2label[i] for i in range(model.config.num_labels))
        if labels != TAGS:
            raise ValueError(f"the model's labels are {labels}, not the tagger's {TAGS}")
        self.model, self.tokenizer, self.path, self.device = model, tokenizer, path, device
        self._memo = Memo(MEMO_SIZE, on=True)

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "cpu") -> SlotTagger:
        """The tagger saved in directory ``path`` (default: the shipped one), from the
        per-process cache when loaded before; refused as the module docstring says."""
        from dialog_env.lm.loading import (
            ModelLoadError,
            load_token_classifier,
            refuse_pickles,
            resolve_device,
        )

        path = Path(path if path is not None else SHIPPED_TAGGER_DIR).expanduser().resolve()
        device = resolve_device(device)
        with _lock:
            if (str(path), device) in _cache:
                return _cache[str(path), device]
            if not path.is_dir():
                raise ModelLoadError(
                    f"no slot tagger directory at {path}: train one with `dialog-bench train "
                    "tagger --out DIR`, or use the shipped one (nlu='tagger')"
                )
            refuse_pickles(path)
            model, tokenizer = load_token_classifier(path, device)
            model.requires_grad_(False)
            try:
                tagger = cls(model, tokenizer, path, device)
            except ValueError as err:
                raise ModelLoadError(f"{path}/config.json: {err}") from None
            _cache[str(path), device] = tagger
            return tagger

    def __getstate__(self) -> dict:
        if self.path is None:
            raise TypeError("only a SlotTagger.load()ed tagger pickles (by its path)")
        return {"path": str(self.path), "device": self.device}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(SlotTagger.load(state["path"], state["device"]).__dict__)

    def word_logits(self, texts: Sequence[str]) -> list[Any]:
        """One ``(words, len(TAGS))`` logits tensor per text, in one right-padded batch,
        with gradients when the model has them on (the trainer's use)."""
        import torch

        rows = [encode_words(self.tokenizer, t) for t in texts]
        if not rows:
            return []
        width = max(len(ids) for ids, _, _ in rows)
        pad = self.model.config.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (row, _, _) in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        device = next(self.model.parameters()).device
        logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        return [logits[i, positions] for i, (_, positions, _) in enumerate(rows)]

    def tag(self, texts: Sequence[str], batch_size: int = 64) -> list[list[str]]:
        """The BIO tags of each text's words (eval mode, no gradients)."""
        import torch

        was_training = self.model.training
        self.model.eval()
        out: list[list[str]] = []
        try:
            with torch.no_grad():
                for start in range(0, len(texts), batch_size):
                    for logits in self.word_logits(texts[start : start + batch_size]):
                        out.append([TAGS[i] for i in logits.argmax(-1).tolist()])
        finally:
            self.model.train(was_training)
        return out

    def values(self, text: str) -> dict[str, str]:
        """The slot values tagged in ``text``, tagged alone (batch one, one CPU thread)."""
        from dialog_env.lm.threads import torch_threads

        found = self._memo.get(key(text), None)
        if found is None:
            with torch_threads(1):
                (tags,) = self.tag([text])
            found = tagged_values([w for w, _ in words(text)], tags)
            self._memo.put(key(text), found)
        return dict(found)

    def read(self, text: str) -> tuple[Act, ...]:
        """A user turn's acts, its slot values read by the tagger (module docstring)."""
        found = self.values(text)
        constraints = {s: v for s, v in found.items() if s in CONSTRAINT_SLOTS}
        booking = {s: v for s, v in found.items() if s not in CONSTRAINT_SLOTS}
        return user_acts(text, constraints, booking)
