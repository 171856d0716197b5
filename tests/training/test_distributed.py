"""DDP: ranks other than 0 wait for rank 0's evaluation without hitting the collective timeout."""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from datasets.sequences import SequenceSet
from datasets.spoter_csv import write_spoter_csv
from models.checkpoint import load_checkpoint
from training import distributed

REPO = Path(__file__).resolve().parents[2]
COLLECTIVE_SECONDS = 4  # the process group's timeout in the run below
EVALUATION_SECONDS = 9  # rank 0's first evaluation takes at least this long: over twice the timeout

# One rank of a 2-process gloo run: a short collective timeout, and rank 0's first evaluation
# made slower than it. The ranks meet on the store (long timeout) just before the process group
# is created, so a slow interpreter start on a busy machine cannot trip the short one.
RANK_SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    from datetime import timedelta
    import torch.distributed as dist
    from training import engine
    from training.config import TrainConfig

    rank, settings = int(os.environ["RANK"]), json.loads(sys.argv[1])
    store = dist.TCPStore("127.0.0.1", settings["port"], 2, rank == 0, timeout=timedelta(seconds=120))
    store.add("arrived", 1)
    while store.add("arrived", 0) < 2:
        time.sleep(0.05)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=2,
                            timeout=timedelta(seconds=settings["collective_seconds"]))
    evaluate, calls = engine.evaluate_epoch, []

    def slow_evaluate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(settings["evaluation_seconds"])
        return evaluate(*args, **kwargs)

    engine.evaluate_epoch = slow_evaluate
    engine.train(TrainConfig(**settings["config"]))
    print(f"rank {rank} done after {len(calls)} evaluation(s)")
""")


def run_two_ranks(script: str, settings: str, env: dict) -> list[tuple[str, str]]:
    """Run ``script`` as ranks 0 and 1; both must exit 0. Returns their (stdout, stderr)."""
    ranks = [subprocess.Popen([sys.executable, "-c", script, settings], cwd=REPO, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r)))
             for r in range(2)]
    outputs = []
    try:
        for process in ranks:
            outputs.append(process.communicate(timeout=180))
    finally:
        for process in ranks:  # never leave a rank behind, whatever happened
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    for r, (process, (_, stderr)) in enumerate(zip(ranks, outputs)):
        assert process.returncode == 0, f"rank {r}: {stderr[-3000:]}"
    return outputs


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_csvs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    rng = np.random.default_rng(0)
    for name in ("train", "val"):
        seqs = [rng.uniform(0.3, 0.7, (int(rng.integers(6, 10)), 54, 2)).astype(np.float32) for _ in range(16)]
        data = SequenceSet.from_sequences(seqs, [i % 4 for i in range(16)], ["a", "b", "c", "d"],
                                          video_ids=[f"{name}{i}" for i in range(16)])
        write_spoter_csv(data, folder / f"{name}.csv")
    return folder


@pytest.mark.slow
def test_other_rank_outwaits_a_main_rank_evaluation_longer_than_the_collective_timeout(tiny_csvs, tmp_path):
    config = dict(training_set_path=str(tiny_csvs / "train.csv"), validation_set_path=str(tiny_csvs / "val.csv"),
                  out_dir=str(tmp_path), experiment_name="ddp", epochs=2, epoch_iters=2, eval_every=1,
                  num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16, vector_length=8, batch_size=4,
                  samples_per_class=2, tracker="none", report_untrained=False, seed=1)
    settings = json.dumps({"port": _free_port(), "collective_seconds": COLLECTIVE_SECONDS,
                           "evaluation_seconds": EVALUATION_SECONDS, "config": config})
    env = dict(os.environ, OMP_NUM_THREADS="1", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
               PYTHONPATH=str(REPO), SPOTER_DDP_WAIT_TIMEOUT="120")
    outputs = run_two_ranks(RANK_SCRIPT, settings, env)
    assert "rank 0 done after 2 evaluation(s)" in outputs[0][0]
    assert "rank 1 done after 0 evaluation(s)" in outputs[1][0]
    assert load_checkpoint(tmp_path / "ddp" / "last.pth")["epoch"] == 1


def test_timeouts_come_from_the_environment(monkeypatch):
    monkeypatch.delenv(distributed.COLLECTIVE_TIMEOUT_ENV, raising=False)
    monkeypatch.delenv(distributed.WAIT_TIMEOUT_ENV, raising=False)
    assert distributed.collective_timeout() is None  # torch's own default
    assert distributed.wait_timeout() == distributed.DEFAULT_WAIT_TIMEOUT > timedelta(hours=1)
    monkeypatch.setenv(distributed.COLLECTIVE_TIMEOUT_ENV, "90")
    monkeypatch.setenv(distributed.WAIT_TIMEOUT_ENV, "7200")
    assert distributed.collective_timeout() == timedelta(minutes=1.5)  # the 90 set above
    assert distributed.wait_timeout() == timedelta(hours=2)
    monkeypatch.setenv(distributed.WAIT_TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match="SPOTER_DDP_WAIT_TIMEOUT='soon'"):
        distributed.wait_timeout()


def test_wait_for_main_is_a_no_op_without_a_process_group():
    distributed.wait_for_main(timedelta(seconds=1))  # single-process runs: returns at once


# Both ranks train with cosface; each writes its loss's gloss directions at the end. DDP
# averages only the model's gradients, so without engine's explicit averaging of the loss's
# own gradients the two ranks (which see different batches) would end with different ones,
# and without broadcasting rank 0's initial directions (each rank seeds torch with seed + rank)
# they would not even start equal.
COSFACE_RANK_SCRIPT = textwrap.dedent("""
    import json, os, sys
    from datetime import timedelta
    import torch
    import torch.distributed as dist
    from training import engine
    from training.config import TrainConfig

    rank, settings = int(os.environ["RANK"]), json.loads(sys.argv[1])
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{settings['port']}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=120))
    built = []
    original = engine.build_criterion
    engine.build_criterion = lambda *a, **k: built.append(original(*a, **k)) or built[-1]
    engine.train(TrainConfig(**settings["config"]))
    torch.save(built[0].state_dict(), os.path.join(settings["out"], f"proxies{rank}.pt"))
""")


@pytest.mark.slow
def test_cosface_directions_stay_identical_across_ranks(tiny_csvs, tmp_path):
    config = dict(training_set_path=str(tiny_csvs / "train.csv"), validation_set_path=str(tiny_csvs / "val.csv"),
                  out_dir=str(tmp_path), experiment_name="ddp", epochs=2, epoch_iters=4, eval_every=1,
                  num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16, vector_length=8, batch_size=4,
                  samples_per_class=2, tracker="none", report_untrained=False, seed=1, loss="cosface",
                  distance="cosine")
    settings = json.dumps({"port": _free_port(), "config": config, "out": str(tmp_path)})
    env = dict(os.environ, OMP_NUM_THREADS="1", WORLD_SIZE="2", PYTHONPATH=str(REPO))
    run_two_ranks(COSFACE_RANK_SCRIPT, settings, env)
    import torch
    first, second = (torch.load(tmp_path / f"proxies{r}.pt", weights_only=True)["proxies"] for r in range(2))
    saved = load_checkpoint(tmp_path / "ddp" / "last.pth")["criterion"]["proxies"]
    assert torch.allclose(first, second, atol=1e-6), "the ranks' gloss directions diverged"
    assert torch.equal(saved, first)
