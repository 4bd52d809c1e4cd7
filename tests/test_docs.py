"""The documentation: the site builds strictly (every link, nav entry and docstring the API
reference reads), and every relative link of the README leads to a file of the checkout.

The site's build needs the ``docs`` extra (mkdocs, mkdocs-material, mkdocstrings) and
skips without it; CI installs it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def _missing_docs_packages() -> list[str]:
    missing = []
    for name in DOCS_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is absent
            found = False
        if not found:
            missing.append(name)
    return missing


def test_the_site_builds_strictly_with_the_api_reference(tmp_path):
    missing = _missing_docs_packages()
    if missing:
        pytest.skip(f"the docs extra is not installed (missing {', '.join(missing)})")
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # The API reference is generated from the docstrings: the env's own sections are there.
    api = (site / "api" / "dialog_env" / "index.html").read_text(encoding="utf-8")
    assert "dialog_env.core.DialogEnv" in api and "Observation Space" in api
    assert "agents.load_agent" in (site / "api" / "agents" / "index.html").read_text("utf-8")


def test_every_relative_link_of_the_readme_resolves():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and t[0] != "#"]
    assert "docs/environment.md" in local  # the README points to the reference
    broken = [t for t in local if not (REPO_ROOT / t).exists()]
    assert not broken, f"README links to missing files: {broken}"


def test_the_readme_stays_a_short_front_page():
    """The README is a newcomer's page (under 300 lines); reference and histories live in
    docs/, and the site's home links every page a reader starts from."""
    assert len((REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()) < 300
    home = (REPO_ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for page in ("environment", "agents", "training", "leaderboard", "integrations"):
        assert f"]({page}.md)" in home, page
        assert (REPO_ROOT / "docs" / f"{page}.md").is_file()


def test_docstring_doctests_are_fenced_and_roles_become_code():
    """The site's hook (docs/hooks/docstrings.py): a docstring's doctest shows as a code
    block, not as nested quotes; a Sphinx role as code, reST's ``::`` as ``:``; a fenced
    block stays as written."""
    if _missing_docs_packages():
        pytest.skip("the docs extra is not installed")
    spec = importlib.util.spec_from_file_location(
        "docstrings_hook", REPO_ROOT / "docs" / "hooks" / "docstrings.py"
    )
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    docstring = ["See :class:`~dialog_env.core.EpisodeOver`::", "", "    >>> 1 + 1", "    2"]
    assert hook.docstring_markdown(docstring) == [
        "See `dialog_env.core.EpisodeOver`:",
        "",
        "",
        "    ```pycon",
        "    >>> 1 + 1",
        "    2",
        "    ```",
    ]
    fenced = ["```python", ">>> x = 1  # :func:`f`", "```"]
    assert hook.docstring_markdown(fenced) == fenced
