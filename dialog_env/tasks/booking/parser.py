"""A transparent rule-based reader of booking-task text, for both sides of the dialogue.

``parse_user`` reads a user sentence into acts (the voice's faithfulness check and the
rule-based agents use it); ``parse_agent`` reads an assistant message into the acts the
simulated user reacts to. Both are regular expressions over a lexicon of the shipped
slot values, venue names and addresses: what they accept is visible in this file.
"""

from __future__ import annotations

import re
from functools import lru_cache

from dialog_env.tasks.booking.acts import Act, canonical
from dialog_env.tasks.booking.domain import (
    DAYS,
    MAX_PEOPLE,
    SLOT_VALUES,
    TIMES,
    VenueDatabase,
    load_database,
)
from dialog_env.tasks.restaurants import PHONE_RE, POSTCODE_RE, phone_text, postcode_text

__all__ = [
    "Lexicon",
    "REFERENCE_RE",
    "booking_values",
    "get_lexicon",
    "parse_agent",
    "parse_user",
    "user_acts",
]

TIME_RE = re.compile(r"\b(\d{1,2}:\d{2})\b")
#: Booking references: 8 upper-case letters and digits, at least one of each.
REFERENCE_RE = re.compile(r"\b(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{8}\b")
PEOPLE_RE = re.compile(
    r"\b(\d{1,2}) (?:people|persons|guests|diners|of us)\b|\bfor (\d{1,2})\b(?!:)"
)
DAY_RE = re.compile(r"\b(" + "|".join(DAYS) + r")\b")

_SLOT_WORDS = {"area": "area", "food": "type of food", "price": "price range"}
_DONTCARE_RE = re.compile(
    r"(?:don't|do not) (?:mind|care about) the (area|type of food|food|price range|price)"
    r"|\bany (area|type of food|food|price range|price)\b"
    r"|\b(area|type of food|food|price range|price) (?:doesn't|does not) matter"
)
_DONTCARE_SLOT = {
    "area": "area",
    "type of food": "food",
    "food": "food",
    "price range": "price",
    "price": "price",
}


def _rx(pattern: str) -> re.Pattern[str]:
    # Cues are matched against lower-cased text: case-insensitive regexes are far slower.
    return re.compile(pattern)


_USER_CUES = {
    "reject": _rx(r"not what i (?:asked|want)|does(?:n't| not) fit|not right for me|that won't do"),
    "affirm": _rx(r"sounds (?:good|great|fine)|that's great|perfect|that works|that will do"),
    "negate": _rx(r"(?:don't|do not|no) need (?:a|to) book|no booking|don't want (?:a|to) book"),
    "insist": _rx(r"check again|look again|sure there is|must be one"),
    "reqrec": _rx(r"which one|recommend"),
    "repeat": _rx(r"didn't understand|did not understand|\bpardon\b|what do you mean"),
    "giveup_bye": _rx(r"never mind|forget it|give up"),
    "thank_bye": _rx(r"\bthank(?:s| you)\b.*\bbye\b|\bgoodbye\b"),
}
_FACT_CUES = {
    "phone": _rx(r"\bphone\b|\bnumber\b"),
    "address": _rx(r"\baddress\b"),
    "postcode": _rx(r"\bpost ?code\b"),
}
_AGENT_REQUEST_CUES = {
    "area": _rx(r"\barea\b|part of (?:the )?town|\bwhere\b"),
    "food": _rx(r"\bfood\b|\bcuisine\b"),
    "price": _rx(r"\bprice\b|\bbudget\b"),
    "people": _rx(r"how many|\bpeople\b|\bparty\b|\bguests\b"),
    "day": _rx(r"\bday\b|\bwhen\b"),
    "time": _rx(r"\btime\b|\bwhen\b"),
    "book": _rx(r"\bbook\b|\breserv"),
}
_NOMATCH_RE = _rx(
    r"\bno (?:such )?(?:restaurant|venue|place|match)|there (?:is|are) no (?!table)"
    r"|(?:could not|couldn't|can't|cannot) find|\bnothing (?:matches|fits)"
)
_BOOK_FAIL_RE = _rx(
    r"\bno (?:free )?tables?\b|fully booked|not available|unavailable"
    r"|(?:could not|couldn't|cannot|can't) book|booking failed"
)
_REQMORE_RE = _rx(r"anything else|something else|help (?:you )?with anything")
_BYE_RE = _rx(r"\b(?:good)?bye\b")
_SENTENCE_RE = re.compile(r"[^.!?]*[.!?]?")
# Raw tool output is machine text: a user does not read database records pasted at them.
_DIGIT_RE = re.compile(r"\d")
_TOOL_SYNTAX_RE = re.compile(r"\[result\]|\b(?:name|area|food|price|phone|address|postcode)=")


class Lexicon:
    """Compiled patterns for the slot values, venue names and addresses of a database."""

    def __init__(self, db: VenueDatabase):
        self.db = db
        self.value_res = {
            slot: [(v, re.compile(rf"\b{re.escape(v)}\b")) for v in values]
            for slot, values in SLOT_VALUES.items()
        }
        # Names and addresses are found by their shape, then looked up: one short pattern
        # beats an alternation of every name. The lookahead finds overlapping candidates.
        self.name_of = {v.name.lower(): v.name for v in db.venues}
        firsts = "|".join(sorted({re.escape(n.split()[0]) for n in self.name_of}))
        rests = sorted({len(n.split()) - 1 for n in self.name_of})
        self.name_re = re.compile(
            rf"(?=\b((?:{firsts})"
            + "(?:"
            + "|".join(rf"(?: [a-z]+){{{k}}}" for k in rests)
            + r"))\b)"
        )
        self.address_of = {v.address.lower(): v.address for v in db.venues}
        self.address_re = re.compile(r"\b\d+ [a-z]+ [a-z]+\b")

    def addresses(self, low: str) -> list[str]:
        """Canonical addresses named in lower-cased ``low``."""
        return [self.address_of[a] for a in self.address_re.findall(low) if a in self.address_of]

    def constraint_values(self, text: str) -> dict[str, str]:
        """Every constraint value named in lower-cased ``text`` (the last one per slot)."""
        found = {}
        for slot, pats in self.value_res.items():
            hits = [(m.start(), v) for v, p in pats for m in p.finditer(text)]
            if hits:
                found[slot] = max(hits)[1]
        return found

    def venue_names(self, low: str) -> list[str]:
        """Canonical names of the venues named in lower-cased ``low``, in order, no repeats."""
        seen: dict[str, None] = {}
        for m in self.name_re.finditer(low):
            name = self.name_of.get(m.group(1))
            if name is not None:
                seen.setdefault(name)
        return list(seen)


@lru_cache(maxsize=1)
def get_lexicon() -> Lexicon:
    db, _ = load_database()
    return Lexicon(db)


def booking_values(text: str) -> dict[str, str]:
    """People, day and time named in lower-cased ``text``.

    >>> booking_values("a table for 4 people on friday at 19:30")
    {'people': '4', 'day': 'friday', 'time': '19:30'}
    """
    found = {}
    m = PEOPLE_RE.search(text)
    if m:
        n = int(m.group(1) or m.group(2))
        if 1 <= n <= MAX_PEOPLE:
            found["people"] = str(n)
    m = DAY_RE.search(text)
    if m:
        found["day"] = m.group(1)
    times = [t for t in TIME_RE.findall(text) if t.zfill(5) in TIMES]
    if times:
        found["time"] = times[-1].zfill(5)
    return found


def parse_user(text: str, lexicon: Lexicon | None = None) -> tuple[Act, ...]:
    """Read a user turn into canonical acts.

    >>> [str(a) for a in parse_user("I want a cheap thai restaurant. What is the phone number?")]
    ['inform(food=thai, price=cheap)', 'request(phone=?)']
    """
    lex = lexicon or get_lexicon()
    low = text.lower()
    return user_acts(text, lex.constraint_values(low), booking_values(low))


def user_acts(text: str, constraints: dict[str, str], booking: dict[str, str]) -> tuple[Act, ...]:
    """The acts of a user turn whose slot values were read already: ``constraints``
    (area, food, price) and ``booking`` (people, day, time), by the lexicon
    (:func:`parse_user`) or by a learned slot tagger; intents, ``dontcare`` and requests
    are read from ``text`` by the cues of this file.

    >>> [str(a) for a in user_acts("Thai food, any area. The phone?", {"food": "thai"}, {})]
    ['inform(area=dontcare, food=thai)', 'request(phone=?)']
    """
    low = text.lower()
    acts = [Act(intent) for intent, cue in _USER_CUES.items() if cue.search(low)]
    if any(a.intent == "giveup_bye" for a in acts):
        acts = [a for a in acts if a.intent != "thank_bye"]
    informs = dict(constraints)
    for m in _DONTCARE_RE.finditer(low):
        informs[_DONTCARE_SLOT[next(g for g in m.groups() if g)]] = "dontcare"
    if informs:
        acts.append(Act.make("inform", **informs))
    if booking:
        acts.append(Act.make("book", **booking))
    requests = {slot: "?" for slot, cue in _FACT_CUES.items() if cue.search(low)}
    if requests:
        acts.append(Act.make("request", **requests))
    return canonical(acts)


def parse_agent(text: str, lexicon: Lexicon | None = None) -> tuple[Act, ...]:
    """Read an assistant message (not a tool call) into the acts the user reacts to.

    A message that pastes tool syntax (``[result]``, ``phone=...``) is not understood.

    >>> parse_agent("Which area would you like? And what price range?")
    (Act(intent='request', slots=(('area', '?'), ('price', '?'))),)
    """
    lex = lexicon or get_lexicon()
    low = text.lower()
    if _TOOL_SYNTAX_RE.search(low):
        return ()
    acts: list[Act] = []
    names = lex.venue_names(low)
    if len(names) == 1:
        acts.append(Act.make("offer", name=names[0]))
    elif len(names) > 1:
        acts.append(Act.make("list", names="|".join(names)))
    if _DIGIT_RE.search(low):  # facts and references all hold digits
        facts = {}
        phones = PHONE_RE.findall(low)
        if phones:
            facts["phone"] = "|".join(phone_text(p) for p in phones)
        postcodes = POSTCODE_RE.findall(low)
        if postcodes:
            facts["postcode"] = "|".join(postcode_text(p) for p in postcodes)
        addresses = lex.addresses(low)
        if addresses:
            facts["address"] = "|".join(addresses)
        if facts:
            acts.append(Act.make("inform", **facts))
        refs = REFERENCE_RE.findall(text)
        if refs:
            acts.append(Act.make("book_ok", ref="|".join(refs)))
    if _BOOK_FAIL_RE.search(low):
        acts.append(Act("book_fail"))
    elif _NOMATCH_RE.search(low):
        acts.append(Act("nomatch"))
    asked: dict[str, str] = {}
    for sentence in _SENTENCE_RE.findall(low) if "?" in low else ():
        if sentence.endswith("?"):
            asked.update(
                {slot: "?" for slot, cue in _AGENT_REQUEST_CUES.items() if cue.search(sentence)}
            )
    if asked:
        acts.append(Act.make("request", **asked))
    if _REQMORE_RE.search(low):
        acts.append(Act("reqmore"))
    if _BYE_RE.search(low):
        acts.append(Act("bye"))
    return canonical(acts)
