"""Embedding spaces, each quantity against an independent computation.

- PCA against the eigenvectors of the covariance matrix (numpy.linalg.eigh) and, when it is
  installed, scikit-learn's PCA: the same axes up to sign, the same explained variance;
- the probe's logistic regression against scikit-learn's LogisticRegression on the same
  objective (probabilities equal), and a probe on a hand-made case whose accuracy and
  baseline are known;
- the sinusoidal table against the formula of Vaswani et al. written out in numpy; the
  residual stream's layer 0 against wte[token] + wpe[position] looked up by hand;
- the report and the explorer's JSON on a tiny random GPT with GPT-2's tokenizer.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from gpt2lab.errors import GPT2LabError
from gpt2lab.interp.embeddings import (
    analyse_embeddings,
    collect_residuals,
    cosine_matrix,
    fit_logistic,
    label_in_group,
    pca,
    position_tables,
    probe,
    project,
    split_by_word,
    word_positions,
    write_embeddings_report,
)

TINY = dict(vocab_size=50257, block_size=64, n_layer=2, n_head=2, n_embd=16)


@pytest.fixture(scope="module")
def gpt2_tokenizer():
    from gpt2lab.tokenizer import get_tokenizer

    return get_tokenizer("gpt2")


def test_pca_equals_the_covariance_eigenvectors_up_to_sign():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6)) @ np.diag([5, 3, 1, 0.5, 0.2, 0.1]) + 7.0
    fit = pca(X, 3)
    values, vectors = np.linalg.eigh(np.cov(X, rowvar=False))
    order = np.argsort(values)[::-1][:3]
    for k, j in enumerate(order):
        assert abs(abs(fit.components[k] @ vectors[:, j]) - 1) < 1e-9
    np.testing.assert_allclose(fit.explained, values[order] / values.sum(), rtol=1e-9)
    centred = X - X.mean(0)
    for k, j in enumerate(order):  # coordinates: projections on the axis, up to its sign
        np.testing.assert_allclose(np.abs(fit.coords[:, k]), np.abs(centred @ vectors[:, j]))


def test_pca_matches_scikit_learn():
    decomposition = pytest.importorskip("sklearn.decomposition")
    X = np.random.default_rng(1).normal(size=(80, 10)) * np.arange(1, 11)
    ours, theirs = pca(X, 2), decomposition.PCA(2).fit(X)
    signs = np.sign(np.sum(ours.components * theirs.components_, axis=1))
    np.testing.assert_allclose(ours.components, theirs.components_ * signs[:, None], atol=1e-8)
    np.testing.assert_allclose(ours.explained, theirs.explained_variance_ratio_, rtol=1e-8)
    np.testing.assert_allclose(ours.coords, theirs.transform(X) * signs, atol=1e-8)


def test_cosine_matrix_by_hand():
    X = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    s = 1 / np.sqrt(2)
    np.testing.assert_allclose(cosine_matrix(X), [[1, s, 0], [s, 1, 0], [0, 0, 0]])


def test_logistic_regression_matches_scikit_learn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = (X @ rng.normal(size=(5, 3))).argmax(1)
    y[:20] = rng.integers(0, 3, 20)  # not separable: a finite optimum
    l2 = 1e-2
    W, b = fit_logistic(X, y, 3, l2=l2)
    reference = linear_model.LogisticRegression(C=1 / (len(X) * l2), tol=1e-10, max_iter=5000)
    reference.fit(X, y)
    ours = torch.softmax(torch.as_tensor(X @ W + b), 1).numpy()
    np.testing.assert_allclose(ours, reference.predict_proba(X), atol=1e-5)


def test_a_probe_reads_a_linearly_encoded_category_of_unseen_words():
    """Words 'a0'..'a9' are category A, 'b0'..'b9' B; dimension 0 says which (+1 / −1), the
    other dimensions are noise. Held-out words: 3 of each; baseline: the larger training class
    (A: 7 words × 3 occurrences vs B: 7 × 3 → tie, argmax picks A) scores 50 % on the test."""
    rng = np.random.default_rng(0)
    words = [f"{c}{i}" for c in "ab" for i in range(10) for _ in range(3)]
    labels = ["A" if w[0] == "a" else "B" for w in words]
    X = rng.normal(size=(len(words), 4))
    X[:, 0] = [3.0 if y == "A" else -3.0 for y in labels]
    accuracy, baseline, n_train, n_test, classes = probe(X, words, labels, seed=0)
    assert (accuracy, baseline, n_train, n_test, classes) == (1.0, 0.5, 42, 18, ["A", "B"])
    shuffled = probe(rng.normal(size=(len(words), 4)), words, labels, seed=0)
    assert shuffled[0] < 0.9  # noise alone does not read the category


def test_split_by_word_never_shares_a_word_and_keeps_case_together():
    words = ["The", "the", "a", "dog", "dogs", "cat", "cats", "cow", "Tom"]
    labels = ["det", "det", "det", "sg", "pl", "sg", "pl", "sg", "name"]
    train, test = split_by_word(words, labels, seed=3)
    assert not (train & test).any()
    assert train[0] == train[1] and test[0] == test[1]  # 'The' goes where 'the' goes
    assert not train[-1] and not test[-1]  # one word of its label: cannot be tested
    for label in ("det", "sg", "pl"):
        rows = [i for i, y in enumerate(labels) if y == label]
        assert train[rows].any() and test[rows].any()


def test_label_in_group():
    assert label_in_group(("noun", "plural", "animal"), "number") == "plural"
    assert label_in_group(("pronoun",), "gender") is None
    assert label_in_group(("noun", "food", "colour"), "meaning") is None  # two: ambiguous


def test_word_positions_point_at_each_words_last_token(gpt2_tokenizer):
    ids, found = word_positions(gpt2_tokenizer, "The puppies ran to Lily.")
    words = [w for _, w in found]
    assert words == ["The", "puppies", "ran", "to", "Lily", "."]
    for t, w in found:
        assert gpt2_tokenizer.decode(ids[: t + 1]).endswith(w)
        assert not gpt2_tokenizer.decode(ids[:t]).endswith(w)


def test_position_tables(tiny_gpt):
    model = tiny_gpt(**TINY)
    tables = position_tables(model)
    np.testing.assert_array_equal(tables["learned"], model.wpe.weight.detach().double().numpy())
    T, C = 64, 16
    p, i = np.arange(T)[:, None], np.arange(C // 2)[None]
    angle = p / 10000 ** (2 * i / C)  # (T, C/2)
    formula = np.stack([np.sin(angle), np.cos(angle)], axis=-1).reshape(T, C)
    np.testing.assert_allclose(tables["sinusoidal"], formula, atol=1e-12)
    assert list(position_tables(tiny_gpt(**TINY, pos_encoding="sinusoidal"))) == ["sinusoidal"]


def test_layer_zero_is_token_plus_position_embedding(tiny_gpt, gpt2_tokenizer):
    model = tiny_gpt(**TINY)
    occ = collect_residuals(model, gpt2_tokenizer, n_words=60, max_per_word=3, seed=1)
    assert occ.vectors.shape == (3, 60, 16) and occ.layers == ["embed", "block 0", "block 1"]
    wte, wpe = model.wte.weight.detach().numpy(), model.wpe.weight.detach().numpy()
    by_hand = wte[occ.tokens] + wpe[occ.positions]  # (n, C)
    np.testing.assert_allclose(occ.vectors[0], by_hand, atol=1e-6)
    assert max(occ.words.count(w) for w in set(occ.words)) <= 3
    for token, word in zip(occ.tokens, occ.words):  # ',"' is one token: it holds ','
        assert word[-1] in gpt2_tokenizer.decode([token])


def test_report_and_explorer_data(tiny_gpt, gpt2_tokenizer, tmp_path):
    model = tiny_gpt(**TINY)
    analysis = analyse_embeddings(model, gpt2_tokenizer, group="number", n_words=150, seed=0)
    data = json.loads(json.dumps(analysis.to_dict()))  # JSON-able
    point = data["residual"]["block 1"]["points"][0]
    assert set(point) == {"x", "y", "label", "category"}
    assert {p["category"] for p in data["tokens"]["points"]} >= {"singular", "plural", "other"}
    assert len(data["positions"]["learned"]["cosine"]) == 64
    assert {(p["layer"], p["group"]) for p in data["probes"]} >= {("embed", "part of speech")}
    for p in data["probes"]:
        assert 0 <= p["accuracy"] <= 1 and 0 <= p["baseline"] <= 1
    path = write_embeddings_report(analysis, tmp_path)
    text = path.read_text()
    assert "## Linear probes" in text
    assert re.search(r"\| embed \| [\d.]+% \([\d.]+%\) \|", text)  # accuracy (baseline)
    assert {p.name for p in tmp_path.iterdir()} == {
        "embeddings.md", "embeddings.json", "tokens.png", "positions.png", "residual.png",
        "probes.png",
    }  # fmt: skip


def test_the_command_writes_its_report(tiny_gpt, tmp_path, capsys):
    from gpt2lab.cli import main
    from gpt2lab.pretrained import save_pretrained

    save_pretrained(tiny_gpt(**TINY), tmp_path / "model", format="hf")
    out = tmp_path / "emb"
    argv = ["embeddings", "--model", str(tmp_path / "model"), "--words", "120", "--out", str(out)]
    assert main(argv) == 0
    assert "probe accuracy by layer" in capsys.readouterr().out
    assert (out / "embeddings.md").is_file() and (out / "probes.png").is_file()


def test_tsne_keeps_separate_clusters_apart():
    pytest.importorskip("sklearn.manifold")
    g = np.random.default_rng(0)
    X = np.concatenate([g.normal(0, 1, (40, 16)), g.normal(8, 1, (40, 16))])  # two blobs
    coords, explained = project(X, "tsne", seed=0)
    assert coords.shape == (80, 2) and explained is None
    # every point's nearest neighbour in the map is from its own blob
    d = ((coords[:, None] - coords[None]) ** 2).sum(-1) + np.eye(80) * 1e9
    assert (d.argmin(1) // 40 == np.arange(80) // 40).all()
    np.testing.assert_array_equal(project(X, "tsne", seed=0)[0], coords)  # seeded
    pca_coords, pca_explained = project(X, "pca")
    np.testing.assert_allclose(pca_coords, pca(X, 2).coords)
    assert pca_explained == pca(X, 2).explained.tolist()


def test_a_missing_map_package_or_method_is_one_line():
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(GPT2LabError, match=r"umap needs umap-learn: pip install"):
            project(np.zeros((5, 3)), "umap")
    with pytest.raises(GPT2LabError, match="unknown map 'mds'"):
        project(np.zeros((5, 3)), "mds")


def test_the_tsne_report_names_its_map(tiny_gpt, gpt2_tokenizer, tmp_path):
    pytest.importorskip("sklearn.manifold")
    model = tiny_gpt(**TINY)
    analysis = analyse_embeddings(model, gpt2_tokenizer, n_words=60, seed=0, method="tsne")
    data = analysis.to_dict()
    assert data["method"] == "tsne" and data["tokens"]["explained"] is None
    assert data["positions"]["learned"]["explained"] is not None  # positions stay PCA
    text = write_embeddings_report(analysis, tmp_path).read_text()
    assert "t-SNE of the rows of `wte`" in text and "Map: t-SNE" in text


@pytest.mark.slow  # numba compiles UMAP on first use (~15 s)
def test_umap_keeps_separate_clusters_apart_when_installed():
    pytest.importorskip("umap")
    g = np.random.default_rng(0)
    X = np.concatenate([g.normal(0, 1, (40, 16)), g.normal(8, 1, (40, 16))])
    coords, explained = project(X, "umap", seed=0)
    assert coords.shape == (80, 2) and explained is None
    d = ((coords[:, None] - coords[None]) ** 2).sum(-1) + np.eye(80) * 1e9
    assert (d.argmin(1) // 40 == np.arange(80) // 40).all()
    np.testing.assert_array_equal(project(X, "umap", seed=0)[0], coords)  # seeded
