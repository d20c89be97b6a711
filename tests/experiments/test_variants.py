"""The variant table, `--variant name:key=value,…` parsing, YAML suites and their errors."""

from __future__ import annotations

import pytest
import torch

from gpt2lab.cli import main
from gpt2lab.config import GPTConfig
from gpt2lab.errors import GPT2LabError
from gpt2lab.experiments.variants import (
    SUITES,
    VARIANTS,
    FewerHeads,
    parse_variant,
    select_variants,
    suite_variants,
)


def test_seed_suite_covers_the_issue_variants_and_each_builds_for_every_preset():
    names = set(SUITES["seed"])
    assert names == {
        "baseline", "no_attn_scale", "no_softmax", "no_layernorm", "post_norm", "no_pos",
        "sinusoidal", "relu", "sigmoid", "fewer_heads", "no_residual_scaling",
        "torch_default_init", "baseline_no_warmup", "post_norm_no_warmup", "deep",
        "deep_no_layernorm", "deep_post_norm", "deep_post_norm_no_warmup",
        "deep_no_residual_scaling",
    }  # fmt: skip
    for preset in ("tiny", "mini", "gpt2"):
        base = GPTConfig.preset(preset)
        deep = base.replace(**VARIANTS["deep"].model_overrides(base))
        assert (deep.n_layer, deep.n_embd) == (3 * base.n_layer, base.n_embd // 2)
        for name in names:
            config = base.replace(**VARIANTS[name].model_overrides(base))
            reference = deep if "deep" in (name, VARIANTS[name].reference) else base
            assert config.n_embd == reference.n_embd  # equal width within each comparison


def test_each_variant_changes_exactly_the_switch_it_names():
    base = GPTConfig.preset("tiny")
    expect = {
        "no_attn_scale": ("attn_scale", False),
        "no_softmax": ("attn_normalization", "none"),
        "no_layernorm": ("norm_placement", "none"),
        "post_norm": ("norm_placement", "post"),
        "no_pos": ("pos_encoding", "none"),
        "sinusoidal_unscaled": ("pos_encoding", "sinusoidal"),
        "relu": ("activation", "relu"),
        "sigmoid": ("activation", "sigmoid"),
        "torch_default_init": ("init", "torch_default"),
        "no_residual_scaling": ("init", "gpt2_unscaled"),
        "dropout": ("dropout", 0.1),
    }
    for name, (key, value) in expect.items():
        changed = base.replace(**VARIANTS[name].model_overrides(base))
        diff = {k for k, v in changed.to_dict().items() if v != base.to_dict()[k]}
        assert diff == {key} and getattr(changed, key) == value, name
    # the warmup variants change the schedule only, the deep ones the shape and one switch
    assert (
        VARIANTS["baseline_no_warmup"].overrides == {} and not VARIANTS["baseline_no_warmup"].warmup
    )
    deep = base.replace(**VARIANTS["deep"].model_overrides(base))
    changed = base.replace(**VARIANTS["deep_no_layernorm"].model_overrides(base))
    diff = {k for k, v in changed.to_dict().items() if v != deep.to_dict()[k]}
    assert diff == {"norm_placement"}


@pytest.mark.parametrize(
    ("preset", "heads"), [("gpt2", 4), ("tiny", 1), ("mini", 2), ("gpt2-medium", 4)]
)
def test_fewer_heads_is_a_third_of_the_heads_that_still_divides_the_width(preset, heads):
    # gpt2 12 -> 4, tiny 4 -> 1, mini 6 -> 2; gpt2-medium 16 -> 5 does not divide 1024 -> 4
    assert FewerHeads(3).resolve(GPTConfig.preset(preset)) == heads


def test_parse_variant_types_values_like_yaml():
    v = parse_variant("deep_relu:n_layer=2, activation=relu,attn_scale=false,dropout=0.05")
    assert v.name == "deep_relu"
    assert v.overrides == {"n_layer": 2, "activation": "relu", "attn_scale": False, "dropout": 0.05}
    assert parse_variant("no_pos") is VARIANTS["no_pos"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x:foo=1", "variant x: unknown model field 'foo'"),
        ("x:n_layer=abc", "variant x: n_layer must be int, got 'abc'"),
        ("x:attn_scale=maybe", "variant x: attn_scale must be bool, got 'maybe'"),
        ("x:vocab_size=100", "variant x: vocab_size is fixed by the suite (equal budget)"),
        ("x:n_layer", "variant x: expected key=value, got 'n_layer'"),
        ("x:", "variant x: no overrides after ':' (expected key=value,…)"),
        ("a b:n_layer=2", "variant name must use letters, digits, _ or -, got 'a b'"),
        ("nope", "unknown variant 'nope'"),
    ],
)
def test_bad_variants_fail_with_one_clear_line(text, message):
    with pytest.raises(GPT2LabError) as err:
        parse_variant(text)
    assert str(err.value).startswith(message)


def test_a_value_the_model_refuses_is_caught_before_any_run():
    variant = parse_variant("x:activation=swish")
    with pytest.raises(GPT2LabError, match="variant x: activation must be one of"):
        variant.model_overrides(GPTConfig.preset("tiny"))


def test_yaml_suite_names_text_and_mappings(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "preset: tiny\nseeds: 2\nvariants:\n  - no_pos\n  - narrow:n_inner=128\n"
        "  - name: two_heads\n    overrides: {n_head: 2}\n    description: two heads\n"
    )
    variants, defaults = suite_variants(str(path), ["relu"])
    assert [v.name for v in variants] == ["baseline", "no_pos", "narrow", "two_heads", "relu"]
    assert variants[2].overrides == {"n_inner": 128}
    assert variants[3].overrides == {"n_head": 2} and variants[3].description == "two heads"
    assert defaults == {"preset": "tiny", "seeds": 2}
    path.write_text("variants:\n  - deep_post_norm\n")  # its reference comes along
    assert [v.name for v in suite_variants(str(path))[0]] == ["baseline", "deep_post_norm", "deep"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("variants: []\n", "needs a non-empty `variants:` list"),
        (
            "variants:\n  - name: a\n    overides: {n_head: 2}\n",
            "variant a: unknown key 'overides'",
        ),
        ("variants:\n  - name: a\n    overrides: {n_haed: 2}\n", "unknown model field 'n_haed'"),
        ("variants:\n  - relu\n  - relu\n", "variant 'relu' appears twice in the suite"),
    ],
)
def test_bad_yaml_suites(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(GPT2LabError, match=message):
        suite_variants(str(path))


@pytest.mark.parametrize(
    "argv",
    [
        ["--variant", "x:foo=1"],
        ["--variant", "x:n_layer=abc"],
        ["--variant", "x:activation=swish"],
        ["--suite", "nosuch"],
        ["--only", "nosuch"],
        ["--preset", "gpt2-xl"],
        ["--seeds", "0"],
        ["--steps", "0"],
        ["--lrs", "abc"],
        ["--lrs", "0,1e-3"],
        ["--lrs", "nan"],
    ],
)
def test_cli_bad_inputs_exit_2_with_one_line(argv, tmp_path, capsys):
    assert main(["ablate", "--out", str(tmp_path / "suite"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpt2lab ablate: error: ") and err.count("\n") == 1
    assert not (tmp_path / "suite").exists()  # nothing started


def test_cli_help_mentions_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["ablate", "--help"])
    out = capsys.readouterr().out
    for text in ("--suite", "--variant", "--seeds", "--jobs", "resume"):
        assert text in out


def test_only_keeps_the_baseline_and_the_variants_added_on_the_command_line():
    added = ["post_norm_untied:norm_placement=post,tie_embeddings=False"]
    variants, _ = suite_variants("seed", added)
    chosen = select_variants(variants, ["sinusoidal", " relu"], added)
    assert [v.name for v in chosen] == ["baseline", "sinusoidal", "relu", "post_norm_untied"]
    assert [v.name for v in select_variants(variants, ["relu"])] == ["baseline", "relu"]
    deep = select_variants(variants, ["deep_post_norm"])  # with its reference
    assert [v.name for v in deep] == ["baseline", "deep", "deep_post_norm"]
    with pytest.raises(GPT2LabError, match="--only names variant 'nosuch'"):
        select_variants(variants, ["nosuch"], added)


def test_no_residual_scaling_differs_from_the_baseline_only_in_the_projections_std(tiny_gpt):

    base = GPTConfig.preset("tiny", vocab_size=512)
    shape = dict(vocab_size=512, n_layer=4)
    baseline = tiny_gpt("tiny", 0, **shape)
    unscaled = tiny_gpt("tiny", 0, **VARIANTS["no_residual_scaling"].model_overrides(base), **shape)
    projections = {f"blocks.{i}.{part}.c_proj.weight" for i in range(4) for part in ("attn", "mlp")}
    ours, theirs = dict(baseline.named_parameters()), dict(unscaled.named_parameters())
    assert ours.keys() == theirs.keys()
    for name in ours.keys() - projections:  # every other tensor: the same draw, bit for bit
        assert torch.equal(ours[name], theirs[name]), name
    for name in projections:  # N(0, 0.02 / sqrt(2 · 4)) vs N(0, 0.02)
        assert ours[name].std().item() == pytest.approx(0.02 / 8**0.5, rel=0.05)
        assert theirs[name].std().item() == pytest.approx(0.02, rel=0.05)


def test_the_sinusoidal_table_has_the_token_embeddings_rms(tiny_gpt):

    overrides = VARIANTS["sinusoidal"].model_overrides(GPTConfig.preset("tiny"))
    model = tiny_gpt("tiny", 0, vocab_size=512, **overrides)
    table = model.wpe(torch.arange(128)[None])[0]  # (T, C)
    rms = lambda t: t.pow(2).mean().sqrt().item()  # noqa: E731
    token_rms = rms(model.wte.weight)
    assert token_rms / 2 < rms(table) < token_rms * 2  # the issue's bound
    assert rms(table) == pytest.approx(0.02, rel=0.01)  # 0.02·√2 × the table's 1/√2
    overrides = VARIANTS["sinusoidal_unscaled"].model_overrides(GPTConfig.preset("tiny"))
    unscaled = tiny_gpt("tiny", 0, vocab_size=512, **overrides)
    assert rms(unscaled.wpe(torch.arange(128)[None])[0]) > 30 * token_rms  # why it fails
    assert "sinusoidal_unscaled" not in SUITES["seed"]


def test_the_numpy_reference_scales_the_sinusoidal_table_like_the_model(tiny_gpt):
    from gpt2lab.pretrained import reference_params
    from gpt2lab.reference import numpy_gpt

    overrides = VARIANTS["sinusoidal"].model_overrides(GPTConfig.preset("tiny"))
    model = tiny_gpt("tiny", 0, vocab_size=512, **overrides).double()
    ours = model.wpe(torch.arange(16)[None])[0].numpy()  # (T, C)
    reference = numpy_gpt.positions(reference_params(model), 16, model.config)
    assert abs(ours - reference).max() < 1e-15
