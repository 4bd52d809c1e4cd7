"""``load_entry_point``: the one resolver of ``"module:attr"`` strings."""

from __future__ import annotations

import pytest

from agents import AGENTS
from agents.checkpoint import KINDS
from dialog_env.entry_points import load_entry_point
from dialog_env.tasks import TASKS


def test_every_registry_string_resolves():
    for spec in (*TASKS.values(), *AGENTS.values(), *KINDS.values()):
        assert callable(load_entry_point(spec)), spec


def test_a_dotted_attribute_resolves():
    assert load_entry_point("dialog_env.text:Turn.as_dict").__name__ == "as_dict"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("dialog_env.text", "is not an entry point: write it as 'package.module:name'"),
        ("dialog_env.text:", "is not an entry point"),
        (":Turn", "is not an entry point"),
        ("dialog_env.text:Turn:x", "is not an entry point"),
        ("dialog_env text:Turn", "is not an entry point"),
        (42, "is not an entry point"),
        ("dialog_env.no_such_module:Thing", "no module named 'dialog_env.no_such_module'"),
        ("no_such_package.mod:Thing", "no module named 'no_such_package'"),
        ("dialog_env.text:NoSuchThing", "'dialog_env.text' has no attribute 'NoSuchThing'"),
    ],
)
def test_a_bad_string_gets_a_clear_error(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        load_entry_point(spec)
