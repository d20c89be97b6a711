"""The explorer's Neurons, Embeddings and Timeline endpoints against references: MLP
activations read from Hugging Face's GPT2LMHeadModel (a forward hook on its GELU), W_U·W_out
from its weights, a NumPy PCA (SVD of the centred rows), the training run's own
metrics.jsonl, and the library functions each view is built on, called directly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gpt2lab.data.categories import GROUPS, categories_of
from gpt2lab.interp.embeddings import collect_residuals, word_tokens
from gpt2lab.interp.neuron_labels import base_rates, label_neurons
from gpt2lab.interp.neurons import scan_neurons, top_examples, top_token_strings
from gpt2lab.interp.neurons_report import shown_neurons
from gpt2lab.interp.texts import packed_probe_text_set
from gpt2lab.timeline import checkpoint_summary, loss_curve
from gpt2lab.viewer.api import EXAMPLE_WIDTH, Limits
from gpt2lab.viewer.server import create_app

from .conftest import RUN_PROBES
from .test_api import TEXT

LAYER = 1


@pytest.fixture(scope="module")
def texts(tokenizer, model):
    """The texts the explorer scans neurons on: its cap of probes, packed to its context."""
    return packed_probe_text_set(tokenizer, Limits().neuron_texts, 0, model.config.block_size)


def hf_activations(hf_model, ids) -> torch.Tensor:
    """Every neuron's activation on one text, read at transformers' MLP GELU: (L, T, F)."""
    found = []
    hooks = [
        block.mlp.act.register_forward_hook(lambda m, i, out: found.append(out[0]))
        for block in hf_model.transformer.h
    ]
    try:
        with torch.no_grad():
            hf_model(torch.tensor([list(ids)]))
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack(found).double()


@pytest.fixture(scope="module")
def layer_acts(hf_model, texts):
    """[text] -> (T, F) activations of LAYER."""
    return [hf_activations(hf_model, ids)[LAYER].numpy() for ids in texts.tokens]


# ---------------------------------------------------------------------------------------------
# Neurons
# ---------------------------------------------------------------------------------------------


def test_layer_summary_matches_activations_read_in_transformers(client, texts, layer_acts, model):
    data = client.get("/api/neurons", params={"layer": LAYER}).json()
    everything = np.concatenate(layer_acts)  # (N, F)
    assert data["n_tokens"] == len(everything) and data["n_texts"] == len(texts)
    assert data["n_neurons"] == model.config.mlp_dim == everything.shape[1]
    rows = data["neurons"]
    np.testing.assert_allclose([r["max"] for r in rows], everything.max(0), atol=1e-5)
    np.testing.assert_allclose([r["mean"] for r in rows], everything.mean(0), atol=1e-5)
    density = (everything > 0).mean(0)
    np.testing.assert_allclose([r["density"] for r in rows], density, atol=2 / len(everything))
    strings = [s for text in texts.strings for s in text]
    assert [r["top_token"] for r in rows] == [strings[i] for i in everything.argmax(0)]


def test_layer_labels_and_order_are_the_librarys(client, model, texts):
    data = client.get("/api/neurons", params={"layer": LAYER}).json()
    scan = scan_neurons(model, texts, k=Limits().neuron_top_k)
    rates = base_rates(s for strings in texts.strings for s in strings)
    labels = label_neurons(top_token_strings(scan, texts), scan.layers, rates)
    for row in data["neurons"]:
        expected = [lb.to_dict() for lb in labels.get((LAYER, row["neuron"]), [])]
        assert row["labels"] == expected
    assert data["order"] == shown_neurons(scan, labels, LAYER, scan.n_neurons)
    assert data["selectivity"]["selective"] == sum(layer == LAYER for layer, _ in labels)


def test_one_neuron_matches_transformers_and_the_library(
    client, model, texts, layer_acts, hf_model
):
    neuron = client.get("/api/neurons", params={"layer": LAYER}).json()["order"][0]
    data = client.get("/api/neuron", params={"layer": LAYER, "neuron": neuron}).json()
    scan = scan_neurons(model, texts, k=Limits().neuron_top_k)
    expected = top_examples(scan, texts, LAYER, neuron, width=EXAMPLE_WIDTH)
    assert [{k: e[k] for k in e if k not in ("tokens", "index")} for e in data["examples"]] == [
        pytest.approx(e.to_dict()) for e in expected
    ]
    column = np.concatenate([a[:, neuron] for a in layer_acts])  # (N,)
    np.testing.assert_allclose(  # the k largest activations of all, in order
        [e["activation"] for e in data["examples"]],
        np.sort(column)[::-1][: len(expected)],
        atol=1e-5,
    )
    for e in data["examples"]:
        assert e["activation"] == pytest.approx(
            layer_acts[e["text"]][e["position"], neuron], abs=1e-5
        )
        start = max(0, e["position"] - EXAMPLE_WIDTH)
        assert e["tokens"] == texts.strings[e["text"]][start : e["position"] + EXAMPLE_WIDTH + 1]
        assert e["tokens"][e["index"]] == e["token"]
    counts, edges = np.histogram(column, bins=40)
    np.testing.assert_allclose(data["histogram"]["edges"], edges, atol=1e-5)
    assert sum(data["histogram"]["counts"]) == len(column)
    assert np.abs(np.array(data["histogram"]["counts"]) - counts).sum() <= 2  # fp32 at an edge
    # W_U (γ ⊙ (w − mean w)) with w = W_out[n], from transformers' own weights
    with torch.no_grad():
        w = hf_model.transformer.h[LAYER].mlp.c_proj.weight[neuron].double()  # Conv1D: (F, C)
        direction = hf_model.transformer.ln_f.weight.double() * (w - w.mean())
        logits = hf_model.lm_head.weight.double() @ direction  # (V,)
    top = logits.topk(len(data["promotes"]))
    assert [t["id"] for t in data["promotes"]] == top.indices.tolist()
    np.testing.assert_allclose([t["logit"] for t in data["promotes"]], top.values, atol=1e-4)
    bottom = (-logits).topk(len(data["suppresses"]))
    assert [t["id"] for t in data["suppresses"]] == bottom.indices.tolist()


def test_a_tokens_neurons_are_its_largest_activations(client, tokenizer, hf_model):
    ids = tokenizer.encode(TEXT)
    body = {"text": TEXT, "position": 5, "k": 7}
    data = client.post("/api/token-neurons", json=body).json()
    acts = hf_activations(hf_model, ids)[:, 5]  # (L, F)
    F = acts.shape[1]
    top = acts.flatten().topk(7)
    assert [(n["layer"], n["neuron"]) for n in data["neurons"]] == [
        (i // F, i % F) for i in top.indices.tolist()
    ]
    np.testing.assert_allclose([n["activation"] for n in data["neurons"]], top.values, atol=1e-5)
    assert data["token"] == {"id": ids[5], "text": tokenizer.decode([ids[5]])}


# ---------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------


def numpy_pca(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coords (n, 2), explained (2,)) by NumPy's SVD of the centred rows."""
    centred = X - X.mean(0)
    U, S, _ = np.linalg.svd(centred, full_matrices=False)
    return U[:, :2] * S[:2], S[:2] ** 2 / (S**2).sum()


def assert_same_points(data, X: np.ndarray) -> None:
    """The API's points are the PCA of X, each axis up to its sign (rounded to 5 decimals)."""
    coords, explained = numpy_pca(X.astype(np.float64))
    got = np.array([[p["x"], p["y"]] for p in data["points"]])
    for k in range(2):
        sign = np.sign(got[:, k] @ coords[:, k])
        np.testing.assert_allclose(got[:, k], sign * coords[:, k], atol=2e-5)
    np.testing.assert_allclose(data["explained"], explained, rtol=1e-6)


def category_in(token: str, group: str) -> str:
    inside = [c for c in categories_of(token) if c in GROUPS[group]]
    return inside[0] if len(inside) == 1 else "other"


def test_token_points_are_a_pca_of_the_word_rows_of_wte(client, tokenizer, hf_model):
    data = client.get("/api/embeddings", params={"space": "tokens", "group": "gender"}).json()
    words = word_tokens(tokenizer, tokenizer.n_vocab)
    assert [p["label"] for p in data["points"]] == [text for _, text, _ in words]
    assert [p["category"] for p in data["points"]] == [
        category_in(t, "gender") for _, t, _ in words
    ]
    assert data["categories"] == ["female", "male", "other"]
    wte = hf_model.transformer.wte.weight.detach().numpy()
    assert_same_points(data, wte[[t for t, _, _ in words]])


def test_position_points_are_a_pca_of_wpe(client, hf_model, model):
    data = client.get("/api/embeddings", params={"space": "positions"}).json()
    assert data["table"] == "learned"
    assert [p["label"] for p in data["points"]] == [str(i) for i in range(model.config.block_size)]
    assert_same_points(data, hf_model.transformer.wpe.weight.detach().numpy())


def test_residual_points_are_a_pca_of_the_residual_stream_at_words(client, model, tokenizer):
    occ = collect_residuals(model, tokenizer, n_words=Limits().embedding_words, context=64)
    for layer in (0, 2):
        params = {"space": "resid", "layer": layer, "group": "meaning"}
        data = client.get("/api/embeddings", params=params).json()
        assert data["table"] == occ.layers[layer] and data["layers"] == occ.layers
        assert [p["label"] for p in data["points"]] == occ.words
        assert [p["category"] for p in data["points"]] == [
            category_in(w, "meaning") for w in occ.words
        ]
        assert_same_points(data, occ.vectors[layer])


# ---------------------------------------------------------------------------------------------
# Timeline
# ---------------------------------------------------------------------------------------------


def run_records(run_dir, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_timeline_is_the_runs_loss_curve_and_its_slope_changes(run_client, trained_run):
    data = run_client.get("/api/timeline").json()
    train, evals = run_records(trained_run, "train"), run_records(trained_run, "eval")
    assert data["steps"] == [8, 16, 24]
    assert data["train"] == {
        "step": [r["step"] for r in train],
        "value": [r["loss"] for r in train],
    }
    assert data["val"] == {
        "step": [r["step"] for r in evals],
        "value": [r["val_loss"] for r in evals],
    }
    curve = loss_curve(trained_run)
    assert data["changes"] == curve.to_dict()["fit"]["changes"]
    assert data["fit"]["value"] == pytest.approx(curve.fit.fitted)
    assert run_client.get("/api/info").json()["has_timeline"] is True


def test_each_checkpoint_is_the_librarys_summary_and_the_trainers_val_loss(run_client, trained_run):
    logged = {r["step"]: r["val_loss"] for r in run_records(trained_run, "eval")}
    for step in (8, 24):
        data = run_client.get("/api/timeline/checkpoint", params={"step": step}).json()
        expected = checkpoint_summary(trained_run, step, probes=RUN_PROBES).to_dict()
        assert data["sample"] == expected["sample"] and data["sample"].startswith("Once upon")
        assert data["roles"] == [pytest.approx(r) for r in expected["roles"]]
        assert data["cloze_accuracy"] == pytest.approx(expected["cloze_accuracy"])
        assert data["val_loss"] == pytest.approx(logged[step], rel=1e-5)  # the trainer's own eval


def test_a_checkpoint_is_measured_once(trained_run, monkeypatch):
    from gpt2lab.viewer import checkpoints

    calls = []
    real = checkpoints.checkpoint_summary
    monkeypatch.setattr(
        checkpoints, "checkpoint_summary", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    timeline = checkpoints.RunTimeline(trained_run, probes=RUN_PROBES)
    assert timeline.checkpoint(16) == timeline.checkpoint(16)
    assert len(calls) == 1


# ---------------------------------------------------------------------------------------------
# Bad requests and missing things
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, params, status, message",
    [
        ("/api/neurons", {"layer": 2}, 422, "layer 2 is out of range"),
        ("/api/neurons", {"layer": -1}, 422, "layer"),
        ("/api/neurons", {}, 422, "layer"),
        ("/api/neurons", {"layer": "one"}, 422, "layer"),
        ("/api/neuron", {"layer": 0, "neuron": 128}, 422, "neuron 128 is out of range"),
        ("/api/neuron", {"layer": 5, "neuron": 0}, 422, "layer 5 is out of range"),
        ("/api/neuron", {"layer": 0}, 422, "neuron"),
        ("/api/embeddings", {"space": "words"}, 422, "space"),
        ("/api/embeddings", {"space": "resid", "layer": 3}, 422, "layer 3 is out of range"),
        ("/api/embeddings", {"group": "colour"}, 422, "unknown category group"),
        ("/api/timeline", {}, 404, "no step checkpoints"),
        ("/api/timeline/checkpoint", {"step": 8}, 404, "no step checkpoints"),
        ("/api/timeline/checkpoint", {"step": -1}, 422, "step"),
    ],
)
def test_bad_view_requests_answer_with_a_message(client, path, params, status, message):
    response = client.get(path, params=params)
    assert response.status_code == status
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and message in detail


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"text": TEXT, "position": 99}, 422, "position 99 is out of range"),
        ({"text": TEXT, "position": -1}, 422, "position"),
        ({"text": TEXT}, 422, "position"),
        ({"text": TEXT, "position": 0, "k": 51}, 422, "k"),
        ({"text": TEXT, "position": "0"}, 422, "position"),
        ({"text": "word " * 200, "position": 0}, 413, "at most 64"),
    ],
)
def test_bad_token_neuron_requests(client, body, status, message):
    response = client.post("/api/token-neurons", json=body)
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_timeline_without_a_run_or_a_step_is_404(model, tokenizer, run_client):
    from fastapi.testclient import TestClient

    bare = TestClient(create_app(model, tokenizer), base_url="http://127.0.0.1")
    response = bare.get("/api/timeline")
    assert response.status_code == 404 and "--run" in response.json()["detail"]
    assert bare.get("/api/info").json()["has_timeline"] is False
    response = run_client.get("/api/timeline/checkpoint", params={"step": 5})
    assert response.status_code == 404
    assert "no checkpoint at step 5 (kept: 8, 16, 24)" in response.json()["detail"]
