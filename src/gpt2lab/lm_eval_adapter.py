"""gpt2lab models in EleutherAI's lm-evaluation-harness (`pip install "gpt2lab[eval]"`).

The harness asks a model three kinds of questions (its `LM` interface):

    loglikelihood(context, continuation)  -> (log p(continuation | context), is_greedy)
    loglikelihood_rolling(text)           -> log p(text), scored in context-sized windows
    generate_until(context, {"until": [...], "max_gen_toks": n, ...}) -> generated text

`GPT2LabLM` answers them with `gpt2lab.evaluate.score_continuations` and
`gpt2lab.generate.stream`. Importing this module registers it as the harness model
"gpt2lab"; the harness's own `lm_eval` command does not import third-party models, so run it
through this module, which takes exactly `lm_eval`'s arguments:

    python -m gpt2lab.lm_eval_adapter --model gpt2lab --model_args pretrained=runs/NAME \\
        --tasks lambada_openai,hellaswag,wikitext --batch_size 8

or from Python: `import gpt2lab.lm_eval_adapter` and then
`lm_eval.simple_evaluate(model="gpt2lab", model_args="pretrained=gpt2", tasks=[...])`.
"""

from __future__ import annotations

from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window, simple_parse_args_string
from tqdm.auto import tqdm

from gpt2lab.errors import GPT2LabError
from gpt2lab.evaluate import score_continuations
from gpt2lab.generate import SamplingConfig, TextStream, stream
from gpt2lab.pretrained import load_model_and_tokenizer


@register_model("gpt2lab")
class GPT2LabLM(TemplateLM):
    """A gpt2lab model (hub name, model directory or training run) for the harness.

    model_args: pretrained=gpt2|DIR|runs/NAME, device=auto|cpu|cuda|cuda:N|mps (auto: a GPU
    when there is one, else the CPU), batch_size=8, max_gen_toks=256. An already loaded model
    can be passed as `model=` with `tokenizer=` (used by tests).
    """

    def __init__(
        self,
        pretrained: str | None = None,
        device: str = "auto",
        batch_size: int | str = 8,
        max_gen_toks: int = 256,
        model=None,
        tokenizer=None,
        **unused,
    ) -> None:
        super().__init__()
        if model is None:
            model, tokenizer, _ = load_model_and_tokenizer(pretrained, device)
        elif tokenizer is None:
            raise GPT2LabError("pass the model's tokenizer along with model=")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = 8 if str(batch_size).startswith("auto") else int(batch_size)
        self.max_gen_toks = int(max_gen_toks)
        self.max_length = model.config.block_size

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None):
        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict, additional_config: dict | None = None):
        """The model, from `--model_args` and the harness's generic `--device`/`--batch_size`.

        A key given in model_args wins: `model_args=...,device=cpu` beside lm_eval's own
        default `--device cuda:0` is the CPU, not a clash of two `device` arguments.
        """
        generic = {k: v for k, v in (additional_config or {}).items() if v is not None}
        return cls(**{**generic, **arg_dict})

    # --- tokens -------------------------------------------------------------------------------

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eot_token

    def tok_encode(self, string: str, **kwargs) -> list[int]:
        """Token ids; a literal "<|endoftext|>" in a prompt is the special token, as Hugging
        Face's GPT-2 tokenizer (and so lm-eval's HF models) reads it."""
        return self.tokenizer.encode(string, allowed_special="all")

    def tok_decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens)

    # --- the three request types ------------------------------------------------------------

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs):
        """requests: [((context, continuation), context_ids, continuation_ids), ...]."""
        pairs = [(context, continuation) for _, context, continuation in requests]
        scores = []
        for start in tqdm(
            range(0, len(pairs), 64 * self.batch_size), disable=disable_tqdm, desc="loglikelihood"
        ):
            chunk = pairs[start : start + 64 * self.batch_size]
            scores += score_continuations(self.model, chunk, self.batch_size)
        answers = [(s.logprob, s.greedy) for s in scores]
        for (key, _, _), answer in zip(requests, answers):
            self.cache_hook.add_partial("loglikelihood", key, answer)
        return answers

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """log p(text) over windows of the model's context, each token scored once (the
        harness's own windowing: the first window is conditioned on <|endoftext|>)."""
        results = []
        for (text,) in tqdm(
            [r.args for r in requests], disable=disable_tqdm, desc="loglikelihood_rolling"
        ):
            windows = [
                make_disjoint_window(w)
                for w in get_rolling_token_windows(
                    self.tok_encode(text), self.prefix_token_id, self.max_length, context_len=1
                )
            ]
            scores = score_continuations(self.model, windows, self.batch_size) if windows else []
            total = sum(s.logprob for s in scores)
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), total)
            results.append(total)
        return results

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Generate from each context until a stop string, <|endoftext|> or max_gen_toks."""
        eot_text = self.tokenizer.decode([self.eot_token_id])
        outputs = []
        for context, gen_kwargs in tqdm(
            [r.args for r in requests], disable=disable_tqdm, desc="generate_until"
        ):
            kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
            until = handle_stop_sequences(kwargs.get("until"), eos=eot_text)
            text = self.generate_text(
                context,
                until,
                kwargs["max_gen_toks"],
                float(kwargs.get("temperature", 0.0)) if kwargs.get("do_sample") else 0.0,
                kwargs.get("seed"),
            )
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
            outputs.append(text)
        return outputs

    def generate_text(
        self, context: str, until: list[str], max_tokens: int, temperature: float, seed=None
    ) -> str:
        """The continuation of `context`, cut before the first stop string."""
        import torch

        if max_tokens >= self.max_length:
            raise GPT2LabError(
                f"max_gen_toks ({max_tokens}) must be below the context ({self.max_length})"
            )
        ids = self.tok_encode(context)[-(self.max_length - max_tokens) :] or [self.eot_token_id]
        idx = torch.tensor([ids], device=self.model.lm_head.weight.device)
        pieces = TextStream(self.tokenizer)
        text = ""
        for token in stream(
            self.model,
            idx,
            max_tokens,
            SamplingConfig(temperature=temperature),
            stop=self.eot_token_id,
            seed=seed,
        ):
            if int(token) == self.eot_token_id:
                break
            text += pieces.push(int(token))
            if any(stop and stop in text for stop in until):
                break
        text += pieces.flush()
        for stop in until:
            if stop:
                text = text.split(stop)[0]
        return text


def main(argv: list[str] | None = None) -> None:
    """`lm_eval`'s command line with the "gpt2lab" model registered.

    lm_eval fills `--device` with cuda:0 when it is not given; here an absent `--device` means
    auto (a GPU if there is one, else the CPU), so the documented commands run on a laptop. A
    device that is not there (`--device cuda` without CUDA) is one line and exit 2.
    """
    import sys

    from lm_eval.__main__ import cli_evaluate

    argv = sys.argv[1:] if argv is None else argv
    if not any(a == "--device" or a.startswith("--device=") for a in argv):
        argv = [*argv, "--device", "auto"]
    sys.argv = [sys.argv[0], *argv]
    try:
        cli_evaluate()
    except GPT2LabError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
