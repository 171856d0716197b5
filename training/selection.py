"""Which evaluated epoch becomes ``best.pth``: one named metric, chosen for the data at hand."""
from __future__ import annotations

import math
from dataclasses import dataclass

from datasets.errors import UsageError
from training.config import TrainConfig
from training.data import TrainingData


def selection_metric(config: TrainConfig, data: TrainingData) -> str:
    """The metric that chooses ``best.pth`` (``--select_metric``; ``auto`` resolved for this data).

    ``auto`` prefers accuracy on people the query's sign was not learnt from: cross-signer
    top-1 when :func:`training.engine.evaluate_epoch` logs it (every training and validation
    sample names its signer), else validation top-1, else (no validation set) the training silhouette.
    """
    name = config.select_metric
    val_signers = data.val is not None and len(data.val) > 0 and all(
        bool((s.signer_ids != "").all()) for s in (data.train, data.val)) \
        and len(set(data.train.signer_ids) | set(data.val.signer_ids)) > 1
    if name == "auto":
        return "val_cross_signer_top1" if val_signers else "val_top1" if data.val is not None else "train_silhouette"
    if name.startswith("val_") and data.val is None:
        raise UsageError(f"--select_metric {name} needs a validation set (--validation_set_path)")
    if name.startswith("val_cross_signer") and not val_signers:
        raise UsageError(f"--select_metric {name} needs a signer id for every training and validation sample "
                         f"(use val_top1)")
    return name


@dataclass
class BestCheckpoint:
    """Which evaluated epoch ``best.pth`` holds, by one named metric (higher is better).

    Only evaluated epochs compete, so the choice never compares a loss with an accuracy.
    The first evaluated epoch is always kept (even with a NaN score), so ``best.pth``
    exists whenever any epoch was evaluated.
    """

    metric: str
    value: float = -math.inf
    epoch: int = -1

    def offer(self, epoch: int, metrics: dict) -> bool:
        if self.metric not in metrics:
            return False
        value = float(metrics[self.metric])
        if self.epoch >= 0 and not (math.isfinite(value) and value > self.value):
            return False
        self.value, self.epoch = (value if math.isfinite(value) else -math.inf), epoch
        return True

    def to_dict(self) -> dict:
        return {"metric": self.metric, "value": self.value, "epoch": self.epoch}
