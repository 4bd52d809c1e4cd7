"""The bench table of docs/benchmarks.md, built from the committed figures and aims.

Each row of the table is one bench's last recorded run (``bench/results/NAME.json``, written
by ``python -m bench.NAME --out ...``, see ``bench.record``) read through ``bench/aims.toml``,
which says what the bench compares, how its figure reads and what it aims at. "met?" is
computed here, never typed: an aim is met when its figure is on the right side of it. An aim
a run misses carries, in the aims file, what bounds it with a measurement; an aim restated
with its measured bound says what it was and why it changed. ::

    python -m bench.table            # print the table
    python -m bench.table --write    # rewrite it in docs/benchmarks.md, between the markers
    python -m bench.table --check    # exit 1 when the page's table is not the one computed

``tests/bench/test_bench_table.py`` checks that the page's table is the one computed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli, which pytest itself needs there
    import tomli as tomllib

__all__ = ["Aim", "aim_met", "load_aims", "render_section", "render_table", "write_section"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
AIMS = ROOT / "bench" / "aims.toml"
PAGE = ROOT / "docs" / "benchmarks.md"
START = "<!-- bench-table:start (python -m bench.table --write) -->"
END = "<!-- bench-table:end -->"


@dataclass(frozen=True)
class Aim:
    """One aim of a bench: its ``figure`` at least ``at_least`` (times the run's figure
    ``of``, when given), at most ``at_most`` or below ``below``.

    ``shown`` is the aim as the table writes it; ``bound``, for an aim a run misses, what
    bounds it with a measurement (a format string over the run's figures); ``was`` and
    ``reason``, for an aim restated with its measured bound, the aim it replaces and why.
    """

    figure: str
    shown: str
    at_least: float | None = None
    of: str | None = None
    at_most: float | None = None
    below: float | None = None
    bound: str = ""
    was: str = ""
    reason: str = ""


def aim_met(aim: Aim, figures: dict[str, Any]) -> bool:
    """Whether the run's figure meets ``aim``.

    >>> aim_met(Aim("ratio", "0.25", at_least=0.25), {"ratio": 0.104})
    False
    >>> aim_met(Aim("growth", "< 50 MiB", below=50), {"growth": 1.1})
    True
    >>> aim_met(Aim("vec", "0.9 of 8x", at_least=0.9, of="floor"), {"vec": 7, "floor": 8})
    False
    """
    value = float(figures[aim.figure])
    scale = float(figures[aim.of]) if aim.of else 1.0
    if aim.at_least is not None and value < aim.at_least * scale:
        return False
    if aim.below is not None and value >= aim.below:
        return False
    return aim.at_most is None or value <= aim.at_most


def load_aims(path: Path = AIMS) -> list[dict[str, Any]]:
    """The aims file's benches, in table order, each with its aims as :class:`Aim`."""
    benches = tomllib.loads(path.read_text())["bench"]
    for bench in benches:
        bench["aims"] = [Aim(**aim) for aim in bench.get("aim", [])]
    return benches


def load_result(name: str, results: Path = RESULTS) -> dict[str, Any] | None:
    """The recorded run of bench ``name`` (``results/NAME.json``), None if it has none."""
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def shown_command(command: str) -> str:
    """The run's command line without the path it wrote its figures to (``--out PATH``,
    or ``--json PATH`` in a run recorded before its bench took ``--out``).

    >>> shown_command("python -m bench.env_speed --out bench/results/env_speed.json")
    'python -m bench.env_speed'
    >>> shown_command("python -m bench.grpo_speed --iterations 1 --json /tmp/grpo.json")
    'python -m bench.grpo_speed --iterations 1'
    """
    words, kept = shlex.split(command), []
    skip = False
    for word in words:
        if skip or word in ("--out", "--json") or word.startswith(("--out=", "--json=")):
            skip = word in ("--out", "--json")
            continue
        kept.append(word)
    return shlex.join(kept)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(benches: list[dict[str, Any]], results: Path = RESULTS) -> str:
    """The Markdown table: command | what it compares | figure | aim | met?"""
    lines = [
        "| command | what it compares | figure | aim | met? |",
        "| --- | --- | --- | --- | --- |",
    ]
    for bench in benches:
        run, aims = load_result(bench["name"], results), bench["aims"]
        aim = "; ".join(a.shown for a in aims) or "-"
        if run is None:
            command = f"`python -m bench.{bench['name']}`"
            figure = f"no recorded run (`bench/results/{bench['name']}.json`)"
            cells = (command, bench["compares"], figure, aim, "not measured")
        else:
            figures = run["figures"]
            met = "; ".join("yes" if aim_met(a, figures) else "no" for a in aims) or "-"
            command = f"`{shown_command(run['command'])}`"
            compares = bench["compares"].format_map(figures)
            cells = (command, compares, bench["figure"].format_map(figures), aim, met)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def render_runs(benches: list[dict[str, Any]], results: Path = RESULTS) -> str:
    """Where each figure comes from: its file, commit, seconds and the load beside it."""
    lines = [
        "| file | commit | seconds | load average (1 min) at start, end |",
        "| --- | --- | --- | --- |",
    ]
    for bench in benches:
        run = load_result(bench["name"], results)
        if run is None:
            continue
        commit = (run["commit"] or "none")[:7] + (" (dirty)" if run["dirty"] else "")
        load = run["load_average"]
        shown = ", ".join(f"{x[0]:.2f}" if x else "-" for x in (load["start"], load["end"]))
        path = f"bench/results/{bench['name']}.json"
        seconds = "-" if run["seconds"] is None else f"{run['seconds']:.0f}"
        lines.append(f"| `{path}` | `{commit}` | {seconds} | {shown} |")
    return "\n".join(lines)


def render_bounds(benches: list[dict[str, Any]], results: Path = RESULTS) -> str:
    """A list of every aim missed or restated, with its measured bound and reason."""
    items = []
    for bench in benches:
        run = load_result(bench["name"], results)
        figures = run["figures"] if run else {}
        for aim in bench["aims"] if run else ():
            missed = not aim_met(aim, figures)
            if not (missed or aim.was):
                continue
            text = f"- `{bench['name']}`, aim {aim.shown}: {'missed' if missed else 'met'}."
            if aim.bound:
                text += " " + aim.bound.format_map(figures).strip()
            if aim.was:
                text += f" Restated from {aim.was}: {aim.reason.format_map(figures).strip()}"
            items.append(text)
    return "\n".join(items) if items else "Every aim is met."


def render_section(aims: Path = AIMS, results: Path = RESULTS) -> str:
    """Everything between the page's markers: the table, the missed aims, the runs."""
    benches = load_aims(aims)
    parts = (
        render_table(benches, results),
        "What bounds each aim a run misses, and the aims restated with their bound:",
        render_bounds(benches, results),
        "Each row's run (`seconds`: its wall time; the machine has 2 cores):",
        render_runs(benches, results),
    )
    return "\n\n".join(parts)


def write_section(page: Path = PAGE, section: str | None = None) -> bool:
    """Replace the text between the page's markers with ``section`` (default: the one
    computed); return whether the page changed."""
    text = page.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{page}: no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{section or render_section()}\n{END}{tail}"
    if new != text:
        page.write_text(new)
    return new != text


def page_section(page: Path = PAGE) -> str:
    """The text between the page's markers, as :func:`render_section` writes it."""
    text = page.read_text()
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def main(argv: list[str] | None = None) -> int:
    """Print the table, write it into the page (``--write``) or check it (``--check``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"rewrite it in {PAGE.name}")
    group.add_argument("--check", action="store_true", help="exit 1 when the page differs")
    args = parser.parse_args(argv)
    section = render_section()
    if args.write:
        changed = write_section(PAGE, section)
        print(f"{PAGE}: {'rewritten' if changed else 'already up to date'}")
    elif args.check:
        if page_section(PAGE) != section:
            print(
                f"{PAGE}: its bench table is not the one computed (python -m bench.table --write)"
            )
            return 1
        print(f"{PAGE}: up to date")
    else:
        print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
