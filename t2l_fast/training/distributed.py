"""Multi-process training under torchrun: one process per GPU (NCCL) or per CPU process (gloo).

The in-batch losses need the *global* batch, so embeddings are all-gathered with their gradients. Every rank then
computes the same global loss; the gather's backward sums the W ranks' identical gradients of each rank's own
embeddings (W x the single-process gradient), and averaging the parameter gradients over ranks divides by W again:
the update equals one process's on the whole global batch. Gradients are averaged explicitly after backward
(`average_gradients`) rather than by DistributedDataParallel, whose hooks only arm through `forward()` while the
trainer calls the model's encoders directly.

Decisions every rank must share (skip a step, stop on a signal) go through `agree`, so no rank is left waiting in a
collective the others never enter. With one process every helper is a no-op.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import T2LError


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None = None) -> Distributed:
    """The process group torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK), or one process.

    device: "cpu" or "cuda" (default: cuda when available). Under torchrun on GPUs each rank takes cuda:LOCAL_RANK.
    """
    kind = device or ("cuda" if torch.cuda.is_available() else "cpu")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed(device=torch.device(kind))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if kind.startswith("cuda"):
        if local_rank >= torch.cuda.device_count():
            raise T2LError(f"LOCAL_RANK={local_rank}, but this machine shows {torch.cuda.device_count()} CUDA GPU(s): "
                           f"start at most that many processes per node (torchrun --nproc_per_node), or train on "
                           f"the CPU with device: cpu")
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return Distributed(rank=dist.get_rank(), world=dist.get_world_size(), device=chosen)


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the running process group, or (0, 1)."""
    return (dist.get_rank(), dist.get_world_size()) if active() else (0, 1)


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """[b, ...] on each rank -> [W*b, ...] (rank order), differentiable with respect to this rank's part."""
    if not active():
        return x
    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():  # deprecated in torch 2.14 for an API torch 2.6 lacks; same backward (a sum)
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(all_gather(x.contiguous()), dim=0)


def gather(x: torch.Tensor) -> torch.Tensor:
    """[b, ...] on each rank -> [W*b, ...] (rank order), without gradients (labels, indices)."""
    if not active():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def gather_objects(obj: Any) -> list[Any]:
    """[obj of rank 0, obj of rank 1, ...] on every rank (picklable objects: RNG states, CPU tensors)."""
    if not active():
        return [obj]
    objects: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(objects, obj)
    return objects


def average_gradients(parameters: Sequence[torch.nn.Parameter]) -> None:
    """Average the gradients of `parameters` over ranks, in one flat all-reduce (missing grads count as zero)."""
    if not active():
        return
    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_parameters(parameters: Sequence[torch.nn.Parameter]) -> None:
    """Copy rank 0's values of `parameters` to every rank."""
    if not active():
        return
    with torch.no_grad():
        for p in parameters:
            dist.broadcast(p.data, src=0)


def agree(value: int) -> int:
    """The largest of the ranks' `value`s, on every rank (a flag: 1 on any rank -> 1 everywhere)."""
    if not active():
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    flag = torch.tensor([value], dtype=torch.int64, device=device)  # NCCL reduces GPU tensors only
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item())


def barrier() -> None:
    if active():
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
