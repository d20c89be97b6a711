"""Word categories of the stories vocabulary, checked against the word lists and the corpus."""

from __future__ import annotations

import re

from gpt2lab.data import words as W
from gpt2lab.data.categories import CATEGORIES, GROUP_OF, GROUPS, categories_of, word_table
from gpt2lab.data.stories import generate_text


def test_every_category_has_words_and_one_group():
    used = {c for cats in word_table().values() for c in cats}
    assert used | {"punctuation"} == set(CATEGORIES)
    assert len(CATEGORIES) == len(set(CATEGORIES)) == len(GROUP_OF)
    assert set(GROUP_OF.values()) == set(GROUPS)


def test_the_word_lists_decide_the_categories():
    for girl in W.GIRLS:
        assert {"name", "female"} <= set(categories_of(" " + girl)), girl
    for boy in W.BOYS:
        cats = categories_of(boy)
        assert "name" in cats and "female" not in cats, boy
    assert categories_of(" mice") == ("noun", "plural", "animal")
    assert categories_of(" sheep") == ("noun", "animal")  # its plural is not marked
    assert categories_of("He") == ("pronoun", "male")
    assert categories_of(" red") == ("adjective", "colour")
    assert categories_of(" caught") == ("verb",)
    assert categories_of('."') == ("punctuation",)
    assert categories_of(" xq") == categories_of("") == ()


def test_nearly_every_word_of_the_corpus_has_a_category():
    text = generate_text(50_000, seed=3)
    found = re.findall(r"[A-Za-z'-]+", text)
    unknown = [w for w in found if not categories_of(w)]
    assert len(unknown) / len(found) < 0.05, sorted(set(unknown))[:20]
