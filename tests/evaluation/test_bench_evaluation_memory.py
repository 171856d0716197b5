"""bench/bench_evaluation_memory.py on a tiny set: the report's shape, and blocks vs one block agree."""
import json

from bench.bench_evaluation_memory import main, synthetic_set


def test_synthetic_set_is_shaped_like_a_dictionary():
    data = synthetic_set(600, 50, 10)
    assert len(data) == 600 and data.embeddings.shape == (600, 64) and data.signers_known
    signers_per_gloss = [len(set(data.signer_ids[data.labels == g])) for g in range(50)]
    assert min(signers_per_gloss) == 1 and max(signers_per_gloss) == 10   # some glosses by one person only


def test_benchmark_report(tmp_path, capsys):
    out = tmp_path / "memory.json"
    assert main(["--clips", "300", "--glosses", "30", "--small-clips", "200", "--small-glosses", "20",
                 "--draws", "1", "--threads", "1", "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report == json.loads(capsys.readouterr().out)
    assert report["large"]["clips"] == 300 and report["small_figures_equal"] is True
    assert {"standard", "cross_signer", "few_shot_1", "few_shot_1_cross_signer"} <= set(report["large"]["figures"])
    assert report["large"]["peak_rss_mb"] > report["large"]["rss_before_evaluation_mb"] > 0
