"""The LM voice: a causal LM writes the user's sentence, the task's parser checks it.

The voice knows the task only through its :class:`~dialog_env.voicing.TaskVoice` (the
task's template voice): how acts are delexicalized, filled, read back and described.
For each turn the voice builds the delexicalized prompt (``inform(food=[food])``), lets
the LM write a sentence with typed placeholders, and keeps it only if

- it is one printable ASCII line (it goes into the transcript as it is),
- its placeholders are exactly the act's, each once, and
- the task's parser reads the filled sentence back as the act (``TaskVoice.reads_back``);

otherwise it samples again, ``max_tries`` times in all, and then falls back to the
template sentence (counted in ``info["metrics"]["voice_fallbacks"]``).

All turns that need a sample are decoded together: :meth:`LMVoice.voice_batch` takes the
turns of many envs and runs one KV-cached decode for all of them, in which a sample that
fails the check is tried again at once while the other rows go on (continuous batching:
no retry waits for the batch's longest sentence or pays a decode call of its own), so a
vector env pays one batched LM call per step. :meth:`LMVoice.voice` is the batch of one.

Randomness: each turn draws one integer from its env's ``np_random``; it seeds a
``torch.Generator`` that draws the turn's uniforms (float64) up front, and tokens are
sampled by inverse CDF on float64 probabilities. A different thread count or process can
only change a token when a uniform falls within float error (~1e-6) of a CDF step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dialog_env.lm.format import END, voice_prompt
from dialog_env.lm.loading import LoadedLM, ModelLoadError, load_causal_lm
from dialog_env.memo import Memo, key

if TYPE_CHECKING:
    from dialog_env.voicing import TaskVoice

__all__ = ["MEMO_SIZE", "LMVoice", "check_sentence", "remember_turns"]

_SEED_HIGH = 2**62
#: Voice prompts whose keys and values an :class:`LMVoice` keeps (least recently used
#: first out).
HEADS_KEPT = 1024
#: Turns whose samples a process remembers while :func:`remember_turns` is on (16-byte
#: keys: :meth:`LMVoice._memo_key`).
MEMO_SIZE = 65_536
_memo = Memo(MEMO_SIZE)
_MISS = object()


def remember_turns(on: bool) -> bool:
    """Turn the per-process memo of voiced turns on or off; returns whether it was on.

    A turn's sentence is a function of the model, the voice's settings, its acts and its
    seed, so with the memo on the same turn is decoded once per process: ``dialog-bench
    run`` turns it on for the run, so that the replay verifying episodes just played reads
    what the play's decode gave instead of decoding it again (the same sentences), and
    baselines that meet the same turn decode it once. Off (the
    default; turning it off forgets what it held), every turn is decoded, as a test of
    determinism or a benchmark of the decode needs.
    """
    return _memo.switch(on)


def check_sentence(
    text: str, acts: Sequence[Any], values: dict[str, str], task_voice: TaskVoice
) -> bool:
    """True when a delexicalized sentence says exactly ``acts`` (see the module docstring)."""
    if not text or not text.isascii() or not text.isprintable():
        return False
    if sorted(task_voice.placeholders(text)) != sorted(values):
        return False
    return task_voice.reads_back(task_voice.fill(text, values), acts)


class LMVoice:
    """A :class:`~dialog_env.voicing.UserVoice` backed by a local causal LM.

    ``path`` is a model directory (ours, or a chat model); ``task_voice`` is the task's
    template voice, which checks every sample and is the fallback. The model is loaded
    once per (path, device) and shared. Pickling keeps only the settings and reloads on unpickle.
    ``max_tries`` samples per turn before the template; ``temperature`` divides the
    logits; ``threads`` is torch's CPU thread count while decoding (restored after;
    ``None`` leaves it alone).
    """

    def __init__(
        self,
        path: str | Path,
        task_voice: TaskVoice,
        device: str = "cpu",
        max_tries: int = 4,
        max_new_tokens: int = 64,
        temperature: float = 1.0,
        threads: int | None = 1,
    ):
        if max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {max_tries}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.path, self.device = Path(path), device
        self.task_voice = task_voice
        self.max_tries, self.max_new_tokens, self.temperature = (
            max_tries,
            max_new_tokens,
            temperature,
        )
        self.threads = threads
        self._load()

    # -- pickling: the model is shared state, never copied ----------------------------------
    def __getstate__(self) -> dict:
        skip = ("lm", "style", "_stop_ids", "_heads")
        return {k: v for k, v in self.__dict__.items() if k not in skip}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._load()

    def _load(self) -> None:
        self.lm: LoadedLM = load_causal_lm(self.path, self.device)
        self._identity = str(self.path.resolve())
        self.style = self._prompt_style()
        self._stop_ids = self._stop_token_ids()
        self._heads = Memo(HEADS_KEPT, on=True)  # prompt ids -> keys and values

    def _prompt_style(self) -> str:
        """``"voice"`` when the tokenizer holds the task's placeholders too, else ``"chat"``.

        The loader checks the format's control tokens; the placeholders are the task's.
        """
        if self.lm.style != "voice":
            return self.lm.style
        vocab = self.lm.tokenizer.get_vocab()
        missing = [t for t in self.task_voice.placeholder_tokens if t not in vocab]
        if not missing:
            return "voice"
        if getattr(self.lm.tokenizer, "chat_template", None):
            return "chat"
        raise ModelLoadError(
            f"the tokenizer of {self.path} lacks the special tokens of the user voice "
            f"({', '.join(missing)}) and has no chat template, so there is no way to prompt "
            "it: train it with `dialog-bench pretrain` (our format) or give a chat model "
            "whose tokenizer_config.json has a chat_template"
        )

    def _stop_token_ids(self) -> list[int]:
        tok = self.lm.tokenizer
        ids = {tok.eos_token_id} if tok.eos_token_id is not None else set()
        if self.style == "voice":
            ids.add(tok.convert_tokens_to_ids(END))
        return sorted(i for i in ids if i is not None)

    # -- the UserVoice protocol -------------------------------------------------------------
    def voice(self, acts: Sequence[Any], rng: np.random.Generator) -> tuple[str, bool]:
        return self.voice_batch([acts], [rng])[0]

    def voice_batch(
        self, turns: Sequence[Sequence[Any]], rngs: Sequence[np.random.Generator]
    ) -> list[tuple[str, bool]]:
        """Voice many turns (each with its own env's rng) in one batched decode per try."""
        sentences = self.sample_batch(turns, rngs)
        return [self.realize(acts, s) for acts, s in zip(turns, sentences, strict=True)]

    def sample_batch(
        self, turns: Sequence[Sequence[Any]], rngs: Sequence[np.random.Generator]
    ) -> list[str | None]:
        """The delexicalized sentence that passed the check for each turn, or ``None``.

        Each turn draws exactly one integer from its rng, however many tries it takes.
        """
        import torch

        if len(turns) != len(rngs):
            raise ValueError("sample_batch needs one rng per turn")
        prompts, values = (
            zip(*(self._prompt(acts) for acts in turns), strict=True) if turns else ((), ())
        )
        seeds = [int(rng.integers(_SEED_HIGH)) for rng in rngs]  # one draw per turn, always
        remember = _memo.on and getattr(self, "_identity", None) is not None
        keys = [
            self._memo_key(acts, seed) if remember else b""
            for acts, seed in zip(turns, seeds, strict=True)
        ]
        results: list[str | None] = [None] * len(turns)
        pending = []
        for i, turn_key in enumerate(keys):
            hit = _memo.get(turn_key, _MISS) if remember else _MISS
            if hit is _MISS:
                pending.append(i)
            else:
                results[i] = hit
        uniforms = [
            torch.rand(
                self.max_tries,
                self.max_new_tokens,
                generator=torch.Generator().manual_seed(seeds[i]),
                dtype=torch.float64,
            )
            for i in pending
        ]
        if pending:
            texts = self.decode(
                [prompts[i] for i in pending],
                torch.stack(uniforms),
                lambda row, text: check_sentence(
                    text, turns[pending[row]], values[pending[row]], self.task_voice
                ),
            )
            for i, text in zip(pending, texts, strict=True):
                results[i] = text
        for i in pending if remember else ():
            _memo.put(keys[i], results[i])
        return results

    def _memo_key(self, acts: Sequence[Any], seed: int) -> bytes:
        """What a turn's sample is a function of: the model and the voice's settings, the
        acts (with their values: the check reads them back) and the turn's seed."""
        return key(
            self._identity,
            self.device,
            self.style,
            type(self.task_voice).__qualname__,
            self.max_tries,
            self.max_new_tokens,
            repr(self.temperature),
            repr([str(a) for a in acts]),
            seed,
        )

    def realize(self, acts: Sequence[Any], sentence: str | None) -> tuple[str, bool]:
        """``(text, fell_back)``: the sentence with the act's values, or the template."""
        task_voice = self.task_voice
        _, values = task_voice.delexicalize(acts)
        if sentence is None:
            return task_voice.fill(task_voice.template(acts), values), True
        return task_voice.fill(sentence, values), False

    def _prompt(self, acts: Sequence[Any]) -> tuple[str, dict[str, str]]:
        delex, values = self.task_voice.delexicalize(acts)
        if self.style == "voice":
            return voice_prompt(delex), values
        placeholders = ", ".join(f"[{s}]" for s in values) or "none"
        message = (
            f"{self.task_voice.persona} Write the one "
            f"short sentence you say next, where {self.task_voice.describe(acts)}. Write these "
            f"placeholders exactly as they are, once each: {placeholders}. Answer with the "
            "sentence only."
        )
        text = self.lm.tokenizer.apply_chat_template(
            [{"role": "user", "content": message}], tokenize=False, add_generation_prompt=True
        )
        return text, values

    # -- batched KV-cache decoding --------------------------------------------------------------
    def decode(self, prompts: Sequence[str], uniforms, accept=None) -> list[str | None]:
        """Sample a continuation of each prompt, all rows in one KV-cached decode.

        ``uniforms[b, k, t]`` (float64 in [0, 1)) picks token ``t`` of attempt ``k`` of
        row ``b`` by inverse CDF (``(rows, tokens)``: one attempt each), so a sample is a
        pure function of the prompt, the model and the uniforms. ``accept(row, text)``
        judges each attempt as it ends; a refused one is sampled again at once with the
        row's next uniforms, inside the running batch
        (:func:`~dialog_env.lm.generation.decode_resampling`). Returns each row's taken
        text, ``None`` when no attempt was taken; without ``accept``, the first attempt's
        text (``""`` when it never finished).
        """
        from dialog_env.lm.threads import torch_threads

        # A decode step multiplies matrices of a few hundred numbers: extra CPU threads
        # only wait for each other, and on a busy machine that waiting costs 5-20x.
        with torch_threads(self.threads):
            return self._decode(prompts, uniforms, accept)

    def _prompt_head(self, ids: list[int]) -> list[tuple]:
        """The keys and values of a prompt but its last token, computed alone (batch one,
        no padding: the same numbers whatever else is voiced) the first time the prompt
        comes and kept for the next :data:`HEADS_KEPT` prompts: a voice prompt is a
        delexicalized act, so a few dozen cover thousands of turns."""
        from dialog_env.lm.generation import prompt_heads

        head = self._heads.get(tuple(ids), None)
        if head is None:
            head = prompt_heads(self.lm.model, [ids], self.lm.device)[0]
            self._heads.put(tuple(ids), head)
        return head

    def _decode(self, prompts: Sequence[str], uniforms, accept) -> list[str | None]:
        from dialog_env.lm.generation import decode_resampling, inverse_cdf

        tok = self.lm.tokenizer
        if uniforms.dim() == 2:
            uniforms = uniforms.unsqueeze(1)
        rows, tries = uniforms.shape[:2]
        flat = uniforms.reshape(rows * tries, -1).to(self.lm.device)
        texts: dict[int, str] = {}

        def text_of(tokens: list[int], stopped: bool) -> str:
            if not stopped:  # never finished: an unfinished sentence is no sample
                return ""
            text = tok.decode(tokens[:-1], skip_special_tokens=True).strip()
            return text.splitlines()[0].strip().strip('"') if text else ""

        def judge(row: int, tokens: list[int], stopped: bool) -> bool:
            texts[row] = text_of(tokens, stopped)
            return True if accept is None else bool(accept(row, texts[row]))

        ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
        decoded = decode_resampling(
            self.lm.model,
            ids,
            self.max_new_tokens,
            self._stop_ids,
            inverse_cdf(flat, self.temperature),
            judge,
            tries,
            heads=[self._prompt_head(row) for row in ids],
        )
        return [texts[r] if taken else None for r, taken in enumerate(decoded.accepted)]
