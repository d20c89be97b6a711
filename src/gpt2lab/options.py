"""Typed options: dataclass fields filled from YAML files, flags or `key=value` text.

One path for every configurable thing (`TrainConfig`, the ablation suite's options, the
`GPTConfig` overrides of a run or a variant): the dataclass's type hints are the schema,
pydantic (lax mode) turns the raw values into those types, and the dataclass's own
`__post_init__` checks what types cannot say. A mistake is one line naming the key:

>>> typed_values({"lr": float, "steps": int}, {"lr": "3e-4", "steps": "20"}, "option")
{'lr': 0.0003, 'steps': 20}
>>> typed_values({"lr": float}, {"lr": "fast"}, "option")
Traceback (most recent call last):
gpt2lab.errors.GPT2LabError: lr must be float, got 'fast'
>>> typed_values({"lr": float}, {"lrr": 1}, "training option")
Traceback (most recent call last):
gpt2lab.errors.GPT2LabError: unknown training option 'lrr'

Values may come as text (a flag, `key=value`): '3e-4' -> 0.0003, 'true' -> True, '4' -> 4,
and 'null' (or 'none') -> None where None is allowed. Numbers become text for text fields.
pydantic is imported on first use, never by `--help`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import os
import textwrap
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpt2lab.errors import GPT2LabError
from gpt2lab.files import read_text

NULLS = ("null", "none", "~")


def field_types(cls: type) -> dict[str, Any]:
    """{field name: annotation} of a dataclass (string annotations resolved)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def field_docs(cls: type) -> dict[str, str]:
    """{field name: its docstring} of a dataclass, the string literal under each field (as
    litgpt and jsonargparse read them), whitespace collapsed."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def choices(annotation: Any) -> tuple[Any, ...]:
    """The types a value may have: `int | None` -> (int, NoneType), `float` -> (float,)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def type_name(annotation: Any) -> str:
    """'float', 'int' ('int | None' also reads 'int': None is spelled null)."""
    names = [getattr(t, "__name__", str(t)) for t in choices(annotation) if t is not type(None)]
    return " or ".join(names)


def typed_values(
    types_: Mapping[str, Any], values: Mapping[str, Any], what: str, prefix: str = ""
) -> dict[str, Any]:
    """`values` converted to `types_[key]` each; a key not in `types_` is an error.

    `what` names the kind of key in errors ("training option"), `prefix` is put before the
    key there ("model." for GPTConfig overrides).
    """
    from pydantic import ValidationError

    data = {key: _null(value, types_.get(key)) for key, value in values.items()}
    try:
        return _model(tuple(types_.items())).model_validate(data).model_dump(exclude_unset=True)
    except ValidationError as err:
        raise _one_line(err, types_, what, prefix) from None


def _null(value: Any, annotation: Any) -> Any:
    """'null' (a flag's or key=value's text) -> None where the field allows None."""
    if isinstance(value, str) and value.strip().lower() in NULLS:
        if type(None) in choices(annotation):
            return None
    return value


@functools.cache
def _model(items: tuple[tuple[str, Any], ...]):
    """A pydantic model with these fields, each optional (absent ones are left out by
    `model_dump(exclude_unset=True)`), and no others."""
    from pydantic import ConfigDict, create_model

    config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    return create_model("Options", __config__=config, **{k: (t, None) for k, t in items})


def _one_line(err, types_: Mapping[str, Any], what: str, prefix: str) -> GPT2LabError:
    first = err.errors()[0]
    key = str(first["loc"][0]) if first["loc"] else "?"
    if first["type"] == "extra_forbidden":
        return GPT2LabError(f"unknown {what} {prefix + key!r}")
    return GPT2LabError(
        f"{prefix}{key} must be {type_name(types_[key])}, got {first.get('input')!r}"
    )


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML mapping of options (a config file, a suite file or a run's config.yaml)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise GPT2LabError(f"no such config file: {path}")
    try:
        data = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as err:
        raise GPT2LabError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise GPT2LabError(f"{path} must hold a mapping of options, got {type(data).__name__}")
    return data
