#!/usr/bin/env bash
# Train a SPOTER embedding model with a preset from configs/ (default: configs/builtin.json).
#   ./train.sh                      short run on the built-in synthetic sign data (generated when missing)
#   ./train.sh --epochs 50 ...      the same with flags overridden (flags win over the preset)
#   ./train.sh --config configs/published.json --training_set_path WLASL100_train.csv \
#              --validation_set_path WLASL100_val.csv   # another preset, your data
# Environment: PYTHON (interpreter), DATA_DIR (built-in data folder), TRAIN_ARGS (extra flags),
# SPOTER_ALLOCATOR=system (train with the C library's malloc instead of the installed mimalloc).
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
DATA_DIR="${DATA_DIR:-data/builtin}"
# configs/builtin.json: a compact SPOTER (2+2 layers, feed-forward 256) that trains in a few
# minutes on 2 CPU cores. train.py's own defaults are the published architecture (6+6, 2048).
# A later --config on the command line replaces this preset.
DEFAULTS=(--config configs/builtin.json)
case " $* " in
  *" --training_set_path"* | *" --training-set-path"*) ;;  # either spelling: the data are given
  *)
    if [ ! -f "$DATA_DIR/builtin_train.csv" ]; then
      "$PYTHON" -m datasets.synthetic "$DATA_DIR" --name builtin
    fi
    DEFAULTS+=(--training_set_path "$DATA_DIR/builtin_train.csv" --validation_set_path "$DATA_DIR/builtin_val.csv")
    ;;
esac
# shellcheck disable=SC2086
exec "$PYTHON" train.py "${DEFAULTS[@]}" ${TRAIN_ARGS:-} "$@"
