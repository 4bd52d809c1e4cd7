"""Loading a local causal LM safely: safetensors only, never remote code, clear refusals.

A model directory comes from anywhere (a download, a colleague, a leaderboard entry), so
nothing in it is run: weights are read with safetensors (plain tensors, no code), the
config and tokenizer from JSON, and ``trust_remote_code`` is always off. Before
transformers opens anything, ``dialog_env.lm.model_files`` checks the weights' headers
(and that a shard index names only safetensors files beside it), the config's sizes
against the weights, and ``tokenizer.json``'s size and structure. A directory that
cannot be used is refused with a one-line :class:`ModelLoadError` that says what to do.

Loaded models are cached per (directory, device), so many envs share one copy and an
unpickled env gets its model back without reading the disk again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from dialog_env.bounded_json import read_json_file
from dialog_env.lm.format import CONTROL_TOKENS
from dialog_env.lm.model_files import (
    MAX_CONFIG_BYTES,
    WEIGHTS_INDEX,
    check_model_config,
    check_tokenizer_json,
    check_weights,
    checked_files,
)

__all__ = [
    "PICKLE_SUFFIXES",
    "LoadedLM",
    "ModelLoadError",
    "load_causal_lm",
    "load_sequence_scorer",
    "load_token_classifier",
    "pickled_files",
    "refuse_pickles",
    "resolve_device",
]

#: Files that hold weights as pickle: refused, never opened.
PICKLE_WEIGHTS = (
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "model.pt",
    "model.pth",
    "model.ckpt",
    "tf_model.h5",
    "flax_model.msgpack",
)
#: File endings of pickled (or otherwise code-carrying) weights and objects, any case:
#: torch's and transformers' (``.bin .pt .pth .ckpt``), Keras' and Flax's (``.h5
#: .msgpack``), SB3's zipped policies (``.zip``) and joblib's and pickle's own.
PICKLE_SUFFIXES = (
    ".bin",
    ".ckpt",
    ".h5",
    ".joblib",
    ".msgpack",
    ".pickle",
    ".pkl",
    ".pt",
    ".pth",
    ".zip",
)
_CACHE_SIZE = 4
_cache: OrderedDict[tuple[str, str], LoadedLM] = OrderedDict()
_lock = threading.Lock()


class ModelLoadError(ValueError):
    """A model directory that cannot be used; the message (one line) says why and what to do."""

    def __init__(self, reason: str):
        super().__init__(" ".join(str(reason).split()))


@dataclass(frozen=True)
class LoadedLM:
    """A causal LM, its tokenizer, and how to prompt it."""

    model: Any  # a transformers PreTrainedModel in eval mode
    tokenizer: Any
    path: Path
    device: str
    style: str  # "voice": our act -> sentence format; "chat": a chat template, plain words


def resolve_device(device: str) -> str:
    """Check ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``) and return it normalized."""
    import torch

    if not isinstance(device, str):
        raise TypeError(f"device must be a str such as 'cpu' or 'cuda', got {device!r}")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but torch sees no CUDA device here")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return str(dev)


def _check_directory(path: Path, missing: str | None = None) -> dict:
    if not path.exists():
        raise ModelLoadError(
            missing
            or f"no model directory at {path}: user_model is 'tiny', 'template' or the path of "
            "a local transformers causal-LM directory (config.json, *.safetensors, tokenizer)"
        )
    if not path.is_dir():
        raise ModelLoadError(f"{path} is a file; user_model=PATH wants a model directory")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(
            f"{path} is not a transformers model directory: it has no config.json. Save the "
            "model with model.save_pretrained(dir) and tokenizer.save_pretrained(dir)"
        )
    has_safetensors = any(path.glob("*.safetensors")) or (path / WEIGHTS_INDEX).is_file()
    if not has_safetensors:
        pickled = [name for name in PICKLE_WEIGHTS if (path / name).exists()]
        if pickled:
            raise ModelLoadError(
                f"{path} holds its weights only in pickle form ({', '.join(pickled)}); loading "
                "pickle can run arbitrary code, so dialog-bench never does. Convert them once, "
                "where you trust the file, with AutoModelForCausalLM.from_pretrained(dir)"
                ".save_pretrained(dir) (transformers writes model.safetensors)"
            )
        raise ModelLoadError(f"{path} has no weights: no *.safetensors file")
    try:
        config = read_json_file(config_file, MAX_CONFIG_BYTES)
    except ValueError as err:
        raise ModelLoadError(f"{config_file} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{config_file} is not a JSON object")
    return config


def _check_files(path: Path, raw_config: dict) -> None:
    """Weights, config sizes and tokenizer, checked from their headers and JSON alone."""
    try:
        check_model_config(raw_config, path / "config.json", check_weights(path))
        if (path / "tokenizer.json").is_file():
            check_tokenizer_json(path / "tokenizer.json")
    except ValueError as err:
        raise ModelLoadError(str(err)) from None


def _auto_config(path: Path, raw_config: dict) -> Any:
    """transformers' config of ``path``, refused if it needs custom code or fails to parse."""
    if "auto_map" in raw_config:
        raise ModelLoadError(
            f"{path} needs custom code (its config.json has an auto_map); dialog-bench never "
            "runs code from a model directory (trust_remote_code stays off)"
        )
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=False, local_files_only=True)
    except Exception as err:  # whatever a hostile config trips on is a refusal
        raise ModelLoadError(
            f"{path}/config.json is not a config transformers knows: {type(err).__name__}: {err}"
        ) from None


def _auto_tokenizer(path: Path) -> Any:
    """The fast tokenizer of ``path``, without remote code."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            path, trust_remote_code=False, local_files_only=True, use_fast=True
        )
    except Exception as err:  # a corrupt tokenizer file raises anything (KeyError, ...)
        raise ModelLoadError(
            f"{path} has no tokenizer transformers can load without remote code "
            f"({type(err).__name__}: {err}). Save one with tokenizer.save_pretrained(dir)"
        ) from None


def _load(path: Path, device: str) -> LoadedLM:
    raw_config = _check_directory(path)
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    config = _auto_config(path, raw_config)
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        arch = ", ".join(raw_config.get("architectures") or []) or "none given"
        raise ModelLoadError(
            f"{path} is not a causal LM: model_type {config.model_type!r} (architectures: "
            f"{arch}) has no text-generation head in transformers; use a decoder-only model "
            "such as GPT-2, GPT-NeoX, Llama, Qwen2 or Mistral"
        )
    _check_files(path, raw_config)
    tokenizer = _auto_tokenizer(path)
    style = _style(path, tokenizer)
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # an env that prints progress bars on make() is noise
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path,
            trust_remote_code=False,
            use_safetensors=True,
            local_files_only=True,
            dtype=torch.float32,
        )
    except Exception as err:  # SafetensorError is no ValueError; any failure is a refusal
        raise ModelLoadError(
            f"{path}: the safetensors weights do not load ({type(err).__name__}: {err})"
        ) from None
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    model.to(device).eval()
    model.requires_grad_(False)
    return LoadedLM(model, tokenizer, path, device, style)


def pickled_files(files: Iterable[tuple[str, Path]]) -> list[str]:
    """The relative names among ``files`` (``(relative name, path)`` pairs, as
    :func:`~dialog_env.lm.model_files.checked_files` lists them) that hold pickle: a
    :data:`PICKLE_WEIGHTS` name or a :data:`PICKLE_SUFFIXES` ending, in any case, sorted.

    >>> pickled_files([("model.safetensors", Path()), ("lm/Policy.ZIP", Path())])
    ['lm/Policy.ZIP']
    """
    return sorted(
        rel
        for rel, _ in files
        if PurePosixPath(rel).name in PICKLE_WEIGHTS or rel.lower().endswith(PICKLE_SUFFIXES)
    )


def refuse_pickles(path: str | Path, files: Iterable[tuple[str, Path]] | None = None) -> None:
    """Refuse a directory that holds any pickled file (:func:`pickled_files`), even beside
    safetensors weights, with a :class:`ModelLoadError` (a ``ValueError``). ``files`` is
    the directory's :func:`~dialog_env.lm.model_files.checked_files`, when the caller
    has them; otherwise they are listed here, and a directory that listing refuses (a
    link out of it, a file over the size limits) is refused too.

    The one check of the house: model directories (``user_model=PATH``, reward models)
    and agent checkpoints (:func:`agents.checkpoint.read_config`) both call it.
    """
    if files is None:
        try:
            files = checked_files(path)
        except ValueError as err:
            raise ModelLoadError(str(err)) from None
    pickled = pickled_files(files)
    if pickled:
        raise ModelLoadError(
            f"refusing to load {path}: it holds pickled files; {', '.join(pickled)} can only "
            "be read by unpickling, which can run arbitrary code. dialog-bench loads "
            "safetensors weights and JSON configs: remove them or convert the model "
            "(save_pretrained(dir, safe_serialization=True)), or load it yourself if you "
            "trust it"
        )


def load_sequence_scorer(path: str | Path, device: str = "cpu") -> tuple[Any, Any]:
    """``(model, tokenizer)``: a fresh (uncached) one-output sequence-classification model
    and its tokenizer from local directory ``path``, checked as :func:`load_causal_lm`
    checks (safetensors only, no remote code, sizes against the weights). The model scores
    the last token that is not ``config.pad_token_id`` (set from the tokenizer's pad token
    when the config has none). A causal-LM directory gets a new score head, drawn from
    torch's global generator (a trainer seeds it first); the model comes in eval mode.
    """
    from transformers import AutoModelForSequenceClassification
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    return _load_with_head(
        path,
        device,
        AutoModelForSequenceClassification,
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING,
        "sequence-classification head",
        "a reward model",
        num_labels=1,
    )


def load_token_classifier(
    path: str | Path, device: str = "cpu", labels: tuple[str, ...] | None = None
) -> tuple[Any, Any]:
    """``(model, tokenizer)``: a fresh (uncached) token-classification model
    (``AutoModelForTokenClassification``) and its tokenizer from local directory ``path``,
    checked as :func:`load_causal_lm` checks. With ``labels`` (a causal-LM directory to
    start from) it gets a new head of one output per label, drawn from torch's global
    generator, and ``id2label``/``label2id`` in its config; without, the directory's
    config holds them (a trained tagger). The model comes in eval mode.
    """
    from transformers import AutoModelForTokenClassification
    from transformers.models.auto.modeling_auto import MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING

    head: dict[str, Any] = {}
    if labels is not None:
        head = {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
        }
    return _load_with_head(
        path,
        device,
        AutoModelForTokenClassification,
        MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING,
        "token-classification head",
        "a slot tagger",
        **head,
    )


def _load_with_head(
    path: str | Path, device: str, auto_class: Any, mapping: Any, head: str, what: str, **kwargs
) -> tuple[Any, Any]:
    """The checked load of :func:`load_sequence_scorer` and :func:`load_token_classifier`:
    ``auto_class.from_pretrained(path, **kwargs)`` for a config ``mapping`` knows."""
    path = Path(path).expanduser().resolve()
    device = resolve_device(device)
    raw_config = _check_directory(
        path, f"no model directory at {path}: {what} is a transformers directory"
    )
    import torch

    config = _auto_config(path, raw_config)
    if type(config) not in mapping:
        raise ModelLoadError(
            f"{path}: model_type {config.model_type!r} has no {head} in transformers"
        )
    _check_files(path, raw_config)
    tokenizer = _auto_tokenizer(path)
    pad_id = config.pad_token_id if config.pad_token_id is not None else tokenizer.pad_token_id
    if pad_id is None:
        raise ModelLoadError(f"{path}: neither its config nor its tokenizer has a pad token")
    from transformers.utils import logging as hf_logging

    bar, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()  # a new head is expected, not news
    try:
        model = auto_class.from_pretrained(
            path,
            pad_token_id=pad_id,
            trust_remote_code=False,
            use_safetensors=True,
            local_files_only=True,
            dtype=torch.float32,
            **kwargs,
        )
    except Exception as err:
        raise ModelLoadError(f"{path}: the safetensors weights do not load ({err})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()
    return model.to(device).eval(), tokenizer


def _style(path: Path, tokenizer) -> str:
    vocab = tokenizer.get_vocab()
    missing = [t for t in CONTROL_TOKENS if t not in vocab]  # a task's placeholders: LMVoice
    if not missing and tokenizer.bos_token is not None:
        return "voice"
    if getattr(tokenizer, "chat_template", None):
        return "chat"
    raise ModelLoadError(
        f"the tokenizer of {path} lacks the special tokens of the user voice "
        f"({', '.join(missing) or 'bos_token'}) and has no chat template, so there is no way "
        "to prompt it: train it with `dialog-bench pretrain` (our format) or give a chat "
        "model whose tokenizer_config.json has a chat_template"
    )


def load_causal_lm(path: str | Path, device: str = "cpu") -> LoadedLM:
    """Load (or fetch from the cache) the causal LM in directory ``path`` on ``device``.

    Raises :class:`ModelLoadError` for a missing directory, a directory that is not a
    causal LM, pickle-only weights, custom code, or a tokenizer that cannot be prompted.
    """
    path = Path(path).expanduser().resolve()
    device = resolve_device(device)
    key = (str(path), device)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
        loaded = _load(path, device)
        _cache[key] = loaded
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return loaded
