"""Command-line tests for ``preprocessing.py extract`` and ``merge-shards``.

Exit statuses, the one-line messages of failure cases, sharding through the CLI, and a
``kill -9`` test: a killed run never leaves a broken ``<video>.npy`` and a rerun ends with
exactly the outputs of an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import preprocessing
from datasets import extraction, layout
from datasets.extraction import mediapipe_runner

cv2 = pytest.importorskip("cv2")

REPO_ROOT = Path(__file__).resolve().parents[1]
MESSI_FALLBACK = Path("/usr/share/doc/opencv-doc/examples/data/messi5.jpg")


def find_messi() -> Path | None:
    """``messi5.jpg`` from the opencv-doc package (asked from dpkg, else its usual place)."""
    if shutil.which("dpkg"):
        listing = subprocess.run(["dpkg", "-L", "opencv-doc"], capture_output=True, text=True, check=False).stdout
        for line in listing.splitlines():
            if line.endswith("/messi5.jpg") and Path(line).is_file():
                return Path(line)
    return MESSI_FALLBACK if MESSI_FALLBACK.is_file() else None


def make_clips(folder: Path, frames: int) -> Path:
    """Four clips of a real photograph, each with its own small camera jitter, plus a blank one."""
    path = find_messi()
    if path is None:
        pytest.skip("messi5.jpg not found: install Debian package opencv-doc (bash scripts/setup_env.sh --test)")
    image = cv2.imread(str(path))
    height, width = image.shape[:2]
    rng = np.random.default_rng(11)
    for k in range(4):
        writer = cv2.VideoWriter(str(folder / f"clip{k}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
        for dx, dy in rng.integers(-4, 5, size=(frames, 2)):
            shift = np.float32([[1, 0, dx], [0, 1, dy]])
            writer.write(cv2.warpAffine(image, shift, (width, height), borderMode=cv2.BORDER_REPLICATE))
        writer.release()
    writer = cv2.VideoWriter(str(folder / "nobody.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    for _ in range(4):
        writer.write(np.full_like(image, 90))
    writer.release()
    return folder


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Short clips (10 frames) for the exit-status tests."""
    return make_clips(tmp_path_factory.mktemp("cli-clips"), 10)


def copy_clips(clips: Path, dest: Path, names: list[str] | None = None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(clips.iterdir()):
        if names is None or path.name in names:
            shutil.copy(path, dest / path.name)
    return dest


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.npy"))}


def test_help_lists_extract_and_merge(capsys):
    with pytest.raises(SystemExit) as caught:
        preprocessing.main(["--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    assert "extract" in text and "merge-shards" in text


def test_failure_cases_exit_1_and_name_each_file(clips, tmp_path, capsys, caplog):
    videos = copy_clips(clips, tmp_path / "videos", ["clip0.mp4"])
    (videos / "noise.mp4").write_bytes(np.random.default_rng(3).bytes(10_000))
    (videos / "empty.mp4").write_bytes(b"")
    (videos / "readme.txt").write_text("not a video, and not listed: wrong extension")
    out = tmp_path / "out"
    caplog.set_level("INFO")
    status = preprocessing.main(["extract", "--videos-folder", str(videos), "--output-landmarks", str(out),
                                 "--workers", "0"])
    assert status == 1
    text = caplog.text
    assert "skipped empty.mp4: empty file (0 bytes)" in text
    assert "skipped noise.mp4: not a readable video (OpenCV/FFmpeg cannot open it)" in text
    assert "3 videos: 1 extracted, 0 already done, 2 failed" in text
    assert "Traceback" not in text + capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.npy")) == ["clip0.npy"]
    assert (out / "failures.csv").read_text().splitlines() == [
        "video,reason", "empty,empty.mp4: empty file (0 bytes)",
        "noise,noise.mp4: not a readable video (OpenCV/FFmpeg cannot open it)"]
    # the good video's output does not depend on the bad ones being there
    alone = tmp_path / "alone"
    assert preprocessing.main(["extract", "--videos-folder", str(copy_clips(clips, tmp_path / "v2", ["clip0.mp4"])),
                               "--output-landmarks", str(alone), "--workers", "0"]) == 0
    assert outputs(alone) == outputs(out)


def test_video_without_person_exits_0_with_warning(clips, tmp_path, caplog):
    videos = copy_clips(clips, tmp_path / "videos", ["nobody.mp4"])
    status = preprocessing.main(["extract", "--videos-folder", str(videos), "--output-landmarks",
                                 str(tmp_path / "out"), "--workers", "0"])
    assert status == 0
    assert "no person detected in 1 video(s), written as all-zero landmarks (pose_share 0): nobody" in caplog.text
    assert np.load(tmp_path / "out" / "nobody.npy", allow_pickle=False).shape == (4, layout.RAW_FEATURES)


@pytest.mark.parametrize("extra, message", [
    (["--shard-index", "2", "--num-shards", "2"], "--shard-index must be in 0..1, got 2"),
    (["--extensions", "gif"], "no videos with extensions gif in"),
    (["--index", "{missing}"], "cannot read index"),
])
def test_usage_errors_exit_2_with_one_line(clips, tmp_path, capsys, extra, message):
    videos = copy_clips(clips, tmp_path / "videos", ["clip0.mp4"])
    extra = [e.format(missing=tmp_path / "missing.csv") for e in extra]
    status = preprocessing.main(["extract", "--videos-folder", str(videos), "--output-landmarks",
                                 str(tmp_path / "out"), "--workers", "0", *extra])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("preprocessing.py extract: error:") and message in err
    assert len(err.splitlines()) == 1
    assert not list((tmp_path / "out").glob("*.npy"))


def test_missing_folder_exit_2_and_debug_shows_traceback(tmp_path, capsys):
    args = ["extract", "--videos-folder", str(tmp_path / "nope"), "--output-landmarks", str(tmp_path / "out")]
    assert preprocessing.main(args) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"preprocessing.py extract: error: videos folder {tmp_path / 'nope'} "
                           "does not exist or is not a folder")
    assert preprocessing.main([*args, "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_bad_argument_values_are_refused_by_argparse(tmp_path, capsys):
    for bad in (["--workers", "-1"], ["--num-shards", "0"], ["--model-complexity", "3"]):
        with pytest.raises(SystemExit) as caught:
            preprocessing.main(["extract", "--videos-folder", str(tmp_path), "--output-landmarks", str(tmp_path), *bad])
        assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_model_complexity_0_offline_message(clips, tmp_path, monkeypatch, capsys):
    """Simulates being offline (the download raises); the suite never touches the network."""
    # replaced where ensure_pose_model looks them up (the package only re-exports them)
    monkeypatch.setattr(mediapipe_runner, "pose_model_path", lambda c: tmp_path / extraction.POSE_MODELS[c])

    def offline(complexity):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(mediapipe_runner, "_mediapipe_download", offline)
    videos = copy_clips(clips, tmp_path / "videos", ["clip0.mp4"])
    status = preprocessing.main(["extract", "--videos-folder", str(videos), "--output-landmarks",
                                 str(tmp_path / "out"), "--model-complexity", "0"])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err == ("preprocessing.py extract: error: --model-complexity 0 needs MediaPipe's pose_landmark_lite.tflite, "
                   "which is not bundled with mediapipe 0.10.21 and could not be downloaded ([Errno -2] Name or "
                   "service not known); use --model-complexity 1 (bundled, works offline) or run once with "
                   "internet access")
    assert not list((tmp_path / "out").glob("*.npy"))


def test_two_shards_cover_every_video_once_and_merge_to_the_union(clips, tmp_path):
    videos = copy_clips(clips, tmp_path / "videos")
    (videos / "broken.mp4").write_bytes(b"\x00" * 100)
    out = tmp_path / "out"
    statuses = [preprocessing.main(["extract", "--videos-folder", str(videos), "--output-landmarks", str(out),
                                    "--workers", "0", "--num-shards", "2", "--shard-index", str(i)]) for i in range(2)]
    assert sorted(statuses) == [0, 1]  # exactly one shard holds the broken file
    shard_rows = []
    for i in range(2):
        manifest = (out / f"manifest-{i}-of-2.csv").read_text().splitlines()[1:]
        failures = (out / f"failures-{i}-of-2.csv").read_text().splitlines()[1:]
        shard_rows.append(sorted(line.split(",")[0] for line in manifest + failures))
    everything = sorted(Path(n).stem for n in os.listdir(videos))
    assert sorted(shard_rows[0] + shard_rows[1]) == everything
    assert not set(shard_rows[0]) & set(shard_rows[1])
    assert shard_rows[0] == sorted(Path(n).stem for n in sorted(os.listdir(videos))[0::2])
    assert not (out / "manifest.csv").exists()

    assert preprocessing.main(["merge-shards", "--output-landmarks", str(out)]) == 0
    merged = (out / "manifest.csv").read_text()
    assert [line.split(",")[0] for line in merged.splitlines()[1:]] == sorted(set(everything) - {"broken"})
    assert (out / "failures.csv").read_text().splitlines()[1:] == ["broken,broken.mp4: not a readable video "
                                                                   "(OpenCV/FFmpeg cannot open it)"]
    # an unsharded run over the same folder finds everything done and writes the same manifest
    assert preprocessing.main(["extract", "--videos-folder", str(videos), "--output-landmarks", str(out),
                               "--workers", "0"]) == 1
    assert (out / "manifest.csv").read_text() == merged


def test_merge_shards_without_shards_is_a_usage_error(tmp_path, capsys):
    assert preprocessing.main(["merge-shards", "--output-landmarks", str(tmp_path)]) == 2
    assert "no shard files" in capsys.readouterr().err


def run_cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO_ROOT / "preprocessing.py"), *args], cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the run and its worker processes (its own session), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def assert_every_final_npy_loads(out: Path) -> int:
    count = 0
    for path in out.glob("*.npy"):
        array = np.load(path, allow_pickle=False)  # raises on a half-written file
        assert array.dtype == np.float32 and array.ndim == 2 and array.shape[1] == layout.RAW_FEATURES, path
        count += 1
    return count


def wait_watching(process: subprocess.Popen, out: Path, timeout: float = 600) -> list[float]:
    """Wait for a run, noting when each final ``.npy`` appeared (seconds after start)."""
    started, seen, appeared = time.monotonic(), set(), []
    while process.poll() is None:
        assert time.monotonic() - started < timeout, "extract did not finish"
        new = {p.name for p in out.glob("*.npy")} - seen
        appeared += [time.monotonic() - started] * len(new)
        seen |= new
        time.sleep(0.05)
    return appeared


@pytest.mark.slow
def test_kill_9_then_rerun_gives_the_uninterrupted_outputs(tmp_path):
    # long enough clips that the kills land while outputs are being written
    (tmp_path / "videos").mkdir()
    videos = make_clips(tmp_path / "videos", 30)
    reference = tmp_path / "reference"
    common = ["--videos-folder", str(videos), "--workers", "2"]
    uninterrupted = run_cli(["extract", *common, "--output-landmarks", str(reference)])
    appeared = wait_watching(uninterrupted, reference)
    assert uninterrupted.returncode == 0, uninterrupted.stderr.read().decode()
    expected = outputs(reference)
    assert len(expected) == 5

    # kill while outputs are being written: between the first and the last .npy of the uninterrupted run
    rng = np.random.default_rng(2024)
    low, high = (appeared[0] - 0.3, appeared[-1] + 0.1) if appeared else (1.0, 8.0)
    for trial, delay in enumerate(rng.uniform(low, high, size=3)):
        out = tmp_path / f"out{trial}"
        process = run_cli(["extract", *common, "--output-landmarks", str(out)])
        try:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=delay)
        finally:
            kill_group(process)
        partial = assert_every_final_npy_loads(out) if out.exists() else 0
        context = f"trial {trial}: killed after {delay:.2f} s with {partial} of {len(expected)} outputs"

        rerun = run_cli(["extract", *common, "--output-landmarks", str(out)])
        assert rerun.wait(timeout=600) == 0, (context, rerun.stderr.read().decode())
        assert outputs(out).keys() == expected.keys(), context
        for name, data in expected.items():
            same = np.array_equal(np.load(out / name, allow_pickle=False),
                                  np.load(reference / name, allow_pickle=False))
            assert same and (out / name).read_bytes() == data, (context, name)
        assert (out / "manifest.csv").read_bytes() == (reference / "manifest.csv").read_bytes(), context
        assert (out / "failures.csv").read_bytes() == (reference / "failures.csv").read_bytes(), context
        leftovers = [p.name for p in out.rglob("*.tmp")]
        assert leftovers == [], (context, leftovers)
