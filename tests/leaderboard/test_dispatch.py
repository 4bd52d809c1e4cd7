"""``dialog-bench run`` hands its workers the jobs longest first, by an estimate known
before the run, in an order that depends on nothing else."""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path

import pytest

from leaderboard.dispatch import (
    AGENT_SECONDS_PER_MB,
    ENV_SECONDS_PER_MB,
    UNPUBLISHED_MB,
    dispatch_order,
    expected_cost,
    simulate_dispatch,
)
from leaderboard.run import shipped_runs


def _shipped_costs():
    jobs = shipped_runs()
    return jobs, [expected_cost(baseline, env_id) for baseline, env_id in jobs]


def test_the_shipped_jobs_go_longest_first_in_one_order():
    jobs, costs = _shipped_costs()
    order = dispatch_order(costs)
    assert sorted(order) == list(range(len(jobs)))
    assert [costs[i] for i in order] == sorted(costs, reverse=True)
    assert order == dispatch_order(list(costs)) == dispatch_order(_shipped_costs()[1])
    first, last = jobs[order[0]][0], jobs[order[-1]][0]
    assert Path(first).name == "bon-chat"  # the best-of-n row: 4 LM candidates a reply
    assert isinstance(last, str)  # a built-in rule ends the run, not an LM agent


def test_equal_costs_keep_their_given_order():
    assert dispatch_order([1.0, 3.0, 1.0, 3.0, 2.0]) == [1, 3, 4, 0, 2]


def _write_bytes(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b" " * size)


def _checkpoint(root: Path, name: str, config: dict) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def test_the_estimate_follows_the_published_file_and_the_candidates(tmp_path):
    published = tmp_path / "published"
    bon = _checkpoint(tmp_path, "bon-x", {"agent": "best-of-n", "base": "sft-chat", "n": 4})
    _write_bytes(published / "results" / "Dialog-Chat-v1" / "bon-x.json", 1_000_000)
    _write_bytes(published / "results" / "Dialog-v1" / "expert.json", 2_000_000)

    chat, booking = ENV_SECONDS_PER_MB["Dialog-Chat-v1"], ENV_SECONDS_PER_MB["Dialog-v1"]
    bon_cost = expected_cost(bon, "Dialog-Chat-v1", published)
    assert bon_cost == pytest.approx(chat + 4 * AGENT_SECONDS_PER_MB["best-of-n"])
    # A built-in with a file twice as large, and the same one not published yet.
    assert expected_cost("expert", "Dialog-v1", published) == pytest.approx(2 * booking)
    assert expected_cost("random", "Dialog-v1", published) == pytest.approx(
        UNPUBLISHED_MB * booking
    )
    # A checkpoint whose config cannot be read still gets a turn, as an LM would.
    assert expected_cost(tmp_path / "missing", "Dialog-v1", published) == pytest.approx(
        UNPUBLISHED_MB * (booking + AGENT_SECONDS_PER_MB["lm"])
    )


def test_longest_first_ends_the_shipped_run_sooner_than_the_given_order():
    _, costs = _shipped_costs()
    given = simulate_dispatch(costs, workers=2)
    longest_first = simulate_dispatch(costs, workers=2, order=dispatch_order(costs))
    assert longest_first.makespan <= given.makespan
    assert longest_first.idle_tail <= min(costs)  # at most the last (shortest) job


def test_the_simulation_starts_each_job_on_the_first_free_worker():
    plan = simulate_dispatch([3.0, 1.0, 1.0, 2.0], workers=2)
    assert plan.finish == (3.0, 4.0) and plan.makespan == 4.0 and plan.idle_tail == 1.0
    with pytest.raises(ValueError, match="workers must be >= 1"):
        simulate_dispatch([1.0], workers=0)


def test_the_worker_pool_is_handed_the_jobs_longest_first(monkeypatch, tmp_path):
    """The pool starts jobs in the order they are submitted: that order is the estimate's."""
    import concurrent.futures

    from leaderboard import workers

    submitted = []

    class InlinePool:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, ticks, remember, baseline, *rest):
            submitted.append(baseline)
            future = Future()
            future.set_result(workers.BaselineRun(str(baseline), None, None, None, 0.0))
            return future

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", InlinePool)
    jobs = [("random", ("Dialog-v1", "test", 1)), ("sft-noisy", ("Dialog-v1", "test", 1))]
    jobs.append(("bon-chat", ("Dialog-Chat-v1", "test", 1)))

    class Bar:
        def update(self, n):
            pass

        def set_postfix_str(self, s):
            pass

    runs = workers.run_jobs(jobs, tmp_path / "lb.sqlite", tmp_path, 2, Bar(), workers=2)
    assert submitted == ["bon-chat", "sft-noisy", "random"]
    assert [run.baseline for run in runs] == ["random", "sft-noisy", "bon-chat"]  # job order
