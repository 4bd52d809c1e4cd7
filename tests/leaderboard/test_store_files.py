"""Database files of every kind (issue 30): one line each, before any replay; reading
writes nothing; a newer schema is refused; names are unique without regard to case."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leaderboard_helpers import real_results, write_json

import leaderboard.submit as submit
from leaderboard.store import SCHEMA_VERSION, LeaderboardStore, NameTaken, StoreError
from leaderboard.verify import VerifiedResults, verify_results_file

REPO = REPO_ROOT


@pytest.fixture(scope="module")
def submission(tmp_path_factory) -> tuple[Path, VerifiedResults]:
    """A real results file of the expert and its verified replay."""
    path = write_json(tmp_path_factory.mktemp("results") / "expert.json", real_results())
    return path, verify_results_file(path)


@pytest.fixture(scope="module")
def results_file(submission) -> Path:
    return submission[0]


@pytest.fixture(scope="module")
def verified(submission) -> VerifiedResults:
    return submission[1]


@pytest.fixture()
def no_replay(monkeypatch):
    """Fail the test if a replay starts: a bad database must be found before."""

    def replay(*args, **kwargs):
        raise AssertionError("a replay started before the database was checked")

    monkeypatch.setattr(submit, "verify_results_file", replay)
    monkeypatch.setattr(submit, "evaluate_agent", replay)


def _not_sqlite(path: Path) -> Path:
    path.write_bytes(b"this is not a database " * 100)
    return path


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


def _newer(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE submissions (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("PRAGMA user_version = 99")
    return path


def _under_a_file(path: Path) -> Path:
    path.parent.joinpath("file").write_text("x")
    return path.parent / "file" / "lb.sqlite"


BAD = {
    "not SQLite": (_not_sqlite, "is not an SQLite database"),
    "a directory": (_directory, "is not a file"),
    "a newer schema": (_newer, "has schema version 99, newer than this dialog-bench knows"),
    "under a file": (_under_a_file, ""),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_bad_database_is_one_line_before_any_replay(kind, tmp_path, results_file, no_replay):
    make, reason = BAD[kind]
    db = make(tmp_path / "lb.sqlite")
    before = db.read_bytes() if db.is_file() else None
    store = LeaderboardStore(db)
    for action in (
        lambda: submit.submit_results_file(results_file, store),
        lambda: submit.submit_checkpoint(REPO / "baselines/checkpoints/sb3-ppo", store),
        lambda: store.entries() if kind != "under a file" else store.check_writable(),
    ):
        with pytest.raises(StoreError, match=reason) as err:
            action()
        assert "\n" not in str(err.value) and str(db) in str(err.value)
    if before is not None:
        assert db.read_bytes() == before  # a newer schema's file is not written to


def test_a_database_locked_by_another_process_is_one_line_fast(tmp_path, results_file, no_replay):
    db = tmp_path / "lb.sqlite"
    LeaderboardStore(db).check_writable()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
            "c.execute('BEGIN EXCLUSIVE'); print('held', flush=True); time.sleep(60)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.perf_counter()
        with pytest.raises(StoreError, match="is locked by another process"):
            submit.submit_results_file(results_file, LeaderboardStore(db, timeout_s=0.5))
        assert time.perf_counter() - start < 10
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_database_is_one_line_before_any_replay(tmp_path, results_file, no_replay):
    db = tmp_path / "lb.sqlite"
    LeaderboardStore(db).check_writable()
    db.chmod(0o444)
    with pytest.raises(StoreError, match="is read-only"):
        submit.submit_results_file(results_file, LeaderboardStore(db))


def _rollback_journal_db(path: Path, verified) -> Path:
    LeaderboardStore(path).add(verified, name="expert")
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    return path


def test_reading_changes_nothing_in_the_file(tmp_path, verified):
    db = _rollback_journal_db(tmp_path / "lb.sqlite", verified)
    before = db.read_bytes()
    store = LeaderboardStore(db)
    assert [e.name for e in store.entries()] == ["expert"] and store.count() == 1
    out = subprocess.run(
        [sys.executable, "-m", "dialog_bench", "leaderboard", "--db", str(db)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr
    assert "expert" in out.stdout
    assert db.read_bytes() == before  # no WAL switch, no migration
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lb.sqlite"]


def test_the_leaderboard_command_reads_a_database_it_may_not_write(tmp_path, verified):
    db = _rollback_journal_db(tmp_path / "lb.sqlite", verified)
    uri = f"{db.resolve().as_uri()}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:  # what the reader opens: read-only
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert [e.name for e in LeaderboardStore(db).entries()] == ["expert"]


def test_an_older_schema_is_migrated_by_a_write_and_a_newer_one_refused(tmp_path, verified):
    db = tmp_path / "lb.sqlite"
    store = LeaderboardStore(db)
    store.add(verified, name="expert")
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX submissions_name_nocase")
        conn.execute("PRAGMA user_version = 2")
    store.add(verified, name="other")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(submissions)")}
    assert "submissions_name_nocase" in indexes
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        store.add(verified, name="third")
    with pytest.raises(StoreError, match="newer"):
        store.entries()


def test_names_are_unique_without_regard_to_case(tmp_path, verified):
    store = LeaderboardStore(tmp_path / "lb.sqlite")
    store.add(verified, name="expert")
    for name in ("Expert", "EXPERT"):
        with pytest.raises(NameTaken, match="already has an entry named 'expert' .*case"):
            store.add(verified, name=name)
    store.add(verified, name="Expert", replace=True)
    assert [e.name for e in store.entries()] == ["Expert"]


def test_an_old_database_with_case_twins_keeps_them_and_takes_no_third(tmp_path, verified):
    db = tmp_path / "lb.sqlite"
    store = LeaderboardStore(db)
    store.add(verified, name="expert")
    with sqlite3.connect(db) as conn:  # a version-2 file, written before names folded
        conn.execute("DROP INDEX submissions_name_nocase")
        conn.execute("PRAGMA user_version = 2")
        conn.execute(
            "INSERT INTO submissions (name, env_id, episode_set, episode_set_sha256, agent, "
            "paradigm, interface, model_sha256, budget_json, header_json, results_sha256, "
            "submitted_at) SELECT 'Expert', env_id, episode_set, episode_set_sha256, agent, "
            "paradigm, interface, model_sha256, budget_json, header_json, results_sha256, "
            "submitted_at FROM submissions"
        )
    assert sorted(e.name for e in store.entries()) == ["Expert", "expert"]
    with pytest.raises(NameTaken, match="without regard to case"):
        store.add(verified, name="EXPERT")
    store.add(verified, name="EXPERT", replace=True)  # replaces both twins
    assert [e.name for e in store.entries()] == ["EXPERT"]


# -- fuzzing: files of any content at the database path ---------------------------------------
SQLITE_HEADER = b"SQLite format 3\x00"


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    head=st.sampled_from([b"", SQLITE_HEADER]),
    body=st.binary(max_size=4096),
)
def test_fuzz_any_file_at_the_database_path_is_read_or_refused_in_one_line(
    tmp_path_factory, head, body
):
    db = tmp_path_factory.mktemp("fuzz") / "lb.sqlite"
    db.write_bytes(head + body)
    store = LeaderboardStore(db, timeout_s=0.5)
    for action in (store.entries, store.count, store.check_writable):
        try:
            action()
        except StoreError as err:
            assert str(err) and "\n" not in str(err) and str(db) in str(err)
