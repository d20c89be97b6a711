"""Decoding with the KV cache: token-for-token parity with `transformers` greedy decoding,
left padding, the sliding window past the context, stop tokens and seeded sampling."""

from __future__ import annotations

import pytest
import torch
from generate_helpers import GPT2_VOCAB

from gpt2lab.errors import GPT2LabError
from gpt2lab.generate import generate, left_pad, stream
from gpt2lab.verify import greedy_ids

PROMPT_LENGTHS = (1, 7, 23)


def hf_greedy(hf, idx, new_tokens, use_cache=True, mask=None, **kwargs):
    with torch.inference_mode():
        return hf.generate(
            idx,
            attention_mask=torch.ones_like(idx) if mask is None else mask,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            use_cache=use_cache,
            pad_token_id=0,
            **kwargs,
        )


def prompts(vocab, lengths, batch=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (batch, T), generator=g) for T in lengths]


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
def test_greedy_equals_transformers_small(small, small_hf, use_cache):
    for idx in prompts(GPT2_VOCAB, PROMPT_LENGTHS):
        ours = generate(small, idx, 64, temperature=0, use_cache=use_cache)
        theirs = hf_greedy(small_hf, idx, 64, use_cache=use_cache)
        assert torch.equal(ours, theirs), idx.shape


@pytest.mark.slow
def test_greedy_equals_transformers_124m(tiny_gpt, tmp_path):
    """The GPT-2 124M shape, random init: 3 prompts x 64 new tokens, with and without cache."""
    from transformers import GPT2LMHeadModel

    from gpt2lab.pretrained import save_pretrained

    model = tiny_gpt("gpt2", 0)
    save_pretrained(model, tmp_path, format="hf")
    hf = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    for idx in prompts(GPT2_VOCAB, (1, 9, 32), batch=1, seed=2):
        for use_cache in (True, False):
            ours = generate(model, idx, 64, temperature=0, use_cache=use_cache)
            assert torch.equal(ours, hf_greedy(hf, idx, 64, use_cache=use_cache))
    model.use_inference_layout()  # the layout the CLI decodes with on CPU
    for idx in prompts(GPT2_VOCAB, (1, 9, 32), batch=1, seed=2):
        assert torch.equal(generate(model, idx, 64, temperature=0), hf_greedy(hf, idx, 64))


def test_inference_layout_keeps_values_and_greedy_tokens(small, small_hf, tmp_path):
    """use_inference_layout only moves memory: same weights, logits, tokens and saved files."""
    import copy

    from gpt2lab.pretrained import load_pretrained, save_pretrained

    fast = copy.deepcopy(small).use_inference_layout()
    for (name, before), after in zip(small.state_dict().items(), fast.state_dict().values()):
        assert torch.equal(before, after), name
    assert fast.lm_head.weight.stride() == (1, fast.config.vocab_size)
    assert fast.lm_head.weight is fast.wte.weight  # still tied
    idx = prompts(GPT2_VOCAB, (23,))[0]
    with torch.no_grad():
        torch.testing.assert_close(fast(idx)[0], small(idx)[0], rtol=0, atol=1e-5)
    assert torch.equal(generate(fast, idx, 64, temperature=0), hf_greedy(small_hf, idx, 64))
    save_pretrained(fast, tmp_path)
    for (name, before), after in zip(
        small.state_dict().items(), load_pretrained(tmp_path).state_dict().values()
    ):
        assert torch.equal(before, after), name


def test_repetition_penalty_equals_transformers(small, small_hf):
    idx = prompts(GPT2_VOCAB, (12,))[0]
    ours = generate(small, idx, 40, temperature=0, repetition_penalty=1.5)
    theirs = hf_greedy(small_hf, idx, 40, repetition_penalty=1.5)
    assert torch.equal(ours, theirs)


def test_left_padded_batch_equals_each_prompt_alone(small, small_hf):
    rows = [[5, 6, 7, 8, 9, 10, 11], [300, 301], [42, 43, 44, 45]]
    idx, mask = left_pad(rows, pad_id=0)
    batch = generate(small, idx, 30, temperature=0, attention_mask=mask)
    assert batch.shape == (3, 7 + 30)
    for i, row in enumerate(rows):
        alone = generate(small, torch.tensor([row]), 30, temperature=0)
        assert torch.equal(batch[i, -30:], alone[0, -30:]), i
    # and transformers agrees on the padded batch
    theirs = hf_greedy(small_hf, idx, 30, mask=mask)
    assert torch.equal(batch, theirs)


def test_left_pad_layout():
    idx, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert idx.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_prompt_longer_than_context_slides(small):
    """Past block_size (128) each token is predicted from the last 128 tokens, exactly as the
    full-recomputation loop of gpt2lab.verify does."""
    idx = prompts(GPT2_VOCAB, (150,), batch=1)[0]
    expected = greedy_ids(lambda x: small(x)[0], idx, 20, small.config.block_size)
    assert torch.equal(generate(small, idx, 20, temperature=0), expected)
    assert torch.equal(generate(small, idx, 20, temperature=0, use_cache=False), expected)
    near = idx[:, :120]  # starts inside the context, then outgrows it
    expected = greedy_ids(lambda x: small(x)[0], near, 20, small.config.block_size)
    assert torch.equal(generate(small, near, 20, temperature=0), expected)


def test_sinusoidal_positions_have_no_window(tiny_gpt):
    model = tiny_gpt("tiny", 3, vocab_size=97, pos_encoding="sinusoidal", block_size=16)
    idx = torch.randint(0, 97, (2, 10), generator=torch.Generator().manual_seed(0))
    cached = generate(model, idx, 30, temperature=0)
    assert cached.shape == (2, 40)
    assert torch.equal(cached, generate(model, idx, 30, temperature=0, use_cache=False))


def test_seeded_sampling_is_reproducible(small):
    idx = prompts(GPT2_VOCAB, (5,))[0]
    kw = dict(temperature=0.9, top_k=100, top_p=0.95, repetition_penalty=1.2)
    a = generate(small, idx, 32, seed=7, **kw)
    assert torch.equal(a, generate(small, idx, 32, seed=7, **kw))
    assert not torch.equal(a, generate(small, idx, 32, seed=8, **kw))


def test_stop_token_ends_rows_and_pads_them(small):
    idx = prompts(GPT2_VOCAB, (4,), batch=3)[0]
    free = generate(small, idx, 12, temperature=0)
    stop = int(free[0, 4 + 2])  # row 0 produces this token at its third step
    out = generate(small, idx, 12, temperature=0, stop=[stop])
    row0 = out[0, 4:].tolist()
    first = row0.index(stop)
    assert row0[first:] == [stop] * (len(row0) - first)  # padded with the stop token after
    assert out[0, : 4 + first].tolist() == free[0, : 4 + first].tolist()
    single = generate(small, idx[:1], 12, temperature=0, stop=stop)
    assert single.shape[1] == 4 + first + 1  # a lone row ends right after its stop token


def test_generate_keeps_training_mode(small):
    idx = prompts(GPT2_VOCAB, (3,))[0]
    small.train()
    try:
        a = generate(small, idx, 10, temperature=0)
        assert small.training
    finally:
        small.eval()
    assert torch.equal(a, generate(small, idx, 10, temperature=0))


def test_stream_yields_each_step(small):
    idx = prompts(GPT2_VOCAB, (3,))[0]
    steps = list(stream(small, idx, 5))
    assert len(steps) == 5 and all(s.shape == (2,) for s in steps)


@pytest.mark.parametrize(
    "idx, n, message",
    [
        (torch.zeros(1, 0, dtype=torch.long), 5, "prompt is empty"),
        (torch.zeros(1, 3, dtype=torch.long), 0, "max_new_tokens must be at least 1"),
        (torch.zeros(1, 3, dtype=torch.long), -2, "max_new_tokens must be at least 1"),
        (torch.full((1, 3), GPT2_VOCAB), 5, "outside"),
        (torch.zeros(3, dtype=torch.long), 5, "shape"),
    ],
)
def test_bad_generate_arguments(small, idx, n, message):
    with pytest.raises(GPT2LabError, match=message):
        generate(small, idx, n)


def test_bad_sampling_arguments(small):
    idx = torch.zeros(1, 2, dtype=torch.long)
    with pytest.raises(GPT2LabError, match="top_p"):
        generate(small, idx, 3, top_p=1.2)
    with pytest.raises(GPT2LabError, match="temperature"):
        generate(small, idx, 3, temperature=-1.0)


def test_stream_leaves_inference_mode_between_steps(small):
    idx = prompts(GPT2_VOCAB, (3,))[0]
    steps = stream(small, idx, 3)
    token = next(steps)
    assert not torch.is_inference_mode_enabled()
    assert not token.is_inference()
    out = generate(small, idx, 3, temperature=0)
    assert not out.is_inference()
    small.wte(out).sum()  # usable in ordinary (autograd) code
    steps.close()
