"""Hostile results files and entry names (issue 11): each is rejected in one line, the
database unchanged, and nothing that is accepted can break a page.

The regression tests name the failure they pin; the hypothesis tests mutate a genuine
file at random: every mutant is either accepted with the replay's numbers or rejected in
one line, and the store holds only what was accepted.
"""

from __future__ import annotations

import copy
import json
import math
import re
from html.parser import HTMLParser

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leaderboard_helpers import real_results

from leaderboard.results import ResultsRejected, load_results_schema, parse_results
from leaderboard.schema import SchemaValidator
from leaderboard.store import LeaderboardStore
from leaderboard.submit import store_verified, submit_results_file
from leaderboard.verify import VerifiedResults, verify_results

#: The short set every test here plays (replays of 2 episodes keep the fuzzing fast).
N = 2


@pytest.fixture(scope="module")
def genuine() -> dict:
    return real_results("expert", "test", N)


@pytest.fixture
def store(tmp_path):
    return LeaderboardStore(tmp_path / "lb.sqlite")


def _rejected(data: bytes, match: str) -> str:
    with pytest.raises(ResultsRejected, match=match) as err:
        parse_results(data)
    assert "\n" not in str(err.value)
    return str(err.value)


def _with_header(results: dict, **fields) -> bytes:
    results = json.loads(json.dumps(results))
    results["header"].update(fields)
    return json.dumps(results).encode()


# -- numbers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "budget, reason",
    [
        ({"gpu_hours": 1.7e308}, r"budget/gpu_hours: 1\.7e\+308 is not less than the maximum"),
        ({"env_steps": 10**15}, r"budget/env_steps: 1000000000000000 is not less than"),
        ({"wall_time_s": 1e15}, r"wall_time_s: 1000000000000000\.0 is not less than .* 1e\+15"),
    ],
)
def test_a_budget_past_its_bound_is_rejected(genuine, budget, reason):
    """Was: 1.7e308 accepted, then `--format html` failed ("Axis limits cannot be NaN or
    Inf") and every format raised OverflowError."""
    _rejected(_with_header(genuine, budget=budget), reason)


def test_the_modular_paradigm_is_a_label_results_files_may_declare(genuine):
    """A modular pipeline's row (issue 31) is a results file like any other."""
    results = parse_results(_with_header(genuine, paradigm="modular", interface="act"))
    assert results["header"]["paradigm"] == "modular"
    _rejected(_with_header(genuine, paradigm="pipeline"), r"header/paradigm")


def test_huge_and_infinite_numbers_are_rejected_before_conversion(genuine):
    """Was: a 400-digit budget accepted (OverflowError on every page); 1e400 read as
    infinity; a 5,000-digit integer escaped as a traceback."""
    text = json.dumps(genuine)
    for literal, reason in [
        ("1" * 400, r"malformed JSON: integer 111111111111\.\.\.111111 has 400 characters"),
        ("9" * 5000, r"has 5000 characters, more than the 40 allowed"),
        ("1e400", r"malformed JSON: number 1e400 is not finite"),
        ("-1e400", r"malformed JSON: number -1e400 is not finite"),
        ("0." + "0" * 60 + "1", r"number 0\.0000000000\.\.\.000001 has 63 characters"),
    ]:
        data = text.replace('"budget": {}', f'"budget": {{"env_steps": {literal}}}', 1)
        assert data != text
        _rejected(data.encode(), reason)
    seed = f'"seed": {genuine["episodes"][0]["seed"]}'
    _rejected(text.replace(seed, '"seed": ' + "7" * 5000, 1).encode(), "5000 characters")


def test_accepted_budgets_render_in_every_format(genuine, tmp_path):
    """The largest budget the schema takes still gives a well-formed page in each format."""
    from leaderboard.render import FORMATS, render
    from leaderboard.standings import compute_standings

    results = parse_results(_with_header(genuine, budget={"env_steps": 10**15 - 1}))
    store = LeaderboardStore(tmp_path / "lb.sqlite")
    store.add(VerifiedResults(results["header"], _episode_set(), results["episodes"]))
    standings = compute_standings(store.entries())
    for fmt in FORMATS:
        assert render(standings, fmt)
    assert "1e+03T env steps" in render(standings, "table")


def _episode_set():
    from leaderboard.episodes import get_episode_set

    return get_episode_set("Dialog-v1", "test", limit=N)


# -- counts and sizes ---------------------------------------------------------------------
def test_many_empty_episodes_are_rejected_by_their_count_first(genuine):
    """Was: 80,000 empty episodes (241 kB) took 7 s to reject: the schema collected an
    error per item before the size rule applied."""
    results = json.loads(json.dumps(genuine))
    results["episodes"] = [{}] * 80_000
    _rejected(json.dumps(results).encode(), r"at episodes: 80000 items, more than the 500")


def test_the_first_error_is_reported_in_one_line(genuine):
    results = json.loads(json.dumps(genuine))
    results["episodes"][0]["turns"][0]["text"] = "x" * 30_000
    reason = _rejected(json.dumps(results).encode(), r"turns/0/text: 'xxx")
    assert "is longer than 20000 characters" in reason and len(reason) < 300


# -- names --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["expert\n", "expert\r\n", "exp\u0000ert", " expert", "é"])
def test_an_entry_name_must_match_whole_in_the_file_the_cli_and_the_store(genuine, store, name):
    """Was: "expert\\n" passed the name check ($ matches before a final newline), made a
    look-alike second expert and split the Markdown and terminal tables."""
    _rejected(_with_header(genuine, agent=name), r"at header/agent: .* does not match")
    verified = verify_results(genuine)
    with pytest.raises(ResultsRejected, match=r"entry name .* must be 1-64 letters"):
        store_verified(verified, store, name=name)
    with pytest.raises(ValueError, match=r"name .* must be 1-64 letters"):
        store.add(verified, name=name)
    assert store.count() == 0


@pytest.mark.parametrize(
    "field, value",
    [
        ("model_sha256", "0" * 64 + "\n"),
        ("episode_set_sha256", "0" * 64 + "\n"),
        ("env_id", "Dialog-v1\n"),
        ("episode_set", f"Dialog-v1/test[:{N}]\n"),
    ],
)
def test_no_header_pattern_lets_a_final_newline_through(genuine, field, value):
    _rejected(_with_header(genuine, **{field: value}), f"at header/{field}: .* does not match")


# -- the validator against jsonschema -----------------------------------------------------
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=8),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=4,
)


def _paths(node, path=()):
    """Every path into a JSON value (at most 12 children of each container)."""
    yield path
    if isinstance(node, (dict, list)):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in list(items)[:12]:
            yield from _paths(child, (*path, key))


def mutants(results: dict):
    """Objects made from ``results`` by replacing, deleting or adding one value."""
    paths = list(_paths(results))[1:]
    containers = [p for p in [(), *paths] if isinstance(_at(results, p), dict)]
    return st.one_of(
        st.tuples(st.just("set"), st.sampled_from(paths), _VALUES),
        st.tuples(st.just("delete"), st.sampled_from(paths), st.none()),
        st.tuples(
            st.just("add"), st.sampled_from(containers), st.tuples(st.text(max_size=8), _VALUES)
        ),
    ).map(lambda m: _apply(results, *m))


def _at(node, path):
    for key in path:
        node = node[key]
    return node


def _apply(results: dict, how: str, path: tuple, value) -> dict:
    mutant = json.loads(json.dumps(results))
    if how == "add":
        key, value = value
        _at(mutant, path)[key] = value
        return mutant
    parent = _at(mutant, path[:-1])
    if how == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return mutant


def mutant_bytes(results: dict):
    """The bytes of a mutant object, or the genuine file's bytes cut or spliced."""
    text = json.dumps(results).encode()
    cut = st.integers(0, len(text) - 1).map(lambda i: text[:i])
    splice = st.tuples(st.integers(0, len(text)), st.binary(min_size=1, max_size=4)).map(
        lambda m: text[: m[0]] + m[1] + text[m[0] :]
    )
    return st.one_of(mutants(results).map(lambda r: json.dumps(r).encode()), cut, splice)


def test_the_validator_is_never_more_lenient_than_jsonschema(genuine):
    validator = SchemaValidator(load_results_schema())
    reference = jsonschema.Draft202012Validator(load_results_schema())
    assert validator.first_error(genuine) is None and reference.is_valid(genuine)

    @settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutants(genuine))
    def check(mutant):
        if not reference.is_valid(mutant):
            assert validator.first_error(mutant) is not None

    check()


def test_the_validator_is_stricter_than_python_re_and_jsonschema_on_two_points():
    schema = {"properties": {"n": {"type": "integer"}, "s": {"pattern": "^[a-z]+$"}}}
    validator = SchemaValidator(schema)
    assert validator.first_error({"n": 5.0}) == ("n", "5.0 is not of type 'integer'")
    assert validator.first_error({"s": "ab\n"})[0] == "s"
    assert validator.first_error({"n": 5, "s": "ab"}) is None
    with pytest.raises(ValueError, match="keywords this validator lacks: {'oneOf'}"):
        SchemaValidator({"oneOf": []})


# -- fuzzing: mutants of a genuine file ----------------------------------------------------
def test_every_mutant_is_accepted_with_the_replays_numbers_or_rejected_in_one_line(
    genuine, tmp_path_factory
):
    by_seed = {ep["seed"]: ep for ep in verify_results(genuine).episodes}

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutant_bytes(genuine))
    def check(data):
        tmp = tmp_path_factory.mktemp("mutant")
        store = LeaderboardStore(tmp / "lb.sqlite")
        path = tmp / "m.json"
        path.write_bytes(data)
        try:
            outcome = submit_results_file(path, store)
        except ResultsRejected as err:
            assert str(err) and "\n" not in str(err)
            assert store.count() == 0
            return
        (entry,) = store.entries()
        assert entry.returns == tuple(by_seed[s]["return"] for s in entry.seeds)
        assert entry.successes == tuple(by_seed[s]["success"] for s in entry.seeds)
        assert math.isclose(outcome.success, sum(entry.successes) / N)

    check()


# -- fuzzing: well-formed lies, which only the replay can catch ---------------------------
_WORDS = st.from_regex(r"[a-z][a-z ]{0,23}", fullmatch=True)
_DELTA = st.floats(1e-3, 1.0) | st.floats(-1.0, -1e-3)


def replay_mutants(results: dict):
    """Schema-valid objects that differ from ``results`` in one thing the replay recomputes:
    a user or tool turn, a reward, the return, success, an end flag, a metric, a seed, or
    the episodes' number (a duplicate, a missing one). Each parses; each must be rejected
    by verification. (Another order of the same episodes is no lie: it is accepted.)"""
    episodes = range(len(results["episodes"]))

    def said(e):  # the turns the env wrote (the agent's are the submission's to choose)
        turns = results["episodes"][e]["turns"]
        return [i for i, t in enumerate(turns) if t["role"] != "assistant"]

    def numeric(e):
        metrics = results["episodes"][e]["metrics"]
        return [k for k, v in metrics.items() if type(v) in (int, float)]

    other_seeds = st.sampled_from(_episode_set_seeds(len(results["episodes"]) + 8)[-8:])
    pick = st.sampled_from(list(episodes))
    kinds = st.one_of(
        pick.flatmap(
            lambda e: st.tuples(st.just("turn"), st.just(e), st.sampled_from(said(e)), _WORDS)
        ),
        pick.flatmap(
            lambda e: st.tuples(
                st.just("reward"),
                st.just(e),
                st.sampled_from(range(len(results["episodes"][e]["rewards"]))),
                _DELTA,
            )
        ),
        st.tuples(st.just("return"), pick, st.none(), _DELTA),
        st.tuples(st.sampled_from(["success", "terminated"]), pick, st.none(), st.none()),
        pick.flatmap(
            lambda e: st.tuples(st.just("metric"), st.just(e), st.sampled_from(numeric(e)), _DELTA)
        ),
        st.tuples(st.just("seed"), pick, st.none(), other_seeds),
        st.tuples(st.sampled_from(["duplicate", "drop"]), st.none(), st.none(), st.none()),
    )
    return kinds.map(lambda m: _lie(results, *m))


def _episode_set_seeds(n: int) -> list[int]:
    from leaderboard.episodes import get_episode_set

    return list(get_episode_set("Dialog-v1", "test", limit=n).seeds)


def _lie(results: dict, how: str, e, where, value) -> dict:
    mutant = json.loads(json.dumps(results))
    eps = mutant["episodes"]
    if how == "turn":
        old = eps[e]["turns"][where]["text"]
        eps[e]["turns"][where]["text"] = value if value != old else value + " too"
    elif how == "reward":
        eps[e]["rewards"][where] += value
    elif how == "return":
        eps[e]["return"] += value
    elif how in ("success", "terminated"):
        eps[e][how] = not eps[e][how]
    elif how == "metric":
        old = eps[e]["metrics"][where]
        eps[e]["metrics"][where] = old + (1 if isinstance(old, int) else value)
    elif how == "seed":
        eps[e]["seed"] = value
    elif how == "duplicate":
        eps[-1] = copy.deepcopy(eps[0])
    else:
        eps.pop()
    return mutant


def test_every_well_formed_lie_parses_and_is_rejected_by_the_replay(genuine, tmp_path_factory):
    """The fuzzing above mostly dies at JSON parsing or the schema; these mutants pass both,
    so what rejects them is the replay (or the seed check before it)."""

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(replay_mutants(genuine))
    def check(mutant):
        data = json.dumps(mutant).encode()
        parse_results(data)  # well-formed and schema-valid: it reaches verification
        path = tmp_path_factory.mktemp("lie") / "m.json"
        path.write_bytes(data)
        store = LeaderboardStore(path.parent / "lb.sqlite")
        with pytest.raises(ResultsRejected) as err:
            submit_results_file(path, store)
        assert str(err.value) and "\n" not in str(err.value)
        assert store.count() == 0

    check()


def test_a_forged_gold_score_in_a_chat_results_file_is_rejected(tmp_path):
    """The chat board ranks by gold (``metrics.mean_gold``): a file that raises it, and its
    success with it, is refused, and nothing is stored."""
    from leaderboard.episodes import get_episode_set
    from leaderboard.evaluate import evaluate_agent
    from leaderboard.results import write_results

    episode_set = get_episode_set("Dialog-Chat-v1", "test", limit=N)
    genuine = evaluate_agent("random", episode_set, batch_size=N, progress=False)
    assert all(ep["metrics"]["mean_gold"] < 0.5 for ep in genuine["episodes"])
    store = LeaderboardStore(tmp_path / "lb.sqlite")
    submit_results_file(write_results(tmp_path / "genuine.json", genuine), store)  # it verifies
    assert store.count() == 1
    forged = copy.deepcopy(genuine)
    forged["header"]["agent"] = "forged"
    forged["episodes"][0]["metrics"]["mean_gold"] = 1.0
    with pytest.raises(ResultsRejected, match=r"mean_gold") as err:
        submit_results_file(write_results(tmp_path / "forged.json", forged), store)
    assert "\n" not in str(err.value)
    forged["episodes"][0]["success"] = forged["episodes"][0]["metrics"]["success"] = True
    with pytest.raises(ResultsRejected):
        submit_results_file(write_results(tmp_path / "forged2.json", forged), store)
    assert [e.name for e in store.entries()] == ["random"]


# -- fuzzing: names and budgets through every renderer -------------------------------------
_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}", fullmatch=True)
_BUDGET = st.dictionaries(
    st.sampled_from(["env_steps", "demo_episodes", "tokens"]), st.integers(0, 10**15 - 1)
) | st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,39}", fullmatch=True),
    st.floats(0, 1e15, exclude_max=True),
    max_size=3,
)
_ENTRIES = st.lists(
    st.tuples(
        _NAME,
        st.sampled_from(["reference", "sft", "filtered-sft", "rl", "sft-rl"]),
        st.sampled_from(["verified", "declared"]),
        _BUDGET,
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda e: e[0],
)


class _Rows(HTMLParser):
    """The entry rows of a page: each one's data-entry and number of cells."""

    def __init__(self):
        super().__init__()
        self.rows: list[list] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and attrs.get("class") == "entry":
            self.rows.append([attrs["data-entry"], attrs["data-labels"], 0])
        elif tag == "td" and self.rows:
            self.rows[-1][2] += 1


def _check_pages(standings, entries) -> None:
    from leaderboard.render import COLUMNS, render, render_table

    names = {name for name, *_ in entries}
    labels = {name: label for name, _, label, _ in entries}
    checked = {"verified": "played by the board", "declared": "replayed"}
    assert max(map(len, render(standings, "table").splitlines())) <= 120
    table = render_table(standings, width=10_000)  # a row a line, to read each row back
    header = table.splitlines().index(next(x for x in table.splitlines() if x.startswith("# ")))
    rows = table.splitlines()[header + 2 : header + 2 + len(entries)]
    assert {r.split()[1] for r in rows} == names
    # the cell starts with how the entry was checked (flags such as "same weights as" follow)
    assert all(f"  {checked[labels[r.split()[1]]]}" in r for r in rows)
    md_rows = [r for r in render(standings, "md").splitlines() if r.startswith("|")]
    assert len(md_rows) == 2 + len(entries)
    assert all(r.count("|") == len(COLUMNS) + 1 for r in md_rows)
    md_checked = {  # a name's Markdown characters are backslash-escaped
        re.sub(r"\\(.)", r"\1", r.split(" | ")[1]): r.split(" | ")[COLUMNS.index("checked")].split(
            ";"
        )[0]
        for r in md_rows[2:]
    }
    assert md_checked == {n: checked[label] for n, label in labels.items()}
    data = json.loads(render(standings, "json"))
    assert {e["name"]: e["labels"] for e in data["sets"][0]["entries"]} == labels
    assert all(math.isfinite(v) for e in data["sets"][0]["entries"] for v in e["budget"].values())
    parser = _Rows()
    parser.feed(render(standings, "html"))
    assert {(n, lab) for n, lab, _ in parser.rows} == set(labels.items())
    assert {cells for *_, cells in parser.rows} == {len(COLUMNS)}


def test_any_valid_names_and_budgets_keep_every_page_well_formed(genuine, tmp_path_factory):
    """Was: a budget of 1.7e308 broke --format html, a 400-digit one every format, and a
    name "expert\\n" split the Markdown and terminal tables."""
    from leaderboard.standings import compute_standings

    episode_set = _episode_set()

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_ENTRIES)
    def check(entries):
        store = LeaderboardStore(tmp_path_factory.mktemp("pages") / "lb.sqlite")
        for name, paradigm, label, budget in entries:
            data = _with_header(genuine, agent=name, paradigm=paradigm, budget=budget)
            results = parse_results(data)  # the schema takes every one of them
            verified = VerifiedResults(results["header"], episode_set, results["episodes"])
            store.add(verified, labels=label)
        _check_pages(compute_standings(store.entries()), entries)

    check()


@settings(max_examples=600, deadline=None)
@given(st.text(max_size=70))
def test_any_name_is_either_a_valid_entry_name_or_refused_in_one_line(name):
    from leaderboard.agent_card import ENTRY_NAME, check_entry_name

    try:
        assert check_entry_name(name) == name
    except ValueError as err:
        assert "\n" not in str(err) and not ENTRY_NAME.fullmatch(name)
    else:
        assert ENTRY_NAME.fullmatch(name) and "\n" not in name
