"""Rule-based replies to chat requests: a good answerer and the ways it can go wrong.

:func:`good_reply` answers from the venues it knows (the whole database for the preference
data, or only what the transcript's search results showed, for the act interface) and
never invents: what it does not know it says it does not know. :data:`REPLY_GENERATORS`
are the generators of ``dialog-bench prefs``: the good answerer and degraded ones, each a
pure function of the request, the venues known (what the context's search results
showed), the database and a random generator. The degraded ones degrade the good answer
from those same venues; only ``wrong`` reaches into the database, for a real venue the
context never showed. Two write no answer at all: ``random``, a few lower-case words of
letters, and ``sampled``, what the env's ``action_space.sample()`` writes (up to
:data:`SAMPLED_MAX_CHARS` characters of printable ASCII, as the seed's random loop sends
them), so a reward model trained on the pairs has seen that loop's messages too.

>>> from dialog_env.tasks.booking.domain import load_database
>>> db, _ = load_database()
>>> ask = ChatAct("compare", names=("The Amber Fig", "The Amber Cellar"), asks=("price",))
>>> print(good_reply(ask, db.by_name))  # doctest: +NORMALIZE_WHITESPACE
Happy to help! The Amber Fig is in the cheap price range and
The Amber Cellar is in the expensive price range.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from gymnasium.spaces import Text

from dialog_env.tasks.booking.domain import Venue, VenueDatabase
from dialog_env.tasks.chat.requests import ChatAct
from dialog_env.tasks.chat.voice import SLOT_WORDS
from dialog_env.text import CHARSET, normalize_message

__all__ = [
    "INVENTED_NAMES",
    "REPLY_GENERATORS",
    "SAMPLED_MAX_CHARS",
    "good_reply",
    "make_reply",
    "sampled_message",
]

#: Names of venues that do not exist, for the degraded generator that invents one.
INVENTED_NAMES = ("The Silver Anchor", "The Rusty Compass", "The Velvet Harbour", "The Quiet Heron")
#: The env's ``max_message_chars`` (its action space's ``max_length``), for ``sampled``.
SAMPLED_MAX_CHARS = 500
_FILLER = (
    " As you may know, choosing a restaurant is a very personal matter and many factors play a"
    " role, such as the atmosphere, the service, the location and of course the menu itself,"
    " so I would always encourage you to read several reviews, ask your friends and family,"
    " and maybe even visit the place beforehand to get a feeling for it before you decide."
)


def _fact(venue: Venue, slot: str) -> str:
    if slot == "area":
        return f"{venue.name} is in the {venue.area}"
    if slot == "food":
        return f"{venue.name} serves {venue.food} food"
    if slot == "price":
        return f"{venue.name} is in the {venue.price} price range"
    return f"the {SLOT_WORDS[slot]} of {venue.name} is {venue.fact(slot)}"


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lookup(known: Mapping[str, Venue], name: str) -> Venue | None:
    return known.get(name.lower())


def good_reply(request: ChatAct, known: Mapping[str, Venue]) -> str:
    """A correct, concise, polite answer from the venues in ``known`` (lower-case name ->
    venue); what it cannot find there it says it does not know."""
    if request.intent == "recommend":
        wishes = dict(request.wishes)
        fits = sorted((v for v in known.values() if v.matches(wishes)), key=lambda v: v.name)
        if not fits:
            return "Sorry, I could not find a restaurant like that yet."
        v = fits[0]
        return (
            f"Happy to help! I recommend {v.name}: it serves {v.food} food in the {v.area} "
            f"and is in the {v.price} price range."
        )
    venues = [_lookup(known, n) for n in request.names]
    if any(v is None for v in venues):
        missing = [n for n, v in zip(request.names, venues, strict=True) if v is None]
        return f"Sorry, I do not know {' or '.join(missing)} yet."
    parts = [_fact(v, s) for v in venues for s in request.asks]
    return f"Happy to help! {_capitalized(' and '.join(parts))}."


Known = Mapping[str, Venue]


def _good(request: ChatAct, known: Known, db: VenueDatabase, rng: np.random.Generator) -> str:
    return good_reply(request, known)


def _invents(request: ChatAct, known: Known, db: VenueDatabase, rng: np.random.Generator) -> str:
    """The good answer with its venue(s) swapped for an invented one."""
    reply = good_reply(request, known)
    fake = INVENTED_NAMES[int(rng.integers(len(INVENTED_NAMES)))]
    for venue in [v for v in db.venues if v.name in reply][:1]:
        reply = reply.replace(venue.name, fake)
    return reply


def _omits(request: ChatAct, known: Known, db: VenueDatabase, rng: np.random.Generator) -> str:
    """Half an answer: one venue of a comparison, one fact of two, no name for a wish."""
    if request.intent == "recommend":
        slot, value = request.wishes[0]
        return f"Sure, there are some nice {value} places, have a look around."
    venue = _lookup(known, request.names[0])
    if (len(request.asks) == 1 and len(request.names) == 1) or venue is None:
        return "Sure, that is a lovely place."
    return f"Sure! {_capitalized(_fact(venue, request.asks[0]))}."


def _wrong(request: ChatAct, known: Known, db: VenueDatabase, rng: np.random.Generator) -> str:
    """The good answer about another, wrong venue (a real one)."""
    others = [v for v in db.venues if v.name not in request.names]
    if request.intent == "recommend":
        others = [v for v in others if not v.matches(dict(request.wishes))]
    other = others[int(rng.integers(len(others)))]
    reply = good_reply(request, known)
    named = [v for v in db.venues if v.name in reply]
    return reply.replace(named[0].name, other.name) if named else reply


def _verbose(request: ChatAct, known: Known, db: VenueDatabase, rng: np.random.Generator) -> str:
    return good_reply(request, known) + _FILLER


def _curt(request: ChatAct, known: Known, db: VenueDatabase, rng: np.random.Generator) -> str:
    """The facts without courtesy, and a rude word."""
    return "Obviously, " + good_reply(request, known).removeprefix("Happy to help! ")


def _random(request: ChatAct, known: Known, db: VenueDatabase, rng: np.random.Generator) -> str:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz     "))
    return "".join(rng.choice(letters, size=int(rng.integers(5, 60)))).strip() or "ok"


def sampled_message(rng: np.random.Generator) -> str:
    """A draw of the env's action space (``Text(max_length=500, charset=CHARSET)``: a
    uniform length in [1, 500], then uniform characters), drawn from ``rng`` as the
    space's own ``sample()`` draws, and normalized as the env normalizes a message: the
    text the reward model scores when the seed's loop sends ``action_space.sample()``."""
    sample = Text(max_length=SAMPLED_MAX_CHARS, charset=CHARSET, seed=rng).sample()
    return normalize_message(sample, SAMPLED_MAX_CHARS)[0]


def _sampled(request: ChatAct, known: Known, db: VenueDatabase, rng: np.random.Generator) -> str:
    return sampled_message(rng)


#: Generator name -> ``(request, known, db, rng) -> reply``.
REPLY_GENERATORS: dict[str, Callable[[ChatAct, Known, VenueDatabase, np.random.Generator], str]] = {
    "good": _good,
    "invents": _invents,
    "omits": _omits,
    "wrong": _wrong,
    "verbose": _verbose,
    "curt": _curt,
    "random": _random,
    "sampled": _sampled,
}


def make_reply(
    generator: str,
    request: ChatAct,
    db: VenueDatabase,
    rng: np.random.Generator,
    known: Known | None = None,
) -> str:
    """The reply of the named generator (one of :data:`REPLY_GENERATORS`) from the venues
    ``known`` (lower-case name -> venue; default: the whole database)."""
    if generator not in REPLY_GENERATORS:
        raise ValueError(f"generator must be one of {tuple(REPLY_GENERATORS)}, got {generator!r}")
    return REPLY_GENERATORS[generator](request, db.by_name if known is None else known, db, rng)
