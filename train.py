"""Train a SPOTER embedding model: ``python train.py --help``."""
from __future__ import annotations

import logging
import sys

from entrypoint import run_cli


def main(argv=None) -> int:
    from training.cli import config_from_args
    from training.engine import train
    config, args = config_from_args(argv)
    metrics = train(config)
    if metrics:
        shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith(("val_", "train_silhouette"))}
        print("final: " + " ".join(f"{k}={v}" for k, v in shown.items()))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
