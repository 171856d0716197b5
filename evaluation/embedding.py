"""Turning datasets into embedding matrices, batched and without gradients."""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from augmentations.torch_data import SignDataset, pad_batch


@torch.no_grad()
def embed_clips(model: torch.nn.Module, clips: list[torch.Tensor], batch_size: int = 64,
                device: str | torch.device = "cpu", progress: bool = False, desc: str = "embedding") -> np.ndarray:
    """Embed normalised ``(T, 54, 2)`` clips; clips of similar length share a batch to limit padding."""
    was_training = model.training
    model.eval()
    order = np.argsort([len(c) for c in clips], kind="stable")
    out = None
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress, unit="batch"):
        chunk = order[start: start + batch_size]
        landmarks, mask = pad_batch([clips[i] for i in chunk])
        emb = model(landmarks.to(device), mask.to(device)).float().cpu().numpy()
        if out is None:
            out = np.empty((len(clips), emb.shape[1]), dtype=np.float32)
        out[chunk] = emb
    model.train(was_training)
    return out if out is not None else np.zeros((0, 0), np.float32)


def embed_dataset(model: torch.nn.Module, dataset: SignDataset, batch_size: int = 64,
                  device: str | torch.device = "cpu", progress: bool = False, desc: str = "embedding") -> np.ndarray:
    """Embeddings ``(N, D)`` of every sample of ``dataset`` without augmentation."""
    clips = [torch.from_numpy(np.ascontiguousarray(dataset.frames(i))) for i in range(len(dataset))]
    return embed_clips(model, clips, batch_size, device, progress, desc)
