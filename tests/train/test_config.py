"""TrainConfig: YAML < flags, type coercion, refusals, resume compatibility."""

import pytest
import yaml

from gpt2lab.errors import GPT2LabError
from gpt2lab.options import load_yaml
from gpt2lab.train.config import (
    TrainConfig,
    apply_overrides,
    saved_config,
    to_yaml,
    trajectory_changes,
)


def test_flags_are_coerced_to_field_types():
    cfg = apply_overrides(
        TrainConfig(),
        {
            "lr": "3e-4",
            "max_steps": "20",
            "compile": "true",
            "block_size": "null",
            "model.n_layer": "2",
        },
    )
    assert cfg.lr == 3e-4 and cfg.max_steps == 20 and cfg.compile is True
    assert cfg.block_size is None and cfg.model == {"n_layer": 2}
    assert cfg.model_config(vocab_size=300).n_layer == 2


def test_yaml_then_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"lr": 0.01, "preset": "tiny", "model": {"n_embd": 64}}))
    cfg = apply_overrides(apply_overrides(TrainConfig(), load_yaml(path)), {"lr": "0.02"})
    assert cfg.lr == 0.02 and cfg.preset == "tiny" and cfg.model == {"n_embd": 64}
    again = apply_overrides(TrainConfig(), yaml.safe_load(to_yaml(cfg)))
    assert again == cfg


def test_vocab_comes_from_data_unless_set():
    assert TrainConfig(preset="tiny").model_config(vocab_size=300).vocab_size == 300
    cfg = TrainConfig(preset="tiny", model={"vocab_size": 512})
    assert cfg.model_config(vocab_size=300).vocab_size == 512


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lrr": "1"}, "unknown training option 'lrr'"),
        ({"model.n_layerz": "1"}, "unknown model option"),
        ({"lr": "fast"}, "lr must be float"),
        ({"batch_size": "0"}, "batch_size must be >= 1"),
        ({"decay": "step"}, "decay must be one of"),
        ({"model.n_head": "5"}, "divisible"),
        ({"min_lr": "1"}, "min_lr <= lr"),
        ({"lr": "inf"}, "lr must be a finite number"),
        ({"lr": "nan"}, "lr must be a finite number"),
        ({"lr": "1e40"}, "float32's largest"),
        ({"beta1": "nan"}, "beta1 must be a finite number"),
        ({"repeat_rows": "1"}, "repeat_rows must be in"),
        ({"repeat_rows": "-0.1"}, "repeat_rows must be in"),
        ({"repeat_rows": "0.99", "batch_size": "4"}, "leave at least one data row"),
    ],
)
def test_bad_options_are_one_line_errors(overrides, message):
    with pytest.raises(GPT2LabError, match=message) as err:
        apply_overrides(TrainConfig(), overrides)
    assert "\n" not in str(err.value)


def test_bad_yaml(tmp_path):
    (tmp_path / "a.yaml").write_text("lr: [1, 2\n")
    with pytest.raises(GPT2LabError, match="not valid YAML"):
        load_yaml(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("- 1\n")
    with pytest.raises(GPT2LabError, match="mapping"):
        load_yaml(tmp_path / "b.yaml")


def test_trajectory_changes():
    a = TrainConfig()
    assert trajectory_changes(a, a.replace(eval_interval=7, keep_last=1, name="x")) == []
    assert trajectory_changes(a, a.replace(lr=0.5, model={"n_layer": 1})) == ["model", "lr"]


def test_the_help_texts_name_every_choice():
    """Field docstrings are static text: they must keep up with the tables they describe."""
    from gpt2lab.config import PRESETS
    from gpt2lab.experiments.runner import BUDGETS, SuiteOptions
    from gpt2lab.options import field_docs
    from gpt2lab.train.config import DTYPES, ENGINES, SCHEDULES

    docs = field_docs(TrainConfig)
    for field, choices in (
        ("preset", PRESETS),
        ("decay", SCHEDULES),
        ("engine", ENGINES),
        ("dtype", DTYPES),
    ):
        assert all(choice in docs[field] for choice in choices), field
    assert all(name in field_docs(SuiteOptions)["preset"] for name in BUDGETS)
    assert set(docs) == {f for f in TrainConfig.__dataclass_fields__}  # every field has help


def test_repeat_rows_default_to_half_only_for_a_new_model_on_the_default_stories():
    from gpt2lab.data.prepared import DEFAULT_DATA

    assert TrainConfig.data == DEFAULT_DATA  # the default run prepares what it trains on
    assert TrainConfig().repeat_fraction() == 0.5 and TrainConfig().preset == "stories"
    assert TrainConfig().repeat_rows_per_batch() == 64
    # a user's data or fine-tuning: the data alone, however the option arrives
    for changes in ({"data": "data/my-text"}, {"init_from": "gpt2"}):
        assert TrainConfig(**changes).repeat_fraction() == 0.0
        assert apply_overrides(TrainConfig(), changes).repeat_fraction() == 0.0
    assert TrainConfig(repeat_rows=0.0).repeat_fraction() == 0.0  # an explicit value wins
    assert (
        apply_overrides(TrainConfig(), {"data": "x", "repeat_rows": "0.25"}).repeat_fraction()
        == 0.25
    )
    # unset stays unset in config.yaml, so a resumed run works it out the same way
    assert yaml.safe_load(to_yaml(TrainConfig()))["repeat_rows"] is None


def test_a_config_saved_before_repeat_rows_existed_means_none():
    older = {k: v for k, v in TrainConfig(repeat_rows=0.0).to_dict().items() if k != "repeat_rows"}
    assert saved_config(older).repeat_fraction() == 0.0  # not today's default for these data
    assert saved_config(TrainConfig().to_dict()).repeat_fraction() == 0.5


def test_naming_the_default_repeat_rows_on_resume_changes_nothing():
    assert trajectory_changes(TrainConfig(), TrainConfig(repeat_rows=0.5)) == []
    assert trajectory_changes(TrainConfig(), TrainConfig(repeat_rows=0.25)) == ["repeat_rows"]


def test_decay_defaults_to_constant_only_for_a_new_model_on_the_default_stories():
    assert TrainConfig().schedule() == "constant"
    for changes in ({"data": "data/my-text"}, {"init_from": "gpt2"}):
        assert TrainConfig(**changes).schedule() == "cosine"
        assert apply_overrides(TrainConfig(), changes).schedule() == "cosine"
    assert TrainConfig(decay="linear").schedule() == "linear"  # an explicit value wins
    assert yaml.safe_load(to_yaml(TrainConfig()))["decay"] is None  # worked out on resume too
    with pytest.raises(GPT2LabError, match="decay must be one of"):
        apply_overrides(TrainConfig(), {"data": "x", "decay": "step"})


def test_naming_the_default_decay_on_resume_changes_nothing():
    assert trajectory_changes(TrainConfig(), TrainConfig(decay="constant")) == []
    assert trajectory_changes(TrainConfig(), TrainConfig(decay="cosine")) == ["decay"]
    # a constant lr does not depend on max_steps: a resumed run may go on longer
    assert trajectory_changes(TrainConfig(), TrainConfig(max_steps=1600)) == []
    user = TrainConfig(data="data/my-text")  # cosine to max_steps: a longer run is another run
    assert trajectory_changes(user, user.replace(max_steps=1600)) == ["max_steps"]
