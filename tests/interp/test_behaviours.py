"""Behaviours and the ablation-specificity check.

Every behaviour is compared with a hand computation: plain `F.cross_entropy` / logits on each
text run alone (no padding), with a head removed by zeroing its slice of `c_proj`'s input
columns in a copy of the model (not by the hooks under test). The check itself is tested on
a hand-built induction circuit whose answer is known by construction, and on a trained one.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gpt2lab.config import GPTConfig
from gpt2lab.interp.behaviours import (
    BehaviourSet,
    Contrast,
    NameRecall,
    ablation_specificity,
    bigram_targets,
    check_role,
    induction_partners,
    measure_behaviours,
    name_recall_set,
    pronoun_contrasts,
    story_text_set,
)
from gpt2lab.interp.heads import (
    HeadRole,
    InductionSpec,
    TextSet,
    classify_heads,
    compute_head_scores,
    induction_scores,
)
from gpt2lab.interp.interventions import zero_ablate_head
from gpt2lab.interp.report import build_heads_report, write_heads_report
from gpt2lab.model import GPT
from gpt2lab.tokenizer import get_tokenizer

from .training import copying_model


def test_bigram_targets_follow_a_non_initial_word_piece():
    assert bigram_targets(["C", "armen", " and", " S", "t", "eve", "."]) == [2, 5, 6]
    assert bigram_targets([" the", " cat", "."]) == []
    # 'Hi' follows a quote, so it starts a word; 'there' continues it, so '!' counts
    assert bigram_targets(['"', "Hi", "there", "!"]) == [3]
    assert bigram_targets(["a", "b", "c", "d"]) == [2, 3]  # one long word


def test_pronoun_contrasts_come_from_the_annotations():
    from gpt2lab.data.stories import probe_examples

    tok = get_tokenizer("gpt2")
    records = [r for r in probe_examples(20, seed=4, tokenizer=tok) if r["kind"] == "coreference"]
    contrasts = pronoun_contrasts(tok, 20, seed=4)
    assert len(contrasts) == len(records) == 10  # gpt2 gives every name its own first token
    for record, contrast in zip(records, contrasts):
        text = tok.decode(contrast.tokens)  # the probe up to and including the pronoun
        assert record["text"].startswith(text) and text.endswith(record["pronoun"]["text"])
        assert (" " + record["antecedent"]["text"]).startswith(tok.decode([contrast.right]))
        assert (" " + record["distractor"]["text"]).startswith(tok.decode([contrast.wrong]))
        assert contrast.right != contrast.wrong
    assert pronoun_contrasts(tok, 20, seed=4, max_tokens=5) == []


def test_the_bigram_texts_are_held_out_stories_every_token_once_until_enough_targets():
    """The name set's stories, whole, in windows, as many as it takes to reach the targets:
    read back by the tokenizer, not by the windowing under test."""
    from gpt2lab.data.stories import generate_stories

    tok = get_tokenizer("gpt2")
    texts = story_text_set(tok, targets=30, seed=2, max_tokens=16)
    n = int(texts.source.split()[0])
    assert texts.source == f"{n} held-out stories (seed 12347)"
    stories = list(generate_stories(n, seed=12345 + 2))
    assert [i for t in texts.tokens for i in t] == [i for s in stories for i in tok.encode(s)]
    assert all(1 <= len(t) <= 16 for t in texts.tokens)
    assert texts.strings == [[tok.decode([i]) for i in t] for t in texts.tokens]
    found = sum(len(bigram_targets(s)) for s in texts.strings)
    fewer = story_text_set(tok, targets=30, seed=2, max_tokens=16, max_stories=n - 1)
    assert found >= 30 > sum(len(bigram_targets(s)) for s in fewer.strings)
    recall = name_recall_set(tok, n=n, seed=2, max_tokens=10_000)
    assert recall.tokens == [tok.encode(s) for s in stories]  # the same stories
    assert story_text_set(tok, targets=30, seed=2, max_tokens=16).tokens == texts.tokens


@pytest.mark.parametrize("max_tokens", [40, 128])
def test_name_mentions_are_split_by_whether_the_story_said_the_name_before(max_tokens):
    """Checked on the decoded rows by splitting words, not by the regex under test."""
    from gpt2lab.data.stories import NAMES

    names = {name for group in NAMES.values() for name in group}
    tok = get_tokenizer("gpt2")
    recall = name_recall_set(tok, n=12, seed=3, max_tokens=max_tokens)
    assert len(recall.tokens) == 12 and all(len(t) <= max_tokens for t in recall.tokens)
    expected_said, expected_new = [], []
    for row, ids in enumerate(recall.tokens):
        seen: set[str] = set()
        for position in range(len(ids)):
            word = tok.decode([ids[position]]).strip(' "')
            # the whole word that starts at this token, read on in the decoded text
            name = tok.decode(ids[position:]).lstrip(' "').split(" ")[0].rstrip('.,!?"')
            if not word or not name.startswith(word) or name not in names:
                continue
            if seen and position > 0:
                (expected_said if name in seen else expected_new).append((row, position))
            seen.add(name)
    assert recall.said == expected_said and recall.new == expected_new
    assert recall.said and recall.new
    if max_tokens == 128:
        assert len(recall.said) > len(recall.new)  # most later mentions repeat a name
    assert name_recall_set(tok, n=12, seed=3, max_tokens=max_tokens) == recall  # seeded


# ---------------------------------------------------------------------------------------------
# Values against a hand computation
# ---------------------------------------------------------------------------------------------


def zeroed_copy(model, layer: int, head: int):
    """A copy of `model` whose head writes nothing: its c_proj input columns set to 0."""
    twin = copy.deepcopy(model)
    hs = model.config.n_embd // model.config.n_head
    with torch.no_grad():
        twin.blocks[layer].attn.c_proj.weight[:, head * hs : (head + 1) * hs] = 0.0
    return twin


def by_hand(model, behaviours: BehaviourSet) -> dict[str, float]:
    """Every behaviour, one text at a time, with plain cross-entropy and logits."""
    with torch.no_grad():
        losses = []
        for tokens, strings in zip(behaviours.texts.tokens, behaviours.texts.strings):
            logits, _ = model(torch.tensor([tokens]))
            for j in bigram_targets(strings):  # token j is predicted at position j - 1
                losses.append(F.cross_entropy(logits[0, j - 1], torch.tensor(tokens[j])))
        spec = behaviours.induction
        L = spec.rep_len
        idx = spec.sequences(model.config.vocab_size)
        logits, _ = model(idx)
        first = [F.cross_entropy(logits[:, t - 1], idx[:, t]) for t in range(1, L)]
        second = [F.cross_entropy(logits[:, t - 1], idx[:, t]) for t in range(L + 1, 2 * L)]
        gaps = []
        for c in behaviours.contrasts:
            last = model(torch.tensor([c.tokens]))[0][0, -1]
            gaps.append(float(last[c.right] - last[c.wrong]))
    values = {
        "bigram_loss": float(torch.stack(losses).mean()),
        "first_half_loss": float(torch.stack(first).mean()),
        "repeated_half_loss": float(torch.stack(second).mean()),
    }
    if gaps:
        values["pronoun_accuracy"] = float(np.mean([g > 0 for g in gaps]))
        values["pronoun_margin"] = float(np.mean(gaps))
    if behaviours.names is not None:
        for key, mentions in (
            ("said_name_loss", behaviours.names.said),
            ("new_name_loss", behaviours.names.new),
        ):
            with torch.no_grad():
                losses = [
                    F.cross_entropy(
                        model(torch.tensor([behaviours.names.tokens[row]]))[0][0, position - 1],
                        torch.tensor(behaviours.names.tokens[row][position]),
                    )
                    for row, position in mentions
                ]
            values[key] = float(torch.stack(losses).mean())
    return values


def small_set() -> BehaviourSet:
    texts = TextSet(
        [[1, 2, 3, 4, 5, 6, 7], [8, 9, 10], [11, 12, 13, 14, 15]],
        [[" a", "b", "c", " d", "e", "f", "."], [" x", " y", " z"], ["p", "q", "r", " s", "t"]],
    )
    contrasts = [Contrast([1, 2, 3], 4, 5), Contrast([3, 2, 9, 9, 1], 7, 1), Contrast([6], 2, 3)]
    names = NameRecall(  # rows of three lengths, so the padding is exercised
        [[4, 5, 6, 4, 7, 5], [9, 9, 3], [1, 2, 3, 4, 1, 2, 8, 2]],
        said=[(0, 3), (0, 5), (2, 4), (2, 7), (1, 1)],
        new=[(0, 1), (2, 6)],
    )
    return BehaviourSet(texts, InductionSpec(rep_len=8, n_seqs=4, seed=2), contrasts, names)


def test_every_behaviour_matches_a_hand_computation_clean_and_ablated(small_model):
    model = small_model(seed=1)
    behaviours = small_set()
    assert behaviours.n_bigram_targets == 6  # c, " d", f, ".", r, " s"
    clean = measure_behaviours(model, behaviours)
    assert clean == pytest.approx(by_hand(model, behaviours), rel=1e-4, abs=1e-5)
    ablated = measure_behaviours(model, behaviours, zero_ablate_head(model, 1, 2))
    assert ablated == pytest.approx(by_hand(zeroed_copy(model, 1, 2), behaviours), rel=1e-4)
    assert ablated["bigram_loss"] != pytest.approx(clean["bigram_loss"])


# ---------------------------------------------------------------------------------------------
# The check on a hand-built induction circuit
# ---------------------------------------------------------------------------------------------

V, T = 32, 16
TOK, POS, PREV, OUT = 0, V, V + T, 2 * V + T  # where each subspace of the residual starts


def induction_circuit() -> GPT:
    """A 2-layer model whose weights are set by hand (no norms, MLPs off):

    layer 0, heads 0 and 1: both previous-token heads (query = position i, key = position
    j + 1), each copying half of token j into the PREV subspace, so either alone still
    leaves the signal; layer 1, head 0: an induction head (query = current token, key =
    PREV) writing the token it finds into OUT, which the unembedding reads; layer 1, head 1
    does nothing. Removing L1H0 is the only way to stop the copying.
    """
    config = GPTConfig(
        vocab_size=V, block_size=T, n_layer=2, n_head=2, n_embd=3 * V + T, bias=False,
        norm_placement="none", tie_embeddings=False,
    )  # fmt: skip
    model = GPT(config)
    C, hs, s = config.n_embd, config.n_embd // 2, 60.0
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.wte.weight[:, TOK : TOK + V] = torch.eye(V)
        model.wpe.weight[:, POS : POS + T] = torch.eye(T)
        model.lm_head.weight[:, OUT : OUT + V] = torch.eye(V)
        w0 = model.blocks[0].attn.c_attn.weight  # (3C, C): rows q | k | v
        for h in (0, 1):
            for k in range(T):
                w0[h * hs + k, POS + k] = s  # query: position i
                if k >= 1:
                    w0[C + h * hs + k, POS + k - 1] = 1.0  # key: position j + 1
            for k in range(V):
                w0[2 * C + h * hs + k, TOK + k] = 1.0  # value: token j
                model.blocks[0].attn.c_proj.weight[PREV + k, h * hs + k] = 0.5
        w1 = model.blocks[1].attn.c_attn.weight
        for k in range(V):
            w1[k, TOK + k] = s  # query: the current token
            w1[C + k, PREV + k] = 1.0  # key: the token before j
            w1[2 * C + k, TOK + k] = 1.0  # value: token j
            model.blocks[1].attn.c_proj.weight[OUT + k, k] = 10.0
    return model.eval()


def circuit_set() -> BehaviourSet:
    texts = TextSet([[1, 2, 3, 4]], [["a", "b", "c", "d"]])
    return BehaviourSet(texts, InductionSpec(rep_len=8, n_seqs=8, seed=0))


def test_specificity_holds_on_a_hand_built_induction_head_and_fails_when_mislabelled():
    model = induction_circuit()
    behaviours = circuit_set()
    roles = [HeadRole(1, 0, "induction", 1.0)]
    result = ablation_specificity(model, behaviours, roles, progress=False)
    # not 0: random tokens repeat within a half, and position 0 counts as its own predecessor
    assert result.clean["repeated_half_loss"] < 0.5 < 3.0 < result.clean["first_half_loss"]
    checks = {c.role: c for c in result.checks}
    induction = checks["induction"]
    assert induction.verdict == "holds", induction
    assert induction.most_hurt == (1, 0) and induction.most_hurt_delta > 1.0
    # Δ against a model with the head's weights zeroed, not via hooks
    twin = by_hand(zeroed_copy(model, 1, 0), behaviours)["repeated_half_loss"]
    assert induction.most_hurt_delta == pytest.approx(twin - result.clean["repeated_half_loss"])
    # either previous-token head alone is redundant: removing it costs (almost) nothing
    assert abs(result.delta["repeated_half_loss"][0]).max() < 0.05
    assert checks["previous-token"].verdict == "no head labelled"
    assert checks["coreference"].verdict == "not measured"  # no contrasts given
    # the same model with the label on the idle head: the check must fail
    wrong = ablation_specificity(model, behaviours, [HeadRole(1, 1, "induction", 1.0)], False)
    failed = {c.role: c for c in wrong.checks}["induction"]
    assert failed.verdict == "fails" and failed.most_hurt == (1, 0)
    assert failed.runner_up == (1, 0)  # the most harmful head without the label


def test_removing_a_roles_heads_together_shows_what_each_alone_hides():
    """The circuit's two previous-token heads each carry the whole signal: removing one costs
    the copying nothing, removing both breaks it, as in a model with both zeroed by hand."""
    model = induction_circuit()
    behaviours = circuit_set()
    roles = [HeadRole(0, 0, "previous-token", 1.0), HeadRole(0, 1, "previous-token", 1.0)]
    roles.append(HeadRole(1, 0, "induction", 1.0))
    result = ablation_specificity(model, behaviours, roles, progress=False)
    assert list(result.together) == ["previous-token", "induction"]
    both = result.together["previous-token"]
    assert abs(result.delta["repeated_half_loss"][0]).max() < 0.05
    assert both["repeated_half_loss"] - result.clean["repeated_half_loss"] > 1.0
    by_weights = by_hand(zeroed_copy(zeroed_copy(model, 0, 0), 0, 1), behaviours)
    assert both == pytest.approx(by_weights, rel=1e-4, abs=1e-5)
    alone = by_hand(zeroed_copy(model, 1, 0), behaviours)
    assert result.together["induction"] == pytest.approx(alone, rel=1e-4, abs=1e-5)


def test_check_role_rules():
    delta = {
        "repeated_half_loss": np.array([[0.5, 0.0], [0.5, 0.2]]),
        "pronoun_accuracy": np.array([[-0.1, 0.0], [-0.1, 0.0]]),
        "pronoun_margin": np.array([[-0.3, 0.0], [-0.9, 0.1]]),
    }
    # a tie for the largest harm between a labelled and an unlabelled head is not a pass
    assert check_role("induction", "repeated_half_loss", [(1, 0)], delta).verdict == "fails"
    both = check_role("induction", "repeated_half_loss", [(0, 0), (1, 0)], delta)
    assert both.verdict == "holds" and both.runner_up == (1, 1)
    # accuracy ties are broken by the margin: L1H0's drop of 0.9 beats L0H0's 0.3
    accuracy = check_role("coreference", "pronoun_accuracy", [(1, 0)], delta)
    assert accuracy.verdict == "holds" and accuracy.runner_up == (0, 0)
    # a head whose removal helps is no evidence
    helps = {"bigram_loss": np.array([[-0.1, -0.2]])}
    assert check_role("previous-token", "bigram_loss", [(0, 0)], helps).verdict == "fails"
    unlabelled = check_role("previous-token", "bigram_loss", [], helps)
    assert unlabelled.verdict == "no head labelled" and unlabelled.most_hurt == (0, 0)
    assert check_role("coreference", "pronoun_accuracy", [(0, 0)], {}).verdict == "not measured"


def test_heads_report_shows_behaviours_and_the_check(tmp_path):
    model = induction_circuit()
    texts = TextSet([[1, 2, 3, 4, 1, 2, 3, 4]], [["a", "b", "c", "d", "a", "b", "c", "d"]])
    names = NameRecall([[1, 2, 3, 1, 2, 3], [4, 5, 4]], said=[(0, 3), (1, 2)], new=[(0, 1)])
    behaviours = BehaviourSet(
        texts, InductionSpec(rep_len=6, n_seqs=8), [Contrast([1, 2], 3, 4)], names
    )
    report = build_heads_report(model, texts, progress=False, behaviours=behaviours)
    path = write_heads_report(report, tmp_path, "circuit")
    text = path.read_text()
    assert "## Behaviours" in text and "## Ablation specificity" in text
    clean = report.specificity.clean
    assert f"| repeated-half loss | {clean['repeated_half_loss']:.3f} |" in text
    said = report.specificity.delta["said_name_loss"]
    worst = np.unravel_index(int(np.argmax(said)), said.shape)
    assert f"| loss on names said before | {clean['said_name_loss']:.3f} | 2 mentions" in text
    assert "| loss on names said first |" in text and "1 first mentions" in text
    assert f"raises their loss most are L{worst[0]}H{worst[1]}" in text
    together = report.specificity.together["induction"]
    cells = [f"{together[n] - clean[n]:+.3f}" for n in clean]
    assert "| induction | " + " | ".join(cells) + " |" in text
    assert data_together(tmp_path) == report.specificity.together
    assert "| induction | L1H0 | repeated-half loss | L1H0 (" in text and "**holds**" in text
    data = json.loads((tmp_path / "scores.json").read_text())
    assert data["behaviours"]["clean"] == pytest.approx(clean)
    assert np.allclose(
        data["behaviours"]["delta"]["bigram_loss"],
        report.specificity.delta["bigram_loss"],
        atol=1e-6,
    )
    assert (tmp_path / "behaviours_ablation.png").stat().st_size > 0
    # no ablation, no behaviours
    assert (
        build_heads_report(
            model, texts, ablation="none", progress=False, behaviours=behaviours
        ).specificity
        is None
    )


def data_together(out) -> dict:
    return json.loads((out / "scores.json").read_text())["behaviours"]["together"]


def test_a_report_with_no_roles_says_so_and_where_to_read_why(tmp_path):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=2, n_head=2, n_embd=32)).eval()
    g = torch.Generator().manual_seed(1)
    tokens = [torch.randint(64, (32,), generator=g).tolist() for _ in range(3)]
    texts = TextSet(tokens, [[str(t) for t in row] for row in tokens])
    report = build_heads_report(model, texts, ablation="none", progress=False)
    assert report.roles == []  # an untrained model's attention is near uniform
    text = write_heads_report(report, tmp_path, "untrained").read_text()
    assert "No head passes a role threshold." in text and "docs/interpretability.md" in text


# ---------------------------------------------------------------------------------------------
# A trained induction circuit: the partner competes
# ---------------------------------------------------------------------------------------------


def test_trained_induction_circuit_its_two_heads_are_the_ones_the_copying_needs():
    """The 2-layer copying model of test_proofs (`training.copying_model`). Its induction
    head (layer 1) composes with a partner head in layer 0, and removing either stops the
    copying: they are the two heads whose ablation raises the repeated-half loss most, far
    above the rest. Which of the two hurts more is not a property of the role (here the
    partner, 5.81 against 5.63 nats), so the check counts the partner, found causally: without
    it the induction head's stripe falls from 0.79 to 0.07, without the other layer-0 head
    it stays at 0.76."""
    model, _ = copying_model()  # trained once, shared with test_proofs
    spec = InductionSpec(rep_len=12, n_seqs=16, seed=1)
    texts = TextSet([list(range(1, 20))], [[f" w{i}" for i in range(1, 20)]])
    scores = compute_head_scores(model, texts, induction=spec, progress=False)
    roles = [r for r in classify_heads(scores) if r.role == "induction"]
    assert [(r.layer, r.head) for r in roles] == [(1, 0)]
    result = ablation_specificity(model, BehaviourSet(texts, spec), roles, progress=False)
    clean = result.clean
    assert clean["repeated_half_loss"] < 0.5 * clean["first_half_loss"]
    assert clean["repeated_half_loss"] == pytest.approx(induction_scores(model, spec)[1])
    delta = result.delta["repeated_half_loss"]
    top_two = sorted(np.ndindex(delta.shape), key=lambda h: -delta[h])[:2]
    assert (1, 0) in top_two and {h[0] for h in top_two} == {0, 1}
    others = [delta[h] for h in np.ndindex(delta.shape) if h not in top_two]
    assert min(delta[h] for h in top_two) > 3 * max(others)
    (partner,) = [h for h in top_two if h[0] == 0]
    assert [(p.head, p.of) for p in result.partners] == [(partner, (1, 0))]
    assert result.partners[0].ablated < 0.25 * result.partners[0].clean
    (induction,) = [c for c in result.checks if c.role == "induction"]
    assert induction.partners == [partner] and induction.verdict == "holds"
    # without the partner counted, the same Δ grid fails the check whenever the partner hurts
    # more (it does here)
    alone = check_role("induction", "repeated_half_loss", [(1, 0)], result.delta)
    assert alone.verdict == ("holds" if top_two[0] == (1, 0) else "fails")


def test_induction_partners_are_earlier_heads_whose_ablation_removes_the_stripe():
    clean = np.array([[0.0, 0.1], [0.9, 0.6]])  # (L, nh): L1H0 and L1H1 induction heads
    ablated = np.broadcast_to(clean, (2, 2, 2, 2)).copy()  # (ablated head, scored head)
    ablated[0, 0, 1, 0] = 0.2  # L0H0 carries L1H0's stripe
    ablated[0, 1, 1, 1] = 0.46  # L0H1 takes 23 % of L1H1's: below PARTNER_DROP
    ablated[1, 1, 1, 0] = 0.0  # a head of the same layer is never a partner
    found = induction_partners(clean, ablated, [(1, 0), (1, 1)])
    assert [(p.head, p.of, p.clean, p.ablated) for p in found] == [((0, 0), (1, 0), 0.9, 0.2)]
    ablated[0, 1, 1, 1] = 0.44  # 27 %: a partner
    assert [p.head for p in induction_partners(clean, ablated, [(1, 1)])] == [(0, 1)]
    assert induction_partners(clean, ablated, []) == []


def test_harm_grid_colours_each_column_on_its_own_scale():
    from gpt2lab.plots.behaviours import behaviour_harm_grid

    delta = np.array([[0.5, -0.1], [-0.25, 0.2]])  # columns: a loss, an accuracy
    fig = behaviour_harm_grid(delta, [True, False], ["L0H0", "L0H1"], ["loss", "accuracy"])
    ax = fig.axes[0]
    # harm: the loss's rise, the accuracy's fall; each divided by its column's largest |harm|
    assert np.allclose(ax.images[0].get_array(), [[1.0, 0.5], [-0.5, -1.0]])
    assert [t.get_text() for t in ax.texts] == ["+0.50", "-0.10", "-0.25", "+0.20"]
