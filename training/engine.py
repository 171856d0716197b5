"""The training loop. ``train(config)`` reads top to bottom: build, then loop over epochs."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from datasets.errors import DataError, UsageError
from datasets.torch_data import PKSampler, collate
from entrypoint import resolve_device
from evaluation.embedding import embed_dataset
from evaluation.knn import silhouette
from evaluation.report import EmbeddedSet, knn_figures
from models.spoter import SpoterConfig, build_model
from training import distributed as dist_utils
from training.checkpoint import error_detail, load_checkpoint, save_checkpoint
from training.config import TrainConfig
from training.data import (TrainingData, build_eval_dataset, build_train_dataset, check_batching,
                           load_training_data)
from training.distances import CosineDistance, EuclideanDistance
from training.hard_grouping import HardMiningScheduler, group_hard_batches
from training.losses import CosFaceLoss, SupConLoss, TripletMarginLoss
from training.miners import BatchAllMiner, BatchHardMiner
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


def epoch_batches(config, dataset, model, epoch, device, hard_scheduler) -> list[list[int]]:
    """Index batches for one epoch: P×K or random, regrouped hard after ``start_mining_hard``."""
    labels = dataset.sequences.labels
    n = len(labels)
    iters = config.epoch_iters if config.epoch_iters > 0 else max(1, n // config.batch_size)
    rng = np.random.default_rng([config.seed, epoch, 11])
    if mining_hard(config, epoch):
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
    return random_batches(n, config.batch_size, iters, rng)


def random_batches(n: int, batch_size: int, iters: int, rng: np.random.Generator) -> list[list[int]]:
    """``iters`` batches of distinct samples, taken in turn from fresh permutations of the ``n`` samples.

    A batch never spans two permutations, so no sample appears twice in one batch (a repeat
    would be its own positive: a free, useless pair); the leftover tail of a permutation that
    cannot fill a batch is dropped.
    """
    size = min(batch_size, n)
    per_pass = max(1, n // size)
    batches: list[list[int]] = []
    while len(batches) < iters:
        order = rng.permutation(n)
        batches.extend(order[i * size:(i + 1) * size].tolist() for i in range(min(per_pass, iters - len(batches))))
    return batches


def mining_hard(config: TrainConfig, epoch: int) -> bool:
    """Whether ``epoch``'s batches are regrouped hard (from ``--start_mining_hard`` on)."""
    return 0 <= config.start_mining_hard <= epoch and not config.classification_model


class _SubsetView:
    """The samples ``indices`` of a SignDataset, without augmentation (for embedding)."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, indices

    def __len__(self):
        return len(self.indices)

    def frames(self, i):
        return self.dataset.frames(int(self.indices[i]))


def train_one_epoch(model, criterion, optimizer, loader, device, scaler, config, hard_scheduler,
                    amp_dtype: torch.dtype | None = None, mining_hard: bool = False,
                    average: WeightAverage | None = None) -> dict:
    """One pass over ``loader``. ``amp_dtype`` runs the forward pass under autocast (the loss in
    float32); ``mining_hard`` says the batches were regrouped hard, the only time the hard-mining
    scheduler learns from the share of active triplets; ``average`` (EMA of the weights) is
    updated after every optimiser step."""
    model.train()
    totals = {"loss": 0.0, "active": 0.0, "valid": 0.0, "batches": 0, "samples": 0, "correct": 0.0}
    for landmarks, mask, labels in tqdm(loader, desc="train", leave=False, unit="batch", disable=not dist_utils.is_main()):
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
    out = {"train_loss": totals["loss"] / batches, "samples": totals["samples"]}
    if isinstance(criterion, TripletMarginLoss):
        out.update(active_triplets=totals["active"] / batches, active_fraction=totals["active"] / max(totals["valid"], 1))
    if isinstance(criterion, CosFaceLoss):
        out["train_accuracy"] = totals["correct"] / max(totals["samples"], 1)  # nearest gloss direction
    return out


def evaluate_epoch(model, data, train_eval, val_eval, device, config) -> dict:
    """The figures ``evaluate.py --gallery <training set> --queries <validation set>`` prints for this model.

    Computed by evaluation.report with the model's own distance (``config.distance``), so
    each logged number equals one of evaluate.py's (kNN top-k over answerable queries):
    ``train_silhouette`` / ``val_silhouette`` = silhouette (gallery) / (queries);
    ``val_top1``/``val_top5`` = standard kNN top-1/top-5; ``val_cross_signer_top1``/``_top5``
    = cross_signer kNN top-1/top-5, the gallery being the training samples of other signers
    than the query's (logged when evaluate.py reports that protocol: signers known).
    """
    core = dist_utils.unwrap(model)
    metric = "cosine" if config.distance == "cosine" else "euclidean"   # as evaluation.inference.Embedder.metric
    metrics = {}
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
        metrics["_val_embeddings"] = val_emb
    return metrics


def selection_metric(config: TrainConfig, data: TrainingData) -> str:
    """The metric that chooses ``best.pth`` (``--select_metric``; ``auto`` resolved for this data).

    ``auto`` prefers accuracy on people the query's sign was not learnt from: cross-signer
    top-1 when :func:`evaluate_epoch` logs it (every training and validation sample names its
    signer), else validation top-1, else (no validation set) the training silhouette.
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


def train(config: TrainConfig, data: TrainingData | None = None, tracker=None) -> dict:
    """Train a model as ``config`` says; returns the final epoch's metrics.

    ``data`` replaces loading ``config.training_set_path`` (e.g. a signer subset built in
    memory by a cross-validation protocol); the paths are then only recorded.
    ``tracker`` replaces the one ``config.tracker`` names (same methods as training.tracking's).
    """
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
    average = WeightAverage(dist_utils.unwrap(model), config.ema_decay) if config.ema_decay > 0 else None
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=config.scheduler_factor,
                                                         patience=config.scheduler_patience)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype is torch.float16)
    hard_scheduler = HardMiningScheduler(threshold=config.hard_mining_scheduler_threshold,
                                         factor=config.hard_mining_scheduler_factor,
                                         min_active_fraction=config.hard_mining_scheduler_triplets_threshold)
    train_set = build_train_dataset(data, config)
    train_eval = build_eval_dataset(data.train, config)
    val_eval = build_eval_dataset(data.val, config) if data.val is not None else None
    if tracker is None and dist_utils.is_main():
        tracker = build_tracker(config.tracker, out_dir, config.to_dict(), config.dataset_project,
                                config.experiment_name)
    start_epoch, history = 0, []
    if config.resume and (out_dir / "last.pth").exists():
        start_epoch, history = resume_state(out_dir / "last.pth", model, optimizer, plateau, hard_scheduler, best,
                                             criterion, average=average)
        if tracker:
            tracker.restore(history)
        log.info("resumed from %s at epoch %d", out_dir / "last.pth", start_epoch)

    baseline = {}
    if dist_utils.is_main() and val_eval is not None and config.report_untrained:
        # Before training, so the learning curves can show it from the first epoch on.
        baseline = untrained_baseline(model_config, data, train_eval, val_eval, device, config)
        if hasattr(tracker, "log_baseline"):
            tracker.log_baseline(baseline)
    metrics: dict = {}
    for epoch in range(start_epoch, config.epochs):
        dist_utils.wait_for_main()  # DDP: other ranks wait here (long timeout) while rank 0 evaluates and saves
        started = time.perf_counter()
        train_set.set_epoch(epoch)
        apply_warmup(optimizer, config, epoch)
        batches = dist_utils.shard(epoch_batches(config, train_set, dist_utils.unwrap(model), epoch, device, hard_scheduler))
        loader = DataLoader(train_set, batch_sampler=batches, collate_fn=collate, num_workers=config.num_workers)
        metrics = {"epoch": epoch, **train_one_epoch(model, criterion, optimizer, loader, device, scaler, config,
                                                     hard_scheduler, amp_dtype, mining_hard(config, epoch),
                                                     average)}
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
            evaluated = average.model if average is not None else model  # the model best.pth will hold
            metrics.update(evaluate_epoch(evaluated, data, train_eval, val_eval, device, config))
            val_embeddings = metrics.pop("_val_embeddings", None)
            metrics["eval_seconds"] = time.perf_counter() - evaluation_started
        metrics["epoch_seconds"] = time.perf_counter() - started
        if not dist_utils.is_main():
            continue
        history.append(metrics)
        tracker.log_epoch(metrics)
        log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
        # The epoch's files before last.pth: a run killed before last.pth is written redoes the
        # whole epoch on --resume, so no output of the epoch can be missing afterwards.
        if val_embeddings is not None and config.tracker != "none" and (
                last_epoch or (config.plot_every > 0 and (epoch + 1) % config.plot_every == 0)):
            _plot_embeddings(val_embeddings, data, out_dir, epoch, tracker)
        improved = best.offer(epoch, metrics)
        payload = checkpoint_payload(model, config, model_config, data, metrics, history, epoch, best,
                                     optimizer, plateau, hard_scheduler, criterion, average)
        if improved:
            save_checkpoint(out_dir / "best.pth", payload)
        if config.save_checkpoints_every > 0 and (epoch + 1) % config.save_checkpoints_every == 0:
            save_checkpoint(out_dir / f"epoch_{epoch + 1}.pth", payload)
        save_checkpoint(out_dir / "last.pth", payload)
    if baseline:
        metrics.update({f"untrained_{k}": v for k, v in baseline.items()})
        log.info("untrained baseline: %s", " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k.startswith("untrained_")))
    if dist_utils.is_main() and best.epoch >= 0:
        log.info("best.pth: epoch %d by %s = %.4g", best.epoch, best.metric, best.value)
    if tracker:
        tracker.close()
    dist_utils.cleanup()
    return metrics


def checkpoint_payload(model, config, model_config, data, metrics, history, epoch, best: BestCheckpoint,
                       optimizer, plateau, hard_scheduler, criterion=None, average: WeightAverage | None = None) -> dict:
    """What ``best.pth``/``last.pth`` hold: the model (state, configs, vocabulary, clip preparation),
    the epoch's metrics and which epoch/metric chose ``best.pth``, and the state to resume from.

    With an EMA of the weights, ``state_dict`` is the average (what was evaluated and what
    evaluation and export load); the raw weights go to ``trained_state_dict`` for resuming."""
    trained = dist_utils.unwrap(model).state_dict()
    extra = {"trained_state_dict": trained, "weight_average": average.state_dict()} if average is not None else {}
    return {
        "state_dict": average.model.state_dict() if average is not None else trained, "config": config.to_dict(),
        "model_config": {**model_config.__dict__}, "label_names": list(data.label_names),
        "normalization": config.preprocessing(),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        "selection": best.to_dict(),
        "history": history, "epoch": epoch, "best_metric": best.value,
        "optimizer": optimizer.state_dict(), "scheduler": plateau.state_dict(),
        "hard_scheduler": hard_scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
        "criterion": criterion.state_dict() if criterion is not None else {}, **extra,
    }


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
