"""Which torch device a run uses: one meaning of ``--device`` for every entry point."""
from __future__ import annotations

import torch

from datasets.errors import UsageError


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when there is one, else the CPU; a CUDA device asked for on a machine without one is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:  # torch lists every device type it knows; the usual ones are enough here
        raise UsageError(f"--device {name!r}: not a device; use auto, cpu, cuda or cuda:N") from None
