"""Where metrics go: always local files (JSON lines, CSV, PNG curves); optionally ClearML."""
from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

import numpy as np

from datasets.atomic import atomic_write

log = logging.getLogger(__name__)


class LocalTracker:
    """Appends one JSON line per epoch, rewrites ``metrics.csv`` and ``curves.png``."""

    def __init__(self, out_dir: str | os.PathLike, config: dict):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.history: list[dict] = []
        self.baseline: dict = {}
        with atomic_write(self.out_dir / "config.json", "w") as handle:
            json.dump(config, handle, indent=2)

    def restore(self, history: list[dict]) -> None:
        self.history = list(history)

    def log_baseline(self, metrics: dict) -> None:
        """The untrained network's figures: ``untrained.json``, and dashed lines in ``curves.png``."""
        self.baseline = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        with atomic_write(self.out_dir / "untrained.json", "w") as handle:
            json.dump(self.baseline, handle, indent=2)

    def log_epoch(self, metrics: dict) -> None:
        self.history.append(metrics)
        with atomic_write(self.out_dir / "metrics.jsonl", "w") as handle:
            handle.writelines(json.dumps(m) + "\n" for m in self.history)
        keys = sorted({k for m in self.history for k in m})
        with atomic_write(self.out_dir / "metrics.csv", "w") as handle:
            writer = csv.DictWriter(handle, keys)
            writer.writeheader()
            writer.writerows(self.history)
        self._plot_curves()

    def _plot_curves(self) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        groups = {"loss": ["train_loss"], "training fit": ["active_fraction", "train_accuracy"],
                  "silhouette": ["train_silhouette", "val_silhouette"],
                  "kNN accuracy": ["val_top1", "val_top5", "val_cross_signer_top1"],
                  "learning rate": ["lr"]}
        fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.2))
        epochs = [m["epoch"] for m in self.history]
        for ax, (title, keys) in zip(axes, groups.items()):
            for key in keys:
                values = [m.get(key, np.nan) for m in self.history]
                if not all(v is None or np.isnan(v) for v in values):
                    line, = ax.plot(epochs, [np.nan if v is None else v for v in values], marker=".", label=key)
                    if key in self.baseline and np.isfinite(self.baseline[key]):
                        ax.axhline(self.baseline[key], color=line.get_color(), linestyle="--", linewidth=1,
                                   label=f"{key} untrained")
            ax.set_title(title)
            ax.set_xlabel("epoch")
            if (len(keys) > 1 or self.baseline) and ax.get_legend_handles_labels()[0]:  # nothing plotted yet: no empty legend
                ax.legend(fontsize=7)
        fig.tight_layout()
        with atomic_write(self.out_dir / "curves.png", "wb") as handle:
            fig.savefig(handle, format="png", dpi=90)
        plt.close(fig)

    def log_figure(self, name: str, png_path: Path) -> None:  # local files are already written
        pass

    def log_artifact(self, name: str, path: Path) -> None:
        pass

    def close(self) -> None:
        pass


class ClearMLTracker(LocalTracker):
    """Local files plus ClearML scalars/plots/artifacts. Offline mode needs no server:
    set ``CLEARML_OFFLINE_MODE=1`` (the session is then zipped locally for a later import)."""

    def __init__(self, out_dir, config: dict, project: str, name: str):
        super().__init__(out_dir, config)
        from clearml import Task
        if os.environ.get("CLEARML_OFFLINE_MODE", "") not in ("", "0"):
            Task.set_offline(True)
        # Framework hooks and repository detection are off: they only slow start-up and need no server.
        frameworks = {"detect_repository": False, "pytorch": False, "matplotlib": False, "tensorboard": False}
        self.task = Task.init(project_name=project, task_name=name, auto_connect_frameworks=frameworks,
                              auto_connect_arg_parser=False, auto_resource_monitoring=False,
                              auto_connect_streams=False, reuse_last_task_id=False)
        self.task.connect(config, name="config")
        self.logger = self.task.get_logger()

    def log_epoch(self, metrics: dict) -> None:
        super().log_epoch(metrics)
        for key, value in metrics.items():
            if key != "epoch" and isinstance(value, (int, float)) and np.isfinite(value):
                title, _, series = key.partition("_")
                self.logger.report_scalar(title, series or title, value, iteration=int(metrics["epoch"]))

    def log_figure(self, name: str, png_path: Path) -> None:
        self.logger.report_image(name, name, iteration=0, local_path=str(png_path))

    def log_artifact(self, name: str, path: Path) -> None:
        self.task.upload_artifact(name, artifact_object=str(path))

    def close(self) -> None:
        self.task.close()


class NullTracker:
    """``--tracker none``: metrics are logged to the console only; no file is written."""

    def restore(self, history: list[dict]) -> None:
        pass

    def log_epoch(self, metrics: dict) -> None:
        pass

    def log_figure(self, name: str, png_path) -> None:
        pass

    def log_artifact(self, name: str, path) -> None:
        pass

    def close(self) -> None:
        pass


def build_tracker(kind: str, out_dir, config: dict, project: str, name: str):
    """local: files under the run folder; clearml: those and a ClearML task; none: nothing but checkpoints."""
    if kind == "clearml":
        return ClearMLTracker(out_dir, config, project, name)
    if kind == "local":
        return LocalTracker(out_dir, config)
    if kind == "none":
        return NullTracker()
    raise ValueError(f"unknown tracker {kind!r}; choose local, clearml or none")
