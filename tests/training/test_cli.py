"""``train.py``'s flags: the published snake_case names and their kebab-case aliases parse alike."""
from __future__ import annotations

import json
from dataclasses import fields

import pytest

import train
from datasets.errors import UsageError
from models.checkpoint import load_checkpoint
from training.cli import build_parser, config_from_args
from training.config import TrainConfig


def kebab(argv: list[str]) -> list[str]:
    """The same command line with every flag spelled in kebab case (values untouched)."""
    return [a.replace("_", "-") if a.startswith("--") else a for a in argv]


SNAKE = ["--training_set_path", "a.csv", "b.csv", "--validation_set_path", "v.csv", "--epochs", "1",
         "--batch_size", "16", "--samples_per_class", "2", "--hard_triplet_mining", "batch_hard",
         "--no-report_untrained", "--canonical_handedness", "--ema_decay=0.99", "--out_dir", "runs/x_y"]


def test_kebab_and_snake_spellings_parse_to_the_same_config():
    snake, _ = config_from_args(SNAKE)
    assert kebab(SNAKE)[:2] == ["--training-set-path", "a.csv"] and "runs/x_y" in kebab(SNAKE)
    assert config_from_args(kebab(SNAKE))[0] == snake
    assert snake.training_set_path == ["a.csv", "b.csv"] and snake.batch_size == 16 and snake.ema_decay == 0.99
    assert snake.hard_triplet_mining == "batch_hard" and snake.report_untrained is False
    # the two spellings mix, and the later flag wins whichever spelling each has
    mixed, _ = config_from_args(["--batch-size", "8", "--batch_size", "12", "--epochs", "3"])
    assert mixed.batch_size == 12 and mixed.epochs == 3
    assert config_from_args(["--batch_size", "8", "--batch-size", "12"])[0].batch_size == 12


def test_minimal_training_command_in_both_spellings():
    one = config_from_args(["--training_set_path", "X", "--epochs", "1"])[0]
    other = config_from_args(["--training-set-path", "X", "--epochs", "1"])[0]
    assert one == other and one.training_set_path == "X" and one.epochs == 1


def test_every_field_has_both_spellings_and_one_destination():
    parser = build_parser()
    for field in fields(TrainConfig):
        for flag in (f"--{field.name}", f"--{field.name.replace('_', '-')}"):
            assert parser._option_string_actions[flag].dest == field.name, flag


@pytest.mark.parametrize("flags, expected", [
    (["--mirror_average"], True), (["--mirror-average"], True),
    (["--no-mirror_average"], False), (["--no-mirror-average"], False),
    (["--mirror-average", "--no-mirror_average"], False), (["--no-mirror-average", "--mirror_average"], True),
    ([], TrainConfig().mirror_average),
])
def test_boolean_flag_takes_both_spellings_and_their_negations(flags, expected):
    assert config_from_args(flags)[0].mirror_average is expected


def test_a_config_file_survives_unless_a_flag_of_either_spelling_overrides_it(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"batch_size": 24, "mirror_average": True, "normalize_embeddings": True}))
    config, _ = config_from_args(["--config", str(path), "--no-normalize-embeddings"])
    assert (config.batch_size, config.mirror_average, config.normalize_embeddings) == (24, True, False)


def test_config_files_keep_snake_case_keys(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"batch-size": 24}))
    with pytest.raises(UsageError, match="unknown config keys: batch-size"):
        config_from_args(["--config", str(path)])
    assert "batch_size" in TrainConfig().to_dict() and not any("-" in k for k in TrainConfig().to_dict())


def test_help_names_both_spellings_on_one_line_and_usage_the_published_ones():
    text = build_parser().format_help()
    assert "--batch_size, --batch-size INT" in text
    assert "--training_set_path, --training-set-path PATH [PATH ...]" in text
    assert "--[no-]mirror_average, --[no-]mirror-average" in text
    assert "--epochs INT" in text and "--epochs, --epochs" not in text and "--[no-]resume " in text
    usage = build_parser().format_usage()
    assert "[--mirror_average | --no-mirror_average]" in usage and "--batch-size" not in usage


def test_train_main_runs_with_kebab_flags(tiny_synthetic_dataset, tmp_path, capsys):
    argv = ["--training-set-path", str(tiny_synthetic_dataset / "tiny_train.csv"),
            "--validation-set-path", str(tiny_synthetic_dataset / "tiny_val.csv"), "--out-dir", str(tmp_path),
            "--experiment-name", "kebab", "--tracker", "none", "--epochs", "1", "--epoch-iters", "1",
            "--batch-size", "8", "--samples-per-class", "2", "--num-encoder-layers", "1",
            "--num-decoder-layers", "1", "--dim-feedforward", "16", "--vector-length", "8",
            "--no-report-untrained", "--mirror-average", "--device", "cpu"]
    assert train.main(argv) == 0
    saved = load_checkpoint(tmp_path / "kebab" / "last.pth")["config"]
    assert saved == config_from_args(argv)[0].to_dict()       # saved with the snake_case keys
    assert saved["batch_size"] == 8 and saved["mirror_average"] is True and saved["report_untrained"] is False
    assert "trained:" in capsys.readouterr().out
