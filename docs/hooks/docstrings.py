"""An mkdocs hook: docstrings written for ``help()`` and doctest read well on the site.

The API reference renders each docstring as Markdown. Ours hold doctests (``>>>`` lines,
which Markdown reads as nested quotes and runs together) and Sphinx roles
(``:class:`EpisodeOver```, shown as written), and reST's ``::`` before a literal block.
This hook adds a preprocessor to the Markdown that mkdocs and mkdocstrings build: it fences
each doctest as a ``pycon`` code block, writes a role as plain code and a closing ``::`` as
``:``. Fenced code blocks are left as they are.
"""

from __future__ import annotations

import re

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority

ROLE = re.compile(r":(?:py:)?(?:func|class|mod|data|meth|attr|exc|obj|const):`~?([^`]+)`")
FENCE = re.compile(r"^\s*(```|~~~)")
PROMPT = re.compile(r"^(\s*)>>>( |$)")
LITERAL = re.compile(r"(\S)::$")  # reST: "said to the user::" then an indented block


def docstring_markdown(lines: list[str]) -> list[str]:
    """Each run of doctest lines (a ``>>>`` line up to the next blank one) fenced as
    ``pycon``; outside fences, roles written as code and a closing ``::`` as ``:``.

    >>> docstring_markdown(["Text :func:`f`::", ">>> 1 + 1", "2", "", "After."])
    ['Text `f`:', '', '```pycon', '>>> 1 + 1', '2', '```', '', 'After.']
    """
    out: list[str] = []
    in_fence = in_doctest = False
    indent = ""
    for line in lines:
        if in_doctest and not line.strip():
            out.append(f"{indent}```")  # the blank line follows, as written
            in_doctest = False
        if in_doctest:
            out.append(line)
            continue
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (prompt := PROMPT.match(line)):
            indent, in_doctest = prompt.group(1), True
            out += ["", f"{indent}```pycon", line]
            continue
        out.append(line if in_fence else LITERAL.sub(r"\1:", ROLE.sub(r"`\1`", line)))
    if in_doctest:
        out.append(f"{indent}```")
    return out


class DoctestPreprocessor(Preprocessor):
    """:func:`docstring_markdown` as a Markdown preprocessor."""

    def run(self, lines: list[str]) -> list[str]:
        return docstring_markdown(lines)


class DocstringMarkdown(Extension):
    """The Markdown extension that registers :class:`DoctestPreprocessor`."""

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 (Markdown's API)
        # before the fenced-code preprocessors (priority 25 and 30) turn fences into HTML
        md.preprocessors.register(DoctestPreprocessor(md), "dialog_bench_doctests", 40)


@event_priority(100)  # before mkdocstrings takes the list of extensions for its own Markdown
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Add :class:`DocstringMarkdown` to the site's Markdown extensions."""
    config.markdown_extensions.append(DocstringMarkdown())
    return config
