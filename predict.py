"""Recognise signs in videos or landmark files against a gallery: ``python predict.py --help``."""
from __future__ import annotations

import sys

from entrypoint import run_cli


def main(argv=None) -> int:
    from evaluation.cli import predict_main
    return predict_main(argv)


if __name__ == "__main__":
    sys.exit(run_cli(main))
