"""LoRA adapters for the LM agents (optional extra ``[peft]``): train, save, load.

``--lora RANK`` on ``train sft``, ``train ppo`` and ``train grpo`` freezes the base LM and
trains low-rank adapters on every linear layer of its blocks (PEFT's ``"all-linear"``: the
tied output head stays frozen with the embeddings). The checkpoint then holds no copy of
the base, only what was learned and which base it adapts::

    config.json    {"agent": "lm", ..., "base_model": "tiny" | NAME | DIR, "base_sha256": HEX}
    adapter/       adapter_model.safetensors + adapter_config.json (PEFT's own layout)
                   embedding_rows.safetensors: embedding rows the trainer set on the
                   base (SFT's orthogonal slot values), when it set any

``base_sha256`` is :func:`~dialog_env.lm.model_files.directory_sha256` of the base LM
directory. :func:`load_lora_lm` finds the base by its shipped name (``"tiny"``: the
shipped LM; ``NAME``: the LM of the shipped checkpoint ``NAME``) or as a folder ``DIR``
inside the checkpoint, and nowhere else (a checkpoint that names any other path is
refused before that path is looked at); refuses it when its hash differs (an adapter
on other weights writes nonsense), applies the rows and the adapter, and merges them
into a plain model, so an adapted agent decodes as fast as a full one. A base that is
not shipped travels with the checkpoint: copy it into the directory and name it there.
The adapter is read with safetensors from a config whose every field is checked;
nothing is unpickled.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from dialog_env.bounded_json import read_json_file

__all__ = [
    "ADAPTER_SUBDIR",
    "add_lora",
    "base_reference",
    "count_parameters",
    "describe",
    "is_lora",
    "load_lora_lm",
    "save_lora",
    "shipped_bases",
]

ADAPTER_SUBDIR = "adapter"
ADAPTER_WEIGHTS, ADAPTER_CONFIG = "adapter_model.safetensors", "adapter_config.json"
EMBEDDING_ROWS = "embedding_rows.safetensors"
_MODULE_NAME = re.compile(r"[A-Za-z0-9_]{1,100}(\.[A-Za-z0-9_]{1,100}){0,20}")
#: The largest LoRA rank accepted, in a flag or in an adapter's config.
_MAX_RANK = 1024


def _require_peft() -> Any:
    try:
        import peft
    except ImportError:
        raise ImportError(
            "LoRA needs the optional extra peft: pip install 'dialog-bench[peft]' "
            "(or pip install peft)"
        ) from None
    return peft


def add_lora(model: Any, rank: int, alpha: float | None = None, dropout: float = 0.0) -> Any:
    """``model`` wrapped by PEFT with rank-``rank`` adapters on all its block linears;
    only the adapters train. ``alpha`` defaults to ``2 * rank``."""
    if not isinstance(rank, int) or not 1 <= rank <= _MAX_RANK:
        raise ValueError(f"LoRA rank must be an integer in 1-{_MAX_RANK}, got {rank!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout!r}")
    peft = _require_peft()
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=float(2 * rank if alpha is None else alpha),
        lora_dropout=dropout,
        target_modules="all-linear",
        bias="none",
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, config)


def is_lora(model: Any) -> bool:
    """Whether ``model`` is a PEFT-wrapped model (without importing peft)."""
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def count_parameters(model: Any) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts of ``model``."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def shipped_bases() -> dict[str, Path]:
    """The base LMs an adapter may name without shipping them: ``"tiny"`` and the LM of
    every shipped checkpoint that holds one (``lm/``), by name."""
    from agents import shipped_checkpoints
    from dialog_env.lm import TINY_MODEL_DIR

    bases = {name: d / "lm" for name, d in shipped_checkpoints().items() if (d / "lm").is_dir()}
    return {**bases, "tiny": Path(TINY_MODEL_DIR)}


def base_reference(base_dir: str | Path) -> dict[str, str]:
    """The config fields that name an adapter's base: ``base_model`` and ``base_sha256``.

    A shipped base is named by its shipped name; any other base is named by its path,
    which :func:`load_lora_lm` accepts only as a folder inside the checkpoint (copy the
    base there before the checkpoint travels).
    """
    from dialog_env.lm.model_files import directory_sha256

    base_dir = Path(base_dir).resolve()
    here = Path.cwd().resolve()
    shipped = {d.resolve(): name for name, d in shipped_bases().items()}
    if base_dir in shipped:
        name = shipped[base_dir]
    elif base_dir.is_relative_to(here):
        name = str(base_dir.relative_to(here))
    else:
        name = str(base_dir)
    return {"base_model": name, "base_sha256": directory_sha256(base_dir)}


def save_lora(out: str | Path, model: Any, embedding_rows: tuple[Any, Any] | None = None) -> None:
    """Write ``model``'s adapter (and the embedding rows ``(ids, rows)`` set on its base)
    to ``out/adapter/`` as safetensors."""
    from safetensors.torch import save_file

    adapter = Path(out) / ADAPTER_SUBDIR
    model.save_pretrained(adapter, safe_serialization=True)
    if not (adapter / ADAPTER_WEIGHTS).is_file():
        raise RuntimeError(f"PEFT wrote no {ADAPTER_WEIGHTS} in {adapter}")
    (adapter / "README.md").unlink(missing_ok=True)  # PEFT's hub model card: not ours
    if embedding_rows is not None:
        ids, rows = embedding_rows
        tensors = {"ids": ids.detach().to("cpu").long().contiguous()}
        tensors["rows"] = rows.detach().to("cpu").contiguous()
        save_file(tensors, str(adapter / EMBEDDING_ROWS))


def _adapter_config(adapter: Path) -> dict[str, Any]:
    """The checked fields of ``adapter_config.json`` that build the LoRA layers; every
    other field PEFT writes is ignored, so none of them can steer what gets built."""
    path = adapter / ADAPTER_CONFIG
    if not path.is_file() or not (adapter / ADAPTER_WEIGHTS).is_file():
        raise ValueError(f"{adapter} must hold {ADAPTER_CONFIG} and {ADAPTER_WEIGHTS}")
    raw = read_json_file(path, 1 << 20)
    if not isinstance(raw, dict) or raw.get("peft_type") != "LORA":
        raise ValueError(f'{path}: not a LoRA adapter config ("peft_type": "LORA")')
    rank, alpha, dropout = raw.get("r"), raw.get("lora_alpha"), raw.get("lora_dropout", 0.0)
    targets = raw.get("target_modules")
    if not isinstance(rank, int) or isinstance(rank, bool) or not 1 <= rank <= _MAX_RANK:
        raise ValueError(f"{path}: r must be an integer in 1-{_MAX_RANK}, got {rank!r}")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha <= 1e4:
        raise ValueError(f"{path}: lora_alpha must be a number in (0, 10000], got {alpha!r}")
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"{path}: lora_dropout must be in [0, 1), got {dropout!r}")
    names_ok = isinstance(targets, list) and all(
        isinstance(t, str) and _MODULE_NAME.fullmatch(t) for t in targets
    )
    if not (targets == "all-linear" or names_ok and 0 < len(targets) <= 10_000):
        raise ValueError(f"{path}: target_modules must be a list of module names")
    return {"r": rank, "lora_alpha": alpha, "lora_dropout": dropout, "target_modules": targets}


def load_lora_lm(directory: str | Path, config: dict[str, Any], device: str = "cpu"):
    """The merged model and the tokenizer of the LoRA checkpoint ``directory``.

    Raises ``ValueError`` when the base is neither shipped nor inside ``directory``, its
    sha256 is not the one the checkpoint records, or the adapter files are malformed.
    """
    import torch
    from safetensors.torch import load_file

    from agents.checkpoint import resolve_named_dir
    from dialog_env.lm.loading import load_causal_lm
    from dialog_env.lm.model_files import check_safetensors, directory_sha256

    peft = _require_peft()
    directory = Path(directory)
    base_dir = resolve_named_dir(directory, "base_model", config["base_model"], shipped_bases())
    found = directory_sha256(base_dir)
    if found != config["base_sha256"]:
        raise ValueError(
            f"{directory}: its LoRA adapter was trained on a base with sha256 "
            f"{config['base_sha256'][:12]}..., but {base_dir} has {found[:12]}...: refusing to "
            "apply an adapter to other weights (name the base it was trained on)"
        )
    adapter = directory / ADAPTER_SUBDIR
    lora_fields = _adapter_config(adapter)
    check_safetensors(adapter / ADAPTER_WEIGHTS)
    base = load_causal_lm(base_dir, device)
    if base.style != "voice":
        raise ValueError(f"{base_dir} is not in dialog-bench's LM format")
    model = copy.deepcopy(base.model)  # the cached base stays as it is for its other users
    rows_file = adapter / EMBEDDING_ROWS
    if rows_file.is_file():
        check_safetensors(rows_file)
        saved = load_file(str(rows_file), device=device)
        weight = model.get_input_embeddings().weight
        ids, rows = saved.get("ids"), saved.get("rows")
        if (
            ids is None
            or rows is None
            or ids.dtype != torch.long
            or ids.ndim != 1
            or rows.shape != (len(ids), weight.shape[1])
            or (len(ids) > 0 and not 0 <= int(ids.min()) <= int(ids.max()) < weight.shape[0])
        ):
            raise ValueError(f"{rows_file}: ids and rows do not fit the base's embeddings")
        with torch.no_grad():
            weight[ids] = rows.to(weight.dtype)
    lora_config = peft.LoraConfig(bias="none", task_type="CAUSAL_LM", **lora_fields)
    wrapped = peft.get_peft_model(model, lora_config)
    state = load_file(str(adapter / ADAPTER_WEIGHTS), device=device)
    result = peft.set_peft_model_state_dict(wrapped, state)
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    missing = [k for k in getattr(result, "missing_keys", []) or [] if "lora_" in k]
    if unexpected or missing:
        shown = ", ".join((unexpected + missing)[:3])
        raise ValueError(f"{adapter / ADAPTER_WEIGHTS} does not fit its base: {shown}")
    merged = wrapped.merge_and_unload().eval()
    merged.requires_grad_(False)
    return merged, base.tokenizer


def describe(model: Any) -> str:
    """``"trainable T of N parameters (P%)"`` for logs."""
    trainable, total = count_parameters(model)
    return f"trainable {trainable:,} of {total:,} parameters ({100 * trainable / total:.2f}%)"
