"""The torch model: shapes, switches, attention paths, KV cache, padding, init, bad inputs."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from gpt2lab.config import GPTConfig
from gpt2lab.errors import GPT2LabError
from gpt2lab.model import GPT, KVCache

SMALL = dict(vocab_size=97, block_size=24, n_layer=2, n_head=4, n_embd=32)


def small(**switches) -> GPTConfig:
    return GPTConfig(**{**SMALL, **switches})


def tokens(config, batch=3, length=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, config.vocab_size, (batch, length), generator=g)


# Every combination of the switches that the fused (SDPA) path can also run: it cannot
# express attention without softmax, so that one is checked separately below.
FUSABLE = [
    dict(pos_encoding=p, norm_placement=n, activation=a, attn_scale=s, bias=b, tie_embeddings=t)
    for p, n, a, s, b, t in itertools.product(
        ("learned", "sinusoidal", "none"),
        ("pre", "post", "none"),
        ("gelu_tanh", "gelu", "relu", "sigmoid"),
        (True, False),
        (True, False),
        (True, False),
    )
]


@pytest.mark.parametrize("switches", FUSABLE, ids=lambda s: "-".join(str(v) for v in s.values()))
@torch.no_grad()
def test_explicit_and_fused_attention_agree(switches):
    torch.manual_seed(0)
    model = GPT(small(**switches)).eval()
    idx = tokens(model.config)
    fused, loss_fused = model(idx, idx)
    model.set_attention_path("explicit")
    explicit, loss_explicit = model(idx, idx)
    assert (fused - explicit).abs().max() <= 1e-5
    assert abs(float(loss_fused) - float(loss_explicit)) <= 1e-5


def test_explicit_path_is_what_runs_without_softmax():
    torch.manual_seed(0)
    model = GPT(small(attn_normalization="none")).eval()
    assert not model.blocks[0].attn.use_fused()
    logits, loss = model(tokens(model.config), tokens(model.config, seed=1))
    assert torch.isfinite(logits).all() and torch.isfinite(loss)


def test_raw_attention_weights_values_by_masked_scores():
    """attn_normalization='none': the pattern is q·kᵀ·scale with the future zeroed, not softmaxed."""
    torch.manual_seed(0)
    model = GPT(small(attn_normalization="none")).eval()
    idx = tokens(model.config, batch=1, length=6)
    _, cache = model.run_with_cache(idx, names=lambda n: n.startswith("blocks.0.attn.hook_"))
    q, k = cache["blocks.0.attn.hook_q"], cache["blocks.0.attn.hook_k"]
    expected = (q @ k.transpose(-2, -1) / math.sqrt(model.config.head_dim)).tril()
    torch.testing.assert_close(cache["blocks.0.attn.hook_pattern"], expected)


def test_logits_shape_does_not_depend_on_targets():
    model = GPT(small()).eval()
    idx = tokens(model.config)
    with_targets, loss = model(idx, idx)
    without, none = model(idx)
    assert with_targets.shape == without.shape == (3, 20, 97)
    assert none is None and loss.ndim == 0


def test_loss_is_mean_cross_entropy_and_ignores_minus_one():
    model = GPT(small()).eval()
    idx = tokens(model.config)
    targets = tokens(model.config, seed=1)
    targets[0, :5] = -1
    logits, loss = model(idx, targets)
    keep = targets != -1
    manual = -torch.log_softmax(logits, -1)[keep].gather(-1, targets[keep][:, None]).mean()
    torch.testing.assert_close(loss, manual)


@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal", "none"])
@pytest.mark.parametrize("path", ["auto", "explicit"])
def test_kv_cache_matches_full_forward(pos_encoding, path):
    torch.manual_seed(0)
    model = GPT(small(pos_encoding=pos_encoding)).eval()
    model.set_attention_path(path)
    idx = tokens(model.config, batch=2, length=12)
    full, _ = model(idx)
    cache = KVCache(model.config, batch_size=2, max_len=12)
    pieces = [model(idx[:, :5], cache=cache)[0]]  # prefill 5, then one token at a time
    for t in range(5, 12):
        pieces.append(model(idx[:, t : t + 1], cache=cache)[0])
    assert cache.length == 12
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("path", ["auto", "explicit"])
def test_left_padding_equals_unpadded_rows(path):
    torch.manual_seed(0)
    model = GPT(small()).eval()
    model.set_attention_path(path)
    long, short = tokens(model.config, 1, 10, seed=1), tokens(model.config, 1, 6, seed=2)
    pad = torch.zeros(1, 4, dtype=torch.long)
    batch = torch.cat([long, torch.cat([pad, short], dim=1)])  # (2, 10)
    mask = torch.ones_like(batch)
    mask[1, :4] = 0
    cache = KVCache(model.config, batch_size=2, max_len=12)
    logits, _ = model(batch, cache=cache, attention_mask=mask)
    torch.testing.assert_close(logits[0], model(long)[0][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(logits[1, 4:], model(short)[0][0], atol=1e-5, rtol=0)
    assert torch.isfinite(logits).all()  # padding rows must not turn into NaN
    # one more decode step with the mask extended by one real position
    nxt = torch.tensor([[5], [7]])
    step, _ = model(nxt, cache=cache, attention_mask=torch.cat([mask, torch.ones(2, 1)], 1))
    torch.testing.assert_close(
        step[1, 0], model(torch.cat([short, nxt[1:]], 1))[0][0, -1], atol=1e-5, rtol=0
    )


def test_sinusoidal_table_is_vaswani():
    model = GPT(small(pos_encoding="sinusoidal"))
    pe = model.wpe(torch.arange(7)[None])[0]  # (T, C), float64 whatever the model's dtype
    C = model.config.n_embd
    for pos, i in [(0, 0), (3, 2), (6, 10)]:
        angle = pos / 10000 ** (2 * i / C)
        assert pe[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-15)
        assert pe[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-15)


def test_sinusoidal_and_none_run_past_block_size_but_learned_refuses():
    for pos in ("sinusoidal", "none"):
        model = GPT(small(pos_encoding=pos)).eval()
        assert model(tokens(model.config, 1, 40))[0].shape == (1, 40, 97)
    model = GPT(small())
    with pytest.raises(GPT2LabError, match="longer than the model's context"):
        model(tokens(model.config, 1, 25))


def test_bad_token_ids_are_one_clear_error():
    model = GPT(small())
    with pytest.raises(GPT2LabError, match="token id 97 is out of range"):
        model(torch.tensor([[1, 2, 97]]))
    with pytest.raises(GPT2LabError, match="token id -1"):
        model(torch.tensor([[-1, 2]]))


def test_gpt2_init_scales_residual_projections():
    torch.manual_seed(0)
    config = GPTConfig(n_layer=8, n_head=4, n_embd=256, vocab_size=500, block_size=64)
    model = GPT(config)
    resid = torch.cat([b.attn.c_proj.weight.flatten() for b in model.blocks])
    other = torch.cat([b.mlp.c_fc.weight.flatten() for b in model.blocks])
    assert resid.std().item() == pytest.approx(0.02 / math.sqrt(16), rel=0.05)
    assert other.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.blocks[0].attn.c_attn.bias.abs().max() == 0
    default = GPT(config.replace(init="torch_default"))
    assert default.wte.weight.std().item() == pytest.approx(1.0, rel=0.05)  # nn.Embedding's N(0, 1)


def test_tied_embeddings_share_one_matrix():
    tied, untied = GPT(small()), GPT(small(tie_embeddings=False))
    assert tied.lm_head.weight is tied.wte.weight
    assert untied.lm_head.weight is not untied.wte.weight
    assert untied.num_params(False) - tied.num_params(False) == 97 * 32


@pytest.mark.parametrize(
    "switches", [{}, dict(bias=False), dict(norm_placement="none"), dict(n_inner=40)]
)
def test_num_params_matches_config_estimate(switches):
    config = small(**switches)
    model = GPT(config)
    assert model.num_params() == config.num_params_estimate()
    assert model.num_params(non_embedding=False) == config.num_params_estimate(non_embedding=False)


def test_num_params_of_gpt2_shape():
    config = GPTConfig.preset("gpt2")
    assert config.num_params_estimate(non_embedding=False) == 124_439_808  # the published 124M


def test_hook_names_cover_every_activation_kind():
    model = GPT(small())
    names = set(model.hook_points())
    for expected in [
        "hook_embed",
        "hook_pos_embed",
        "hook_logits",
        "ln_f.hook_normalized",
        "blocks.1.hook_resid_pre",
        "blocks.1.hook_resid_mid",
        "blocks.1.hook_resid_post",
        "blocks.1.hook_attn_out",
        "blocks.1.hook_mlp_out",
        "blocks.1.ln_1.hook_normalized",
        "blocks.1.attn.hook_q",
        "blocks.1.attn.hook_k",
        "blocks.1.attn.hook_v",
        "blocks.1.attn.hook_attn_scores",
        "blocks.1.attn.hook_pattern",
        "blocks.1.attn.hook_z",
        "blocks.1.mlp.hook_pre",
        "blocks.1.mlp.hook_post",
    ]:
        assert expected in names


def test_hooks_are_removed_even_on_error():
    model = GPT(small()).eval()
    idx = tokens(model.config)

    def boom(x, hook):
        raise RuntimeError("inside a hook")

    with pytest.raises(RuntimeError, match="inside a hook"):
        with model.hooks([("blocks.0.hook_resid_post", boom)]):
            model(idx)
    assert not any(p.active for p in model.hook_points().values())
    model(idx)  # runs clean


def test_hook_can_replace_an_activation():
    model = GPT(small()).eval()
    idx = tokens(model.config)
    with model.hooks([("hook_logits", lambda x, hook: torch.zeros_like(x))]):
        logits, _ = model(idx)
    assert logits.abs().max() == 0


def test_unknown_hook_name_lists_kinds():
    model = GPT(small())
    with pytest.raises(GPT2LabError, match="unknown hook point 'blocks.0.hook_nope'.*hook_pattern"):
        model.run_with_cache(tokens(model.config), names=["blocks.0.hook_nope"])


def test_run_with_cache_pattern_equals_softmax_of_cached_q_k():
    torch.manual_seed(0)
    model = GPT(small()).eval()
    idx = tokens(model.config, batch=2, length=9)
    _, cache = model.run_with_cache(idx)
    q, k = cache["blocks.1.attn.hook_q"], cache["blocks.1.attn.hook_k"]  # (B, nh, T, hs)
    scores = q @ k.transpose(-2, -1) / math.sqrt(model.config.head_dim)
    expected = scores.masked_fill(
        ~torch.ones(9, 9, dtype=torch.bool).tril(), float("-inf")
    ).softmax(-1)
    torch.testing.assert_close(cache["blocks.1.attn.hook_pattern"], expected)
    assert not model.blocks[1].attn.hook_pattern.active  # hooks gone afterwards


def test_dropout_only_in_training():
    torch.manual_seed(0)
    model = GPT(small(dropout=0.5))
    idx = tokens(model.config)
    model.eval()
    assert torch.equal(model(idx)[0], model(idx)[0])
    model.train()
    assert not torch.equal(model(idx)[0], model(idx)[0])


def test_post_norm_has_no_final_layer_norm_and_none_has_no_norm_at_all():
    post, none = GPT(small(norm_placement="post")), GPT(small(norm_placement="none"))
    assert isinstance(post.ln_f, torch.nn.Identity)
    assert not any("ln_" in n for n, _ in none.named_parameters())


def test_gradients_reach_every_parameter():
    model = GPT(small(tie_embeddings=False))
    idx = tokens(model.config)
    model(idx, idx)[1].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_float64_model_computes_in_float64():
    model = GPT(small(pos_encoding="sinusoidal")).double().eval()
    logits, loss = model(tokens(model.config), tokens(model.config, seed=1))
    assert logits.dtype == loss.dtype == torch.float64
