"""The results file: its JSON Schema, a strict reader and a diff-friendly writer.

A results file (DESIGN §7) is one JSON object with a ``header`` and ``episodes``; the
schema is ``leaderboard/results.schema.json``. Reading is defensive, since the file comes
from outside: its size is checked before a byte is read (at most ``MAX_RESULTS_BYTES``),
the text must be UTF-8 JSON without duplicate keys, NaN/Infinity, non-finite or overlong
numbers, and the object must validate against the schema (checked in one bounded pass by
:class:`~leaderboard.schema.SchemaValidator`). Rejecting any file costs time in
proportion to its size (``python -m bench.hostile_inputs`` measures it). Every failure is
a :class:`ResultsRejected` whose message is one line. Nothing in a results file is ever
executed or unpickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from dialog_env.bounded_json import loads_bounded
from leaderboard.schema import SchemaValidator

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_RESULTS_BYTES",
    "ResultsRejected",
    "load_results_schema",
    "parse_results",
    "read_results",
    "write_results",
]

FORMAT = "dialog-bench-results"
FORMAT_VERSION = 1
#: A results file larger than this is rejected unread (500 episodes of 50 long steps fit).
MAX_RESULTS_BYTES = 64 * 1024 * 1024
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class ResultsRejected(ValueError):
    """A results file or submission is refused; ``str(err)`` is the one-line reason."""

    def __init__(self, reason: str):
        super().__init__(" ".join(reason.split()))


@lru_cache(maxsize=1)
def load_results_schema() -> dict[str, Any]:
    """The JSON Schema of a results file, as shipped in ``leaderboard/results.schema.json``."""
    text = resources.files("leaderboard").joinpath("results.schema.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> SchemaValidator:
    return SchemaValidator(load_results_schema())


def parse_results(data: bytes) -> dict[str, Any]:
    """Parse and schema-check the bytes of a results file; raise :class:`ResultsRejected`.

    Every step is bounded by the size of ``data``: the size limit first, then strict
    JSON (:func:`~dialog_env.bounded_json.loads_bounded`: no duplicate keys, no NaN or
    infinity, no number longer than 40 characters, no nesting deeper than 64), then the
    schema, whose count limits are checked before it walks into a list.
    """
    if len(data) > MAX_RESULTS_BYTES:
        raise ResultsRejected(
            f"results file is {len(data)} bytes, over the limit of {MAX_RESULTS_BYTES} bytes"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ResultsRejected(
            f"malformed JSON: not UTF-8 text ({err.reason} at byte {err.start})"
        ) from None
    try:
        obj = loads_bounded(text)
    except ValueError as err:
        raise ResultsRejected(f"malformed JSON: {err}") from None
    error = _validator().first_error(obj)
    if error is not None:
        where, message = error
        if len(message) > 200:
            message = message[:197] + "..."
        raise ResultsRejected(
            f"does not follow the results schema at {where or '(top level)'}: {message}"
        )
    return obj


def read_results(path: str | Path, max_bytes: int = MAX_RESULTS_BYTES) -> dict[str, Any]:
    """Read a results file from disk, checking its size before reading it."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ResultsRejected(f"no such results file: {path}") from None
    if not path.is_file():
        raise ResultsRejected(f"not a regular file: {path}")
    if size > max_bytes:
        raise ResultsRejected(f"results file is {size} bytes, over the limit of {max_bytes} bytes")
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew while we looked
        raise ResultsRejected(f"results file is over the limit of {max_bytes} bytes")
    return parse_results(data)


def _dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, **kwargs)


def write_results(path: str | Path, results: dict[str, Any]) -> Path:
    """Write ``results`` atomically: the header indented, one line per episode.

    The file appears complete or not at all (written to a temporary file in the same
    directory, then renamed), so an interrupted evaluation leaves no half file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = _dumps(results["header"], indent=2).replace("\n", "\n  ")
    lines = ",\n    ".join(_dumps(ep, separators=(",", ":")) for ep in results["episodes"])
    text = f'{{\n  "header": {header},\n  "episodes": [\n    {lines}\n  ]\n}}\n'
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give what open() would
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
