"""Labelling neurons with word categories, and counting the selective ones per layer.

A neuron is *selective* for a category when its strongest activations fall on tokens of that
category far more often than the text does. For each category c (`data.categories`: noun,
female, plural, animal, …; plus *token identity*: one word, lowercased and stripped):

    share(c) = (top-k activations whose token has c) / k
    rate(c)  = (tokens of the whole text set that have c) / (all tokens)      the base rate
    lift(c)  = share(c) / rate(c)

    selective for c  ⇔  share(c) ≥ MIN_SHARE (0.6)  and  lift(c) ≥ MIN_LIFT (3)

Example: animals are 5% of the tokens; a neuron's top-10 tokens are ' dog', ' cat', ' ox',
…, all animals: share 1.0, lift 20 -> labelled `animal` (and `noun`, whose rate is higher but
still under 1/3). A neuron whose top-10 mix nouns, verbs and punctuation in the text's own
proportions has lifts near 1 and gets no label.

The share test asks for a majority of the neuron's top activations; the lift test keeps a
frequent category (nouns are ~20% of tokens) from labelling a neuron by chance. A neuron can
have several labels (a ' she' neuron is `she` token identity, pronoun and female), so each
label also says how many different words carry it among the top-k (`words`): a `female`
label held up by ' she' alone is token identity in disguise; one spread over ' she', ' her',
' Lily' and ' Mia' is a category in the abstract sense.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gpt2lab.data.categories import GROUP_OF, GROUPS, categories_of

MIN_SHARE = 0.6
"""A label needs at least this fraction of the neuron's top-k activations on the category."""
MIN_LIFT = 3.0
"""… and that fraction at least this many times the category's share of all tokens."""
MIN_WORDS = 3
"""A label carried by at least this many different words counts as beyond one word."""

TOKEN_GROUP = "token identity"
LABEL_GROUPS: tuple[str, ...] = (TOKEN_GROUP, *GROUPS)
"""The groups of labels, the most concrete first: token identity, part of speech, gender,
number, meaning."""


def word_of(token: str) -> str:
    """The word a token spells, for token identity: ' The' -> 'the'; '\\n\\n' -> ''."""
    return token.strip().lower()


def features(token: str) -> list[tuple[str, str]]:
    """The (group, category) pairs a token has: its word categories, then its word.

    ' dogs' -> [('part of speech', 'noun'), ('number', 'plural'), ('meaning', 'animal'),
    ('token identity', 'dogs')]
    """
    pairs = [(GROUP_OF[c], c) for c in categories_of(token)]
    word = word_of(token)
    return pairs + [(TOKEN_GROUP, word)] if word else pairs


def base_rates(tokens: Iterable[str]) -> dict[tuple[str, str], float]:
    """(group, category) -> the fraction of `tokens` that have it."""
    counts: Counter[tuple[str, str]] = Counter()
    n = 0
    for token in tokens:
        counts.update(features(token))
        n += 1
    return {key: count / n for key, count in counts.items()} if n else {}


@dataclass(frozen=True)
class CategoryLabel:
    """A category a neuron is selective for, with the evidence."""

    group: str
    category: str
    share: float  # of the top-k activations on tokens of the category
    lift: float  # share / base rate
    words: int  # different words among those tokens

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def label_neuron(
    top_tokens: Sequence[str],
    rates: dict[tuple[str, str], float],
    min_share: float = MIN_SHARE,
    min_lift: float = MIN_LIFT,
) -> list[CategoryLabel]:
    """The categories a neuron is selective for, given the tokens of its top-k activations
    and the base rates of the text set they come from; ordered by group (LABEL_GROUPS), then
    share. A category without a base rate has no lift and gets no label."""
    if not top_tokens:
        return []
    words: dict[tuple[str, str], set[str]] = {}
    hits: Counter[tuple[str, str]] = Counter()
    for token in top_tokens:
        for key in features(token):
            hits[key] += 1
            words.setdefault(key, set()).add(word_of(token))
    labels = []
    for key, count in hits.items():
        share = count / len(top_tokens)
        rate = rates.get(key, 0.0)
        if rate > 0 and share >= min_share and share / rate >= min_lift:
            labels.append(CategoryLabel(*key, share, share / rate, len(words[key])))
    return sorted(labels, key=lambda lb: (LABEL_GROUPS.index(lb.group), -lb.share, lb.category))


def label_neurons(
    top_tokens: Sequence[Sequence[Sequence[str]]],
    layers: Sequence[int],
    rates: dict[tuple[str, str], float],
    min_share: float = MIN_SHARE,
    min_lift: float = MIN_LIFT,
) -> dict[tuple[int, int], list[CategoryLabel]]:
    """(layer, neuron) -> its labels, for every neuron with at least one.

    top_tokens[r][n]: the tokens of neuron n's top activations in layer layers[r]
    (`neurons.top_token_strings`).
    """
    labels = {}
    for layer, row in zip(layers, top_tokens):
        for neuron, tokens in enumerate(row):
            found = label_neuron(tokens, rates, min_share, min_lift)
            if found:
                labels[(layer, neuron)] = found
    return labels


@dataclass
class LayerSelectivity:
    """How many of a layer's neurons are selective, by label group.

    by_group[g]: neurons with a label in group g; beyond_word[g]: those with such a label
    carried by ≥ MIN_WORDS different words; by_category[c]: neurons labelled c (word
    categories only, not token identity).
    """

    layer: int
    n_neurons: int
    selective: int
    by_group: dict[str, int]
    beyond_word: dict[str, int]
    by_category: dict[str, int]

    def fraction(self, group: str, beyond_word: bool = False) -> float:
        counts = self.beyond_word if beyond_word else self.by_group
        return counts[group] / self.n_neurons

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def selectivity_by_layer(
    labels: dict[tuple[int, int], list[CategoryLabel]],
    layers: Sequence[int],
    n_neurons: int,
    min_words: int = MIN_WORDS,
) -> list[LayerSelectivity]:
    """Per layer: selective neurons in all, per label group (all and beyond one word), and
    per word category. A neuron counts once per group however many labels it has there."""
    result = []
    for layer in layers:
        mine = [found for (lyr, _), found in labels.items() if lyr == layer]
        by_category = Counter(
            lb.category for found in mine for lb in found if lb.group != TOKEN_GROUP
        )
        result.append(
            LayerSelectivity(
                layer=layer,
                n_neurons=n_neurons,
                selective=len(mine),
                by_group={
                    g: sum(any(lb.group == g for lb in f) for f in mine) for g in LABEL_GROUPS
                },
                beyond_word={
                    g: sum(any(lb.group == g and lb.words >= min_words for lb in f) for f in mine)
                    for g in LABEL_GROUPS
                },
                by_category={c: by_category[c] for g in GROUPS for c in GROUPS[g]},
            )
        )
    return result
