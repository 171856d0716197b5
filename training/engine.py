"""The training loop. ``train(config)`` reads top to bottom: build, then loop over epochs."""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from datasets.errors import DataError, UsageError
from datasets.torch_data import PKSampler, collate
from evaluation.embedding import embed_dataset
from evaluation.knn import exclusion_mask, knn_report, silhouette
from models.spoter import SpoterConfig, build_model
from training import distributed as dist_utils
from training.checkpoint import error_detail, load_checkpoint, save_checkpoint
from training.config import TrainConfig
from training.data import (TrainingData, build_eval_dataset, build_train_dataset, check_batching,
                           load_training_data)
from training.distances import CosineDistance, EuclideanDistance
from training.hard_grouping import HardMiningScheduler, group_hard_batches
from training.losses import TripletMarginLoss
from training.miners import BatchAllMiner, BatchHardMiner
from training.tracking import build_tracker

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:  # torch lists every device type it knows; the usual ones are enough here
        raise UsageError(f"--device {name!r}: not a device; use auto, cpu, cuda or cuda:N") from None


def build_criterion(config: TrainConfig):
    if config.classification_model:
        return torch.nn.CrossEntropyLoss()
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


def resume_state(path: Path, model, optimizer, plateau, hard_scheduler) -> tuple[int, float, list]:
    """Load ``last.pth`` into the training objects; returns (next epoch, best metric, history).

    A checkpoint of another architecture or one without the training state is refused
    with one line instead of a half-restored run.
    """
    state = load_checkpoint(path)
    missing = [k for k in ("optimizer", "scheduler", "hard_scheduler", "torch_rng", "epoch", "best_metric", "history")
               if k not in state]
    if missing:
        raise DataError(f"{path}: cannot resume from it: no training state ({', '.join(missing)} missing)")
    try:
        dist_utils.unwrap(model).load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        plateau.load_state_dict(state["scheduler"])
        hard_scheduler.load_state_dict(state["hard_scheduler"])
        torch.set_rng_state(state["torch_rng"])
        return int(state["epoch"]) + 1, float(state["best_metric"]), list(state["history"])
    except (RuntimeError, ValueError, TypeError, KeyError) as error:
        raise DataError(f"{path}: cannot resume from it: it does not match this run's model or settings "
                        f"({error_detail(error)}); use another --out_dir/--experiment_name or drop --resume") from None


def build_optimizer(model, config: TrainConfig):
    if config.optimizer.upper() == "SGD":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    if config.optimizer.upper() == "ADAM":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    raise UsageError(f"--optimizer {config.optimizer!r}: choose SGD or ADAM")


def apply_warmup(optimizer, config: TrainConfig, epoch: int) -> None:
    """Linear warm-up over ``scheduler_warmup`` epochs; afterwards the plateau scheduler owns the rate."""
    if epoch <= config.scheduler_warmup and config.scheduler_warmup > 0:
        lr = config.lr * min(1.0, (epoch + 1) / config.scheduler_warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr


def epoch_batches(config, dataset, model, epoch, device, hard_scheduler) -> list[list[int]]:
    """Index batches for one epoch: P×K or random, regrouped hard after ``start_mining_hard``."""
    labels = dataset.sequences.labels
    n = len(labels)
    iters = config.epoch_iters if config.epoch_iters > 0 else max(1, n // config.batch_size)
    rng = np.random.default_rng([config.seed, epoch, 11])
    if 0 <= config.start_mining_hard <= epoch and not config.classification_model:
        pre_size = min(n, config.batch_size * config.hard_mining_pre_batch_multipler)
        keep = max(1, config.hard_mining_pre_batch_mining_count)
        batches = []
        while len(batches) < iters:
            pre = rng.choice(n, size=pre_size, replace=False)
            emb = torch.from_numpy(embed_dataset(model, _SubsetView(dataset, pre), batch_size=64, device=device))
            groups = group_hard_batches(emb, labels[pre], config.batch_size, hard_scheduler.threshold, rng=rng)
            batches.extend(pre[g].tolist() for g in groups[:keep] if len(g) >= 2)
        return batches[:iters]
    if config.sampler == "pk":
        k = config.samples_per_class
        sampler = PKSampler(labels, p=max(2, config.batch_size // k), k=k, num_batches=iters, seed=config.seed)
        sampler.set_epoch(epoch)
        return list(sampler)
    order = rng.permutation(n)
    order = np.concatenate([order, rng.permutation(n)]) if iters * config.batch_size > n else order
    return [order[i * config.batch_size:(i + 1) * config.batch_size].tolist() for i in range(iters)
            if len(order[i * config.batch_size:(i + 1) * config.batch_size]) >= 2]


class _SubsetView:
    """The samples ``indices`` of a SignDataset, without augmentation (for embedding)."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, indices

    def __len__(self):
        return len(self.indices)

    def frames(self, i):
        return self.dataset.frames(int(self.indices[i]))


def train_one_epoch(model, criterion, optimizer, loader, device, scaler, config, hard_scheduler) -> dict:
    model.train()
    totals = {"loss": 0.0, "active": 0.0, "valid": 0.0, "batches": 0, "samples": 0}
    use_amp = device.type == "cuda"
    for landmarks, mask, labels in tqdm(loader, desc="train", leave=False, unit="batch", disable=not dist_utils.is_main()):
        landmarks, mask, labels = landmarks.to(device), mask.to(device), labels.to(device)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            outputs = model(landmarks, mask)
        loss = criterion(outputs.float(), labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at batch {totals['batches']}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        stats = getattr(criterion, "last_stats", {})
        if stats and 0 <= config.start_mining_hard:
            hard_scheduler.step(stats.get("fraction_active", 0.0))
        totals["loss"] += loss.item()
        totals["active"] += stats.get("active_triplets", 0)
        totals["valid"] += stats.get("valid_triplets", 0)
        totals["batches"] += 1
        totals["samples"] += len(labels)
    batches = max(totals["batches"], 1)
    return {"train_loss": totals["loss"] / batches, "active_triplets": totals["active"] / batches,
            "active_fraction": totals["active"] / max(totals["valid"], 1), "samples": totals["samples"]}


def evaluate_epoch(model, data, train_eval, val_eval, device, config) -> dict:
    """Silhouette on train and validation, validation kNN top-1/top-5 with the train set as gallery."""
    core = dist_utils.unwrap(model)
    metrics = {}
    train_emb = embed_dataset(core, train_eval, batch_size=128, device=device)
    metrics["train_silhouette"] = silhouette(train_emb, data.train.labels)
    if val_eval is not None and len(val_eval):
        val_emb = embed_dataset(core, val_eval, batch_size=128, device=device)
        metrics["val_silhouette"] = silhouette(val_emb, data.val.labels)
        report = knn_report(val_emb, data.val.labels, train_emb, data.train.labels, len(data.label_names))
        metrics.update(val_top1=report["knn_top1"], val_top5=report["knn_top5"])
        if (data.val.signer_ids != "").all() and len(set(data.val.signer_ids)) > 1:
            excluded = exclusion_mask(data.val.signer_ids, data.val.signer_ids)
            cross = knn_report(val_emb, data.val.labels, val_emb, data.val.labels, len(data.label_names), excluded)
            metrics.update(val_cross_signer_top1=cross["knn_top1"], val_cross_signer_top5=cross["knn_top5"])
        metrics["_val_embeddings"] = val_emb
    return metrics


def train(config: TrainConfig, data: TrainingData | None = None, tracker=None) -> dict:
    """Train a model as ``config`` says; returns the final epoch's metrics.

    ``data`` replaces loading ``config.training_set_path`` (e.g. a signer subset built in
    memory by a cross-validation protocol); the paths are then only recorded.
    ``tracker`` replaces the one ``config.tracker`` names (same methods as training.tracking's).
    """
    config.check()
    dist_utils.setup()
    device = dist_utils.device_for_rank(resolve_device(config.device))
    torch.manual_seed(config.seed + dist_utils.rank())
    out_dir = Path(config.out_dir) / config.experiment_name
    if dist_utils.is_main():
        prepare_out_dir(out_dir)
    data = data if data is not None else load_training_data(config)
    check_batching(data, config)
    model_config = SpoterConfig.from_dict(config.model_config(len(data.label_names)))
    model = build_model(model_config)
    if config.init_checkpoint:
        load_initial_weights(model, config.init_checkpoint)
    model = model.to(device)
    model = dist_utils.wrap(model, device)
    criterion, optimizer = build_criterion(config), build_optimizer(model, config)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=config.scheduler_factor,
                                                         patience=config.scheduler_patience)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    hard_scheduler = HardMiningScheduler(threshold=0.9, factor=0.9,
                                         min_active_fraction=config.hard_mining_scheduler_triplets_threshold)
    train_set = build_train_dataset(data, config)
    train_eval = build_eval_dataset(data.train, config)
    val_eval = build_eval_dataset(data.val, config) if data.val is not None else None
    if tracker is None and dist_utils.is_main():
        tracker = build_tracker(config.tracker, out_dir, config.to_dict(), config.dataset_project,
                                config.experiment_name)
    start_epoch, best, history = 0, -math.inf, []
    if config.resume and (out_dir / "last.pth").exists():
        start_epoch, best, history = resume_state(out_dir / "last.pth", model, optimizer, plateau, hard_scheduler)
        if tracker:
            tracker.restore(history)
        log.info("resumed from %s at epoch %d", out_dir / "last.pth", start_epoch)

    metrics: dict = {}
    for epoch in range(start_epoch, config.epochs):
        dist_utils.wait_for_main()  # DDP: other ranks wait here (long timeout) while rank 0 evaluates and saves
        started = time.perf_counter()
        train_set.set_epoch(epoch)
        apply_warmup(optimizer, config, epoch)
        batches = dist_utils.shard(epoch_batches(config, train_set, dist_utils.unwrap(model), epoch, device, hard_scheduler))
        loader = DataLoader(train_set, batch_sampler=batches, collate_fn=collate, num_workers=config.num_workers)
        metrics = {"epoch": epoch, **train_one_epoch(model, criterion, optimizer, loader, device, scaler, config, hard_scheduler)}
        metrics["lr"] = optimizer.param_groups[0]["lr"]
        metrics["hard_threshold"] = hard_scheduler.threshold
        metrics["train_seconds"] = time.perf_counter() - started
        metrics["samples_per_s"] = metrics.pop("samples") / metrics["train_seconds"]
        if epoch >= config.scheduler_warmup:
            plateau.step(metrics["train_loss"])
        last_epoch = epoch == config.epochs - 1
        val_embeddings = None
        if dist_utils.is_main() and (last_epoch or (config.eval_every > 0 and (epoch + 1) % config.eval_every == 0)):
            evaluation_started = time.perf_counter()
            metrics.update(evaluate_epoch(model, data, train_eval, val_eval, device, config))
            val_embeddings = metrics.pop("_val_embeddings", None)
            metrics["eval_seconds"] = time.perf_counter() - evaluation_started
        metrics["epoch_seconds"] = time.perf_counter() - started
        if not dist_utils.is_main():
            continue
        history.append(metrics)
        tracker.log_epoch(metrics)
        log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
        score = metrics.get("val_silhouette", metrics.get("train_silhouette", -metrics["train_loss"]))
        payload = {
            "state_dict": dist_utils.unwrap(model).state_dict(), "config": config.to_dict(),
            "model_config": {**model_config.__dict__}, "label_names": list(data.label_names),
            "normalization": config.preprocessing(),
            "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            "history": history, "epoch": epoch, "best_metric": max(best, score) if np.isfinite(score) else best,
            "optimizer": optimizer.state_dict(), "scheduler": plateau.state_dict(),
            "hard_scheduler": hard_scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
        }
        # The epoch's files before last.pth: a run killed before last.pth is written redoes the
        # whole epoch on --resume, so no output of the epoch can be missing afterwards.
        if val_embeddings is not None and (last_epoch or (config.plot_every > 0 and (epoch + 1) % config.plot_every == 0)):
            _plot_embeddings(val_embeddings, data, out_dir, epoch, tracker)
        if np.isfinite(score) and score > best:
            best = score
            save_checkpoint(out_dir / "best.pth", payload)
        if config.save_checkpoints_every > 0 and (epoch + 1) % config.save_checkpoints_every == 0:
            save_checkpoint(out_dir / f"epoch_{epoch + 1}.pth", payload)
        save_checkpoint(out_dir / "last.pth", payload)
    if dist_utils.is_main() and val_eval is not None and config.report_untrained:
        metrics.update({f"untrained_{k}": v for k, v in untrained_baseline(model_config, data, train_eval, val_eval,
                                                                          device, config).items()})
        log.info("untrained baseline: %s", " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k.startswith("untrained_")))
    if tracker:
        tracker.close()
    dist_utils.cleanup()
    return metrics


def untrained_baseline(model_config, data, train_eval, val_eval, device, config) -> dict:
    """The same network with its initial (untrained) weights, evaluated the same way."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        untrained = build_model(model_config).to(device)
    scores = evaluate_epoch(untrained, data, train_eval, val_eval, device, config)
    scores.pop("_val_embeddings", None)
    return scores


def _plot_embeddings(embeddings, data, out_dir: Path, epoch: int, tracker) -> None:
    from evaluation.plots import project_2d, scatter
    points = project_2d(embeddings)
    png, page = out_dir / f"val_tsne_epoch{epoch + 1}.png", out_dir / f"val_tsne_epoch{epoch + 1}.html"
    scatter(points, data.val.labels, data.label_names, png, page, title=f"validation embeddings, epoch {epoch + 1}",
            hover=[f"{v} ({s})" for v, s in zip(data.val.video_ids, data.val.signer_ids)])
    tracker.log_figure("val_tsne", png)
