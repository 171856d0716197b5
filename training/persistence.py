"""The run folder's files: creating it, what each epoch writes, resuming, initial weights.

The checkpoint *format* (what a model file holds, loading it safely) belongs to
:mod:`models.checkpoint`; this module adds the training state a run needs to continue
(optimiser, schedulers, RNG, the weight average, the ``best.pth`` selection).
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from datasets.errors import DataError, UsageError
from models.checkpoint import checkpoint_payload, error_detail, load_checkpoint
from training import distributed as dist_utils
from training.weight_average import WeightAverage

log = logging.getLogger(__name__)


def prepare_out_dir(out_dir: Path) -> None:
    """Create the run folder before any slow work (an unusable --out_dir fails at once).

    Temporary files left by a killed run (``.<name>.*.tmp`` beside the files that
    :func:`datasets.atomic.atomic_write` renames into place) are removed; the files
    under their final names are always complete.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocker = next((p for p in (out_dir, *out_dir.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file, not a folder" if blocker is not None else (error.strerror or str(error))
        raise DataError(f"--out_dir {out_dir}: cannot create the run folder ({reason})") from None
    for leftover in out_dir.glob(".*.tmp"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)


def load_initial_weights(model: torch.nn.Module, path: str) -> None:
    """Start from a pre-trained checkpoint's weights (fine-tuning); every tensor must match in shape.

    A classification head of another vocabulary is the one part allowed to differ: it is
    left at its fresh initialisation.
    """
    state = load_checkpoint(path)["state_dict"]
    own = model.state_dict()
    mismatched = [k for k in own if k in state and state[k].shape != own[k].shape and not k.startswith("head.")]
    missing = [k for k in own if k not in state]
    if mismatched or missing:
        names = ", ".join((mismatched + missing)[:5])
        raise UsageError(f"--init_checkpoint {path}: its weights do not fit this architecture ({names})")
    model.load_state_dict({k: v for k, v in state.items() if k in own and v.shape == own[k].shape}, strict=False)
    log.info("initial weights from %s", path)


def resume_state(path: Path, model, optimizer, plateau, hard_scheduler, best, criterion=None,
                 average: WeightAverage | None = None) -> tuple[int, list]:
    """Load ``last.pth`` into the training objects and ``best``; returns (next epoch, history).

    A checkpoint of another architecture or one without the training state is refused
    with one line instead of a half-restored run.
    """
    state = load_checkpoint(path)
    missing = [k for k in ("optimizer", "scheduler", "hard_scheduler", "torch_rng", "epoch", "best_metric", "history")
               if k not in state]
    if average is not None and "weight_average" not in state:
        missing.append("weight_average (the run was trained without --ema_decay)")
    if missing:
        raise DataError(f"{path}: cannot resume from it: no training state ({', '.join(missing)} missing)")
    try:
        if average is not None:  # state_dict holds the average; the raw weights are kept beside it
            average.load_state_dict(state["weight_average"])
            dist_utils.unwrap(model).load_state_dict(state["trained_state_dict"])
        else:  # (a run resumed without its EMA continues from the raw weights)
            dist_utils.unwrap(model).load_state_dict(state.get("trained_state_dict", state["state_dict"]))
        if criterion is not None:
            criterion.load_state_dict(state.get("criterion", {}))
        optimizer.load_state_dict(state["optimizer"])
        plateau.load_state_dict(state["scheduler"])
        hard_scheduler.load_state_dict(state["hard_scheduler"])
        torch.set_rng_state(state["torch_rng"])
        selection = state.get("selection", {})
        if selection.get("metric", best.metric) != best.metric:
            raise ValueError(f"best.pth was chosen by {selection['metric']}, this run selects by {best.metric}")
        best.value, best.epoch = float(state["best_metric"]), int(selection.get("epoch", -1))
        return int(state["epoch"]) + 1, list(state["history"])
    except (RuntimeError, ValueError, TypeError, KeyError) as error:
        raise DataError(f"{path}: cannot resume from it: it does not match this run's model or settings "
                        f"({error_detail(error)}); use another --out_dir/--experiment_name or drop --resume") from None


def epoch_checkpoint(run, epoch: int, metrics: dict) -> dict:
    """What ``best.pth``/``last.pth`` hold after ``epoch``: the model file of
    :func:`models.checkpoint.checkpoint_payload` plus the state to resume from.

    With an EMA of the weights, ``state_dict`` is the average (what was evaluated and what
    evaluation and export load); the raw weights go to ``trained_state_dict`` for resuming."""
    trained = dist_utils.unwrap(run.model).state_dict()
    average = run.average
    extra = {"trained_state_dict": trained, "weight_average": average.state_dict()} if average is not None else {}
    return checkpoint_payload(
        average.model.state_dict() if average is not None else trained, run.config.to_dict(),
        dict(run.model_config.__dict__), run.data.label_names, run.config.preprocessing(), metrics,
        selection=run.best.to_dict(), history=run.history, epoch=epoch, best_metric=run.best.value,
        optimizer=run.optimizer.state_dict(), scheduler=run.plateau.state_dict(),
        hard_scheduler=run.hard_scheduler.state_dict(), torch_rng=torch.get_rng_state(),
        criterion=run.criterion.state_dict() if run.criterion is not None else {}, **extra)
