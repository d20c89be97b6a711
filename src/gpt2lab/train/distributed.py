"""Running on several processes: torchrun, DistributedDataParallel, FSDP.

`torchrun --nproc_per_node N -m gpt2lab train ...` starts N copies of the same program and
sets RANK, LOCAL_RANK and WORLD_SIZE in each one's environment. `setup` reads them, joins the
process group (nccl on GPUs, gloo on CPUs) and picks this rank's device. Without those
variables it returns a single-process `Dist` and every helper here is a no-op, so the
training loop has no `if distributed` branches.

Rules the loop keeps so no rank waits forever at a collective:
- every rank runs the same collectives in the same order (eval and the step's loss
  all-reduce included); only writing files and printing are rank 0's alone;
- a decision (stop, skip a non-finite step) is taken from all-reduced numbers, so all
  ranks take it together.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as td
from torch import nn

from gpt2lab.model import resolve_device


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs, samples and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> Dist:
    """Join the process group when launched by torchrun; else a single-process Dist."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Dist(device=resolve_device(device))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not td.is_initialized():
        td.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank=rank, local_rank=local_rank, world_size=world, device=dev)


def teardown(dist: Dist) -> None:
    if dist.enabled and td.is_initialized():
        td.destroy_process_group()


def wrap(model: nn.Module, dist: Dist, fsdp: bool) -> nn.Module:
    """DDP (each rank a full copy, gradients averaged) or FSDP (parameters sharded)."""
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        for block in model.blocks:
            fully_shard(block)
        return fully_shard(model)
    if not dist.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [dist.device.index] if dist.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside torch.compile (`_orig_mod`) and DDP (`module`) wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def no_sync(model: nn.Module, last_micro_step: bool):
    """DDP's `no_sync` on all but the last micro-batch: gradients all-reduce once per step."""
    if last_micro_step or not hasattr(model, "no_sync"):
        return contextlib.nullcontext()
    return model.no_sync()


def all_reduce_sum(tensor: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Sum over ranks, in place (identity on one process)."""
    if dist.enabled:
        td.all_reduce(tensor, op=td.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Elementwise max over ranks, in place (identity on one process)."""
    if dist.enabled:
        td.all_reduce(tensor, op=td.ReduceOp.MAX)
    return tensor


def barrier(dist: Dist) -> None:
    if dist.enabled:
        td.barrier()
