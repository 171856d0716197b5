"""Command lines of ``evaluate.py`` and ``predict.py`` (the top-level files only call these)."""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np

from datasets.atomic import atomic_write
from datasets.errors import DataError, UsageError, add_debug_option, debug_requested
from evaluation.gallery import Gallery, compare_with_exact, load_galleries
from evaluation.inference import (EMBED_BATCH, VideoReader, expand_inputs, load_embedder, read_input,
                                  untrained_twin)
from evaluation.report import EmbeddedSet, evaluate_embeddings, format_per_gloss, format_table
from evaluation.search import AUTO_EXACT_BELOW, INDEX_KINDS, choose_kind, recall_at
from models.device import add_device_option, resolve_device

log = logging.getLogger(__name__)


# ==================================================================================== evaluate
def evaluate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py",
        description="Embed a gallery and queries with a checkpoint and report kNN top-1/top-5 (distinct glosses), "
                    "class-centroid accuracy, cross-signer and few-shot protocols, MAP@R, silhouette and "
                    "per-gloss accuracy, beside the same architecture with untrained weights.")
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by train.py (.pth)")
    parser.add_argument("--gallery", required=True, help="SPOTER CSV, landmark folder (index.json/index.csv) or "
                                                         "personal dictionary .json exported by the web demo")
    parser.add_argument("--queries", help="SPOTER CSV, landmark folder or personal dictionary .json; default: the "
                                          "gallery itself, where each query leaves itself out")
    parser.add_argument("--gallery-split", help="keep one split of the gallery (e.g. train)")
    parser.add_argument("--queries-split", help="keep one split of the queries (e.g. test)")
    parser.add_argument("--gallery-index", help="index file for a gallery landmark folder (default: its own)")
    parser.add_argument("--queries-index", help="index file for a queries landmark folder (default: its own)")
    parser.add_argument("--shots", type=int, nargs="+", default=[], metavar="K",
                        help="also evaluate K-shot enrolment: K random gallery samples per gloss")
    parser.add_argument("--draws", type=int, default=5, help="random enrolment draws averaged per --shots value")
    parser.add_argument("--seed", type=int, default=0, help="seed of the enrolment draws")
    parser.add_argument("--untrained", action="store_true",
                        help="evaluate only the untrained baseline (same architecture and seed, random weights)")
    parser.add_argument("--with-baseline", dest="baseline", action="store_true", default=True,
                        help="report the untrained baseline beside the model (default)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the untrained baseline")
    parser.add_argument("--metric", choices=("euclidean", "cosine"),
                        help="distance for the kNN (default: the one the model was trained with)")
    parser.add_argument("--per-gloss", action="store_true", help="also print the per-gloss table")
    parser.add_argument("--output-json", help="write the full report (all protocols, per-gloss tables) here")
    parser.add_argument("--save-gallery", help="write the gallery embeddings to this .npz (for predict.py)")
    parser.add_argument("--index", choices=INDEX_KINDS, default="exact",
                        help="also answer the queries through this index (hnsw, ivfpq; auto: exact below "
                             f"{AUTO_EXACT_BELOW:,} clips) and report its recall@1/@5 and kNN top-1/top-5 against "
                             "exact search on the same queries (the protocols above are always exact); with "
                             "--save-gallery, the index is saved beside the gallery")
    add_batch_size_option(parser)
    add_device_option(parser)
    parser.add_argument("--no-cache", action="store_true", help="do not use the dataset cache")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_debug_option(parser)
    return parser


def _load(source: str, split: str | None, index: str | None, cache: bool, what: str, progress: bool = False):
    from datasets.loading import load_sequence_set
    path = Path(source)
    if not path.exists():
        raise DataError(f"{source}: {what} not found")
    sequences = load_sequence_set(path, index=index, split=split, cache=cache, progress=progress)
    if len(sequences) == 0:
        raise DataError(f"{source}: the {what} holds no usable samples" + (f" in split {split!r}" if split else ""))
    return sequences


def _describe(sequences, source: str, split: str | None) -> dict:
    present = np.unique(sequences.labels)
    signers = sorted(set(sequences.signer_ids.tolist()) - {""})
    return {"source": source, "split": split, "samples": len(sequences), "glosses": len(present),
            "signers": len(signers) if (sequences.signer_ids != "").all() else None}


def _same_set(args) -> bool:
    if args.queries is None:
        return True
    return (Path(args.queries).resolve() == Path(args.gallery).resolve() and args.queries_split == args.gallery_split
            and (args.queries_index or None) == (args.gallery_index or None))


def _check_args(args) -> None:
    if any(k < 1 for k in args.shots):
        raise UsageError(f"--shots values must be >= 1, got {args.shots}")
    if args.draws < 1:
        raise UsageError(f"--draws must be >= 1, got {args.draws}")
    check_batch_size(args)
    if args.queries is None and (args.queries_split or args.queries_index):
        raise UsageError("--queries-split/--queries-index need --queries")


def _json_ready(value):
    """NaN/inf become null: the report must be strict JSON."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def run_evaluation(args) -> dict:
    """Everything ``evaluate.py`` does; returns the JSON report (also printed as a table).

    One screen of steps in the order the report lists them; each step is a call.
    """
    _check_args(args)
    same = _same_set(args)
    trained = load_embedder(args.checkpoint, device=resolve_device(args.device))
    if args.untrained:
        models = [untrained_twin(trained)]
    else:
        models = [trained, untrained_twin(trained)] if args.baseline else [trained]
    cache = not args.no_cache
    progress = not args.quiet
    gallery_set = _load(args.gallery, args.gallery_split, args.gallery_index, cache, "gallery", progress)
    query_set = gallery_set if same else _load(args.queries, args.queries_split, args.queries_index, cache, "queries",
                                               progress)
    metric = args.metric or trained.metric

    evaluated = sorted({gallery_set.label_names[i] for i in np.unique(gallery_set.labels)}
                       | {query_set.label_names[i] for i in np.unique(query_set.labels)})
    known = len(set(evaluated) & set(trained.label_names))
    shared_videos = 0 if same else len((set(gallery_set.video_ids.tolist()) & set(query_set.video_ids.tolist())) - {""})
    if shared_videos:
        log.warning("%d video id(s) are in both the gallery and the queries: those queries can find themselves",
                    shared_videos)
    results, first_embeddings, first_queries = [], None, None
    for embedder in models:
        g_emb = embedder.embed(gallery_set, args.batch_size, not args.quiet, desc=f"{embedder.name}: gallery")
        gallery = EmbeddedSet.from_sequences(g_emb, gallery_set)
        queries = None
        if not same:
            q_emb = embedder.embed(query_set, args.batch_size, not args.quiet, desc=f"{embedder.name}: queries")
            queries = EmbeddedSet.from_sequences(q_emb, query_set)
        results.append(evaluate_embeddings(gallery, queries, metric=metric, shots=args.shots, draws=args.draws,
                                           seed=args.seed, model=embedder.name))
        if first_embeddings is None:
            first_embeddings, first_queries = g_emb, (g_emb if same else queries.embeddings)

    report = {
        "checkpoint": str(args.checkpoint), "epoch": trained.epoch, "metric": metric,
        "gallery": _describe(gallery_set, args.gallery, args.gallery_split),
        "queries": {"same_as_gallery": True} if same else _describe(query_set, args.queries, args.queries_split),
        "vocabulary": {"glosses": len(evaluated), "in_training_vocabulary": known, "zero_shot": known == 0},
        "shared_video_ids": shared_videos,
        "results": {r.model: r.to_json() for r in results},
    }
    kind = choose_kind(args.index, len(gallery_set))
    if kind != "exact":
        names = list(gallery_set.label_names)
        query_labels = np.asarray([names.index(query_set.label_names[i]) if query_set.label_names[i] in names else -1
                                   for i in query_set.labels])
        report["index"] = compare_with_exact(first_embeddings, gallery_set.labels, first_queries, query_labels,
                                             metric, kind, same)
    _print_report(report, results, args.per_gloss)
    if args.output_json:
        with atomic_write(args.output_json, "w") as handle:
            json.dump(_json_ready(report), handle, indent=1, allow_nan=False)
    if args.save_gallery:
        embedder = models[0]
        saved = Gallery.from_sequences(first_embeddings, gallery_set, metric, embedder.digest)
        if kind != "exact":
            saved.use_index(kind)
        saved.save(args.save_gallery)
        print(f"gallery ({embedder.name}, {len(gallery_set)} samples) saved to {args.save_gallery}")
    return report


def _source_line(part: dict) -> str:
    split = f" [{part['split']}]" if part["split"] else ""
    signers = f", {part['signers']} signers" if part["signers"] else ""
    return f"{part['source']}{split}: {part['samples']} samples, {part['glosses']} glosses{signers}"


def _print_report(report: dict, results: list, per_gloss: bool) -> None:
    epoch = f" (epoch {report['epoch'] + 1})" if report["epoch"] is not None else ""
    lines = [f"checkpoint  {report['checkpoint']}{epoch}", f"gallery     {_source_line(report['gallery'])}"]
    if report["queries"].get("same_as_gallery"):
        lines.append("queries     the gallery itself (each query leaves its own video out)")
    else:
        lines.append(f"queries     {_source_line(report['queries'])}")
    v = report["vocabulary"]
    lines.append(f"vocabulary  {v['glosses']} glosses, {v['in_training_vocabulary']} of them in the model's "
                 f"training vocabulary" + (" (zero-shot)" if v["zero_shot"] else ""))
    lines.append(f"metric      {report['metric']}; top-k counts distinct glosses; accuracy over answerable queries")
    print("\n".join(lines) + "\n")
    print(format_table(results))
    if "index" in report:
        x = report["index"]
        print(f"\n{x['index']} index over {x['gallery']} clips (built in {x['build_seconds']:.1f} s): recall@1 "
              f"{x['recall_at_1']:.4f}, recall@5 {x['recall_at_5']:.4f} against exact search; kNN top-1/top-5 "
              f"{x[x['index'] + '_knn_top1']:.3f}/{x[x['index'] + '_knn_top5']:.3f} "
              f"(exact neighbour lists: {x['exact_knn_top1']:.3f}/{x['exact_knn_top5']:.3f})")
    if per_gloss:
        name = "cross_signer" if "cross_signer" in results[0].protocols else "standard"
        print()
        print(format_per_gloss(results[0], name))
    sys.stdout.flush()


def evaluate_main(argv=None) -> int:
    args = evaluate_parser().parse_args(argv)
    run_evaluation(args)
    return 0


def add_batch_size_option(parser: argparse.ArgumentParser) -> None:
    """``--batch-size``: clips per forward pass, the same option and default in evaluate.py and predict.py."""
    parser.add_argument("--batch-size", type=int, default=EMBED_BATCH,
                        help="clips per forward pass (default: %(default)s)")


def check_batch_size(args) -> None:
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")


# ===================================================================================== predict
def predict_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predict.py",
        description="Recognise signs: embed each input with a checkpoint and print the nearest glosses of a "
                    "gallery (made by evaluate.py --save-gallery), with distances.")
    parser.add_argument("inputs", nargs="*", metavar="INPUT",  # checked by parse_predict_args
                        help="video file (landmarks extracted with MediaPipe), landmark file ((frames, 150) "
                             ".npy, .pose, Kaggle ISLR .parquet, MMPose .json), OpenPose JSON folder, or a "
                             "folder of them")
    parser.add_argument("--checkpoint", required=True, help="checkpoint the gallery was built with")
    parser.add_argument("--gallery", required=True, nargs="+", action="extend", metavar="GALLERY",
                        help="gallery .npz from evaluate.py --save-gallery and/or personal dictionary .json "
                             "exported by the web demo; several files are merged into one gallery (same model, "
                             "metric and dimension)")
    parser.add_argument("--top-k", type=int, default=5, help="glosses shown per input")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--allow-model-mismatch", action="store_true",
                        help="use a gallery built with other weights (its distances are then meaningless)")
    parser.add_argument("--untrained", action="store_true",
                        help="use the checkpoint's untrained twin (for a gallery saved by evaluate.py --untrained)")
    parser.add_argument("--frame-size", type=frame_size, default=None, metavar="WxH",
                        help="video size in pixels of OpenPose/MMPose inputs, to make their coordinates "
                             "image-relative per axis as MediaPipe's are (e.g. 1280x720)")
    parser.add_argument("--index", choices=INDEX_KINDS, default="auto",
                        help=f"search index: exact, hnsw, ivfpq, or auto (default: exact below {AUTO_EXACT_BELOW:,} "
                             "clips, hnsw above); an approximate index is saved beside the gallery "
                             "(<gallery>.<kind>.npz) and reused while it matches the gallery")
    parser.add_argument("--rebuild-index", action="store_true", help="build the index anew even if one is saved")
    parser.add_argument("--recall", action="store_true",
                        help="also search exactly and report the index's recall@1/@5 on these inputs")
    parser.add_argument("--enrol", metavar="GLOSS",
                        help="instead of recognising, add the inputs to the gallery as GLOSS (a new or known "
                             "gloss) and save it; a saved approximate index is appended to, not rebuilt")
    parser.add_argument("--signer", default="", help="with --enrol: the signer id of the new clips")
    parser.add_argument("--remove-gloss", metavar="GLOSS", nargs="+",
                        help="remove every clip of these glosses from the gallery and save it (no inputs)")
    add_batch_size_option(parser)
    add_device_option(parser)
    add_debug_option(parser)
    return parser


def frame_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` → ``(1280, 720)``."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels (e.g. 1280x720), got {text!r}") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"width and height must be positive, got {text!r}")
    return width, height


def _prediction_gallery(args, embedder) -> tuple[Gallery, str]:
    """The gallery of ``--gallery`` (several files are merged), checked against the model, searching with ``--index``."""
    files = [args.gallery] if isinstance(args.gallery, (str, Path)) else list(args.gallery)
    gallery = load_galleries(files)
    source = " + ".join(map(str, files))
    if gallery.dim != embedder.embedding_dim:
        raise DataError(f"{source}: gallery embeddings have {gallery.dim} dimensions but {args.checkpoint} "
                        f"makes {embedder.embedding_dim}; build the gallery with this checkpoint")
    if gallery.model_digest and gallery.model_digest != embedder.digest and not args.allow_model_mismatch:
        raise DataError(f"{source} was built with other weights (model {gallery.model_digest}) than "
                        f"{args.checkpoint} ({embedder.digest}); rebuild it with evaluate.py --save-gallery "
                        f"or pass --allow-model-mismatch")
    kind = gallery.use_index(getattr(args, "index", "auto"), saved_beside=files[0] if len(files) == 1 else None,
                             progress=sys.stderr.isatty(), rebuild=getattr(args, "rebuild_index", False))
    return gallery, kind


def _read_inputs(args, paths) -> tuple[list[dict], list[np.ndarray], list[int]]:
    """Each input's raw landmarks; a bad input becomes an ``{"input", "error"}`` outcome, the others go on."""
    videos = VideoReader(verbose=args.debug)
    outcomes: list[dict] = []
    raws, slots = [], []
    try:
        for path in paths:
            try:
                raw = read_input(path, videos, getattr(args, "frame_size", None))
            except DataError as error:
                outcomes.append({"input": str(path), "error": str(error).splitlines()[0]})
                continue
            outcomes.append({"input": str(path), "frames": len(raw)})
            raws.append(raw)
            slots.append(len(outcomes) - 1)
    finally:
        videos.close()
    return outcomes, raws, slots


def run_prediction(args) -> tuple[list[dict], int]:
    """Predictions per input (``{"input", "frames", "top": [...]}`` or ``{"input", "error"}``) and exit status."""
    if args.top_k < 1:
        raise UsageError(f"--top-k must be >= 1, got {args.top_k}")
    if not args.inputs:
        raise UsageError("no INPUT given (only --remove-gloss works without inputs)")
    embedder = load_embedder(args.checkpoint, untrained=args.untrained, device=resolve_device(args.device))
    gallery, kind = _prediction_gallery(args, embedder)
    outcomes, raws, slots = _read_inputs(args, expand_inputs(args.inputs))
    if raws:
        embeddings = embedder.embed_raw(raws, args.batch_size)
        matches = gallery.query(embeddings, k=args.top_k)
        for row, slot in enumerate(slots):
            outcomes[slot]["top"] = [{"gloss": g, "distance": round(d, 6)} for g, d in matches.top(row)]
        if getattr(args, "recall", False):
            recall = index_recall(gallery, embeddings)
            for slot in slots:
                outcomes[slot]["index"] = {"kind": kind, **recall}
    return outcomes, int(any("error" in o for o in outcomes))


def index_recall(gallery: Gallery, queries: np.ndarray, neighbours: int = 5) -> dict:
    """Recall@1/@5 of the gallery's index against exact search on ``queries`` (1.0 for exact)."""
    from evaluation.search import ExactIndex
    _, approximate = gallery.index.search(queries, neighbours)
    _, exact = ExactIndex(gallery.embeddings, gallery.metric).search(queries, neighbours)
    return recall_at(approximate, exact)


def run_dictionary_change(args) -> str:
    """``--enrol GLOSS`` or ``--remove-gloss``: change the saved gallery (and its index) in place."""
    if len(args.gallery) != 1 or Path(args.gallery[0]).suffix.lower() != ".npz":
        raise UsageError("--enrol/--remove-gloss change one .npz gallery: give exactly one --gallery FILE.npz")
    embedder = load_embedder(args.checkpoint, untrained=args.untrained, device=resolve_device(args.device))
    gallery, kind = _prediction_gallery(args, embedder)
    args.gallery = args.gallery[0]
    if args.remove_gloss:
        if args.inputs:
            raise UsageError("--remove-gloss takes no INPUT")
        try:
            smaller = gallery.without_glosses(args.remove_gloss)
        except DataError as error:
            raise DataError(f"{args.gallery}: {error}") from None
        smaller.save(args.gallery)
        return (f"removed {len(gallery) - len(smaller)} clips of {', '.join(args.remove_gloss)}: {args.gallery} now "
                f"holds {len(smaller)} clips of {len(smaller.label_names)} glosses ({kind} index)")
    if not args.inputs:
        raise UsageError("--enrol needs the clips to add (INPUT ...)")
    paths = expand_inputs(args.inputs)
    outcomes, raws, _ = _read_inputs(args, paths)
    bad = [o for o in outcomes if "error" in o]
    if bad:  # a dictionary entry is all its clips or nothing
        raise DataError(f"nothing enrolled: {bad[0]['error']}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
    larger = gallery.extend(embedder.embed_raw(raws, args.batch_size), [args.enrol] * len(raws),
                            video_ids=[Path(o["input"]).stem for o in outcomes], signer_ids=[args.signer] * len(raws))
    larger.save(args.gallery)
    return (f"enrolled {len(raws)} clip(s) as {args.enrol!r}: {args.gallery} now holds {len(larger)} clips of "
            f"{len(larger.label_names)} glosses ({kind} index{', appended' if kind != 'exact' else ''})")


def _is_gallery_file(path: str) -> bool:
    from datasets.personal_dictionary import looks_like_dictionary
    return Path(path).suffix.lower() == ".npz" or looks_like_dictionary(path)


def parse_predict_args(argv=None) -> argparse.Namespace:
    """Parse predict.py's arguments; ``--gallery A.npz B.json clip.npy`` keeps ``clip.npy`` an input.

    ``--gallery`` takes several files, and argparse would swallow the inputs that follow
    it. Its leading gallery files (``.npz``, personal dictionary ``.json``) stay galleries;
    the first item always does (so a wrong name is reported as a gallery), the rest are
    inputs, in command-line order.
    """
    parser = predict_parser()
    args = parser.parse_args(argv)
    args.debug = args.debug or debug_requested()  # also the native video-reading output
    keep = 1
    while keep < len(args.gallery) and _is_gallery_file(args.gallery[keep]):
        keep += 1
    args.inputs = args.gallery[keep:] + args.inputs
    args.gallery = args.gallery[:keep]
    if not args.inputs and not args.remove_gloss:
        parser.error("the following arguments are required: INPUT")
    check_batch_size(args)  # before any model or input is loaded
    return args


def predict_main(argv=None) -> int:
    args = parse_predict_args(argv)
    if args.enrol or args.remove_gloss:
        if args.enrol and args.remove_gloss:
            raise UsageError("--enrol and --remove-gloss are separate changes: give one")
        print(run_dictionary_change(args))
        return 0
    outcomes, status = run_prediction(args)
    if args.json:
        gallery = args.gallery[0] if len(args.gallery) == 1 else args.gallery
        json.dump({"checkpoint": args.checkpoint, "gallery": gallery, "predictions": outcomes}, sys.stdout,
                  indent=1)
        sys.stdout.write("\n")
    for outcome in outcomes:
        if "error" in outcome:
            print(f"error: {outcome['error']}", file=sys.stderr)
        elif not args.json:
            print(f"{outcome['input']}  ({outcome['frames']} frames)")
            width = max((len(t["gloss"]) for t in outcome["top"]), default=0)
            for rank, top in enumerate(outcome["top"], 1):
                print(f"  {rank}. {top['gloss'].ljust(width)}  {top['distance']:.4f}")
    index = next((o["index"] for o in outcomes if "index" in o), None)
    if index and not args.json:
        print(f"{index['kind']} index: recall@1 {index['recall_at_1']:.4f}, recall@5 {index['recall_at_5']:.4f} "
              "against exact search on these inputs")
    sys.stdout.flush()
    return status
