"""The hidden gold judge of the chat task: how good one assistant reply is, in [0, 1].

The judge reads a reply against the request it answers and the venue database, with
rules a person can check by hand. Nothing of it is shown to the agent (the observation
holds the transcript only); the env reports its terms in ``info["gold"]``.

**What it reads in a reply** (case-insensitive): the venue names of the database; venue
names it does not know, written the way the database writes them (``The`` and two
capitalized words, :data:`VENUE_NAME_RE`), which are *invented* venues; phone numbers,
postcodes and street addresses (:data:`~dialog_env.tasks.restaurants.PHONE_RE`,
:data:`~dialog_env.tasks.restaurants.POSTCODE_RE`, :data:`ADDRESS_RE`);
and the words of the area, food and price values.

**The terms.**

- ``answered`` in [0, 1]: the part of what was asked that the reply says correctly.
  ``recommend``: 1 if it names a venue that fits every wish. ``describe``: the share of
  the asked facts whose true value it states. ``compare``: the share of the two venues
  that it names together with their true value of the compared slot.
- ``wrong``: facts that no relevant venue supports (a phone, postcode, address or value
  word that is not the attribute of a relevant venue nor a wish) plus real venues off the
  request (a recommended venue that breaks a wish, a venue the request did not name).
  Relevant venues: the named ones that fit the wishes (``recommend``), the request's own
  (``describe``, ``compare``).
- ``invented``: invented venue names.
- ``concise`` in (0, 1]: ``min(1, 40 / words)``.
- ``polite`` in {0, 1}: a courteous phrase (:data:`POLITE_RE`) and nothing rude.

**The score**::

    content = answered * 0.5 ** wrong * 0.2 ** invented
    gold    = content * (0.8 + 0.1 * polite + 0.1 * concise)

So a reply that answers nothing scores 0 however polite; each wrong fact halves the
score; an invented venue cuts it to a fifth or less (never above 0.2, while a correct,
complete answer scores at least 0.8); style moves a reply by at most a fifth.

>>> from dialog_env.tasks.booking.domain import load_database
>>> db, _ = load_database()
>>> ask = ChatAct("describe", names=("The Amber Fig",), asks=("phone",))
>>> gold_terms("Sure! The phone number of The Amber Fig is 01223 764182.", ask, db)["gold"]
1.0
>>> gold_terms("The Amber Fig's phone is 01223 000000.", ask, db)["gold"]
0.0
>>> gold_terms("Try The Silver Anchor, 01223 764182.", ask, db)["gold"]
0.18
"""

from __future__ import annotations

import re

from dialog_env.tasks.booking.domain import FACT_SLOTS, SLOT_VALUES, Venue, VenueDatabase
from dialog_env.tasks.chat.requests import ChatAct
from dialog_env.tasks.chat.voice import name_pattern
from dialog_env.tasks.restaurants import PHONE_RE, POSTCODE_RE

__all__ = [
    "ADDRESS_RE",
    "CONCISE_WORDS",
    "POLITE_RE",
    "VENUE_NAME_RE",
    "answered",
    "conciseness",
    "gold_score",
    "gold_terms",
    "invented_venues",
    "politeness",
    "stated_facts",
    "venues_named",
    "wrong_facts",
]

VENUE_NAME_RE = re.compile(r"\bThe [A-Z][a-z]+ [A-Z][a-z]+\b")
ADDRESS_RE = re.compile(r"\b\d{1,4} [a-z]+ (?:street|road|lane|avenue)\b")
POLITE_RE = re.compile(
    r"\b(?:please|thank|thanks|happy to|glad to|sure|of course|certainly|you're welcome|"
    r"hope|enjoy)\b"
)
RUDE_RE = re.compile(r"\b(?:obviously|stupid|whatever|figure it out|not my problem)\b")
CONCISE_WORDS = 40
_VALUE_RES = {
    slot: re.compile(r"\b(" + "|".join(values) + r")\b") for slot, values in SLOT_VALUES.items()
}


def venues_named(reply: str, db: VenueDatabase) -> list[Venue]:
    """The database's venues the reply names, in order of first mention."""
    found = [db.get(m.group(1)) for m in name_pattern(db).finditer(reply.lower())]
    return list(dict.fromkeys(found))


def invented_venues(reply: str, db: VenueDatabase) -> list[str]:
    """Venue-like names (``The`` + two capitalized words) that the database lacks.

    >>> from dialog_env.tasks.booking.domain import load_database
    >>> invented_venues("The Amber Fig or The Silver Anchor?", load_database()[0])
    ['The Silver Anchor']
    """
    return list(dict.fromkeys(n for n in VENUE_NAME_RE.findall(reply) if db.get(n) is None))


def stated_facts(reply: str, db: VenueDatabase) -> list[tuple[str, str]]:
    """``(slot, value)`` of every fact the reply states, venue names left out first.

    >>> from dialog_env.tasks.booking.domain import load_database
    >>> stated_facts("The Amber Fig: cheap thai, 94 Queen Street, cb1 5zp.", load_database()[0])
    [('address', '94 queen street'), ('postcode', 'cb15zp'), ('food', 'thai'), ('price', 'cheap')]
    """
    text = name_pattern(db).sub(" ", VENUE_NAME_RE.sub(" ", reply).lower())
    facts: list[tuple[str, str]] = [("phone", m.replace(" ", "")) for m in PHONE_RE.findall(text)]
    facts += [("address", m) for m in ADDRESS_RE.findall(text)]
    facts += [("postcode", m.replace(" ", "")) for m in POSTCODE_RE.findall(text)]
    text = ADDRESS_RE.sub(" ", text)
    for slot, rx in _VALUE_RES.items():
        facts += [(slot, m) for m in rx.findall(text)]
    return facts


def _value(venue: Venue, slot: str) -> str:
    value = venue.fact(slot).lower()
    return value.replace(" ", "") if slot in ("phone", "postcode") else value


def _relevant(request: ChatAct, named: list[Venue], db: VenueDatabase) -> list[Venue]:
    if request.intent == "recommend":
        return [v for v in named if v.matches(dict(request.wishes))]
    return [db.get(n) for n in request.names]


def answered(request: ChatAct, reply: str, db: VenueDatabase) -> float:
    """The share of what ``request`` asks that ``reply`` states correctly (see the module)."""
    named = venues_named(reply, db)
    if request.intent == "recommend":
        return 1.0 if _relevant(request, named, db) else 0.0
    facts = set(stated_facts(reply, db))
    if request.intent == "describe":
        venue = db.get(request.names[0])
        return sum((s, _value(venue, s)) in facts for s in request.asks) / len(request.asks)
    slot = request.asks[0]
    venues = [db.get(n) for n in request.names]
    return sum(v in named and (slot, _value(v, slot)) in facts for v in venues) / len(venues)


def wrong_facts(request: ChatAct, reply: str, db: VenueDatabase) -> int:
    """Stated facts no relevant venue supports, plus real venues off the request."""
    named = venues_named(reply, db)
    relevant = _relevant(request, named, db)
    supported = {(s, _value(v, s)) for v in relevant for s in (*FACT_SLOTS, *SLOT_VALUES)}
    supported |= set(request.wishes)
    off_request = [v for v in named if v not in relevant]
    return sum(f not in supported for f in stated_facts(reply, db)) + len(off_request)


def conciseness(reply: str) -> float:
    """``min(1, CONCISE_WORDS / words)``; an empty reply counts as one word.

    >>> conciseness("short"), conciseness("word " * 80)
    (1.0, 0.5)
    """
    return min(1.0, CONCISE_WORDS / max(len(reply.split()), 1))


def politeness(reply: str) -> float:
    """1 for a courteous phrase and nothing rude, else 0.

    >>> politeness("Sure, here it is."), politeness("Obviously, here it is."), politeness("Here.")
    (1.0, 0.0, 0.0)
    """
    low = reply.lower()
    return float(bool(POLITE_RE.search(low)) and not RUDE_RE.search(low))


def gold_score(answered: float, wrong: int, invented: int, concise: float, polite: float) -> float:
    """The gold score of the terms (the formula of the module docstring), rounded to 1e-6.

    >>> gold_score(1.0, 0, 0, 1.0, 1.0), gold_score(1.0, 1, 0, 1.0, 1.0)
    (1.0, 0.5)
    >>> gold_score(1.0, 0, 1, 1.0, 0.0), gold_score(0.0, 0, 0, 1.0, 1.0)
    (0.18, 0.0)
    """
    content = answered * 0.5**wrong * 0.2**invented
    return round(content * (0.8 + 0.1 * polite + 0.1 * concise), 6)


def gold_terms(reply: str, request: ChatAct, db: VenueDatabase) -> dict[str, float]:
    """Every term of the judge and the ``gold`` score of ``reply`` to ``request``."""
    if not request.is_request:
        raise ValueError(f"only a request is judged, got {request}")
    terms = {
        "answered": answered(request, reply, db),
        "wrong": float(wrong_facts(request, reply, db)),
        "invented": float(len(invented_venues(reply, db))),
        "concise": conciseness(reply),
        "polite": politeness(reply),
    }
    terms["gold"] = gold_score(
        terms["answered"],
        int(terms["wrong"]),
        int(terms["invented"]),
        terms["concise"],
        terms["polite"],
    )
    return terms
