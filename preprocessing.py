"""Data preparation from the command line.

    python preprocessing.py extract --videos-folder videos/ --output-landmarks landmarks/
    python preprocessing.py extract ... --num-shards 4 --shard-index 0   # one of 4 machines/jobs
    python preprocessing.py merge-shards --output-landmarks landmarks/
    python preprocessing.py create --landmarks-dataset landmarks/ --index index.json --dataset-folder data/
    python preprocessing.py import --spoter-csv WLASL100_train.csv WLASL100_val.csv --output-landmarks wlasl100/

Thin: arguments are parsed here and the work is done by :mod:`datasets.extraction` and
:mod:`datasets.creation`.
Exit status: 0 success, 1 some videos failed (see failures.csv), 2 usage error. ``create``
exits 0 when bad landmark files were skipped (they are listed in create_report.json).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from entrypoint import add_debug_option, debug_requested

log = logging.getLogger("preprocessing")


def _common_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts (a parent parser, so they go after the subcommand)."""
    parent = argparse.ArgumentParser(add_help=False)
    add_debug_option(parent)
    return parent


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_extract_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    from datasets.extraction import BUNDLED_COMPLEXITY, DEFAULT_EXTENSIONS, OUTPUTS, POSE_MODELS

    parser = subparsers.add_parser(
        "extract", parents=parents, help="videos -> MediaPipe Holistic landmarks (<video>.npy, (T, 150); or .pose)",
        description="Extract MediaPipe Holistic landmarks from every video of a folder into <video>.npy "
                    "files (float32, (frames, 150)) and/or <video>.pose files (pose-format, full Holistic "
                    "header), plus manifest.csv and failures.csv. Reruns skip "
                    "videos already extracted. With --recursive a video's name is its relative path "
                    "without extension, '/' replaced by '__'.")
    parser.add_argument("--videos-folder", required=True, help="folder holding the videos")
    parser.add_argument("--output-landmarks", required=True, help="folder for <video>.npy, manifest.csv, failures.csv")
    parser.add_argument("--format", choices=sorted(OUTPUTS), default="npy",
                        help="npy: (frames, 150) arrays (default); pose: pose-format .pose files with the whole "
                             "Holistic result (pose, face, hands, world; readable by pose-format and by every "
                             "command here); both")
    parser.add_argument("--workers", type=_non_negative_int, default=os.cpu_count() or 1,
                        help="worker processes, one MediaPipe instance each (default: number of CPUs, the fastest "
                             "setting in the extraction benchmark although one worker keeps ~1.4 cores busy; "
                             "0 = in this process, for debugging)")
    parser.add_argument("--model-complexity", type=int, choices=sorted(POSE_MODELS), default=BUNDLED_COMPLEXITY,
                        help=f"Holistic pose model (default {BUNDLED_COMPLEXITY}, the only one bundled with "
                             "mediapipe; 0 and 2 are downloaded by mediapipe on first use, so need internet once)")
    parser.add_argument("--extensions", default=",".join(DEFAULT_EXTENSIONS),
                        help="comma-separated video file extensions (default: %(default)s)")
    parser.add_argument("--recursive", action="store_true", help="also search sub-folders")
    parser.add_argument("--overwrite", action="store_true", help="redo videos that are already extracted")
    parser.add_argument("--num-shards", type=_positive_int, default=1,
                        help="split the sorted video list into this many shards (default 1)")
    parser.add_argument("--shard-index", type=_non_negative_int, default=0,
                        help="which shard this run extracts: videos i, i+N, i+2N, ... (default 0)")
    parser.add_argument("--index", default=None,
                        help="WLASL-style JSON or CSV (video_id, gloss, frame_start, frame_end) whose frame "
                             "ranges trim the videos (frame_start 1-based, frame_end -1 = to the end); the "
                             ".npy files then hold only those frames")
    parser.set_defaults(func=run_extract)


def add_merge_shards_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "merge-shards", parents=parents, help="join the shards' manifest/failures CSVs",
        description="Merge manifest-<i>-of-<N>.csv and failures-<i>-of-<N>.csv of all N shards into "
                    "manifest.csv and failures.csv.")
    parser.add_argument("--output-landmarks", required=True, help="the folder the shards extracted into")
    parser.set_defaults(func=run_merge_shards)


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value}")
    return value


def add_create_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    from datasets.creation import SPLIT_METHODS

    parser = subparsers.add_parser(
        "create", parents=parents,
        help="landmarks + index -> <name>_train.csv / <name>_val.csv [/ <name>_test.csv] (SPOTER CSV)",
        description="Build SPOTER CSVs from a landmark folder and a WLASL-style JSON or CSV index "
                    "(video_id,gloss[,signer_id][,split]): <name>_train.csv, <name>_val.csv, id_to_label.json "
                    "(label ids = sorted glosses) and create_report.json. Missing or bad landmark files are "
                    "skipped and reported. The index's split is used unless --create-new-split is given: "
                    "when it has both val (or validation/dev) and test, as WLASL's does, they are written "
                    "apart, <name>_val.csv to choose the checkpoint on and <name>_test.csv to report on; "
                    "when it has only one of them, it goes to <name>_val.csv.")
    parser.add_argument("--landmarks-dataset", required=True,
                        help="folder of landmark files, one per clip, or holding them in landmarks/: <video_id> "
                             "with .npy, .pose, .parquet (Kaggle ISLR), .json (MMPose) or an OpenPose folder")
    parser.add_argument("--index", default=None,
                        help="WLASL-style JSON or CSV index, or a Kaggle ISLR train.csv (default: index.json, "
                             "index.csv or train.csv in the landmarks folder)")
    parser.add_argument("--dataset-folder", required=True, help="where the CSVs and id_to_label.json are written")
    parser.add_argument("--name", default="dataset", help="file name prefix: <name>_train.csv (default: %(default)s)")
    parser.add_argument("--num-classes", type=_positive_int, default=None, metavar="N",
                        help="keep the N glosses with the most usable samples (ties by name)")
    parser.add_argument("--create-new-split", action="store_true", help="ignore the index's split and draw a new one")
    parser.add_argument("--split", choices=SPLIT_METHODS, default=None,
                        help="draw a new split (implies --create-new-split): per-gloss 'stratified' (default) "
                             "or 'signer' (no signer in both files)")
    parser.add_argument("--test-size", type=_share, default=None, metavar="F",
                        help="new split: share of samples for the val file (default 0.2; implies --create-new-split)")
    parser.add_argument("--seed", type=_non_negative_int, default=None, metavar="S",
                        help="new split: random seed (default 0; implies --create-new-split)")
    parser.add_argument("--no-trim", action="store_true",
                        help="do not cut samples to the index's frame_start/frame_end (files that extract "
                             "already trimmed, per its manifest.csv, are never cut twice)")
    parser.set_defaults(func=run_create)


def add_import_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "import", parents=parents, help="SPOTER CSVs -> landmark folder (<video_id>.npy + index.csv)",
        description="Turn SPOTER CSVs (e.g. the published WLASL100 files) into a landmark folder: one raw "
                    "(frames, 150) <video_id>.npy per row plus index.csv (video_id,gloss,signer_id,split). "
                    "Points SPOTER lacks are written as 0 (not detected); the neck is recomputed from the "
                    "shoulders when the folder is read.")
    parser.add_argument("--spoter-csv", required=True, nargs="+", help="one or more SPOTER CSV files")
    parser.add_argument("--output-landmarks", required=True, help="folder for <video_id>.npy and index.csv")
    parser.set_defaults(func=run_import)


def build_parser() -> argparse.ArgumentParser:
    parents = [_common_options()]
    # --debug only on the subcommands: on both levels the subcommand's default would override
    parser = argparse.ArgumentParser(prog="preprocessing.py", description=__doc__.split("\n\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_extract_parser(subparsers, parents)
    add_merge_shards_parser(subparsers, parents)
    add_create_parser(subparsers, parents)
    add_import_parser(subparsers, parents)
    return parser


def run_extract(args: argparse.Namespace) -> int:
    from datasets.extraction import extract_landmarks

    summary = extract_landmarks(
        args.videos_folder, args.output_landmarks, workers=args.workers, model_complexity=args.model_complexity,
        extensions=args.extensions, recursive=args.recursive, overwrite=args.overwrite,
        num_shards=args.num_shards, shard_index=args.shard_index, index=args.index, debug=args.debug,
        progress=sys.stderr.isatty() or args.debug, outputs=args.format,
    )
    log.info("%d videos: %d extracted, %d already done, %d failed; %d frames in %.1f s (%.1f frames/s)",
             summary.videos, len(summary.extracted), len(summary.skipped), len(summary.failures),
             summary.frames, summary.seconds, summary.frames_per_second)
    log.info("manifest: %s", summary.manifest)
    if summary.failures:
        log.error("%d video(s) failed, listed in %s", len(summary.failures), summary.failures_file)
        return 1
    return 0


def run_create(args: argparse.Namespace) -> int:
    from datasets.creation import create_dataset
    from datasets.errors import UsageError

    new_split_options = [flag for flag, value in (("--split", args.split), ("--test-size", args.test_size),
                                                  ("--seed", args.seed)) if value is not None]
    if new_split_options and not args.create_new_split:
        log.info("%s given: drawing a new split (as with --create-new-split)", ", ".join(new_split_options))
    report = create_dataset(
        args.landmarks_dataset, args.index, args.dataset_folder, name=args.name, num_classes=args.num_classes,
        create_new_split=args.create_new_split or bool(new_split_options), split=args.split or "stratified",
        test_size=0.2 if args.test_size is None else args.test_size, seed=args.seed or 0,
        trim=not args.no_trim, progress=sys.stderr.isatty() or args.debug)
    test = f" + {report.test_samples} test" if report.test_file else ""
    log.info("%d glosses; %d train + %d val%s samples (val share %.3f); %d skipped; report: %s",
             report.num_classes, report.train_samples, report.val_samples, test, report.val_share,
             len(report.skipped), report.report_file)
    log.info("wrote %s", ", ".join(p for p in (report.train_file, report.val_file, report.test_file,
                                               report.labels_file) if p))
    return 0


def run_import(args: argparse.Namespace) -> int:
    from datasets.imports import import_spoter_csvs

    report = import_spoter_csvs(args.spoter_csv, args.output_landmarks)
    log.info("imported %d samples (%d frames) from %d file(s) into %s; index: %s", report.samples, report.frames,
             len(report.files), report.output_folder, report.index_file)
    return 0


def run_merge_shards(args: argparse.Namespace) -> int:
    from datasets.extraction import merge_shards

    summary = merge_shards(args.output_landmarks)
    log.info("merged %d shards: %d videos in %s, %d failures in %s", summary.shards, summary.videos,
             summary.manifest, summary.failures, summary.failures_file)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.debug = args.debug or debug_requested()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format="%(levelname)s: %(message)s")
    try:
        return args.func(args)
    except ValueError as error:  # UsageError / DataError: bad arguments or input files
        if args.debug:
            traceback.print_exc()
        print(f"preprocessing.py {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"preprocessing.py {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as error:  # unexpected: one line unless --debug
        if args.debug:
            raise
        print(f"preprocessing.py {args.command}: error: {type(error).__name__}: {error} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
