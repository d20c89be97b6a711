"""Garden-path sentences, each with a minimally different control, and the word that decides.

A garden-path sentence leads a reader into a parse that a later word proves wrong:

    The horse raced past the barn [fell].          "raced" is read as the main verb; "fell"
    The horse that was raced past the barn [fell].  forces "raced past the barn" to be a
                                                    (reduced) relative clause.

The word in [brackets] is the *disambiguating word*: the first word the tempting parse cannot
take. In the control the same word follows a prefix that never allowed the wrong parse, so a
reader (or a language model) should find it less surprising there. Every control here differs
from its garden path by at most two words before that word (an added "that", "who was", a
comma, one word changed) and not at all after it.

The garden-path sentences are classic examples of the psycholinguistics literature (Bever 1970;
Frazier & Rayner 1982; Milne 1982; Pinker 1994; Christianson et al. 2001, among others); the
controls and notes were written for gpt2lab.

>>> item = GARDEN_PATHS[0]
>>> item.garden.text, item.garden.word, item.control.word
('The horse raced past the barn fell.', 'fell', 'fell')
"""

from __future__ import annotations

from dataclasses import dataclass

from gpt2lab.errors import GPT2LabError


@dataclass(frozen=True)
class Sentence:
    """A sentence and the character span [start, end) of its disambiguating word."""

    text: str
    start: int
    end: int

    @property
    def word(self) -> str:
        return self.text[self.start : self.end]

    @classmethod
    def parse(cls, marked: str) -> Sentence:
        """'The old man [the] boat.' -> Sentence('The old man the boat.', 12, 15)."""
        if (
            marked.count("[") != 1
            or marked.count("]") != 1
            or marked.index("[") > marked.index("]")
        ):
            raise GPT2LabError(f"mark exactly one word with [brackets]: {marked!r}")
        start = marked.index("[")
        end = marked.index("]") - 1
        return cls(marked.replace("[", "").replace("]", ""), start, end)


@dataclass(frozen=True)
class GardenPath:
    """One garden-path sentence, its control, the kind of ambiguity and what goes wrong."""

    name: str
    kind: str
    garden: Sentence
    control: Sentence
    note: str


REDUCED_RELATIVE = "reduced relative clause"
NOUN_VERB = "noun/verb ambiguity"
NO_THAT = "relative clause without 'that'"
EARLY_CLOSURE = "clause boundary (subordinate clause)"
COMPLEMENT = "object or sentence complement"

_TABLE = [
    (
        "horse",
        REDUCED_RELATIVE,
        "The horse raced past the barn [fell].",
        "The horse that was raced past the barn [fell].",
        "'raced' is read as the main verb; 'fell' needs 'raced past the barn' to be a relative.",
    ),
    (
        "florist",
        REDUCED_RELATIVE,
        "The florist sent the flowers [was] pleased.",
        "The florist who was sent the flowers [was] pleased.",
        "'sent' is read as what the florist did; 'was' shows the florist was sent them.",
    ),
    (
        "raft",
        REDUCED_RELATIVE,
        "The raft floated down the river [sank].",
        "The raft that was floated down the river [sank].",
        "'floated' is read as the main verb; 'sank' makes it a passive relative.",
    ),
    (
        "girl",
        REDUCED_RELATIVE,
        "The girl told the story [cried].",
        "The girl who was told the story [cried].",
        "'told' is read as what the girl did; 'cried' shows she was the one told.",
    ),
    (
        "old man",
        NOUN_VERB,
        "The old man [the] boat.",
        "The old men man [the] boat.",
        "'old man' is read as adjective + noun; 'the' shows 'old' is the subject, 'man' a verb.",
    ),
    (
        "complex houses",
        NOUN_VERB,
        "The complex houses married and [single] soldiers and their families.",
        "The complex still houses married and [single] soldiers and their families.",
        "'complex houses' is read as adjective + noun; 'single' makes 'married' an adjective, "
        "so 'houses' is the verb.",
    ),
    (
        "ducks",
        NOUN_VERB,
        "The man who hunts ducks [out] on weekends.",
        "The man who hunts, ducks [out] on weekends.",
        "'ducks' is read as what he hunts; 'out' makes 'ducks' the main verb.",
    ),
    (
        "government plans",
        NOUN_VERB,
        "The government plans to raise taxes [were] defeated.",
        "The government's plans to raise taxes [were] defeated.",
        "'plans' is read as a verb; 'were' shows it was a plural noun.",
    ),
    (
        "cotton",
        NO_THAT,
        "The cotton clothing is made of [grows] in Mississippi.",
        "The cotton that clothing is made of [grows] in Mississippi.",
        "'cotton clothing' is read as one noun phrase; 'grows' needs 'clothing is made of' to "
        "be a relative clause on 'cotton'.",
    ),
    (
        "fat",
        NO_THAT,
        "Fat people eat [accumulates].",
        "Fat that people eat [accumulates].",
        "'fat people' is read as one noun phrase; 'accumulates' needs 'people eat' to be a "
        "relative clause on 'fat'.",
    ),
    (
        "child",
        NO_THAT,
        "Mary gave the child the dog [bit] a bandage.",
        "Mary gave the child that the dog [bit] a bandage.",
        "'the dog' is read as what Mary gave; 'bit' makes it the start of a relative clause.",
    ),
    (
        "deer",
        EARLY_CLOSURE,
        "While the man hunted the deer [ran] into the woods.",
        "While the man hunted, the deer [ran] into the woods.",
        "'the deer' is read as what the man hunted; 'ran' needs it to be the main subject.",
    ),
    (
        "mile",
        EARLY_CLOSURE,
        "Since Jay always jogs a mile [seems] like a short distance to him.",
        "Since Jay always jogs, a mile [seems] like a short distance to him.",
        "'a mile' is read as how far Jay jogs; 'seems' needs it to be the main subject.",
    ),
    (
        "food",
        EARLY_CLOSURE,
        "When Fred eats food [gets] thrown.",
        "When Fred eats, food [gets] thrown.",
        "'food' is read as what Fred eats; 'gets' needs it to be the main subject.",
    ),
    (
        "doctor",
        EARLY_CLOSURE,
        "After the child visited the doctor [prescribed] a course of injections.",
        "After the child visited, the doctor [prescribed] a course of injections.",
        "'the doctor' is read as whom the child visited; 'prescribed' needs a new subject.",
    ),
    (
        "solution",
        COMPLEMENT,
        "The student forgot the solution [was] in the back of the book.",
        "The student forgot that the solution [was] in the back of the book.",
        "'the solution' is read as what was forgotten; 'was' makes it the subject of a clause.",
    ),
    (
        "children",
        COMPLEMENT,
        "I convinced her children [are] noisy.",
        "I convinced her that children [are] noisy.",
        "'her children' is read as whom I convinced; 'are' splits it into 'her' + a clause.",
    ),
]

GARDEN_PATHS: tuple[GardenPath, ...] = tuple(
    GardenPath(name, kind, Sentence.parse(garden), Sentence.parse(control), note)
    for name, kind, garden, control, note in _TABLE
)
"""The shipped set: 17 garden paths in five kinds, each with its control."""
