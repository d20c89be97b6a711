"""`stories`: an endless, seeded corpus of simple English stories, written as a grammar.

The idea is TinyStories' (short stories a small model can learn to continue), but nothing is
downloaded: every story is built here from the word lists in `words.py`:

    One stormy evening, Laura went to the slender road with her gardener. She had a wild white
    chick. The chick liked to wander between the wet workshop. She met Tommy inside the misty
    hotel. He was holding a gooey treasure. He hid the drowsy lock along the fluffy gym. ...
    "Look at the squeaky sloths next to the teal school!" grumbled Tommy. In the end, Laura
    felt kind and rolled clumsily with Tommy.

Each story has named characters whose pronouns (he/she/they, and "it" for animals and things)
are used across sentences, "because" clauses, quoted dialogue, and subjects whose verb agrees
across an intervening phrase ("The dogs near the old barn were happy."). With thousands of
words in dozens of slots, 5 MB of it holds almost no repeated sentence, so a small model must
learn the grammar rather than memorise text.

`probe_examples` writes short texts of the same kind together with their ground truth: where a
pronoun and its true antecedent are (in characters and in tokens), which verb agrees with which
subject, where sentences end. The interpretability tools use them as labelled data.

One file (about 530 lines) because the grammar and its annotations are one concept: a probe's
ground truth is written by the same code that writes its sentence, so the two cannot drift.
"""

from __future__ import annotations

import bisect
import functools
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt2lab.data import words as W

# --- the lexicon, prepared once ---------------------------------------------------------------


def _article(word: str) -> str:
    """'a' or 'an' by the sound of the next word: an apple, a unicorn, an hour."""
    lower = word.lower()
    if lower.startswith(("uni", "use", "eu", "one")):
        return "a"
    if lower.startswith(("honest", "hour")) or lower[0] in "aeiou":
        return "an"
    return "a"


@dataclass(frozen=True)
class Person:
    name: str
    subject: str  # he / she / they
    object: str  # him / her / them
    possessive: str  # his / her / their
    was: str  # was / were ("they were", even for one person)
    kind: str  # girl / boy / kid


PRONOUNS = {
    "female": ("she", "her", "her", "was", "girl"),
    "male": ("he", "him", "his", "was", "boy"),
    "neutral": ("they", "them", "their", "were", "kid"),
}
NAMES = {"female": W.GIRLS, "male": W.BOYS, "neutral": W.NEUTRALS}

ANIMALS = W.nouns(W.ANIMALS)
OBJECTS = W.nouns(W.TOYS + W.THINGS)
FOODS = W.nouns(W.FOODS)
PEOPLE = W.nouns(W.FAMILY + W.PEOPLE)
TRANSITIVE = W.verbs(W.TRANSITIVE)
INTRANSITIVE = W.verbs(W.INTRANSITIVE)
SPEECH = W.verbs(W.SPEECH)
WANTS = W.verbs(W.WANTS)
ADJECTIVES = W.ADJECTIVES + W.COLORS
ALL_ADJECTIVES = ADJECTIVES + W.FEELINGS
ARTICLE = {
    w: _article(w) for w in ALL_ADJECTIVES + [n for p in ANIMALS + OBJECTS + FOODS for n in p]
}

# Phrases drawn whole (one random draw instead of two or three): 'shiny kite' and 'a shiny kite',
# 'the old barn'. ~90,000 things and ~40,000 places.
THINGS = [f"{adj} {noun}" for adj in ADJECTIVES for noun, _ in OBJECTS] + [n for n, _ in OBJECTS]
A_THINGS = [f"{ARTICLE[thing.split(' ', 1)[0]]} {thing}" for thing in THINGS]
PLACES = [f"the {adj} {place}" for adj in ADJECTIVES for place in W.PLACES]
# Nouns whose number shows ("sheep" does not): subjects and attractors of agreement probes.
MARKED_HEADS = [n for n in ANIMALS + PEOPLE if n[0] != n[1]]
MARKED_ATTRACTORS = [n for n in OBJECTS + ANIMALS if n[0] != n[1]]


# --- the story grammar -------------------------------------------------------------------------


class StoryWriter:
    """Writes one story at a time from a seeded `random.Random`.

    Each method returns one sentence; `story()` strings 6-12 of them together. Everything is a
    list lookup and an f-string, so generation runs at megabytes per second.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        uniform = self.rng.random

        def pick(options):  # rng.choice, twice as fast; same draw for the same seed
            return options[int(uniform() * len(options))]

        self.pick = pick

    # -- noun phrases --
    def a_adj(self) -> str:
        """'a fluffy', 'an old'."""
        adj = self.pick(ADJECTIVES)
        return f"{ARTICLE[adj]} {adj}"

    def adj(self) -> str:
        return self.pick(ADJECTIVES)

    def thing(self) -> str:
        """'shiny kite' (or, rarely, just 'kite')."""
        return self.pick(THINGS)

    def a_thing(self) -> str:
        """'a shiny kite', 'an old kite'."""
        return self.pick(A_THINGS)

    def place(self) -> str:
        """'the old barn'."""
        return self.pick(PLACES)

    def person(self, gender: str, avoid: str = "") -> Person:
        name = self.pick(NAMES[gender])
        while name == avoid:
            name = self.pick(NAMES[gender])
        return Person(name, *PRONOUNS[gender])

    def who(self, p: Person) -> tuple[str, str]:
        """A mention and its past of "be": the name ('Kai', 'was'), or, two times in five, the
        pronoun ('they', 'were'), capitalised to start a sentence."""
        if self.rng.random() < 0.4:
            return p.subject.capitalize(), p.was
        return p.name, "was"

    # -- sentences --
    def opening(self, hero: Person) -> str:
        r = self.rng.random()
        if r < 0.35:
            feeling = self.pick(W.FEELINGS)
            return f"Once upon a time, there was {ARTICLE[feeling]} {feeling} {hero.kind} named {hero.name}."
        if r < 0.7:
            return (
                f"One {self.pick(W.WEATHER)} {self.pick(W.TIMES)}, {hero.name} went to "
                f"{self.place()} with {hero.possessive} {self.pick(PEOPLE)[0]}."
            )
        return f"{hero.name} lived in {self.a_adj()} house near {self.place()}."

    def pet_sentence(self, hero: Person, pet: tuple[str, str]) -> str:
        color = self.pick(W.COLORS)
        return (
            f"{hero.subject.capitalize()} had {self.a_adj()} {color} {pet[0]}. The {pet[0]} "
            f"liked to {self.pick(INTRANSITIVE)[0]} {self.pick(W.PREPOSITIONS)} {self.place()}."
        )

    def meeting(self, hero: Person, friend: Person) -> str:
        return (
            f"{self.who(hero)[0]} met {friend.name} {self.pick(W.PREPOSITIONS)} "
            f"{self.place()}. {friend.subject.capitalize()} {friend.was} holding {self.a_thing()}."
        )

    def action(self, p: Person) -> str:
        verb = self.pick(TRANSITIVE)[2]
        return (
            f"{self.who(p)[0]} {verb} the {self.thing()} "
            f"{self.pick(W.PREPOSITIONS)} {self.place()}."
        )

    def movement(self, p: Person) -> str:
        return (
            f"{self.who(p)[0]} {self.pick(W.ADVERBS)} {self.pick(INTRANSITIVE)[2]} "
            f"{self.pick(W.PREPOSITIONS)} the {self.thing()}."
        )

    def because(self, p: Person, pet: tuple[str, str]) -> str:
        r = self.rng.random()
        if r < 0.3:
            reason = f"the {self.thing()} was {self.pick(ALL_ADJECTIVES)}"
        elif r < 0.55:
            reason = f"{p.possessive} {pet[0]} {self.pick(INTRANSITIVE)[2]} {self.pick(W.PREPOSITIONS)} {self.place()}"
        elif r < 0.8:
            reason = f"it was {self.pick(W.WEATHER)} and the {self.pick(W.PLACES)} was {self.adj()}"
        else:
            reason = f"{p.subject} could not find {p.possessive} {self.thing()}"
        mention, was = self.who(p)
        return f"{mention} {was} {self.pick(W.FEELINGS)} because {reason}."

    def agreement(self) -> str:
        """A subject, a distracting phrase, then a verb that agrees with the subject."""
        head = self.pick(ANIMALS + PEOPLE)
        attractor = self.pick(OBJECTS + ANIMALS)
        plural = self.rng.random() < 0.5
        subject = head[1] if plural else head[0]
        other = attractor[0] if plural else attractor[1]
        verb = "were" if plural else "was"
        if self.rng.random() < 0.5:
            return (
                f"The {subject} {self.pick(W.PREPOSITIONS)} the {self.adj()} {other} {verb} "
                f"{self.pick(W.FEELINGS)}."
            )
        return (
            f"The {subject} with the {self.pick(W.COLORS)} {other} {verb} "
            f"{self.pick(ALL_ADJECTIVES)} and {self.pick(W.FEELINGS)}."
        )

    def dialogue(self, speaker: Person, listener: Person) -> str:
        r = self.rng.random()
        if r < 0.25:
            line = f"Can I {self.pick(TRANSITIVE)[0]} your {self.thing()}?"
            verb = "asked"
        elif r < 0.5:
            line = f"Look at the {self.adj()} {self.pick(ANIMALS)[1]} {self.pick(W.PREPOSITIONS)} {self.place()}!"
            verb = self.pick(SPEECH)[2]
        elif r < 0.75:
            line = f"Let's {self.pick(INTRANSITIVE)[0]} to {self.place()}, {listener.name}!"
            verb = self.pick(SPEECH)[2]
        else:
            noun = self.pick(ANIMALS)
            line = f"The {noun[1]} {self.pick(W.PREPOSITIONS)} the {self.pick(W.PLACES)} are {self.adj()}."
            verb = self.pick(SPEECH)[2]
        if self.rng.random() < 0.5:
            if line.endswith("."):  # "It is red," said Ann.
                line = line[:-1] + ","
            return f'"{line}" {verb} {speaker.name}.'
        return f'{speaker.name} {verb}, "{line}"'

    def giving(self, giver: Person, taker: Person) -> str:
        return (
            f"{self.who(giver)[0]} gave {taker.object} {self.a_thing()}. "
            f"{taker.subject.capitalize()} {self.pick(TRANSITIVE)[2]} it {self.pick(W.ADVERBS)}."
        )

    def wanting(self, p: Person) -> str:
        return (
            f"{self.who(p)[0]} {self.pick(WANTS)[2]} to {self.pick(TRANSITIVE)[0]} "
            f"the {self.thing()}, but it was too {self.adj()}."
        )

    def eating(self, p: Person) -> str:
        food = self.pick(FOODS)
        count = self.pick(W.NUMBERS)
        return (
            f"{self.who(p)[0]} ate {count} {self.adj()} {food[1]} and drank some "
            f"{self.pick(W.DRINKS)} {self.pick(W.PREPOSITIONS)} {self.place()}."
        )

    def busy(self, p: Person, other: Person) -> str:
        """Past progressive, then an interruption: 'She was climbing ... when Tom ...'."""
        mention, was = self.who(p)
        return (
            f"{mention} {was} {self.pick(TRANSITIVE)[3]} {self.a_thing()} "
            f"{self.pick(W.PREPOSITIONS)} {self.place()} when {other.name} "
            f"{self.pick(INTRANSITIVE)[2]} {self.pick(W.ADVERBS)} {self.pick(W.PREPOSITIONS)} "
            f"the {self.pick(W.PLACES)}."
        )

    def habit(self, speaker: Person, pet: tuple[str, str]) -> str:
        """Present tense in a quote: 'My goat hops near the pond every morning,' said Ann."""
        r = self.rng.random()
        if r < 0.4:
            line = (
                f"My {pet[0]} {self.pick(INTRANSITIVE)[1]} {self.pick(W.PREPOSITIONS)} "
                f"{self.place()} every {self.pick(W.TIMES)}"
            )
        elif r < 0.7:
            food = self.pick(FOODS)[0]
            line = (
                f"I {self.pick(W.WANTS)} to {self.pick(SPEECH)[0]} about {ARTICLE[food]} {food} and "
                f"some {self.pick(W.MASS_FOODS)}"
            )
        else:
            line = (
                f"Our {self.pick(PEOPLE)[0]} {self.pick(TRANSITIVE)[1]} the "
                f"{self.pick(OBJECTS)[1]} when {self.pick(INTRANSITIVE)[3]} is {self.adj()}"
            )
        return f'"{line}," {self.pick(SPEECH)[2]} {speaker.name} {self.pick(W.ADVERBS)}.'

    def ending(self, hero: Person, friend: Person) -> str:
        r = self.rng.random()
        if r < 0.5:
            return (
                f"In the end, {hero.name} felt {self.pick(W.FEELINGS)} and "
                f"{self.pick(INTRANSITIVE)[2]} {self.pick(W.ADVERBS)} with {friend.name}."
            )
        return (
            f"From that day on, {hero.name} and {friend.name} {self.pick(INTRANSITIVE)[2]} "
            f"{self.pick(W.PREPOSITIONS)} {self.place()} every {self.pick(W.TIMES)}."
        )

    def story(self) -> str:
        genders = ("female", "male", "neutral")
        hero_gender = self.pick(genders)
        friend_gender = self.pick([g for g in genders if g != hero_gender])
        hero = self.person(hero_gender)
        friend = self.person(friend_gender, avoid=hero.name)
        pet = self.pick(ANIMALS)
        sentences = [self.opening(hero), self.pet_sentence(hero, pet), self.meeting(hero, friend)]
        middle = (
            lambda: self.action(self.pick((hero, friend))),
            lambda: self.movement(self.pick((hero, friend))),
            lambda: self.because(self.pick((hero, friend)), pet),
            self.agreement,
            lambda: self.dialogue(hero, friend),
            lambda: self.dialogue(friend, hero),
            lambda: self.giving(hero, friend),
            lambda: self.giving(friend, hero),
            lambda: self.wanting(self.pick((hero, friend))),
            lambda: self.eating(self.pick((hero, friend))),
            lambda: self.busy(hero, friend),
            lambda: self.busy(friend, hero),
            lambda: self.habit(self.pick((hero, friend)), pet),
        )
        for _ in range(self.rng.randint(3, 8)):
            sentences.append(self.pick(middle)())
        sentences.append(self.ending(hero, friend))
        return " ".join(sentences)


@functools.cache
def name_pattern() -> re.Pattern[str]:
    """A regular expression that finds every character name of the corpus as a whole word."""
    names = sorted({name for names in NAMES.values() for name in names}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b")


def name_mentions(text: str) -> list[tuple[int, int, str]]:
    """(start, end, name) of every character name of the corpus in `text`, in order."""
    return [(m.start(), m.end(), m.group()) for m in name_pattern().finditer(text)]


def generate_stories(n: int | None = None, seed: int = 0) -> Iterator[str]:
    """Yield `n` stories (forever if None), the same ones for the same seed."""
    writer = StoryWriter(seed)
    count = 0
    while n is None or count < n:
        yield writer.story()
        count += 1


def generate_text(n_bytes: int, seed: int = 0, separator: str = "\n\n") -> str:
    """Whole stories joined by `separator` until at least `n_bytes` of UTF-8."""
    parts, size = [], 0
    for story in generate_stories(seed=seed):
        parts.append(story)
        size += len(story.encode()) + len(separator)
        if size >= n_bytes:
            break
    return separator.join(parts)


# --- probe examples: short stories with their ground truth -------------------------------------


class Marked:
    """Text built piece by piece that remembers where named pieces and sentences are.

    >>> m = Marked(); m.add("Lily", "name"); m.add(" smiled"); m.end(".")
    >>> m.text, m.spans["name"], m.sentences
    ('Lily smiled.', (0, 4), [(0, 12)])
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.spans: dict[str, tuple[int, int]] = {}
        self.sentences: list[tuple[int, int]] = []
        self._sentence_start = 0

    def add(self, piece: str, name: str = "") -> None:
        if name:
            self.spans[name] = (self.size, self.size + len(piece))
        self.parts.append(piece)
        self.size += len(piece)

    def end(self, punctuation: str) -> None:
        self.add(punctuation)
        self.sentences.append((self._sentence_start, self.size))
        self.add(" ")
        self._sentence_start = self.size

    @property
    def text(self) -> str:
        return "".join(self.parts).rstrip(" ")


class ProbeWriter(StoryWriter):
    """Stories of three or four sentences whose pronouns and agreements are known exactly."""

    def pair(self) -> tuple[Person, Person]:
        """Two people of different genders, so each he/she has exactly one antecedent."""
        first, second = ("female", "male") if self.rng.random() < 0.5 else ("male", "female")
        a = self.person(first)
        return a, self.person(second, avoid=a.name)

    def coreference(self) -> dict[str, Any]:
        """'One sunny morning, Lily and Tom went to the park. Tom found a kite by the pond. She ...'.

        The lead-in puts a word before the first name, so that every name is spelled as it is
        mid-story (" Lily", one token) and not as a text's first word ("L" + "ily"). It is a
        fixed string: it draws nothing from the generator, so the agreement probes stay as
        they were."""
        a, b = self.pair()
        target, other = (a, b) if self.rng.random() < 0.5 else (b, a)
        m = Marked()
        m.add("One sunny morning, ")
        m.add(a.name, a.name)
        m.add(" and ")
        m.add(b.name, b.name)
        m.add(f" {self.pick(INTRANSITIVE)[2]} to {self.place()}")
        m.end(".")
        m.add(other.name, "distractor")
        m.add(
            f" {self.pick(TRANSITIVE)[2]} {self.a_thing()} {self.pick(W.PREPOSITIONS)} {self.place()}"
        )
        m.end(".")
        form = "subject" if self.rng.random() < 0.5 else "object"
        if form == "subject":
            m.add(target.subject.capitalize(), "pronoun")
            m.add(
                f" {self.pick(INTRANSITIVE)[2]} {self.pick(W.ADVERBS)} {self.pick(W.PREPOSITIONS)} {self.place()}"
            )
        else:
            m.add(f"{other.subject.capitalize()} gave ")
            m.add(target.object, "pronoun")
            m.add(f" {self.a_thing()} because it was {self.pick(W.WEATHER)}")
        m.end(".")
        return {
            "kind": "coreference",
            "marked": m,
            "pronoun": "pronoun",
            "antecedent": target.name,
            "distractor": "distractor",
            "gender": "female" if target.subject == "she" else "male",
            "form": form,
        }

    def agreement_probe(self) -> dict[str, Any]:
        """'The dogs near the old barn were happy.': subject, attractor, verb and number."""
        head = self.pick(MARKED_HEADS)
        attractor = self.pick(MARKED_ATTRACTORS)
        number = "plural" if self.rng.random() < 0.5 else "singular"
        same = self.rng.random() < 0.25  # some attractors share the subject's number
        attractor_number = number if same else ("singular" if number == "plural" else "plural")
        hero = self.person(self.pick(("female", "male", "neutral")))
        m = Marked()
        m.add(f"{hero.name} {self.pick(INTRANSITIVE)[2]} to {self.place()}")
        m.end(".")
        m.add("The ")
        m.add(head[1] if number == "plural" else head[0], "subject")
        variant = "prepositional" if self.rng.random() < 0.6 else "relative"
        other = attractor[1] if attractor_number == "plural" else attractor[0]
        if variant == "prepositional":
            m.add(f" {self.pick(W.PREPOSITIONS)} the {self.adj()} ")
            m.add(other, "attractor")
        else:
            m.add(" that the ")
            m.add(other, "attractor")
            m.add(f" {self.pick(TRANSITIVE)[2]}")
        m.add(" ")
        m.add("were" if number == "plural" else "was", "verb")
        m.add(f" {self.pick(W.FEELINGS)}")
        m.end(".")
        return {
            "kind": "agreement",
            "marked": m,
            "subject": "subject",
            "verb": "verb",
            "attractor": "attractor",
            "number": number,
            "attractor_number": attractor_number,
            "variant": variant,
        }


def token_starts(tokenizer, ids: list[int]) -> list[int]:
    """Byte offset at which each token starts: [' The', ' cat'] -> [0, 4]."""
    starts, offset = [], 0
    for token in ids:
        starts.append(offset)
        offset += len(tokenizer.token_bytes(token))
    return starts


def locate(text: str, span: tuple[int, int], starts: list[int] | None) -> dict[str, Any]:
    """A span as {'text', 'char': [start, end]} plus, with tokens, the tokens that cover it."""
    found: dict[str, Any] = {"text": text[span[0] : span[1]], "char": list(span)}
    if starts is not None:
        first_byte = len(text[: span[0]].encode())
        last_byte = len(text[: span[1]].encode()) - 1
        found["token"] = bisect.bisect_right(starts, first_byte) - 1
        found["token_end"] = bisect.bisect_right(starts, last_byte)
    return found


def probe_examples(n: int, seed: int = 0, tokenizer: Any = "gpt2") -> list[dict[str, Any]]:
    """`n` labelled examples, alternating coreference and agreement, the same for the same seed.

    `tokenizer` (a name, a directory or a Tokenizer; None for characters only) adds `ids` and,
    for each span, `token` (index of the token holding its first character) and `token_end`
    (one past the token holding its last). A coreference record:

        {"kind": "coreference",
         "text": "One sunny morning, Lily and Tom went to the park. Tom found ... . She ...",
         "pronoun": {"text": "She", "char": [80, 83], "token": 21, "token_end": 22},
         "antecedent": {"text": "Lily", ...}, "distractor": {"text": "Tom", ...},
         "gender": "female", "form": "subject", "sentences": [{"char": [0, 49], "end_token": 11}, ...]}

    An agreement record has `subject`, `verb`, `attractor` spans, `number` ('singular' or
    'plural'), `attractor_number` and `variant` ('prepositional' or 'relative').
    `end_token` is the token holding a sentence's final punctuation.
    """
    if isinstance(tokenizer, str):
        from gpt2lab.tokenizer import get_tokenizer

        tokenizer = get_tokenizer(tokenizer)
    writer = ProbeWriter(seed)
    records = []
    for i in range(n):
        example = writer.coreference() if i % 2 == 0 else writer.agreement_probe()
        marked: Marked = example.pop("marked")
        text = marked.text
        record: dict[str, Any] = {"id": i, "kind": example.pop("kind"), "text": text}
        starts = None
        if tokenizer is not None:
            record["ids"] = tokenizer.encode(text)
            starts = token_starts(tokenizer, record["ids"])
        for key, value in example.items():
            record[key] = (
                locate(text, marked.spans[value], starts) if value in marked.spans else value
            )
        record["sentences"] = []
        for start, end in marked.sentences:
            sentence: dict[str, Any] = {"char": [start, end]}
            if starts is not None:
                sentence["end_token"] = locate(text, (end - 1, end), starts)["token"]
            record["sentences"].append(sentence)
        records.append(record)
    return records


def write_probes(path: str | Path, n: int, seed: int = 0, tokenizer: Any = "gpt2") -> Path:
    """`probe_examples` as JSON Lines, one record per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for record in probe_examples(n, seed, tokenizer):
            f.write(json.dumps(record) + "\n")
    return path
