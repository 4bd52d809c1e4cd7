"""``dialog-bench run`` in worker processes gives the results of one process."""

from __future__ import annotations

import json
import os
import re

import pytest

from leaderboard.run import run_baselines
from leaderboard.store import LeaderboardStore
from leaderboard.workers import memory_summary


def _results(runs):
    out = {}
    for run in runs:
        assert run.error is None, run.error
        results = json.loads(run.results_path.read_text())
        results["header"].pop("created")  # when it was made: the one field that differs
        out[run.baseline] = results
    return out


def test_workers_give_the_results_of_one_process(tmp_path):
    baselines = ["expert", "random", "noisy-expert"]
    one = run_baselines(
        baselines,
        LeaderboardStore(tmp_path / "one.sqlite"),
        tmp_path / "one",
        limit=3,
        progress=False,
    )
    two = run_baselines(
        baselines,
        LeaderboardStore(tmp_path / "two.sqlite"),
        tmp_path / "two",
        limit=3,
        progress=False,
        workers=2,
    )
    assert [r.baseline for r in two] == baselines  # in the order asked, not of finishing
    assert _results(one) == _results(two)
    # Each run says which process played it and that process's memory after it.
    assert {r.pid for r in one} == {os.getpid()} and os.getpid() not in {r.pid for r in two}
    assert all(r.rss_mib > 50 for r in one + two)  # torch alone is more
    line = memory_summary(two)
    assert line.startswith("RSS after each baseline (MiB): ")
    assert sorted(re.findall(r"([a-z-]+) \d+", line)) == sorted(baselines)
    assert [e.name for e in LeaderboardStore(tmp_path / "two.sqlite").entries()] == sorted(
        baselines
    )


def test_workers_give_an_lm_agents_and_a_chat_baselines_results_of_one_process(tmp_path):
    """LM decoding and the chat task's learned reward are where a thread count moves the
    last bits of a float: a worker runs with its share of the threads, this process with
    its own, and the files must not differ in a bit."""
    jobs = ["sft-expert", ("sft-chat", "Dialog-Chat-v1")]

    def run(where: str, workers: int):
        return run_baselines(
            jobs,
            LeaderboardStore(tmp_path / f"{where}.sqlite"),
            tmp_path / where,
            limit=2,
            progress=False,
            workers=workers,
        )

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # here 2 threads; each of the 2 workers gets 1 (its share)
    try:
        one = run("one", 1)
    finally:
        torch.set_num_threads(threads)
    two = run("two", 2)
    assert [r.baseline for r in two] == ["sft-expert", "sft-chat"]
    assert _results(one) == _results(two)
    chat = _results(one)["sft-chat"]
    assert chat["header"]["env_id"] == "Dialog-Chat-v1"
    assert any(r != round(r, 6) for ep in chat["episodes"] for r in ep["rewards"])  # RM floats


def test_a_progress_callable_is_told_every_finished_episode():
    from leaderboard.episodes import get_episode_set
    from leaderboard.evaluate import evaluate_agent
    from leaderboard.verify import verify_results

    ticks = []
    results = evaluate_agent(
        "expert",
        get_episode_set("Dialog-v1", "dev", limit=5),
        batch_size=2,
        progress=ticks.append,
    )
    assert sum(ticks) == 5 and len(ticks) >= 3  # told as episodes end, not once at the end
    verify_results(results, progress=ticks.append)
    assert sum(ticks) == 10


@pytest.mark.parametrize("remember", [True, False])
def test_a_job_remembers_turns_only_when_asked_and_only_while_it_runs(tmp_path, remember):
    """``remember`` is passed in, not a global switched around the job: with it the job's
    voice and RM memos are on while it plays (the replay reads its play's turns), without
    it every turn is decoded (a benchmark of the decode); after it, both are off again."""
    from dialog_env.lm import voice
    from dialog_env.tasks.chat import reward_model
    from leaderboard.workers import run_one

    seen = []
    real = voice.LMVoice.sample_batch

    def spy(self, turns, rngs):
        seen.append((voice._memo.on, reward_model._memo.on))
        return real(self, turns, rngs)

    voice.LMVoice.sample_batch = spy
    try:
        args = ("expert", tmp_path / "lb.sqlite", tmp_path, ("Dialog-v1", "test", 2), 2, False)
        run = run_one(*args, remember=remember)
    finally:
        voice.LMVoice.sample_batch = real
    assert run.error is None and run.outcome.episodes == 2
    assert list(run.cpu) == ["play", "write", "verify", "store"] and run.cpu["play"] > 0
    assert seen and all(on == (remember, remember) for on in seen)
    assert (voice._memo.on, reward_model._memo.on) == (False, False) and not voice._memo
