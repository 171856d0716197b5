"""Command-line parsing for ``train.py``: every TrainConfig field is a flag (published names, kebab aliases)."""
from __future__ import annotations

import argparse
import json
import typing
from dataclasses import fields
from pathlib import Path

from datasets.errors import UsageError, add_debug_option
from models.device import DEVICE_HELP
from training.config import PATH_LIST_FIELDS, TrainConfig

HELP = {
    "hard_triplet_mining": "in_batch = batch-all mining (published), batch_hard = hardest positive/negative per "
                           "anchor, None = batch-all without easy-triplet filtering",
    "positional_encoding": "learned (per frame, default), sinusoidal, or single (the published single vector: "
                           "blind to frame order)",
    "training_set_path": "SPOTER CSV, or a landmark folder with index.json/index.csv; several are joined "
                         "(glosses merged by name, signer ids kept)",
    "validation_set_path": "SPOTER CSV or landmark folder, or several; empty = no validation",
    "tracker": "local (metrics.jsonl, metrics.csv, curves.png, plots under the run folder), clearml (those and a "
               "ClearML task), or none (console only; checkpoints are still written)",
    "amp": "mixed precision: auto = fp16 on CUDA, off on CPU; bf16 also works on CPU (the stand-in for the CUDA path)",
    "select_metric": "the metric that chooses best.pth among evaluated epochs: auto = val_cross_signer_top1 when "
                     "the validation signers are known, else val_top1 (val_silhouette = the published choice)",
    "num_classes": "gloss count of the data (0 = read from it); with --classification_model, the number of "
                   "class outputs (at least the data's gloss count)",
    "length_batching": "each window of 16 batches is regrouped so that clips of similar length share a batch "
                       "(random: any clips; pk: whole K-clip gloss groups, still P distinct glosses a batch), and "
                       "batches are padded to a multiple of 16 frames (less padding, fewer kernel shapes); the same "
                       "clips per epoch, only their grouping changes. Hard-mined batches keep their grouping and "
                       "are only padded to the multiple",
    "ema_decay": "keep an exponential moving average of the weights (e.g. 0.995) and evaluate, select and save "
                 "it instead of the last step's weights; 0 = off",
    "mirror_average": "outside training (evaluation, galleries, export), embed each clip and its left/right "
                      "mirror and average the two: the same sign with the other dominant hand gets the same "
                      "embedding; training is unchanged",
    "time_warp_prob": "probability of re-timing a training clip within its length (speed up to +-20 %% about "
                      "its centre and a smooth warp of its rhythm, both scaled by --augmentation_strength)",
    "hand_dropout_prob": "probability of hiding one hand of a training clip over a random stretch of 20-100 %% "
                         "of its frames, as the landmark detector does",
    "temporal_conv_blocks": "residual depthwise Conv1D blocks over the frames before the encoder (local motion "
                            "over a few frames); 0 = none, the published model",
    "temporal_conv_kernel": "the temporal blocks' kernel, an odd number of frames",
    "hand_shape_features": "add, per frame and hand, distances between fingertips, wrist and knuckles over the "
                           "palm length (independent of hand size, position and in-plane rotation)",
    "device": DEVICE_HELP,
    "skip_bad_files": "train on the readable files of a landmark folder, logging the unusable ones (default: "
                      "stop with an error naming the first one)",
}


def spellings(name: str) -> list[str]:
    """A field's flags: the published snake_case one first, then its kebab-case alias (if it differs)."""
    kebab = name.replace("_", "-")
    return [f"--{name}"] + ([f"--{kebab}"] if kebab != name else [])


class _Switch(argparse.BooleanOptionalAction):
    """``--x_y``/``--no-x_y`` and ``--x-y``/``--no-x-y``; the usage line names the published pair only."""

    def format_usage(self) -> str:
        return " | ".join(self.option_strings[:2])


class _HelpFormatter(argparse.HelpFormatter):
    """Both spellings of a flag on one line, the metavar once: ``--batch_size, --batch-size INT``."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, argparse.BooleanOptionalAction):
            return ", ".join("--[no-]" + option[2:] for option in action.option_strings
                             if not option.startswith("--no-"))
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        metavar = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {metavar}"


def build_parser() -> argparse.ArgumentParser:
    # Flags default to None (so a --config file's values survive); help shows TrainConfig's defaults.
    parser = argparse.ArgumentParser(
        description="Train a SPOTER embedding (or classification) model. Every flag takes the published "
                    "snake_case spelling and its kebab-case alias (--batch_size = --batch-size); --config files "
                    "and saved configs use the snake_case keys.",
        formatter_class=_HelpFormatter)
    parser.add_argument("--config", help="JSON file of config values, or a preset's name from configs/ (builtin, "
                                         "published, real); command-line flags override it")
    add_debug_option(parser)
    hints = typing.get_type_hints(TrainConfig)
    for field in fields(TrainConfig):
        kind = hints[field.name]
        flags = spellings(field.name)
        if field.name in PATH_LIST_FIELDS:
            parser.add_argument(*flags, dest=field.name, nargs="+", default=None, metavar="PATH",
                                help=(HELP.get(field.name, "") + f" (default: {field.default!r})").strip())
        elif kind is bool:
            parser.add_argument(*flags, dest=field.name, action=_Switch, default=None,
                                help=(HELP.get(field.name, "") + f" (default: {field.default})").strip())
        else:
            parser.add_argument(*flags, dest=field.name, type=kind, default=None, metavar=kind.__name__.upper(),
                                help=(HELP.get(field.name, "") + f" (default: {field.default})").strip())
    return parser


def config_from_args(argv=None) -> tuple[TrainConfig, argparse.Namespace]:
    parser = build_parser()
    args = parser.parse_args(argv)
    values = read_config_file(args.config) if args.config else {}
    values.update({f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None})
    try:
        return TrainConfig.from_dict(values, source=args.config or "command line"), args
    except ValueError as error:  # a bad key or value type is a usage error, named after its file
        raise UsageError(str(error)) from None


PRESETS = Path(__file__).resolve().parents[1] / "configs"


def read_config_file(path: str) -> dict:
    """The JSON object of a ``--config`` file (or of the preset ``configs/<path>.json``)."""
    if not Path(path).exists() and (PRESETS / f"{path}.json").is_file():
        path = str(PRESETS / f"{path}.json")
    try:
        with open(path, encoding="utf-8") as handle:
            values = json.load(handle)
    except FileNotFoundError:
        raise UsageError(f"--config {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--config {path}: cannot read ({getattr(error, 'strerror', None) or error})") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"--config {path}: invalid JSON at line {error.lineno}, column {error.colno}: "
                         f"{error.msg}") from None
    if not isinstance(values, dict):
        raise UsageError(f"--config {path}: expected a JSON object of config keys, got {type(values).__name__}")
    return values
