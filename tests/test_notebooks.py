"""Both notebooks run top to bottom, headless, with their parameters pointed at small test data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, overrides: dict, tmp_path: Path):
    """Run the notebook with ``overrides`` appended to its first (parameters) cell; return it executed."""
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    params = next(cell for cell in book.cells if cell.cell_type == "code")
    names = {line.split("=")[0].strip() for line in params.source.splitlines()
             if "=" in line and not line.startswith("#")}
    assert set(overrides) <= names, f"unknown parameters {set(overrides) - names}"
    params.source += "\n# test overrides\n" + "\n".join(f"{k} = {v!r}" for k, v in overrides.items())
    client = nbclient.NotebookClient(book, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env={**os.environ, "SPOTER_CACHE_DIR": str(tmp_path / "cache")})
    nbformat.write(book, tmp_path / name)  # kept beside the test's files for inspection
    return book


def outputs(book, kind: str) -> list:
    return [o for cell in book.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
            if o.get("output_type") == kind or kind in o.get("data", {})]


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS.glob("*.ipynb"):
        book = nbformat.read(path, as_version=4)
        for cell in book.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"
        assert book.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.slow
def test_embeddings_evaluation_notebook(tiny_checkpoint, tiny_synthetic_dataset, tmp_path):
    book = execute("embeddings_evaluation.ipynb", {
        "DATA_DIR": None, "GALLERY": str(tiny_synthetic_dataset), "GALLERY_SPLIT": "train",
        "QUERIES": str(tiny_synthetic_dataset), "QUERIES_SPLIT": "val",
        "ZERO_SHOT": str(tmp_path / "zero-shot"), "CHECKPOINT": str(tiny_checkpoint), "SHOTS": [1, 2], "DRAWS": 2,
        "USE_CACHE": False, "FALLBACK_DIR": str(tmp_path / "never-used"),
    }, tmp_path)
    html = "".join(o["data"]["text/html"] for o in outputs(book, "text/html"))
    for text in ("kNN top-1", "kNN top-5", "untrained", "few_shot_2", "most_confused"):
        assert text in html, text
    assert len(outputs(book, "image/png")) >= 2                      # per-gloss bars and confusion matrix
    assert (tmp_path / "zero-shot" / "index.csv").is_file()          # generated through the library
    assert not (tmp_path / "never-used").exists()                    # the given checkpoint was used


@pytest.mark.slow
def test_visualize_notebook_trains_a_fallback_model(tiny_synthetic_dataset, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    first_val = next(line.split(",")[0] for line in (tiny_synthetic_dataset / "index.csv").read_text().splitlines()[1:]
                     if line.endswith(",val"))
    (videos / f"{first_val}.mp4").write_bytes(b"")                   # only its path is shown
    book = execute("visualize_embeddings.ipynb", {
        "DATA_DIR": None, "DATA": str(tiny_synthetic_dataset), "SPLIT": "val", "CHECKPOINT": str(tmp_path / "none.pth"),
        "METHOD": "pca", "POINT": first_val, "NEIGHBOURS": 2, "VIDEO_DIR": str(videos), "MAX_ANIMATION_FRAMES": 8,
        "USE_CACHE": False, "FALLBACK_DIR": str(tmp_path / "fallback"),
        "FALLBACK_TRAINING": {"epochs": 1, "epoch_iters": 2, "num_encoder_layers": 1, "num_decoder_layers": 1,
                              "dim_feedforward": 32, "batch_size": 8, "samples_per_class": 2},
    }, tmp_path)
    assert (tmp_path / "fallback" / "notebook-fallback" / "best.pth").is_file()
    html = "".join(o["data"]["text/html"] for o in outputs(book, "text/html"))
    assert "neighbour 2" in html and first_val in html                 # the neighbours table
    assert "<video" in html and f"{first_val}.mp4" in html              # the original clip
    assert "Animation" in html or "anim" in html                        # the jshtml player
    assert len(outputs(book, "image/png")) >= 1                          # the 2-D maps
