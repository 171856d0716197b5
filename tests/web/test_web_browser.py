"""The demo page in headless Chromium: same normalisation and top-5 as Python, local-only, clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from augmentations.normalization import normalize
from datasets import layout
from datasets.synthetic import generate_signs

pytestmark = pytest.mark.browser

NORMALIZATION_TOLERANCE = 1e-5
DISTANCE_TOLERANCE = 1e-4
VARIANTS = [{"body": "centered", "hands": True}, {"body": "spoter", "hands": True},
            {"body": "none", "hands": False}, {"body": "centered", "hands": False}]


def edge_case_clip(base: np.ndarray) -> np.ndarray:
    """A real-looking clip with every special case of the normalisation, one per frame."""
    raw = np.repeat(base[:1], 12, axis=0).copy()
    pts = raw.reshape(len(raw), layout.NUM_RAW_POINTS, layout.NUM_COORDS)
    pose = slice(0, layout.NUM_POSE)
    left = slice(layout.RAW_LEFT_HAND_OFFSET, layout.RAW_LEFT_HAND_OFFSET + layout.NUM_HAND)
    right = slice(layout.RAW_RIGHT_HAND_OFFSET, layout.RAW_RIGHT_HAND_OFFSET + layout.NUM_HAND)
    eye = layout.POSE_LANDMARKS.index
    pts[0] = 0                                              # nothing detected
    pts[1, left] = 0                                        # one hand missing
    pts[2, layout.RAW_RIGHT_SHOULDER] = 0                   # no neck -> head unit from nothing
    pts[3, eye("left_eye")] = 0                             # one eye
    pts[4, [eye("left_eye"), eye("right_eye")]] = 0         # no eyes: box from the neck
    pts[5, right] = 0
    pts[5, right.start] = (0.4, 0.6)                        # a one-point hand (zero-size box)
    pts[6, right, 1] = 0.55                                 # a flat hand (height 0)
    pts[7, pose] = pts[7, pose] * 0.1                       # near the corner: spoter box clamps at 0
    pts[8] = pts[8] * 1.7 - 0.4                             # partly outside the image (< 0 and > 1)
    pts[9, pose] = 0                                        # hands without a body
    pts[10, [eye("left_eye"), eye("right_eye")], 0] = 0     # eyes with x exactly 0 still count
    return raw


@pytest.fixture(scope="module")
def synthetic_clips():
    samples = generate_signs(num_classes=6, num_signers=2, samples_per_class_per_signer=1, seed=3)
    clips = [s.raw for s in samples]
    return clips + [edge_case_clip(clips[0]), edge_case_clip(clips[-1])]


def compare_normalisation(drive, url, raws: list[np.ndarray], tmp_path: Path, variants=VARIANTS) -> float:
    files = []
    for i, raw in enumerate(raws):
        files.append(str(tmp_path / f"clip{i}.npy"))
        np.save(files[-1], raw.astype(np.float32), allow_pickle=False)
    out = tmp_path / "js"
    output = drive(url, [{"op": "normalize", "files": files, "out": str(out), "variants": variants}])
    assert output["results"][0]["frames"] == [len(r) for r in raws]
    worst = 0.0
    for i, raw in enumerate(raws):
        points = layout.raw_to_spoter(raw)
        for v, variant in enumerate(variants):
            expected = normalize(points, variant["body"], variant["hands"])
            got = np.fromfile(out / f"{i}.{v}.f32", dtype="<f4").reshape(expected.shape)
            undetected = layout.missing_mask(points)
            assert not got[undetected].any(), f"clip {i} {variant}: an undetected point is not exactly 0"
            worst = max(worst, float(np.abs(got - expected).max()))
            assert worst <= NORMALIZATION_TOLERANCE, f"clip {i} {variant}: max abs difference {worst}"
    return worst


def test_browser_normalization_matches_python_on_synthetic(drive, demo_server, synthetic_clips, tmp_path):
    compare_normalisation(drive, demo_server.url, synthetic_clips, tmp_path)


def test_browser_normalization_matches_python_on_real_dev(drive, demo_server, real_dev_dir, tmp_path):
    """Every clip of real-dev, default and published body normalisation."""
    raws = [np.load(path, allow_pickle=False) for path in sorted((real_dev_dir / "landmarks").glob("*.npy"))]
    assert raws
    compare_normalisation(drive, demo_server.url, raws, tmp_path, VARIANTS[:2])


def test_browser_resampling_indices_match_python(drive, demo_server):
    """numpy rounds halves to even (round(linspace(...))): the page must pick the same frames."""
    from augmentations.torch_data import resample_frames
    pairs = [[n, t] for n in (1, 2, 5, 6, 30, 99, 100, 101, 257, 1000) for t in (1, 2, 3, 50, 64, 100, 256)]
    got = drive(demo_server.url, [{"op": "resample", "pairs": pairs}])["results"][0]
    for (n, t), indices in zip(pairs, got):
        assert indices == resample_frames(n, t).tolist(), (n, t)


def assert_same_top5(page: dict, expected: list[tuple[str, float]], what: str) -> None:
    assert page["error"] is None, f"{what}: page shows an error: {page['error']}"
    got = [(row["gloss"], row["distance"]) for row in page["top"]]
    assert [g for g, _ in got] == [g for g, _ in expected], f"{what}: page {got} != python {expected}"
    np.testing.assert_allclose([d for _, d in got], [d for _, d in expected], atol=DISTANCE_TOLERANCE, err_msg=what)
    assert np.isfinite(page["ms"]) and page["ms"] > 0


def test_browser_top5_matches_python_onnxruntime(drive, demo_server, demo_public, reference, shared_dirs_optional,
                                                 tmp_path, only_local):
    manifest = json.loads((demo_public / "manifest.json").read_text())
    steps, expected = [], []
    for index, sample in enumerate(manifest["samples"]):
        steps.append({"op": "sample", "index": index})
        expected.append((f"sample {sample['video_id']}", reference(np.load(demo_public / sample["file"]))))
    # Held-out clips as files: .npy and the same kind of clip as JSON; longer than the
    # model's max_frames, so the page must resample exactly as Python does.
    long_clips = generate_signs(num_classes=3, num_signers=1, samples_per_class_per_signer=1, seed=11,
                                min_frames=90, max_frames=130)
    for i, s in enumerate(long_clips):
        path = tmp_path / f"long{i}.npy"
        np.save(path, s.raw, allow_pickle=False)
        steps.append({"op": "upload", "file": str(path)})
        expected.append((path.name, reference(s.raw)))
    # the same clip as pose-format .pose files: Holistic components, OpenPose components, two people
    from tests import pose_fixtures
    for name, options in (("holistic.pose", {}), ("openpose.pose", {"openpose": True}),
                          ("crowd.pose", {"extra_person": True})):
        path = pose_fixtures.write_pose_file(tmp_path / name, long_clips[1].raw, 1280, 720, **options)
        steps.append({"op": "upload", "file": str(path)})
        expected.append((path.name, reference(long_clips[1].raw)))
    json_path = tmp_path / "clip.json"
    json_path.write_text(json.dumps({"landmarks": long_clips[0].raw[:40].tolist()}))
    steps.append({"op": "upload", "file": str(json_path)})
    expected.append((json_path.name, reference(np.asarray(json.loads(json_path.read_text())["landmarks"], np.float32))))
    for path in shared_dirs_optional:
        steps.append({"op": "upload", "file": str(path)})
        expected.append((path.name, reference(np.load(path))))

    output = drive(demo_server.url, steps)
    assert len(output["results"]) == len(expected)
    for page, (what, python_top5) in zip(output["results"], expected):
        assert len(python_top5) == 5
        assert_same_top5(page, python_top5, what)
    assert any("resampled to" in page["input"] for page in output["results"])
    only_local(output, demo_server.url)


@pytest.fixture
def shared_dirs_optional(repo_root) -> list[Path]:
    """A few real-dev clips when ../shared is there (only that part is skipped without it)."""
    folder = repo_root / ".." / "shared" / "data" / "real-dev" / "landmarks"
    return sorted(folder.glob("*.npy"))[::300][:3] if folder.is_dir() else []


def test_browser_page_loads_everything_from_its_own_origin(drive, demo_server, only_local):
    output = drive(demo_server.url, [{"op": "info"}])
    info = output["results"][0]
    assert info["state"] == "ready" and info["error"] is None
    assert "sha256" in info["model"] and "12 glosses" in info["gallery"]
    assert info["isolated"] is True and info["samples"] == 4
    # The recording works: the runtime and the model were fetched, from the page's origin.
    assert any(r.endswith("/public/model.onnx") for r in output["requests"])
    assert any(r.endswith(".wasm") for r in output["requests"])
    only_local(output, demo_server.url)
    assert not output["console_errors"], output["console_errors"]


def test_browser_single_threaded_without_isolation_gives_same_result(drive, demo_public, plain_server, reference):
    """Without COOP/COEP the page is not isolated: it says so, runs one thread, same answers."""
    manifest = json.loads((demo_public / "manifest.json").read_text())
    output = drive(plain_server.url, [{"op": "info"}, {"op": "sample", "index": 1}])
    info, page = output["results"]
    assert info["isolated"] is False and info["state"] == "ready"
    assert ", 1 thread " in info["runtime"] and "not cross-origin isolated" in info["runtime"]
    assert_same_top5(page, reference(np.load(demo_public / manifest["samples"][1]["file"])), "single-threaded")


def test_browser_int8_variant_matches_python_onnxruntime(drive, demo_public, demo_server, reference):
    """?precision=int8 runs the int8 model that web/build.py shipped; same top-5 as Python on it."""
    manifest = json.loads((demo_public / "manifest.json").read_text())
    int8 = manifest["model"]["variants"]["int8"]["file"]
    output = drive(demo_server.url, [{"op": "info"}] + [{"op": "sample", "index": i} for i in range(2)],
                   query="precision=int8")
    info, *pages = output["results"]
    assert info["state"] == "ready" and int8 in info["model"]
    for i, page in enumerate(pages):
        raw = np.load(demo_public / manifest["samples"][i]["file"])
        assert_same_top5(page, reference(raw, int8), f"int8 sample {i}")


def test_browser_unknown_precision_is_a_clear_start_error(drive, demo_server):
    output = drive(demo_server.url, [{"op": "info"}], query="precision=fp8")
    info = output["results"][0]
    assert info["state"] == "error"
    assert "this build has no fp8 model" in info["error"]


MALFORMED = {
    "garbage.npy": (b"this is not numpy data at all", "not a .npy file"),
    "wrong_shape.npy": (None, "expected landmarks of shape (frames, 150)"),
    "empty.npy": (None, "no frames"),
    "nan.npy": (None, "non-finite"),
    "truncated.npy": (None, "truncated"),
    "broken.json": (b"{\"landmarks\": [[0.1, ", "not valid JSON"),
    "short_rows.json": (b"{\"landmarks\": [[0.1, 0.2]]}", "frame 0 has 2 values, expected 150"),
    "notes.txt": (b"hello", "unsupported file type"),
    "garbage.pose": (b"hello, not a pose file", "not a .pose file"),
    "truncated.pose": (None, "truncated .pose file"),
    "face_only.pose": (None, "no known body component"),
}


def write_malformed(folder: Path) -> dict[str, Path]:
    paths = {}
    for name, (content, _) in MALFORMED.items():
        path = folder / name
        if content is not None:
            path.write_bytes(content)
        elif name == "wrong_shape.npy":
            np.save(path, np.zeros((10, 20), np.float32))
        elif name == "empty.npy":
            np.save(path, np.zeros((0, layout.RAW_FEATURES), np.float32))
        elif name == "nan.npy":
            raw = np.full((5, layout.RAW_FEATURES), 0.5, np.float32)
            raw[3, 7] = np.nan
            np.save(path, raw)
        elif name.endswith(".pose"):
            from tests import pose_fixtures
            pose_fixtures.write_pose_file(path, np.full((6, layout.RAW_FEATURES), 0.5, np.float32))
            if name == "truncated.pose":
                path.write_bytes(path.read_bytes()[:-100])
            else:  # keep only the face component: rename the body and hand components away
                blob = path.read_bytes()
                for component in (b"POSE_LANDMARKS", b"LEFT_HAND_LANDMARKS", b"RIGHT_HAND_LANDMARKS"):
                    blob = blob.replace(component, component.lower())
                path.write_bytes(blob)
        elif name == "truncated.npy":
            np.save(path, np.full((30, layout.RAW_FEATURES), 0.5, np.float32))
            path.write_bytes(path.read_bytes()[:500])
        paths[name] = path
    return paths


def test_browser_malformed_file_shows_clear_message(drive, demo_server, demo_public, tmp_path):
    paths = write_malformed(tmp_path)
    manifest = json.loads((demo_public / "manifest.json").read_text())
    good = demo_public / manifest["samples"][0]["file"]
    steps = [{"op": "upload", "file": str(p)} for p in paths.values()] + [{"op": "upload", "file": str(good)}]
    output = drive(demo_server.url, steps)
    for (name, (_, reason)), page in zip(MALFORMED.items(), output["results"]):
        assert page["error"] is not None, f"{name}: no error shown"
        assert name in page["error"] and reason in page["error"], f"{name}: unclear message {page['error']!r}"
        assert page["top"] == [], f"{name}: a result is shown next to the error"
    recovered = output["results"][-1]
    assert recovered["error"] is None and len(recovered["top"]) == 5  # the page keeps working


@pytest.mark.slow
def test_browser_video_file_and_webcam_through_holistic(drive, demo_server, shared_dir, only_local):
    """MediaPipe Holistic runs in the page from node_modules (a few frames: slow on software WebGL)."""
    video = shared_dir / "data" / "video" / "test_video.mp4"
    if not video.is_file():
        pytest.skip(f"{video} not found")
    output = drive(demo_server.url, [{"op": "video", "file": str(video)}, {"op": "camera", "frames": 1}],
                   query="max_video_frames=2")
    from_video, from_camera = output["results"]
    assert from_video["error"] is None and len(from_video["top"]) == 5
    assert from_video["input"].startswith("test_video.mp4: 2 frames")
    # Chromium's fake camera shows a test pattern: Holistic runs and finds nobody.
    assert from_camera["error"] == "webcam: MediaPipe found no person in any frame."
    assert any("/node_modules/@mediapipe/holistic/" in r for r in output["requests"])
    only_local(output, demo_server.url)
    refused = [m for m in output["console_errors"] if "Content Security Policy" in m or "Refused" in m]
    assert not refused, refused  # the strict same-origin policy of serve.py lets MediaPipe run
