"""The package versions the published transcripts depend on, checked before publishing.

A published episode is a chain of exact floats: the user's LM voice samples by inverse CDF
from its logits, an LM agent decodes greedily, the chat task's reward is a learned model's
score. Another torch, transformers or numpy can move a logit's last bit and so a sampled
word, and the republished files would differ from the ones the checkpoints made.
``constraints.txt`` at the repository's root pins those versions (CI installs with
``pip install -c constraints.txt``); :func:`numerics_mismatches` compares them with what
is installed, and ``dialog-bench run --publish`` refuses to publish on any difference.

>>> parse_constraints("# numerics\\ntorch==2.13.0\\nnumpy==2.4.6  # arrays\\n")
{'torch': '2.13.0', 'numpy': '2.4.6'}
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

__all__ = [
    "CONSTRAINTS",
    "check_numerics",
    "numerics_mismatches",
    "parse_constraints",
]

#: The pins, at the root of a checkout (publishing happens in one; a wheel has no file).
CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(?P<version>[^\s;#]+)$")


def parse_constraints(text: str) -> dict[str, str]:
    """``{package: version}`` of a constraints file's ``name==version`` lines.

    Comments and blank lines are skipped; any other line is an error (a pin must be exact).
    """
    pins = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        if match is None:
            raise ValueError(f"constraints line {number} is not a pin NAME==VERSION: {raw!r}")
        pins[match["name"].lower()] = match["version"]
    return pins


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _public(version: str) -> str:
    """The version without its local build label: ``2.13.0+cpu`` -> ``2.13.0``."""
    return version.split("+", 1)[0]


def numerics_mismatches(path: Path = CONSTRAINTS) -> list[str]:
    """One line per pinned package whose installed version is another (or none).

    A local build label is not a version of the numerics (``2.13.0+cpu`` is ``2.13.0``).
    """
    pins = parse_constraints(Path(path).read_text(encoding="utf-8"))
    out = []
    for name, pinned in pins.items():
        installed = _installed(name)
        if installed is None or _public(installed) != _public(pinned):
            out.append(f"{name} {installed or 'not installed'} (pinned {pinned})")
    return out


def check_numerics(path: Path = CONSTRAINTS) -> None:
    """Raise ``ValueError`` (the CLI's one-line error) naming every package whose installed
    version differs from ``path``'s pin: the published transcripts would not be the ones
    the pins made.

    Without the file (an installed wheel, not a checkout) there is nothing to publish into.
    """
    if not Path(path).is_file():
        raise ValueError(f"no {Path(path).name} at {path}: publish from a checkout")
    mismatches = numerics_mismatches(path)
    if mismatches:
        raise ValueError(
            "not published: the installed numerics differ from constraints.txt, so the "
            f"transcripts would not be the published ones: {'; '.join(mismatches)} "
            f"(pip install -c {path} ...)"
        )
