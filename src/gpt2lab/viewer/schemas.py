"""The JSON the explorer's API takes and gives (these also make its OpenAPI schema at /docs).

Requests forbid unknown fields, so a typo ("abalte") is a 422 with the field's name rather
than a silently ignored option, and take JSON types strictly: {"k": "5"}, {"k": true} and
{"layer": "0"} are 422s, not 5, 1 and 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_ABLATE = 4096  # (layer, head) pairs in one request; a 48 × 25 GPT-2 XL has 1200 heads


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TextRequest(Request):
    text: str = Field(description="The text to look at (tokenised with the model's tokenizer).")


class HeadRef(Request):
    layer: int = Field(ge=0, description="Layer index, from 0.")
    head: int = Field(ge=0, description="Head index within the layer, from 0.")


class PredictRequest(TextRequest):
    k: int = Field(5, ge=1, le=20, description="Predictions per position.")
    ablate: list[HeadRef] = Field(
        default_factory=list,
        max_length=MAX_ABLATE,
        description="Heads whose output is zeroed; the response then shows the changes.",
    )


class AttentionRequest(TextRequest):
    layer: int = Field(0, ge=0)
    head: int = Field(0, ge=0)
    ablate: list[HeadRef] = Field(default_factory=list, max_length=MAX_ABLATE)


class Token(BaseModel):
    id: int
    text: str


class Prediction(BaseModel):
    id: int
    text: str
    prob: float


class PositionPredictions(BaseModel):
    position: int
    token: Token
    target: Token = Field(
        description="The text's next token, or at the last position the model's top prediction."
    )
    target_is_prediction: bool
    top: list[Prediction]
    context: str = Field(
        description="The text of the last few tokens up to this one, decoded together (a "
        "character split across tokens stays whole)."
    )
    context_start: int = Field(description="The position `context` starts at.")
    logprob: float = Field(description="log p(target) of the unablated model.")
    ablated_top: list[Prediction] | None = None
    ablated_logprob: float | None = None
    delta: float | None = Field(None, description="Δ log p(target) = ablated − clean.")


class PredictResponse(BaseModel):
    ablated: list[list[int]]
    positions: list[PositionPredictions]


class TokenizeResponse(BaseModel):
    tokens: list[Token]


class AttentionResponse(BaseModel):
    layer: int
    head: int
    tokens: list[Token]
    pattern: list[list[float]] = Field(description="A[i][j]: attention from query i to key j.")
    thumbnails: list[list[list[float]]] = Field(
        description="Every head of the layer, average-pooled to at most thumb_size squared."
    )


class Info(BaseModel):
    name: str
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    vocab_size: int
    n_params: int
    max_tokens: int
    max_chars: int
    max_top_k: int
    tokenizer: str
    has_run: bool
    has_timeline: bool = Field(description="The run has step checkpoints (--keep-every N).")


class HeadRole(BaseModel):
    layer: int
    head: int
    role: str
    score: float


class RoleRule(BaseModel):
    role: str
    score: str
    threshold: float
    description: str


class HeadsResponse(BaseModel):
    grids: dict[str, list[list[float]]]
    n_texts: int
    measure: str
    induction_loss: float | None
    baseline_accuracy: float | None
    n_pronouns: int
    source: str
    roles: list[HeadRole]
    rules: list[RoleRule]


class Series(BaseModel):
    step: list[float]
    value: list[float | None]


class LayeredSeries(BaseModel):
    layers: list[str]
    step: list[float]
    values: list[list[float | None]]


class RunResponse(BaseModel):
    name: str
    n_records: int
    series: dict[str, Series]
    layered: dict[str, LayeredSeries]


class ErrorResponse(BaseModel):
    detail: str


# --- neurons ---------------------------------------------------------------------------------


class TokenNeuronsRequest(TextRequest):
    position: int = Field(ge=0, description="The token's position in the text, from 0.")
    k: int = Field(10, ge=1, le=50, description="Neurons to list.")


class CategoryLabel(BaseModel):
    group: str
    category: str
    share: float = Field(description="Of the neuron's top activations, the share on the category.")
    lift: float = Field(description="share / the category's share of all scanned tokens.")
    words: int = Field(description="Different words carrying the category among them.")


class NeuronSummary(BaseModel):
    neuron: int
    max: float
    mean: float
    density: float = Field(description="Fraction of scanned tokens where the activation is > 0.")
    top_token: str
    labels: list[CategoryLabel]


class LayerSelectivity(BaseModel):
    layer: int
    n_neurons: int
    selective: int
    by_group: dict[str, int]
    beyond_word: dict[str, int]
    by_category: dict[str, int]


class NeuronsResponse(BaseModel):
    layer: int
    n_neurons: int
    n_texts: int
    n_tokens: int
    top_k: int
    source: str
    order: list[int] = Field(description="The neurons, labelled ones (by share) first.")
    selectivity: LayerSelectivity
    neurons: list[NeuronSummary]


class NeuronExample(BaseModel):
    text: int
    position: int
    activation: float
    token: str
    context: str = Field(description="The tokens around it, the activating one in ⟦ ⟧.")
    tokens: list[str] = Field(description="The tokens around it, as a list.")
    index: int = Field(description="Where the activating token is in `tokens`.")


class Histogram(BaseModel):
    counts: list[int]
    edges: list[float]


class WrittenToken(BaseModel):
    id: int
    text: str
    logit: float = Field(description="Logit change per unit of activation (W_out·W_U).")


class NeuronResponse(BaseModel):
    layer: int
    neuron: int
    max: float
    mean: float
    density: float
    labels: list[CategoryLabel]
    examples: list[NeuronExample]
    histogram: Histogram
    promotes: list[WrittenToken]
    suppresses: list[WrittenToken]


class TokenNeuron(BaseModel):
    layer: int
    neuron: int
    activation: float
    labels: list[str]


class TokenNeuronsResponse(BaseModel):
    position: int
    token: Token
    neurons: list[TokenNeuron]


# --- embeddings ------------------------------------------------------------------------------

Space = Literal["tokens", "positions", "sinusoidal", "resid"]


class Point(BaseModel):
    x: float
    y: float
    label: str = Field(description="The word (or token, or position) the point is.")
    category: str = Field(description="Its category in the group; 'other' for none or several.")


class EmbeddingsResponse(BaseModel):
    space: Space
    table: str = Field(description="wte, learned, sinusoidal, or the residual layer's name.")
    layer: int
    layers: list[str] = Field(description="The residual stream's layers: embed, block 0, ….")
    group: str
    groups: dict[str, list[str]]
    categories: list[str] = Field(description="The categories present, in legend order.")
    explained: list[float] = Field(description="Share of the variance along PC1 and PC2.")
    points: list[Point]


# --- timeline --------------------------------------------------------------------------------


class Curve(BaseModel):
    step: list[float]
    value: list[float]


class SlopeChange(BaseModel):
    step: float
    slope_before: float
    slope_after: float


class TimelineResponse(BaseModel):
    run: str
    steps: list[int] = Field(description="The kept checkpoints' steps, oldest first.")
    train: Curve
    val: Curve
    fit: Curve = Field(description="The piecewise-linear fit whose bends are the changes.")
    changes: list[SlopeChange]
    log_step: bool
    probes: int


class RoleBest(BaseModel):
    role: str
    score: float
    layer: int
    head: int
    threshold: float
    heads: int = Field(description="Heads that pass the role's threshold.")


class CheckpointResponse(BaseModel):
    step: int
    val_loss: float
    val_tokens: int
    train_loss: float | None
    sample: str
    roles: list[RoleBest]
    induction_loss: float | None
    cloze_accuracy: float
    cloze_by_kind: dict[str, float]
    said_name_loss: float | None = Field(
        None, description="Loss on names already said in a held-out story."
    )
    new_name_loss: float | None = Field(None, description="Loss on names said there first.")
