"""The training path does what its flags say: mixed precision, model selection, flags, presets.

Each test here failed on the code before it: a bf16 training step raised inside the lean
attention's backward pass, ``best.pth`` compared a loss with a silhouette, and several
flags were read by nothing.
"""
import copy
import dataclasses
import json
import math
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch

from augmentations.torch_data import collate
from datasets.errors import UsageError
from datasets.sequences import SequenceSet
from datasets.spoter_csv import write_spoter_csv
from models import SpoterConfig, build_model
from models.checkpoint import load_checkpoint
from models.lean_layers import LeanEncoderLayer
from training import engine
from training.cli import config_from_args
from training.config import TrainConfig
from training.engine import BestCheckpoint, resolve_amp, train, train_one_epoch

REPO = Path(__file__).resolve().parents[2]
TINY = dict(num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32, vector_length=8, batch_size=8,
            samples_per_class=2, epoch_iters=3, eval_every=1, augmentations_prob=0.5, tracker="local")


@pytest.fixture(scope="module")
def tiny_csvs(tmp_path_factory):
    """4 glosses x 6 clips by 3 signers for training and for validation (signer ids known)."""
    folder = tmp_path_factory.mktemp("correctness")
    rng = np.random.default_rng(0)
    for name in ("train", "val"):
        seqs, labels, signers = [], [], []
        for c in range(4):
            direction = np.array([np.cos(c), np.sin(c)], np.float32) * 0.01
            for i in range(6):
                t = int(rng.integers(6, 12))
                base = rng.uniform(0.3, 0.7, size=(1, 54, 2)).astype(np.float32)
                frames = base + np.arange(t, dtype=np.float32)[:, None, None] * direction
                seqs.append(frames + rng.normal(0, 0.002, (t, 54, 2)).astype(np.float32))
                labels.append(c)
                signers.append(f"{name}{i % 3}")
        data = SequenceSet.from_sequences(seqs, labels, ["a", "b", "c", "d"], signer_ids=signers,
                                          video_ids=[f"{name}{i}" for i in range(len(seqs))])
        write_spoter_csv(data, folder / f"{name}.csv")
    return folder


def _config(folder, out, **overrides) -> TrainConfig:
    values = dict(TINY, training_set_path=str(folder / "train.csv"), validation_set_path=str(folder / "val.csv"),
                  out_dir=str(out), experiment_name="t", epochs=2, seed=5)
    values.update(overrides)
    return TrainConfig(**values)


# ----------------------------------------------------------------------------- mixed precision
def _one_step_gradients(model, batch, amp_dtype, loss="triplet"):
    """Gradients of one step of the real training loop (lr 0, so the weights stay put)."""
    config = TrainConfig(grad_clip=0.0, loss=loss, distance="cosine" if loss == "cosface" else "euclidean")
    torch.manual_seed(7)  # the same gloss directions (cosface) in every precision
    criterion = engine.build_criterion(config, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scaler = torch.amp.GradScaler("cpu", enabled=amp_dtype is torch.float16)
    hard = engine.HardMiningScheduler(0.9, 0.9, 0.0)
    torch.manual_seed(123)  # the same dropout masks in every precision
    stats = train_one_epoch(model, criterion, optimizer, [batch], torch.device("cpu"), scaler, config, hard, amp_dtype)
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]), stats


# cosface under fp16 is left to GradScaler: at its initial scale (65536) the first backward of
# the softmax over gloss directions overflows in fp16, and the scaler skips that step and
# lowers the scale, as designed; bf16 (no scaling) is compared directly.
@pytest.mark.parametrize("amp_dtype, loss", [(torch.bfloat16, "triplet"), (torch.float16, "triplet"),
                                             (torch.bfloat16, "cosface")],
                         ids=["bf16-triplet", "fp16-triplet", "bf16-cosface"])
def test_training_step_under_cpu_autocast_matches_full_precision(amp_dtype, loss):
    torch.manual_seed(0)
    model = build_model(SpoterConfig(num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=64, dropout=0.1))
    assert any(isinstance(m, LeanEncoderLayer) for m in model.modules())  # the lean kernels are the ones tested
    rng = np.random.default_rng(1)
    clips = [torch.from_numpy(rng.normal(0, 0.3, (int(rng.integers(10, 25)), 54, 2)).astype(np.float32))
             for _ in range(8)]
    batch = collate([(clip, label) for clip, label in zip(clips, [0, 0, 1, 1, 2, 2, 3, 3])])
    reference, ref_stats = _one_step_gradients(copy.deepcopy(model), batch, None, loss)
    mixed, mixed_stats = _one_step_gradients(copy.deepcopy(model), batch, amp_dtype, loss)
    assert torch.isfinite(mixed).all()
    cosine = torch.nn.functional.cosine_similarity(reference, mixed, dim=0)
    relative = (mixed - reference).norm() / reference.norm()
    assert cosine > 0.99 and relative < 0.1, (float(cosine), float(relative))
    assert math.isclose(mixed_stats["train_loss"], ref_stats["train_loss"], rel_tol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the CPU stand-in runs above)")
def test_training_step_under_cuda_autocast_default(tiny_csvs, tmp_path):
    assert resolve_amp("auto", torch.device("cuda")) is torch.float16
    metrics = train(_config(tiny_csvs, tmp_path, device="cuda", amp="auto", epochs=1))
    assert np.isfinite(metrics["train_loss"])
    assert load_checkpoint(tmp_path / "t" / "last.pth")["config"]["amp"] == "auto"


def test_amp_modes_resolve_per_device():
    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu) is None and resolve_amp("off", cpu) is None
    assert resolve_amp("bf16", cpu) is torch.bfloat16 and resolve_amp("fp16", cpu) is torch.float16
    with pytest.raises(UsageError, match="--amp"):
        TrainConfig(amp="fp8").check()


def test_train_py_bf16_on_cpu_writes_a_safe_checkpoint(tiny_synthetic_dataset, tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "--device", "cpu", "--amp", "bf16", "--epochs", "1",
         "--training_set_path", str(tiny_synthetic_dataset / "tiny_train.csv"),
         "--validation_set_path", str(tiny_synthetic_dataset / "tiny_val.csv"), "--out_dir", str(tmp_path),
         "--experiment_name", "amp", "--num_encoder_layers", "1", "--num_decoder_layers", "1",
         "--dim_feedforward", "64", "--batch_size", "8", "--samples_per_class", "2", "--epoch_iters", "3",
         "--tracker", "none", "--no-report_untrained"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("best.pth", "last.pth"):
        checkpoint = torch.load(tmp_path / "amp" / name, weights_only=True)
        assert checkpoint["config"]["amp"] == "bf16" and checkpoint["epoch"] == 0
        assert all(v.dtype == torch.float32 for v in checkpoint["state_dict"].values() if v.is_floating_point())


# ----------------------------------------------------------------------------- model selection
def test_best_checkpoint_is_an_evaluated_epoch_chosen_by_its_named_metric(tiny_csvs, tmp_path):
    train(_config(tiny_csvs, tmp_path, epochs=7, eval_every=5))  # evaluates epochs 4 and 6 only
    best = load_checkpoint(tmp_path / "t" / "best.pth")
    selection = best["selection"]
    assert selection["metric"] == "val_cross_signer_top1"  # auto: signer ids are known
    assert selection["epoch"] in (4, 6) and best["epoch"] == selection["epoch"]
    assert best["metrics"]["val_cross_signer_top1"] == selection["value"]
    evaluated = {h["epoch"]: h["val_cross_signer_top1"] for h in best["history"] if "val_cross_signer_top1" in h}
    assert set(evaluated) <= {4, 6} and selection["value"] == max(evaluated.values())
    assert load_checkpoint(tmp_path / "t" / "last.pth")["selection"] == selection


def test_best_pth_is_written_even_when_every_score_is_nan(tiny_csvs, tmp_path, monkeypatch):
    def nan_evaluation(*args, **kwargs):
        return {"train_silhouette": float("nan"), "val_silhouette": float("nan")}, None
    monkeypatch.setattr(engine, "evaluate_epoch", nan_evaluation)
    train(_config(tiny_csvs, tmp_path, epochs=3, eval_every=2, select_metric="val_silhouette", report_untrained=False))
    best = load_checkpoint(tmp_path / "t" / "best.pth")
    assert best["selection"]["metric"] == "val_silhouette" and best["selection"]["epoch"] == 1


def test_best_checkpoint_rules():
    best = BestCheckpoint("val_top1")
    assert not best.offer(0, {"train_loss": 0.1})                # not evaluated: never competes
    assert best.offer(1, {"val_top1": float("nan")})             # the first evaluated epoch is kept
    assert best.offer(2, {"val_top1": 0.5}) and not best.offer(3, {"val_top1": 0.4})
    assert not best.offer(4, {"val_top1": 0.5})                  # ties keep the earlier epoch
    assert best.to_dict() == {"metric": "val_top1", "value": 0.5, "epoch": 2}


def test_select_metric_needs_what_it_names(tiny_csvs, tmp_path):
    with pytest.raises(UsageError, match="needs a validation set"):
        train(_config(tiny_csvs, tmp_path, validation_set_path="", select_metric="val_top1"))
    with pytest.raises(UsageError, match="--select_metric"):
        TrainConfig(select_metric="val_loss").check()


# ----------------------------------------------------------------------------- flags honoured or refused
def test_num_classes_sizes_the_classifier_and_must_fit_the_data(tiny_csvs, tmp_path):
    train(_config(tiny_csvs, tmp_path / "c", classification_model=True, num_classes=10, epochs=1))
    head = [v for k, v in load_checkpoint(tmp_path / "c" / "t" / "last.pth")["state_dict"].items()
            if k.endswith("weight")][-1]
    assert head.shape[0] == 10
    with pytest.raises(UsageError, match="--num_classes 2: the training data has 4 glosses"):
        train(_config(tiny_csvs, tmp_path / "d", classification_model=True, num_classes=2, epochs=1))
    with pytest.raises(UsageError, match="--num_classes 100"):
        train(_config(tiny_csvs, tmp_path / "e", num_classes=100, epochs=1))


def test_filter_easy_triplets_is_refused_where_it_means_nothing():
    TrainConfig(hard_triplet_mining="in_batch", filter_easy_triplets=True).check()
    for mining in ("batch_hard", "None"):
        with pytest.raises(UsageError, match="--filter_easy_triplets"):
            TrainConfig(hard_triplet_mining=mining, filter_easy_triplets=True).check()


def test_split_flags_are_refused_for_csv_inputs(tiny_csvs, tmp_path):
    with pytest.raises(UsageError, match="--train_split dev: .*train.csv is a file"):
        train(_config(tiny_csvs, tmp_path, train_split="dev"))
    with pytest.raises(UsageError, match="--val_split test"):
        train(_config(tiny_csvs, tmp_path, val_split="test"))


def test_tracker_none_writes_only_checkpoints(tiny_csvs, tmp_path):
    train(_config(tiny_csvs, tmp_path, tracker="none", epochs=1))
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["best.pth", "last.pth"]


# ----------------------------------------------------------------------------- hard-mining scheduler
def test_hard_mining_scheduler_steps_only_while_mining_hard(tiny_csvs, tmp_path, monkeypatch):
    steps = []
    original = engine.HardMiningScheduler.step
    monkeypatch.setattr(engine.HardMiningScheduler, "step", lambda self, f: steps.append(f) or original(self, f))
    common = dict(hard_mining_scheduler_threshold=0.8, hard_mining_scheduler_factor=0.5,
                  hard_mining_pre_batch_multipler=2, hard_mining_pre_batch_mining_count=2, eval_every=0)
    before = train(_config(tiny_csvs, tmp_path / "a", start_mining_hard=5, **common))
    assert steps == [] and before["hard_threshold"] == 0.8       # never mined hard: never stepped
    train(_config(tiny_csvs, tmp_path / "b", start_mining_hard=1, **common))
    assert len(steps) == TINY["epoch_iters"]                     # one step per batch of the hard epoch only


@pytest.mark.parametrize("name, value", [("hard_mining_scheduler_triplets_threshold", 1.5),
                                         ("hard_mining_scheduler_factor", 1.0),
                                         ("hard_mining_scheduler_threshold", 0.0)])
def test_hard_mining_scheduler_settings_are_checked_up_front(name, value):
    with pytest.raises(UsageError, match=f"--{name}"):
        TrainConfig(**{name: value}).check()


# ----------------------------------------------------------------------------- presets
@pytest.mark.parametrize("preset", sorted(p.stem for p in (REPO / "configs").glob("*.json")))
def test_presets_are_valid_configs_and_load_by_name(preset):
    values = json.loads((REPO / "configs" / f"{preset}.json").read_text())
    TrainConfig.from_dict(values, source=preset).check()
    config, _ = config_from_args(["--config", preset, "--epochs", "3"])
    assert config.epochs == 3  # flags win over the preset
    assert all(getattr(config, k) == v for k, v in values.items() if k != "epochs")


def test_presets_cover_the_three_recipes_and_train_sh_uses_one():
    assert {"builtin", "published", "real"} <= {p.stem for p in (REPO / "configs").glob("*.json")}
    assert "--config configs/builtin.json" in (REPO / "train.sh").read_text()


def test_train_config_does_not_restate_model_defaults():
    model = SpoterConfig()
    shared = {f.name for f in fields(TrainConfig)} & {f.name for f in fields(SpoterConfig)} - {"num_classes"}
    assert {"hidden_dim", "num_heads", "max_frames", "dropout", "vector_length"} <= shared
    defaults = TrainConfig()
    for name in shared:
        assert getattr(defaults, name) == getattr(model, name), name


# ----------------------------------------------------------------------------- losses, sources
def test_cosface_training_saves_its_proxies_and_resume_restores_them(tiny_csvs, tmp_path):
    config = _config(tiny_csvs, tmp_path, loss="cosface", distance="cosine", epochs=1, tracker="none")
    train(config)
    first = load_checkpoint(tmp_path / "t" / "last.pth")
    proxies = first["criterion"]["proxies"]
    assert proxies.shape == (4, TINY["vector_length"])
    assert "train_accuracy" in first["metrics"] and "active_fraction" not in first["metrics"]
    train(dataclasses.replace(config, epochs=2, resume=True))
    second = load_checkpoint(tmp_path / "t" / "last.pth")
    assert second["epoch"] == 1
    # Resumed from the saved directions and trained on: changed, but not re-initialised far away.
    moved = float((second["criterion"]["proxies"] - proxies).norm() / proxies.norm())
    assert 0 < moved < 0.5


def test_resume_loads_the_saved_proxies(tiny_csvs, tmp_path, monkeypatch):
    config = _config(tiny_csvs, tmp_path, loss="cosface", distance="cosine", epochs=1, tracker="none")
    train(config)
    saved = load_checkpoint(tmp_path / "t" / "last.pth")["criterion"]["proxies"]
    seen = {}
    original = engine.resume_state

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        seen["proxies"] = args[-1].proxies.detach().clone()
        return result
    monkeypatch.setattr(engine, "resume_state", spy)
    train(dataclasses.replace(config, epochs=2, resume=True))
    assert torch.equal(seen["proxies"], saved)


@pytest.mark.parametrize("overrides, message", [
    (dict(loss="cosface"), "use it with --distance cosine"),
    (dict(loss="supcon", distance="euclidean"), "use it with --distance cosine"),
    (dict(loss="cosface", distance="cosine", start_mining_hard=0), "--start_mining_hard"),
    (dict(loss="cosface", distance="cosine", loss_margin=-0.1), "--loss_margin"),
    (dict(loss="arcface"), "--loss 'arcface'"),
])
def test_loss_settings_are_checked_up_front(overrides, message):
    with pytest.raises(UsageError, match=message):
        TrainConfig(**overrides).check()


def test_supcon_training_runs_and_learns_something(tiny_csvs, tmp_path):
    config = _config(tiny_csvs, tmp_path, loss="supcon", distance="cosine", epochs=1, tracker="none")
    metrics = train(config)
    assert math.isfinite(metrics["train_loss"]) and metrics["train_loss"] > 0


def test_several_training_sources_are_joined_by_gloss_name(tiny_csvs, tmp_path):
    """Two sources with different vocabularies: one gloss list, every sample kept, signers kept."""
    from datasets.loading import load_sequence_set
    from training.data import load_training_data
    val = load_sequence_set(tiny_csvs / "val.csv", cache=False)
    renamed = SequenceSet.from_sequences([val.sequence(i) for i in range(len(val))], val.labels,
                                         ["c", "d", "e", "f"], signer_ids=val.signer_ids, video_ids=val.video_ids)
    write_spoter_csv(renamed, tmp_path / "other.csv")
    config, _ = config_from_args(["--training_set_path", str(tiny_csvs / "train.csv"), str(tmp_path / "other.csv"),
                                  "--validation_set_path", str(tiny_csvs / "val.csv")])
    assert config.training_set_path == [str(tiny_csvs / "train.csv"), str(tmp_path / "other.csv")]
    data = load_training_data(config)
    assert data.label_names[:6] == ["a", "b", "c", "d", "e", "f"]
    assert len(data.train) == 48
    names = [data.label_names[i] for i in data.train.labels[24:]]   # the second source, relabelled by name
    assert names == [renamed.label_names[i] for i in renamed.labels]
    assert set(data.train.signer_ids) == {"train0", "train1", "train2", "val0", "val1", "val2"}
    single, _ = config_from_args(["--training_set_path", str(tiny_csvs / "train.csv")])
    assert single.training_set_path == str(tiny_csvs / "train.csv")   # one path stays a plain string
    with pytest.raises(ValueError, match="list of paths"):
        TrainConfig.from_dict({"training_set_path": []})


@pytest.mark.parametrize("n, batch_size, iters", [(10, 4, 7), (33, 32, 3), (64, 32, 2), (5, 8, 2)])
def test_random_batches_never_repeat_a_sample_within_a_batch(n, batch_size, iters):
    batches = engine.random_batches(n, batch_size, iters, np.random.default_rng(0))
    assert len(batches) == iters
    for batch in batches:
        assert len(batch) == min(batch_size, n) and len(set(batch)) == len(batch)
    if iters * min(batch_size, n) <= n:   # within one pass, no sample is drawn twice at all
        drawn = [i for b in batches for i in b]
        assert len(set(drawn)) == len(drawn)


def test_untrained_figures_are_logged_before_training_and_drawn_beside_the_curves(tiny_csvs, tmp_path):
    metrics = train(_config(tiny_csvs, tmp_path, epochs=1, tracker="local"))
    baseline = json.loads((tmp_path / "t" / "untrained.json").read_text())
    assert baseline["val_cross_signer_top1"] == metrics["untrained_val_cross_signer_top1"]
    # The figures are those of the exact weights training started from.
    torch.manual_seed(5)
    model = build_model(SpoterConfig.from_dict(_config(tiny_csvs, tmp_path).model_config(4)))
    from training.data import build_eval_dataset, load_training_data
    config = _config(tiny_csvs, tmp_path)
    data = load_training_data(config)
    again, _ = engine.evaluate_epoch(model, data, build_eval_dataset(data.train, config),
                                  build_eval_dataset(data.val, config), torch.device("cpu"), config)
    assert again["val_top1"] == pytest.approx(baseline["val_top1"])
    assert (tmp_path / "t" / "curves.png").stat().st_size > 0
