"""Data-parallel runs under `torchrun --nproc_per_node=N -m compress run RECIPE`.

Rank 0 runs the pipeline as usual and is the only process that writes to the run folder. The other
ranks follow it stage by stage: they take part in every stage that trains (`Stage.every_rank`), in a
private scratch folder, and wait at a barrier while rank 0 runs the others (export, benchmark,
report), so that they neither write twice nor disturb latency measurements. Inside `fit`, the model
and the objective's own parameters (projectors) are wrapped in DistributedDataParallel, each rank
sees its shard of the training set (DistributedSampler), and rank 0's buffers and validation metric
are broadcast before every decision (best epoch, early stopping), so every rank takes the same path.
The backend is gloo on CPU and nccl when CUDA is available. torchrun stops every rank when one fails.
"""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["world", "is_main", "init_from_env", "broadcast_object", "barrier", "sync_state", "state_digest", "ranks_agree"]

TIMEOUT = timedelta(hours=12)  # a follower waits at a barrier while rank 0 runs a long stage


def world() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside a distributed run."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def active() -> bool:
    return world()[1] > 1


def init_from_env() -> bool:
    """Join the process group that torchrun describes in the environment (WORLD_SIZE > 1); False when alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return active()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend, timeout=TIMEOUT)
    return True


def local_world_size() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if active() else 1


def broadcast_object(obj: Any = None) -> Any:
    """Rank 0's `obj` on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if active():
        dist.barrier()


def sync_state(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (BatchNorm statistics drift apart per shard)."""
    if not active():
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def state_digest(module: nn.Module) -> str:
    """sha256 of every tensor in the state dict, in order."""
    digest = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def ranks_agree(module: nn.Module) -> bool:
    """True when every rank holds exactly the same weights and buffers (always True when alone)."""
    if not active():
        return True
    digests: list[Any] = [None] * world()[1]
    dist.all_gather_object(digests, state_digest(module))
    return len(set(digests)) == 1
