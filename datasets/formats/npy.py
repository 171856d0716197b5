"""The project's own clip files: a raw ``(T, 150)`` array in ``.npy`` (never a pickle)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets import layout
from datasets.errors import DataError

_NPY_MAGIC = b"\x93NUMPY"


def read_npy(path: Path) -> np.ndarray:
    """Load one raw landmark array, refusing anything that is not a numeric ``(frames, 150)`` .npy."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(_NPY_MAGIC))
        # The magic check keeps np.load from returning an NpzFile or reporting a text file as a pickle.
        array = np.load(path, allow_pickle=False) if magic == _NPY_MAGIC else None
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except ValueError as error:
        reason = "holds Python objects (pickles are refused)" if "pickle" in str(error) else f"not a valid .npy ({error})"
        raise DataError(f"{path}: {reason}") from None
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: not a readable .npy file ({error})") from None
    if array is None:
        raise DataError(f"{path}: not a .npy file")
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise DataError(f"{path}: expected numeric landmarks, got dtype {getattr(array, 'dtype', type(array))}")
    if array.ndim != 2 or array.shape[1] != layout.RAW_FEATURES:
        raise DataError(f"{path}: expected shape (frames, {layout.RAW_FEATURES}), got {array.shape}")
    return array.astype(np.float32, copy=False)
