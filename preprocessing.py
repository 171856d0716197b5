"""Data preparation from the command line.

    python preprocessing.py extract --videos-folder videos/ --output-landmarks landmarks/
    python preprocessing.py extract ... --num-shards 4 --shard-index 0   # one of 4 machines/jobs
    python preprocessing.py merge-shards --output-landmarks landmarks/

Thin: arguments are parsed here and the work is done by :mod:`datasets.extraction`.
Exit status: 0 success, 1 some videos failed (see failures.csv), 2 usage error.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

log = logging.getLogger("preprocessing")


def _common_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts (a parent parser, so they go after the subcommand)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true",
                        help="show tracebacks and the native FFmpeg/MediaPipe log output")
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
    from datasets.extraction import BUNDLED_COMPLEXITY, DEFAULT_EXTENSIONS, POSE_MODELS

    parser = subparsers.add_parser(
        "extract", parents=parents, help="videos -> MediaPipe Holistic landmarks (<video>.npy, (T, 150))",
        description="Extract MediaPipe Holistic landmarks from every video of a folder into <video>.npy "
                    "files (float32, (frames, 150)), plus manifest.csv and failures.csv. Reruns skip "
                    "videos already extracted. With --recursive a video's name is its relative path "
                    "without extension, '/' replaced by '__'.")
    parser.add_argument("--videos-folder", required=True, help="folder holding the videos")
    parser.add_argument("--output-landmarks", required=True, help="folder for <video>.npy, manifest.csv, failures.csv")
    parser.add_argument("--workers", type=_non_negative_int, default=os.cpu_count() or 1,
                        help="worker processes, one MediaPipe instance each (default: number of CPUs; "
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


def build_parser() -> argparse.ArgumentParser:
    parents = [_common_options()]
    parser = argparse.ArgumentParser(prog="preprocessing.py", description=__doc__.split("\n\n")[0],
                                     parents=parents)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_extract_parser(subparsers, parents)
    add_merge_shards_parser(subparsers, parents)
    # `create` (landmarks -> dataset) is registered here, calling datasets.creation.create_dataset.
    return parser


def run_extract(args: argparse.Namespace) -> int:
    from datasets.extraction import extract_landmarks

    summary = extract_landmarks(
        args.videos_folder, args.output_landmarks, workers=args.workers, model_complexity=args.model_complexity,
        extensions=args.extensions, recursive=args.recursive, overwrite=args.overwrite,
        num_shards=args.num_shards, shard_index=args.shard_index, index=args.index, debug=args.debug,
        progress=sys.stderr.isatty() or args.debug,
    )
    log.info("%d videos: %d extracted, %d already done, %d failed; %d frames in %.1f s (%.1f frames/s)",
             summary.videos, len(summary.extracted), len(summary.skipped), len(summary.failures),
             summary.frames, summary.seconds, summary.frames_per_second)
    log.info("manifest: %s", summary.manifest)
    if summary.failures:
        log.error("%d video(s) failed, listed in %s", len(summary.failures), summary.failures_file)
        return 1
    return 0


def run_merge_shards(args: argparse.Namespace) -> int:
    from datasets.extraction import merge_shards

    summary = merge_shards(args.output_landmarks)
    log.info("merged %d shards: %d videos in %s, %d failures in %s", summary.shards, summary.videos,
             summary.manifest, summary.failures, summary.failures_file)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
