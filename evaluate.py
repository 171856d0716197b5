"""Evaluate a checkpoint: kNN top-1/top-5, cross-signer, few-shot, per gloss. ``python evaluate.py --help``."""
from __future__ import annotations

import sys

from entrypoint import run_cli


def main(argv=None) -> int:
    from evaluation.cli import evaluate_main
    return evaluate_main(argv)


if __name__ == "__main__":
    sys.exit(run_cli(main))
