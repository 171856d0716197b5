"""Building the training and validation data from a config."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augmentations import spoter_augmentations
from augmentations.torch_data import SignDataset
from datasets.errors import DataError, UsageError
from datasets.sequences import SequenceSet, concatenate
from training.config import TrainConfig, path_list

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    train: SequenceSet
    val: SequenceSet | None
    label_names: list[str]


def _load(path: str, split: str | None, config: TrainConfig, split_flag: str = "") -> SequenceSet:
    """One training or validation source; ``split`` picks a landmark folder's split.

    ``split_flag`` names the flag that asked for a split explicitly: a CSV file holds one
    split already, so asking it for one is refused instead of being ignored.
    """
    from datasets.loading import load_sequence_set
    if config.dataset_loader == "clearml":
        from clearml import Dataset
        folder = Dataset.get(dataset_name=config.dataset_name, dataset_project=config.dataset_project).get_local_copy()
        path = str(Path(folder) / path)
    source = Path(path)
    if not source.exists():
        raise DataError(f"{path}: dataset not found")
    if split_flag and not source.is_dir():
        raise UsageError(f"{split_flag} {split}: {path} is a file (one split already); {split_flag} selects a split "
                         "of a landmark folder's index")
    skipped: list[tuple[str, str]] = []
    sequences = load_sequence_set(source, split=split if source.is_dir() else None, progress=True, skipped=skipped)
    if skipped and not config.skip_bad_files:
        # Training quietly on fewer samples than the index names would change results; the
        # first bad file is named (its reason starts with its path) and the run stops.
        more = f"; {len(skipped) - 1} more unusable file(s)" if len(skipped) > 1 else ""
        raise DataError(f"{skipped[0][1]}{more} (fix or remove them, or pass --skip_bad_files to train on "
                        f"the other {len(sequences)} samples of {path})")
    return sequences


def _validation_split(path: str, config: TrainConfig) -> str | None:
    """``--val_split``, else a landmark folder's ``val`` split if it has one, else its ``test`` split."""
    if config.val_split or not Path(path).is_dir():
        return config.val_split or None
    from datasets.loading import load_sequence_set
    every = load_sequence_set(Path(path))
    return "val" if "val" in set(every.splits) else "test"


def _load_all(paths: list[str], splits: list[str | None], config: TrainConfig, split_flag: str) -> SequenceSet:
    """Several sources joined into one set, glosses merged by name (the first source's order first)."""
    sets = [_load(path, split, config, split_flag) for path, split in zip(paths, splits)]
    if len(sets) == 1:
        return sets[0]
    for path, part in zip(paths, sets):
        log.info("%s: %d samples, %d glosses", path, len(part), len(set(part.labels.tolist())))
        if all(name.isdigit() for name in part.label_names):
            # A published CSV without label_name column or id_to_label.json: its "names" are ids,
            # and id 3 of one vocabulary is not id 3 of another.
            log.warning("%s: its glosses have no names (only label ids); joined with the other sources by id, "
                        "which is only right if they share one vocabulary (add a label_name column or "
                        "id_to_label.json beside it)", path)
    return concatenate(sets)


def load_training_data(config: TrainConfig) -> TrainingData:
    paths = path_list(config.training_set_path)
    if not paths:
        raise UsageError("--training_set_path: no training data given")
    train = _load_all(paths, [config.train_split or "train"] * len(paths), config,
                      "--train_split" if config.train_split else "")
    if len(train) == 0:
        raise DataError(f"{' '.join(paths)}: no training samples")
    val = None
    val_paths = path_list(config.validation_set_path)
    if val_paths:
        val = _load_all(val_paths, [_validation_split(p, config) for p in val_paths], config,
                        "--val_split" if config.val_split else "")
        names = train.label_names + [n for n in val.label_names if n not in set(train.label_names)]
        val = val.with_label_names(names)
        train = train.with_label_names(names)
    return TrainingData(train, val, train.label_names)


def build_train_dataset(data: TrainingData, config: TrainConfig) -> SignDataset:
    transform = spoter_augmentations(config.augmentations_prob, config.gaussian_mean, config.gaussian_std,
                                     config.mirror_prob, config.augmentation_strength,
                                     config.time_warp_prob, config.hand_dropout_prob)
    return SignDataset(data.train, transform, seed=config.seed, settings=config.preprocessing())


def build_eval_dataset(sequences: SequenceSet, config: TrainConfig) -> SignDataset:
    return SignDataset(sequences, None, seed=config.seed, settings=config.preprocessing())


def check_batching(data: TrainingData, config: TrainConfig) -> None:
    """Fail early, with the numbers, when the batch settings cannot work on this data."""
    if config.batch_size > len(data.train):
        raise UsageError(f"--batch_size {config.batch_size} is larger than the training set ({len(data.train)} samples)")
    counts = np.bincount(data.train.labels)
    usable = int((counts >= 2).sum())
    if usable < 2 and not config.classification_model:
        raise UsageError("triplet training needs at least 2 classes with 2 or more samples each")
    if config.sampler == "pk":
        p = max(2, config.batch_size // config.samples_per_class)  # as training.batches.epoch_batches draws
        if p > usable:
            raise UsageError(f"--batch_size {config.batch_size} / --samples_per_class {config.samples_per_class} "
                             f"asks for P={p} classes per batch, but the training set has only {usable} classes "
                             "with 2 or more samples (lower --batch_size or raise --samples_per_class)")
        single = int((counts == 1).sum())
        if single:
            log.warning("%d class(es) have a single training sample; the P×K sampler never draws them", single)
