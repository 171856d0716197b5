"""Options shared by the entry points mean the same everywhere: ``--device``, ``--debug``, ``--batch-size``."""
from __future__ import annotations

import argparse

import pytest
import torch

import convert
import entrypoint
import datasets.errors
import models.device
import preprocessing
import training.engine
from datasets.errors import UsageError
from evaluation import cli
from training.cli import build_parser as train_parser


class _Loaded(Exception):
    """Stops a run at the model loading, once the device is known."""


def _stop_at_load(monkeypatch) -> tuple[list, list]:
    """The ``--device`` values resolved and the devices the model is then loaded on."""
    names, devices = [], []

    def resolve(name):
        names.append(name)
        return models.device.resolve_device(name)

    def load_embedder(path, untrained=False, device="cpu"):
        devices.append(device)
        raise _Loaded

    monkeypatch.setattr(cli, "resolve_device", resolve)
    monkeypatch.setattr(cli, "load_embedder", load_embedder)
    return names, devices


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return parser._option_string_actions


def test_one_device_resolution_for_every_entry_point():
    assert cli.resolve_device is models.device.resolve_device is training.engine.resolve_device


@pytest.mark.parametrize("cuda, expected", [(False, "cpu"), (True, "cuda")])
def test_auto_is_cuda_when_available_else_cpu(monkeypatch, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert models.device.resolve_device("auto") == torch.device(expected)
    assert models.device.resolve_device("cpu") == torch.device("cpu")


def test_bad_or_missing_devices_are_usage_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="--device cuda:1: CUDA is not available"):
        models.device.resolve_device("cuda:1")
    with pytest.raises(UsageError, match="--device 'gpu7': not a device"):
        models.device.resolve_device("gpu7")


def test_device_defaults_to_auto_in_train_evaluate_and_predict():
    from training.config import TrainConfig
    assert TrainConfig().device == "auto"
    assert cli.evaluate_parser().parse_args(["--checkpoint", "c.pth", "--gallery", "g.csv"]).device == "auto"
    assert cli.parse_predict_args(["--checkpoint", "c.pth", "--gallery", "g.npz", "x.npy"]).device == "auto"
    helps = {_options(p)["--device"].help for p in (cli.evaluate_parser(), cli.predict_parser(), train_parser())}
    assert all(h.startswith(models.device.DEVICE_HELP) for h in helps)


@pytest.mark.parametrize("cuda, expected", [(False, "cpu"), (True, "cuda")])
def test_predict_resolves_its_default_device_through_the_shared_function(monkeypatch, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    names, devices = _stop_at_load(monkeypatch)
    with pytest.raises(_Loaded):
        cli.predict_main(["--checkpoint", "c.pth", "--gallery", "g.npz", "x.npy"])
    assert names == ["auto"] and devices == [torch.device(expected)]


@pytest.mark.parametrize("cuda, expected", [(False, "cpu"), (True, "cuda")])
def test_evaluate_resolves_its_default_device_through_the_shared_function(monkeypatch, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    names, devices = _stop_at_load(monkeypatch)
    with pytest.raises(_Loaded):
        cli.evaluate_main(["--checkpoint", "c.pth", "--gallery", "g.csv"])
    assert names == ["auto"] and devices == [torch.device(expected)]


def test_predict_enrolment_resolves_the_device_alike(monkeypatch):
    names, devices = _stop_at_load(monkeypatch)
    with pytest.raises(_Loaded):
        cli.predict_main(["--checkpoint", "c.pth", "--gallery", "g.npz", "--remove-gloss", "hello", "--device", "cpu"])
    assert names == ["cpu"] and devices == [torch.device("cpu")]


def test_batch_size_is_one_option_with_one_default_in_evaluate_and_predict(monkeypatch):
    from evaluation.inference import EMBED_BATCH
    evaluate = cli.evaluate_parser().parse_args(["--checkpoint", "c.pth", "--gallery", "g.csv"])
    predict = cli.parse_predict_args(["--checkpoint", "c.pth", "--gallery", "g.npz", "x.npy"])
    assert evaluate.batch_size == predict.batch_size == EMBED_BATCH
    assert cli.parse_predict_args(["--checkpoint", "c.pth", "--gallery", "g.npz", "--batch-size", "7",
                                   "x.npy"]).batch_size == 7
    assert len({_options(p)["--batch-size"].help for p in (cli.evaluate_parser(), cli.predict_parser())}) == 1
    for extra in (["x.npy"], ["--enrol", "hello", "x.npy"]):  # refused before any checkpoint or input is read
        with pytest.raises(UsageError, match="--batch-size must be >= 1, got 0"):
            cli.predict_main(["--checkpoint", "missing.pth", "--gallery", "g.npz", "--batch-size", "0", *extra])


def test_debug_is_one_flag_with_one_meaning():
    parsers = [train_parser(), cli.evaluate_parser(), cli.predict_parser(), convert.build_parser(),
               preprocessing._common_options()]
    for parser in parsers:
        action = _options(parser)["--debug"]
        assert action.help == datasets.errors.DEBUG_HELP and action.nargs == 0 and action.default is False


def test_spoter_debug_counts_as_debug(monkeypatch):
    monkeypatch.delenv("SPOTER_DEBUG", raising=False)
    assert not entrypoint.debug_requested([]) and entrypoint.debug_requested(["--debug"])
    monkeypatch.setenv("SPOTER_DEBUG", "0")
    assert not entrypoint.debug_requested([])
    monkeypatch.setenv("SPOTER_DEBUG", "1")
    assert entrypoint.debug_requested([])
    assert cli.parse_predict_args(["--checkpoint", "c.pth", "--gallery", "g.npz", "x.npy"]).debug is True


def test_batch_size_is_spelled_alike():
    assert _options(train_parser())["--batch-size"].dest == "batch_size"
    assert _options(cli.evaluate_parser())["--batch-size"].dest == "batch_size"
