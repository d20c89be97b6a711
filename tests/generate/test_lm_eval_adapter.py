"""The lm-evaluation-harness adapter, offline: hand-made `Instance` requests answered by
GPT2LabLM against the same quantities computed directly with `transformers`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import regex
import torch

lm_eval = pytest.importorskip("lm_eval")

from generate_helpers import hf_logprobs  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402

from gpt2lab.lm_eval_adapter import GPT2LabLM  # noqa: E402


def request(kind: str, *args) -> Instance:
    return Instance(request_type=kind, doc={}, arguments=tuple(args), idx=0)


def continuation_logprob(hf, context: list[int], continuation: list[int]):
    lp = hf_logprobs(hf, context + continuation)[len(context) - 1 : -1]
    total = sum(lp[i, t].item() for i, t in enumerate(continuation))
    return total, all(int(lp[i].argmax()) == t for i, t in enumerate(continuation))


@pytest.fixture(scope="module")
def lm(small, gpt2_tokenizer):
    return GPT2LabLM(model=small, tokenizer=gpt2_tokenizer, batch_size=2)


def test_registered_under_gpt2lab(small_dir):
    from lm_eval.api.registry import get_model

    cls = get_model("gpt2lab")
    assert cls is GPT2LabLM
    loaded = cls.create_from_arg_string(f"pretrained={small_dir},batch_size=4")
    assert loaded.batch_size == 4 and loaded.max_length == 128


def test_loglikelihood(lm, small_hf, gpt2_tokenizer):
    enc = gpt2_tokenizer.encode
    cases = [
        ("The cat sat on", " the mat"),
        ("Lily and Tom went to the park. Tom found", " a kite by the pond"),
        ("", "Hello there"),  # empty context: conditioned on <|endoftext|>
    ]
    answers = lm.loglikelihood([request("loglikelihood", c, x) for c, x in cases])
    for (context, continuation), (logprob, greedy) in zip(cases, answers):
        ctx = enc(context) if context else [gpt2_tokenizer.eot_token]
        expected, expected_greedy = continuation_logprob(small_hf, ctx, enc(continuation))
        assert logprob == pytest.approx(expected, abs=1e-4)
        assert greedy == expected_greedy


def test_loglikelihood_moves_trailing_space_to_the_continuation(lm, small_hf, gpt2_tokenizer):
    ((logprob, _),) = lm.loglikelihood([request("loglikelihood", "The cat sat on ", "the mat")])
    expected, _ = continuation_logprob(
        small_hf, gpt2_tokenizer.encode("The cat sat on"), gpt2_tokenizer.encode(" the mat")
    )
    assert logprob == pytest.approx(expected, abs=1e-4)


def test_loglikelihood_rolling_short_text(lm, small_hf, gpt2_tokenizer):
    text = "Once upon a time there was a small dog who liked the rain."
    (total,) = lm.loglikelihood_rolling([request("loglikelihood_rolling", text)])
    ids = [gpt2_tokenizer.eot_token, *gpt2_tokenizer.encode(text)]
    lp = hf_logprobs(small_hf, ids)
    expected = sum(lp[i - 1, ids[i]].item() for i in range(1, len(ids)))
    assert total == pytest.approx(expected, abs=1e-3)


def test_loglikelihood_rolling_long_text_by_hand(lm, small_hf, gpt2_tokenizer):
    """300 tokens, context 128: tokens 0-127 from <|endoftext|> + 0..126; 128-255 from
    127..254; 256-299 from 171..298 (the last window is filled back to 128 tokens)."""
    ids = torch.randint(0, 50000, (300,), generator=torch.Generator().manual_seed(0)).tolist()
    text = gpt2_tokenizer.decode(ids)
    ids = gpt2_tokenizer.encode(text)[:300]
    text = gpt2_tokenizer.decode(ids)
    assert gpt2_tokenizer.encode(text) == ids
    (total,) = lm.loglikelihood_rolling([request("loglikelihood_rolling", text)])
    expected = 0.0
    for inputs, first, last in [
        ([gpt2_tokenizer.eot_token, *ids[:127]], 0, 128),
        (ids[127:255], 128, 256),
        (ids[171:299], 256, 300),
    ]:
        lp = hf_logprobs(small_hf, inputs)
        n = last - first
        expected += sum(lp[len(inputs) - n + k, ids[first + k]].item() for k in range(n))
    assert total == pytest.approx(expected, abs=1e-2)


def test_generate_until_stops_at_the_stop_string(lm, small_hf, gpt2_tokenizer):
    context = "The dogs near the old barn"
    ctx = gpt2_tokenizer.encode(context)
    with torch.inference_mode():
        out = small_hf.generate(
            torch.tensor([ctx]),
            attention_mask=torch.ones(1, len(ctx), dtype=torch.long),
            max_new_tokens=20,
            do_sample=False,
            pad_token_id=0,
        )
    full = gpt2_tokenizer.decode(out[0, len(ctx) :].tolist())
    stop = gpt2_tokenizer.decode(out[0, len(ctx) + 6 : len(ctx) + 8].tolist())
    expected = full.split(stop)[0]
    answers = lm.generate_until(
        [
            request("generate_until", context, {"until": [stop], "max_gen_toks": 20}),
            request("generate_until", context, {"until": ["NEVER"], "max_gen_toks": 20}),
            request("generate_until", context, {"max_gen_toks": 5, "do_sample": False}),
        ]
    )
    assert answers[0] == expected and len(answers[0]) < len(full)
    assert answers[1] == full.split("<|endoftext|>")[0]
    assert full.startswith(answers[2])


TASK_YAML = """task: gpt2lab_local_last_word
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood
doc_to_text: "{{{{text.split(' ')[:-1]|join(' ')}}}}"
doc_to_target: "{{{{' ' + text.split(' ')[-1]}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: perplexity
    aggregation: perplexity
    higher_is_better: false
"""


@pytest.mark.slow
def test_the_harness_runs_a_local_task_end_to_end(lm, small, gpt2_tokenizer, tmp_path, monkeypatch):
    """lm_eval.simple_evaluate on a LAMBADA-style task defined here over a local JSONL file
    (no download) gives the accuracy and perplexity of gpt2lab's own last_word_accuracy."""
    import json

    from lm_eval.tasks import TaskManager

    from gpt2lab.evaluate import last_word_accuracy

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    texts = ["the cat sat on the mat", "Lily and Tom went to the park", "a dog ran to the barn"]
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps({"text": t}) for t in texts))
    (tmp_path / "task.yaml").write_text(TASK_YAML.format(data=data))
    results = lm_eval.simple_evaluate(
        model=lm,
        tasks=["gpt2lab_local_last_word"],
        task_manager=TaskManager(include_path=str(tmp_path)),
        bootstrap_iters=0,
    )["results"]["gpt2lab_local_last_word"]
    ours = last_word_accuracy(small, gpt2_tokenizer, texts)
    assert results["acc,none"] == ours["accuracy"]
    assert results["perplexity,none"] == pytest.approx(ours["perplexity"], rel=1e-6)


# ---------------------------------------------------------------------------------------------
# The documented command lines, through lm_eval's real CLI, offline
# ---------------------------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "evaluation.md"


def documented_commands() -> list[list[str]]:
    """The `python -m gpt2lab.lm_eval_adapter ...` lines of docs/evaluation.md, as argv."""
    import shlex

    text = DOCS.read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        shlex.split(line)
        for line in text.splitlines()
        if line.startswith("python -m gpt2lab.lm_eval_adapter")
    ]


def local_task(tmp_path: Path) -> Path:
    import json

    texts = ["the cat sat on the mat", "Lily and Tom went to the park", "a dog ran to the barn"]
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps({"text": t}) for t in texts))
    (tmp_path / "task.yaml").write_text(TASK_YAML.format(data=data))
    return tmp_path


def offline(argv: list[str], model_dir: Path, tasks: Path, out: Path) -> list[str]:
    """The documented argv with the hub model and the hub tasks swapped for local ones."""
    swapped = []
    for arg in argv[1:]:  # drop "python": run with this interpreter
        arg = regex.sub(r"pretrained=[^,]+", f"pretrained={model_dir}", arg)
        if arg.startswith(("lambada_openai", "results/")):
            arg = "gpt2lab_local_last_word" if arg.startswith("lambada") else str(out)
        swapped.append(arg)
    return [sys.executable, *swapped, "--include_path", str(tasks)]


def run_offline(argv: list[str]):
    env = {
        **os.environ,
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)


def test_the_documented_commands_run_on_a_cpu_offline(small_dir, tmp_path):
    commands = documented_commands()
    assert len(commands) == 2
    tasks = local_task(tmp_path)
    for argv in commands:
        done = run_offline(offline(argv, small_dir, tasks, tmp_path / "results"))
        assert done.returncode == 0, done.stderr[-2000:]
        assert "gpt2lab_local_last_word" in done.stdout and "perplexity" in done.stdout
    assert list((tmp_path / "results").rglob("results_*.json"))


def test_a_device_that_is_not_there_is_one_line(small_dir, tmp_path):
    argv = offline(documented_commands()[0], small_dir, local_task(tmp_path), tmp_path / "out")
    done = run_offline([*argv, "--device", "cuda"])
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: device cuda asked for, but CUDA is not available here"
    )


def test_model_args_win_over_the_harness_defaults(small_dir):
    from lm_eval.api.registry import get_model

    lm = get_model("gpt2lab").create_from_arg_string(
        f"pretrained={small_dir},device=cpu,batch_size=3",
        {"device": "cuda:0", "batch_size": 1, "max_batch_size": None},
    )
    assert lm.batch_size == 3
    assert next(lm.model.parameters()).device.type == "cpu"


def test_a_literal_endoftext_is_the_special_token_as_in_hugging_face(lm, gpt2_tokenizer):
    import json

    from transformers import GPT2TokenizerFast

    from gpt2lab.tokenizer.vocab import gpt2_files

    encoder, merges = gpt2_files()
    vocab = json.loads(encoder.read_text(encoding="utf-8"))
    pairs = [
        tuple(line.split()) for line in merges.read_text(encoding="utf-8").splitlines()[1:] if line
    ]
    hf = GPT2TokenizerFast(vocab=vocab, merges=pairs)
    for text in (
        "Once<|endoftext|> upon",
        "<|endoftext|>The end.",
        "a <|endoftext|>\n<|endoftext|>b",
    ):
        assert lm.tok_encode(text) == hf.encode(text)
    assert gpt2_tokenizer.eot_token in lm.tok_encode("x<|endoftext|>y")
