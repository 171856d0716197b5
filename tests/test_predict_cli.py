"""``predict.py``: landmark files, folders and videos against a gallery; one-line errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import predict
from datasets import layout
from datasets.loading import load_sequence_set
from entrypoint import run_cli
from evaluation.gallery import Gallery, build_gallery
from evaluation.inference import load_embedder


@pytest.fixture(scope="module")
def gallery_file(tiny_checkpoint, tiny_synthetic_dataset, tmp_path_factory) -> Path:
    sequences = load_sequence_set(tiny_synthetic_dataset, cache=False)
    path = tmp_path_factory.mktemp("gallery") / "gallery.npz"
    build_gallery(load_embedder(tiny_checkpoint), sequences).save(path)
    return path


def run(argv, capsys):
    status = run_cli(predict.main, argv)
    out, err = capsys.readouterr()
    return status, out, err


def index_rows(folder: Path) -> dict[str, str]:
    lines = (folder / "index.csv").read_text().splitlines()[1:]
    return {line.split(",")[0]: line.split(",")[1] for line in lines}


def test_landmark_file_prints_five_glosses_with_distances(tiny_checkpoint, tiny_synthetic_dataset, gallery_file,
                                                          capsys):
    video_id, gloss = next(iter(index_rows(tiny_synthetic_dataset).items()))
    clip = tiny_synthetic_dataset / "landmarks" / f"{video_id}.npy"
    status, out, err = run(["--checkpoint", str(tiny_checkpoint), "--gallery", str(gallery_file), str(clip)], capsys)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(str(clip))
    ranked = [line.split() for line in lines[1:]]
    assert [r[0] for r in ranked] == ["1.", "2.", "3.", "4.", "5."]
    assert ranked[0][1] == gloss and float(ranked[0][2]) < 1e-3     # the clip itself is in the gallery
    assert len({r[1] for r in ranked}) == 5                        # five different glosses
    distances = [float(r[2]) for r in ranked]
    assert distances == sorted(distances)


def test_folder_and_json_output(tiny_checkpoint, tiny_synthetic_dataset, gallery_file, tmp_path, capsys):
    rows = list(index_rows(tiny_synthetic_dataset).items())[:3]
    for video_id, _ in rows:
        shutil.copy(tiny_synthetic_dataset / "landmarks" / f"{video_id}.npy", tmp_path)
    (tmp_path / "notes.txt").write_text("ignored")
    status, out, err = run(["--checkpoint", str(tiny_checkpoint), "--gallery", str(gallery_file), str(tmp_path),
                            "--json", "--top-k", "3"], capsys)
    assert status == 0, err
    predictions = json.loads(out)["predictions"]
    assert [Path(p["input"]).stem for p in predictions] == sorted(v for v, _ in rows)
    truth = dict(rows)
    for p in predictions:
        assert len(p["top"]) == 3 and p["top"][0]["gloss"] == truth[Path(p["input"]).stem]
        assert p["frames"] > 0


def test_bad_inputs_are_reported_and_the_rest_still_run(tiny_checkpoint, tiny_synthetic_dataset, gallery_file,
                                                        tmp_path, capsys):
    nobody = tmp_path / "nobody.npy"
    np.save(nobody, np.zeros((10, layout.RAW_FEATURES), np.float32))
    no_hands = tmp_path / "no_hands.npy"
    body_only = np.zeros((10, layout.RAW_FEATURES), np.float32)
    body_only[:, :layout.NUM_POSE * 2] = 0.5
    np.save(no_hands, body_only)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((10, 7), np.float32))
    good = tiny_synthetic_dataset / "landmarks" / f"{next(iter(index_rows(tiny_synthetic_dataset)))}.npy"
    status, out, err = run(["--checkpoint", str(tiny_checkpoint), "--gallery", str(gallery_file), str(nobody),
                            str(no_hands), str(wrong), str(good)], capsys)
    assert status == 1
    errors = err.strip().splitlines()
    assert errors == [f"error: {nobody}: no person detected in any of its 10 frames",
                      (f"error: {no_hands}: no hands detected in any of its 10 frames "
                       "(the signer's hands must be visible)"),
                      f"error: {wrong}: expected shape (frames, 150), got (10, 7)"]
    assert out.startswith(str(good)) and "5." in out


def test_gallery_of_other_weights_is_refused(tiny_checkpoint, tiny_synthetic_dataset, tmp_path, capsys):
    other = tmp_path / "untrained.npz"
    sequences = load_sequence_set(tiny_synthetic_dataset / "tiny_val.csv", cache=False)
    build_gallery(load_embedder(tiny_checkpoint, untrained=True), sequences).save(other)
    clip = next((tiny_synthetic_dataset / "landmarks").glob("*.npy"))
    status, _, err = run(["--checkpoint", str(tiny_checkpoint), "--gallery", str(other), str(clip)], capsys)
    assert status == 1 and "built with other weights" in err and len(err.strip().splitlines()) == 1
    status, out, _ = run(["--checkpoint", str(tiny_checkpoint), "--gallery", str(other), str(clip),
                          "--allow-model-mismatch"], capsys)
    assert status == 0 and "1." in out


def test_usage_errors(tiny_checkpoint, gallery_file, tmp_path, capsys):
    status, _, err = run(["--checkpoint", str(tiny_checkpoint), "--gallery", str(gallery_file), str(tmp_path)], capsys)
    assert status == 2 and "holds no landmark (.npy, .pose, .parquet, .json, OpenPose folder) or video" in err
    status, _, err = run(["--checkpoint", str(tiny_checkpoint), "--gallery", str(tmp_path / "g.npz"), "x.npy"], capsys)
    assert status == 1 and "gallery file not found" in err


@pytest.mark.slow
def test_real_video_and_a_video_without_anyone(tiny_checkpoint, gallery_file, shared_dir, tmp_path, capsys):
    cv2 = pytest.importorskip("cv2")
    video = shared_dir / "data" / "video" / "test_video.mp4"
    if not video.is_file():
        pytest.skip(f"{video} not found")
    empty = tmp_path / "empty_room.mp4"
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"mp4v"), 25, (160, 120))
    for i in range(8):
        writer.write(np.full((120, 160, 3), 30 * i, np.uint8))
    writer.release()
    status, out, err = run(["--checkpoint", str(tiny_checkpoint), "--gallery", str(gallery_file), str(video),
                            str(empty), "--json"], capsys)
    assert status == 1
    assert err.strip().splitlines() == [f"error: {empty}: no person detected in any of its 8 frames"]
    first = json.loads(out)["predictions"][0]
    assert first["input"] == str(video) and first["frames"] > 10
    assert len(first["top"]) == 5 and all(np.isfinite(t["distance"]) for t in first["top"])


def test_every_pose_format_of_a_real_clip_gives_the_npys_top5(tiny_checkpoint, real_dev_dir, tmp_path, capsys):
    """The same real clip as .npy, .pose (written by pose-format), Kaggle parquet, an OpenPose
    folder and MMPose JSON: the same five glosses at the same distances."""
    from tests import pose_fixtures as fixtures

    gallery = tmp_path / "real.npz"
    build_gallery(load_embedder(tiny_checkpoint), load_sequence_set(real_dev_dir, cache=False)).save(gallery)
    video_id = next(iter(index_rows(real_dev_dir)))
    npy = real_dev_dir / "landmarks" / f"{video_id}.npy"
    raw = np.load(npy)
    inputs = [npy, fixtures.write_pose_file(tmp_path / f"{video_id}.pose", raw, 1280, 720),
              fixtures.write_kaggle_parquet(tmp_path / f"{video_id}.parquet", raw),
              fixtures.write_openpose_folder(tmp_path / "openpose", raw, 1280, 720),
              fixtures.write_mmpose_json(tmp_path / f"{video_id}.json", raw, 1280, 720)]
    status, out, err = run(["--checkpoint", str(tiny_checkpoint), "--gallery", str(gallery), "--json",
                            "--frame-size", "1280x720", *map(str, inputs)], capsys)
    assert status == 0, err
    predictions = json.loads(out)["predictions"]
    assert [p["input"] for p in predictions] == [str(p) for p in inputs]
    reference = predictions[0]["top"]
    assert len(reference) == 5
    for p in predictions[1:]:
        assert [t["gloss"] for t in p["top"]] == [t["gloss"] for t in reference], p["input"]
        # a distance near 0 (the clip itself is in the gallery) carries float32 cancellation of ~1e-3
        np.testing.assert_allclose([t["distance"] for t in p["top"]], [t["distance"] for t in reference], atol=2e-3)


def test_hnsw_index_answers_the_same_top5_as_exact_and_reports_its_recall(tiny_checkpoint, tiny_synthetic_dataset,
                                                                           gallery_file, tmp_path, capsys):
    pytest.importorskip("faiss")
    gallery = tmp_path / "gallery.npz"
    shutil.copy(gallery_file, gallery)
    clips = sorted(str(p) for p in (tiny_synthetic_dataset / "landmarks").glob("*.npy"))[::4]
    base = ["--checkpoint", str(tiny_checkpoint), "--gallery", str(gallery), "--json", *clips]
    status, exact_out, err = run([*base, "--index", "exact"], capsys)
    assert status == 0, err
    status, hnsw_out, err = run([*base, "--index", "hnsw", "--recall"], capsys)
    assert status == 0, err
    assert (tmp_path / "gallery.hnsw.npz").is_file()           # saved beside the gallery for the next run
    exact, hnsw = json.loads(exact_out)["predictions"], json.loads(hnsw_out)["predictions"]
    for e, h in zip(exact, hnsw):
        assert [t["gloss"] for t in h["top"]] == [t["gloss"] for t in e["top"]]
        # exact search's expanded |q|^2 - 2qg + |g|^2 leaves ~1e-3 where a clip meets itself (distance 0)
        np.testing.assert_allclose([t["distance"] for t in h["top"]], [t["distance"] for t in e["top"]], atol=2e-3)
        assert h["index"]["kind"] == "hnsw" and h["index"]["recall_at_1"] == 1.0
    (tmp_path / "gallery.hnsw.npz").write_bytes(b"PK\x03\x04 broken")
    status, _, err = run([*base, "--index", "hnsw"], capsys)
    assert status == 1 and len(err.strip().splitlines()) == 1 and "gallery.hnsw.npz: not a readable index file" in err


@pytest.mark.parametrize("index", ["exact", "hnsw"])
def test_enrol_then_recognise_then_remove(index, tiny_checkpoint, tiny_synthetic_dataset, gallery_file, tmp_path,
                                          capsys):
    if index == "hnsw":
        pytest.importorskip("faiss")
    gallery = tmp_path / "gallery.npz"
    shutil.copy(gallery_file, gallery)
    rng = np.random.default_rng(0)
    clips = []
    base_clip = np.load(next((tiny_synthetic_dataset / "landmarks").glob("*.npy")))
    for i in range(3):  # a new sign: one clip's motion, mirrored and shifted, three takes
        raw = base_clip[::-1].copy()
        raw[raw != 0] += rng.normal(scale=0.002, size=int((raw != 0).sum())).astype(np.float32)
        np.save(tmp_path / f"take{i}.npy", raw)
        clips.append(str(tmp_path / f"take{i}.npy"))
    base = ["--checkpoint", str(tiny_checkpoint), "--gallery", str(gallery), "--index", index]
    before = len(Gallery.load(gallery))
    status, out, err = run([*base, "--enrol", "my-sign", "--signer", "me", *clips[:2]], capsys)
    assert status == 0, err
    assert "enrolled 2 clip(s) as 'my-sign'" in out
    saved = Gallery.load(gallery)
    assert len(saved) == before + 2 and "my-sign" in saved.label_names and set(saved.signer_ids[-2:]) == {"me"}
    status, out, err = run([*base, "--json", clips[2]], capsys)
    assert status == 0, err
    assert json.loads(out)["predictions"][0]["top"][0]["gloss"] == "my-sign"
    status, out, err = run([*base, "--remove-gloss", "my-sign"], capsys)
    assert status == 0 and "removed 2 clips of my-sign" in out, err
    assert "my-sign" not in Gallery.load(gallery).label_names
    status, out, err = run([*base, "--json", clips[2]], capsys)
    assert all(t["gloss"] != "my-sign" for t in json.loads(out)["predictions"][0]["top"])
    status, _, err = run([*base, "--remove-gloss", "nope"], capsys)
    assert status == 1 and "not in the gallery: 'nope'" in err and len(err.strip().splitlines()) == 1
    status, _, err = run([*base, "--enrol", "x", str(tmp_path / "missing.npy")], capsys)
    assert status == 1 and "nothing enrolled" in err
