"""EMA of the weights (``--ema_decay``): the formula, what is evaluated and saved, resuming."""
import dataclasses

import pytest
import torch

from datasets.errors import DataError, UsageError
from models import SpoterConfig, build_model
from models.checkpoint import load_checkpoint
from training import engine
from training.config import TrainConfig
from training.data import build_eval_dataset, load_training_data
from training.engine import train
from training.weight_average import WeightAverage

from tests.training.test_training_correctness import _config, tiny_csvs  # noqa: F401  (fixture)


def test_average_follows_the_formula_with_its_warm_up():
    model = torch.nn.Linear(3, 2)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    average = WeightAverage(model, decay=0.9)
    expected = {k: v.clone() for k, v in start.items()}
    for step in range(1, 40):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        keep = min(0.9, (1 + step) / (10 + step))     # the ramp, n = updates so far
        expected = {k: keep * expected[k] + (1 - keep) * v for k, v in model.state_dict().items()}
        average.update(model)
    for name, value in average.model.state_dict().items():
        assert torch.allclose(value, expected[name], atol=1e-6)
        assert not torch.allclose(value, model.state_dict()[name])  # an average, not a copy of the last weights
    assert all(not p.requires_grad for p in average.model.parameters())


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_decay_outside_the_open_interval_is_refused(decay):
    with pytest.raises(ValueError, match="EMA decay"):
        WeightAverage(torch.nn.Linear(2, 2), decay)


@pytest.mark.parametrize("decay", [1.0, -0.1, float("nan")])
def test_ema_flag_is_checked_up_front(decay):
    with pytest.raises(UsageError, match="--ema_decay"):
        TrainConfig(ema_decay=decay).check()


def test_the_average_is_what_is_evaluated_saved_and_resumed(tiny_csvs, tmp_path):  # noqa: F811
    config = _config(tiny_csvs, tmp_path, loss="cosface", distance="cosine", epochs=1, tracker="none",
                     ema_decay=0.8, report_untrained=False)
    train(config)
    saved = load_checkpoint(tmp_path / "t" / "last.pth")
    assert saved["weight_average"]["updates"] == 3                     # epoch_iters optimiser steps
    trained, averaged = saved["trained_state_dict"], saved["state_dict"]
    assert any(not torch.equal(trained[k], averaged[k]) for k in averaged if averaged[k].is_floating_point())

    # The logged figures are those of the saved (averaged) weights, which evaluate.py and export load.
    model = build_model(SpoterConfig.from_dict(saved["model_config"]))
    model.load_state_dict(averaged)
    data = load_training_data(config)
    again, _ = engine.evaluate_epoch(model, data, build_eval_dataset(data.train, config),
                                  build_eval_dataset(data.val, config), torch.device("cpu"), config)
    assert again["val_silhouette"] == pytest.approx(saved["metrics"]["val_silhouette"], abs=1e-6)

    # Resuming continues both the raw weights and the average.
    train(dataclasses.replace(config, epochs=2, resume=True))
    resumed = load_checkpoint(tmp_path / "t" / "last.pth")
    assert resumed["epoch"] == 1 and resumed["weight_average"]["updates"] == 6


def test_resuming_with_ema_from_a_run_without_it_is_refused(tiny_csvs, tmp_path):  # noqa: F811
    config = _config(tiny_csvs, tmp_path, epochs=1, tracker="none", report_untrained=False)
    train(config)
    with pytest.raises(DataError, match="weight_average"):
        train(dataclasses.replace(config, epochs=2, resume=True, ema_decay=0.9))


def test_ema_training_under_cpu_bf16_autocast_keeps_a_float32_average(tiny_csvs, tmp_path):  # noqa: F811
    """The CPU stand-in for CUDA mixed precision: the average stays float32 and finite."""
    config = _config(tiny_csvs, tmp_path, epochs=1, tracker="none", ema_decay=0.9, amp="bf16",
                     report_untrained=False)
    metrics = train(config)
    saved = load_checkpoint(tmp_path / "t" / "last.pth")
    floats = [v for v in saved["state_dict"].values() if v.is_floating_point()]
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in floats)
    assert saved["weight_average"]["updates"] == 3 and torch.isfinite(torch.tensor(metrics["train_loss"]))
