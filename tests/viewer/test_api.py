"""The explorer's JSON API through the ASGI test client, against references nobody here wrote:
Hugging Face's GPT2LMHeadModel (eager attention weights), plain torch softmax/top-k, and an
ablation done by zeroing the head's columns of c_proj (no hooks at all)."""

from __future__ import annotations

import copy
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from gpt2lab.interp.texts import probe_text_set
from gpt2lab.viewer.api import Limits
from gpt2lab.viewer.server import create_app

TEXT = "When Mary and John went to the store, John gave a drink to Mary."


def ids_of(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text)


def columns_zeroed(model, heads):
    """A copy of `model` whose c_proj ignores the given heads: the reference ablation.

    c_proj's input is the heads' outputs side by side, head h in columns h·hs … (h+1)·hs.
    """
    ablated = copy.deepcopy(model)
    hs = model.config.n_embd // model.config.n_head
    with torch.no_grad():
        for layer, head in heads:
            ablated.blocks[layer].attn.c_proj.weight[:, head * hs : (head + 1) * hs] = 0
    return ablated


def logprobs(model, ids) -> torch.Tensor:
    with torch.no_grad():
        logits, _ = model(torch.tensor([ids]))
    return logits[0].double().log_softmax(-1)  # (T, V)


# ---------------------------------------------------------------------------------------------
# Endpoints
# ---------------------------------------------------------------------------------------------


def test_info_describes_the_model(client, model):
    info = client.get("/api/info").json()
    assert (info["n_layer"], info["n_head"], info["n_embd"]) == (2, 4, 32)
    assert info["max_tokens"] == model.config.block_size  # learned positions cap the text
    assert info["n_params"] == sum(p.numel() for p in model.parameters())
    assert info["has_run"] is True and info["name"] == "tiny"


def test_tokenize_round_trips_the_text(client, tokenizer):
    text = "Héllo wörld </script> <|endoftext|>"
    tokens = client.post("/api/tokenize", json={"text": text}).json()["tokens"]
    assert "".join(t["text"] for t in tokens) == text
    assert tokens[-1]["id"] == tokenizer.eot_token  # the typed special token is the token
    assert [t["id"] for t in tokens[:-1]] == tokenizer.encode(text.removesuffix("<|endoftext|>"))


def test_predictions_match_softmax_of_the_logits(client, model, tokenizer):
    ids = ids_of(tokenizer, TEXT)
    data = client.post("/api/predict", json={"text": TEXT, "k": 4}).json()
    logp = logprobs(model, ids)
    assert data["ablated"] == [] and len(data["positions"]) == len(ids)
    for i, row in enumerate(data["positions"]):
        probs, top = logp[i].exp().topk(4)
        assert [p["id"] for p in row["top"]] == top.tolist()
        np.testing.assert_allclose(
            [p["prob"] for p in row["top"]], probs.numpy(), atol=2e-5
        )  # fp32
        target = ids[i + 1] if i + 1 < len(ids) else int(logp[i].argmax())
        assert row["target"]["id"] == target
        assert row["target_is_prediction"] == (i == len(ids) - 1)
        assert row["logprob"] == pytest.approx(float(logp[i, target]), rel=1e-6, abs=1e-5)
        assert "delta" not in row or row["delta"] is None


@pytest.mark.parametrize("heads", [[(0, 1)], [(0, 3), (1, 0), (1, 2)]])
def test_ablation_deltas_match_zeroed_output_columns(client, model, tokenizer, heads):
    ids = ids_of(tokenizer, TEXT)
    body = {"text": TEXT, "k": 3, "ablate": [{"layer": l, "head": h} for l, h in heads]}
    data = client.post("/api/predict", json=body).json()
    clean, ablated = logprobs(model, ids), logprobs(columns_zeroed(model, heads), ids)
    assert data["ablated"] == [list(h) for h in sorted(heads)]
    targets = ids[1:] + [int(clean[-1].argmax())]
    expected = [float(ablated[i, t] - clean[i, t]) for i, t in enumerate(targets)]
    np.testing.assert_allclose([r["delta"] for r in data["positions"]], expected, atol=1e-5)
    assert max(abs(d) for d in expected) > 1e-3  # the ablation really changes something
    for i, row in enumerate(data["positions"]):
        assert [p["id"] for p in row["ablated_top"]] == ablated[i].topk(3).indices.tolist()


def test_attention_matches_transformers(client, hf_model, tokenizer):
    ids = ids_of(tokenizer, TEXT)
    with torch.no_grad():
        attentions = hf_model(torch.tensor([ids]), output_attentions=True).attentions
    for layer, head in [(0, 0), (1, 3)]:
        body = {"text": TEXT, "layer": layer, "head": head}
        data = client.post("/api/attention", json=body).json()
        assert [t["id"] for t in data["tokens"]] == ids
        reference = attentions[layer][0].numpy()  # (nh, T, T)
        np.testing.assert_allclose(data["pattern"], reference[head], atol=1e-4)
        np.testing.assert_allclose(data["thumbnails"], reference, atol=1e-4)  # T <= thumb size


def test_attention_under_ablation_changes_only_later_layers(client, tokenizer):
    body = {"text": TEXT, "layer": 0, "head": 2}
    ablate = [{"layer": 0, "head": 2}]
    clean0 = client.post("/api/attention", json=body).json()["pattern"]
    ablated0 = client.post("/api/attention", json={**body, "ablate": ablate}).json()["pattern"]
    assert clean0 == ablated0  # zeroing a head's output leaves its own layer's attention
    body["layer"] = 1
    clean1 = np.array(client.post("/api/attention", json=body).json()["pattern"])
    ablated1 = np.array(
        client.post("/api/attention", json={**body, "ablate": ablate}).json()["pattern"]
    )
    assert np.abs(clean1 - ablated1).max() > 1e-3


def test_thumbnails_are_block_means_of_long_patterns(model, tokenizer, hf_model):
    from fastapi.testclient import TestClient

    app = create_app(model, tokenizer, limits=Limits(thumb_size=4))
    text = "one two three four five six seven eight"
    ids = ids_of(tokenizer, text)
    assert len(ids) == 8
    data = (
        TestClient(app, base_url="http://127.0.0.1")
        .post("/api/attention", json={"text": text, "layer": 1, "head": 0})
        .json()
    )
    with torch.no_grad():
        full = hf_model(torch.tensor([ids]), output_attentions=True).attentions[1][0].numpy()
    blocks = full.reshape(4, 4, 2, 4, 2).mean(axis=(2, 4))  # (nh, 4, 4): means of 2 × 2 blocks
    np.testing.assert_allclose(data["thumbnails"], blocks, atol=1e-4)
    np.testing.assert_allclose(data["pattern"], full[0], atol=1e-4)


def test_head_scores_match_hand_computed_previous_token_scores(client, model, tokenizer, hf_model):
    data = client.get("/api/heads").json()
    assert set(data["grids"]) >= {"previous_token", "induction", "first_token", "entropy"}
    texts = probe_text_set(tokenizer, Limits().probe_texts, max_tokens=model.config.block_size)
    per_text = []
    for ids in texts.tokens:
        with torch.no_grad():
            att = hf_model(torch.tensor([ids]), output_attentions=True).attentions
        A = torch.stack(att)[:, 0].double()  # (L, nh, T, T), rows sum to 1
        T = A.shape[-1]
        per_text.append(A.diagonal(offset=-1, dim1=-2, dim2=-1).sum(-1) / T)  # Σ A[i, i-1] / Σ A
    expected = torch.stack(per_text).mean(0).numpy()
    np.testing.assert_allclose(data["grids"]["previous_token"], expected, atol=1e-4)
    assert data["n_texts"] == len(texts.tokens) and data["n_pronouns"] > 0
    rules = {r["role"]: r for r in data["rules"]}
    for role in data["roles"]:
        rule = rules[role["role"]]
        assert role["score"] >= rule["threshold"]
        if rule["score"] in data["grids"]:
            assert data["grids"][rule["score"]][role["layer"]][role["head"]] == pytest.approx(
                role["score"], abs=1e-5
            )


def test_run_curves_come_from_metrics_jsonl(client, run_dir):
    import json

    records = [
        json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()[:-1]
    ]
    data = client.get("/api/run").json()
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    monitors = [r for r in records if r["kind"] == "monitor"]
    assert data["name"] == "tiny" and data["n_records"] == len(records)  # half line skipped
    assert data["series"]["train/loss"]["value"] == [r["loss"] for r in train]
    assert data["series"]["train/lr"]["step"] == [r["step"] for r in train]
    np.testing.assert_allclose(
        data["series"]["eval/val_perplexity"]["value"], [math.exp(r["val_loss"]) for r in evals]
    )
    np.testing.assert_allclose(
        data["series"]["eval/val_perplexity"]["value"], [r["val_ppl"] for r in evals], rtol=1e-6
    )
    grad = data["layered"]["grad_norm"]
    assert grad["layers"] == ["embed", "block0", "block1", "final"]
    assert grad["values"] == [[r["grad_norm"][k] for k in grad["layers"]] for r in monitors]


def test_long_runs_are_thinned_keeping_the_last_point(tmp_path):
    from gpt2lab.viewer.metrics import MAX_POINTS, RunMetrics, thin_indices

    assert thin_indices(10, 4) == [0, 3, 6, 9]
    assert thin_indices(11, 4) == [0, 3, 6, 9, 10]
    with (tmp_path / "metrics.jsonl").open("w") as f:
        for step in range(1, 5001):
            f.write(f'{{"step": {step}, "kind": "train", "loss": {1 / step}, "lr": 0.1}}\n')
    curves = RunMetrics(tmp_path).curves()
    loss = curves["series"]["train/loss"]
    assert len(loss["step"]) <= MAX_POINTS + 1 and loss["step"][-1] == 5000
    assert loss["value"][-1] == pytest.approx(1 / 5000)


def test_page_embeds_hostile_text_safely(client):
    import json
    import re

    hostile = '</script><script>alert(1)</script><!-- & \u2028 "quoted"'
    html = client.get("/", params={"text": hostile}).text
    assert "<script>alert(1)" not in html and "</script><script>" not in html
    boot = re.search(r'<script type="application/json" id="boot">(.*?)</script>', html, re.S)
    assert json.loads(boot.group(1))["text"] == hostile  # the escapes decode to the same text
    assert html.count("</script>") == 2  # the boot block's and app.js's, nothing else


def test_page_and_assets_are_local(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    html = response.text
    assert "http://" not in html and "https://" not in html  # no CDN
    for asset in ("/static/app.js", "/static/draw.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    docs = client.get("/docs").text
    assert "cdn" not in docs.lower()
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/attention", "/api/heads", "/api/run"} <= set(schema["paths"])


# ---------------------------------------------------------------------------------------------
# Bad inputs: every one answers JSON with a one-line message, and the server goes on
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/api/predict", {"text": "word " * 200}, 413, "at most 64"),
        ("/api/tokenize", {"text": "x" * 20_001}, 413, "at most 20000"),
        ("/api/predict", {"text": ""}, 422, "empty text"),
        ("/api/predict", {"text": "hi", "k": 0}, 422, "k"),
        ("/api/predict", {"text": "hi", "k": 21}, 422, "k"),
        ("/api/predict", {"text": "hi", "k": "many"}, 422, "k"),
        ("/api/predict", {"txt": "hi"}, 422, "text"),
        ("/api/predict", {"text": "hi", "ablate": [{"layer": 2, "head": 0}]}, 422, "layer 2"),
        ("/api/predict", {"text": "hi", "ablate": [{"layer": 0, "head": 4}]}, 422, "head 4"),
        ("/api/predict", {"text": "hi", "ablate": [[0, 1]]}, 422, "ablate"),
        ("/api/attention", {"text": "hi", "layer": 9, "head": 0}, 422, "layer 9 is out of range"),
        ("/api/attention", {"text": "hi", "layer": 0, "head": 7}, 422, "head 7 is out of range"),
        ("/api/attention", {"text": "hi", "layer": -1, "head": 0}, 422, "layer"),
        ("/api/attention", {"text": 5}, 422, "text"),
        # strict JSON types: no string, bool or float standing in for an integer
        ("/api/predict", {"text": "hi", "k": "5"}, 422, "k"),
        ("/api/predict", {"text": "hi", "k": True}, 422, "k"),
        ("/api/predict", {"text": "hi", "k": 5.0}, 422, "k"),
        ("/api/attention", {"text": "hi", "layer": "0"}, 422, "layer"),
        ("/api/attention", {"text": "hi", "head": False}, 422, "head"),
        ("/api/predict", {"text": "hi", "ablate": [{"layer": "0", "head": 1}]}, 422, "layer"),
        ("/api/tokenize", {"text": ["hi"]}, 422, "text"),
    ],
)
def test_bad_requests_answer_with_a_message(client, path, body, status, message):
    response = client.post(path, json=body)
    assert response.status_code == status
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and message in detail


def test_bad_json_is_422(client):
    for raw in (b"{not json", b"", b"[1, 2]", b'"text"'):
        response = client.post(
            "/api/predict", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, raw
        assert isinstance(response.json()["detail"], str)


def test_oversized_body_is_413(client):
    response = client.post(
        "/api/predict",
        content=b'{"text": "' + b"a" * (2 << 20) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413 and "body" in response.json()["detail"]


def test_chunked_oversized_body_is_413_too(client):
    def chunks():
        yield b'{"text": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}'

    response = client.post(
        "/api/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and "body" in response.json()["detail"]
    small = client.post(
        "/api/tokenize",
        content=iter([b'{"text": ', b'"hi"}']),
        headers={"content-type": "application/json"},
    )
    assert small.status_code == 200 and small.json()["tokens"][0]["text"] == "hi"


@pytest.mark.parametrize("path", ["/", "/docs", "/redoc", "/api/info", "/openapi.json", "/nope"])
def test_every_page_forbids_framing(client, path):
    response = client.get(path)
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_focus_context_decodes_characters_split_across_tokens(client, tokenizer):
    text = "Fish 🐟 and café 日本語 ok"
    positions = client.post("/api/predict", json={"text": text}).json()["positions"]
    ids = tokenizer.encode(text)
    assert any("\ufffd" in tokenizer.decode([t]) for t in ids)  # some token is half a character
    for row in positions:
        start, i = row["context_start"], row["position"]
        assert start <= max(0, i + 1 - 9)
        assert row["context"] == tokenizer.decode(ids[start : i + 1])
    assert positions[-1]["context"].endswith("日本語 ok")
    assert all("\ufffd" not in row["context"][:1] for row in positions)


def test_no_run_is_404(model, tokenizer):
    from fastapi.testclient import TestClient

    response = TestClient(create_app(model, tokenizer), base_url="http://127.0.0.1").get("/api/run")
    assert response.status_code == 404 and "--run" in response.json()["detail"]


def test_a_run_dir_without_metrics_is_refused(model, tokenizer, tmp_path):
    from gpt2lab.errors import GPT2LabError

    with pytest.raises(GPT2LabError, match="no metrics.jsonl"):
        create_app(model, tokenizer, tmp_path)


def test_static_files_cannot_escape_their_folder(client):
    for path in ("/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2fapi.py"):
        response = client.get(path)
        assert response.status_code == 404
        assert "create_app" not in response.text


def test_the_server_survives_a_crash_in_a_model_call(app, client, monkeypatch):
    explorer = app.app.state.explorer

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(explorer, "_run", broken)
    response = client.post("/api/predict", json={"text": "hi"})
    assert response.status_code == 500 and "boom" in response.json()["detail"]
    monkeypatch.undo()
    assert client.post("/api/predict", json={"text": "hi"}).status_code == 200


def test_concurrent_requests_do_not_leak_ablations(client, model, tokenizer):
    """Sixteen requests at once, half with an ablation: each answer equals its serial one
    (hooks are global state on the model; the lock keeps them apart)."""
    ids = ids_of(tokenizer, TEXT)
    clean = logprobs(model, ids)
    ablated = logprobs(columns_zeroed(model, [(1, 1)]), ids)
    bodies = [
        {"text": TEXT, "k": 1, "ablate": [{"layer": 1, "head": 1}] if i % 2 else []}
        for i in range(16)
    ]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda b: client.post("/api/predict", json=b).json(), bodies))
    for body, answer in zip(bodies, answers):
        reference = ablated if body["ablate"] else clean
        top = [
            row["ablated_top" if body["ablate"] else "top"][0]["id"] for row in answer["positions"]
        ]
        assert top == reference.argmax(-1).tolist()


# ---------------------------------------------------------------------------------------------
# Host header (DNS rebinding)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bind, header, allowed",
    [
        ("127.0.0.1", "127.0.0.1:8000", True),
        ("127.0.0.1", "localhost:8000", True),
        ("127.0.0.1", "[::1]:8000", True),
        ("127.0.0.1", "evil.example:8000", False),
        ("127.0.0.1", "127.0.0.1.evil.example", False),
        ("127.0.0.1", "", False),
        ("::1", "[::1]:8000", True),
        ("0.0.0.0", "192.168.1.20:8000", True),
        ("0.0.0.0", "localhost", True),
        ("0.0.0.0", "evil.example", False),
        ("192.168.1.20", "192.168.1.20:8000", True),
        ("192.168.1.20", "10.0.0.1:8000", False),
        # exact parsing: anything but name[:port] or [ipv6][:port] names no host
        ("127.0.0.1", "localhost:8765@evil.example", False),
        ("127.0.0.1", "127.0.0.1:8000@evil.example", False),
        ("127.0.0.1", "localhost:80:80", False),
        ("127.0.0.1", "localhost:port", False),
        ("127.0.0.1", "localhost /evil", False),
        ("127.0.0.1", "::1", False),
        ("127.0.0.1", "[::1", False),
        ("127.0.0.1", "[::1]evil", False),
        ("127.0.0.1", "LOCALHOST:8000", True),
        ("127.0.0.1", "localhost", True),
        ("0.0.0.0", "192.168.1.20:8000@evil.example", False),
    ],
)
def test_host_header_check(bind, header, allowed):
    from gpt2lab.viewer.server import host_allowed

    assert host_allowed(header, bind) is allowed


def test_foreign_host_header_is_rejected(client):
    response = client.get("/api/info", headers={"host": "rebind.evil.example"})
    assert response.status_code == 400 and "Host" in response.json()["detail"]
    assert client.get("/api/info", headers={"host": "localhost:8000"}).status_code == 200


def test_accepted_connections_get_tcp_nodelay_from_asyncio():
    """asyncio disables Nagle only on sockets whose protocol is TCP; a protocol-0 socket made
    every kept-alive request wait ~40 ms (benchmarks/viewer_keepalive.py measures it)."""
    import asyncio.base_events
    import socket

    from gpt2lab.viewer.server import bind_socket

    listener = bind_socket("127.0.0.1", 0)
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        assert accepted.proto == socket.IPPROTO_TCP
        asyncio.base_events._set_nodelay(accepted)  # what asyncio does to each new transport
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        for sock in (accepted, client, listener):
            sock.close()
