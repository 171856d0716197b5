"""Videos → MediaPipe Holistic landmarks, one ``<video>.npy`` per video (raw layout, ``(T, 150)``),
and/or one ``<video>.pose`` (pose-format, full Holistic header: pose, face, hands, world landmarks).

Offline (only the bundled ``model_complexity=1`` pose model is guaranteed), parallel (one
Holistic instance per worker process), resumable and shardable. Decisions worth knowing:

* **Names.** A video's id is its file stem; with ``recursive=True`` it is its path relative
  to the videos folder without the extension, ``/`` replaced by ``__`` (``hello/001.mp4`` →
  ``hello__001``), so ids stay unique across sub-folders. Output is ``<id>.npy`` (``outputs``
  ``("npy",)``, the default), ``<id>.pose`` (``("pose",)``) or both. Files whose
  name starts with ``.`` are ignored. Two videos mapping to the same id (``a.mp4`` and
  ``a.avi``): the first in sorted order wins, the others are reported as failures.
* **Manifest.** ``manifest.csv`` has one row per extracted video, sorted by id:
  ``video, frames, fps, width, height, pose_share, left_hand_share, right_hand_share,
  seconds, frame_start, frame_end``. ``seconds`` is the duration of the extracted clip
  (frames / fps), not processing time, so a resumed run writes the same manifest as an
  uninterrupted one. ``frame_start``/``frame_end`` are the trim applied from ``--index``
  (1 and -1 when none): such ``.npy`` files already hold only the trimmed frames.
* **Failures.** Unopenable, empty, non-video, truncated (fewer frames decoded than the
  container declares) and frame-less videos are skipped, listed in ``failures.csv``
  (``video, reason``) and leave no ``.npy``. Failed videos are retried on every run.
* **No person.** A readable video where nothing is detected is still written (all zeros),
  listed with ``pose_share`` 0 and logged as a warning: "nobody there" is a fact about the
  video, and dropping it is a later, dataset-level decision.
* **Resuming.** Each finished video leaves ``.records/<id>.json`` (its manifest row and the
  settings used). A rerun skips a video whose ``.npy`` loads, is float32 ``(frames, 150)``
  with ``frames`` equal to its record (and whose ``.pose``, when asked for, reads back with
  that many frames), and whose record has the same model complexity, trim, source and
  outputs; everything else is redone. The ``.npy``, each record and the CSVs are written
  atomically, and the CSVs are rebuilt from the records at the end, so ``kill -9`` loses at
  most the videos in flight.
* **Sharding.** Shard ``i`` of ``N`` takes ``sorted_videos[i::N]`` and writes
  ``manifest-<i>-of-<N>.csv``/``failures-<i>-of-<N>.csv``; :func:`merge_shards` joins them.
* **Determinism.** The tracker is reset before every video, so a video's landmarks do not
  depend on which worker handled it or what it handled before (MediaPipe on CPU gives
  bit-identical results for identical frames).

The package, by concern (data flows down the list; each module imports only those above it):

* :mod:`~datasets.extraction.jobs`: the job and outcome records every step passes around;
* :mod:`~datasets.extraction.videos`: listing videos, ids, extensions, sharding, trims from an index;
* :mod:`~datasets.extraction.mediapipe_runner`: the pose model, the Holistic graph, one video → arrays;
* :mod:`~datasets.extraction.records`: ``.records/`` for resuming, cleaning up failed and killed runs;
* :mod:`~datasets.extraction.manifest`: the manifest/failures CSVs and :func:`merge_shards`;
* :mod:`~datasets.extraction.pool`: worker processes and surviving a worker that dies;
* :mod:`~datasets.extraction.extract`: :func:`extract_landmarks`, the whole run.

Every name other code uses is importable from here. A test that replaces a function must patch
the module that looks it up (e.g. ``datasets.extraction.mediapipe_runner.pose_model_path``):
the names here are only references.
"""
from __future__ import annotations

from datasets.extraction.extract import ExtractionSummary, extract_landmarks
from datasets.extraction.jobs import DEFAULT_OUTPUTS, OUTPUTS, VideoError, VideoJob, VideoOutcome
from datasets.extraction.manifest import FAILURE_COLUMNS, MANIFEST_COLUMNS, MergeSummary, merge_shards, write_csv
from datasets.extraction.mediapipe_runner import (BUNDLED_COMPLEXITY, POSE_MODELS, TRUNCATION_TOLERANCE,
                                                  ModelUnavailableError, create_holistic, detection_shares,
                                                  ensure_pose_model, extract_video, holistic_points,
                                                  landmarks_to_vector, pose_model_path)
from datasets.extraction.pool import process_job
from datasets.extraction.records import RECORDS_DIR, completed_row
from datasets.extraction.videos import (DEFAULT_EXTENSIONS, list_videos, load_trims, parse_extensions, shard,
                                        shard_suffix, video_id)

__all__ = [
    "DEFAULT_EXTENSIONS", "MANIFEST_COLUMNS", "FAILURE_COLUMNS", "ExtractionSummary", "MergeSummary",
    "ModelUnavailableError", "VideoError", "VideoJob", "VideoOutcome", "create_holistic", "detection_shares",
    "ensure_pose_model", "extract_landmarks", "extract_video", "landmarks_to_vector", "list_videos",
    "load_trims", "merge_shards", "parse_extensions", "pose_model_path", "process_job", "shard", "video_id",
]
