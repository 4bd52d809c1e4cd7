"""The SQLite store: all-or-nothing writes, a kill mid-submit changes nothing, and four
concurrent submitters all land.

The helper processes run the submit's write step (``store_verified``) on results that the
test verified by replay once, beforehand: what is under test here is the store.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from leaderboard_helpers import dump_verified, real_results, write_json

from leaderboard.store import SCHEMA_VERSION, LeaderboardStore, NameTaken
from leaderboard.verify import verify_results_file

REPO = REPO_ROOT


@pytest.fixture(scope="module")
def results_file(tmp_path_factory) -> Path:
    return write_json(tmp_path_factory.mktemp("results") / "expert.json", real_results())


@pytest.fixture(scope="module")
def verified(results_file):
    return verify_results_file(results_file)


@pytest.fixture(scope="module")
def verified_file(verified, tmp_path_factory) -> Path:
    return dump_verified(verified, tmp_path_factory.mktemp("verified") / "verified.json")


def _table_counts(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        return (
            conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM episodes").fetchone()[0],
        )


class _FailingEpisodes(list):
    """Yields a few episodes to the INSERT, then fails (or kills the process)."""

    def __init__(self, episodes, after: int, kill: bool = False):
        super().__init__(episodes)
        self.after, self.kill = after, kill

    def __iter__(self):
        for i, episode in enumerate(list.__iter__(self)):
            if i == self.after:
                if self.kill:
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError("disk on fire")
            yield episode


def test_names_are_unique_per_episode_set_unless_replaced(tmp_path, verified):
    store = LeaderboardStore(tmp_path / "lb.sqlite")
    first = store.add(verified)
    with pytest.raises(NameTaken, match="already has an entry named 'expert'"):
        store.add(verified)
    store.add(verified, name="expert-again")
    second = store.add(verified, replace=True)
    assert second != first
    assert [e.name for e in store.entries()] == ["expert", "expert-again"]
    assert _table_counts(store.path) == (2, 2 * len(verified.episodes))


def test_an_error_mid_write_rolls_everything_back(tmp_path, verified):
    store = LeaderboardStore(tmp_path / "lb.sqlite")
    store.add(verified, name="kept")
    broken = dataclasses.replace(verified, episodes=_FailingEpisodes(verified.episodes, 3))
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.add(broken, name="lost")
    assert [e.name for e in store.entries()] == ["kept"]
    assert _table_counts(store.path) == (1, len(verified.episodes))


def test_a_replace_that_fails_keeps_the_old_entry(tmp_path, verified):
    store = LeaderboardStore(tmp_path / "lb.sqlite")
    store.add(verified)
    broken = dataclasses.replace(verified, episodes=_FailingEpisodes(verified.episodes, 2))
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.add(broken, replace=True)
    (entry,) = store.entries()
    assert len(entry.seeds) == len(verified.episodes)


_KILL_SCRIPT = textwrap.dedent(
    """
    import dataclasses, sys
    sys.path[:0] = [{tests!r}, {tests!r} + "/leaderboard"]
    from leaderboard_helpers import load_verified
    from test_leaderboard_store import _FailingEpisodes
    from leaderboard.store import LeaderboardStore
    verified = load_verified({verified!r})
    killing = _FailingEpisodes(verified.episodes, after=3, kill=True)
    LeaderboardStore({db!r}).add(dataclasses.replace(verified, episodes=killing), name="doomed")
    """
)


def test_a_kill_mid_submit_leaves_the_database_as_it_was(tmp_path, verified_file, verified):
    db = tmp_path / "lb.sqlite"
    store = LeaderboardStore(db)
    store.add(verified, name="before")
    before = [(e.name, e.seeds, e.returns) for e in store.entries()]
    script = _KILL_SCRIPT.format(tests=str(REPO / "tests"), verified=str(verified_file), db=str(db))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=REPO)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    after = [(e.name, e.seeds, e.returns) for e in store.entries()]
    assert after == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store.add(verified, name="after")  # the database still takes writes
    assert [e.name for e in store.entries()] == ["after", "before"]


_CONCURRENT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path[:0] = [{tests!r}, {tests!r} + "/leaderboard"]
    from leaderboard_helpers import load_verified
    from leaderboard.store import LeaderboardStore
    from leaderboard.submit import store_verified
    verified = load_verified({verified!r})
    Path({ready!r}).touch()
    while not Path({go!r}).exists():  # every writer starts at the same moment
        time.sleep(0.005)
    print(store_verified(verified, LeaderboardStore({db!r}), name=sys.argv[1]).summary())
    """
)


def test_four_concurrent_submits_all_land(tmp_path, verified_file, verified):
    db, go = tmp_path / "fresh.sqlite", tmp_path / "go"
    procs = []
    for i in range(4):
        ready = tmp_path / f"ready{i}"
        script = _CONCURRENT_SCRIPT.format(
            tests=str(REPO / "tests"),
            verified=str(verified_file),
            ready=str(ready),
            go=str(go),
            db=str(db),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", script, f"entry{i}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=REPO,
            )
        )
    deadline = time.monotonic() + 90
    while not all((tmp_path / f"ready{i}").exists() for i in range(4)):
        assert time.monotonic() < deadline, "submitters did not get ready"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.02)
    # Hold the write lock while they start: they must wait for it, not fail.
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    go.touch()
    time.sleep(1.0)
    assert all(p.poll() is None for p in procs)  # all four are waiting
    blocker.execute("COMMIT")
    blocker.close()
    outputs = [p.communicate(timeout=90) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[1].decode()[-1000:] for o in outputs]
    assert all(o[0].decode().startswith("accepted: entry") for o in outputs)
    store = LeaderboardStore(db)
    assert sorted(e.name for e in store.entries()) == [f"entry{i}" for i in range(4)]
    assert _table_counts(db) == (4, 4 * len(verified.episodes))


def test_an_empty_or_missing_database_has_no_entries(tmp_path):
    assert LeaderboardStore(tmp_path / "none.sqlite").entries() == []
    assert LeaderboardStore(tmp_path / "none.sqlite").count() == 0


def _open_store_when(db: str, go: str) -> None:
    while not os.path.exists(go):
        time.sleep(0.001)
    with LeaderboardStore(db)._connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS probe (x)")


def test_switching_a_fresh_file_to_wal_waits_for_a_held_lock(tmp_path):
    """SQLite answers the WAL switch with 'database is locked' without its busy handler
    (it failed ~1 worker in 12 before the store retried it); every opener must wait."""
    ctx = multiprocessing.get_context("fork")
    for round_ in range(4):
        db, go = tmp_path / f"r{round_}.sqlite", tmp_path / f"go{round_}"
        workers = [ctx.Process(target=_open_store_when, args=(str(db), str(go))) for _ in range(6)]
        for worker in workers:
            worker.start()
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        go.touch()
        time.sleep(0.3)
        blocker.execute("COMMIT")
        blocker.close()
        for worker in workers:
            worker.join(timeout=60)
        assert [w.exitcode for w in workers] == [0] * 6


# -- the labels column and the migration of version-1 files (issue 11) ----------------------
_VERSION_1 = """
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, env_id TEXT NOT NULL,
    episode_set TEXT NOT NULL, episode_set_sha256 TEXT NOT NULL, agent TEXT NOT NULL,
    paradigm TEXT NOT NULL, interface TEXT NOT NULL, model_sha256 TEXT NOT NULL,
    budget_json TEXT NOT NULL, header_json TEXT NOT NULL, results_sha256 TEXT NOT NULL,
    submitted_at TEXT NOT NULL, UNIQUE (episode_set, name));
CREATE TABLE episodes (
    submission_id INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
    seed INTEGER NOT NULL, return REAL NOT NULL, success INTEGER NOT NULL,
    steps INTEGER NOT NULL, metrics_json TEXT NOT NULL, PRIMARY KEY (submission_id, seed));
INSERT INTO submissions VALUES (1, 'old', 'Dialog-v1', 'Dialog-v1/test[:6]', 'x', 'old',
    'rl', 'act', 'h', '{}', '{}', 'r', '2026-01-01T00:00:00+00:00');
INSERT INTO episodes VALUES (1, 5, 0.5, 1, 3, '{}');
"""


def test_a_version_1_database_stays_readable_and_is_migrated_by_the_first_write(tmp_path, verified):
    db = tmp_path / "v1.sqlite"
    with sqlite3.connect(db) as conn:
        conn.executescript(_VERSION_1)
    store = LeaderboardStore(db)
    (old,) = store.entries()
    assert (old.name, old.labels, old.seeds, old.returns) == ("old", "declared", (5,), (0.5,))
    with sqlite3.connect(db) as conn:  # reading wrote nothing
        assert "labels" not in {r[1] for r in conn.execute("PRAGMA table_info(submissions)")}
    store.add(verified, name="new", labels="verified")
    assert {e.name: e.labels for e in store.entries()} == {"old": "declared", "new": "verified"}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_labels_are_stored_and_only_the_two_kinds_exist(tmp_path, verified):
    store = LeaderboardStore(tmp_path / "lb.sqlite")
    store.add(verified, name="file")
    store.add(verified, name="played", labels="verified")
    assert {e.name: e.labels for e in store.entries()} == {"file": "declared", "played": "verified"}
    with pytest.raises(ValueError, match="labels must be one of"):
        store.add(verified, name="other", labels="trusted")
    with sqlite3.connect(tmp_path / "lb.sqlite") as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE submissions SET labels = 'trusted'")
