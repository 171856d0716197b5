"""Build the web demo's data folder (``web/public/``): model, gallery, sample clips, layout.

    python web/build.py --model-dir EXPORT_DIR [--gallery-npz GALLERY.npz | --gallery-data FOLDER]

``EXPORT_DIR`` holds ``model.onnx`` and ``model.json`` as written by ``export/``. Without a
gallery option the gallery is embedded here, with the exported model through onnxruntime,
from the built-in synthetic data (its first ``--gallery-signers`` signers); sample clips
come from the other signers, so the demo recognises people the gallery has not seen.

Everything the page needs is written into one folder:

* ``layout.json`` - :func:`datasets.layout.layout_spec` plus the normalisation constants,
  so the JavaScript never restates a point index or a box factor;
* ``model.onnx`` / ``model.json`` - copied unchanged;
* ``gallery.bin`` (float32 little-endian ``(N, D)``) + ``gallery.json`` (labels, gloss
  names, video and signer ids);
* ``samples/<video_id>.npy`` - raw ``(T, 150)`` clips as ``preprocessing.py extract`` writes;
* ``manifest.json`` - what is where, the input names and the preprocessing settings.

The functions :func:`prepare_points`, :func:`embed` and :func:`top_k` are the Python
reference of the page's pipeline (the browser tests compare against them).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np

WEB_DIR = Path(__file__).resolve().parent
REPO_ROOT = WEB_DIR.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from augmentations import normalization  # noqa: E402
from augmentations.torch_data import resample_frames  # noqa: E402
from datasets import layout  # noqa: E402
from datasets.atomic import atomic_write  # noqa: E402
from datasets.errors import DataError, UsageError  # noqa: E402
from export.quantize import INT8_FILE  # noqa: E402

log = logging.getLogger("web.build")

DEFAULT_OUT = WEB_DIR / "public"
TOP_K = 5
DEFAULT_PREPROCESSING = {"body": "centered", "hands": True, "max_frames": 0, "resample_frames": 0}


# ------------------------------------------------------------- reference pipeline
def prepare_points(points: np.ndarray, prep: dict) -> np.ndarray:
    """SPOTER points ``(T, 54, 2)`` -> model input ``(T', 54, 2)``: resample as trained, then normalise."""
    length = len(points)
    if prep.get("resample_frames"):
        points = points[resample_frames(length, int(prep["resample_frames"]))]
    elif prep.get("max_frames") and length > int(prep["max_frames"]):
        points = points[resample_frames(length, int(prep["max_frames"]))]
    body = prep.get("body", "centered")
    return normalization.normalize(np.asarray(points, np.float32), body, bool(prep.get("hands", True)))


def prepare_raw(raw: np.ndarray, prep: dict) -> np.ndarray:
    """Raw Holistic ``(T, 150)`` -> model input, exactly as the page does it."""
    return prepare_points(layout.raw_to_spoter(raw), prep)


def open_session(model_path: str | Path, threads: int = 1):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def input_names(session, meta: dict | None = None) -> tuple[str, str, str]:
    """(landmarks input, padding-mask input, output) names: from model.json, else by dtype."""
    meta = meta or {}
    inputs = {i.name: i.type for i in session.get_inputs()}
    floats = [n for n, t in inputs.items() if "float" in t]
    bools = [n for n, t in inputs.items() if "bool" in t]
    landmarks = meta.get("landmarks_input") or (floats[0] if floats else None)
    mask = meta.get("padding_mask_input") or (bools[0] if bools else None)
    if landmarks not in inputs or (mask is not None and mask not in inputs):
        raise DataError(f"model inputs {sorted(inputs)} do not include a float landmarks input and a bool padding mask")
    return landmarks, mask, session.get_outputs()[0].name


def embed(session, clips: list[np.ndarray], names: tuple[str, str, str] | None = None) -> np.ndarray:
    """Embed normalised clips one by one (batch 1, no padding), as the page does."""
    landmarks, mask, output = names or input_names(session)
    rows = []
    for clip in clips:
        feeds = {landmarks: np.ascontiguousarray(clip[None], dtype=np.float32)}
        if mask is not None:
            feeds[mask] = np.zeros((1, len(clip)), dtype=bool)
        rows.append(session.run([output], feeds)[0][0])
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)


def top_k(query: np.ndarray, gallery: np.ndarray, labels: np.ndarray, num_classes: int,
          metric: str = "euclidean", k: int = TOP_K) -> list[tuple[int, float]]:
    """Distinct glosses ranked by their nearest gallery sample (evaluation's kNN definition)."""
    from evaluation.knn import pairwise_distances
    from evaluation.ranking import nearest_per_gloss, order_glosses
    indices, values = order_glosses(nearest_per_gloss(pairwise_distances(query[None], gallery, metric), labels,
                                                      num_classes), k)
    return [(int(i), float(v)) for i, v in zip(indices[0], values[0]) if np.isfinite(float(v))]


# ------------------------------------------------------------------ build steps
def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, document) -> None:
    with atomic_write(path, "w") as handle:
        json.dump(document, handle, separators=(",", ":"))


def copy_file(source: Path, target: Path) -> None:
    """Copy atomically (temporary name, then rename), readable by the server."""
    tmp = target.parent / f".{target.name}.tmp"
    shutil.copyfile(source, tmp)
    tmp.chmod(0o644)
    tmp.replace(target)


def write_layout(out: Path) -> None:
    """The generated constants: the layout source of truth plus the normalisation factors."""
    write_json(out / "layout.json", {
        "layout": layout.layout_spec(),
        "normalization": {
            "body_variants": list(normalization.BODY_VARIANTS),
            "signing_space_head_units": normalization.SIGNING_SPACE_HEAD_UNITS,
            "hand_box_padding": normalization.HAND_BOX_PADDING,
            "center_shift": normalization.CENTER_SHIFT,
        },
    })


def read_model_meta(model_dir: Path) -> dict:
    path = model_dir / "model.json"
    if not (model_dir / "model.onnx").is_file():
        raise UsageError(f"{model_dir}: no model.onnx (export a checkpoint first)")
    if not path.is_file():
        raise UsageError(f"{model_dir}: no model.json next to model.onnx")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: expected a JSON object")
    return meta


def preprocessing_from_meta(meta: dict) -> dict:
    """Resampling and normalisation the model was trained with (``model.json``'s ``normalization``)."""
    prep = dict(DEFAULT_PREPROCESSING)
    stored = meta.get("normalization") or meta.get("preprocessing") or {}
    if isinstance(stored, str):
        stored = {"body": stored}
    prep.update({k: stored[k] for k in DEFAULT_PREPROCESSING if k in stored})
    if not prep["max_frames"]:
        prep["max_frames"] = int((meta.get("model_config") or meta.get("config") or {}).get("max_frames", 0) or 0)
    if prep["body"] not in normalization.BODY_VARIANTS:
        raise DataError(f"model.json: unknown body normalisation {prep['body']!r}")
    if stored.get("canonical_handedness"):
        # The page does not mirror clips; serving such a model would give silently wrong answers.
        raise DataError("model.json: the model was trained with canonical_handedness, which the web page "
                        "does not implement; train without --canonical_handedness for the web demo")
    return prep


def model_io(meta: dict, session) -> dict:
    """Input/output names, preferring what model.json states."""
    io_meta = {}
    for key in ("inputs", "input_names"):
        names = meta.get(key)
        if isinstance(names, list) and len(names) >= 1:
            names = [n["name"] if isinstance(n, dict) else n for n in names]
            io_meta = {"landmarks_input": names[0], "padding_mask_input": names[1] if len(names) > 1 else None}
            break
    landmarks, mask, output = input_names(session, io_meta)
    return {"landmarks": landmarks, "padding_mask": mask, "output": output}


def model_name(meta: dict, model_dir: Path) -> str:
    """What the page shows as the model: its checkpoint (and epoch) when model.json says."""
    source = meta.get("source_checkpoint") or {}
    if source.get("file"):
        epoch = source.get("epoch")
        return source["file"] + (f" (epoch {epoch + 1})" if isinstance(epoch, int) else "")
    return model_dir.name


def model_digest(meta: dict, gallery: dict) -> str:
    """The weights' fingerprint (``model.json``'s ``model_digest``, as gallery files record it).

    The page stamps every sign a user enrols with it, so signs of another model are
    refused rather than mixed. Older exports lack it: the gallery's digest is then the
    best knowledge, else "" (the page falls back to the ONNX file's sha256).
    """
    digest = str(meta.get("model_digest") or "")
    stored = str(gallery.get("model_digest") or "")
    if digest and stored and digest != stored:
        log.warning("the gallery was built with model %s but model.json is model %s: its distances are "
                    "not meaningful with this model", stored, digest)
    return digest or stored


def synthetic_split(num_classes: int, num_signers: int, gallery_signers: int, seed: int):
    """Built-in synthetic clips: (gallery samples, held-out samples)."""
    from datasets.synthetic import generate_signs
    if not 1 <= gallery_signers < num_signers:
        raise UsageError(f"--gallery-signers must be in 1..{num_signers - 1}, got {gallery_signers}")
    samples = generate_signs(num_classes, num_signers, 1, seed)
    signer_ids = sorted({s.signer_id for s in samples})
    in_gallery = set(signer_ids[:gallery_signers])
    return [s for s in samples if s.signer_id in in_gallery], [s for s in samples if s.signer_id not in in_gallery]


def gallery_from_npz(path: Path) -> dict:
    """A gallery saved by ``evaluate.py --save-gallery`` (checked by evaluation.gallery)."""
    from evaluation.gallery import Gallery
    gallery = Gallery.load(path)
    return {
        "embeddings": np.asarray(gallery.embeddings, np.float32), "labels": np.asarray(gallery.labels, np.int64),
        "label_names": [str(x) for x in gallery.label_names], "video_ids": [str(x) for x in gallery.video_ids],
        "signer_ids": [str(x) for x in gallery.signer_ids], "metric": gallery.metric,
        "model_digest": gallery.model_digest, "source": f"{path.name} (evaluate.py --save-gallery)",
    }


def gallery_from_sequences(session, names, prep: dict, points: list[np.ndarray], labels, label_names,
                           video_ids, signer_ids, source: str, progress: bool = True) -> dict:
    from tqdm import tqdm
    clips = [prepare_points(p, prep) for p in points]
    embeddings = embed(session, tqdm(clips, desc="gallery", unit="clip", disable=not progress or len(clips) < 200), names)
    return {"embeddings": embeddings, "labels": np.asarray(labels, np.int64), "label_names": list(label_names),
            "video_ids": list(video_ids), "signer_ids": list(signer_ids), "source": source}


def write_gallery(out: Path, gallery: dict, metric: str) -> dict:
    embeddings = np.ascontiguousarray(gallery["embeddings"], dtype="<f4")
    labels = gallery["labels"]
    if embeddings.ndim != 2 or len(embeddings) != len(labels) or len(embeddings) == 0:
        raise DataError(f"gallery: embeddings {embeddings.shape} and labels ({len(labels)}) do not match")
    if labels.min() < 0 or labels.max() >= len(gallery["label_names"]):
        raise DataError("gallery: a label is outside label_names")
    with atomic_write(out / "gallery.bin", "wb") as handle:
        handle.write(embeddings.tobytes())
    info = {
        "file": "gallery.bin", "count": int(embeddings.shape[0]), "dim": int(embeddings.shape[1]),
        "metric": metric, "source": gallery["source"], "sha256": sha256(out / "gallery.bin"),
        "num_glosses": int(len(np.unique(labels))), "model_digest": gallery.get("model_digest", ""),
    }
    write_json(out / "gallery.json", {
        **info, "labels": labels.tolist(), "label_names": gallery["label_names"],
        "video_ids": gallery["video_ids"], "signer_ids": gallery["signer_ids"],
    })
    return info


def write_samples(out: Path, samples) -> list[dict]:
    """Raw clips as .npy files (small: T x 150 float32 each)."""
    folder = out / "samples"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    listed = []
    for s in samples:
        name = f"{s['video_id']}.npy"
        with atomic_write(folder / name, "wb") as handle:
            np.save(handle, np.asarray(s["raw"], np.float32), allow_pickle=False)
        listed.append({"file": f"samples/{name}", "video_id": s["video_id"], "gloss": s["gloss"],
                       "signer_id": s["signer_id"], "frames": int(len(s["raw"]))})
    return listed


def pick_samples(held_out, label_names: list[str], count: int) -> list[dict]:
    """One held-out clip for each of the first ``count`` glosses that the gallery knows."""
    known = set(label_names)
    chosen, seen = [], set()
    for s in held_out:
        if s.gloss in known and s.gloss not in seen:
            chosen.append({"raw": s.raw, "video_id": s.video_id, "gloss": s.gloss, "signer_id": s.signer_id})
            seen.add(s.gloss)
        if len(chosen) == count:
            break
    return chosen


def build(model_dir: Path, out: Path = DEFAULT_OUT, gallery_npz: Path | None = None,
          gallery_data: Path | None = None, gallery_split: str | None = None, num_samples: int = 6,
          synthetic_classes: int = 100, synthetic_signers: int = 12, gallery_signers: int = 9, seed: int = 0,
          metric: str | None = None, int8: bool = False, progress: bool = True) -> dict:
    """Write everything the page loads into ``out``; returns the manifest.

    The int8 variant (``?precision=int8`` on the page) is copied when the export folder
    has one, or made here with ``export.quantize_int8`` when ``int8`` is set.
    Read top to bottom it is the manifest, file by file, in the order the page loads them.
    """
    model_dir, out = Path(model_dir), Path(out)
    meta = read_model_meta(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    session = open_session(model_dir / "model.onnx")
    io_names = model_io(meta, session)
    names = (io_names["landmarks"], io_names["padding_mask"], io_names["output"])
    prep = preprocessing_from_meta(meta)
    if metric is None:  # the distance the model was trained with, when model.json says
        metric = meta.get("distance") or "euclidean"

    need_synthetic = gallery_npz is None and gallery_data is None or num_samples > 0
    gallery_part, held_out = (synthetic_split(synthetic_classes, synthetic_signers, gallery_signers, seed)
                              if need_synthetic else ([], []))
    if gallery_npz is not None:
        gallery = gallery_from_npz(Path(gallery_npz))
    elif gallery_data is not None:
        from datasets.loading import load_sequence_set
        seqs = load_sequence_set(gallery_data, split=gallery_split, cache=False)
        gallery = gallery_from_sequences(
            session, names, prep, [seqs.sequence(i) for i in range(len(seqs))], seqs.labels, seqs.label_names,
            seqs.video_ids, seqs.signer_ids, f"{Path(gallery_data).name}" + (f" ({gallery_split})" if gallery_split else ""),
            progress)
    else:
        label_names = sorted({s.gloss for s in gallery_part}, key=[s.gloss for s in gallery_part].index)
        gallery = gallery_from_sequences(
            session, names, prep, [layout.raw_to_spoter(s.raw) for s in gallery_part],
            [label_names.index(s.gloss) for s in gallery_part], label_names,
            [s.video_id for s in gallery_part], [s.signer_id for s in gallery_part],
            f"built-in synthetic data (seed {seed}, {synthetic_classes} glosses, signers 1-{gallery_signers})", progress)
    expected_dim = int(embed(session, [np.zeros((2, layout.NUM_POINTS, layout.NUM_COORDS), np.float32)], names).shape[1])
    if gallery["embeddings"].shape[1] != expected_dim:
        raise DataError(f"gallery embeddings have {gallery['embeddings'].shape[1]} dimensions, the model gives {expected_dim}")
    digest = model_digest(meta, gallery)
    gallery.setdefault("model_digest", digest)  # embedded here, with this model
    gallery_info = write_gallery(out, gallery, gallery.get("metric") or metric)

    samples = write_samples(out, pick_samples(held_out, gallery["label_names"], num_samples))
    if num_samples and not samples:
        log.warning("no sample clips bundled: the gallery knows none of the built-in synthetic glosses")
    write_layout(out)
    for name in ("model.onnx", "model.json"):
        copy_file(model_dir / name, out / name)
    variants = {}
    if int8 or (model_dir / INT8_FILE).is_file():
        if not (model_dir / INT8_FILE).is_file():
            from export.quantize import quantize_int8
            quantize_int8(out / "model.onnx", out / INT8_FILE)
        else:
            copy_file(model_dir / INT8_FILE, out / INT8_FILE)
        variants["int8"] = {"file": INT8_FILE, "sha256": sha256(out / INT8_FILE), "bytes": (out / INT8_FILE).stat().st_size}
    elif (out / INT8_FILE).exists():
        (out / INT8_FILE).unlink()  # a stale variant of an earlier model
    manifest = {
        "model": {
            "file": "model.onnx", "meta": "model.json", "name": model_name(meta, model_dir),
            "sha256": sha256(out / "model.onnx"), "bytes": (out / "model.onnx").stat().st_size, "digest": digest,
            "inputs": io_names, "embedding_dim": expected_dim, "preprocessing": prep, "variants": variants,
            "config": meta.get("model_config") or meta.get("config") or {},
        },
        "gallery": {**gallery_info, "meta": "gallery.json"},
        "samples": samples,
        "layout": "layout.json",
        "top_k": TOP_K,
    }
    write_json(out / "manifest.json", manifest)
    for path in out.rglob("*"):  # atomic writes create owner-only files; any server user may read these
        path.chmod(0o755 if path.is_dir() else 0o644)
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Copy an exported model, a gallery and sample clips into web/public/.")
    parser.add_argument("--model-dir", type=Path, required=True, help="folder with model.onnx and model.json")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder the page is served from (web/public)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--gallery-npz", type=Path, help="gallery written by evaluate.py --save-gallery")
    source.add_argument("--gallery-data", type=Path, help="landmark folder or SPOTER CSV to embed as gallery")
    parser.add_argument("--gallery-split", help="with --gallery-data: keep only this split")
    parser.add_argument("--samples", type=int, default=6, help="bundled sample clips (held-out synthetic signers)")
    parser.add_argument("--synthetic-classes", type=int, default=100)
    parser.add_argument("--synthetic-signers", type=int, default=12)
    parser.add_argument("--gallery-signers", type=int, default=9, help="synthetic signers in the gallery; the rest give samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--metric", choices=("euclidean", "cosine"),
                        help="distance for an embedded gallery (default: model.json's distance); "
                             "a --gallery-npz keeps its own")
    parser.add_argument("--int8", action="store_true",
                        help="also ship a dynamic-int8 model (faster in wasm; the page uses it with ?precision=int8)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        manifest = build(args.model_dir, args.out, args.gallery_npz, args.gallery_data, args.gallery_split,
                         args.samples, args.synthetic_classes, args.synthetic_signers, args.gallery_signers,
                         args.seed, args.metric, args.int8)
    except UsageError as error:
        if args.debug:
            raise
        parser.exit(2, f"error: {error}\n")
    except DataError as error:
        if args.debug:
            raise
        parser.exit(1, f"error: {error}\n")
    log.info("wrote %s: model %s, gallery %d clips of %d glosses, %d samples", args.out,
             manifest["model"]["name"], manifest["gallery"]["count"], manifest["gallery"]["num_glosses"],
             len(manifest["samples"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
