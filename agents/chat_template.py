"""A chat model's template rendered within bounds: its size, its time, its memory, its output.

A chat template is code that comes with the model (Jinja, run in transformers' sandbox:
it cannot read files or import). The sandbox bounds what a template may reach, not what
it may cost: two nested ``range(100000)`` loops run for hours, ``'x' * 1000000000``
takes a gigabyte. :func:`render_chat` renders a tokenizer's template with the
generation prompt and refuses, in one line (:class:`TemplateRefused`, a ``ValueError``):

- a template source over :data:`MAX_TEMPLATE_CHARS` characters (before it is compiled);
- a render that runs past :data:`RENDER_SECONDS` (the template's own lines are traced
  for the deadline, in this thread only, during the render only);
- a render that needs more than :data:`RENDER_MEMORY_BYTES` more memory (the address
  space is capped for the render where the OS allows it: Linux);
- a rendered prompt over :data:`MAX_PROMPT_CHARS` characters.

Real templates are a few kilobytes and render in about a millisecond.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "MAX_PROMPT_CHARS",
    "MAX_TEMPLATE_CHARS",
    "RENDER_MEMORY_BYTES",
    "RENDER_SECONDS",
    "TemplateRefused",
    "check_template_source",
    "render_chat",
]

#: The longest chat template accepted, in characters (real ones: 1-20 thousand).
MAX_TEMPLATE_CHARS = 100_000
#: The longest rendered prompt accepted, in characters (a transcript is far shorter).
MAX_PROMPT_CHARS = 1_000_000
#: The longest one render may take, in seconds.
RENDER_SECONDS = 2.0
#: The most memory one render may add, in bytes.
RENDER_MEMORY_BYTES = 256 << 20
#: The file name Jinja gives the code it compiles a template to: its lines are traced.
_TEMPLATE_CODE = "<template>"


class TemplateRefused(ValueError):
    """A chat template over one of the bounds: a one-line reason."""


class _Deadline(BaseException):
    """Raised into the template's frames at the deadline (a BaseException, so that no
    ``except Exception`` on the way swallows it)."""


def check_template_source(template: Any, name: str) -> None:
    """Refuse a chat template (a string, or a dict of named ones) over the size bound."""
    sources = template.values() if isinstance(template, dict) else [template]
    size = sum(len(s) for s in sources if isinstance(s, str))
    if size > MAX_TEMPLATE_CHARS:
        raise TemplateRefused(
            f"{name}: its chat template is {size} characters long (at most "
            f"{MAX_TEMPLATE_CHARS}): refusing it"
        )


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Trace the template's own frames in this thread; raise :class:`_Deadline` in them
    once ``seconds`` have passed. A tracer already set (a debugger, coverage) is put back."""
    end = time.perf_counter() + seconds

    def local(frame, event, arg):
        if time.perf_counter() > end:
            raise _Deadline
        return local

    def calls(frame, event, arg):
        if frame.f_code.co_filename == _TEMPLATE_CODE:
            return local(frame, event, arg)
        return None

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        yield
    finally:
        sys.settrace(previous)


@contextmanager
def _memory_cap(extra_bytes: int) -> Iterator[None]:
    """Cap this process's address space at its present size plus ``extra_bytes`` (Linux;
    elsewhere nothing is capped), so that a runaway allocation fails with MemoryError."""
    try:
        import resource

        with open("/proc/self/statm") as fh:
            present = int(fh.read().split()[0]) * resource.getpagesize()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        yield
        return
    cap = present + extra_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft != resource.RLIM_INFINITY and soft <= cap:
        yield  # already capped tighter
        return
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def render_chat(
    tokenizer: Any,
    messages: list[dict[str, str]],
    name: str,
    seconds: float = RENDER_SECONDS,
    max_chars: int = MAX_PROMPT_CHARS,
) -> str:
    """``tokenizer``'s chat template over ``messages`` with the generation prompt, within
    the bounds; :class:`TemplateRefused` (naming ``name``) past any of them. Errors the
    template raises itself (``raise_exception``) pass through unchanged."""
    check_template_source(getattr(tokenizer, "chat_template", None), name)
    try:
        with _memory_cap(RENDER_MEMORY_BYTES), _deadline(seconds):
            text = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
    except _Deadline:
        raise TemplateRefused(
            f"{name}: its chat template took over {seconds:g} s to render: refusing it"
        ) from None
    except MemoryError:
        raise TemplateRefused(
            f"{name}: its chat template needed over {RENDER_MEMORY_BYTES >> 20} MiB to "
            "render: refusing it"
        ) from None
    if not isinstance(text, str) or len(text) > max_chars:
        size = len(text) if isinstance(text, str) else type(text).__name__
        raise TemplateRefused(
            f"{name}: its chat template rendered {size} characters (at most {max_chars}): "
            "refusing it"
        )
    return text
