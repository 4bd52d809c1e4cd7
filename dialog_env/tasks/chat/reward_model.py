"""The chat task's learned reward model: a scalar for a reply in its context.

A reward model is the shipped tiny LM with a one-output score head
(``AutoModelForSequenceClassification``, ``num_labels=1``), trained by ``dialog-bench
train rm`` on the gold-labelled preference pairs of ``dialog-bench prefs``. It reads a
context and a reply in the LM's document format, written by the same
:class:`~dialog_env.lm.codec.MessageCodec` as the LM agents::

    <s><|user|> ...<|end|><|assistant|> [search] ...<|end|><|tool|> [result] ...<|end|>
    <|assistant|> the reply<|end|>

cut from the left to the reward model's ``max_tokens`` (``manifest.json``; at most the
LM's context) when longer; the score is the head's output at
the closing ``<|end|>`` (the last token that is not padding).

**Normalization.** A pairwise loss fixes scores only up to a shift and a scale, so two
reward models' raw outputs are not comparable. :meth:`RewardModel.score` returns
``(raw - mean) / std``, with ``mean`` and ``std`` the raw scores' over the training
replies (``manifest.json``'s ``normalization``): a typical training reply scores 0, and
one unit is one spread of the training replies, whatever the RM.

A directory is loaded only as safetensors weights, JSON config and tokenizer, never with
remote code; one that holds any pickled file is refused
(:func:`dialog_env.lm.loading.refuse_pickles`). Loaded models are cached per
(directory, device).

>>> rm = RewardModel.load()
>>> context = [{"role": "user", "text": "What is the phone number of The Amber Fig?"}]
>>> good = rm.score_one(context, "Sure! The phone number of The Amber Fig is 01223 764182.")
>>> good > rm.score_one(context, "xq zzk wpl")
True
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dialog_env.bounded_json import read_json_file
from dialog_env.memo import Memo, key
from dialog_env.text import Turn

__all__ = [
    "ENSEMBLE_COMBINES",
    "MANIFEST",
    "MEMO_SIZE",
    "SHIPPED_RM_DIR",
    "RewardEnsemble",
    "RewardModel",
    "combine_scores",
    "remember_scores",
    "reward_input_ids",
]

#: The shipped reward model of ``Dialog-Chat-v1`` (``reward="rm"``).
SHIPPED_RM_DIR = Path(__file__).resolve().parents[2] / "assets" / "chat-rm"
MANIFEST = "manifest.json"
_MAX_MANIFEST_BYTES = 4 << 20
_cache: dict[tuple[str, str], RewardModel] = {}
#: Inputs whose batch-1 scores a loaded reward model remembers while
#: :func:`remember_scores` is on (16-byte keys).
MEMO_SIZE = 65_536
_memo = Memo(MEMO_SIZE)


def remember_scores(on: bool) -> bool:
    """Turn the per-process memo of :meth:`RewardModel.score_one` on or off; returns
    whether it was on. ``dialog-bench run`` turns it on for the run, so the replay
    verifying episodes just played does not score them again (the same scores); off
    (the default; turning it off forgets what was held), every reply is scored, as a
    test of determinism needs."""
    return _memo.switch(on)


_lock = threading.Lock()

ContextTurn = Mapping[str, str] | Turn


def _role_text(turn: ContextTurn) -> tuple[str, str]:
    if isinstance(turn, Turn):
        return turn.role, turn.text
    return turn["role"], turn["text"]


def reward_input_ids(
    codec: Any, context: Sequence[ContextTurn], reply: str, max_tokens: int
) -> list[int]:
    """``<s>`` + the context's turns + the reply as an assistant turn (closed by its end
    token), as ids; the last ``max_tokens`` of them when longer.

    >>> from dialog_env.lm.codec import MessageCodec, load_tokenizer
    >>> codec = MessageCodec(load_tokenizer())
    >>> ids = reward_input_ids(codec, [{"role": "user", "text": "Hi"}], "Hello!", 512)
    >>> ids[0] == codec.bos_id and ids[-1] == codec.end_id
    True
    >>> reward_input_ids(codec, [{"role": "user", "text": "Hi"}], "Hello!", 4) == ids[-4:]
    True
    """
    ids = [codec.bos_id]
    for turn in context:
        ids += codec.turn_ids(*_role_text(turn))
    ids += codec.turn_ids("assistant", reply)
    return ids[-max_tokens:]


class RewardModel:
    """A sequence-classification LM that scores chat replies in their context.

    ``model`` is a transformers model with one output whose config names its pad token;
    ``mean`` and ``std`` normalize its raw output (module docstring); an input is cut to
    its last ``max_tokens`` (default: the model's context). Use :meth:`load` for a saved
    directory.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        mean: float = 0.0,
        std: float = 1.0,
        max_tokens: int | None = None,
        path: Path | None = None,
        device: str = "cpu",
    ):
        from dialog_env.lm.codec import MessageCodec

        if not std > 0:
            raise ValueError(f"std must be positive, got {std}")
        if model.config.pad_token_id is None:
            raise ValueError("the model's config has no pad_token_id: the last token is unknown")
        self.model, self.tokenizer = model, tokenizer
        self.mean, self.std = float(mean), float(std)
        self.path, self.device = path, device
        self.codec = MessageCodec(tokenizer)
        #: What score_one's memo keys are scoped by, for frozen models only: ``load`` sets
        #: it (path and device); a model built here directly may be trained, and is never
        #: memoized.
        self._memo_scope: tuple[str, str] | None = None
        context = int(model.config.max_position_embeddings)
        self.max_tokens = context if max_tokens is None else int(max_tokens)
        if not 2 <= self.max_tokens <= context:
            raise ValueError(f"max_tokens must lie in [2, {context}], got {max_tokens}")

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "cpu") -> RewardModel:
        """The reward model saved in directory ``path`` (default: the shipped one), from
        the per-process cache when loaded before. Refuses (``ModelLoadError``) a missing
        directory, one without ``manifest.json``'s normalization, pickled files, remote
        code, or weights that do not match their config."""
        from dialog_env.lm.loading import (
            ModelLoadError,
            load_sequence_scorer,
            refuse_pickles,
            resolve_device,
        )

        path = Path(path if path is not None else SHIPPED_RM_DIR).expanduser().resolve()
        device = resolve_device(device)
        key = (str(path), device)
        with _lock:
            if key in _cache:
                return _cache[key]
            if not path.is_dir():
                raise ModelLoadError(
                    f"no reward model directory at {path}: train one with `dialog-bench train "
                    "rm --prefs FILE --out DIR`, or use the shipped one (reward_model=None)"
                )
            refuse_pickles(path)
            try:
                manifest = read_json_file(path / MANIFEST, _MAX_MANIFEST_BYTES)
                norm = manifest["normalization"]
                mean, std = float(norm["mean"]), float(norm["std"])
                max_tokens = manifest.get("max_tokens")
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise ModelLoadError(
                    f"{path}/{MANIFEST} has no normalization {{'mean', 'std'}} ({err}); a "
                    "reward model directory is what `dialog-bench train rm` writes"
                ) from None
            model, tokenizer = load_sequence_scorer(path, device)
            model.requires_grad_(False)
            try:
                loaded = cls(model, tokenizer, mean, std, max_tokens, path, device)
            except (TypeError, ValueError) as err:
                raise ModelLoadError(f"{path}/{MANIFEST}: {err}") from None
            loaded._memo_scope = (str(path), device)
            _cache[key] = loaded
            return loaded

    def __getstate__(self) -> dict:
        if self.path is None:
            raise TypeError("only a RewardModel.load()ed reward model pickles (by its path)")
        return {"path": str(self.path), "device": self.device}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(RewardModel.load(state["path"], state["device"]).__dict__)

    def raw_scores(
        self, contexts: Sequence[Sequence[ContextTurn]], replies: Sequence[str], batch_size=32
    ) -> Any:
        """The head's outputs for each (context, reply), a float32 tensor, with gradients
        when the model has them on (the trainer's use). Rows are right-padded and batched
        in order of length (less padding), the outputs returned in the given order."""
        import torch

        if len(contexts) != len(replies):
            raise ValueError(f"{len(contexts)} contexts but {len(replies)} replies")
        rows = [
            reward_input_ids(self.codec, c, r, self.max_tokens)
            for c, r in zip(contexts, replies, strict=True)
        ]
        pad = self.model.config.pad_token_id
        device = next(self.model.parameters()).device
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out = []
        for start in range(0, len(rows), batch_size):
            chunk = [rows[i] for i in order[start : start + batch_size]]
            width = max(len(r) for r in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, row in enumerate(chunk):
                ids[i, : len(row)] = torch.tensor(row)
                mask[i, : len(row)] = 1
            logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            out.append(logits[:, 0])
        if not out:
            return torch.zeros(0)
        return torch.cat(out)[torch.tensor(order).argsort()]

    def score(
        self,
        contexts: Sequence[Sequence[ContextTurn]],
        replies: Sequence[str],
        batch_size: int = 32,
    ) -> np.ndarray:
        """The normalized scores (float64) of ``replies``, each in its context (a sequence
        of turns: ``{"role", "text"}`` dicts or :class:`~dialog_env.text.Turn`), in eval
        mode without gradients, ``batch_size`` at a time. Padding a batch changes a score in
        its last bits; :meth:`score_one` is the batch-1 number the env uses."""
        import torch

        was_training = self.model.training
        if was_training:  # a frozen model is in eval mode already: no walk over its modules
            self.model.eval()
        try:
            with torch.no_grad():
                raw = self.raw_scores(contexts, replies, batch_size).double().cpu().numpy()
        finally:
            if was_training:
                self.model.train()
        return (raw - self.mean) / self.std

    def score_one(self, context: Sequence[ContextTurn], reply: str) -> float:
        """The normalized score of one reply, computed alone (batch 1, no padding, one CPU
        thread), so the same reply in the same context scores the same in any process, any
        batch and any thread setting.

        With :func:`remember_scores` on, a loaded (frozen) model remembers the scores of the
        last :data:`MEMO_SIZE` inputs by the exact token ids it would read, so the same
        input is scored once in a process; the score is the same either way.
        """
        ids = reward_input_ids(self.codec, context, reply, self.max_tokens)
        if self._memo_scope is None or not _memo.on:
            return self._score_alone(context, reply, ids)
        input_key = key(*self._memo_scope, np.asarray(ids, dtype=np.int64).tobytes())
        score = _memo.get(input_key, None)
        if score is None:
            score = self._score_alone(context, reply, ids)
            _memo.put(input_key, score)
        return score

    def _score_alone(self, context: Sequence[ContextTurn], reply: str, ids: list[int]) -> float:
        """Batch one on one CPU thread: torch splits a matmul's work by its thread count,
        which changes a score's last bits, so a fixed count makes the env's reward the
        same number in a process of any thread setting (as the LM voice does). Of the
        shipped RM's last layer only the rows that reach the head are computed
        (:func:`dialog_env.lm.last_token.last_token_logit`: the same number to the bit)."""
        from dialog_env.lm.last_token import last_token_logit, supports_last_token
        from dialog_env.lm.threads import torch_threads

        with torch_threads(1):
            if supports_last_token(self.model):
                return (last_token_logit(self.model, ids) - self.mean) / self.std
            return float(self.score([context], [reply], batch_size=1)[0])


#: How :class:`RewardEnsemble` makes one score of its members' (Coste et al. 2024).
ENSEMBLE_COMBINES = ("mean", "worst")


def combine_scores(scores: Sequence[float] | np.ndarray, combine: str) -> Any:
    """The members' ``scores`` (members along the first axis) made one: their mean
    (``"mean"``) or their minimum (``"worst"``).

    >>> combine_scores([0.5, -1.0, 2.0], "mean"), combine_scores([0.5, -1.0, 2.0], "worst")
    (0.5, -1.0)
    """
    if combine not in ENSEMBLE_COMBINES:
        raise ValueError(f"combine must be one of {ENSEMBLE_COMBINES}, got {combine!r}")
    scores = np.asarray(scores, dtype=float)
    out = scores.mean(axis=0) if combine == "mean" else scores.min(axis=0)
    return float(out) if out.ndim == 0 else out


class RewardEnsemble:
    """K proxy reward models read as one: their mean score or their worst case.

    Coste, Anwar, Kirk, Krueger ("Reward Model Ensembles Help Mitigate Overoptimization",
    ICLR 2024) found that a policy optimized against the mean (``"mean"``) or, more
    conservatively, the lowest (``"worst"``) of several proxy RMs' scores over-optimizes
    far less than against one of them: a reply that fools one proxy rarely fools them
    all. Each member's score is its own normalized score (:meth:`RewardModel.score_one`),
    so members of different raw scales combine on one scale.

    >>> rm = RewardModel.load()
    >>> shifted = RewardModel(rm.model, rm.tokenizer, rm.mean + rm.std, rm.std)
    >>> ensemble = RewardEnsemble([rm, shifted], combine="worst")
    >>> context = [{"role": "user", "text": "Hi"}]
    >>> scores = ensemble.member_scores(context, "Hello!")
    >>> round(scores[0] - scores[1], 6), ensemble.score_one(context, "Hello!") == min(scores)
    (1.0, True)
    """

    def __init__(self, members: Sequence[RewardModel], combine: str = "mean"):
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two reward models, got {len(members)}")
        combine_scores([0.0], combine)  # checks combine
        self.members, self.combine = list(members), combine

    @classmethod
    def load(
        cls, paths: Sequence[str | Path], combine: str = "mean", device: str = "cpu"
    ) -> RewardEnsemble:
        """The ensemble of the reward models saved in ``paths`` (each loaded as
        :meth:`RewardModel.load` loads it, cached per process)."""
        if isinstance(paths, (str, Path)):
            raise TypeError("paths must be a list of reward model directories, not one path")
        return cls([RewardModel.load(p, device) for p in paths], combine)

    def member_scores(self, context: Sequence[ContextTurn], reply: str) -> list[float]:
        """Each member's :meth:`RewardModel.score_one` of ``reply``, in member order."""
        return [m.score_one(context, reply) for m in self.members]

    def combined(self, member_scores: Sequence[float]) -> float:
        """One score of the members' scores of one reply (:func:`combine_scores`)."""
        return float(combine_scores(member_scores, self.combine))

    def score_one(self, context: Sequence[ContextTurn], reply: str) -> float:
        """The ensemble's score of one reply (:meth:`combined` of :meth:`member_scores`)."""
        return self.combined(self.member_scores(context, reply))

    def score(
        self,
        contexts: Sequence[Sequence[ContextTurn]],
        replies: Sequence[str],
        batch_size: int = 32,
    ) -> np.ndarray:
        """The ensemble's scores of many replies (each member's :meth:`RewardModel.score`)."""
        scores = np.stack([m.score(contexts, replies, batch_size) for m in self.members])
        return combine_scores(scores, self.combine)
