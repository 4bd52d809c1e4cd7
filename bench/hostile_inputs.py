"""Seconds to reject a hostile results file, per MiB, beside a plain ``json.loads`` of it.

A leaderboard that anyone can submit to must reject any file in time bounded by its size
(issue 11: 80,000 empty episodes took 7 s, a 64 MiB file would have taken half an hour).
Each hostile file below is written to disk and read by ``leaderboard.results.read_results``
(size check, strict bounded JSON, the schema) until it is rejected; the reference is
``json.loads`` of the same bytes with no checks at all, the least any reader of the file
has to do. The figures are the worst file's seconds per MiB (a file under a MiB counts
as one: its time is the reader's fixed cost) and the worst ratio of rejecting to plain
parsing (over the files ``json.loads`` can read at all), each the median of ``--rounds``
rounds.

The files: many empty episodes; the most structure the count limits allow (500 episodes
of 1,000 turns and 500 rewards), with its one error at the very end; deep nesting; one
huge string; an object with a million keys; long integer and float literals; many
integers of 40 digits (the longest allowed). ::

    python -m bench.hostile_inputs [--scale 1.0] [--rounds 3]
    python -m bench.hostile_inputs --smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import parse_args
from bench.record import BenchRecord, add_out_argument
from leaderboard.results import ResultsRejected, read_results

__all__ = ["hostile_files", "main"]

MiB = 1 << 20


def _header() -> dict:
    return {
        "format": "dialog-bench-results",
        "format_version": 1,
        "env_id": "Dialog-v1",
        "env_version": 1,
        "episode_set": "Dialog-v1/test",
        "episode_set_sha256": "0" * 64,
        "agent": "hostile",
        "paradigm": "rl",
        "interface": "text",
        "model_sha256": "0" * 64,
        "budget": {},
    }


def _dense(scale: float) -> bytes:
    """Every count at its limit (scaled), and the one error in the very last episode."""
    episode = {
        "seed": 1,
        "turns": [{"role": "user", "text": ""}] * max(2, int(1000 * scale)),
        "rewards": [0.0] * max(1, int(500 * scale)),
        "return": 0.0,
        "success": False,
        "terminated": False,
        "truncated": False,
        "metrics": {f"m{i}": 0 for i in range(64)},
    }
    n = max(2, int(500 * scale))
    episodes = [episode] * (n - 1) + [{**episode, "seed": "last"}]
    return json.dumps({"header": _header(), "episodes": episodes}).encode()


def hostile_files(scale: float = 1.0) -> dict[str, bytes]:
    """Name -> bytes of each hostile file; ``scale`` shrinks them for a smoke run."""
    n = max(10, int(1_000_000 * scale))
    return {
        "many empty episodes": json.dumps(
            {"header": _header(), "episodes": [{}] * max(10, int(80_000 * scale))}
        ).encode(),
        "dense structure, error last": _dense(scale),
        "deep nesting": b"[" * n + b"]" * n,
        "one huge string": json.dumps(
            {"header": _header(), "episodes": [{"seed": 0, "turns": "x" * (40 * n)}]}
        ).encode(),
        "a million keys": (
            b'{"header": {' + b",".join(b'"k%d": 0' % i for i in range(n)) + b'}, "episodes": []}'
        ),
        "long integer": b'{"header": {"budget": {"env_steps": ' + b"7" * (8 * n) + b"}}}",
        "long float": b'{"header": {"budget": {"env_steps": 0.' + b"7" * (8 * n) + b"}}}",
        "many 40-digit integers": b"[" + b",".join([b"9" * 40] * n) + b"]",
    }


def _median_seconds(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _reject(path: Path) -> None:
    try:
        read_results(path)
    except ResultsRejected:
        return
    raise AssertionError(f"{path.name} was accepted")


def _plain(data: bytes) -> bool:
    """Plain ``json.loads``; False when it cannot read the file at all (deep nesting)."""
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="size of the files (1: full)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per file")
    add_out_argument(parser)
    args = parse_args(parser, argv, {"scale": 0.01, "rounds": 1})
    with BenchRecord("hostile_inputs", argv, args) as record:
        measure(args, record)
    return 0


def measure(args: argparse.Namespace, record: BenchRecord) -> None:
    """Time the rejection of every hostile file beside ``json.loads``; print the table."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in hostile_files(args.scale).items():
            path = Path(tmp) / "hostile.json"
            path.write_bytes(data)
            reject = _median_seconds(lambda p=path: _reject(p), args.rounds)
            plain = _median_seconds(lambda d=data: _plain(d), args.rounds) if _plain(data) else None
            rows.append((name, len(data) / MiB, reject, plain))
    print(f"{'file':<28} {'MiB':>8} {'reject s':>9} {'s/MiB':>7} {'json.loads s':>13}")
    for name, mib, reject, plain in rows:
        shown = f"{plain:>13.4f}" if plain is not None else f"{'unreadable':>13}"
        print(f"{name:<28} {mib:>8.2f} {reject:>9.4f} {reject / max(mib, 1):>7.3f} {shown}")
    # Files under a MiB count as one: their time is the reader's fixed cost, not their size.
    worst = max(rows, key=lambda r: r[2] / max(r[1], 1))
    record.figures["largest_mib"] = max(mib for _, mib, _, _ in rows)
    what = f"reject seconds per MiB (worst: {worst[0]})"
    record.ratio("s_per_mib", what, worst[2] / max(worst[1], 1), "", 4)
    readable = [r for r in rows if r[3] is not None]
    slowest = max(readable, key=lambda r: r[2] / max(r[3], 1e-6))
    what = f"reject time / plain json.loads time (worst: {slowest[0]})"
    record.ratio("vs_json_loads", what, slowest[2] / max(slowest[3], 1e-6))


if __name__ == "__main__":
    raise SystemExit(main())
