"""Checks of a model or checkpoint directory's files, before anything in them is loaded.

A directory from outside can lie in its files as well as its configs: a symlink to a
system file, a shard index that points out of the directory or at a pickle, a
safetensors header that claims 2**62 bytes, a truncated weights file, a malformed or
enormous ``tokenizer.json``, a config that describes a model a thousand times larger
than its weights. Each check here reads only headers and JSON, refuses with a one-line
``ValueError`` that names the file, and runs before transformers, safetensors or torch
see the directory.

- :func:`checked_files`: every file of a checkpoint directory, symlinks resolved; any
  that leads outside the directory, a symlinked directory, a special file, too many
  files or too many bytes is refused. What this returns is all a loader may open, and
  what a checkpoint's model hash covers; :func:`copy_checked` copies exactly those.
- :func:`directory_sha256`: the sha256 over those files (a checkpoint's model hash, and
  the base-model hash a LoRA adapter records).
- :func:`check_safetensors`: a safetensors file's header against its size.
- :func:`check_weights`: the weights of a transformers directory: safetensors only, a
  shard index naming only ``.safetensors`` files in the directory.
- :func:`check_tokenizer_json`: size cap and the structure transformers reads.
- :func:`check_model_config`: architecture sizes within bounds and in proportion to
  the weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import struct
from pathlib import Path, PurePosixPath
from typing import Any

from dialog_env.bounded_json import read_json_file

__all__ = [
    "MAX_CHECKPOINT_BYTES",
    "MAX_CHECKPOINT_FILES",
    "MAX_TOKENIZER_BYTES",
    "WEIGHTS_INDEX",
    "check_model_config",
    "check_safetensors",
    "check_tokenizer_json",
    "check_weights",
    "checked_files",
    "copy_checked",
    "directory_sha256",
    "file_sha256",
]

#: A checkpoint (or model) directory holding more than this is refused before it is read.
MAX_CHECKPOINT_BYTES = 16 << 30
MAX_CHECKPOINT_FILES = 10_000
#: ``tokenizer.json`` larger than this is refused unread (large vocabularies take ~35 MB).
MAX_TOKENIZER_BYTES = 64 << 20
#: JSON configs (``config.json``, an index, ``tokenizer_config.json``) are small.
MAX_CONFIG_BYTES = 16 << 20
WEIGHTS_INDEX = "model.safetensors.index.json"
#: A safetensors header is JSON naming each tensor; larger than this is refused unread.
_MAX_HEADER_BYTES = 100 << 20
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2,
    "BF16": 2, "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip
#: transformers config fields that size a model, by any of their names, and their bounds.
_SIZE_FIELDS = {
    ("vocab_size",): 1 << 21,
    ("hidden_size", "n_embd", "d_model"): 1 << 16,
    ("num_hidden_layers", "n_layer", "num_layers"): 1 << 10,
    ("num_attention_heads", "n_head", "num_key_value_heads"): 1 << 10,
    ("intermediate_size", "n_inner", "ffn_dim"): 1 << 20,
    ("max_position_embeddings", "n_positions", "n_ctx"): 1 << 21,
}
#: A config may describe at most this many times the parameters its weights hold
#: (grouped-query attention has fewer than the estimate, which assumes full heads).
_PARAMS_SLACK = 4


def checked_files(
    root: str | Path, max_bytes: int = MAX_CHECKPOINT_BYTES, max_files: int = MAX_CHECKPOINT_FILES
) -> list[tuple[str, Path]]:
    """``(relative path, path)`` of every file below ``root``, in path order (by parts).

    A symlink is followed only to a regular file inside ``root`` (after resolving every
    link); one that leads outside, dangles, or names a directory is refused, as is any
    special file (FIFO, device, socket). The sizes are read from ``stat`` (a sparse
    1 TiB file is refused at once, not read), summed and held to ``max_bytes``.
    """
    top = Path(root)
    base = top.resolve()
    found: list[tuple[str, Path]] = []
    total = 0
    pending = [top]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as err:
            raise ValueError(f"{directory}: cannot be listed ({err.strerror})") from None
        for entry in entries:
            path = Path(entry.path)
            rel = path.relative_to(top).as_posix()
            if entry.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):  # dangling, or a loop of links
                    raise ValueError(f"{path} is a dangling or looping symlink") from None
                if not target.is_relative_to(base):
                    raise ValueError(
                        f"{path} links outside the checkpoint directory (to {target}); "
                        "every file a checkpoint loads must lie inside it"
                    )
                if target.is_dir():
                    raise ValueError(f"{path} links to a directory; only files may be links")
            info = path.stat()
            if stat.S_ISDIR(info.st_mode):
                pending.append(path)
                continue
            if not stat.S_ISREG(info.st_mode):
                raise ValueError(f"{path} is not a regular file")
            found.append((rel, path))
            total += info.st_size
            if len(found) > max_files:
                raise ValueError(f"{top} holds more than {max_files} files")
            if total > max_bytes:
                raise ValueError(f"{top} holds more than {max_bytes} bytes (the limit)")
    return sorted(found, key=lambda f: PurePosixPath(f[0]).parts)


def copy_checked(root: str | Path, into: str | Path) -> Path:
    """Copy the :func:`checked_files` of ``root`` into directory ``into`` (as regular files).

    Each file is checked again as it is opened (its resolved path inside ``root``, opened
    without following a link) and copied up to the size it had when the directory was
    walked, so a file swapped for a link, or grown, meanwhile is refused, not read: what
    lands in ``into`` is what the walk allowed, ready to be hashed and loaded.
    """
    base, into = Path(root).resolve(), Path(into)
    for rel, path in checked_files(root):
        target = path.resolve()
        if not target.is_relative_to(base):
            raise ValueError(f"{path} now links outside the checkpoint directory")
        size = target.stat().st_size
        try:
            fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as err:
            raise ValueError(f"{path}: cannot be opened ({err.strerror})") from None
        dest = into / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(fd, "rb") as src, dest.open("wb") as out:
            left = size
            while left > 0 and (block := src.read(min(left, 1 << 20))):
                out.write(block)
                left -= len(block)
            if src.read(1):
                raise ValueError(f"{path} grew while it was copied")
    return into


def file_sha256(path: str | Path) -> str:
    """The sha256 of one file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def directory_sha256(directory: str | Path) -> str:
    """sha256 over every file below ``directory``: ``relpath NUL sha256(content) LF`` each.

    The files are those :func:`checked_files` allows, which are all a checkpoint loader
    may open: a link that leads out of the directory is refused, not followed, and the
    total size is bounded before a byte is hashed.
    """
    digest = hashlib.sha256()
    for rel, path in checked_files(directory):
        digest.update(f"{rel}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def check_safetensors(path: str | Path) -> int:
    """The number of elements in safetensors file ``path``, after checking its header.

    The header (an 8-byte length, then JSON) must fit in the file; every tensor must have
    a known dtype, a shape of non-negative integers and data offsets that tile the data
    area exactly, in bounds. Nothing but the header is read.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError(f"{size} bytes, too short for a safetensors header")
            (length,) = struct.unpack("<Q", head)
            if length > min(_MAX_HEADER_BYTES, size - 8):
                raise ValueError(
                    f"its header claims {length} bytes but the file has {size - 8} after the "
                    "length (truncated, or not a safetensors file)"
                )
            header = json.loads(fh.read(length).decode("utf-8"))
        return _check_header(header, size - 8 - length)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _check_header(header: Any, data_bytes: int) -> int:
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    spans, numel = [], 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise ValueError(f"tensor {name!r} has no dtype, shape and offsets")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _DTYPE_BYTES:
            raise ValueError(f"tensor {name!r} has an unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            raise ValueError(f"tensor {name!r} has a malformed shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)
        ):
            raise ValueError(f"tensor {name!r} has malformed data offsets {offsets!r}")
        count = math.prod(shape)
        begin, end = offsets
        if not 0 <= begin <= end <= data_bytes or end - begin != count * _DTYPE_BYTES[dtype]:
            raise ValueError(
                f"tensor {name!r} ({dtype} {shape}) claims bytes {begin}-{end} of a data area "
                f"of {data_bytes} (truncated or corrupt)"
            )
        spans.append((begin, end))
        numel += count
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise ValueError("its tensors overlap or leave gaps in the data area")
        position = end
    if position != data_bytes:
        raise ValueError(f"its tensors cover {position} of {data_bytes} data bytes")
    return numel


def check_weights(directory: str | Path) -> int:
    """The elements of a transformers directory's safetensors weights, all checked.

    With a shard index (``model.safetensors.index.json``), every shard it names must be a
    ``.safetensors`` file directly in ``directory`` (a plain name: no path, no ``..``):
    transformers would otherwise open a shard outside the directory, or pass a pickle to
    ``torch.load``. Without one, ``model.safetensors`` (or every ``*.safetensors``).
    """
    directory = Path(directory)
    index = directory / WEIGHTS_INDEX
    if index.is_file():
        data = read_json_file(index, MAX_CONFIG_BYTES)
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{index}: no weight_map of tensor names to shard files")
        shards = set()
        for shard in weight_map.values():
            if not isinstance(shard, str) or Path(shard).name != shard or shard in ("", "..", "."):
                raise ValueError(
                    f"{index}: shard {str(shard)[:80]!r} is not a file name in the model "
                    "directory; shards must lie beside the index"
                )
            if not shard.endswith(".safetensors"):
                raise ValueError(
                    f"{index}: shard {shard!r} is not a .safetensors file; only safetensors "
                    "weights are loaded (anything else would be unpickled)"
                )
            if not (directory / shard).is_file():
                raise ValueError(f"{index}: shard {shard!r} is missing")
            shards.add(shard)
        files = [directory / s for s in sorted(shards)]
    elif (directory / "model.safetensors").is_file():
        files = [directory / "model.safetensors"]
    else:
        files = sorted(directory.glob("*.safetensors"))
    return sum(check_safetensors(f) for f in files)


def check_tokenizer_json(path: str | Path) -> None:
    """``tokenizer.json`` within :data:`MAX_TOKENIZER_BYTES`, with the structure
    transformers reads (a ``model`` object with a ``type``, an ``added_tokens`` list of
    ``{"id": int, "content": str}``): else a ``ValueError`` naming the file."""
    data = read_json_file(path, MAX_TOKENIZER_BYTES)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a tokenizer (a JSON object)")
    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("type"), str):
        raise ValueError(f'{path}: no "model" object with a "type": not a tokenizers file')
    added = data.get("added_tokens")
    if not isinstance(added, list) or not all(
        isinstance(t, dict)
        and isinstance(t.get("id"), int)
        and not isinstance(t.get("id"), bool)
        and isinstance(t.get("content"), str)
        for t in added
    ):
        raise ValueError(f'{path}: "added_tokens" must be a list of {{"id", "content"}} objects')


def check_model_config(config: dict[str, Any], path: str | Path, weights_numel: int) -> None:
    """A transformers ``config.json``'s sizes: each a positive integer within its bound,
    and the model they describe at most a few times what the weights hold (a config of
    ``hidden_size`` 65536 over tiny weights would allocate tens of GB, then fail)."""
    sizes: dict[str, int] = {}
    for names, bound in _SIZE_FIELDS.items():
        for name in names:
            value = config.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= bound:
                raise ValueError(f"{path}: {name} must be an integer in 1-{bound}, got {value!r}")
            sizes.setdefault(names[0], value)
    hidden, layers = sizes.get("hidden_size"), sizes.get("num_hidden_layers")
    if hidden and layers:
        inner = sizes.get("intermediate_size", 4 * hidden)
        estimate = layers * (4 * hidden * hidden + 2 * hidden * inner)
        estimate += sizes.get("vocab_size", 0) * hidden
        if estimate > _PARAMS_SLACK * weights_numel + 1_000_000:
            raise ValueError(
                f"{path} describes a model of about {estimate:.3g} parameters, but its "
                f"weights hold {weights_numel:.3g}: the config does not belong to them"
            )
