"""Word categories of the `stories` vocabulary: ground truth for neuron labels and probes.

Every word the story grammar can write belongs to categories in four groups:

    part of speech  noun, verb, adjective, adverb, preposition, pronoun, name, number,
                    determiner, conjunction, punctuation
    gender          female, male (names and pronouns; "they" and neutral names have none)
    number          singular, plural (nouns whose plural is marked: "dog"/"dogs", not "sheep")
    meaning         animal, toy, thing, food, drink, place, person, colour, feeling, time, weather

>>> categories_of(" dogs")
('noun', 'plural', 'animal')
>>> categories_of("She")
('pronoun', 'female')

A token is looked up by its text without surrounding spaces: as written, then lowercased (the
first word of a sentence is capitalised), so names keep their case ("Olive" is a name, "olive"
a colour and a food). Tokens that are only punctuation are `punctuation`; anything else (a
word piece, a word outside the grammar) has no category.
"""

from __future__ import annotations

import functools

from gpt2lab.data import words as W

GROUPS: dict[str, tuple[str, ...]] = {
    "part of speech": (
        "noun",
        "verb",
        "adjective",
        "adverb",
        "preposition",
        "pronoun",
        "name",
        "number",
        "determiner",
        "conjunction",
        "punctuation",
    ),
    "gender": ("female", "male"),
    "number": ("singular", "plural"),
    "meaning": (
        "animal",
        "toy",
        "thing",
        "food",
        "drink",
        "place",
        "person",
        "colour",
        "feeling",
        "time",
        "weather",
    ),
}
"""The category groups, each a tuple of category names (a category is in one group only)."""

CATEGORIES: tuple[str, ...] = tuple(c for group in GROUPS.values() for c in group)
GROUP_OF: dict[str, str] = {c: group for group, cs in GROUPS.items() for c in cs}

PRONOUNS = {
    "she": ("female",),
    "her": ("female",),
    "hers": ("female",),
    "herself": ("female",),
    "he": ("male",),
    "him": ("male",),
    "his": ("male",),
    "himself": ("male",),
    "they": (),
    "them": (),
    "their": (),
    "it": (),
    "its": (),
    "i": (),
    "me": (),
    "my": (),
    "we": (),
    "us": (),
    "our": (),
    "you": (),
    "your": (),
}

# The grammar's own words, written in its templates rather than in `words`.
GRAMMAR_WORDS = {
    "determiner": "the a an every some this that no",
    "conjunction": "and but because when so or then",
    "preposition": "to with on in at upon from about of into for",
    "verb": "was were is are be had has have met gave give felt feel ate eat drank drink went go "
    "lived live can could look looked saw see got get said let's",
    "noun": "day end time house boy girl kid",
}


def _nouns(entries: list[str], meaning: str) -> dict[str, set[str]]:
    """Singular and plural forms of nouns with their categories; unmarked plurals
    ("sheep:sheep") get no number."""
    table: dict[str, set[str]] = {}
    for singular, plural in W.nouns(entries):
        marked = singular != plural
        table.setdefault(singular, set()).update(
            {"noun", meaning, *(["singular"] if marked else [])}
        )
        table.setdefault(plural, set()).update({"noun", meaning, *(["plural"] if marked else [])})
    return table


def _merge(*tables: dict[str, set[str]]) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = {}
    for table in tables:
        for word, cats in table.items():
            merged.setdefault(word, set()).update(cats)
    return merged


def _words(entries: list[str], *cats: str) -> dict[str, set[str]]:
    return {word: set(cats) for word in entries}


@functools.cache
def word_table() -> dict[str, frozenset[str]]:
    """word -> its categories, for every word of `gpt2lab.data.words` (names capitalised)."""
    verb_forms = [
        form for entries in (W.TRANSITIVE, W.INTRANSITIVE, W.SPEECH, W.WANTS)
        for forms in W.verbs(entries) for form in forms
    ]  # fmt: skip
    table = _merge(
        _nouns(W.ANIMALS, "animal"),
        _nouns(W.TOYS, "toy"),
        _nouns(W.THINGS, "thing"),
        _nouns(W.FOODS, "food"),
        _words(W.MASS_FOODS, "noun", "food"),
        _words(W.DRINKS, "noun", "drink"),
        _words(W.PLACES, "noun", "place"),
        _nouns(W.FAMILY + W.PEOPLE, "person"),
        _words(W.COLORS, "adjective", "colour"),
        _words(W.ADJECTIVES, "adjective"),
        _words(W.FEELINGS, "adjective", "feeling"),
        _words(W.ADVERBS, "adverb"),
        _words(verb_forms, "verb"),
        _words([p for p in W.PREPOSITIONS if " " not in p], "preposition"),
        _words([t for t in W.TIMES if t[0].islower()], "noun", "time"),
        _words([t for t in W.TIMES if t[0].isupper()], "name", "time"),
        _words(W.WEATHER, "adjective", "weather"),
        _words(W.NUMBERS, "number"),
        _words(W.GIRLS, "name", "female"),
        _words(W.BOYS, "name", "male"),
        _words(W.NEUTRALS, "name"),
        {word: {"pronoun", *gender} for word, gender in PRONOUNS.items()},
        *(_words(ws.split(), pos) for pos, ws in GRAMMAR_WORDS.items()),
    )
    for name in set(W.GIRLS) & set(W.BOYS):  # a name used for both has no gender
        table[name] -= {"female", "male"}
    return {word: frozenset(cats) for word, cats in table.items()}


def categories_of(token: str) -> tuple[str, ...]:
    """The categories of one token's text, in the order of `CATEGORIES`; () when unknown."""
    word = token.strip()
    if not word:
        return ()
    if not any(ch.isalnum() for ch in word):
        return ("punctuation",)
    table = word_table()
    cats = table.get(word)
    if cats is None:
        cats = table.get(word.lower(), frozenset())
    return tuple(c for c in CATEGORIES if c in cats)
