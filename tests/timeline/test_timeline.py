"""build_timeline on a tiny real run, each quantity against an independent computation:
the val loss against Hugging Face's GPT2LMHeadModel on batches cut from the shard by hand
(and against the trainer's own logged evaluation), the head scores against
compute_head_scores, the sample against generate (and samples.txt), the cloze accuracy
against cloze_score, the name losses against Hugging Face's model on each story alone."""

import dataclasses
import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gpt2lab.data.shards import read_shard
from gpt2lab.errors import GPT2LabError
from gpt2lab.evaluate import cloze_score, read_probe_records
from gpt2lab.generate import generate
from gpt2lab.interp.behaviours import NameRecall
from gpt2lab.interp.heads import classify_heads, compute_head_scores, uniform_distance
from gpt2lab.interp.texts import packed_probe_text_set
from gpt2lab.pretrained import load_pretrained
from gpt2lab.timeline import build_timeline, checkpoint_summary, loss_curve, write_timeline
from gpt2lab.timeline.build import make_inputs, summarize_model
from gpt2lab.tokenizer import get_tokenizer

PROBES = 40


@pytest.fixture(scope="module")
def timeline(tiny_run):
    return build_timeline(tiny_run, probes=PROBES)


def checkpoint(run, step):
    return run / "checkpoints" / f"step_{step:06d}"


def test_every_kept_checkpoint_in_order(timeline):
    assert [c.step for c in timeline.checkpoints] == [10, 20, 30]
    assert timeline.curve.checkpoint_steps == [10, 20, 30]
    assert timeline.curve.train_steps == list(range(1, 31))


def test_val_loss_against_hugging_face_on_batches_cut_by_hand(timeline, tiny_run):
    transformers = pytest.importorskip("transformers")
    s = timeline.settings
    tokens = read_shard(f"{s['data']}/val_000000.bin").astype(np.int64)
    T, n = s["block_size"], s["val_batches"] * s["batch_size"]
    x = torch.tensor(np.stack([tokens[k * T : k * T + T] for k in range(n)]))  # (n, T)
    y = torch.tensor(np.stack([tokens[k * T + 1 : k * T + T + 1] for k in range(n)]))
    for summary in timeline.checkpoints:
        hf = transformers.GPT2LMHeadModel.from_pretrained(checkpoint(tiny_run, summary.step))
        with torch.no_grad():
            logits = hf.eval()(x).logits  # (n, T, V)
        expected = F.cross_entropy(logits.flatten(0, 1), y.flatten()).item()
        assert summary.val_loss == pytest.approx(expected, rel=1e-5)
        assert summary.val_tokens == n * T


def test_val_loss_is_the_trainers_logged_evaluation(timeline):
    """Evaluations ran at steps 10, 20, 30 with the same batches: the same numbers."""
    logged = dict(zip(timeline.curve.val_steps, timeline.curve.val_losses))
    for summary in timeline.checkpoints:
        assert summary.val_loss == pytest.approx(logged[summary.step], rel=1e-6)


def test_head_scores_against_compute_head_scores(timeline, tiny_run):
    tokenizer = get_tokenizer(str(checkpoint(tiny_run, 10)))
    texts = packed_probe_text_set(tokenizer, PROBES, 0, 64)
    for summary in timeline.checkpoints:
        scores = compute_head_scores(load_pretrained(checkpoint(tiny_run, summary.step)), texts)
        labelled = classify_heads(scores, mean_uniform_distance=uniform_distance(texts))
        grids = {
            "previous-token": scores.grids["previous_token"],
            "induction": scores.grids["induction"],
            "sentence-boundary": scores.grids["sentence_boundary"],
            "long-range": scores.grids["mean_distance"] / uniform_distance(texts),
            "sink": scores.grids["first_token"],
        }
        assert [r.role for r in summary.roles] == list(grids)
        for role in summary.roles:
            grid = grids[role.role]
            assert role.score == pytest.approx(float(grid.max()), abs=1e-6)
            assert role.score == pytest.approx(float(grid[role.layer, role.head]), abs=1e-6)
            assert role.heads == sum(r.role == role.role for r in labelled)
        assert summary.induction_loss == pytest.approx(scores.induction_loss, rel=1e-6)


def test_name_losses_against_hugging_face_one_story_at_a_time(timeline, tiny_run):
    """The tiny run's near-byte vocabulary fits no second name in 64 tokens of a held-out
    story, so its timeline has no name losses; on a text that repeats names, they are
    Hugging Face's cross-entropy at each mention."""
    transformers = pytest.importorskip("transformers")
    assert all(c.said_name_loss is None and c.new_name_loss is None for c in timeline.checkpoints)
    tokenizer = get_tokenizer(str(checkpoint(tiny_run, 10)))
    rows, said, new = [], [], []
    for row, text in enumerate(["Mia met Tom. Tom ran.", "Sam saw Ann. Sam hid. Ann ate."]):
        ids = tokenizer.encode(text)
        rows.append(ids)
        seen = set()
        for word in re.finditer(r"[A-Z][a-z]+", text):
            position = len(tokenizer.encode(text[: word.start()]))  # its first token
            if seen:
                (said if word.group() in seen else new).append((row, position))
            seen.add(word.group())
    assert len(said) == 3 and len(new) == 2
    inputs = dataclasses.replace(
        make_inputs(tiny_run, probes=PROBES), names=NameRecall(rows, said, new)
    )
    for step in (10, 30):
        summary = summarize_model(load_pretrained(checkpoint(tiny_run, step)), step, inputs)
        hf = transformers.GPT2LMHeadModel.from_pretrained(checkpoint(tiny_run, step)).eval()
        with torch.no_grad():
            logits = [hf(torch.tensor([ids])).logits[0] for ids in rows]
        for mentions, value in ((said, summary.said_name_loss), (new, summary.new_name_loss)):
            losses = [
                F.cross_entropy(logits[row][position - 1], torch.tensor(rows[row][position]))
                for row, position in mentions
            ]
            assert value == pytest.approx(float(torch.stack(losses).mean()), rel=1e-5)


def test_sample_against_generate_and_samples_txt(timeline, tiny_run):
    tokenizer = get_tokenizer(str(checkpoint(tiny_run, 10)))
    written = re.split(r"^=== step (\d+) ===\n", (tiny_run / "samples.txt").read_text(), flags=re.M)
    during_training = {int(s): text.strip("\n") for s, text in zip(written[1::2], written[2::2])}
    prompt = tokenizer.encode("Once upon a time")
    for summary in timeline.checkpoints:
        model = load_pretrained(checkpoint(tiny_run, summary.step))
        out = generate(model, torch.tensor([prompt]), 12, temperature=0.8, top_k=40, seed=1337)
        assert summary.sample == "Once upon a time" + tokenizer.decode(
            out[0, len(prompt) :].tolist()
        )
        assert summary.sample == during_training[summary.step]


def test_cloze_against_cloze_score(timeline, tiny_run):
    tokenizer = get_tokenizer(str(checkpoint(tiny_run, 10)))
    records = read_probe_records(None, PROBES, 0)
    for summary in timeline.checkpoints:
        expected = cloze_score(
            load_pretrained(checkpoint(tiny_run, summary.step)), tokenizer, records
        )
        assert summary.cloze_accuracy == expected["accuracy"]


def test_one_checkpoint_with_another_prompt_and_seed(tiny_run):
    summary = checkpoint_summary(tiny_run, 20, probes=10, prompt="The dog", seed=5)
    assert summary.step == 20 and summary.sample.startswith("The dog")
    again = checkpoint_summary(tiny_run, 20, probes=10, prompt="The dog", seed=5)
    assert again == summary  # deterministic
    assert json.loads(json.dumps(summary.to_dict()))["roles"][0]["role"] == "previous-token"
    with pytest.raises(GPT2LabError, match="no checkpoint at step 15"):
        checkpoint_summary(tiny_run, 15)


def test_json_markdown_and_png(timeline, tmp_path):
    data = json.loads(json.dumps(timeline.to_dict()))
    assert [c["step"] for c in data["checkpoints"]] == [10, 20, 30]
    assert data["curve"]["fit"]["changes"] == [
        {"step": c.step, "slope_before": c.slope_before, "slope_after": c.slope_after}
        for c in timeline.curve.fit.changes
    ]
    path = write_timeline(timeline, tmp_path / "out")
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "timeline.json",
        "timeline.md",
        "timeline.png",
    ]
    assert (path.parent / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    rows = [line for line in path.read_text().splitlines() if re.match(r"^\| \d+ \|", line)]
    assert [row.split("|")[1].strip() for row in rows] == ["10", "20", "30"]
    assert f"{timeline.checkpoints[0].val_loss:.3f}" in rows[0]
    assert "| – / – |" in rows[0]  # no name losses on the tiny run (see above)
    assert data["checkpoints"][0]["said_name_loss"] is None


def test_loss_curve_alone_loads_no_model(tiny_run):
    curve = loss_curve(tiny_run)
    assert curve.checkpoint_steps == [10, 20, 30] and len(curve.fit.steps) == 30
    assert json.loads(json.dumps(curve.to_dict()))["train_steps"] == list(range(1, 31))


def test_name_cell_shows_each_loss_or_a_dash():
    from gpt2lab.timeline.report import name_cell

    assert name_cell(3.234, 5.5) == "3.23 / 5.50"
    assert name_cell(None, 5.5) == "– / 5.50" and name_cell(None, None) == "– / –"
