"""The leaderboard's SQLite store: verified submissions and their per-episode outcomes.

One file, written only in transactions (``BEGIN IMMEDIATE`` ... ``COMMIT``): a submission
is either stored whole or not at all, so a crash or a kill mid-submit leaves the database
as it was. The database runs in WAL mode with a busy timeout, so concurrent submitters
wait for each other instead of failing; readers never block writers.

Only verified results come in (:class:`~leaderboard.verify.VerifiedResults`), and the
numbers stored are the replay's, not the submitter's. What the replay cannot prove is who
played: each entry carries its ``labels``, ``"verified"`` when the leaderboard loaded the
agent (a built-in agent or a checkpoint directory) and played the episodes itself, so
paradigm, interface, budget and model hash were read from what ran; ``"declared"`` for a
results file, whose transcripts the replay verified but whose labels are the submitter's.

Tables: ``submissions`` (one row per entry: name, env id, episode set and its hash, the
header's agent, paradigm, interface, model hash and budget, and the labels' status) and
``episodes`` (seed, return, success, steps and metrics of each episode of a submission).
An entry's name is unique per episode set.

An entry's name is unique per episode set without regard to case (``Expert`` is refused
where ``expert`` stands; names are ASCII, so SQLite's ``NOCASE`` is a full case fold).

Reading (:meth:`LeaderboardStore.entries`, :meth:`~LeaderboardStore.count`) opens the
file read-only and changes nothing in it (no WAL switch, no migration). Every bad
database is one line, a :class:`StoreError` (a ``ValueError``): a file that is not
SQLite, a directory, a read-only file, one locked by another process, one of a schema
newer than this code's. :meth:`~LeaderboardStore.check_writable` says so before a
submission is replayed, so a bad ``--db`` costs nothing.

Schema versions (``PRAGMA user_version``): 1 had no ``labels`` column; 2 compared names
with their case. A file of an older version stays readable as it is (a version-1 file's
entries read as declared: nothing proves who played them) and is migrated, in the same
transaction, by the first write. Migration note for version 3: names on one episode set
that already differ only in case are kept as they are, but no new entry may match any
of them without regard to case (``replace`` replaces them all); the unique index on the
case-folded name is built once no such pair is left. A newer version is refused.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from leaderboard.agent_card import check_entry_name
from leaderboard.episodes import canonical_json
from leaderboard.verify import VerifiedResults

__all__ = [
    "DECLARED",
    "DEFAULT_DB",
    "LABELS",
    "SCHEMA_VERSION",
    "VERIFIED",
    "LeaderboardStore",
    "NameTaken",
    "StoreError",
    "StoredEntry",
]

#: Where ``dialog-bench submit``, ``leaderboard`` and ``run`` keep the database by default.
DEFAULT_DB = Path("results") / "leaderboard.sqlite"
SCHEMA_VERSION = 3
#: How long :meth:`LeaderboardStore.check_writable` waits for another writer's lock.
CHECK_TIMEOUT_S = 5.0
#: An entry's labels (paradigm, interface, budget, model hash): read by the leaderboard
#: from the agent it loaded and played, or declared by a results file's header.
VERIFIED, DECLARED = "verified", "declared"
LABELS = (VERIFIED, DECLARED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    env_id TEXT NOT NULL,
    episode_set TEXT NOT NULL,
    episode_set_sha256 TEXT NOT NULL,
    agent TEXT NOT NULL,
    paradigm TEXT NOT NULL,
    interface TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    budget_json TEXT NOT NULL,
    header_json TEXT NOT NULL,
    results_sha256 TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT 'declared' CHECK (labels IN ('verified', 'declared')),
    UNIQUE (episode_set, name)
);
CREATE TABLE IF NOT EXISTS episodes (
    submission_id INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
    seed INTEGER NOT NULL,
    return REAL NOT NULL,
    success INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    metrics_json TEXT NOT NULL,
    PRIMARY KEY (submission_id, seed)
);
"""


class NameTaken(ValueError):
    """An entry of that name already exists on that episode set (use ``replace=True``)."""


class StoreError(ValueError):
    """The database file cannot be used: a one-line reason that names it."""


def _reason(error: sqlite3.Error) -> str:
    """What SQLite's ``error`` means for the file, in words a user can act on."""
    text = str(error)
    if "not a database" in text:
        return "is not an SQLite database"
    if "readonly" in text or "read-only" in text:
        return "is read-only (cannot write the leaderboard there)"
    if "locked" in text or "busy" in text:
        return "is locked by another process; try again when it is done"
    if "unable to open" in text or "disk I/O" in text:
        return "cannot be opened as a database file"
    return f"cannot be used as the leaderboard database ({text})"


@dataclass(frozen=True)
class StoredEntry:
    """One leaderboard entry as stored, with its per-episode outcomes in seed order."""

    id: int
    name: str
    env_id: str
    episode_set: str
    agent: str
    paradigm: str
    interface: str
    model_sha256: str
    budget: dict
    submitted_at: str
    seeds: tuple[int, ...]
    returns: tuple[float, ...]
    successes: tuple[bool, ...]
    steps: tuple[int, ...]
    labels: str = DECLARED
    #: Per episode, what its goal asked: ``"booking"`` (a table to book) or ``"inform"``
    #: (a venue and its facts only), read from the episode's metrics (``booked`` is None
    #: when the goal wants no booking); empty when the metrics do not say.
    goal_kinds: tuple[str, ...] = ()
    #: Per episode, the hidden gold judge's mean score of its replies (a task scored by a
    #: judge, e.g. ``Dialog-Chat-v1``: metrics ``mean_gold``); empty when the metrics lack it.
    gold: tuple[float, ...] = ()


def _gold_scores(metrics_rows: list[str]) -> tuple[float, ...]:
    """Each episode's ``mean_gold``; ``()`` unless every episode's metrics have one.

    >>> _gold_scores(['{"mean_gold": 0.5}', '{"mean_gold": 1}']), _gold_scores(['{}'])
    ((0.5, 1.0), ())
    """
    metrics = [json.loads(m) for m in metrics_rows]
    if not metrics or any(not isinstance(m.get("mean_gold"), int | float) for m in metrics):
        return ()
    return tuple(float(m["mean_gold"]) for m in metrics)


def _goal_kinds(metrics_rows: list[str]) -> tuple[str, ...]:
    """``"booking"`` or ``"inform"`` per episode; ``()`` if any episode's metrics lack
    ``booked`` (a task without bookings, or a file from before it was recorded).

    >>> _goal_kinds(['{"booked": true}', '{"booked": null}', '{"booked": false}'])
    ('booking', 'inform', 'booking')
    >>> _goal_kinds(['{"booked": true}', '{}'])
    ()
    """
    metrics = [json.loads(m) for m in metrics_rows]
    if not metrics or any("booked" not in m for m in metrics):
        return ()
    return tuple("inform" if m["booked"] is None else "booking" for m in metrics)


class LeaderboardStore:
    """A leaderboard database file; cheap to create, one connection per operation."""

    def __init__(self, path: str | Path = DEFAULT_DB, timeout_s: float = 60.0):
        self.path = Path(path)
        self.timeout_s = timeout_s

    @contextmanager
    def _connect(
        self, read_only: bool = False, timeout_s: float | None = None
    ) -> Iterator[sqlite3.Connection]:
        """A connection to the file, its schema version checked; read-only, or in WAL
        mode for writing. Any SQLite error on the way is a one-line :class:`StoreError`."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        if self.path.exists() and not self.path.is_file():
            raise StoreError(
                f"{self.path} is not a file (a directory?): not a leaderboard database"
            )
        try:
            if read_only:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # isolation_level=None: we issue BEGIN/COMMIT ourselves, nothing implicit.
                conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            reason = _reason(err) if isinstance(err, sqlite3.Error) else err.strerror
            raise StoreError(f"{self.path} {reason}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            self._check_version(conn)
            if not read_only:
                self._enter_wal(conn, timeout_s)
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        except sqlite3.Error as err:
            raise StoreError(f"{self.path} {_reason(err)}") from None
        finally:
            conn.close()

    def _check_version(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if not 0 <= version <= SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this dialog-bench "
                f"knows ({SCHEMA_VERSION}): upgrade dialog-bench to use it"
            )

    def check_writable(self) -> None:
        """Raise :class:`StoreError` now if a submission could not be stored here (not
        SQLite, a directory, read-only, locked past :data:`CHECK_TIMEOUT_S`, a newer
        schema): called before a replay, so that a bad database costs nothing."""
        with self._connect(timeout_s=min(self.timeout_s, CHECK_TIMEOUT_S)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")

    def _enter_wal(self, conn: sqlite3.Connection, timeout_s: float) -> None:
        """Switch the file to WAL mode, waiting out other connections as a write would.

        Switching needs an exclusive lock, and SQLite reports a held lock during the
        switch as ``database is locked`` at once, without calling the busy handler (a
        fresh file that another process holds, or is itself switching). So retry here,
        with backoff, up to the store's timeout.
        """
        deadline = time.monotonic() + timeout_s
        delay = 0.005
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Statement by statement: executescript() would COMMIT our transaction.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                _migrate(conn)
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def add(
        self,
        verified: VerifiedResults,
        name: str | None = None,
        replace: bool = False,
        labels: str = DECLARED,
    ) -> int:
        """Store a verified submission as entry ``name`` (default: the header's agent).

        ``labels``: :data:`VERIFIED` only when the leaderboard itself loaded and played
        the agent; a results file's labels are :data:`DECLARED` (the default).
        Raises :class:`NameTaken` if the episode set already has an entry of that name
        and ``replace`` is false; with ``replace`` the old entry goes in the same
        transaction. Returns the new entry's id. A name that is not a valid entry name
        (:func:`~leaderboard.agent_card.check_entry_name`) is a ``ValueError``.
        """
        if labels not in LABELS:
            raise ValueError(f"labels must be one of {LABELS}, got {labels!r}")
        header = verified.header
        name = check_entry_name(name or header["agent"])
        episode_set = verified.episode_set
        row = (
            name,
            episode_set.env_id,
            episode_set.id,
            episode_set.sha256,
            header["agent"],
            header["paradigm"],
            header["interface"],
            header["model_sha256"],
            json.dumps(header["budget"], sort_keys=True),
            json.dumps(header, sort_keys=True),
            _results_sha256(verified),
            datetime.now(timezone.utc).isoformat(timespec="seconds"),
            labels,
        )
        with self._transaction() as conn:
            old = conn.execute(
                "SELECT id, name FROM submissions WHERE episode_set = ? "
                "AND name = ? COLLATE NOCASE ORDER BY id",
                (episode_set.id, name),
            ).fetchall()
            if old:
                if not replace:
                    raise NameTaken(
                        f"{episode_set.id} already has an entry named {old[0][1]!r} (names "
                        "are compared without regard to case); choose another --name or "
                        "replace it"
                    )
                conn.executemany("DELETE FROM submissions WHERE id = ?", [(i,) for i, _ in old])
            cur = conn.execute(
                "INSERT INTO submissions (name, env_id, episode_set, episode_set_sha256, "
                "agent, paradigm, interface, model_sha256, budget_json, header_json, "
                "results_sha256, submitted_at, labels) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            submission_id = cur.lastrowid
            conn.executemany(
                "INSERT INTO episodes (submission_id, seed, return, success, steps, "
                "metrics_json) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (
                        submission_id,
                        ep["seed"],
                        ep["return"],
                        int(ep["success"]),
                        len(ep["rewards"]),
                        json.dumps(ep["metrics"], sort_keys=True),
                    )
                    for ep in verified.episodes
                ),
            )
        return submission_id

    def entries(self) -> list[StoredEntry]:
        """Every stored entry, ordered by episode set, then name."""
        if not self.path.exists():
            return []
        with self._connect(read_only=True) as conn:
            if (
                conn.execute("SELECT name FROM sqlite_master WHERE name = 'submissions'").fetchone()
                is None
            ):
                return []
            conn.execute("BEGIN")  # one consistent snapshot for both queries
            # A version-1 file, not yet migrated, has no labels: nothing proves who played.
            labels = "labels" if "labels" in _columns(conn) else f"'{DECLARED}'"
            subs = conn.execute(
                "SELECT id, name, env_id, episode_set, agent, paradigm, interface, "
                f"model_sha256, budget_json, submitted_at, {labels} FROM submissions "
                "ORDER BY env_id, episode_set, name"
            ).fetchall()
            episodes: dict[int, list[tuple]] = {sub[0]: [] for sub in subs}
            for row in conn.execute(
                "SELECT submission_id, seed, return, success, steps, metrics_json "
                "FROM episodes ORDER BY submission_id, seed"
            ):
                episodes[row[0]].append(row[1:])
            conn.execute("COMMIT")
        out = []
        for sid, name, env_id, set_id, agent, paradigm, interface, model, budget, at, lab in subs:
            rows = episodes[sid]
            out.append(
                StoredEntry(
                    sid,
                    name,
                    env_id,
                    set_id,
                    agent,
                    paradigm,
                    interface,
                    model,
                    json.loads(budget),
                    at,
                    tuple(r[0] for r in rows),
                    tuple(float(r[1]) for r in rows),
                    tuple(bool(r[2]) for r in rows),
                    tuple(int(r[3]) for r in rows),
                    lab,
                    _goal_kinds([r[4] for r in rows]),
                    _gold_scores([r[4] for r in rows]),
                )
            )
        return out

    def count(self) -> int:
        """Number of stored entries."""
        if not self.path.exists():
            return 0
        with self._connect(read_only=True) as conn:
            try:
                return conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0]
            except sqlite3.OperationalError:
                return 0


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1] for row in conn.execute("PRAGMA table_info(submissions)")}


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a file of an older schema to :data:`SCHEMA_VERSION` (inside the caller's
    write transaction, so a migration is all or nothing, as a submission is)."""
    if "labels" not in _columns(conn):  # version 1: every entry came from a results file
        conn.execute(
            "ALTER TABLE submissions ADD COLUMN labels TEXT NOT NULL DEFAULT 'declared' "
            "CHECK (labels IN ('verified', 'declared'))"
        )
    # version 2 -> 3: names unique without regard to case, by an index once no two
    # stored names on one episode set differ only in case (until then, by add's check)
    clash = conn.execute(
        "SELECT 1 FROM submissions GROUP BY episode_set, name COLLATE NOCASE "
        "HAVING COUNT(*) > 1 LIMIT 1"
    ).fetchone()
    if clash is None:
        conn.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS submissions_name_nocase "
            "ON submissions (episode_set, name COLLATE NOCASE)"
        )
    if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _results_sha256(verified: VerifiedResults) -> str:
    import hashlib

    payload = {"header": verified.header, "episodes": verified.episodes}
    return hashlib.sha256(canonical_json(payload)).hexdigest()
