"""``--ray``: an episode set played on Ray actors gives the local run's results file, byte
for byte; without Ray the flag says how to install it.

Each Ray actor starts a Python with torch and the env's LM (about 30 s on a busy 2-core
machine), so only the ``evaluate --ray`` comparisons (the expert; ``sft-chat``, an LM agent
on the chat task, whose learned reward's floats are where thread counts would show) are in
the default run; the random agent's and ``run --ray``'s are ``slow``
(``pytest -m slow tests/leaderboard/test_ray_runner.py``)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import pytest

from dialog_bench.cli import main as cli
from leaderboard.episodes import get_episode_set
from leaderboard.evaluate import evaluate_agent
from leaderboard.ray_runner import shard_seeds
from leaderboard.results import write_results


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def fixed_clock(monkeypatch):
    """``created`` is when a results file was made: the one field two runs differ in."""

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 1, 1, tzinfo=timezone.utc)

    monkeypatch.setattr("leaderboard.evaluate.datetime", Clock)


def test_shards_are_contiguous_cover_every_seed_and_refuse_zero_actors():
    seeds = list(range(10, 17))
    for n in (1, 2, 3, 7, 20):
        shards = shard_seeds(seeds, n)
        assert [s for shard in shards for s in shard] == seeds
        assert len(shards) <= n and all(shards)
    with pytest.raises(ValueError, match="at least 1"):
        shard_seeds(seeds, 0)


def test_evaluate_on_ray_writes_the_local_results_file(local_ray, fixed_clock, tmp_path):
    episode_set = get_episode_set("Dialog-v1", "dev", limit=6)
    local = write_results(tmp_path / "local.json", evaluate_agent("expert", episode_set, 4, False))
    out = tmp_path / "ray.json"
    argv = ["evaluate", "expert", "--episodes", "dev", "--limit", "6", "--batch-size", "4"]
    assert cli([*argv, "--ray", "--ray-actors", "2", "--out", str(out), "--quiet"]) == 0
    assert out.read_bytes() == local.read_bytes()


def test_an_lm_agent_on_the_chat_task_on_ray_plays_as_it_does_locally(local_ray, fixed_clock):
    """LM decoding and the learned reward's floats, in actors of one thread each against
    this process's threads: the records must not differ in a bit."""
    episode_set = get_episode_set("Dialog-Chat-v1", "dev", limit=4)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # here 2 threads, in each actor 1
    try:
        local = evaluate_agent("sft-chat", episode_set, 4, False)
    finally:
        torch.set_num_threads(threads)
    on_ray = evaluate_agent("sft-chat", episode_set, 4, False, ray="local", ray_actors=2)
    assert on_ray == local
    assert local["header"]["evaluation"]["agent_calls"] == "act_batch"  # the batched LM path


@pytest.mark.slow
def test_a_stochastic_agent_on_ray_plays_as_it_does_locally(local_ray, fixed_clock, tmp_path):
    episode_set = get_episode_set("Dialog-v1", "dev", limit=5)
    local = evaluate_agent("random", episode_set, 8, False)
    on_ray = evaluate_agent("random", episode_set, 8, False, ray="local", ray_actors=2)
    assert on_ray == local
    assert len({len(ep["turns"]) for ep in local["episodes"]}) > 1  # not one trivial episode


@pytest.mark.slow
def test_run_on_ray_verifies_and_stores_the_local_results(local_ray, fixed_clock, tmp_path):
    from leaderboard.run import run_baselines
    from leaderboard.store import LeaderboardStore

    def run(where, **ray):
        store = LeaderboardStore(tmp_path / where / "lb.sqlite")
        runs = run_baselines(
            ["expert"], store, tmp_path / where, episodes="dev", limit=4, progress=False, **ray
        )
        assert runs[0].error is None and runs[0].outcome is not None
        return runs[0].results_path.read_bytes()

    assert run("ray", ray="local", ray_actors=2) == run("local")


def test_ray_flag_without_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ValueError, match=r"pip install 'dialog-bench\[ray\]'"):  # one line
        evaluate_agent("expert", get_episode_set("Dialog-v1", "dev", limit=1), ray="local")
