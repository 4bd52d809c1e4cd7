"""The restaurant world that the booking and chat tasks share: how its facts are written.

Both tasks talk about the venues of one database (:mod:`dialog_env.tasks.booking.domain`,
generated once and shipped): the booking task's user reads the facts an assistant gives
(:func:`dialog_env.tasks.booking.parser.parse_agent`), the chat task's gold judge reads
the facts a reply states (:func:`dialog_env.tasks.chat.judge.stated_facts`). They read
them with the patterns below, so that a phone number or a postcode is one thing in both.

The database writes a phone as ``01223`` and six digits with one space, a postcode as
``cb``, a district, one space and an inward code of a digit and two letters
(``cb1 5zp``). A reply may drop either space; :func:`phone_text` and
:func:`postcode_text` give a match back in the database's spelling.

>>> [postcode_text(m) for m in POSTCODE_RE.findall("at cb15zp or cb12 3ab")]
['cb1 5zp', 'cb12 3ab']
>>> [phone_text(m) for m in PHONE_RE.findall("call 01223764182")]
['01223 764182']
"""

from __future__ import annotations

import re

__all__ = ["PHONE_RE", "POSTCODE_RE", "phone_text", "postcode_text"]

#: A Cambridge phone number, with or without the space after the area code (lower case).
PHONE_RE = re.compile(r"\b01223 ?\d{6}\b")
#: A Cambridge postcode, with or without its space (lower case): ``cb1 5zp``, ``cb15zp``.
POSTCODE_RE = re.compile(r"\bcb\d{1,2} ?\d[a-z]{2}\b")


def phone_text(match: str) -> str:
    """A :data:`PHONE_RE` match as the database writes it: ``01223 764182``."""
    digits = match.replace(" ", "")
    return f"{digits[:5]} {digits[5:]}"


def postcode_text(match: str) -> str:
    """A :data:`POSTCODE_RE` match as the database writes it: ``cb1 5zp`` (the inward
    code, a digit and two letters, is always the last three characters)."""
    code = match.replace(" ", "")
    return f"{code[:-3]} {code[-3:]}"
