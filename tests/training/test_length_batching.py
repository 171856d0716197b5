"""Length-aware batches: random and P×K batches keep their structure, with far less padding."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from augmentations.torch_data import pad_batch
from datasets.errors import UsageError
from training.batches import epoch_batches, random_batches
from training.config import TrainConfig


def _mean_padding(batches, lengths):
    real = sum(lengths[b].sum() for b in batches)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    return 1 - real / padded


@pytest.mark.parametrize("n, batch_size, iters", [(2000, 32, 62), (500, 32, 40), (100, 32, 10), (70, 32, 5)])
def test_length_batches_are_distinct_samples_of_whole_passes(n, batch_size, iters):
    lengths = np.random.default_rng(1).integers(30, 121, n)
    batches = random_batches(n, batch_size, iters, np.random.default_rng(0), lengths=lengths)
    assert len(batches) == iters and all(len(b) == batch_size for b in batches)
    assert all(len(set(b)) == len(b) for b in batches)
    per_pass = n // batch_size
    for start in range(0, iters, per_pass):  # within one pass over the data, no sample twice
        seen = [i for b in batches[start:start + per_pass] for i in b]
        assert len(seen) == len(set(seen))


def test_length_batches_cut_the_padding_of_mixed_length_clips():
    lengths = np.random.default_rng(1).integers(30, 121, 2000)  # WLASL-like: 30-120 frames
    plain = random_batches(2000, 32, 62, np.random.default_rng(0))
    grouped = random_batches(2000, 32, 62, np.random.default_rng(0), lengths=lengths)
    assert _mean_padding(plain, lengths) > 0.3
    assert _mean_padding(grouped, lengths) < 0.05


def test_length_batches_still_mix_glosses_and_order():
    lengths = np.random.default_rng(1).integers(30, 121, 2000)
    labels = np.arange(2000) % 100
    a = random_batches(2000, 32, 62, np.random.default_rng(0), lengths=lengths)
    b = random_batches(2000, 32, 62, np.random.default_rng(1), lengths=lengths)
    assert a != b
    assert np.mean([len(set(labels[x])) for x in a]) > 20  # many glosses per batch, as random batches have
    assert len({tuple(x) for x in a}) == len(a)


def test_epoch_batches_use_lengths_only_when_asked():
    labels = np.arange(400) % 40
    lengths = np.random.default_rng(2).integers(30, 121, 400)
    config = TrainConfig(sampler="random", batch_size=16, length_batching=True)
    grouped = epoch_batches(config, labels, 0, lengths)
    plain = epoch_batches(TrainConfig(sampler="random", batch_size=16), labels, 0, lengths)
    assert _mean_padding(grouped, lengths) < _mean_padding(plain, lengths) / 3
    with pytest.raises(ValueError):
        epoch_batches(config, labels, 0)


def _groups(batches, k):
    return sorted(tuple((int(i), getattr(i, "occurrence", 0)) for i in b[j:j + k])
                  for b in batches for j in range(0, len(b), k))


@pytest.mark.parametrize("per_class", [20, 3])  # 3 < K: repeats (Draw) are regrouped with their group
def test_pk_length_batches_keep_every_gloss_group_and_p_distinct_glosses(per_class):
    classes, k = 100, 4
    labels = np.repeat(np.arange(classes), per_class)
    lengths = np.random.default_rng(1).integers(30, 121, len(labels))
    plain_config = TrainConfig(sampler="pk", batch_size=32, samples_per_class=k)
    plain = epoch_batches(plain_config, labels, 3, lengths)
    grouped = epoch_batches(TrainConfig(sampler="pk", batch_size=32, samples_per_class=k, length_batching=True),
                            labels, 3, lengths)
    assert len(grouped) == len(plain) and all(len(b) == 32 for b in grouped)
    assert _groups(grouped, k) == _groups(plain, k)  # the same K-clip groups, repeats and their rounds included
    for batch in grouped:
        glosses = labels[[int(i) for i in batch]].reshape(8, k)
        assert (glosses == glosses[:, :1]).all()           # each group of K is one gloss
        assert len(set(glosses[:, 0])) == 8                # P distinct glosses a batch
    plain_padding = _mean_padding([[int(i) for i in b] for b in plain], lengths)
    grouped_padding = _mean_padding([[int(i) for i in b] for b in grouped], lengths)
    assert grouped_padding < plain_padding - 0.05, (plain_padding, grouped_padding)
    assert plain == epoch_batches(plain_config, labels, 3, lengths)  # plain P×K draws are untouched
    assert grouped == epoch_batches(TrainConfig(sampler="pk", batch_size=32, samples_per_class=k,
                                                length_batching=True), labels, 3, lengths)  # deterministic


def test_pk_length_batches_mend_a_gloss_that_meets_itself_by_swapping_groups():
    from training.batches import _distinct_glosses, pk_batches_by_length
    labels = np.array([0, 0, 1, 1, 2, 2])
    lengths = np.array([100, 100, 10, 10, 50, 50])
    run = [[0, 1, 2, 3], [2, 3, 4, 5]]  # gloss 1 in both batches: sorted by length, its two groups come first
    out = pk_batches_by_length(run, labels, lengths, 2, np.random.default_rng(0))
    assert sorted(map(sorted, out)) == [[0, 1, 2, 3], [2, 3, 4, 5]]  # mended: the only valid grouping
    assert all(len(set(labels[b])) == 2 for b in out)
    assert _distinct_glosses([[[0, 1], [0, 1]]], labels) is None  # one batch, one gloss twice: nothing to swap with
