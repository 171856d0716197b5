"""Distributed data parallel under ``torchrun``; a no-op for single-process runs.

Mining stays per process: every rank trains on whole P×K batches of its own (the
epoch's batch list is dealt out round-robin), so every triplet lies within one
rank's batch and no embeddings have to be gathered. DDP then averages gradients,
which is the same as averaging the per-batch losses of all ranks.

Only rank 0 evaluates, plots and saves. The other ranks would otherwise run ahead into
the next epoch's gradient all-reduce and fail there once rank 0's work outlasts the
collective timeout (torch's default, 10 to 30 minutes; a large validation set's kNN and
t-SNE can take longer). So every epoch starts with :func:`wait_for_main`, a barrier on a
group of its own whose timeout is meant for that wait, while a true hang in a collective
still fails after the ordinary timeout. Both are set in seconds by environment variables,
as torchrun passes its settings: ``SPOTER_DDP_TIMEOUT`` (collectives; default torch's)
and ``SPOTER_DDP_WAIT_TIMEOUT`` (waiting for rank 0; default 6 hours).
"""
from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

COLLECTIVE_TIMEOUT_ENV = "SPOTER_DDP_TIMEOUT"
WAIT_TIMEOUT_ENV = "SPOTER_DDP_WAIT_TIMEOUT"
DEFAULT_WAIT_TIMEOUT = timedelta(hours=6)
_wait_group = None  # the gloo group wait_for_main meets on (created in step on every rank)


def enabled() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def _seconds_from_env(name: str) -> timedelta | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"environment variable {name}={text!r}: must be a positive number of seconds")
    return timedelta(seconds=seconds)


def collective_timeout() -> timedelta | None:
    """The process group's timeout from ``SPOTER_DDP_TIMEOUT``; None keeps torch's default."""
    return _seconds_from_env(COLLECTIVE_TIMEOUT_ENV)


def wait_timeout() -> timedelta:
    """How long ranks other than 0 wait for rank 0's evaluation (``SPOTER_DDP_WAIT_TIMEOUT``)."""
    return _seconds_from_env(WAIT_TIMEOUT_ENV) or DEFAULT_WAIT_TIMEOUT


def setup(timeout: timedelta | None = None) -> None:
    """Join the process group under torchrun (``timeout``: collectives, default :func:`collective_timeout`)."""
    if enabled() and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        timeout = timeout or collective_timeout()
        dist.init_process_group(backend, **({"timeout": timeout} if timeout is not None else {}))


def wait_for_main(timeout: timedelta | None = None) -> None:
    """Every rank waits here until all arrive, up to ``timeout`` (default :func:`wait_timeout`).

    Called where rank 0 may still be evaluating or saving while the others are done, so
    that they wait here, with a timeout that fits that work, instead of inside the next
    collective. The barrier runs on a gloo group of its own (created on first use, at the
    same call on every rank), so it works on CPU and beside NCCL, and the ordinary
    collective timeout stays short enough to catch real hangs.
    """
    global _wait_group
    if not dist.is_initialized():
        return
    timeout = timeout or wait_timeout()
    if _wait_group is None:
        _wait_group = dist.new_group(backend="gloo", timeout=timeout)
    dist.monitored_barrier(group=_wait_group, timeout=timeout, wait_all_ranks=True)


def cleanup() -> None:
    """Leave the process group once every rank is done (rank 0's last evaluation included)."""
    global _wait_group
    if dist.is_initialized():
        wait_for_main()
        dist.destroy_process_group()
        _wait_group = None


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


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Give every rank rank 0's values of ``module``'s parameters (DDP does this for the model only)."""
    if not dist.is_initialized():
        return
    with torch.no_grad():
        for parameter in module.parameters():
            dist.broadcast(parameter.data, src=0)


def average_gradients(module: torch.nn.Module) -> None:
    """Average ``module``'s gradients over the ranks (for trained parts DDP does not wrap, e.g. a loss's own)."""
    if not dist.is_initialized():
        return
    for parameter in module.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world_size()


def shard(batches: list) -> list:
    """This rank's share of the epoch's batches; every rank gets the same number of steps."""
    if not dist.is_initialized():
        return batches
    per_rank = len(batches) // world_size()
    return batches[rank(): per_rank * world_size(): world_size()]
