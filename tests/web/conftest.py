"""Fixtures for the web demo tests: a small exported model, a built demo folder, the server, the browser.

The browser is Debian's Chromium driven by ``web/tests/drive.mjs`` (playwright-core from
``web/node_modules``); both come from ``bash scripts/setup_env.sh --test``. Without them
the browser tests are skipped locally and fail in CI, where they must run.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
WEB_DIR = REPO_ROOT / "web"
DRIVER = WEB_DIR / "tests" / "drive.mjs"
CHROMIUM = Path("/usr/bin/chromium")
# Clips longer than this are resampled, so the tests cover the page's resampling too.
TEST_MAX_FRAMES = 64
DRIVE_TIMEOUT_S = 600


def load_web_module(name: str):
    """Import ``web/<name>.py`` (web/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"web_{name}", WEB_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def web_build():
    return load_web_module("build")


@pytest.fixture(scope="session")
def web_serve():
    return load_web_module("serve")


def _missing_browser_tools() -> str | None:
    if shutil.which("node") is None:
        return "node not found"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found"
    if not (WEB_DIR / "node_modules" / "playwright-core").is_dir():
        return "web/node_modules not installed"
    return None


@pytest.fixture(scope="session")
def browser_tools() -> None:
    missing = _missing_browser_tools()
    if missing:
        message = f"browser tests need Chromium and web/node_modules ({missing}): run bash scripts/setup_env.sh --test"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory) -> Path:
    """A 1-encoder/1-decoder SPOTER exported through export/ (model.onnx + model.json)."""
    import torch

    from export import export_onnx, write_model_json
    from models import build_model
    from models.spoter import SpoterConfig
    from models.checkpoint import save_checkpoint

    folder = tmp_path_factory.mktemp("web-model")
    torch.manual_seed(0)
    config = SpoterConfig(num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=128)
    model = build_model(config).eval()
    checkpoint = folder / "small.pth"
    save_checkpoint(checkpoint, {
        "state_dict": model.state_dict(), "config": {"distance": "euclidean"}, "model_config": asdict(config),
        "label_names": [], "epoch": 0,
        "normalization": {"body": "centered", "hands": True, "resample_frames": 0, "max_frames": TEST_MAX_FRAMES},
    })
    out = folder / "export"
    export_onnx(checkpoint, out)
    write_model_json(checkpoint, out)
    return out


@pytest.fixture(scope="session")
def demo_public(exported_model, web_build, tmp_path_factory) -> Path:
    """A built demo data folder: small synthetic gallery (3 signers) and held-out sample clips."""
    out = tmp_path_factory.mktemp("web-public")
    web_build.build(exported_model, out, num_samples=4, synthetic_classes=12, synthetic_signers=4,
                    gallery_signers=3, seed=0, int8=True)
    return out


class DemoServer:
    def __init__(self, public: Path, isolation: bool = True):
        args = [sys.executable, str(WEB_DIR / "serve.py"), "--port", "0", "--public", str(public)]
        if not isolation:
            args.append("--no-isolation")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().strip()
        if not line.startswith("serving "):
            self.process.kill()
            raise RuntimeError(f"serve.py did not start: {line!r} {self.process.stderr.read()}")
        self.url = line.split(" ", 1)[1]

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="session")
def demo_server(demo_public):
    server = DemoServer(demo_public)
    yield server
    server.close()


@pytest.fixture(scope="session")
def plain_server(demo_public):
    """The same demo served without COOP/COEP (no cross-origin isolation, so no threads)."""
    server = DemoServer(demo_public, isolation=False)
    yield server
    server.close()


def run_driver(url: str, steps: list[dict], tmp_path: Path, query: str = "") -> dict:
    """Run the browser driver; returns its JSON (results, requests, foreign_requests, console_errors)."""
    spec = tmp_path / "drive-spec.json"
    spec.write_text(json.dumps({"url": url, "chromium": str(CHROMIUM), "steps": steps, "query": query}))
    done = subprocess.run(["node", str(DRIVER), str(spec)], capture_output=True, text=True, timeout=DRIVE_TIMEOUT_S,
                          cwd=WEB_DIR)
    try:
        output = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise AssertionError(f"driver printed no JSON (exit {done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    assert "fatal" not in output, output["fatal"]
    return output


@pytest.fixture
def drive(browser_tools, tmp_path):
    """``drive(url, steps, query="")`` -> the driver's JSON output."""
    return lambda url, steps, query="": run_driver(url, steps, tmp_path, query)


@pytest.fixture
def only_local():
    """``only_local(output, url)`` asserts that no recorded request left the page's origin."""
    return assert_only_local


def assert_only_local(output: dict, url: str) -> None:
    """Every recorded request went to the page's own origin (or a blob:/data: URL of it)."""
    origin = url.rstrip("/")
    assert output["requests"], "the driver recorded no requests at all"
    leaving = [r for r in output["requests"]
               if not (r == origin or r.startswith(origin + "/") or r.startswith(("blob:" + origin + "/", "data:")))]
    assert not leaving, f"requests left the page's origin: {leaving}"
    assert not output["foreign_requests"], output["foreign_requests"]


@pytest.fixture(scope="session")
def reference(exported_model, demo_public, web_build):
    """Python side of the comparison: onnxruntime session, preprocessing and gallery of the built demo."""
    manifest = json.loads((demo_public / "manifest.json").read_text())
    meta = json.loads((demo_public / "gallery.json").read_text())
    embeddings = np.fromfile(demo_public / "gallery.bin", dtype="<f4").reshape(meta["count"], meta["dim"])
    sessions = {}
    inputs = manifest["model"]["inputs"]
    names = (inputs["landmarks"], inputs["padding_mask"], inputs["output"])
    prep = manifest["model"]["preprocessing"]

    def top5(raw: np.ndarray, model_file: str = "model.onnx") -> list[tuple[str, float]]:
        if model_file not in sessions:
            sessions[model_file] = web_build.open_session(demo_public / model_file)
        embedding = web_build.embed(sessions[model_file], [web_build.prepare_raw(raw, prep)], names)[0]
        ranked = web_build.top_k(embedding, embeddings, np.asarray(meta["labels"]), len(meta["label_names"]),
                                 meta["metric"])
        return [(meta["label_names"][label], distance) for label, distance in ranked]

    return top5
