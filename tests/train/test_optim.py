"""The lr schedule against hand-computed values and torch's schedulers; AdamW groups;
gradient accumulation against one full-batch torch cross-entropy."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from gpt2lab.config import GPTConfig
from gpt2lab.model import GPT
from gpt2lab.train.engine import accumulate_gradients
from gpt2lab.train.optim import lr_at, make_optimizer, param_groups


def schedule(step, decay="cosine"):
    return lr_at(step, lr=1e-3, min_lr=1e-4, warmup_steps=10, decay_steps=110, decay=decay)


def test_warmup_is_linear_and_starts_above_zero():
    assert schedule(0) == pytest.approx(1e-4)  # 1e-3 * 1/10
    assert schedule(4) == pytest.approx(5e-4)
    assert schedule(9) == pytest.approx(1e-3)


def test_cosine_hand_values():
    assert schedule(10) == pytest.approx(1e-3)
    # halfway through decay: min + (max - min) / 2
    assert schedule(60) == pytest.approx(5.5e-4)
    # a quarter: min + 0.5 (1 + cos(pi/4)) (max - min)
    assert schedule(35) == pytest.approx(1e-4 + 0.5 * (1 + math.cos(math.pi / 4)) * 9e-4)
    assert schedule(110) == pytest.approx(1e-4)
    assert schedule(500) == pytest.approx(1e-4)


def test_linear_and_constant():
    assert schedule(60, "linear") == pytest.approx(5.5e-4)
    assert schedule(85, "linear") == pytest.approx(1e-3 - 0.75 * 9e-4)
    assert schedule(500, "constant") == pytest.approx(1e-3)


def test_cosine_matches_torch_cosine_annealing():
    """torch.optim.lr_scheduler.CosineAnnealingLR over the decay phase gives the same lrs."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100, eta_min=1e-4)
    for step in range(10, 111):
        assert schedule(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
        opt.step()
        sched.step()


def test_param_groups_decay_matrices_only_and_count_tied_once():
    model = GPT(GPTConfig.preset("tiny", vocab_size=100))
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])
    ids = [id(p) for g in (decay, no_decay) for p in g["params"]]
    assert len(ids) == len(set(ids))  # the tied wte / lm_head matrix appears once
    assert sum(p.numel() for g in (decay, no_decay) for p in g["params"]) == model.num_params(
        non_embedding=False
    )
    assert any(p is model.wte.weight for p in decay["params"])
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)].rsplit(".", 1)[-1] for p in no_decay["params"]} == {"weight", "bias"}
    assert all("ln" in names[id(p)] or names[id(p)].endswith("bias") for p in no_decay["params"])
    assert isinstance(make_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu"), torch.optim.AdamW)


def test_the_fused_cpu_optimizer_takes_torch_unfused_adamw_steps():
    """make_optimizer fuses AdamW on CPU; three steps land where torch's per-tensor AdamW
    (foreach=False, the reference) lands, to float32 rounding, decay groups included."""
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", vocab_size=50, n_layer=2, block_size=16))
    reference = copy.deepcopy(model)
    start = [p.detach().clone() for p in model.parameters()]
    ours = make_optimizer(model, 1e-2, 0.1, (0.9, 0.95), "cpu")
    theirs = torch.optim.AdamW(
        param_groups(reference, 0.1), lr=1e-2, betas=(0.9, 0.95), foreach=False
    )
    assert ours.defaults["fused"] is True
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        for p, q in zip(model.parameters(), reference.parameters()):
            p.grad = torch.randn(p.shape, generator=g)
            q.grad = p.grad.clone()
        ours.step()
        theirs.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)
    moved = [float((p.detach() - p0).abs().max()) for p, p0 in zip(model.parameters(), start)]
    assert min(moved) > 1e-3  # every tensor took real steps (lr 1e-2), so the match means something


def test_accumulation_is_the_mean_over_all_tokens_of_the_global_batch():
    """Micro-batches with different numbers of ignored targets: the accumulated gradient is
    the gradient of one cross-entropy mean over the whole batch, not a mean of means."""
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", vocab_size=50, n_layer=2, block_size=16))
    x = torch.randint(0, 50, (4, 16))
    y = torch.randint(0, 50, (4, 16))
    y[0, :12] = -1  # the first micro-batch has far fewer counted targets
    y[3, 5] = -1

    logits, _ = model(x)
    reference = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-1)
    reference.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    n_tokens = int((y != -1).sum())
    batches = [(x[:2], y[:2]), (x[2:], y[2:])]
    total = accumulate_gradients(model, batches, scale=1 / n_tokens, device=torch.device("cpu"))
    assert float(total) / n_tokens == pytest.approx(reference.item(), rel=1e-6)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-5, atol=1e-7, msg=name)
    mean_of_means = (
        sum(
            F.cross_entropy(model(bx)[0].flatten(0, 1), by.flatten(), ignore_index=-1)
            for bx, by in batches
        )
        / 2
    )
    assert abs(mean_of_means.item() - reference.item()) > 1e-3  # the distinction is real here
