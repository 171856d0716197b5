"""Train a SPOTER embedding model: ``python train.py --help``."""
from __future__ import annotations

import logging
import sys

from entrypoint import active_allocator, run_cli, use_training_allocator


def main(argv=None) -> int:
    from training.cli import config_from_args
    from training.engine import train
    config, args = config_from_args(argv)
    logging.getLogger("train").info("memory allocator: %s", active_allocator())
    metrics = train(config)
    if metrics:
        for prefix, title in (("", "trained"), ("untrained_", "untrained")):
            shown = {k[len(prefix):]: v for k, v in metrics.items()
                     if k.startswith(prefix + "val_") or k == prefix + "train_silhouette"}
            if shown:
                print(f"{title:>9}: " + " ".join(f"{k}={v:.3f}" for k, v in shown.items()))
    return 0


if __name__ == "__main__":
    use_training_allocator()
    sys.exit(run_cli(main))
