"""Hostile checkpoint directories (issue 11): each is refused with a one-line ValueError
that names the file, before anything is built, and nothing outside the directory is read.

The regression tests name the failure they pin; the hypothesis tests corrupt copies of
the shipped checkpoints at random: each copy either loads or is refused cleanly, and no
file outside the copy is ever opened (an audit hook watches every ``open``).
"""

from __future__ import annotations

import json
import pickle
import shutil
import struct
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents import load_agent
from dialog_env.lm import TINY_MODEL_DIR
from dialog_env.lm.loading import ModelLoadError, load_causal_lm
from dialog_env.lm.model_files import (
    MAX_TOKENIZER_BYTES,
    check_safetensors,
    checked_files,
    copy_checked,
    directory_sha256,
)

SHIPPED = REPO_ROOT / "baselines" / "checkpoints"
SB3, LM = SHIPPED / "sb3-ppo", SHIPPED / "sft-expert"


def _copy(src: Path, tmp_path: Path, name: str = "ckpt") -> Path:
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def _refused(directory: Path, match: str) -> str:
    with pytest.raises(ValueError, match=match) as err:
        load_agent(directory)
    message = str(err.value)
    assert "\n" not in message
    return message


def _edit_json(path: Path, **fields) -> None:
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))


class _Touch:
    """A pickle payload: unpickling it creates ``path``."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# -- the model hash binds what runs -------------------------------------------------------
def test_a_shard_index_cannot_point_outside_the_directory(tmp_path):
    """Was: ../../outside.safetensors in model.safetensors.index.json loaded, uncovered by
    the model hash."""
    ckpt = _copy(LM, tmp_path)
    weights = ckpt / "lm" / "model.safetensors"
    shutil.move(weights, tmp_path / "outside.safetensors")
    index = {"weight_map": {"gpt_neox.embed_in.weight": "../../outside.safetensors"}}
    (ckpt / "lm" / "model.safetensors.index.json").write_text(json.dumps(index))
    _refused(ckpt, r"shard '\.\./\.\./outside\.safetensors' is not a file name in the model")
    # A link beside the index that leads out is refused by the directory walk.
    (ckpt / "lm" / "shard.safetensors").symlink_to(tmp_path / "outside.safetensors")
    index["weight_map"] = {"gpt_neox.embed_in.weight": "shard.safetensors"}
    (ckpt / "lm" / "model.safetensors.index.json").write_text(json.dumps(index))
    _refused(ckpt, r"lm/shard\.safetensors links outside the checkpoint directory")
    with pytest.raises(ValueError, match="links outside"):
        directory_sha256(ckpt)


def test_a_shard_that_is_not_safetensors_is_never_unpickled(tmp_path):
    """Was: a non-safetensors shard reached torch.load."""
    marker = tmp_path / "pwned"
    for directory in (_copy(LM, tmp_path) / "lm", _copy(TINY_MODEL_DIR, tmp_path, "tiny")):
        (directory / "model.safetensors").unlink()
        (directory / "weights.shard").write_bytes(pickle.dumps(_Touch(str(marker))))
        index = {"weight_map": {"gpt_neox.embed_in.weight": "weights.shard"}}
        (directory / "model.safetensors.index.json").write_text(json.dumps(index))
        with pytest.raises(ModelLoadError, match=r"shard 'weights\.shard' is not a \.safetensors"):
            load_causal_lm(directory)
    assert not marker.exists()


def test_the_hash_follows_no_link_out_and_is_bounded_by_the_size_limit(tmp_path):
    """Was: directory_sha256 followed symlinks out of the directory (a 1 TiB sparse target
    would hash for half an hour)."""
    ckpt = _copy(SB3, tmp_path)
    before = directory_sha256(ckpt)
    (tmp_path / "huge").touch()
    with (tmp_path / "huge").open("wb") as fh:
        fh.truncate(1 << 40)  # sparse: no disk, and it must not be read
    (ckpt / "notes.txt").symlink_to(tmp_path / "huge")
    with pytest.raises(ValueError, match=r"notes\.txt links outside the checkpoint directory"):
        directory_sha256(ckpt)
    (ckpt / "notes.txt").unlink()
    shutil.move(tmp_path / "huge", ckpt / "huge")
    with pytest.raises(ValueError, match=r"holds more than \d+ bytes \(the limit\)"):
        directory_sha256(ckpt)
    (ckpt / "huge").unlink()
    (ckpt / "copy.json").symlink_to(ckpt / "config.json")  # a link inside is hashed
    assert directory_sha256(ckpt) != before
    assert [rel for rel, _ in checked_files(ckpt)] == [
        "config.json",
        "copy.json",
        "manifest.json",
        "model.safetensors",
    ]


def test_a_symlinked_directory_and_special_files_are_refused(tmp_path):
    import os

    ckpt = _copy(SB3, tmp_path)
    (ckpt / "more").symlink_to(ckpt, target_is_directory=True)  # a loop, too
    _refused(ckpt, r"more links to a directory")
    (ckpt / "more").unlink()
    os.mkfifo(ckpt / "pipe")
    _refused(ckpt, r"pipe is not a regular file")


# -- corrupt weights, tokenizers and headers ------------------------------------------------
@pytest.mark.parametrize("src, weights", [(SB3, "model.safetensors"), (LM, "lm/model.safetensors")])
def test_corrupt_weights_are_refused_naming_the_file(tmp_path, src, weights):
    """Was: a raw SafetensorError for a truncated file, a link to a system text file, and a
    header that claims 2**62 bytes."""
    ckpt = _copy(src, tmp_path)
    path = ckpt / weights
    data = path.read_bytes()
    path.write_bytes(data[:100])
    _refused(ckpt, f"{path}: its header claims \\d+ bytes but the file has 92 after")
    path.write_bytes(struct.pack("<Q", 2**62) + data[8:])
    _refused(ckpt, f"{path}: its header claims 4611686018427387904 bytes")
    (length,) = struct.unpack("<Q", data[:8])
    path.write_bytes(data[: 8 + length] + data[8 + length : -4])  # the last tensor cut short
    _refused(ckpt, f"{path}: tensor .* claims bytes \\d+-\\d+ of a data area")
    path.unlink()
    path.symlink_to("/etc/passwd" if Path("/etc/passwd").is_file() else sys.executable)
    _refused(ckpt, f"{path} links outside the checkpoint directory")


def test_check_safetensors_counts_the_elements_of_a_good_file():
    assert check_safetensors(SB3 / "model.safetensors") > 4000


def test_a_malformed_or_oversized_tokenizer_is_refused_naming_the_file(tmp_path):
    """Was: KeyError('added_tokens'); and tokenizer.json had no size cap."""
    ckpt = _copy(LM, tmp_path)
    tokenizer = ckpt / "lm" / "tokenizer.json"
    data = json.loads(tokenizer.read_text())
    del data["added_tokens"]
    tokenizer.write_text(json.dumps(data))
    _refused(ckpt, f'{tokenizer}: "added_tokens" must be a list')
    tokenizer.write_text('{"model": {"type": "BPE"}, "added_tokens": [], "x": 1e999}')
    _refused(ckpt, f"{tokenizer}: number 1e999 is not finite")
    with tokenizer.open("wb") as fh:
        fh.truncate(MAX_TOKENIZER_BYTES + 1)
    _refused(ckpt, f"{tokenizer}: {MAX_TOKENIZER_BYTES + 1} bytes, over the limit")


def test_a_config_that_describes_another_model_is_refused_before_it_is_built(tmp_path):
    ckpt = _copy(LM, tmp_path)
    _edit_json(ckpt / "lm" / "config.json", hidden_size=65536)
    _refused(ckpt, r"lm/config\.json describes a model of about 6\.91e\+10 parameters")
    _edit_json(ckpt / "lm" / "config.json", hidden_size=128, num_hidden_layers=10**6)
    _refused(ckpt, r"num_hidden_layers must be an integer in 1-1024, got 1000000")


# -- configs checked field by field ---------------------------------------------------------
@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"net_arch": [200000, 200000]}, r"net_arch must be a list of 1-8 layer widths"),
        ({"net_arch": []}, r"net_arch must be a list of 1-8 layer widths"),
        ({"net_arch": [64] * 9}, r"net_arch must be a list of 1-8 layer widths"),
        ({"activation": "sigmoid"}, r"activation must be one of tanh, relu, got 'sigmoid'"),
        ({"algo": "sac"}, r"algo must be one of ppo, a2c, dqn"),
        ({"paradigm": "sft"}, r'paradigm must be "rl"'),
        ({"net_arch": [64, True]}, r"net_arch must be"),
        ({"policy_class": "os:system"}, r"unknown field 'policy_class'"),
    ],
)
def test_sb3_config_fields_are_bounded(tmp_path, fields, reason):
    """Was: net_arch [200000, 200000] tried to allocate 160 GB; activation "sigmoid" gave a
    KeyError."""
    ckpt = _copy(SB3, tmp_path)
    _edit_json(ckpt / "config.json", **fields)
    _refused(ckpt, f"{ckpt / 'config.json'}: {reason}")


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"max_new_tokens": 10**9}, r"max_new_tokens must be an integer in 1-1024, got 1000000000"),
        ({"max_new_tokens": -5}, r"max_new_tokens must be an integer in 1-1024, got -5"),
        ({"max_new_tokens": 64.5}, r"max_new_tokens must be an integer"),
        ({"max_new_tokens": 300}, r"max_new_tokens 300 is over half the model's context of 512"),
        ({"spell_codes": "yes"}, r"spell_codes must be true or false"),
        ({"paradigm": "oracle"}, r"paradigm must be one of reference, sft"),
        ({"trust_remote_code": True}, r"unknown field 'trust_remote_code'"),
    ],
)
def test_lm_config_fields_are_bounded(tmp_path, fields, reason):
    """Was: max_new_tokens 1e9 failed inside act, and -5 silently returned ''."""
    ckpt = _copy(LM, tmp_path)
    _edit_json(ckpt / "config.json", **fields)
    _refused(ckpt, f"{ckpt / 'config.json'}: {reason}")


# -- fuzzing: corrupted copies of the shipped checkpoints -----------------------------------
_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, Path)):
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)


def _files(src: Path) -> list[str]:
    return [rel for rel, _ in checked_files(src)]


def corruptions(src: Path):
    files = _files(src)
    configs = [f for f in files if f.endswith(".json")]
    value = st.one_of(
        st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.text(max_size=6),
        st.lists(st.integers(-5, 300_000), max_size=3),
    )  # fmt: skip
    return st.one_of(
        st.tuples(st.just("truncate"), st.sampled_from(files), st.floats(0, 1)),
        st.tuples(
            st.just("overwrite"),
            st.sampled_from(files),
            st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=8)),
        ),
        st.tuples(
            st.just("field"), st.sampled_from(configs), st.tuples(st.text(max_size=20), value)
        ),
        st.tuples(st.just("link out"), st.sampled_from(files), st.none()),
        st.tuples(st.just("index out"), st.just("lm" if "lm/config.json" in files else ""),
                  st.sampled_from(["../outside.safetensors", "/tmp/x.safetensors", "w.bin"])),
    )  # fmt: skip


def _corrupt(ckpt: Path, outside: Path, how: str, rel: str, arg) -> None:
    path = ckpt / rel
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: int(arg * path.stat().st_size)])
    elif how == "overwrite":
        data = bytearray(path.read_bytes())
        at = int(arg[0] * max(len(data) - 1, 0))
        data[at : at + len(arg[1])] = arg[1]
        path.write_bytes(bytes(data))
    elif how == "field":
        key, value = arg
        data = json.loads(path.read_text())
        if isinstance(data, dict) and key in data and value is None:
            del data[key]
        elif isinstance(data, dict):
            data[key or next(iter(data), "x")] = value
        path.write_text(json.dumps(data))
    elif how == "link out":
        path.unlink()
        path.symlink_to(outside)
    else:
        index = {"weight_map": {"w": arg}}
        (ckpt / rel / "model.safetensors.index.json").write_text(json.dumps(index))


@pytest.mark.parametrize("src, examples", [(SB3, 120), (LM, 40)], ids=["sb3", "lm"])
def test_every_corruption_loads_or_is_refused_cleanly_reading_nothing_outside(
    src, examples, tmp_path_factory
):
    global _OPENED

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(corruptions(src))
    def check(corruption):
        global _OPENED
        tmp = tmp_path_factory.mktemp("corrupt")
        outside = tmp / "outside.safetensors"
        shutil.copy(src / ("lm/model.safetensors" if src == LM else "model.safetensors"), outside)
        ckpt = _copy(src, tmp)
        _corrupt(ckpt, outside, *corruption)
        _OPENED = []
        try:
            load_agent(ckpt)
        except ValueError as err:
            message = str(err)
            assert message and "\n" not in message, corruption
        finally:
            opened, _OPENED = _OPENED, None
        assert not [p for p in opened if Path(p).resolve() == outside.resolve()], corruption

    try:
        check()
    finally:
        _OPENED = None


def test_the_private_copy_holds_exactly_the_checked_files_and_hashes_the_same(
    tmp_path, monkeypatch
):
    import dialog_env.lm.model_files as model_files

    ckpt = _copy(SB3, tmp_path)
    (ckpt / "copy.json").symlink_to(ckpt / "config.json")
    copy = copy_checked(ckpt, tmp_path / "copy")
    assert not any(p.is_symlink() for p in copy.rglob("*"))
    assert directory_sha256(copy) == directory_sha256(ckpt)
    # A file swapped for a link out after the walk is refused when it is opened.
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (ckpt / "late").symlink_to(outside)
    monkeypatch.setattr(model_files, "checked_files", lambda root: [("late", ckpt / "late")])
    with pytest.raises(ValueError, match="late now links outside the checkpoint directory"):
        copy_checked(ckpt, tmp_path / "copy2")
