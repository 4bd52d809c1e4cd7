"""What a bench run leaves behind: its figures as JSON, with what they were measured on.

Every bench (``python -m bench.NAME --out bench/results/NAME.json``) writes one file of
this shape, so that a figure the docs cite has an artifact and a test can recompute the
docs' table from it (``bench.table``)::

    {"bench": "env_speed",
     "command": "python -m bench.env_speed --out bench/results/env_speed.json",
     "commit": "8b0cabd...", "dirty": [],          # paths changed against that commit
     "machine": {"cpu_count": 2, "torch_threads": 1, "omp_num_threads": "1", ...},
     "load_average": {"start": [3.1, 1.8, 1.4], "end": [...]},   # 1, 5, 15 minutes
     "seconds": 74.2,
     "args": {...},                                 # the parsed flags
     "ratios": {"ratio": "Dialog-v1 / CartPole-v1"},  # key -> the printed ratio line's name
     "figures": {"ratio": 0.104, "dialog_steps_s": 17800.0, ...},
     "output": "...what the run printed..."}

A field a run did not record (a run converted from an older format) is ``null``: unknown.

The load average says what else the machine ran: these benches read ratios of two sides
timed in one run, which other work slows alike, not absolute rates.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

__all__ = ["RECORDED_BENCHES", "BenchRecord", "add_out_argument", "checkout_state", "machine"]

ROOT = Path(__file__).resolve().parent.parent
# The benches that take ``--out`` (gpu_speed has its own ``--json``).
RECORDED_BENCHES = (
    "env_speed",
    "vector_speed",
    "decode_speed",
    "run_job_speed",
    "bon_split",
    "lm_agent_speed",
    "sb3_speed",
    "sft_speed",
    "ppo_speed",
    "grpo_speed",
    "voice_quality",
    "lm_memory",
    "hostile_inputs",
)


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    """Give a bench's parser the ``--out PATH`` flag that :class:`BenchRecord` writes to."""
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write the figures as JSON here, with the commit, the command line, "
        "the machine and its load average (bench/results/NAME.json)",
    )


def checkout_state(root: Path = ROOT) -> tuple[str | None, list[str]]:
    """The commit ``root`` is checked out at and the tracked paths changed against it
    (``(None, [])`` outside a git checkout)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
    except (OSError, subprocess.CalledProcessError):
        return None, []
    return commit, sorted(line[3:] for line in changed)


def machine() -> dict[str, Any]:
    """The CPU and thread settings a figure was measured with."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "niceness": os.nice(0) if hasattr(os, "nice") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
    }
    if "torch" in sys.modules or _importable("torch"):
        import torch

        info |= {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    return info


def _importable(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.kept = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


class BenchRecord:
    """One bench run's figures, written as JSON to ``out`` when the run ends well.

    Use it around the measured part of a bench's ``main``::

        with BenchRecord("env_speed", argv, args) as record:
            ...
            record.ratio("ratio", "Dialog-v1 / CartPole-v1", value, "aim: >= 0.25")
            record.figures["dialog_steps_s"] = dialog

    ``ratio`` prints the bench's ``ratio WHAT = VALUE`` line (as ``tests/bench`` reads it)
    and keeps the value under ``key``; ``figures`` takes any other number worth citing.
    Nothing is written when ``args.out`` is None or the block raises.
    """

    def __init__(self, name: str, argv: Sequence[str] | None, args: argparse.Namespace) -> None:
        self.name, self.out = name, getattr(args, "out", None)
        given = list(sys.argv[1:] if argv is None else argv)
        self.command = shlex.join(["python", "-m", f"bench.{name}", *given])
        self.args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        self.ratios: dict[str, str] = {}
        self.figures: dict[str, Any] = {}
        self._tee: _Tee | None = None

    def ratio(self, key: str, what: str, value: float, note: str = "", digits: int = 3) -> None:
        """Print ``ratio WHAT = VALUE  (NOTE)`` and keep ``value`` as figure ``key``."""
        suffix = f"  ({note})" if note else ""
        print(f"ratio {what} = {value:.{digits}f}{suffix}")
        self.ratios[key], self.figures[key] = what, float(value)

    def __enter__(self) -> BenchRecord:
        self._load_start, self._start = _load_average(), time.perf_counter()
        if self.out is not None:
            self._tee = _Tee(sys.stdout)
            sys.stdout = self._tee
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._tee is not None:
            sys.stdout = self._tee.stream
        if self.out is None or kind is not None:
            return
        commit, dirty = checkout_state()
        record = {
            "bench": self.name,
            "command": self.command,
            "commit": commit,
            "dirty": dirty,
            "machine": machine(),
            "load_average": {"start": self._load_start, "end": _load_average()},
            "seconds": round(time.perf_counter() - self._start, 1),
            "args": self.args,
            "ratios": self.ratios,
            "figures": self.figures,
            "output": self._tee.kept.getvalue() if self._tee else "",
        }
        path = Path(self.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1, default=str) + "\n")
        print(f"figures written to {path}")
