"""The training loop. ``train(config)`` reads top to bottom: build the run, then for each epoch
its batches, ``train_one_epoch``, ``evaluate_epoch`` (figures and embeddings, returned) and
``record_epoch`` (log, plot, choose and save checkpoints)."""
from __future__ import annotations

import logging
import time
from functools import partial
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from augmentations.torch_data import FrameCount, SignDataset, collate
from datasets.errors import UsageError
from evaluation.embedding import embed_dataset
from evaluation.knn import silhouette
from evaluation.report import EmbeddedSet, knn_figures
from models.checkpoint import save_checkpoint
from models.device import resolve_device
from models.spoter import SpoterConfig, build_model
from training import distributed as dist_utils
from training.batches import PAD_MULTIPLE, epoch_batches, hard_batches, mining_hard, random_batches  # noqa: F401
from training.config import TrainConfig
from training.data import (TrainingData, build_eval_dataset, build_train_dataset, check_batching,
                           load_training_data)
from training.distances import CosineDistance, EuclideanDistance
from training.hard_grouping import HardMiningScheduler
from training.losses import CosFaceLoss, SupConLoss, TripletMarginLoss
from training.miners import BatchAllMiner, BatchHardMiner
from training.persistence import epoch_checkpoint, load_initial_weights, prepare_out_dir, resume_state
from training.selection import BestCheckpoint, selection_metric
from training.tracking import build_tracker
from training.weight_average import WeightAverage

log = logging.getLogger(__name__)


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``--amp`` asks for on ``device``; None = full precision.

    ``auto`` is fp16 on CUDA (with gradient scaling) and off on CPU. bf16 runs on CPU too,
    which is how the mixed-precision path is exercised on machines without a GPU.
    """
    if mode == "auto":
        return torch.float16 if device.type == "cuda" else None
    dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[mode]
    if dtype is torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UsageError(f"--amp bf16: this GPU ({torch.cuda.get_device_name(device)}) has no bfloat16 support; "
                         "use --amp fp16")
    return dtype


def build_criterion(config: TrainConfig, num_classes: int = 0):
    """The training loss ``config.loss`` names; ``num_classes`` = training glosses (cosface's proxies)."""
    if config.classification_model:
        return torch.nn.CrossEntropyLoss()
    if config.loss == "cosface":
        return CosFaceLoss(num_classes, config.vector_length, scale=config.loss_scale, margin=config.loss_margin,
                           subcenters=config.loss_subcenters)
    if config.loss == "supcon":
        return SupConLoss(config.loss_temperature)
    distance = CosineDistance() if config.distance == "cosine" else EuclideanDistance()
    mining = str(config.hard_triplet_mining)
    if mining == "batch_hard":
        miner = BatchHardMiner()
    elif mining in ("in_batch", "None", "none", ""):
        # "None" in the published flags meant "no mining"; here it is batch-all without easy filtering.
        filter_easy = config.filter_easy_triplets and mining == "in_batch"
        miner = BatchAllMiner(margin=config.triplet_loss_margin, filter_easy=filter_easy)
    else:
        raise UsageError(f"--hard_triplet_mining {mining!r}: choose in_batch, batch_hard or None")
    return TripletMarginLoss(margin=config.triplet_loss_margin, distance=distance, miner=miner)


def build_optimizer(model, config: TrainConfig, criterion: torch.nn.Module | None = None):
    """The optimiser of the model's parameters and the loss's own (cosface's gloss directions)."""
    parameters = list(model.parameters()) + (list(criterion.parameters()) if criterion is not None else [])
    if config.optimizer.upper() == "SGD":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    if config.optimizer.upper() == "ADAM":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    raise UsageError(f"--optimizer {config.optimizer!r}: choose SGD or ADAM")


def apply_warmup(optimizer, config: TrainConfig, epoch: int) -> None:
    """Linear warm-up over ``scheduler_warmup`` epochs; afterwards the plateau scheduler owns the rate."""
    if epoch <= config.scheduler_warmup and config.scheduler_warmup > 0:
        lr = config.lr * min(1.0, (epoch + 1) / config.scheduler_warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr


def train_one_epoch(model, criterion, optimizer, loader, device, scaler, config, hard_scheduler,
                    amp_dtype: torch.dtype | None = None, mining_hard: bool = False,
                    average: WeightAverage | None = None) -> dict:
    """One pass over ``loader``. ``amp_dtype`` runs the forward pass under autocast (the loss in
    float32); ``mining_hard`` says the batches were regrouped hard, the only time the hard-mining
    scheduler learns from the share of active triplets; ``average`` (EMA of the weights) is
    updated after every optimiser step."""
    model.train()
    totals = {"loss": 0.0, "active": 0.0, "valid": 0.0, "batches": 0, "samples": 0, "correct": 0.0}
    frames = FrameCount()
    for landmarks, mask, labels in tqdm(loader, desc="train", leave=False, unit="batch", disable=not dist_utils.is_main()):
        frames.add(mask)
        landmarks, mask, labels = landmarks.to(device), mask.to(device), labels.to(device)
        with torch.autocast(device_type=device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            outputs = model(landmarks, mask)
        loss = criterion(outputs.float(), labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at batch {totals['batches']}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        dist_utils.average_gradients(criterion)  # DDP averages the model's gradients, not the loss's own
        scaler.unscale_(optimizer)
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]],
                                           config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        if average is not None:
            average.update(dist_utils.unwrap(model))
        stats = getattr(criterion, "last_stats", {})
        if stats and mining_hard:
            hard_scheduler.step(stats.get("fraction_active", 0.0))
        totals["loss"] += loss.item()
        totals["active"] += stats.get("active_triplets", 0)
        totals["valid"] += stats.get("valid_triplets", 0)
        totals["correct"] += stats.get("train_accuracy", 0.0) * len(labels)
        totals["batches"] += 1
        totals["samples"] += len(labels)
    batches = max(totals["batches"], 1)
    out = {"train_loss": totals["loss"] / batches, "samples": totals["samples"], **frames.metrics()}
    if isinstance(criterion, TripletMarginLoss):
        out.update(active_triplets=totals["active"] / batches, active_fraction=totals["active"] / max(totals["valid"], 1))
    if isinstance(criterion, CosFaceLoss):
        out["train_accuracy"] = totals["correct"] / max(totals["samples"], 1)  # nearest gloss direction
    return out


def evaluate_epoch(model, data, train_eval, val_eval, device, config) -> tuple[dict, np.ndarray | None]:
    """The figures ``evaluate.py --gallery <training set> --queries <validation set>`` prints for this model.

    Computed by evaluation.report with the model's own distance (``config.distance``), so
    each logged number equals one of evaluate.py's (kNN top-k over answerable queries):
    ``train_silhouette`` / ``val_silhouette`` = silhouette (gallery) / (queries);
    ``val_top1``/``val_top5`` = standard kNN top-1/top-5; ``val_cross_signer_top1``/``_top5``
    = cross_signer kNN top-1/top-5, the gallery being the training samples of other signers
    than the query's (logged when evaluate.py reports that protocol: signers known).
    Returns the figures and the validation embeddings (None without a validation set).
    """
    core = dist_utils.unwrap(model)
    metric = "cosine" if config.distance == "cosine" else "euclidean"   # as evaluation.inference.Embedder.metric
    metrics, val_emb = {}, None
    train_emb = embed_dataset(core, train_eval, batch_size=128, device=device)
    metrics["train_silhouette"] = silhouette(train_emb, data.train.labels, metric)
    if val_eval is not None and len(val_eval):
        val_emb = embed_dataset(core, val_eval, batch_size=128, device=device)
        metrics["val_silhouette"] = silhouette(val_emb, data.val.labels, metric)
        figures = knn_figures(EmbeddedSet.from_sequences(train_emb, data.train),
                              EmbeddedSet.from_sequences(val_emb, data.val), metric=metric)
        for name, prefix in (("standard", "val"), ("cross_signer", "val_cross_signer")):
            if name in figures:
                metrics.update({f"{prefix}_top{k}": figures[name][f"knn_top{k}"] for k in (1, 5)})
    return metrics, val_emb


def output_classes(config: TrainConfig, data: TrainingData) -> int:
    """``--num_classes``: 0 = the data's gloss count; a classifier may have more outputs, never fewer."""
    glosses = len(data.label_names)
    if config.num_classes == 0:
        return glosses
    if config.classification_model and config.num_classes >= glosses:
        return config.num_classes
    need = f"at least {glosses}" if config.classification_model else f"{glosses} (or 0)"
    raise UsageError(f"--num_classes {config.num_classes}: the training data has {glosses} glosses; use {need}")


@dataclass
class Run:
    """What one training builds before its first epoch, and what its epochs carry forward."""

    config: TrainConfig
    data: TrainingData
    device: torch.device
    amp_dtype: torch.dtype | None
    out_dir: Path
    model_config: SpoterConfig
    model: torch.nn.Module            # DDP-wrapped when distributed
    criterion: torch.nn.Module
    optimizer: torch.optim.Optimizer
    plateau: torch.optim.lr_scheduler.ReduceLROnPlateau
    scaler: torch.amp.GradScaler
    hard_scheduler: HardMiningScheduler
    average: WeightAverage | None     # EMA of the weights (--ema_decay), evaluated and saved
    train_set: SignDataset            # augmented
    train_eval: SignDataset           # the same clips, prepared as evaluation prepares them
    val_eval: SignDataset | None
    tracker: object
    best: BestCheckpoint
    start_epoch: int = 0
    history: list = field(default_factory=list)

    @property
    def evaluated_model(self) -> torch.nn.Module:
        """The weights every evaluation scores and ``best.pth`` holds."""
        return self.average.model if self.average is not None else self.model


def build_run(config: TrainConfig, data: TrainingData | None = None, tracker=None) -> Run:
    """Check the settings, load the data and build model, loss, optimiser and schedulers (resumed if asked)."""
    config.check()
    dist_utils.setup()
    device = dist_utils.device_for_rank(resolve_device(config.device))
    amp_dtype = resolve_amp(config.amp, device)
    torch.manual_seed(config.seed + dist_utils.rank())
    out_dir = Path(config.out_dir) / config.experiment_name
    if dist_utils.is_main():
        prepare_out_dir(out_dir)
    data = data if data is not None else load_training_data(config)
    check_batching(data, config)
    best = BestCheckpoint(selection_metric(config, data))
    model_config = SpoterConfig.from_dict(config.model_config(output_classes(config, data)))
    model = build_model(model_config)
    if config.init_checkpoint:
        load_initial_weights(model, config.init_checkpoint)
    model = dist_utils.wrap(model.to(device), device)
    criterion = build_criterion(config, len(data.label_names)).to(device)
    dist_utils.broadcast_parameters(criterion)  # the loss's own parameters start equal on every rank
    optimizer = build_optimizer(model, config, criterion)
    if tracker is None and dist_utils.is_main():
        tracker = build_tracker(config.tracker, out_dir, config.to_dict(), config.dataset_project,
                                config.experiment_name)
    run = Run(config, data, device, amp_dtype, out_dir, model_config, model, criterion, optimizer,
              torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=config.scheduler_factor,
                                                         patience=config.scheduler_patience),
              torch.amp.GradScaler(device.type, enabled=amp_dtype is torch.float16),
              HardMiningScheduler(threshold=config.hard_mining_scheduler_threshold,
                                  factor=config.hard_mining_scheduler_factor,
                                  min_active_fraction=config.hard_mining_scheduler_triplets_threshold),
              WeightAverage(dist_utils.unwrap(model), config.ema_decay) if config.ema_decay > 0 else None,
              build_train_dataset(data, config), build_eval_dataset(data.train, config),
              build_eval_dataset(data.val, config) if data.val is not None else None,
              tracker, best)
    if config.resume and (out_dir / "last.pth").exists():
        run.start_epoch, run.history = resume_state(out_dir / "last.pth", model, optimizer, run.plateau,
                                                    run.hard_scheduler, run.best, criterion, average=run.average)
        if tracker:
            tracker.restore(run.history)
        log.info("resumed from %s at epoch %d", out_dir / "last.pth", run.start_epoch)
    return run


def train(config: TrainConfig, data: TrainingData | None = None, tracker=None) -> dict:
    """Train a model as ``config`` says; returns the final epoch's metrics.

    ``data`` replaces loading ``config.training_set_path`` (e.g. a signer subset built in
    memory by a cross-validation protocol); the paths are then only recorded.
    ``tracker`` replaces the one ``config.tracker`` names (same methods as training.tracking's).
    """
    run = build_run(config, data, tracker)
    baseline = untrained_baseline(run)   # before training, so the learning curves show it from the start
    metrics: dict = {}
    for epoch in range(run.start_epoch, config.epochs):
        dist_utils.wait_for_main()  # DDP: other ranks wait here (long timeout) while rank 0 evaluates and saves
        started = time.perf_counter()
        loader = epoch_loader(run, epoch)
        metrics = {"epoch": epoch, **train_one_epoch(run.model, run.criterion, run.optimizer, loader, run.device,
                                                     run.scaler, config, run.hard_scheduler, run.amp_dtype,
                                                     mining_hard(config, epoch), run.average)}
        metrics["lr"], metrics["hard_threshold"] = run.optimizer.param_groups[0]["lr"], run.hard_scheduler.threshold
        metrics["train_seconds"] = time.perf_counter() - started
        metrics["samples_per_s"] = metrics.pop("samples") / metrics["train_seconds"]
        if epoch >= config.scheduler_warmup:
            run.plateau.step(metrics["train_loss"])
        val_embeddings = None
        if dist_utils.is_main() and evaluated_epoch(config, epoch):
            evaluation_started = time.perf_counter()
            scores, val_embeddings = evaluate_epoch(run.evaluated_model, run.data, run.train_eval, run.val_eval,
                                                    run.device, config)
            metrics.update(scores, eval_seconds=time.perf_counter() - evaluation_started)
        metrics["epoch_seconds"] = time.perf_counter() - started
        if dist_utils.is_main():
            record_epoch(run, epoch, metrics, val_embeddings)
    return finish(run, metrics, baseline)


def evaluated_epoch(config: TrainConfig, epoch: int) -> bool:
    """Every ``--eval_every`` epochs, and always the last one."""
    return epoch == config.epochs - 1 or (config.eval_every > 0 and (epoch + 1) % config.eval_every == 0)


def epoch_loader(run: Run, epoch: int) -> DataLoader:
    """The epoch's batches (this rank's share), hard-regrouped with the current model when mining hard."""
    run.train_set.set_epoch(epoch)
    apply_warmup(run.optimizer, run.config, epoch)
    if mining_hard(run.config, epoch):
        batches = hard_batches(run.config, run.train_set, dist_utils.unwrap(run.model), epoch, run.device,
                               run.hard_scheduler)
    else:
        batches = epoch_batches(run.config, run.train_set.sequences.labels, epoch, run.train_set.sequences.lengths)
    pad_multiple = PAD_MULTIPLE if run.config.length_batching else 1
    return DataLoader(run.train_set, batch_sampler=dist_utils.shard(batches),
                      collate_fn=partial(collate, pad_multiple=pad_multiple), num_workers=run.config.num_workers)


def record_epoch(run: Run, epoch: int, metrics: dict, val_embeddings: np.ndarray | None) -> None:
    """Log the epoch, draw its embeddings when due, offer it to ``best.pth`` and save the checkpoints.

    The epoch's files come before ``last.pth``: a run killed before ``last.pth`` is written
    redoes the whole epoch on ``--resume``, so no output of the epoch can be missing afterwards.
    """
    config = run.config
    run.history.append(metrics)
    run.tracker.log_epoch(metrics)
    log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
    if val_embeddings is not None and config.tracker != "none" and (
            epoch == config.epochs - 1 or (config.plot_every > 0 and (epoch + 1) % config.plot_every == 0)):
        _plot_embeddings(val_embeddings, run.data, run.out_dir, epoch, run.tracker)
    improved = run.best.offer(epoch, metrics)
    payload = epoch_checkpoint(run, epoch, metrics)
    if improved:
        save_checkpoint(run.out_dir / "best.pth", payload)
    if config.save_checkpoints_every > 0 and (epoch + 1) % config.save_checkpoints_every == 0:
        save_checkpoint(run.out_dir / f"epoch_{epoch + 1}.pth", payload)
    save_checkpoint(run.out_dir / "last.pth", payload)


def finish(run: Run, metrics: dict, baseline: dict) -> dict:
    """The final metrics with the untrained figures beside them; trackers and process groups closed."""
    if baseline:
        metrics.update({f"untrained_{k}": v for k, v in baseline.items()})
        log.info("untrained baseline: %s", " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k.startswith("untrained_")))
    if dist_utils.is_main() and run.best.epoch >= 0:
        log.info("best.pth: epoch %d by %s = %.4g", run.best.epoch, run.best.metric, run.best.value)
    if run.tracker:
        run.tracker.close()
    dist_utils.cleanup()
    return metrics


def untrained_baseline(run: Run) -> dict:
    """The same network with its initial (untrained) weights, evaluated the same way (``--report_untrained``)."""
    if not (dist_utils.is_main() and run.val_eval is not None and run.config.report_untrained):
        return {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.config.seed)
        untrained = build_model(run.model_config).to(run.device)
    scores, _ = evaluate_epoch(untrained, run.data, run.train_eval, run.val_eval, run.device, run.config)
    if hasattr(run.tracker, "log_baseline"):
        run.tracker.log_baseline(scores)
    return scores


def _plot_embeddings(embeddings, data, out_dir: Path, epoch: int, tracker) -> None:
    from evaluation.plots import project_2d, scatter
    points = project_2d(embeddings)
    png, page = out_dir / f"val_tsne_epoch{epoch + 1}.png", out_dir / f"val_tsne_epoch{epoch + 1}.html"
    scatter(points, data.val.labels, data.label_names, png, page, title=f"validation embeddings, epoch {epoch + 1}",
            hover=[f"{v} ({s})" for v, s in zip(data.val.video_ids, data.val.signer_ids)])
    tracker.log_figure("val_tsne", png)
