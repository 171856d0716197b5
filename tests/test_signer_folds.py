"""The nested person-disjoint protocol (bench/signer_folds.py) on tiny data: folds, galleries, choice, resume."""
from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.sequences import SequenceSet

REPO_ROOT = Path(__file__).resolve().parents[1]


def _load_module():
    spec = importlib.util.spec_from_file_location("signer_folds", REPO_ROOT / "bench" / "signer_folds.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("signer_folds", module)
    spec.loader.exec_module(module)
    return module


signer_folds = _load_module()

TINY_RECIPE = ["--num_encoder_layers", "1", "--num_decoder_layers", "1", "--dim_feedforward", "32",
               "--vector_length", "8", "--epochs", "1", "--epoch_iters", "2", "--batch_size", "8",
               "--samples_per_class", "2"]


def _signers_and_labels():
    # s0..s4; gloss 2 is signed only by s1 and s3, gloss 3 only by s4.
    rows = [("s0", 0), ("s0", 1), ("s1", 0), ("s1", 2), ("s2", 0), ("s2", 1), ("s3", 2), ("s3", 1), ("s4", 3)]
    rows = [r for r in rows for _ in range(2)]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


def test_folds_are_signer_disjoint_deterministic_and_cover_everyone():
    signers, labels = _signers_and_labels()
    folds = signer_folds.signer_folds(signers, labels, 3)
    flat = [s for fold in folds for s in fold]
    assert sorted(flat) == sorted(set(signers.tolist()))
    assert len(flat) == len(set(flat))
    assert all(folds)
    assert folds == signer_folds.signer_folds(signers[::-1], labels[::-1], 3)


def test_the_only_two_signers_of_a_gloss_share_a_fold():
    signers, labels = _signers_and_labels()
    for k in (2, 3, 4):
        folds = signer_folds.signer_folds(signers, labels, k)
        assert any({"s1", "s3"} <= set(fold) for fold in folds)


def test_too_many_folds_is_a_usage_error():
    from datasets.errors import UsageError
    signers, labels = _signers_and_labels()
    with pytest.raises(UsageError, match="--folds"):
        signer_folds.signer_folds(signers, labels, 6)


def _toy_set(signers, labels) -> SequenceSet:
    clips = [np.full((3, 54, 2), 0.5, np.float32) for _ in labels]
    return SequenceSet.from_sequences(clips, labels, [f"g{i}" for i in range(labels.max() + 1)],
                                      video_ids=[f"v{i}" for i in range(len(labels))], signer_ids=signers)


def test_gallery_never_holds_the_query_signer():
    # Query 0 (s0, gloss 0) sits ON its own signer's gloss-1 sample; the nearest OTHER
    # person's sample is gloss 0. Only with the signer excluded is top-1 right.
    signers = np.array(["s0", "s0", "s1", "s1"])
    labels = np.array([0, 1, 0, 1])
    emb = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], np.float32)
    hits = signer_folds.fold_hits(emb, _toy_set(signers, labels), np.array([0, 1]))
    assert hits["top1"][0]
    # Same geometry with the gloss-1 sample moved to another held-out signer: it now wins.
    signers = np.array(["s0", "s2", "s1", "s1"])
    hits = signer_folds.fold_hits(emb, _toy_set(signers, labels), np.array([0, 1]))
    assert not hits["top1"][0]


def test_answerable_seen_and_unseen_groups():
    signers = np.array(["a", "a", "b", "b", "c"])
    labels = np.array([0, 1, 0, 1, 2])
    emb = np.eye(5, dtype=np.float32)
    hits = signer_folds.fold_hits(emb, _toy_set(signers, labels), train_labels=np.array([0]))
    assert hits["answerable"].tolist() == [True, True, True, True, False]   # gloss 2: no other held-out person
    assert hits["seen"].tolist() == [True, False, True, False, False]
    summary = signer_folds.summarize_hits(hits)
    assert (summary["all_n"], summary["multi_signer_n"], summary["seen_n"], summary["unseen_n"]) == (5, 4, 2, 2)
    assert summary["all_top5"] <= 4 / 5  # the unanswerable query can never be right
    assert signer_folds.answerable_count(labels, signers) == summary["multi_signer_n"]


def test_macro_top1_weighs_every_gloss_alike():
    top1 = np.array([True, True, True, False])
    glosses = np.array([0, 0, 0, 1])
    assert signer_folds.macro_top1(top1, glosses) == pytest.approx(0.5)    # micro would be 0.75
    hits = {"top1": top1, "top5": top1, "answerable": np.array([True, True, True, True]),
            "seen": np.ones(4, bool), "gloss": glosses}
    assert signer_folds.summarize_hits(hits)["macro_top1"] == pytest.approx(0.5)


def test_protocol_reports_the_gap_beside_untrained(tiny_synthetic_dataset, tmp_path):
    from datasets.loading import load_sequence_set
    sequences = load_sequence_set(tiny_synthetic_dataset, cache=False)
    report = signer_folds.run(sequences, {"tiny": shlex.join(TINY_RECIPE)}, folds=2, seeds=(0, 1),
                              work_dir=str(tmp_path))
    json.dumps(report, allow_nan=False)  # plain JSON, no NaN
    assert report["signers"] == len(set(sequences.signer_ids.tolist()))
    folds = [set(f) for f in report["folds"]]
    assert not folds[0] & folds[1]
    assert [s["chosen"] for s in report["selection"]] == ["tiny", "tiny"]   # one recipe: nothing to choose
    assert "inner" not in report["selection"][0] and report["inner_folds"] is None
    for which in ("trained", "untrained"):
        assert report[which]["all_n"] == len(sequences)            # every sample is a query once per seed
        for key in ("all_top1", "all_top5", "multi_signer_top1", "multi_signer_top5", "macro_top1"):
            value = report[which][key]["mean"]
            assert value is not None and 0.0 <= value <= 1.0
        assert report[which]["all_top1"]["mean"] <= report[which]["all_top5"]["mean"]
    for t, u, g in zip(report["per_seed"]["trained"], report["per_seed"]["untrained"], report["per_seed"]["gap"]):
        for key in ("multi_signer_top1", "multi_signer_top5", "macro_top1"):
            assert g[key] == pytest.approx(t[key] - u[key], abs=2e-4)
    for key in ("multi_signer_top1", "multi_signer_top5", "macro_top1"):
        gaps = [g[key] for g in report["per_seed"]["gap"]]
        assert report["gap"][key]["mean"] == pytest.approx(np.mean(gaps), abs=2e-4)
        assert report["gap"][key]["std_seeds"] == pytest.approx(np.std(gaps), abs=2e-4)
        fold_gaps = [f["gap"][key] for f in report["per_fold"]]
        assert len(fold_gaps) == 4 and report["gap"][key]["std_folds"] == pytest.approx(np.std(fold_gaps), abs=2e-4)
    timings = report["timings"]
    assert [t["training"] for t in timings["trainings"]] == ["outer0-tiny-seed0", "outer0-tiny-seed1",
                                                              "outer1-tiny-seed0", "outer1-tiny-seed1"]
    # Recorded for the report (never compared with a limit: timings belong to benchmarks).
    recorded = [t["train_seconds"] for t in timings["trainings"]] + [timings["total_seconds"]]
    assert all(isinstance(value, float) for value in recorded)
    ensemble = report["seed_ensemble"]                              # the two seeds as one model, per fold
    assert ensemble["members"] == [0, 1] and len(ensemble["per_fold"]) == 2
    assert ensemble["trained"]["all_n"] == len(sequences)          # every sample a query once
    for key in ("multi_signer_top1", "multi_signer_top5", "macro_top1"):
        assert ensemble["gap"][key] == pytest.approx(ensemble["trained"][key] - ensemble["untrained"][key], abs=2e-4)
    # Scores kept without embeddings (an older run's): resumed, nothing retrained, no ensemble figures.
    for npz in tmp_path.glob("*.npz"):
        npz.unlink()
    again = signer_folds.run(sequences, {"tiny": shlex.join(TINY_RECIPE)}, folds=2, seeds=(0, 1),
                             work_dir=str(tmp_path))
    assert again["seed_ensemble"] is None and all(t["resumed"] for t in again["timings"]["trainings"])
    assert again["gap"] == report["gap"]


def test_unit_concatenation_averages_the_members_cosines_and_one_seed_has_no_ensemble(tiny_synthetic_dataset):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 4)) * 5, rng.normal(size=(6, 3)) * 0.1     # different scales and sizes
    ensemble = signer_folds.unit_concatenation([a, b])

    def cosines(x):
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        return unit @ unit.T
    assert np.allclose(cosines(ensemble), (cosines(a) + cosines(b)) / 2)
    assert np.allclose(np.linalg.norm(ensemble, axis=1), 1.0)
    assert signer_folds.seed_ensemble([(0, 0, {})], None, Path("."), {}) is None


# --- the nested protocol, on 8 synthetic people: 2 outer folds of 4, inner folds of 2

GOOD = shlex.join(TINY_RECIPE + ["--vector_length", "16"])
BROKEN = shlex.join(TINY_RECIPE + ["--vector_length", "8"])


def _oracle_embed(model, sequences, config):
    """The GOOD recipe embeds every clip at its gloss (perfect); the BROKEN one puts all clips at one point."""
    if config.vector_length == 16:
        return np.eye(16, dtype=np.float32)[sequences.labels]
    return np.zeros((len(sequences), config.vector_length), np.float32)


def _record(monkeypatch, events: list):
    """Record every training (its name and people) and every scoring (its people), in order."""
    import training.engine
    real_train, real_hits = training.engine.train, signer_folds.fold_hits

    def train(config, data=None, tracker=None):
        events.append(("train", config.experiment_name, set(data.train.signer_ids.tolist())))
        return real_train(config, data=data, tracker=tracker)

    def fold_hits(embeddings, held_out, train_labels, metric="euclidean"):
        events.append(("score", None, set(held_out.signer_ids.tolist())))
        return real_hits(embeddings, held_out, train_labels, metric)

    monkeypatch.setattr(training.engine, "train", train)
    monkeypatch.setattr(signer_folds, "fold_hits", fold_hits)
    monkeypatch.setattr(signer_folds, "_embed", _oracle_embed)


@pytest.fixture(scope="module")
def eight_people(tmp_path_factory) -> SequenceSet:
    from datasets.loading import load_sequence_set
    from datasets.synthetic import write_synthetic_dataset
    folder = tmp_path_factory.mktemp("eight_people")
    write_synthetic_dataset(folder, num_classes=6, num_signers=8, samples_per_class_per_signer=2, val_signers=1,
                            seed=5, min_frames=10, max_frames=20, name="eight")
    return load_sequence_set(folder, cache=False)


@pytest.fixture(scope="module")
def nested(eight_people, tmp_path_factory):
    """One nested run (BROKEN listed first, so choosing the first recipe would be wrong) and what it did."""
    events: list = []
    work_dir = tmp_path_factory.mktemp("nested_work")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _record(monkeypatch, events)
        report = signer_folds.run(eight_people, {"broken": BROKEN, "good": GOOD}, folds=2, inner=2, seeds=(0, 1),
                                  work_dir=str(work_dir))
    return report, events, work_dir


def test_nested_trains_every_recipe_inside_and_the_chosen_one_outside(nested):
    report, events, _ = nested
    names = [name for kind, name, _ in events if kind == "train"]
    assert len(names) == 2 * (2 * 2 + 2)            # outer folds × (inner folds × recipes + seeds)
    assert sorted(n for n in names if "inner" in n) == sorted(f"outer{f}-inner{j}-{r}-seed0" for f in (0, 1)
                                                              for j in (0, 1) for r in ("broken", "good"))


def test_outer_held_out_people_never_train_in_their_fold(nested):
    report, events, _ = nested
    for kind, name, people in events:
        if kind == "train":
            outer = int(name.split("-")[0].removeprefix("outer"))
            assert not people & set(report["folds"][outer]), name


def test_inner_folds_hold_only_outer_training_people(nested, eight_people):
    report, events, _ = nested
    everyone = set(eight_people.signer_ids.tolist())
    trained_on = {name: people for kind, name, people in events if kind == "train"}
    for f, entry in enumerate(report["selection"]):
        outer_train = everyone - set(report["folds"][f])
        inner = [set(part) for part in entry["inner_folds"]]
        assert set().union(*inner) == outer_train and sum(map(len, inner)) == len(outer_train)
        for j, part in enumerate(inner):
            for recipe in ("broken", "good"):
                assert trained_on[f"outer{f}-inner{j}-{recipe}-seed0"] == outer_train - part
        assert trained_on[f"outer{f}-{entry['chosen']}-seed0"] == outer_train


def test_every_gallery_is_other_held_out_people_only(nested):
    report, events, _ = nested
    held_out_sets = [set(f) for f in report["folds"]] + [set(p) for e in report["selection"] for p in e["inner_folds"]]
    last = max(i for i, (kind, _, _) in enumerate(events) if kind == "train")
    per_training, ensemble = events[:last + 3], events[last + 3:]   # a training's scores: trained, untrained
    last_training = None
    for kind, _, people in per_training:
        if kind == "train":
            last_training = people
            continue
        assert not people & last_training            # no training person in the gallery
        assert people in held_out_sets               # exactly one fold's held-out people
    # The seed ensemble scores each outer fold's held-out people (trained, then untrained): they trained in
    # none of that fold's reported trainings, which used exactly the other people.
    assert [people for _, _, people in ensemble] == [set(f) for f in report["folds"] for _ in range(2)]


def test_the_chosen_recipe_has_the_best_inner_score(nested):
    report, _, _ = nested
    for entry in report["selection"]:
        means = entry["inner_multi_signer_top1"]
        for recipe, summaries in entry["inner"].items():
            assert means[recipe] == pytest.approx(np.mean([s["multi_signer_top1"] for s in summaries]), abs=2e-4)
        assert entry["chosen"] == max(means, key=means.get) == "good"
        assert means["good"] > means["broken"]
    assert {f["recipe"] for f in report["per_fold"]} == {"good"}


def test_choose_recipe_takes_the_best_mean_and_the_first_on_ties():
    scores = {"a": [{"multi_signer_top1": 0.5}, {"multi_signer_top1": 0.7}],
              "b": [{"multi_signer_top1": 0.9}, {"multi_signer_top1": float("nan")}],
              "c": [{"multi_signer_top1": 0.9}, {"multi_signer_top1": 0.9}]}
    chosen, means = signer_folds.choose_recipe(scores)
    assert chosen == "b" and means["a"] == pytest.approx(0.6)


def test_a_rerun_resumes_and_skips_finished_trainings(nested, eight_people, monkeypatch):
    report, _, work_dir = nested
    recipes = {"broken": BROKEN, "good": GOOD}
    events: list = []
    _record(monkeypatch, events)
    again = signer_folds.run(eight_people, recipes, folds=2, inner=2, seeds=(0, 1), work_dir=str(work_dir))
    assert not [e for e in events if e[0] == "train"]
    assert all(t["resumed"] for t in again["timings"]["trainings"])
    drop = ("timings",)
    assert {k: v for k, v in again.items() if k not in drop} == {k: v for k, v in report.items() if k not in drop}
    (work_dir / "outer1-good-seed1.json").unlink()
    events.clear()
    signer_folds.run(eight_people, recipes, folds=2, inner=2, seeds=(0, 1), work_dir=str(work_dir))
    assert [e[1] for e in events if e[0] == "train"] == ["outer1-good-seed1"]


def test_stored_scores_of_another_training_are_not_reused(nested, eight_people, monkeypatch, tmp_path):
    work_dir = tmp_path / "work"
    shutil.copytree(nested[2], work_dir)
    events: list = []
    _record(monkeypatch, events)
    signer_folds.run(eight_people, {"good": GOOD + " --lr 0.001"}, folds=2, seeds=(0,), work_dir=str(work_dir))
    assert len([e for e in events if e[0] == "train"]) == 2   # same file names, other flags: trained anew


def test_a_missing_data_folder_is_one_line_and_exit_2(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    assert signer_folds.main(["--data", str(missing), "--quiet", "--work-dir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0]


@pytest.mark.parametrize("flags", ["--bogus 1", "--epochs many", "--loss cosface", "--training_set_path x.csv",
                                   "--training-set-path x.csv", "--validation-set-path=v.csv"])
def test_bad_recipe_flags_are_one_line_and_exit_2(tiny_synthetic_dataset, tmp_path, capsys, flags):
    argv = ["--data", str(tiny_synthetic_dataset), "--quiet", "--work-dir", str(tmp_path), "--recipe", "ok", "",
            "--recipe", "bad", flags]
    assert signer_folds.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --recipe bad:")


def test_recipes_come_from_the_command_line_as_given():
    rest, recipes = signer_folds.split_recipes(["--folds", "3", "--recipe", "a", "--canonical_handedness",
                                                "--recipe", "b", "--config real --loss cosface --distance cosine"])
    assert rest == ["--folds", "3"]
    assert recipes == {"a": "--canonical_handedness", "b": "--config real --loss cosface --distance cosine"}
    assert signer_folds.split_recipes(["--seeds", "0", "--", "--epochs", "2"]) == (["--seeds", "0"],
                                                                                   {"recipe": "--epochs 2"})
    assert signer_folds.split_recipes([])[1] == {"default": ""}


def test_several_sources_are_joined_by_gloss_name(tiny_synthetic_dataset):
    from datasets.loading import load_sequence_set
    folder = load_sequence_set(tiny_synthetic_dataset)
    csv = load_sequence_set(tiny_synthetic_dataset / "tiny_val.csv")
    joined = signer_folds.load_data([tiny_synthetic_dataset, tiny_synthetic_dataset / "tiny_val.csv"])
    assert len(joined) == len(folder) + len(csv)
    assert sorted(joined.label_names) == sorted(set(folder.label_names) | set(csv.label_names))
    names = np.asarray(joined.label_names)[joined.labels]
    assert names.tolist() == (np.asarray(folder.label_names)[folder.labels].tolist()
                              + np.asarray(csv.label_names)[csv.labels].tolist())


def test_an_inner_fold_of_one_person_cannot_rank_recipes(eight_people):
    from datasets.errors import UsageError
    people = sorted(set(eight_people.signer_ids.tolist()))[:3]     # inner folds of 2 and 1 people
    with pytest.raises(UsageError, match="--inner-folds"):
        signer_folds.inner_folds(eight_people, people, 2)


def test_untrained_model_is_the_training_start(tiny_synthetic_dataset):
    from training.cli import config_from_args
    config, _ = config_from_args(TINY_RECIPE + ["--seed", "5"])
    a = signer_folds.untrained_model(config, 8)
    b = signer_folds.untrained_model(config, 8)
    c = signer_folds.untrained_model(config_from_args(TINY_RECIPE + ["--seed", "6"])[0], 8)
    for (name, pa), pb, pc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.state_dict().values(), c.state_dict().values()))


def test_the_untrained_baseline_of_a_pretrained_recipe_is_the_random_network(tiny_checkpoint):
    """Pre-training counts as training: the baseline is the same seed's randomly initialised network."""
    from dataclasses import replace
    from training.cli import config_from_args
    config, _ = config_from_args(TINY_RECIPE + ["--seed", "5"])
    plain = signer_folds.untrained_model(config, 8)
    pretrained = signer_folds.untrained_model(replace(config, init_checkpoint=str(tiny_checkpoint)), 8)
    for (name, a), b in zip(plain.state_dict().items(), pretrained.state_dict().values()):
        assert torch.equal(a, b), name


def test_init_checkpoint_starts_training_from_those_weights(tiny_checkpoint, tiny_synthetic_dataset, tmp_path):
    from datasets.errors import UsageError
    from models.spoter import build_model
    from models.checkpoint import load_checkpoint
    from training.config import TrainConfig
    from training.engine import load_initial_weights
    stored = load_checkpoint(tiny_checkpoint)
    model = build_model(stored["model_config"])
    load_initial_weights(model, str(tiny_checkpoint))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, stored["state_dict"][name]), name
    other = build_model({**stored["model_config"], "num_encoder_layers": 2})
    with pytest.raises(UsageError, match="init_checkpoint"):
        load_initial_weights(other, str(tiny_checkpoint))
    assert TrainConfig().init_checkpoint == ""


def test_handedness_study_option_runs_on_clips():
    # Regression: the study's --canonical_handedness variant crashed on every (T, 54, 2) clip.
    from datasets import layout
    from augmentations.preprocess import canonicalize_handedness, left_hand_dominant
    clip = np.zeros((4, layout.NUM_POINTS, 2), np.float32)
    clip[:, layout.BODY_SLICE] = 0.5
    clip[:, layout.LEFT_HAND_SLICE] = 0.3
    assert left_hand_dominant(clip)
    flipped = canonicalize_handedness(clip)
    assert (flipped[:, layout.RIGHT_HAND_SLICE] != 0).all() and (flipped[:, layout.LEFT_HAND_SLICE] == 0).all()
    assert not left_hand_dominant(flipped)
