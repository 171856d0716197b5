"""Metric-learning parts: distances, miners, losses, hard-batch grouping."""
from training.distances import BaseDistance, CosineDistance, EuclideanDistance
from training.hard_grouping import HardMiningScheduler, group_hard_batches, hardness_matrix
from training.losses import TripletMarginLoss, batch_all_triplet_sums
from training.miners import BaseMiner, BatchAllMiner, BatchHardMiner

__all__ = [
    "BaseDistance", "CosineDistance", "EuclideanDistance",
    "HardMiningScheduler", "group_hard_batches", "hardness_matrix",
    "TripletMarginLoss", "batch_all_triplet_sums",
    "BaseMiner", "BatchAllMiner", "BatchHardMiner",
]
