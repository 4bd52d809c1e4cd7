"""The language model inside the env: tokenizer, safe loading, and the user's LM voice.

``TINY_MODEL_DIR`` is the shipped tiny LM, a plain transformers directory::

    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(TINY_MODEL_DIR)
    tokenizer = AutoTokenizer.from_pretrained(TINY_MODEL_DIR)

Importing this package imports no torch or transformers; the names below that need them
(``LMVoice``, ``load_causal_lm``, ...) are imported on first use.

>>> from dialog_env.lm import TINY_MODEL_DIR
>>> TINY_MODEL_DIR.name
'tiny'
"""

from __future__ import annotations

from pathlib import Path

from dialog_env.entry_points import load_entry_point

__all__ = [
    "TINY_MODEL_DIR",
    "LMVoice",
    "LoadedLM",
    "ModelLoadError",
    "build_tokenizer",
    "load_causal_lm",
    "train_sentencepiece",
]

#: The shipped tiny LM (``user_model="tiny"``): safetensors, config, tokenizer, manifest.
TINY_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny"

_LAZY = {
    "LMVoice": "dialog_env.lm.voice:LMVoice",
    "LoadedLM": "dialog_env.lm.loading:LoadedLM",
    "ModelLoadError": "dialog_env.lm.loading:ModelLoadError",
    "load_causal_lm": "dialog_env.lm.loading:load_causal_lm",
    "build_tokenizer": "dialog_env.lm.tokenizer:build_tokenizer",
    "train_sentencepiece": "dialog_env.lm.tokenizer:train_sentencepiece",
}


def __getattr__(name: str):
    if name in _LAZY:
        return load_entry_point(_LAZY[name])
    raise AttributeError(f"module 'dialog_env.lm' has no attribute {name!r}")
