"""The bench table of docs/benchmarks.md is the one computed from the committed runs
(bench/results/*.json) and aims (bench/aims.toml), and "met?" follows the figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.record import RECORDED_BENCHES
from bench.table import (
    END,
    PAGE,
    RESULTS,
    START,
    load_aims,
    page_section,
    render_section,
    write_section,
)

RECORDED = [b["name"] for b in load_aims() if (RESULTS / f"{b['name']}.json").is_file()]


def test_docs_table_is_the_one_computed_from_the_committed_runs():
    assert page_section(PAGE) == render_section(), (
        "docs/benchmarks.md's bench table differs from bench/results/*.json and "
        "bench/aims.toml: run `python -m bench.table --write`"
    )


def test_every_bench_that_records_has_a_row():
    rows = [bench["name"] for bench in load_aims()]
    assert set(RECORDED_BENCHES) <= set(rows), "a bench with --out has no row in bench/aims.toml"
    assert len(rows) == len(set(rows))


@pytest.mark.parametrize("name", RECORDED)
def test_a_committed_run_names_its_commit_command_machine_and_load(name):
    run = json.loads((RESULTS / f"{name}.json").read_text())
    assert run["bench"] == name
    assert re.fullmatch(r"[0-9a-f]{40}", run["commit"]), run["commit"]
    assert run["command"].startswith(f"python -m bench.{name}")
    assert "--smoke" not in run["command"], "a smoke run's figures say nothing"
    assert run["machine"]["torch_threads"] >= 1
    # A field the run did not record (converted from an older format) is null: unknown.
    assert run["machine"]["cpu_count"] is None or run["machine"]["cpu_count"] >= 1
    assert len(run["load_average"]["start"]) == 3
    assert run["load_average"]["end"] is None or len(run["load_average"]["end"]) == 3
    for key in run["ratios"]:  # the printed ratio lines are in the kept output
        assert f"ratio {run['ratios'][key]} = " in run["output"]


def _write_run(results: Path, name: str, figures: dict) -> None:
    run = {
        "bench": name,
        "command": f"python -m bench.{name} --out x.json",
        "commit": "0" * 40,
        "dirty": [],
        "seconds": 1.0,
        "load_average": {"start": [1.0, 1.0, 1.0], "end": [2.0, 2.0, 2.0]},
        "figures": figures,
    }
    (results / f"{name}.json").write_text(json.dumps(run))


AIMS = """
[[bench]]
name = "toy"
compares = "toy vs floor"
figure = "{ratio:.2f} ({floor:.1f}x)"

[[bench.aim]]
figure = "ratio"
at_least = 0.5
shown = "0.5"
bound = "the floor is {floor:.1f}x"

[[bench.aim]]
figure = "ratio"
at_least = 0.9
of = "floor"
shown = "0.9 of the floor"
was = "20x"
reason = "the floor itself is {floor:.1f}x"

[[bench]]
name = "absent"
compares = "nothing recorded"
figure = "{ratio}"
"""


def test_met_follows_the_figure_and_a_missed_aim_shows_its_bound(tmp_path):
    aims = tmp_path / "aims.toml"
    aims.write_text(AIMS)
    _write_run(tmp_path, "toy", {"ratio": 0.4, "floor": 0.5})
    section = render_section(aims, tmp_path)
    assert (
        "| `python -m bench.toy` | toy vs floor | 0.40 (0.5x) | 0.5; 0.9 of the floor | no; no |"
        in section
    )
    assert "- `toy`, aim 0.5: missed. the floor is 0.5x" in section
    assert "Restated from 20x: the floor itself is 0.5x" in section
    assert "| `python -m bench.absent` | nothing recorded | no recorded run" in section
    _write_run(tmp_path, "toy", {"ratio": 0.6, "floor": 0.5})
    assert "| 0.5; 0.9 of the floor | yes; yes |" in render_section(aims, tmp_path)


def test_write_replaces_only_the_text_between_the_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"# Title\n\nintro\n\n{START}\nold table\n{END}\n\nafter\n")
    assert write_section(page, "new table") is True
    assert page.read_text() == f"# Title\n\nintro\n\n{START}\nnew table\n{END}\n\nafter\n"
    assert page_section(page) == "new table"
    assert write_section(page, "new table") is False
