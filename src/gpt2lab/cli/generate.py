"""`gpt2lab generate`: continue a prompt, streaming tokens as they are chosen."""

from __future__ import annotations

import argparse
import sys

from gpt2lab.cli.flags import MODEL_HELP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="continue a prompt with a model, streaming tokens as they are produced",
        description=(
            "Sample a continuation of --prompt with a KV cache, printing each token as soon as "
            "it is chosen. --temperature 0 is greedy decoding. Prompts longer than the model's "
            "context keep their last block_size tokens (a sliding window)."
        ),
    )
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--prompt", required=True, help="the text to continue")
    p.add_argument("--num-samples", type=int, default=1, help="continuations (default: 1)")
    p.add_argument("--max-new-tokens", type=int, default=100, help="tokens per sample (100)")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default: 0.8)")
    p.add_argument("--top-k", type=int, help="sample among the k most likely tokens only")
    p.add_argument("--top-p", type=float, help="nucleus sampling: keep this probability mass")
    p.add_argument("--repetition-penalty", type=float, help="> 1 discourages repeated tokens")
    p.add_argument(
        "--stop-at-eot",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="end a sample at <|endoftext|> (default: yes)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for sampling (default: 0)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument(
        "--dtype",
        default="float32",
        help=(
            "weights of the linear layers and LM head: float32, bfloat16, int8 (weight-only, "
            "per-row scales) or int8-dynamic (int8 weights and inputs; the fastest on x86 CPUs "
            "measured); "
            "see docs/evaluation.md#speed"
        ),
    )
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from gpt2lab.errors import GPT2LabError
    from gpt2lab.generate import SamplingConfig, TextStream, stream
    from gpt2lab.model import device_of
    from gpt2lab.pretrained import load_model_and_tokenizer
    from gpt2lab.quantize import check_decoding_dtype, to_decoding_dtype

    if not args.prompt:
        raise GPT2LabError("--prompt is empty: give some text to continue")
    if args.num_samples < 1:
        raise GPT2LabError(f"--num-samples must be at least 1, got {args.num_samples}")
    if args.max_new_tokens <= 0:
        raise GPT2LabError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    sampling = SamplingConfig(
        args.temperature, args.top_k, args.top_p, args.repetition_penalty
    )  # checks the values before the model is loaded
    check_decoding_dtype(args.dtype)
    model, tokenizer, description = load_model_and_tokenizer(args.model, args.device)
    model = to_decoding_dtype(model, args.dtype)
    if not args.model:
        print(f"using {description}", file=sys.stderr)
    import torch

    prompt = torch.tensor([tokenizer.encode_ordinary(args.prompt)], device=device_of(model))
    for sample in range(args.num_samples):
        if args.num_samples > 1:
            print(f"--- sample {sample + 1} ---")
        text = TextStream(tokenizer)
        print(args.prompt, end="", flush=True)
        for token in stream(
            model,
            prompt,
            args.max_new_tokens,
            sampling,
            stop=tokenizer.eot_token if args.stop_at_eot else None,
            seed=args.seed + sample,
        ):
            if args.stop_at_eot and int(token) == tokenizer.eot_token:
                break
            print(text.push(int(token)), end="", flush=True)
        print(text.flush())
    return 0
