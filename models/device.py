"""Which torch device a run uses: one ``--device`` option and one meaning of it for every entry point."""
from __future__ import annotations

import torch

from datasets.errors import UsageError

DEVICE_HELP = "auto (cuda when available, else cpu), cpu, cuda or cuda:N"


def add_device_option(parser) -> None:
    """``--device`` (default ``auto``), resolved by :func:`resolve_device`."""
    parser.add_argument("--device", default="auto", help=f"{DEVICE_HELP} (default: auto)")


def resolve_device(name: str) -> torch.device:
    """The torch device of a ``--device`` value: ``auto`` = cuda when available, else cpu.

    The one resolution of ``--device`` for train.py (``TrainConfig.device``), evaluate.py and
    predict.py; a bad or unavailable device is a usage error.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:  # torch lists every device type it knows; the usual ones are enough here
        raise UsageError(f"--device {name!r}: not a device; use {DEVICE_HELP}") from None
