"""Distributed data parallel under ``torchrun``; a no-op for single-process runs.

Mining stays per process: every rank trains on whole P×K batches of its own (the
epoch's batch list is dealt out round-robin), so every triplet lies within one
rank's batch and no embeddings have to be gathered. DDP then averages gradients,
which is the same as averaging the per-batch losses of all ranks.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def enabled() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def setup() -> None:
    if enabled() and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)


def cleanup() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def device_for_rank(device: torch.device) -> torch.device:
    if device.type == "cuda" and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return device


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    if not dist.is_initialized():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def shard(batches: list) -> list:
    """This rank's share of the epoch's batches; every rank gets the same number of steps."""
    if not dist.is_initialized():
        return batches
    per_rank = len(batches) // world_size()
    return batches[rank(): per_rank * world_size(): world_size()]
