"""Other entry points (issue 30): demo, prefs and Minari metadata, ``--ray`` and ``device``.

Each hostile input gets one line (a ``ValueError`` the CLI prints), never a traceback, a
module import named by a file, or a half-minute wait.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dialog_env  # noqa: F401
import leaderboard.ray_runner as ray_runner
from baselines.demos import load_demos, replay_demo
from baselines.prefs import load_prefs
from dialog_bench.cli import main as cli
from dialog_env.registration import ALIASES, ENV_IDS

GOOD_META = {
    "format": "dialog-bench demos v1",
    "env_id": "Dialog-v1",
    "env_spec": {"kwargs": {"split": "train", "user_model": "template"}},
}
RECORD = {"seed": 3, "turns": [{"role": "assistant", "text": "hello"}]}


@pytest.fixture()
def trap(tmp_path, monkeypatch) -> Path:
    """A module ``somemod`` on the path that leaves a mark when it is imported."""
    mark = tmp_path / "imported"
    (tmp_path / "somemod.py").write_text(f"open({str(mark)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return mark


def _demo_file(tmp_path: Path, meta, name: str = "demos") -> Path:
    path = tmp_path / f"{name}.jsonl"
    body = (json.dumps(RECORD) + "\n").encode()
    path.write_bytes(body)
    if isinstance(meta, dict):
        meta = {**meta, "sha256": hashlib.sha256(body).hexdigest()}
    text = meta if isinstance(meta, str) else json.dumps(meta)
    path.with_suffix(".meta.json").write_text(text)
    return path


HOSTILE_META = {
    "an array": ([], "must be an object, got an array"),
    "deep nesting": ("[" * 100_000 + "]" * 100_000, "nested deeper than"),
    "a module part": ({**GOOD_META, "env_id": "somemod:Dialog-v1"}, "env_id must be one of"),
    "no env spec": ({"format": "f", "env_id": "Dialog-v1"}, "missing 'env_spec'"),
    "kwargs a list": ({**GOOD_META, "env_spec": {"kwargs": []}}, "kwargs must be an object"),
    "not JSON": ("{'a': 1", "meta.json: "),
}


@pytest.mark.parametrize("what", sorted(HOSTILE_META))
def test_hostile_metadata_is_one_line_and_imports_nothing(what, tmp_path, trap):
    meta, reason = HOSTILE_META[what]
    path = _demo_file(tmp_path, meta)
    for load in (load_demos, load_prefs):
        with pytest.raises(ValueError, match=reason) as err:
            load(path)
        assert "\n" not in str(err.value)
    assert not trap.exists()


def test_replay_demo_never_hands_gymnasium_a_module_part(trap):
    with pytest.raises(ValueError, match="env_id must be one of"):
        replay_demo(RECORD, {**GOOD_META, "env_id": "somemod:Dialog-v1"})
    assert not trap.exists()
    env = gym.make("Dialog-v1", split="train", user_model="template")
    env.reset(seed=RECORD["seed"])
    assert replay_demo(RECORD, GOOD_META) == [env.step("hello")[1]]


def test_a_good_demo_file_still_loads(tmp_path):
    records, meta = load_demos(_demo_file(tmp_path, GOOD_META))
    assert list(records) == [RECORD] and meta["env_id"] == "Dialog-v1"


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "rm", "--prefs", "{path}", "--out", "{out}"],
        ["train", "sft", "--demos", "{path}", "--out", "{out}"],
        ["diagnose", "sft-expert", "--demos", "{path}"],
    ],
    ids=["train rm", "train sft", "diagnose"],
)
def test_the_commands_that_read_metadata_say_one_line(argv, tmp_path, capsys):
    path = _demo_file(tmp_path, "[" * 100_000 + "]" * 100_000)
    argv = [a.format(path=path, out=tmp_path / "out") for a in argv]
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "nested deeper than" in err and "\n" not in err and "Traceback" not in err


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    meta=st.recursive(
        st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from([*GOOD_META, "seeds", "sha256", "x"]), inner, max_size=4
            )
        ),
        max_leaves=12,
    )
)
def test_fuzz_any_metadata_loads_or_is_one_line(tmp_path_factory, meta):
    path = _demo_file(tmp_path_factory.mktemp("meta"), meta)
    for load in (load_demos, load_prefs):
        try:
            load(path)
        except ValueError as err:
            assert str(err) and "\n" not in str(err)


# -- --ray ------------------------------------------------------------------------------------
def test_ray_missing_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ValueError, match=r"^--ray needs Ray: pip install"):
        ray_runner.connect(ray_runner.LOCAL)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


@pytest.mark.parametrize("form", ["ray://127.0.0.1:{port}", "127.0.0.1:{port}"])
def test_an_unreachable_ray_address_is_one_line_fast(form, monkeypatch):
    pytest.importorskip("ray")
    address = form.format(port=_closed_port())
    start = time.perf_counter()
    with pytest.raises(ValueError, match=f"--ray {address}: cannot reach a Ray head"):
        ray_runner.connect(address)
    assert time.perf_counter() - start < ray_runner.CONNECT_TIMEOUT_S + 2
    import ray

    assert not ray.is_initialized()


def test_evaluate_with_an_unreachable_ray_prints_one_line(capsys):
    pytest.importorskip("ray")
    address = f"ray://127.0.0.1:{_closed_port()}"
    assert cli(["evaluate", "expert", "--ray", address, "--limit", "2", "--out", "-"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot reach a Ray head" in err and "\n" not in err


# -- device -----------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", sorted([*ENV_IDS, *ALIASES]))
def test_cuda_without_cuda_is_refused_at_make_time_by_every_id(env_id):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="torch sees no CUDA device here"):
        gym.make(env_id, device="cuda", user_model="template")
    with pytest.raises(ValueError, match="device must be"):
        gym.make(env_id, device=3, user_model="template")
    gym.make(env_id, device="cpu", user_model="template").close()
