"""Personal dictionaries as galleries: Gallery.load of the web export, several --gallery files merged."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datasets.errors import DataError
from evaluation.cli import parse_predict_args
from evaluation.gallery import Gallery, load_galleries, merge_galleries
from tests.dictionary_fixtures import dictionary_doc, write


def test_gallery_load_reads_a_dictionary_json(tmp_path):
    doc = dictionary_doc(dim=4, digest="abc", metric="cosine")
    gallery = Gallery.load(write(tmp_path / "mine.json", doc))
    assert gallery.label_names == ["my-sign", "other"] and gallery.labels.tolist() == [0, 1, 0]
    assert gallery.metric == "cosine" and gallery.model_digest == "abc" and gallery.dim == 4
    assert gallery.video_ids.tolist() == ["clip0", "clip1", "clip2"]
    np.testing.assert_array_equal(gallery.embeddings, np.asarray([s["embedding"] for s in doc["signs"]], np.float32))


def test_merge_joins_glosses_by_name_and_ranks_like_one_gallery(tmp_path):
    builtin = Gallery(np.eye(4, dtype=np.float32), [0, 1, 2, 2], ["other", "b", "c"], ["v0", "v1", "v2", "v3"],
                      ["s"] * 4, "euclidean", "abc")
    builtin.save(tmp_path / "builtin.npz")
    doc = dictionary_doc(dim=4, digest="abc")
    write(tmp_path / "mine.json", doc)
    merged = load_galleries([tmp_path / "builtin.npz", tmp_path / "mine.json"])
    assert merged.label_names == ["other", "b", "c", "my-sign"] and len(merged) == 7
    assert merged.labels.tolist() == [0, 1, 2, 2, 3, 0, 3] and merged.model_digest == "abc"
    query = np.asarray([doc["signs"][1]["embedding"]], np.float32)  # the own "other" clip: distance 0
    top = merged.query(query, k=3).top(0)
    assert top[0] == ("other", 0.0)
    # an unknown digest ("") agrees with any; the merge then carries the known one
    unknown = Gallery(np.eye(4, dtype=np.float32), [0, 1, 2, 2], ["other", "b", "c"])
    assert merge_galleries([unknown, Gallery.load(tmp_path / "mine.json")], ["a", "b"]).model_digest == "abc"


@pytest.mark.parametrize("change, reason", [
    ({"model_digest": "fff"}, "built with model fff but builtin.npz with model abc"),
    ({"metric": "cosine"}, "uses cosine distance but"),
    ({"embedding_dim": 3}, "3 dimensions but"),
])
def test_merge_refuses_galleries_of_another_model(tmp_path, change, reason):
    Gallery(np.eye(4, dtype=np.float32), [0, 1, 2, 2], ["a", "b", "c"], metric="euclidean",
            model_digest="abc").save(tmp_path / "builtin.npz")
    doc = dictionary_doc(dim=change.get("embedding_dim", 4), digest="abc")
    doc.update(change)
    write(tmp_path / "mine.json", doc)
    with pytest.raises(DataError) as error:
        load_galleries([str(tmp_path / "builtin.npz"), str(tmp_path / "mine.json")])
    assert str(error.value).startswith(f"{tmp_path / 'mine.json'}: ") and reason.replace(
        "builtin.npz", str(tmp_path / "builtin.npz")) in str(error.value), str(error.value)


def test_predict_gallery_files_are_told_from_inputs(tmp_path):
    """--gallery takes several files; the inputs after them stay inputs."""
    write(tmp_path / "mine.json", dictionary_doc())
    mmpose = write(tmp_path / "clip.json", {"instance_info": []})  # a landmark JSON input, not a gallery
    args = parse_predict_args(["--checkpoint", "c.pth", "--gallery", "g.npz", str(tmp_path / "mine.json"),
                               str(mmpose), "x.npy"])
    assert args.gallery == ["g.npz", str(tmp_path / "mine.json")] and args.inputs == [str(mmpose), "x.npy"]
    args = parse_predict_args(["--checkpoint", "c.pth", "--gallery", "g.npz", "--gallery", "h.npz", "x.npy"])
    assert args.gallery == ["g.npz", "h.npz"] and args.inputs == ["x.npy"]
    args = parse_predict_args(["x.npy", "--checkpoint", "c.pth", "--gallery", "odd.bin"])
    assert args.gallery == ["odd.bin"] and args.inputs == ["x.npy"]
    with pytest.raises(SystemExit):
        parse_predict_args(["--checkpoint", "c.pth", "--gallery", "g.npz"])


@pytest.fixture
def tiny_dictionaries(tiny_checkpoint, tmp_path) -> tuple[Path, Path, object]:
    """Two exports (gallery: one signer, queries: the other) of the tiny checkpoint's embeddings, and a query clip."""
    from datasets.loading import load_sequence_set
    from evaluation.inference import load_embedder
    embedder = load_embedder(tiny_checkpoint)
    from datasets.synthetic import generate_signs
    samples = generate_signs(num_classes=3, num_signers=2, samples_per_class_per_signer=1, seed=5)
    embeddings = embedder.embed_raw([s.raw for s in samples])
    paths = []
    for part, signer in (("gallery", samples[0].signer_id), ("queries", samples[-1].signer_id)):
        signs = [{"gloss": s.gloss, "video_id": s.video_id, "signer_id": s.signer_id, "embedding": e.tolist(),
                  "landmarks": s.raw.tolist()} for s, e in zip(samples, embeddings) if s.signer_id == signer]
        doc = {"format": "spoter-personal-dictionary", "version": 1, "model_digest": embedder.digest,
               "metric": embedder.metric, "embedding_dim": embedder.embedding_dim, "signs": signs}
        paths.append(write(tmp_path / f"{part}.json", doc))
    assert len(load_sequence_set(paths[0])) == 3
    return paths[0], paths[1], samples[-1]


def test_predict_and_evaluate_read_the_export(tiny_checkpoint, tiny_dictionaries, tmp_path, capsys):
    import evaluate
    import predict
    from entrypoint import run_cli
    gallery, queries, query = tiny_dictionaries
    clip = tmp_path / "query.npy"
    np.save(clip, query.raw)
    status = run_cli(predict.main, ["--checkpoint", str(tiny_checkpoint), "--gallery", str(gallery), "--json",
                                    "--top-k", "3", str(clip)])
    out, err = capsys.readouterr()
    assert status == 0, err
    top = json.loads(out)["predictions"][0]["top"]
    assert sorted(t["gloss"] for t in top) == sorted({s["gloss"] for s in json.loads(gallery.read_text())["signs"]})
    # another model's export is refused, as an .npz of other weights is
    doc = json.loads(gallery.read_text())
    doc["model_digest"] = "ffffffffffffffff"
    write(tmp_path / "other.json", doc)
    status = run_cli(predict.main, ["--checkpoint", str(tiny_checkpoint), "--gallery", str(tmp_path / "other.json"),
                                    str(clip)])
    assert status == 1 and "was built with other weights (model ffffffffffffffff)" in capsys.readouterr().err
    status = run_cli(evaluate.main, ["--checkpoint", str(tiny_checkpoint), "--gallery", str(gallery), "--queries",
                                     str(queries), "--no-baseline", "--quiet", "--device", "cpu", "--no-cache"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "gallery.json: 3 samples, 3 glosses" in out and "queries.json: 3 samples" in out
