"""Exponential moving average (EMA) of a model's weights, kept beside the trained model.

Why: with few people per gloss the weights after the last optimiser step are one noisy
point of a wandering trajectory; the running average of the recent steps is usually a
flatter, better-generalising point of the same run, at the cost of one model copy. When
enabled (``--ema_decay``), the average is the model that is evaluated each epoch, chosen
as ``best.pth`` and exported; the raw weights are kept in the checkpoint only to resume.
"""
from __future__ import annotations

import copy

import torch


class WeightAverage:
    """``average ← d·average + (1−d)·weights`` after every optimiser step.

    ``d`` ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates ``n``, so the
    average is not dominated by the random initial weights in short runs. Buffers that are
    not floating point (e.g. counters) are copied, not averaged.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be between 0 and 1 (exclusive), got {decay!r}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        keep = self.current_decay()
        weights = model.state_dict()
        for name, average in self.model.state_dict().items():
            if average.dtype.is_floating_point:
                average.lerp_(weights[name].to(average.dtype), 1.0 - keep)
            else:
                average.copy_(weights[name])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "weights": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["weights"])
        self.updates = int(state["updates"])
