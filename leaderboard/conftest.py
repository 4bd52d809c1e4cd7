"""pytest only (as numpy's and pandas' in-package conftests): the doctests of
``seed_aggregates`` call rliable, the optional ``stats`` extra, so they skip where it is not
installed; the module itself imports it only when an aggregate is asked for, and its tests
under ``tests/`` skip alike."""

from __future__ import annotations

from importlib.util import find_spec

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the doctests of the modules whose examples need rliable, without it."""
    if find_spec("rliable") is not None:
        return
    skip = pytest.mark.skip(reason="needs the optional extra stats (rliable)")
    for item in items:
        if item.nodeid.startswith("leaderboard/seed_aggregates.py::"):
            item.add_marker(skip)
