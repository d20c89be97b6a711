"""Behaviours: what each head role is *for*, one number each, and the ablation-specificity check.

A role label says where a head looks (`heads.classify_heads`); a behaviour says what the model
does with it. Each behaviour is one number on fixed inputs (`BehaviourSet`):

- **bigram continuation loss** (previous-token): the mean cross-entropy of predicting token j
  at the positions where token j − 1 is a non-initial piece of a word, i.e. continues the word
  of token j − 2 ('armen' after 'C' in 'C|armen| and'). That piece alone does not say which
  word it belongs to (' s' ends 'aunts' and 'rings'); the piece before it does, and a
  previous-token head is how position j − 1 learns it. A piece *continues* a word when its
  text starts with a letter and the token before it ends with one (no space or punctuation
  between them). `gpt2lab heads` measures it on held-out stories (`story_text_set`), text
  of the kind a `stories` model learned: on the probes the targets are mostly the verb after
  a probe's first word (a name split in pieces, 'F|ay| galloped'), which a trained default
  model misses by 17–22 nats, and those outliers decided which head's removal hurt most
  (docs/interpretability.md, round 11).
- **first-half loss** and **repeated-half loss** (induction): random tokens repeated twice
  (`heads.InductionSpec`, `heads.half_losses`); an induction head makes the second far lower.
- **pronoun-probe accuracy** (coreference): the `stories` coreference probes cut right after
  the pronoun ('One sunny morning, Rob and Jane swung to the shallow zoo. Jane lent a narrow
  sunhat by the warm jungle. She gave him'), and the share of probes whose next-token logit
  of the antecedent's name (' Rob') is above the distractor's (' Jane'); the mean logit
  difference of the two is the **pronoun margin**. Both names come from the probe's
  annotations, each as the first token of ' ' + name, the form both take in the probe text
  (the lead-in keeps either from starting it). A name rarely *follows* a pronoun: this measures
  which of the two characters the model's state after the pronoun points to, not a fluent
  continuation. The probes always mention the distractor last, so copying the nearest name
  scores 0.
- **loss on names said before** and **loss on names said first** (no role yet): held-out
  `stories` (a seed no run trains on), each cut to the model's context; at every mention of a
  character's name after the row's first name, the cross-entropy of the name's first token,
  split by whether that name was already said in the row. In the corpus most later mentions
  repeat a name (87 % of 3,130 in 400 stories), so a model that copies the names it has read
  scores far lower on the first than on the second; one that only knows which names exist
  scores about the same on both (ln 279 = 5.63 nats for the 279 names, when each is one token).
  Which heads copy them is read from the ablation grid, not assumed.

`ablation_specificity` zero-ablates every head in turn (`interventions.zero_ablate_head`),
measures every behaviour, and checks, for each labelled role, that the head whose removal
hurts the role's behaviour most is one labelled with that role. An induction head works with
a head of an earlier layer (Olsson et al. 2022: a previous-token head); `induction_partners`
finds those partners causally, as the earlier heads without which an induction head's stripe
collapses, and the induction check counts them with the induction heads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from gpt2lab.interp.attribution import padded_batch
from gpt2lab.interp.heads import (
    HeadRole,
    InductionSpec,
    TextSet,
    check_fits,
    half_losses,
    induction_scores,
)
from gpt2lab.interp.interventions import Hooks, ablate_heads, zero_ablate_head
from gpt2lab.interp.texts import windowed_text_set
from gpt2lab.model import device_of, eval_mode

BEHAVIOURS = {
    "bigram_loss": "bigram continuation loss",
    "first_half_loss": "first-half loss",
    "repeated_half_loss": "repeated-half loss",
    "pronoun_accuracy": "pronoun-probe accuracy",
    "pronoun_margin": "pronoun margin (logit)",
    "said_name_loss": "loss on names said before",
    "new_name_loss": "loss on names said first",
}
"""Every number `measure_behaviours` returns, with its title."""

LOWER_IS_BETTER = {
    "bigram_loss",
    "first_half_loss",
    "repeated_half_loss",
    "said_name_loss",
    "new_name_loss",
}
"""Losses: ablation hurts them by raising them. The pronoun scores are hurt by falling."""

ROLE_BEHAVIOURS = {
    "previous-token": "bigram_loss",
    "induction": "repeated_half_loss",
    "coreference": "pronoun_accuracy",
}
"""The behaviour each role is checked against."""

TIE_BREAK = {"pronoun_accuracy": "pronoun_margin"}
"""Accuracy moves in steps of 1/n: heads that change it equally are ranked by the margin."""

NAME_STORIES_SEED = 12345
"""`stories` seed of the held-out stories of `name_recall_set` and `story_text_set` (each adds
its own seed): far from the training stories (seed 0) and the stories BPE's text (seed 1)."""

PARTNER_DROP = 0.25
"""A head of an earlier layer is an induction head's partner when zero-ablating it removes
more than this share of the induction head's stripe score. Measured: the tests' trained
copying model loses 91 % of its stripe without its partner and ≤ 4 % without any other head;
`gpt2lab train` with seeds 3 and 7 lose 33–48 % without their previous-token head and < 25 %
without any other; with the default seed no head removes a quarter (docs/interpretability.md,
round 6)."""

# ---------------------------------------------------------------------------------------------
# 1. Inputs
# ---------------------------------------------------------------------------------------------


def continues_word(strings: Sequence[str], j: int) -> bool:
    """Token j continues the word of token j − 1: j ≥ 1, its text starts with a letter and
    the token before ends with one. ['C', 'armen', ' and'] -> only j = 1."""
    return j >= 1 and strings[j][:1].isalpha() and strings[j - 1][-1:].isalpha()


def bigram_targets(strings: Sequence[str]) -> list[int]:
    """Positions j whose previous token j − 1 continues a word (see the module docstring).

    ['C', 'armen', ' and', ' S', 't', 'eve'] -> [2, 5]: ' and' after 'armen' (of 'Carmen'),
    'eve' after 't' (of ' Steve').
    """
    return [j for j in range(2, len(strings)) if continues_word(strings, j - 1)]


@dataclass(frozen=True)
class Contrast:
    """A two-choice next-token probe: after `tokens`, `right` should score above `wrong`."""

    tokens: list[int]
    right: int
    wrong: int


def pronoun_contrasts(
    tokenizer, n: int = 200, seed: int = 0, max_tokens: int | None = None
) -> list[Contrast]:
    """The coreference probes among `stories.probe_examples(n, seed)` as contrasts: the text
    up to and including the pronoun, the first token of ' ' + antecedent name (right) and of
    ' ' + distractor name (wrong). Probes whose names share that token, or longer than
    `max_tokens`, are left out."""
    from gpt2lab.data.stories import probe_examples

    contrasts = []
    for record in probe_examples(n, seed=seed, tokenizer=tokenizer):
        if record["kind"] != "coreference":
            continue
        tokens = record["ids"][: record["pronoun"]["token_end"]]
        right = tokenizer.encode(" " + record["antecedent"]["text"])[0]
        wrong = tokenizer.encode(" " + record["distractor"]["text"])[0]
        if right != wrong and (max_tokens is None or len(tokens) <= max_tokens):
            contrasts.append(Contrast(tokens, right, wrong))
    return contrasts


@dataclass(frozen=True)
class NameRecall:
    """Texts with name mentions to score: (row, token position) of each mention of a name
    already said in its row (`said`) and of each first mention after the row's first name
    (`new`); the position is the token holding the name's first character."""

    tokens: list[list[int]]
    said: list[tuple[int, int]]
    new: list[tuple[int, int]]


def name_recall_set(tokenizer, n: int = 100, seed: int = 0, max_tokens: int = 128) -> NameRecall:
    """`n` held-out stories (seed NAME_STORIES_SEED + `seed`), each cut to `max_tokens`
    tokens, with their name mentions split into said-before and first (see NameRecall)."""
    from gpt2lab.data.stories import generate_stories, locate, name_mentions, token_starts

    recall = NameRecall([], [], [])
    for row, story in enumerate(generate_stories(n, seed=NAME_STORIES_SEED + seed)):
        ids = tokenizer.encode(story)[:max_tokens]
        starts = token_starts(tokenizer, ids)
        kept_bytes = starts[-1] + len(tokenizer.token_bytes(ids[-1]))
        recall.tokens.append(ids)
        seen: set[str] = set()
        for start, end, name in name_mentions(story):
            if len(story[:start].encode()) >= kept_bytes:
                break  # past the cut
            position = locate(story, (start, end), starts)["token"]
            if seen and position > 0:
                (recall.said if name in seen else recall.new).append((row, position))
            seen.add(name)
    return recall


def story_text_set(
    tokenizer, targets: int = 200, seed: int = 0, max_tokens: int = 128, max_stories: int = 2000
) -> TextSet:
    """Held-out stories (seed NAME_STORIES_SEED + `seed`: they begin with `name_recall_set`'s),
    whole, each cut into consecutive windows of at most `max_tokens` tokens, until the windows
    hold at least `targets` bigram targets (or `max_stories` are taken): the texts of the
    bigram continuation loss. The count of targets, not of stories, is fixed, so a vocabulary
    that splits few words (4096 BPE: ~1 target a story) and one that splits many (GPT-2's)
    are measured on about as many targets."""
    from gpt2lab.data.stories import generate_stories

    texts, found, n = TextSet([], []), 0, 0
    for story in generate_stories(max_stories, NAME_STORIES_SEED + seed):
        n += 1
        windows = windowed_text_set(tokenizer, [story], max_tokens, source="a story")
        for k in range(len(windows)):
            texts.append(**windows.item(k))
        found += sum(len(bigram_targets(strings)) for strings in windows.strings)
        if found >= targets:
            break
    texts.source = f"{n} held-out stories (seed {NAME_STORIES_SEED + seed})"
    return texts.check()


@dataclass
class BehaviourSet:
    """The fixed inputs of every behaviour: texts (bigram continuation loss), repeated random
    tokens (the two half losses), pronoun contrasts (accuracy and margin) and name mentions
    (the two name losses)."""

    texts: TextSet
    induction: InductionSpec
    contrasts: list[Contrast] = field(default_factory=list)
    names: NameRecall | None = None

    @property
    def n_bigram_targets(self) -> int:
        return sum(len(bigram_targets(s)) for s in self.texts.strings)


def bigram_batch(texts: TextSet, device=None):
    """A `padded_batch` of the texts that have bigram targets, every other target set to −1
    (ignored by the loss); None when no text has one."""
    chosen = [(t, s) for t, s in zip(texts.tokens, texts.strings) if bigram_targets(s)]
    if not chosen:
        return None
    idx, mask, targets = padded_batch([t for t, _ in chosen])
    keep = target_mask(
        targets,
        [len(t) for t, _ in chosen],
        [(b, j) for b, (_, strings) in enumerate(chosen) for j in bigram_targets(strings)],
    )
    return idx.to(device), mask.to(device), targets.masked_fill(~keep, -1).to(device)


def target_mask(
    targets: torch.Tensor, lengths: Sequence[int], tokens: Sequence[tuple[int, int]]
) -> torch.Tensor:
    """(B, T) bool, True where a `padded_batch` of sequences of these `lengths` predicts token
    j of its row b, for each (b, j) of `tokens` (j ≥ 1): padding is on the left, so token 1
    of row b sits in column T − (lengths[b] − 1)."""
    keep = torch.zeros_like(targets, dtype=torch.bool)
    for b, j in tokens:
        keep[b, targets.shape[1] - (lengths[b] - 1) + j - 1] = True
    return keep


# ---------------------------------------------------------------------------------------------
# 2. Measuring
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def measure_behaviours(model, behaviours: BehaviourSet, hooks: Hooks = ()) -> dict[str, float]:
    """Every behaviour of `model` with `hooks` applied: {name in BEHAVIOURS: value}.

    Four forwards: the bigram texts (left out when none has a target), the repeated
    sequences, the contrasts (left out when there are none) and the name texts (when given).
    """
    check_fits(model, 2 * behaviours.induction.rep_len)
    device = device_of(model)
    values: dict[str, float] = {}
    with eval_mode(model), model.hooks(list(hooks)):
        batch = bigram_batch(behaviours.texts, device)
        if batch is not None:
            idx, mask, targets = batch
            _, loss = model(idx, targets, attention_mask=mask)
            values["bigram_loss"] = float(loss)
        idx = behaviours.induction.sequences(model.config.vocab_size).to(device)  # (B, 2L)
        logits, _ = model(idx)
        first, repeated = half_losses(logits, idx, behaviours.induction.rep_len)
        values["first_half_loss"], values["repeated_half_loss"] = first, repeated
        if behaviours.contrasts:
            values.update(contrast_scores(model, behaviours.contrasts))
        if behaviours.names is not None:
            values.update(name_losses(model, behaviours.names))
    return values


@torch.no_grad()
def name_losses(model, names: NameRecall) -> dict[str, float]:
    """said_name_loss and new_name_loss: the mean cross-entropy at each kind of mention (a
    kind without mentions is left out), in eval mode."""
    idx, mask, targets = padded_batch(names.tokens, device_of(model))
    with eval_mode(model):
        logits, _ = model(idx, attention_mask=mask)  # (B, T, V)
    kept = [row for row, t in enumerate(names.tokens) if len(t) > 1]  # padded_batch's rows
    batch_row = {row: b for b, row in enumerate(kept)}
    lengths = [len(names.tokens[row]) for row in kept]
    values = {}
    for key, mentions in (("said_name_loss", names.said), ("new_name_loss", names.new)):
        keep = target_mask(targets, lengths, [(batch_row[r], j) for r, j in mentions])
        if keep.any():
            values[key] = float(
                torch.nn.functional.cross_entropy(logits[keep].float(), targets[keep])
            )
    return values


def contrast_scores(model, contrasts: Sequence[Contrast]) -> dict[str, float]:
    """pronoun_accuracy: share of contrasts with logit(right) > logit(wrong) after the
    tokens; pronoun_margin: the mean of logit(right) − logit(wrong) (= the log-probability
    difference, as both share the softmax's normaliser)."""
    device = device_of(model)
    # a dummy last token makes padded_batch's inputs exactly each contrast's tokens,
    # left-padded, so column −1 holds every contrast's last token
    idx, mask, _ = padded_batch([c.tokens + [0] for c in contrasts], device)
    logits, _ = model(idx, attention_mask=mask)
    last = logits[:, -1].float()  # (n, V)
    rows = torch.arange(len(contrasts), device=device)
    right = torch.tensor([c.right for c in contrasts], device=device)
    wrong = torch.tensor([c.wrong for c in contrasts], device=device)
    gap = last[rows, right] - last[rows, wrong]  # (n,)
    return {
        "pronoun_accuracy": float((gap > 0).float().mean()),
        "pronoun_margin": float(gap.mean()),
    }


# ---------------------------------------------------------------------------------------------
# 3. Which head does each behaviour need?
# ---------------------------------------------------------------------------------------------


def harm(behaviour: str, delta: np.ndarray) -> np.ndarray:
    """How much ablation hurt a behaviour, positive = worse: a loss's rise, a score's fall."""
    return delta if behaviour in LOWER_IS_BETTER else -delta


@torch.no_grad()
def stripes_under_ablation(model, spec: InductionSpec) -> np.ndarray:
    """Every head's induction stripe with each head zero-ablated in turn: (L, nh, L, nh), the
    ablated head's (layer, head) first, the scored head's second."""
    n_layer, n_head = model.config.n_layer, model.config.n_head
    stripes = np.zeros((n_layer, n_head, n_layer, n_head))
    with eval_mode(model):
        for layer, head in np.ndindex(n_layer, n_head):
            with model.hooks(zero_ablate_head(model, layer, head)):
                stripes[layer, head] = induction_scores(model, spec)[0].numpy()
    return stripes


@dataclass(frozen=True)
class Partner:
    """`head` (an earlier layer's) is a partner of induction head `of`: zero-ablating it
    takes that head's stripe from `clean` to `ablated` (< (1 − PARTNER_DROP) · clean)."""

    head: tuple[int, int]
    of: tuple[int, int]
    clean: float
    ablated: float


def induction_partners(
    clean: np.ndarray, ablated: np.ndarray, induction_heads: Sequence[tuple[int, int]]
) -> list[Partner]:
    """The partners of each induction head, from its clean stripe grid (L, nh) and the
    grids under each head's ablation (`stripes_under_ablation`, (L, nh, L, nh))."""
    partners = []
    for of in induction_heads:
        for head in np.ndindex(clean.shape[0], clean.shape[1]):
            if head[0] < of[0] and ablated[head][of] < (1 - PARTNER_DROP) * clean[of]:
                partners.append(Partner(head, of, float(clean[of]), float(ablated[head][of])))
    return partners


@dataclass
class RoleCheck:
    """One role's specificity check.

    verdict: 'holds' (the head whose ablation hurts `behaviour` most is labelled `role` or is
    one of its `partners`, its harm is positive and strictly above every other head's),
    'fails', 'no head labelled', or 'not measured' (the behaviour had no inputs).
    most_hurt: the (layer, head) whose ablation hurts the behaviour most, and its Δ
    (ablated − clean); runner_up: the most harmful head neither labelled nor a partner.
    """

    role: str
    behaviour: str
    labelled: list[tuple[int, int]]
    verdict: str
    most_hurt: tuple[int, int] | None = None
    most_hurt_delta: float | None = None
    runner_up: tuple[int, int] | None = None
    runner_up_delta: float | None = None
    partners: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            **self.__dict__,
            "labelled": [list(h) for h in self.labelled],
            "partners": [list(h) for h in self.partners],
            "most_hurt": list(self.most_hurt) if self.most_hurt else None,
            "runner_up": list(self.runner_up) if self.runner_up else None,
        }


@dataclass
class Specificity:
    """Clean behaviours, each behaviour's Δ grid (ablated − clean, (n_layer, n_head)), and
    one check per role of ROLE_BEHAVIOURS."""

    clean: dict[str, float]
    delta: dict[str, np.ndarray]
    checks: list[RoleCheck]
    partners: list[Partner] = field(default_factory=list)
    n_bigram_targets: int = 0
    bigram_source: str = ""
    n_contrasts: int = 0
    rep_len: int = 0
    n_name_texts: int = 0
    n_said_names: int = 0
    n_new_names: int = 0
    together: dict[str, dict[str, float]] = field(default_factory=dict)
    """{role: every behaviour with all heads of that role zero-ablated at once}: heads that
    share a job (four induction heads) each look dispensable alone."""

    def to_dict(self) -> dict:
        return {
            "clean": self.clean,
            "delta": {k: np.round(v, 6).tolist() for k, v in self.delta.items()},
            "checks": [c.to_dict() for c in self.checks],
            "partners": [
                {"head": list(p.head), "of": list(p.of), "clean": p.clean, "ablated": p.ablated}
                for p in self.partners
            ],
            "n_bigram_targets": self.n_bigram_targets,
            "bigram_source": self.bigram_source,
            "n_contrasts": self.n_contrasts,
            "rep_len": self.rep_len,
            "n_name_texts": self.n_name_texts,
            "n_said_names": self.n_said_names,
            "n_new_names": self.n_new_names,
            "together": self.together,
        }


def check_role(
    role: str,
    behaviour: str,
    labelled: list[tuple[int, int]],
    delta: dict[str, np.ndarray],
    partners: Sequence[tuple[int, int]] = (),
) -> RoleCheck:
    """The verdict for one role (see RoleCheck). Heads are ranked by their harm to
    `behaviour`, ties broken by the harm to TIE_BREAK's behaviour; the most harmful head is
    named even when no head carries the role."""
    partners = sorted(set(partners) - set(labelled))
    if behaviour not in delta:
        return RoleCheck(role, behaviour, labelled, "not measured", partners=partners)
    primary = harm(behaviour, delta[behaviour])  # (n_layer, n_head)
    extra = TIE_BREAK.get(behaviour)
    secondary = harm(extra, delta[extra]) if extra in delta else np.zeros_like(primary)

    def key(head: tuple[int, int]) -> tuple[float, float]:
        return float(primary[head]), float(secondary[head])

    ranked = sorted(np.ndindex(primary.shape), key=key, reverse=True)
    top = ranked[0]
    circuit = set(labelled) | set(partners)
    runner = next((h for h in ranked if h not in circuit), None)
    holds = top in circuit and key(top)[0] > 0 and (runner is None or key(top) > key(runner))
    return RoleCheck(
        role,
        behaviour,
        labelled,
        "no head labelled" if not labelled else "holds" if holds else "fails",
        top,
        float(delta[behaviour][top]),
        runner,
        float(delta[behaviour][runner]) if runner else None,
        partners,
    )


def ablation_specificity(
    model, behaviours: BehaviourSet, roles: Sequence[HeadRole], progress: bool = True
) -> Specificity:
    """Zero-ablate each head in turn (n_layer · n_head × 4 forwards over the fixed inputs, and
    one more over the repeated tokens when a head is labelled induction), measure every
    behaviour, and check each role of ROLE_BEHAVIOURS against its behaviour, counting the
    induction heads' partners (`induction_partners`) with them; then remove all heads of each
    labelled role at once (`Specificity.together`)."""
    clean = measure_behaviours(model, behaviours)
    labels = {
        role: sorted({(r.layer, r.head) for r in roles if r.role == role})
        for role in ROLE_BEHAVIOURS
    }
    partners = []
    if labels["induction"]:
        with eval_mode(model):
            clean_stripes = induction_scores(model, behaviours.induction)[0].numpy()
        ablated = stripes_under_ablation(model, behaviours.induction)
        partners = induction_partners(clean_stripes, ablated, labels["induction"])
    n_layer, n_head = model.config.n_layer, model.config.n_head
    delta = {name: np.zeros((n_layer, n_head)) for name in clean}
    heads = [(layer, head) for layer in range(n_layer) for head in range(n_head)]
    for layer, head in tqdm(heads, desc="behaviours under ablation", disable=not progress):
        ablated = measure_behaviours(model, behaviours, zero_ablate_head(model, layer, head))
        for name, value in ablated.items():
            delta[name][layer, head] = value - clean[name]
    partner_heads = {"induction": [p.head for p in partners]}
    checks = [
        check_role(role, behaviour, labels[role], delta, partner_heads.get(role, ()))
        for role, behaviour in ROLE_BEHAVIOURS.items()
    ]
    together = {
        role: measure_behaviours(
            model,
            behaviours,
            ablate_heads(model, [(r.layer, r.head) for r in roles if r.role == role]),
        )
        for role in dict.fromkeys(r.role for r in roles)
    }
    return Specificity(
        clean,
        delta,
        checks,
        partners,
        n_bigram_targets=behaviours.n_bigram_targets,
        bigram_source=behaviours.texts.source,
        n_contrasts=len(behaviours.contrasts),
        rep_len=behaviours.induction.rep_len,
        **name_counts(behaviours.names),
        together=together,
    )


def name_counts(names: NameRecall | None) -> dict[str, int]:
    """Specificity's n_name_texts, n_said_names and n_new_names (0 without names)."""
    if names is None:
        return {"n_name_texts": 0, "n_said_names": 0, "n_new_names": 0}
    return {
        "n_name_texts": len(names.tokens),
        "n_said_names": len(names.said),
        "n_new_names": len(names.new),
    }
